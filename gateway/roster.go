package gateway

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// importRoster brings the user's roster in line with the QQ buddy list:
// the whole list (all pages), then who is online. A buddy the store does
// not know yet gets a subscribe from its JID with its nickname (XEP-0172)
// and is stored as pending-in; a contact the user confirmed that QQ no
// longer lists gets unsubscribe, unsubscribed and unavailable. So a later
// import sends only what changed. Nicknames of offline buddies come from
// the store, or from GetInfo (at most Config.ProfileFetches per import).
// It returns how many buddies QQ lists and how many the user was asked to
// take; importDue stays set if it could not finish.
func (s *session) importRoster(ctx context.Context) (listed, asked int) {
	s.importDue = true // until this import completes
	uins, err := s.link.qq.Buddies(ctx)
	if err != nil {
		s.qqFailed(ctx, err)
		return 0, 0
	}
	online, err := s.link.qq.OnlineBuddies(ctx)
	if err != nil {
		s.qqFailed(ctx, err)
		return 0, 0
	}
	contacts, err := s.g.st.Contacts(ctx, s.key)
	if err != nil {
		s.log.WithError(err).Error("gateway: cannot read contacts; buddy list import postponed")
		return 0, 0
	}
	im := rosterImport{known: map[qqproto.UIN]store.Contact{}, online: map[qqproto.UIN]qqproto.Buddy{},
		listed: map[qqproto.UIN]bool{}, fetches: s.g.cfg.ProfileFetches}
	for _, c := range contacts {
		im.known[qqproto.UIN(c.UIN)] = c
	}
	for _, ob := range online {
		im.online[ob.UIN] = ob
	}
	for _, u := range uins {
		if u == s.uin() || im.listed[u] {
			continue
		}
		im.listed[u] = true
		if !s.importBuddy(ctx, u, &im) {
			return 0, 0
		}
	}
	if err := s.g.st.PutContacts(ctx, s.key, im.puts); err != nil {
		s.log.WithError(err).Error("gateway: cannot store imported contacts")
	}
	s.dropUnlisted(ctx, contacts, im.listed)
	s.importDue = false
	s.applyOnline(ctx, online)
	s.log.WithFields(logrus.Fields{"buddies": len(im.listed), "online": len(online), "new_contacts": im.asked}).Info("gateway: buddy list imported")
	return len(im.listed), im.asked
}

// rosterImport is the state of one importRoster.
type rosterImport struct {
	known   map[qqproto.UIN]store.Contact
	online  map[qqproto.UIN]qqproto.Buddy
	listed  map[qqproto.UIN]bool
	fetches int             // GetInfo requests left
	puts    []store.Contact // contacts to store
	asked   int             // new buddies the user was asked to take
}

// importBuddy takes one listed buddy into the session, asks the user to
// take a new one into the roster, and notes what to store. It reports
// false when the session was lost on the way.
func (s *session) importBuddy(ctx context.Context, u qqproto.UIN, im *rosterImport) bool {
	b := s.buddy(u)
	b.listed = true
	c, isContact := im.known[u]
	if ob, ok := im.online[u]; ok {
		b.status, b.face = ob.Status, ob.Face
		b.nick = firstNonEmpty(ob.Nick, b.nick)
	} else {
		b.status = qqproto.StatusOffline
	}
	if b.nick == "" && isContact && c.Nick != "" {
		b.nick, b.face = c.Nick, c.Face
	}
	if b.nick == "" && im.fetches > 0 {
		im.fetches--
		p, err := s.link.qq.Profile(ctx, u)
		switch {
		case err == nil:
			b.nick, b.face = p.Nick, p.Face
		case errors.Is(err, ErrSessionLost):
			s.qqFailed(ctx, err)
			return false
		default:
			s.log.WithError(err).WithField("buddy", u).Debug("gateway: no profile for a buddy's nickname")
		}
	}
	switch {
	case !isContact:
		if s.e.subscription(ctx, u, s.key, presSubscribe, "", b.nick) != nil {
			return true // not stored, so the next import asks again
		}
		im.asked++
		im.puts = append(im.puts, store.Contact{UIN: int64(u), Nick: b.nick, Face: b.face, Sub: store.PendingIn})
	case (b.nick != "" && b.nick != c.Nick) || b.face != c.Face:
		c.Nick, c.Face = b.nick, b.face
		im.puts = append(im.puts, c)
	}
	return true
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
		s.e.goodbye(ctx, u, s.key)
		s.deleteContact(ctx, u)
		delete(s.buddies, u)
	}
	for u, b := range s.buddies {
		if b.listed && !listed[u] {
			b.listed = false
		}
	}
}
