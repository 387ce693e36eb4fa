package gateway

// XMPP → QQ. The door (door.go) wrote the user's message to the store's
// outbox, with the SEQ of its CLTMSG, before it waited in the session's
// queue; here it is sent, split if it is longer than one request may
// carry, answered with a receipt or an error, and then leaves the outbox.
// Every attempt — a retry after lost replies, after a re-login, after a
// restart — repeats the stored SEQ, so the server answers a repeat from its
// memory: exactly once, never lost without the sender knowing.

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// outboxGiveUp is how long a message whose CLTMSG replies were all lost
// is retried with its SEQ. It stays below the server's memory of replies
// (5 minutes, see the spec's "Sequence numbers"): a repeat later than that
// could deliver it a second time.
const outboxGiveUp = 4 * time.Minute

// storeRetry is the pause before a message whose SEQs could not be stored
// is tried again.
const storeRetry = 5 * time.Second

// outboxRetryMax caps the pause between two background retries.
const outboxRetryMax = time.Minute

// sendOutgoing sends a user's message to QQ and confirms it with a
// receipt if asked (XEP-0184); its error becomes the error reply. A
// message QQ may have taken (every reply lost) is kept and retried in the
// background with the same SEQ, and answered only when it went through or
// was given up on.
func (s *session) sendOutgoing(ctx context.Context, in inbound) error {
	m := in.msg
	switch {
	case s.reg == nil:
		return errRegistrationRequired
	case !s.online() && s.waitsForLogin(ctx, m):
		m.retrying = true // it goes at the login, moments away (lease.go)
		return nil
	case !s.online():
		return errNotOnline(s.link.state, "the message was not sent.")
	}
	s.markActive()
	chunks, err := SplitText(m.text, s.g.cfg.MaxMessageBytes)
	if err != nil { // only for a bad configuration, which validate rules out
		return err
	}
	if m.seq == 0 { // a row from before schema 5: choose its SEQ now, on disk first
		if err := s.newSeqs(ctx, m, len(chunks)); err != nil {
			return err
		}
	}
	for i, c := range chunks {
		err := s.sendPart(ctx, m, i, len(chunks), c)
		if err != nil {
			s.log.WithError(err).WithField("buddy", int64(m.to)).Warn("gateway: message to QQ failed")
			return s.outgoingFailed(ctx, m, err, i, len(chunks))
		}
	}
	s.g.cfg.Metrics.relayedMsg(store.ToQQ, s.g.clock.Now().Sub(m.at))
	if m.wantsReceipt {
		s.e.receipt(ctx, in.st.To.String(), in.st.From.String(), m.typ, m.id)
	}
	return nil
}

// sendPart sends part i of n of m with its SEQ. A server that lost the
// session refused the request without carrying it out, and may remember
// that refusal under the SEQ: after the re-login the rest of the message
// goes with fresh SEQs, stored before they are used.
func (s *session) sendPart(ctx context.Context, m *outgoing, i, n int, text string) error {
	err := s.link.qq.SendMessage(ctx, m.seq+int64(i), m.to, text)
	if !errors.Is(err, ErrSessionLost) {
		return err
	}
	s.relogin(ctx)
	if !s.online() {
		return err
	}
	old := m.seq
	if err := s.newSeqs(ctx, m, n); err != nil {
		m.seq = old
		return err
	}
	return s.link.qq.SendMessage(ctx, m.seq+int64(i), m.to, text)
}

// newSeqs chooses n SEQs for m and stores the first with its outbox row
// before any is used.
func (s *session) newSeqs(ctx context.Context, m *outgoing, n int) error {
	seq := s.g.seqs.Reserve(n)
	if m.queueID != 0 {
		if err := s.g.st.SetSeq(ctx, m.queueID, seq); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.WithError(err).Error("gateway: cannot store the SEQ of a message to QQ")
			return errCannotStore
		}
	}
	m.seq = seq
	return nil
}

// keepForRetry leaves m in the outbox and has the session send it again
// at t (or earlier, with others kept).
func (s *session) keepForRetry(m *outgoing, t time.Time) {
	m.retrying = true
	s.link.retryOutboxAt(t)
	s.g.sched.scheduleEarlier(s.task, s.link.outboxRetry)
}

