package gateway

// What the user sees of the transport: the domain JID online while QQ is,
// and each buddy's presence, sent only when it changed.

import (
	"cmp"
	"context"

	"qqxmpp/qqproto"
)

// busyStatus is the status text of a busy buddy.
const busyStatus = "忙碌 / busy"

// announce sends a buddy's presence if it differs from what the user
// last saw from that JID, and its avatar and vCard4 to the resources that
// asked for notifications if they changed.
func (s *session) announce(ctx context.Context, b *buddy) {
	if !b.shows(s.buddies.presence(b)) {
		s.reshow(ctx, b)
	}
	s.syncPEP(ctx, b)
}

// reshow sends a buddy's presence even if the user should already see it
// (a new roster item, a reconnect), once to each of the user's resources.
// What the user saw is only replaced once the sends succeeded, so a
// failure leaves hideAll still knowing.
func (s *session) reshow(ctx context.Context, b *buddy) {
	want := s.buddies.presence(b)
	var err error
	for _, to := range s.res.addresses(s.key) {
		err = cmp.Or(err, s.e.buddyPresence(ctx, b.uin, to, want))
	}
	if err == nil {
		b.record(want)
	}
	s.syncPEP(ctx, b)
}

// showDomain sends the domain JID's presence if it changed: available
// while logged in to QQ, else unavailable with an optional reason.
func (s *session) showDomain(ctx context.Context, available bool, status string) {
	if available == s.shown {
		return
	}
	var err error
	for _, to := range s.res.addresses(s.key) {
		err = cmp.Or(err, s.e.domainPresence(ctx, to, available, status))
	}
	if err == nil {
		s.shown = available
	}
}

// catchUp shows a resource that just came online what the others already
// see: the domain and every available buddy.
//
// What it sends comes from the session's state, not from what the other
// resources were last sent: after an XMPP server restart, a send may have
// failed while the new resource was not there yet.
func (s *session) catchUp(ctx context.Context, res string) {
	if !s.online() {
		return
	}
	to := s.key + "/" + res
	s.e.domainPresence(ctx, to, true, "")
	for _, b := range s.sortedBuddies() {
		if sp := s.buddies.presence(b); sp.available {
			s.e.buddyPresence(ctx, b.uin, to, sp)
		}
	}
}

// hideAll makes every JID of the transport the user saw available show
// unavailable: each buddy, then the domain.
func (s *session) hideAll(ctx context.Context, reason string) {
	for _, b := range s.sortedBuddies() {
		b.setState(qqproto.StatusOffline)
		s.announce(ctx, b)
	}
	s.showDomain(ctx, false, reason)
}

// forgetShown records that the user sees nothing of the transport.
func (s *session) forgetShown() {
	s.shown = false
	for b := range s.buddies.all() {
		b.record(shownPresence{})
	}
}

// reannounce re-sends, after a reconnect of the component, everything
// the user should see: stanzas sent while it was down were lost.
func (s *session) reannounce(ctx context.Context) {
	if !s.online() {
		return
	}
	s.shown = false
	s.showDomain(ctx, true, "")
	for _, b := range s.sortedBuddies() {
		if s.buddies.presence(b).available {
			s.reshow(ctx, b) // may have been lost: send it again
			continue
		}
		s.announce(ctx, b)
	}
}

// sweepResources forgets resources the user's server did not confirm
// since the reconnect of the given epoch: they went away unseen.
func (s *session) sweepResources(ctx context.Context, epoch uint64) {
	if s.res.sweep(epoch) {
		s.log.Info("gateway: resources gone while disconnected")
		s.update(ctx)
	}
	s.g.maybeDrop(s)
}

// onBuddyState takes an MT=99 state notice.
func (s *session) onBuddyState(ctx context.Context, uin qqproto.UIN, st qqproto.Status) {
	if uin == s.uin() {
		return
	}
	b := s.buddy(uin)
	b.setState(st)
	s.announce(ctx, b)
}

// refreshStates asks Query_Stat who is online and sends what changed.
func (s *session) refreshStates(ctx context.Context) {
	online, err := s.link.qq.OnlineBuddies(ctx)
	if err != nil {
		s.qqFailed(ctx, err)
		return
	}
	s.applyOnline(ctx, online)
}

// applyOnline sets every buddy's state from an online list: those not in
// it are offline. Only changes are announced.
func (s *session) applyOnline(ctx context.Context, online []qqproto.Buddy) {
	seen := make(map[qqproto.UIN]bool, len(online))
	for _, ob := range online {
		if ob.UIN == s.uin() {
			continue
		}
		seen[ob.UIN] = true
		b := s.buddy(ob.UIN)
		b.setState(ob.Status)
		if (ob.Nick != "" && ob.Nick != s.nick(b)) || ob.Face != int(b.face) {
			s.setNick(ctx, b, firstNonEmpty(ob.Nick, s.nick(b)), ob.Face)
		}
	}
	for _, b := range s.sortedBuddies() {
		if !seen[b.uin] {
			b.setState(qqproto.StatusOffline)
		}
		s.announce(ctx, b)
	}
}

// setNick records a buddy's new nickname and face, in the store too if it
// is a contact there, and in its roster item where the gateway writes the
// roster.
func (s *session) setNick(ctx context.Context, b *buddy, nick string, face int) {
	first := s.nick(b) == ""
	s.buddies.setProfile(b, nick, face)
	if first || s.reg == nil {
		return // first sight: the import stores it
	}
	c, err := s.g.st.Contact(ctx, s.key, int64(b.uin))
	if err != nil {
		return
	}
	s.renameItem(ctx, b, c) // c still has the old nickname
	c.Nick, c.Face = nick, face
	if err := s.g.st.PutContact(ctx, s.key, c); err != nil {
		s.log.WithError(err).Warn("gateway: cannot store a buddy's new nickname")
	}
}
