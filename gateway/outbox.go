package gateway

// The outbox makes the user's messages to QQ durable: a message stanza
// that will become CLTMSG is written to the store's queue as it arrives,
// before it waits in its session's in-memory queue, and leaves the store
// only once it was handled (sent to QQ, or answered with an error). A
// message that was waiting when the process stopped or crashed is sent
// when the session next logs in, before anything newer: at least once, in
// order, never lost without the sender knowing.

import (
	"context"
	"errors"
	"sync"
	"time"

	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// outboxMeta marks queue rows whose text is a whole message stanza.
const outboxMeta = "xmpp-message"

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

// persistOutgoing writes st to the queue if it is a registered user's
// message with a body for a buddy JID, and returns its row (0 otherwise:
// anything else is answered without reaching QQ, so there is nothing to
// keep). It runs on the reader path; one SQLite insert is its cost.
func (g *Gateway) persistOutgoing(st xmppcomp.Stanza) int64 {
	if st.Name != "message" {
		return 0
	}
	switch st.Type {
	case "error", "groupchat", "headline":
		return 0
	}
	domain, uin, ok := g.target(st.To)
	if !ok || domain {
		return 0
	}
	var m inboundMessage
	if st.Decode(&m) != nil || m.body() == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Insert and mark under one lock: a replay at login that reads the new
	// row must also see that its work item is waiting, or it would send it
	// a second time.
	g.outbox.mu.Lock()
	defer g.outbox.mu.Unlock()
	id, err := g.st.Enqueue(ctx, store.Item{
		Dir: store.ToQQ, JID: st.From.Bare().String(), Peer: int64(uin), Text: string(st.Raw), Meta: outboxMeta,
	})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) { // not registered: answered as such later
			g.log.WithError(err).WithField("jid", st.From.Bare().String()).Error("gateway: cannot queue a message to QQ; it is sent unqueued")
		}
		return 0
	}
	g.outbox.addLocked(id)
	return id
}

// handleOutgoing handles a queued message stanza and then takes it out of
// the queue, unless the gateway is stopping: then it stays for the next
// start, since it may not have reached QQ.
func (s *session) handleOutgoing(ctx context.Context, st xmppcomp.Stanza, id int64) {
	s.handle(ctx, st)
	if ctx.Err() != nil {
		return
	}
	s.g.outbox.done(id)
	if err := s.g.st.Remove(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Error("gateway: cannot remove a handled message from the queue")
	}
}

// replayOutbox sends, after a login, the messages that were queued by an
// earlier run of the gateway and never handled, oldest first. Rows with a
// work item waiting in this process are left to it.
func (s *session) replayOutbox(ctx context.Context) {
	items, err := s.g.st.Pending(ctx, s.key, store.ToQQ)
	if err != nil {
		s.log.WithError(err).Error("gateway: cannot read the queue of messages to QQ")
		return
	}
	for _, it := range items {
		if s.state != stateOnline || ctx.Err() != nil {
			return // the rest waits for the next login
		}
		if it.Meta != outboxMeta || s.g.outbox.has(it.ID) {
			continue
		}
		st, err := xmppcomp.ParseStanza([]byte(it.Text))
		if err != nil {
			s.log.WithError(err).Error("gateway: dropping an unreadable queued message to QQ")
			s.g.st.Remove(ctx, it.ID)
			continue
		}
		s.log.WithField("buddy", it.Peer).Info("gateway: sending a message queued before the gateway restarted")
		s.handleOutgoing(ctx, st, it.ID)
	}
}
