package gateway

// XMPP → QQ. The door (door.go) wrote the user's message to the store's
// outbox before it waited in the session's queue; here it is sent as
// CLTMSG, split if it is longer than one request may carry, answered with
// a receipt or an error, and then leaves the outbox. A message that was
// waiting when the process stopped is sent at the next login, before
// anything newer: at least once, in order, never lost without the sender
// knowing.

import (
	"context"

	"errors"
	"strconv"
	"sync"

	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// sendOutgoing sends a user's message to QQ and confirms it with a
// receipt if asked (XEP-0184); its error becomes the error reply.
func (s *session) sendOutgoing(ctx context.Context, in inbound) error {
	m := in.msg
	switch {
	case s.reg == nil:
		return errRegistrationRequired
	case !s.online():
		return errNotOnline(s.link.state, "the message was not sent.")
	}
	s.markActive()
	chunks, err := SplitText(m.text, s.g.cfg.MaxMessageBytes)
	if err != nil { // only for a bad configuration, which validate rules out
		return err
	}
	for i, c := range chunks {
		err := s.withRelogin(ctx, func(qq QQ) error { return qq.SendMessage(ctx, m.to, c) })
		if err != nil {
			s.log.WithError(err).WithField("buddy", int64(m.to)).Warn("gateway: message to QQ failed")
			return partialError(err, i, len(chunks))
		}
	}
	s.g.cfg.Metrics.relayedMsg(store.ToQQ, s.g.clock.Now().Sub(m.at))
	if m.wantsReceipt {
		s.e.receipt(ctx, in.st.To.String(), in.st.From.String(), m.typ, m.id)
	}
	return nil
}

// partialError names how much of a long message reached QQ before err.
func partialError(err error, sent, total int) error {
	if sent == 0 {
		return err
	}
	se := stanzaError(err, forRequest)
	return &userError{cond: se.Condition, err: err, text: "Only the first " + strconv.Itoa(sent) + " of " + strconv.Itoa(total) +
		" parts of this long message reached QQ: " + se.Text[""]}
}

// doneOutgoing takes a served message out of the outbox, unless the
// gateway is stopping: then it stays for the next start, since it may not
// have reached QQ.
func (s *session) doneOutgoing(ctx context.Context, m *outgoing) {
	if m.queueID == 0 || ctx.Err() != nil {
		return
	}
	s.g.outbox.done(m.queueID)
	if err := s.g.st.Remove(ctx, m.queueID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Error("gateway: cannot remove a handled message from the queue")
	}
}

// replayOutbox sends, after a login, the messages an earlier run of the
// gateway queued and never handled, oldest first. Rows with a work item
// waiting in this process are left to it.
func (s *session) replayOutbox(ctx context.Context) {
	items, err := s.g.st.Pending(ctx, s.key, store.ToQQ)
	if err != nil {
		s.log.WithError(err).Error("gateway: cannot read the queue of messages to QQ")
		return
	}
	for _, it := range items {
		if !s.online() || ctx.Err() != nil {
			return // the rest waits for the next login
		}
		if s.g.outbox.has(it.ID) {
			continue
		}
		in, ok := s.queuedInbound(it)
		if !ok {
			s.log.WithField("buddy", it.Peer).Error("gateway: dropping an unreadable queued message to QQ")
			s.g.cfg.Metrics.failedMsg(store.ToQQ, "unreadable", 1)
			s.g.st.Remove(ctx, it.ID)
			continue
		}
		s.log.WithField("buddy", it.Peer).Info("gateway: sending a message queued before the gateway restarted")
		s.serve(ctx, in)
	}
}

// queuedInbound rebuilds a queued message as the door read it.
func (s *session) queuedInbound(it store.Item) (inbound, bool) {
	if it.RawStanza { // written before schema 3: the whole stanza
		st, err := xmppcomp.ParseStanza([]byte(it.Text))
		if err != nil {
			return inbound{}, false
		}
		in := s.g.read(st)
		if in.msg == nil {
			return inbound{}, false
		}
		in.msg.queueID, in.msg.at = it.ID, it.Received
		return in, true
	}
	from, err := jid.New(s.jid.Localpart(), s.jid.Domainpart(), it.Resource)
	if err != nil {
		return inbound{}, false
	}
	to := jid.MustParse(s.e.buddyJID(qqproto.UIN(it.Peer)))
	return inbound{
		st:  xmppcomp.Stanza{Name: "message", ID: it.StanzaID, Type: it.StanzaType, From: from, To: to},
		uin: qqproto.UIN(it.Peer),
		msg: &outgoing{queueID: it.ID, to: qqproto.UIN(it.Peer), text: it.Text, id: it.StanzaID,
			typ: it.StanzaType, wantsReceipt: it.WantsReceipt, at: it.Received},
	}, true
}

// outbox remembers which queued rows have a work item waiting in this
// process, so that the replay at login does not send them a second time.
type outbox struct {
	mu      sync.Mutex
	pending map[int64]struct{}
}

// addLocked marks row id as having a work item waiting; o.mu is held.
func (o *outbox) addLocked(id int64) {
	if o.pending == nil {
		o.pending = map[int64]struct{}{}
	}
	o.pending[id] = struct{}{}
}

func (o *outbox) done(id int64) {
	o.mu.Lock()
	delete(o.pending, id)
	o.mu.Unlock()
}

func (o *outbox) has(id int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.pending[id]
	return ok
}
