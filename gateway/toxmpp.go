package gateway

// QQ → XMPP. Every item of a GetMsgEx reply but state notices (which are
// presence) is written to the store's delivery queue before anything is
// sent, and its row is removed only once the XMPP server has processed the
// stanza (a barrier after the batch). A crash between fetch and delivery
// loses nothing; a re-sent stanza keeps its id, so clients deduplicate.

import (
	"context"
	"strconv"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// flushBatch is how many queued items are sent between two delivery
// barriers when a backlog is flushed.
const flushBatch = 100

// barrierTimeout bounds the wait for the XMPP server to confirm that it
// processed the stanzas sent before.
const barrierTimeout = 30 * time.Second

// deliverQQ takes one GetMsgEx batch, fetched with SEQ seq, in order:
// state notices change presence at once; everything else is queued in the
// store, in the transaction that forgets seq, then sent if the user can be
// reached. Called after every poll, even an empty one, so that what waits
// in the queue is tried again.
func (s *session) deliverQQ(ctx context.Context, seq int64, msgs []qqproto.Message) {
	if len(msgs) == 0 {
		s.flushBacklog(ctx)
		return
	}
	// The server may hold more than one reply carries: ask again at once
	// rather than after the poll interval, until it has nothing.
	now := s.g.clock.Now()
	s.link.nextMsg = now
	var items []store.Item
	for _, m := range msgs {
		if st, ok := m.State(); ok {
			s.onBuddyState(ctx, m.From, st)
			continue
		}
		if !deliverable(m) {
			s.log.WithField("mt", int(m.Type)).WithField("from", int64(m.From)).Debug("gateway: dropping an empty or unaddressed QQ item")
			continue
		}
		for _, text := range splitForXMPP(m.Text) {
			items = append(items, store.Item{Dir: store.ToXMPP, JID: s.key, Peer: int64(m.From), Text: text, Received: now, MsgType: int(m.Type)})
		}
	}
	ids, err := s.g.st.EnqueueFetched(ctx, s.key, seq, items)
	if err != nil {
		// Without the store the items cannot be kept; QQ has let go of
		// them, so sending them now is still better than dropping them.
		s.log.WithError(err).Error("gateway: cannot queue QQ messages; delivering them unqueued")
		s.deliverUnqueued(ctx, items)
		return
	}
	if len(items) == 0 {
		return
	}
	for i := range items {
		items[i].ID = ids[i]
	}
	switch {
	case !s.reachable():
		s.drained = false // they wait for the user's next presence
	case !s.drained:
		s.flushQueue(ctx, ids[0]) // older items first; the new ones are among them
	default:
		s.deliverItems(ctx, items, ids[0])
	}
}

// maxXMPPText bounds the text of one stanza to the user. Escaped for XML
// (at most 5 bytes a byte: "&amp;", "&#xA;") it stays far below the 1 MB
// an XMPP server takes from a component (Prosody closes the stream on a
// bigger stanza, and a queued message that cannot be sent would be sent
// again at every reconnect).
const maxXMPPText = 64 << 10

// splitForXMPP cuts a long QQ text into parts of at most maxXMPPText bytes,
// never inside a character; each is queued and sent in order.
func splitForXMPP(text string) []string {
	if len(text) <= maxXMPPText {
		return []string{text}
	}
	parts, err := SplitText(text, maxXMPPText)
	if err != nil { // only for a size below utf8.UTFMax
		return []string{text}
	}
	return parts
}

// deliverable reports whether a GetMsgEx item can become a stanza: it needs
// a sender a JID can name, and text unless it is a step of a contact flow.
func deliverable(m qqproto.Message) bool {
	if m.From <= 0 {
		return false
	}
	switch m.Type {
	case qqproto.MsgAddRequest, qqproto.MsgAddAccepted, qqproto.MsgAddRefused:
		return true
	}
	return m.Text != ""
}

// reachable reports whether the user has a resource the XMPP server has
// confirmed since the component last connected. Only then are queued items
// sent: while the user is offline they wait in the gateway's queue, not in
// the server's offline storage, because servers do not keep the order
// between messages they stored and later ones delivered live (ejabberd
// interleaves them). After a reconnect the server's answer to the
// gateway's probe, or the user's next presence, confirms the resources.
func (s *session) reachable() bool { return s.res.confirmedIn(s.g.epoch.Load()) }

// flushBacklog sends what waits in the queue, if anything may and the user
// can be reached. It runs after every presence of the user and every poll.
func (s *session) flushBacklog(ctx context.Context) {
	if s.drained || s.reg == nil || !s.reachable() {
		return
	}
	s.flushQueue(ctx, 0)
}

// flushQueue sends what the store holds for the user, oldest first. Items
// from freshFrom on were fetched by the poll now running and go without a
// delay stamp; 0 means none are fresh.
func (s *session) flushQueue(ctx context.Context, freshFrom int64) {
	s.retryRemovals(ctx)
	items, err := s.g.st.Pending(ctx, s.key, store.ToXMPP)
	if err != nil {
		s.log.WithError(err).Error("gateway: cannot read the delivery queue")
		return
	}
	items = s.withoutUnremoved(items)
	for len(items) > 0 {
		n := min(len(items), flushBatch)
		if !s.deliverItems(ctx, items[:n], freshFrom) {
			return
		}
		items = items[n:]
	}
	s.drained = true
}

// deliverItems sends queued items in order and removes them from the queue
// once the server confirmed them. It stops at the first that cannot be
// sent (the component is disconnected): that one and the rest stay queued
// for the next connect. It reports whether all were delivered.
func (s *session) deliverItems(ctx context.Context, items []store.Item, freshFrom int64) bool {
	sent := 0
	for _, it := range items {
		stale := freshFrom == 0 || it.ID < freshFrom
		if err := s.deliverItem(ctx, it, stale); err != nil {
			break
		}
		sent++
	}
	ok := sent == len(items)
	if sent > 0 {
		// What was sent is confirmed and removed even when the gateway is
		// stopping (the component stays connected until the gateway's
		// shutdown is over): otherwise the next start sends it again.
		ctx := context.WithoutCancel(ctx)
		bctx, cancel := context.WithTimeout(ctx, barrierTimeout)
		err := s.e.barrier(bctx, s.jid)
		cancel()
		if err != nil {
			// Sent but not known to have arrived: keep them queued. The
			// next connect sends them again, which may show one twice,
			// but never loses one.
			s.log.WithError(err).Warn("gateway: XMPP server did not confirm delivery; messages stay queued")
			s.g.cfg.Metrics.failedMsg(store.ToXMPP, "unconfirmed", countMessages(items[:sent]))
			s.drained = false
			return false
		}
		s.confirmed(items[:sent])
		ids := make([]int64, sent)
		for i, it := range items[:sent] {
			ids[i] = it.ID
		}
		if _, err := s.g.st.RemoveBatch(ctx, ids); err != nil {
			s.log.WithError(err).Error("gateway: cannot remove delivered messages from the queue; they will not be sent again")
			s.noteUnremoved(ids)
			ok = false
		}
	}
	if !ok {
		s.drained = false
	}
	return ok
}

// noteUnremoved remembers delivered rows the store could not remove, so
// that the next flush neither sends them again nor forgets them.
func (s *session) noteUnremoved(ids []int64) {
	if s.unremoved == nil {
		s.unremoved = map[int64]bool{}
	}
	for _, id := range ids {
		s.unremoved[id] = true
	}
}

// retryRemovals removes the delivered rows a failed removal left.
func (s *session) retryRemovals(ctx context.Context) {
	if len(s.unremoved) == 0 {
		return
	}
	ids := make([]int64, 0, len(s.unremoved))
	for id := range s.unremoved {
		ids = append(ids, id)
	}
	if _, err := s.g.st.RemoveBatch(ctx, ids); err == nil {
		s.unremoved = nil
	}
}

// withoutUnremoved drops from items the rows already delivered.
func (s *session) withoutUnremoved(items []store.Item) []store.Item {
	if len(s.unremoved) == 0 {
		return items
	}
	kept := items[:0]
	for _, it := range items {
		if !s.unremoved[it.ID] {
			kept = append(kept, it)
		}
	}
	return kept
}

// confirmed counts the messages among items the server confirmed.
func (s *session) confirmed(items []store.Item) {
	now := s.g.clock.Now()
	for _, it := range items {
		if isMessage(it) {
			s.g.cfg.Metrics.relayedMsg(store.ToXMPP, now.Sub(it.Received))
		}
	}
}

// deliverUnqueued sends items the store could not keep: what cannot be
// sent now is lost.
func (s *session) deliverUnqueued(ctx context.Context, items []store.Item) {
	for _, it := range items {
		err := s.deliverItem(ctx, it, false)
		switch {
		case !isMessage(it):
		case err != nil:
			s.g.cfg.Metrics.failedMsg(store.ToXMPP, "lost", 1)
		default:
			s.g.cfg.Metrics.relayedMsg(store.ToXMPP, s.g.clock.Now().Sub(it.Received))
		}
	}
}

func countMessages(items []store.Item) int {
	n := 0
	for _, it := range items {
		if isMessage(it) {
			n++
		}
	}
	return n
}

// deliverItem sends one QQ item as a stanza: a chat message from a buddy's
// JID, a notice from the domain, or a step of a contact flow. A stale item
// is stamped with the time it was fetched. It fails only when the stanza
// could not be sent.
func (s *session) deliverItem(ctx context.Context, it store.Item, stale bool) error {
	from := qqproto.UIN(it.Peer)
	m := qqMessage{from: from, typ: "normal", text: it.Text}
	if it.ID > 0 {
		m.id = "qq-" + strconv.FormatInt(it.ID, 10) // stable across re-sends
	}
	if stale {
		m.delayed = it.Received
	}
	if from == qqproto.SystemUIN {
		m.from = 0 // the server's own notices come from the domain
		return s.e.message(ctx, s.key, m)
	}
	switch qqproto.MessageType(it.MsgType) {
	case qqproto.MsgBuddy:
		s.markActive()
		m.typ = "chat"
	case qqproto.MsgAddRequest:
		return s.addRequested(ctx, from, it.Text)
	case qqproto.MsgAddAccepted:
		return s.addAccepted(ctx, from)
	case qqproto.MsgAddRefused:
		return s.addRefused(ctx, from, it.Text)
	}
	return s.e.message(ctx, s.key, m)
}
