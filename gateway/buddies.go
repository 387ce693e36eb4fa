package gateway

import (
	"cmp"
	"iter"
	"math"
	"slices"
	"strings"

	"qqxmpp/qqproto"
)

// buddyList is a session's QQ contacts, sorted by number.
//
// A gateway holds users × buddies of them, so the list is laid out for
// memory: the records sit in blocks of values, the order is a slice of
// 4-byte references to them, and the nicknames are cut from one string
// per list. None of it holds a pointer, so the collector never scans it.
// A block never grows past the capacity it was made with, so a *buddy
// handed out stays the list's own record while the list grows. A removed
// buddy's record is left where it is, out of the order, until the list
// goes with its session: removals are rare (a user's own action, or QQ
// no longer listing a buddy).
type buddyList struct {
	blocks [][]buddy
	order  []buddyRef // sorted by uin
	names  strings.Builder
	// dead counts the bytes of names no record points to any more.
	dead int
}

// buddyRef is a record's place: its block in the top 8 bits, its index in
// that block in the rest.
type buddyRef uint32

const (
	refIndexBits = 24
	// maxBlocks is how many blocks a ref can name. Blocks grow with the
	// list (newBlockCap), so 256 hold far more buddies than QQ allows.
	maxBlocks = 1 << (32 - refIndexBits)
)

func (l *buddyList) at(r buddyRef) *buddy {
	return &l.blocks[r>>refIndexBits][r&(1<<refIndexBits-1)]
}

// search returns where uin is in the order, or where it would go.
func (l *buddyList) search(uin qqproto.UIN) (int, bool) {
	return slices.BinarySearchFunc(l.order, uin, func(r buddyRef, u qqproto.UIN) int { return cmp.Compare(l.at(r).uin, u) })
}

// get returns the buddy uin, or nil.
func (l *buddyList) get(uin qqproto.UIN) *buddy {
	if i, ok := l.search(uin); ok {
		return l.at(l.order[i])
	}
	return nil
}

// maxReserve bounds what reserve takes on a server's word: far more
// buddies than QQ lets an account have; a longer list grows by blocks.
const maxReserve = 10000

// reserve makes room for n buddies in an empty list, so that an import
// of the whole QQ list takes one block of the right size.
func (l *buddyList) reserve(n int) {
	if n = min(n, maxReserve); len(l.blocks) == 0 && n > 0 {
		l.blocks = append(l.blocks, make([]buddy, 0, n))
		l.order = slices.Grow(l.order, n)
	}
}

// newBlockCap is the capacity of the next block: half what the list has,
// so the spare room stays under a third of it.
func (l *buddyList) newBlockCap() int {
	held := 0
	for _, b := range l.blocks {
		held += len(b)
	}
	return min(max(4, held/2), 1<<refIndexBits)
}

// add returns the buddy uin, creating an offline one.
func (l *buddyList) add(uin qqproto.UIN) *buddy {
	i, ok := l.search(uin)
	if ok {
		return l.at(l.order[i])
	}
	k := len(l.blocks) - 1
	if k < 0 || len(l.blocks[k]) == cap(l.blocks[k]) {
		if len(l.blocks) == maxBlocks {
			l.merge() // one block, with room
		} else {
			l.blocks = append(l.blocks, make([]buddy, 0, l.newBlockCap()))
		}
		k = len(l.blocks) - 1
	}
	l.blocks[k] = append(l.blocks[k], buddy{uin: uin, status: uint8(qqproto.StatusOffline)})
	r := buddyRef(k<<refIndexBits | (len(l.blocks[k]) - 1))
	l.order = slices.Insert(l.order, i, r)
	return l.at(r)
}

// merge copies the live records into one block. It is the one move of
// records, and it never happens in practice: it takes 256 blocks, which
// grow by half the list each. A *buddy held across it is no longer the
// list's.
func (l *buddyList) merge() {
	recs := make([]buddy, 0, max(len(l.order)*3/2, 4))
	for i, r := range l.order {
		recs = append(recs, *l.at(r))
		l.order[i] = buddyRef(i)
	}
	l.blocks = [][]buddy{recs}
}

// remove forgets the buddy uin.
func (l *buddyList) remove(uin qqproto.UIN) {
	if i, ok := l.search(uin); ok {
		b := l.at(l.order[i])
		l.dead += int(b.nickLen)
		b.nickAt, b.nickLen = 0, 0
		l.order = slices.Delete(l.order, i, i+1)
	}
}

// all yields the buddies in order. The body must not add or remove any:
// go through snapshot for that.
func (l *buddyList) all() iter.Seq[*buddy] {
	return func(yield func(*buddy) bool) {
		for _, r := range l.order {
			if !yield(l.at(r)) {
				return
			}
		}
	}
}

// snapshot lists the buddies in order, to go through while the work done
// for each may add or remove buddies.
func (l *buddyList) snapshot() []*buddy {
	out := make([]*buddy, len(l.order))
	for i, r := range l.order {
		out[i] = l.at(r)
	}
	return out
}

// nick is b's nickname, "" if none is known.
func (l *buddyList) nick(b *buddy) string {
	all := l.names.String()
	end := int(b.nickAt) + int(b.nickLen)
	if end > len(all) {
		return "" // not this list's record
	}
	return all[b.nickAt:end]
}

// setProfile records a buddy's nickname and QQ face. A nickname the
// record does not have yet is added to the names; when most of them are
// no longer anybody's, the names are written anew.
func (l *buddyList) setProfile(b *buddy, nick string, face int) {
	if face < math.MinInt32 || face > math.MaxInt32 {
		face = -1 // no picture, as for any face out of range
	}
	b.face = int32(face)
	if nick == l.nick(b) {
		return
	}
	b.flags &^= flagSentNick
	l.dead += int(b.nickLen)
	nick = cut(nick, math.MaxUint16) // what nickLen holds; boundedQQ cuts QQ's far shorter
	b.nickAt, b.nickLen = uint32(l.names.Len()), uint16(len(nick))
	l.names.WriteString(nick)
	if l.dead > 256 && l.dead > l.names.Len()/2 {
		l.compact()
	}
}

// compact writes the names of the listed buddies into a new string of
// the right size. Strings handed out before still hold the old one.
func (l *buddyList) compact() {
	old := l.names.String()
	l.names = strings.Builder{} // a Builder is not to be copied: this one is made anew in place
	l.names.Grow(len(old) - l.dead)
	for _, r := range l.order {
		b := l.at(r)
		nick := old[b.nickAt : b.nickAt+uint32(b.nickLen)]
		b.nickAt = uint32(l.names.Len())
		l.names.WriteString(nick)
	}
	l.dead = 0
}

// fit gives back what an import left spare in the names: the builder
// doubles as it grows.
func (l *buddyList) fit() {
	if l.names.Cap()-l.names.Len() > 64 {
		l.compact()
	}
}

// presence is what a buddy's JID shows for its QQ state (spec: state
// mapping): online is available, busy is away, the rest unavailable.
func (l *buddyList) presence(b *buddy) shownPresence {
	switch qqproto.Status(b.status) {
	case qqproto.StatusOnline:
		return shownPresence{available: true, nick: l.nick(b), picture: int32(avatarPicture(int(b.face)))}
	case qqproto.StatusBusy:
		return shownPresence{available: true, busy: true, nick: l.nick(b), picture: int32(avatarPicture(int(b.face)))}
	}
	return shownPresence{}
}
