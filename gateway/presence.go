package gateway

import (
	"context"

	"qqxmpp/store"
)

// handlePresence serves a presence of the user to the domain or a buddy.
func (s *session) handlePresence(ctx context.Context, in inbound) error {
	typ := in.st.Type
	if in.bad != nil {
		if typ != presError && typ != presUnavailable {
			return in.bad
		}
		return nil
	}
	buddy := !in.domain
	switch typ {
	case presAvailable, presUnavailable:
		return s.resourcePresence(ctx, in)
	case presProbe:
		s.answerProbe(ctx, in)
	case presSubscribe:
		return s.userSubscribe(ctx, in)
	case presSubscribed:
		if buddy && s.reg != nil {
			return s.userSubscribed(ctx, in)
		}
	case presUnsubscribe:
		if buddy && s.reg != nil {
			return s.userUnsubscribe(ctx, in)
		}
	case presUnsubscribed:
		if buddy && s.reg != nil {
			return s.userUnsubscribed(ctx, in)
		}
	case presError:
		// An error from a resource we send to means it is gone (RFC 6121
		// 4.6.3 lets servers answer presence to a vanished resource so).
		if r := in.st.From.Resourcepart(); r != "" && s.res.forget(r) {
			s.update(ctx)
		}
	}
	return nil
}

// resourcePresence takes an available or unavailable presence of one of
// the user's resources: it may log the session in or out, change the QQ
// state, and let what waits in the queue flow.
func (s *session) resourcePresence(ctx context.Context, in inbound) error {
	available := in.st.Type == presAvailable
	if !in.domain && s.reg == nil {
		if available {
			return errRegistrationRequired
		}
		return nil
	}
	res := in.st.From.Resourcepart()
	if res == "" && !available {
		// Not about any resource: servers send one to acknowledge a
		// subscribe (Prosody) or to answer a probe; resources gone unseen
		// are swept after a reconnect.
		return nil
	}
	wasOnline := s.online()
	added := s.res.set(res, in.uin, available, in.pres, s.g.epoch.Load())
	s.update(ctx)
	if added && wasOnline && res != "" {
		s.catchUp(ctx, res) // a login would have shown it everything
	}
	if available && res != "" {
		s.clientPresence(ctx, res, in.pres.caps, added)
	}
	s.flushBacklog(ctx)
	return nil
}

// answerProbe answers the user's server's probe with the current presence
// of the domain or the buddy.
//
// A probe from the user's own JID (Prosody sends it from the full JID)
// while the session knows the user's resources is not answered: the
// server sends it when a resource comes online, and that resource has
// been shown everything directly (a login, or catchUp); an answer would
// show it all a second time.
func (s *session) answerProbe(ctx context.Context, in inbound) {
	if in.st.From.Bare().Equal(s.jid) && s.res.caughtUp(in.st.From.Resourcepart(), s.g.epoch.Load()) {
		return
	}
	to := in.st.From.String()
	if in.domain {
		s.e.domainPresence(ctx, to, s.online(), "")
		return
	}
	var sp shownPresence
	if b := s.buddies.get(in.uin); b != nil && s.online() {
		sp = s.buddies.presence(b)
	}
	s.e.buddyPresence(ctx, in.uin, to, sp)
}

// userSubscribe takes the user's request to see the domain's or a buddy's
// presence.
func (s *session) userSubscribe(ctx context.Context, in inbound) error {
	switch {
	case in.domain && s.reg != nil:
		s.e.subscription(ctx, 0, s.key, presSubscribed, "", "")
		if s.online() {
			s.e.domainPresence(ctx, s.key, true, "")
		}
	case in.domain:
		s.e.subscription(ctx, 0, s.key, presUnsubscribed, "", "")
	case s.reg == nil:
		return errRegistrationRequired
	default:
		if b := s.buddies.get(in.uin); b != nil && b.listed() {
			// Already a QQ buddy (the import asked the user about it):
			// approve at once.
			s.confirmContact(ctx, b)
			return nil
		}
		return s.addBuddy(ctx, in.uin, in.pres.status)
	}
	return nil
}

// userSubscribed takes the user's approval of a buddy's subscribe.
func (s *session) userSubscribed(ctx context.Context, in inbound) error {
	if b := s.buddies.get(in.uin); b != nil && b.listed() {
		s.markContact(ctx, b, store.Both)
		s.reshow(ctx, b) // the roster item is new: show it afresh
		return nil
	}
	return s.approveAdd(ctx, in.uin)
}

// clientPresence takes what an available presence of resource res says
// of the client: its caps (usercaps.go). A resource that asked for
// avatar notifications before and is new again (after a reconnect of the
// component, what it was sent may be lost) gets every avatar again.
func (s *session) clientPresence(ctx context.Context, res string, c capsRef, added bool) {
	if r, ok := s.res.get(res); ok && added && r.avatars && r.caps == c.key {
		s.avatarsTo(ctx, res)
	}
	s.noteCaps(ctx, res, c)
}
