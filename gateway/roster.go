package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// importRoster brings the user's roster in line with the QQ buddy list:
// the whole list (all pages), then who is online. Where the user's server
// lets the gateway write the roster (privilege.go), each buddy's item is
// set (rosteritems.go) and stored as mutual, and items of buddies QQ no
// longer lists are removed. Otherwise a buddy the store does not know yet
// gets a subscribe from its JID with its nickname (XEP-0172) and is stored
// as pending-in; a contact the user confirmed that QQ no longer lists gets
// unsubscribe, unsubscribed and unavailable. So a later import sends only
// what changed. Nicknames of offline buddies come from the store, or from
// GetInfo (at most Config.ProfileFetches per import).
// It returns what it did, for the sync command; importDue stays set if it
// could not finish.
func (s *session) importRoster(ctx context.Context) importCounts {
	s.importDue = true // until this import completes
	uins, err := s.link.qq.Buddies(ctx)
	if err != nil {
		s.importFailed(ctx, err)
		return importCounts{}
	}
	online, err := s.link.qq.OnlineBuddies(ctx)
	if err != nil {
		s.importFailed(ctx, err)
		return importCounts{}
	}
	contacts, err := s.g.st.Contacts(ctx, s.key)
	if err != nil {
		s.log.WithError(err).Error("gateway: cannot read contacts; buddy list import postponed")
		return importCounts{}
	}
	im := rosterImport{known: map[qqproto.UIN]store.Contact{}, online: map[qqproto.UIN]qqproto.Buddy{},
		listed: map[qqproto.UIN]bool{}, fetches: s.g.cfg.ProfileFetches}
	for _, c := range contacts {
		im.known[qqproto.UIN(c.UIN)] = c
	}
	s.roster = rosterCopy{}
	if s.writable() {
		s.readRoster(ctx)
	}
	for _, ob := range online {
		im.online[ob.UIN] = ob
	}
	s.buddies.reserve(len(uins))
	for _, u := range uins {
		if u == s.uin() || im.listed[u] {
			continue
		}
		im.listed[u] = true
		if !s.importBuddy(ctx, u, &im) {
			return importCounts{}
		}
	}
	s.buddies.fit()
	s.checkMutual(ctx, &im)
	if err := s.g.st.PutContacts(ctx, s.key, im.puts); err != nil {
		s.log.WithError(err).Error("gateway: cannot store imported contacts")
	}
	s.dropUnlisted(ctx, contacts, im.listed)
	stale := 0
	if s.roster.read && s.writable() {
		stale = s.dropStale(ctx, im.listed, im.known)
	}
	s.importDue, s.importFailures = false, 0
	s.applyOnline(ctx, online)
	s.log.WithFields(logrus.Fields{"buddies": len(im.listed), "online": len(online), "new_contacts": im.asked,
		"roster_items_set": im.pushed, "stale_items_removed": stale}).Info("gateway: buddy list imported")
	return importCounts{listed: len(im.listed), asked: im.asked, pushed: im.pushed}
}

// importCounts are what one importRoster did.
type importCounts struct {
	listed int // buddies QQ lists
	asked  int // new buddies the user was asked to take
	pushed int // roster items the gateway set
}

// maxImportWait caps the wait between attempts of a failing import.
const maxImportWait = 10 * time.Minute

// importFailed handles a failed List or Query_Stat of an import: the next
// attempt waits a status interval, doubled per failure up to
// maxImportWait, rather than the next poll. A server whose list never
// ends (each attempt is up to 200 pages) is asked rarely, not for ever.
func (s *session) importFailed(ctx context.Context, err error) {
	s.importFailures++
	wait := s.link.statInterval()
	for i := 1; i < s.importFailures && wait < maxImportWait; i++ {
		wait *= 2
	}
	s.importAfter = s.g.clock.Now().Add(min(wait, maxImportWait))
	s.qqFailed(ctx, err)
}

// rosterImport is the state of one importRoster.
type rosterImport struct {
	known   map[qqproto.UIN]store.Contact
	online  map[qqproto.UIN]qqproto.Buddy
	listed  map[qqproto.UIN]bool
	fetches int             // GetInfo requests left
	puts    []store.Contact // contacts to store
	asked   int             // new buddies the user was asked to take
	pushed  int             // roster items the gateway set
	mutual  []mutualItem    // buddies whose item the gateway made mutual
}

// importBuddy takes one listed buddy into the session, asks the user to
// take a new one into the roster, and notes what to store. It reports
// false when the session was lost on the way.
func (s *session) importBuddy(ctx context.Context, u qqproto.UIN, im *rosterImport) bool {
	b := s.buddy(u)
	b.setListed(true)
	c, isContact := im.known[u]
	if ob, ok := im.online[u]; ok {
		b.setState(ob.Status)
		s.buddies.setProfile(b, firstNonEmpty(ob.Nick, s.nick(b)), ob.Face)
	} else {
		b.setState(qqproto.StatusOffline)
	}
	if s.nick(b) == "" && isContact && c.Nick != "" {
		s.buddies.setProfile(b, c.Nick, c.Face)
	}
	if s.nick(b) == "" && im.fetches > 0 {
		im.fetches--
		p, err := s.link.qq.Profile(ctx, u)
		switch {
		case err == nil:
			s.buddies.setProfile(b, p.Nick, p.Face)
		case errors.Is(err, ErrSessionLost):
			s.qqFailed(ctx, err)
			return false
		default:
			s.log.WithError(err).WithField("buddy", u).Debug("gateway: no profile for a buddy's nickname")
		}
	}
	if s.mutual() && s.importItem(ctx, b, c, isContact, im) {
		return true
	}
	s.askBuddy(ctx, b, c, isContact, im)
	return true
}

// askBuddy imports a buddy without writing the roster: a new one is asked
// for (a subscribe from its JID) and stored as pending-in, a known one's
// new nickname noted.
func (s *session) askBuddy(ctx context.Context, b *buddy, c store.Contact, isContact bool, im *rosterImport) {
	switch {
	case !isContact:
		if s.e.subscription(ctx, b.uin, s.key, presSubscribe, "", s.nick(b)) != nil {
			return // not stored, so the next import asks again
		}
		im.asked++
		im.puts = append(im.puts, store.Contact{UIN: int64(b.uin), Nick: s.nick(b), Face: int(b.face), Sub: store.PendingIn})
	case (s.nick(b) != "" && s.nick(b) != c.Nick) || int(b.face) != c.Face:
		c.Nick, c.Face = s.nick(b), int(b.face)
		im.puts = append(im.puts, c)
	}
}

// dropUnlisted removes the contacts the user had confirmed that QQ no
// longer lists: they were removed on the QQ side. Pending ones are left to
// the contact flows: they may be requests still waiting for an answer.
func (s *session) dropUnlisted(ctx context.Context, contacts []store.Contact, listed map[qqproto.UIN]bool) {
	for _, c := range contacts {
		u := qqproto.UIN(c.UIN)
		if listed[u] || c.Sub != store.Both {
			continue
		}
		s.log.WithField("buddy", int64(u)).Info("gateway: buddy no longer on the QQ list; removed from the roster")
		if !s.writable() || !s.pushItem(ctx, rosterItem{JID: s.e.buddyJID(u), Subscription: subRemove}) {
			s.e.goodbye(ctx, u, s.key)
		}
		s.deleteContact(ctx, u)
		s.buddies.remove(u)
	}
	for b := range s.buddies.all() {
		if b.listed() && !listed[b.uin] {
			b.setListed(false)
		}
	}
}