// outgoingFailed decides what a failed send of m becomes. When QQ may
// have taken it (no reply at all), the row stays in the outbox and is
// retried with the same SEQ, quietly, until outboxGiveUp has passed since
// the first such failure; then it goes to the dead letters and the user
// hears that it may have been delivered. Anything else is answered now.
func (s *session) outgoingFailed(ctx context.Context, m *outgoing, err error, sent, total int) error {
	if errors.Is(err, errCannotStore) && m.queueID != 0 && ctx.Err() == nil {
		// The SEQs a re-login calls for could not be stored (disk full).
		// A refusal could not be noted either, and the row would be sent
		// after a restart although the sender heard it failed: it waits
		// in the outbox for the store to take writes again.
		s.keepForRetry(m, s.g.clock.Now().Add(storeRetry))
		s.log.WithField("buddy", int64(m.to)).Warn("gateway: the store takes no writes; the message to QQ waits in the outbox")
		return nil
	}
	// A lost session refused the request without carrying it out; but
	// when an earlier attempt may have reached QQ, a refusal now could be
	// wrong, and would go to a resource the sender may have left: that
	// message too is kept and retried with its SEQ.
	transient := errors.As(err, new(*UnreachableError)) || (m.tried && errors.Is(err, ErrSessionLost))
	if !transient || m.queueID == 0 || ctx.Err() != nil {
		return partialError(err, sent, total)
	}
	now := s.g.clock.Now()
	first, attempts, serr := s.g.st.MarkTried(ctx, m.queueID, now)
	if serr != nil {
		s.log.WithError(serr).Error("gateway: cannot note a failed message to QQ")
		return partialError(err, sent, total)
	}
	if now.Sub(first) < outboxGiveUp {
		wait := min(5*time.Second<<min(attempts-1, 8), outboxRetryMax)
		s.keepForRetry(m, now.Add(wait))
		s.log.WithField("buddy", int64(m.to)).WithField("retry_in", wait).Info("gateway: QQ did not answer; the message is kept and sent again with the same SEQ")
		return nil
	}
	reason := "QQ did not confirm it for " + now.Sub(first).Round(time.Second).String()
	if derr := s.g.st.MoveToDeadLetter(ctx, m.queueID, reason); derr != nil {
		s.log.WithError(derr).Error("gateway: cannot move a message to QQ to the dead letters")
	} else {
		m.buried = true
	}
	s.log.WithField("buddy", int64(m.to)).WithField("id", m.queueID).Warn("gateway: giving up on a message to QQ; it may have been delivered")
	return partialError(errMaybeDelivered(now.Sub(first)), sent, total)
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

// doneOutgoing takes a served message out of the outbox. The row is marked
// handled in memory at once, so that this process never sends it again,
// and removed from disk in the background: the session goes on to its next
// message without waiting for that commit, which would bound a user's
// rate. Should the process die before the removal, the next start sends
// the message again with its SEQ, which QQ answers from its memory. A
// message kept for a retry, or one the gateway is stopping under, stays on
// disk.
func (s *session) doneOutgoing(ctx context.Context, m *outgoing) {
	switch {
	case m.queueID == 0:
		return
	case ctx.Err() != nil:
		return // stopping: it may not have reached QQ; the next start sends it with its SEQ
	case m.retrying, m.buried:
		s.g.outbox.done(m.queueID)
		return
	}
	id, log := m.queueID, s.log
	s.g.outbox.handled(id)
	s.g.removals.Go(func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
		defer cancel()
		if err := s.g.st.Remove(rctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			log.WithError(err).Error("gateway: cannot remove a handled message from the queue; this process will not send it again")
			return
		}
		s.g.outbox.done(id)
	})
}

// removeTimeout bounds the removal of a handled message from the outbox.
const removeTimeout = 30 * time.Second

// replayOutbox sends what waits in the outbox with no work item of this
// process behind it, oldest first: messages an earlier run of the gateway
// queued and never handled, and messages kept for a retry. Rows handled
// whose removal failed are removed now instead.
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
		switch state := s.g.outbox.state(it.ID); state {
		case rowHandled:
			if err := s.g.st.Remove(ctx, it.ID); err == nil || errors.Is(err, store.ErrNotFound) {
				s.g.outbox.done(it.ID)
			}
			continue
		case rowWaiting:
			continue
		}
		in, ok := s.queuedInbound(it)
		if !ok {
			s.log.WithField("buddy", it.Peer).Error("gateway: moving an unreadable queued message to QQ to the dead letters")
			s.g.cfg.Metrics.failedMsg(store.ToQQ, "unreadable", 1)
			s.g.st.MoveToDeadLetter(ctx, it.ID, "unreadable")
			continue
		}
		s.log.WithField("buddy", it.Peer).WithField("attempts", it.Attempts).Info("gateway: sending a queued message to QQ")
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
		in.msg.queueID, in.msg.at, in.msg.seq = it.ID, it.Received, it.Seq
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
		msg: &outgoing{queueID: it.ID, seq: it.Seq, to: qqproto.UIN(it.Peer), text: it.Text, id: it.StanzaID,
			typ: it.StanzaType, wantsReceipt: it.WantsReceipt, at: it.Received, tried: it.Attempts > 0},
	}, true
}

// rowState is what this process knows of an outbox row.
type rowState int

const (
	rowFree    rowState = iota // no work of this process behind it
	rowWaiting                 // a work item for it waits in a session queue
	rowHandled                 // served, but its removal from disk failed
)

// outbox remembers which queued rows have a work item waiting in this
// process, and which were served but could not be removed, so that the
// replay at login sends neither a second time.
type outbox struct {
	mu   sync.Mutex
	rows map[int64]rowState
}

// addLocked marks row id as having a work item waiting; o.mu is held.
func (o *outbox) addLocked(id int64) {
	if o.rows == nil {
		o.rows = map[int64]rowState{}
	}
	o.rows[id] = rowWaiting
}

// done forgets row id: it is off the disk, or free to be sent again.
func (o *outbox) done(id int64) {
	o.mu.Lock()
	delete(o.rows, id)
	o.mu.Unlock()
}

// handled marks row id as served though still on disk.
func (o *outbox) handled(id int64) {
	o.mu.Lock()
	o.addLocked(id)
	o.rows[id] = rowHandled
	o.mu.Unlock()
}

func (o *outbox) state(id int64) rowState {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rows[id]
}
