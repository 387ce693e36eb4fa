package gateway

import (
	"context"
	"errors"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// handlePresence serves a presence of the user to the domain or a buddy.
func (s *session) handlePresence(ctx context.Context, st xmppcomp.Stanza) {
	var p presence
	if err := st.Decode(&p); err != nil {
		// Only the payload is unreadable; type and addresses are known.
		s.log.WithError(err).Debug("gateway: unreadable presence payload")
		p = presence{}
	}
	domain, uin, ok := s.g.target(st.To)
	if !ok {
		if st.Type != presError && st.Type != presUnavailable {
			s.replyError(ctx, st, newCondError(stanza.ItemNotFound, "%s is not a QQ contact: the part before @ must be a QQ number", st.To.Localpart()), forRequest)
		}
		return
	}
	switch st.Type {
	case presAvailable, presUnavailable:
		if !domain && s.reg == nil {
			if st.Type == presAvailable {
				s.replyError(ctx, st, errRegistrationRequired, forRequest)
			}
			return
		}
		res := st.From.Resourcepart()
		if res == "" && st.Type == presUnavailable {
			return // not about any resource (see setResource)
		}
		s.setResource(res, uin, st.Type == presAvailable, p.Show, p.priority())
		s.update(ctx)
		s.flushBacklog(ctx)
	case presProbe:
		s.answerProbe(ctx, st, domain, uin)
	case presSubscribe:
		s.userSubscribe(ctx, st, domain, uin, p)
	case presSubscribed:
		if !domain && s.reg != nil {
			s.userSubscribed(ctx, uin)
		}
	case presUnsubscribe:
		if !domain && s.reg != nil {
			s.onUserUnsubscribe(ctx, uin)
		}
	case presUnsubscribed:
		if !domain && s.reg != nil {
			s.onUserUnsubscribed(ctx, uin)
		}
	case presError:
		// An error from a resource we send to means it is gone (RFC 6121
		// 4.6.3 lets servers answer presence to a vanished resource so).
		if r := st.From.Resourcepart(); r != "" {
			if _, known := s.resources[r]; known {
				delete(s.resources, r)
				s.update(ctx)
			}
		}
	}
}

// errRegistrationRequired answers a user who talks to a buddy JID without
// having registered (XEP-0100).
var errRegistrationRequired = newCondError(stanza.RegistrationRequired,
	"Register your QQ number with this gateway first.")

// answerProbe answers the user's server's probe with the current presence
// of the domain or the buddy.
func (s *session) answerProbe(ctx context.Context, st xmppcomp.Stanza, domain bool, uin qqproto.UIN) {
	to := st.From.String()
	if domain {
		p := presence{From: s.g.dom, To: to}
		if s.state != stateOnline {
			p.Type = presUnavailable
		}
		s.send(ctx, p)
		return
	}
	b := s.buddies[uin]
	if b == nil || s.state != stateOnline {
		s.send(ctx, presence{From: s.g.buddyJID(uin), To: to, Type: presUnavailable})
		return
	}
	s.send(ctx, s.buddyPresence(b, presenceFor(b), to))
}

// userSubscribe takes the user's request to see the domain's or a buddy's
// presence.
func (s *session) userSubscribe(ctx context.Context, st xmppcomp.Stanza, domain bool, uin qqproto.UIN, p presence) {
	switch {
	case domain && s.reg != nil:
		s.send(ctx, presence{From: s.g.dom, To: s.key, Type: presSubscribed})
		if s.state == stateOnline {
			s.send(ctx, presence{From: s.g.dom, To: s.key})
		}
	case domain:
		s.send(ctx, presence{From: s.g.dom, To: s.key, Type: presUnsubscribed})
	case s.reg == nil:
		s.replyError(ctx, st, errRegistrationRequired, forRequest)
	default:
		if b := s.buddies[uin]; b != nil && b.listed {
			// Already a QQ buddy (the import asked the user about it):
			// approve at once.
			s.confirmContact(ctx, b)
			return
		}
		s.onUserSubscribe(ctx, uin, p)
	}
}

// userSubscribed takes the user's approval of a buddy's subscribe.
func (s *session) userSubscribed(ctx context.Context, uin qqproto.UIN) {
	if b := s.buddies[uin]; b != nil && b.listed {
		s.markContact(ctx, b, store.Both)
		s.reshow(ctx, b) // the roster item is new: show it afresh
		return
	}
	s.onUserSubscribed(ctx, uin)
}

// confirmContact approves the user's subscription to a listed buddy and
// shows the buddy's presence.
func (s *session) confirmContact(ctx context.Context, b *buddy) {
	s.send(ctx, presence{From: s.g.buddyJID(b.uin), To: s.key, Type: presSubscribed})
	s.markContact(ctx, b, store.Both)
	s.reshow(ctx, b)
}

// markContact records a buddy's subscription state in the store.
func (s *session) markContact(ctx context.Context, b *buddy, sub store.Subscription) {
	c, err := s.g.st.Contact(ctx, s.key, int64(b.uin))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Warn("gateway: cannot read a contact")
		return
	}
	if err == nil && c.Sub == sub && c.Nick == b.nick {
		return
	}
	c.UIN, c.Sub = int64(b.uin), sub
	if b.nick != "" {
		c.Nick, c.Face = b.nick, b.face
	}
	if err := s.g.st.PutContact(ctx, s.key, c); err != nil {
		s.log.WithError(err).Warn("gateway: cannot store a contact")
	}
}
