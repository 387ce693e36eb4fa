package gateway

import (
	"cmp"
	"slices"

	"qqxmpp/qqproto"
)

// buddyList is a session's QQ contacts, sorted by number. A slice of
// pointers costs 8 bytes a buddy where a map cost about 40, and each
// buddy stays where it is while the list grows, so a *buddy held across
// an insertion is still the live one.
type buddyList []*buddy

// search returns where uin is, or where it would go.
func (l buddyList) search(uin qqproto.UIN) (int, bool) {
	return slices.BinarySearchFunc(l, uin, func(b *buddy, u qqproto.UIN) int { return cmp.Compare(b.uin, u) })
}

// get returns the buddy uin, or nil.
func (l buddyList) get(uin qqproto.UIN) *buddy {
	if i, ok := l.search(uin); ok {
		return l[i]
	}
	return nil
}

// add returns the buddy uin, creating an offline one.
func (l *buddyList) add(uin qqproto.UIN) *buddy {
	i, ok := l.search(uin)
	if ok {
		return (*l)[i]
	}
	b := &buddy{uin: uin, status: qqproto.StatusOffline}
	*l = slices.Insert(*l, i, b)
	return b
}

// remove forgets the buddy uin.
func (l *buddyList) remove(uin qqproto.UIN) {
	if i, ok := l.search(uin); ok {
		*l = slices.Delete(*l, i, i+1)
	}
}
