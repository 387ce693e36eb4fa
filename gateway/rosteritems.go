package gateway

// The user's roster written by the gateway, where the user's server
// granted it (privilege.go): each buddy an item with its QQ nickname as
// name, in the gateway's group, subscription both; every item of the
// transport removed at unregistration. Each request carries one item:
// ejabberd refuses more, Prosody answers each.

import (
	"context"
	"encoding/xml"
	"errors"
	"sort"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// rosterItem is a jabber:iq:roster item as the gateway reads and writes
// it.
type rosterItem struct {
	JID          string   `xml:"jid,attr"`
	Name         string   `xml:"name,attr,omitempty"`
	Subscription string   `xml:"subscription,attr,omitempty"`
	Groups       []string `xml:"group"`
}

type rosterQuery struct {
	XMLName xml.Name     `xml:"jabber:iq:roster query"`
	Items   []rosterItem `xml:"item"`
}

const (
	subBoth   = "both"
	subRemove = "remove"
)

// rosterCopy is what the session knows of the transport's items in the
// user's roster: read at each import, kept up to date by its own writes
// (servers do not tell the gateway about the user's).
type rosterCopy struct {
	read  bool                  // items holds the server's answer; else nothing is known
	items map[string]rosterItem // the transport's items, by bare JID
}

// writable reports whether the user's server lets the gateway write the
// user's roster: rename and remove items.
func (s *session) writable() bool { return s.g.privs.roster(s.jid.Domainpart()).canWrite() }

// mutual reports whether the gateway adds items with a mutual
// subscription, so that nobody is asked to approve one.
func (s *session) mutual() bool { return s.g.privs.roster(s.jid.Domainpart()).canMutual() }

// readRoster reads the transport's items of the user's roster into
// s.roster, if the server allows it; else s.roster is unknown.
func (s *session) readRoster(ctx context.Context) {
	s.roster = rosterCopy{items: map[string]rosterItem{}}
	if !s.g.privs.roster(s.jid.Domainpart()).get {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, rosterTimeout)
	defer cancel()
	ans, err := s.e.ask(ctx, s.key, "get", rosterQuery{})
	if err != nil {
		s.log.WithError(err).Warn("gateway: cannot read the user's roster")
		return
	}
	var v struct {
		Query rosterQuery `xml:"jabber:iq:roster query"`
	}
	if err := ans.Decode(&v); err != nil {
		s.log.WithError(err).Warn("gateway: unreadable roster")
		return
	}
	for _, it := range v.Query.Items {
		if s.isTransportJID(it.JID) {
			s.roster.items[it.JID] = it
		}
	}
	s.roster.read = true
}

// isTransportJID reports whether a bare JID is the domain's or a buddy's.
func (s *session) isTransportJID(j string) bool {
	return j == s.e.dom || (len(j) > len(s.e.dom)+1 && j[len(j)-len(s.e.dom)-1:] == "@"+s.e.dom)
}

// pushItem writes one item (subscription remove: deletes it). It reports
// false if it was not written: the caller falls back to presence
// subscriptions. A server that refuses is not asked again until it grants
// afresh.
func (s *session) pushItem(ctx context.Context, it rosterItem) bool {
	ctx, cancel := context.WithTimeout(ctx, rosterTimeout)
	defer cancel()
	_, err := s.e.ask(ctx, s.key, "set", rosterQuery{Items: []rosterItem{it}})
	var refused *iqError
	if errors.As(err, &refused) && refused.cond == "item-not-found" && it.Subscription == subRemove {
		err = nil // gone already
	}
	switch {
	case err == nil:
		if it.Subscription == subRemove {
			delete(s.roster.items, it.JID)
		} else if s.roster.items != nil {
			s.roster.items[it.JID] = it
		}
		return true
	case errors.As(err, &refused):
		if s.g.privs.note(s.jid.Domainpart(), refusedFlag) {
			s.log.WithError(err).Warn("gateway: the user's server granted roster access but refused a roster item; asking users to approve subscriptions instead")
		}
	default:
		s.log.WithError(err).WithField("item", it.JID).Debug("gateway: roster item not written")
	}
	return false
}

// importItem makes a listed buddy's roster item what the user should see
// (wantedItem) and notes the contact as mutual. It reports false if the
// server did not take the item: the subscription flow applies.
func (s *session) importItem(ctx context.Context, b *buddy, c store.Contact, isContact bool, im *rosterImport) bool {
	if it, push := s.wantedItem(b, c, isContact); push {
		if !s.pushItem(ctx, it) {
			return false
		}
		im.pushed++
		im.mutual = append(im.mutual, mutualItem{b: b, prev: c, wasContact: isContact})
	}
	nick := firstNonEmpty(s.nick(b), c.Nick)
	if !isContact || c.Sub != store.Both || nick != c.Nick || int(b.face) != c.Face {
		im.puts = append(im.puts, store.Contact{UIN: int64(b.uin), Nick: nick, Face: int(b.face), Sub: store.Both})
	}
	return true
}

// wantedItem is the item a buddy's roster item must become, and whether
// it must be written: a missing one is added, one without a mutual
// subscription made mutual, and a changed QQ nickname renamed. Otherwise
// what the user made of it (name, groups) stays.
func (s *session) wantedItem(b *buddy, c store.Contact, isContact bool) (rosterItem, bool) {
	jid := s.e.buddyJID(b.uin)
	renamed := s.nick(b) != "" && s.nick(b) != c.Nick
	have, ok := s.roster.items[jid]
	switch {
	case !ok && (s.roster.read || !isContact || c.Sub != store.Both || renamed):
		return s.newItem(jid, s.nick(b)), true
	case !ok:
		return rosterItem{}, false // not known, and set before as it should be
	case have.Subscription != subBoth || (renamed && have.Name != s.nick(b)):
		it := have
		it.Subscription = subBoth
		if renamed || it.Name == "" {
			it.Name = s.nick(b)
		}
		if len(it.Groups) == 0 {
			it.Groups = []string{s.g.cfg.Name}
		}
		return it, true
	}
	return rosterItem{}, false
}

func (s *session) newItem(jid, name string) rosterItem {
	return rosterItem{JID: jid, Name: name, Subscription: subBoth, Groups: []string{s.g.cfg.Name}}
}

// mutualItem is a buddy whose item an import made mutual, and what the
// store knew of it before.
type mutualItem struct {
	b          *buddy
	prev       store.Contact
	wasContact bool
}

// checkMutual reads back the items the import made mutual, where the
// server allows it. A server that kept their old subscription is noted as
// such; those buddies are imported as without roster access (askBuddy),
// and so are its users' next ones.
func (s *session) checkMutual(ctx context.Context, im *rosterImport) {
	server := s.jid.Domainpart()
	if len(im.mutual) == 0 || !s.g.privs.roster(server).get {
		return
	}
	s.readRoster(ctx)
	kept := map[int64]mutualItem{}
	for _, m := range im.mutual {
		if it, ok := s.roster.items[s.e.buddyJID(m.b.uin)]; s.roster.read && (!ok || it.Subscription != subBoth) {
			kept[int64(m.b.uin)] = m
		}
	}
	if len(kept) == 0 {
		return
	}
	s.noteKeepsSub()
	puts := im.puts[:0]
	for _, c := range im.puts {
		if _, ok := kept[c.UIN]; !ok {
			puts = append(puts, c)
		}
	}
	im.puts = puts
	for _, m := range im.mutual {
		if _, ok := kept[int64(m.b.uin)]; ok {
			s.askBuddy(ctx, m.b, m.prev, m.wasContact, im)
		}
	}
}

// noteKeepsSub notes that the user's server keeps the subscription of the
// items the gateway writes.
func (s *session) noteKeepsSub() {
	if s.g.privs.note(s.jid.Domainpart(), keepsSubFlag) {
		s.log.Warn("gateway: the user's server keeps the subscription of the roster items the gateway writes; asking users to approve subscriptions instead")
	}
}

// renameItem takes a buddy's new QQ nickname into its roster item, if the
// gateway writes the roster and the buddy is mutual there.
func (s *session) renameItem(ctx context.Context, b *buddy, c store.Contact) {
	if !s.writable() || c.Sub != store.Both {
		return
	}
	if it, push := s.wantedItem(b, c, true); push {
		s.pushItem(ctx, it)
	}
}

// nameItem writes the roster item of a buddy the user just added: mutual,
// named by its QQ nickname unless the user named it, in the gateway's
// group unless the user chose one. It reports whether the server took it.
func (s *session) nameItem(ctx context.Context, b *buddy) bool {
	jid := s.e.buddyJID(b.uin)
	if s.g.privs.roster(s.jid.Domainpart()).get {
		s.readRoster(ctx) // the item the user's client just made
	}
	it, ok := s.roster.items[jid]
	if !ok {
		it = s.newItem(jid, s.nick(b))
	}
	it.Name = firstNonEmpty(it.Name, s.nick(b))
	it.Subscription = subBoth
	if len(it.Groups) == 0 {
		it.Groups = []string{s.g.cfg.Name}
	}
	return s.pushItem(ctx, it)
}

// dropStale removes the transport's items in the roster of buddies QQ
// does not list and the store does not know (left by an earlier
// registration, say): the roster shows the QQ list.
func (s *session) dropStale(ctx context.Context, listed map[qqproto.UIN]bool, known map[qqproto.UIN]store.Contact) int {
	n := 0
	for jid := range s.roster.items {
		u, ok := s.uinOf(jid)
		if !ok || listed[u] {
			continue
		}
		if _, stored := known[u]; stored {
			continue
		}
		if s.pushItem(ctx, rosterItem{JID: jid, Subscription: subRemove}) {
			n++
		}
	}
	return n
}

// uinOf is the QQ number of a buddy's bare JID.
func (s *session) uinOf(jid string) (qqproto.UIN, bool) {
	if jid == s.e.dom {
		return 0, false
	}
	return qqproto.ParseUIN(jid[:len(jid)-len(s.e.dom)-1])
}

// addDomainItem puts the transport itself in the roster of a user who
// just registered, mutual. It reports false if the server did not take
// the item: then the domain asks for a subscription.
func (s *session) addDomainItem(ctx context.Context) bool {
	if !s.mutual() || !s.pushItem(ctx, s.newItem(s.e.dom, s.g.cfg.Name)) {
		return false
	}
	if s.g.privs.roster(s.jid.Domainpart()).get {
		s.readRoster(ctx)
		if it := s.roster.items[s.e.dom]; s.roster.read && it.Subscription != subBoth {
			s.noteKeepsSub()
			return false
		}
	}
	return true
}

// leaveRoster takes every JID of the transport out of the roster of a
// user who unregistered: where the server lets the gateway write the
// roster, each item is removed (every one of the transport's, as the
// server lists them); the rest get unsubscribe, unsubscribed and
// unavailable, as do the buddies in uins that are not in the roster (a
// request may wait there). The domain goes last. It returns how many
// items were removed.
func (s *session) leaveRoster(ctx context.Context, uins []qqproto.UIN) int {
	if s.writable() {
		s.readRoster(ctx)
	}
	var jids []string
	seen := map[string]bool{s.e.dom: true}
	for jid := range s.roster.items {
		if !seen[jid] {
			seen[jid] = true
			jids = append(jids, jid)
		}
	}
	sort.Strings(jids)
	for _, u := range uins {
		if jid := s.e.buddyJID(u); !seen[jid] {
			seen[jid] = true
			jids = append(jids, jid)
		}
	}
	jids = append(jids, s.e.dom)
	removed := 0
	for _, jid := range jids {
		_, listed := s.roster.items[jid]
		if s.writable() && (listed || !s.roster.read) && s.pushItem(ctx, rosterItem{JID: jid, Subscription: subRemove}) {
			removed++
			continue
		}
		u, _ := s.uinOf(jid)
		s.e.goodbye(ctx, u, s.key)
	}
	s.roster = rosterCopy{}
	return removed
}
