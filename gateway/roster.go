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
func (s *session) importRoster(ctx context.Context) {
	s.needImport = true // until this import completes
	uins, err := s.qq.Buddies(ctx)
	if err != nil {
		s.qqFailed(ctx, err)
		return
	}
	online, err := s.qq.OnlineBuddies(ctx)
	if err != nil {
		s.qqFailed(ctx, err)
		return
	}
	contacts, err := s.g.st.Contacts(ctx, s.key)
	if err != nil {
		s.log.WithError(err).Error("gateway: cannot read contacts; roster import postponed")
		return
	}
	known := make(map[qqproto.UIN]store.Contact, len(contacts))
	for _, c := range contacts {
		known[qqproto.UIN(c.UIN)] = c
	}
	onlineBy := make(map[qqproto.UIN]qqproto.Buddy, len(online))
	for _, ob := range online {
		onlineBy[ob.UIN] = ob
	}

	listed := make(map[qqproto.UIN]bool, len(uins))
	fetches := s.g.cfg.ProfileFetches
	var puts []store.Contact
	for _, u := range uins {
		if u == s.uin() || listed[u] {
			continue
		}
		listed[u] = true
		b := s.buddy(u)
		b.listed = true
		c, isContact := known[u]
		if ob, ok := onlineBy[u]; ok {
			b.status, b.face = ob.Status, ob.Face
			if ob.Nick != "" {
				b.nick = ob.Nick
			}
		} else {
			b.status = qqproto.StatusOffline
		}
		if b.nick == "" && isContact && c.Nick != "" {
			b.nick, b.face = c.Nick, c.Face
		}
		if b.nick == "" && fetches > 0 {
			fetches--
			p, err := s.qq.Profile(ctx, u)
			switch {
			case err == nil:
				b.nick, b.face = p.Nick, p.Face
			case errors.Is(err, qqproto.ErrNotLoggedIn):
				s.qqFailed(ctx, err)
				return
			default:
				s.log.WithError(err).WithField("buddy", u).Debug("gateway: no profile for a buddy's nickname")
			}
		}
		switch {
		case !isContact:
			// A new buddy: ask the user to take it into the roster.
			p := presence{From: s.g.buddyJID(u), To: s.key, Type: presSubscribe, Nick: newNick(b.nick)}
			if s.send(ctx, p) != nil {
				continue // not stored, so the next import asks again
			}
			puts = append(puts, store.Contact{UIN: int64(u), Nick: b.nick, Face: b.face, Sub: store.PendingIn})
		case (b.nick != "" && b.nick != c.Nick) || b.face != c.Face:
			c.Nick, c.Face = b.nick, b.face
			puts = append(puts, c)
		}
	}
	if err := s.g.st.PutContacts(ctx, s.key, puts); err != nil {
		s.log.WithError(err).Error("gateway: cannot store imported contacts")
	}

	// Contacts the user had confirmed that QQ no longer lists were removed
	// on the QQ side. Pending ones are left to the contact flows: they may
	// be requests still waiting for an answer.
	for _, c := range contacts {
		u := qqproto.UIN(c.UIN)
		if listed[u] || c.Sub != store.Both {
			continue
		}
		s.dropContact(ctx, u)
	}
	for u, b := range s.buddies {
		if b.listed && !listed[u] {
			b.listed = false
		}
	}
	added := len(puts)
	s.needImport = false
	s.applyOnline(ctx, online)
	s.log.WithFields(logrus.Fields{"buddies": len(listed), "online": len(online), "stored": added}).Info("gateway: buddy list imported")
}

// dropContact removes a contact from the user's roster and the store.
func (s *session) dropContact(ctx context.Context, u qqproto.UIN) {
	from := s.g.buddyJID(u)
	for _, typ := range []string{presUnsubscribe, presUnsubscribed, presUnavailable} {
		s.send(ctx, presence{From: from, To: s.key, Type: typ})
	}
	if err := s.g.st.DeleteContact(ctx, s.key, int64(u)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Warn("gateway: cannot delete a contact")
	}
	delete(s.buddies, u)
}
