package gateway

// Messages both ways. QQ → XMPP is durable: every item of a GetMsgEx reply
// (but state notices, which are presence) is written to the store's
// delivery queue before anything is sent, and its row is removed only once
// the XMPP server has processed the stanza. XMPP → QQ runs on the user's
// session queue, so a user's messages leave in the order they came.

import (
	"context"
	crand "crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// gatewayFlow is the state of the message flows shared by all sessions.
// The zero value is ready to use.
type gatewayFlow struct {
	avatars Avatars
	vcards  profileCache
}

// sessionFlow is a session's state of the message flows; touched only by
// the session's own work items.
type sessionFlow struct {
	// drained is true while every QQ → XMPP item this user has in the
	// store was delivered. It starts false, so that a new session (after a
	// restart, say) sends what the store still holds before anything new.
	drained bool
}

// flushBatch is how many queued items are sent between two delivery
// confirmations when a backlog is flushed.
const flushBatch = 100

// confirmTimeout bounds the wait for the XMPP server to confirm that it
// processed the stanzas sent before (see confirmDelivery).
const confirmTimeout = 30 * time.Second

// queueMeta is the Meta of a queued item: the message type it came as.
func queueMeta(t qqproto.MessageType) string { return "mt=" + strconv.Itoa(int(t)) }

// queueType reads a queued item's Meta back; an unreadable one is taken
// for a buddy message, the common case, so that the text is not lost.
func queueType(meta string) qqproto.MessageType {
	n, err := strconv.Atoi(strings.TrimPrefix(meta, "mt="))
	if err != nil {
		return qqproto.MsgBuddy
	}
	return qqproto.MessageType(n)
}

// deliverQQ takes one GetMsgEx batch, in order: state notices change
// presence at once; everything else is queued in the store, then sent if
// the user can be reached. Called after every poll, even an empty one, so
// that what waits in the queue is tried again.
func (s *session) deliverQQ(ctx context.Context, msgs []qqproto.Message) {
	if len(msgs) == 0 {
		s.flushBacklog(ctx)
		return
	}
	// The server may hold more than one reply carries: ask again at once
	// rather than after the poll interval, until it has nothing.
	now := time.Now()
	s.nextMsg = now
	var items []store.Item
	var kept []qqproto.Message
	for _, m := range msgs {
		if st, ok := m.State(); ok {
			s.onBuddyState(ctx, m.From, st)
			continue
		}
		if !deliverable(m) {
			s.log.WithField("mt", int(m.Type)).WithField("from", int64(m.From)).Debug("gateway: dropping an empty or unaddressed QQ item")
			continue
		}
		kept = append(kept, m)
		items = append(items, store.Item{Dir: store.ToXMPP, JID: s.key, Peer: int64(m.From), Text: m.Text, Received: now, Meta: queueMeta(m.Type)})
	}
	if len(items) == 0 {
		return
	}
	ids, err := s.g.st.EnqueueBatch(ctx, items)
	if err != nil {
		// Without the store the items cannot be kept; sending them now
		// is still better than dropping them.
		s.log.WithError(err).Error("gateway: cannot queue QQ messages; delivering them unqueued")
		for _, m := range kept {
			s.deliverEvent(ctx, m, 0, nil)
		}
		return
	}
	fresh := make(map[int64]bool, len(ids))
	for i := range items {
		items[i].ID = ids[i]
		fresh[ids[i]] = true
	}
	switch {
	case !s.reachable():
		s.flow.drained = false // they wait for the user's next presence
	case !s.flow.drained:
		s.flushQueue(ctx, fresh) // older items first; the new ones are among them
	default:
		s.deliverItems(ctx, items, fresh)
	}
}

// reachable reports whether the user has a resource the XMPP server has
// confirmed since the component last connected. Only then are queued items
// sent: while the user is offline they wait in the gateway's queue, not in
// the server's offline storage, because servers do not keep the order
// between messages they stored and later ones delivered live (ejabberd
// interleaves them). After a reconnect the server's answer to the
// gateway's probe, or the user's next presence, confirms the resources.
func (s *session) reachable() bool {
	epoch := s.g.epoch.Load()
	for _, r := range s.resources {
		if r.epoch == epoch {
			return true
		}
	}
	return false
}

// flushBacklog sends what waits in the queue, if anything may and the user
// can be reached. It runs after every presence of the user and every poll.
func (s *session) flushBacklog(ctx context.Context) {
	if s.flow.drained || s.reg == nil || !s.reachable() {
		return
	}
	s.flushQueue(ctx, nil)
}

// deliverable reports whether a GetMsgEx item can become a stanza: it needs
// a sender a JID can name, and a buddy's message needs text.
func deliverable(m qqproto.Message) bool {
	if m.From <= 0 {
		return false
	}
	switch m.Type {
	case qqproto.MsgBuddy, qqproto.MsgSystem:
		return m.Text != ""
	}
	return true
}

// flushQueue sends what the store holds for the user, oldest first. Items
// fetched by an earlier poll get a delay stamp; fresh ones, fetched by the
// poll now running, do not.
func (s *session) flushQueue(ctx context.Context, fresh map[int64]bool) {
	items, err := s.g.st.Pending(ctx, s.key, store.ToXMPP)
	if err != nil {
		s.log.WithError(err).Error("gateway: cannot read the delivery queue")
		return
	}
	for len(items) > 0 {
		n := min(len(items), flushBatch)
		if !s.deliverItems(ctx, items[:n], fresh) {
			return
		}
		items = items[n:]
	}
	s.flow.drained = true
}

// deliverItems sends queued items in order and removes them from the queue
// once the server confirmed them. It stops at the first that cannot be
// sent (the component is disconnected): that one and the rest stay queued
// for the next connect. Items not in fresh were fetched by an earlier poll
// and get a delay stamp. It reports whether all were delivered.
func (s *session) deliverItems(ctx context.Context, items []store.Item, fresh map[int64]bool) bool {
	sent := 0
	for _, it := range items {
		var d *Delay
		if !fresh[it.ID] {
			d = NewDelay(s.g.dom, it.Received)
		}
		m := qqproto.Message{Type: queueType(it.Meta), From: qqproto.UIN(it.Peer), Text: it.Text}
		if err := s.deliverEvent(ctx, m, it.ID, d); err != nil {
			break
		}
		sent++
	}
	ok := sent == len(items)
	if sent > 0 {
		if err := s.confirmDelivery(ctx); err != nil {
			// Sent but not known to have arrived: keep them queued. The
			// next connect sends them again, which may show one twice,
			// but never loses one.
			s.log.WithError(err).Warn("gateway: XMPP server did not confirm delivery; messages stay queued")
			s.flow.drained = false
			return false
		}
		ids := make([]int64, sent)
		for i, it := range items[:sent] {
			ids[i] = it.ID
		}
		if _, err := s.g.st.RemoveBatch(ctx, ids); err != nil {
			s.log.WithError(err).Error("gateway: cannot remove delivered messages from the queue")
			ok = false
		}
	}
	if !ok {
		s.flow.drained = false
	}
	return ok
}

// deliverEvent sends one QQ item as a stanza: a message from a buddy's JID,
// a notice from the domain, or a step of a contact flow. id is its queue
// row (0 if unqueued); d, when not nil, stamps it as delayed. It returns an
// error only when the stanza could not be sent.
func (s *session) deliverEvent(ctx context.Context, m qqproto.Message, id int64, d *Delay) error {
	var extra []any
	if d != nil {
		extra = append(extra, d)
	}
	msgID := ""
	if id > 0 {
		// Stable across re-sends, so a re-sent message can be recognised.
		msgID = "qq-" + strconv.FormatInt(id, 10)
	}
	switch {
	case m.From == qqproto.SystemUIN || (m.Type != qqproto.MsgBuddy && m.Type != qqproto.MsgAddRequest &&
		m.Type != qqproto.MsgAddAccepted && m.Type != qqproto.MsgAddRefused && m.Type != qqproto.MsgSystem):
		if m.Text == "" {
			return nil
		}
		from := s.g.dom
		if m.From != qqproto.SystemUIN {
			from = s.g.buddyJID(m.From) // a type this gateway does not know: still the buddy's
		}
		return s.send(ctx, message{From: from, To: s.key, ID: msgID, Type: "normal", Body: m.Text, Extra: extra})
	case m.Type == qqproto.MsgBuddy:
		s.markActive()
		return s.send(ctx, message{From: s.g.buddyJID(m.From), To: s.key, ID: msgID, Type: "chat", Body: m.Text, Extra: extra})
	case m.Type == qqproto.MsgAddRequest:
		return s.addRequested(ctx, m)
	case m.Type == qqproto.MsgAddAccepted:
		return s.addAccepted(ctx, m)
	case m.Type == qqproto.MsgAddRefused:
		return s.addRefused(ctx, m)
	}
	// MT=99 from a buddy that is no state code: show it as it came.
	return s.send(ctx, message{From: s.g.buddyJID(m.From), To: s.key, ID: msgID, Type: "normal", Body: m.Text, Extra: extra})
}

// The hooks the core's handleQQMessage calls for unqueued items.

// onBuddyMessage takes MT=9: a chat message from the buddy's JID.
func (s *session) onBuddyMessage(ctx context.Context, m qqproto.Message) {
	s.deliverEvent(ctx, m, 0, nil)
}

// onSystemNotice takes a notice: a message from the domain JID.
func (s *session) onSystemNotice(ctx context.Context, m qqproto.Message) {
	s.deliverEvent(ctx, m, 0, nil)
}

// iqSender is what confirmDelivery needs of the Sender: *xmppcomp.Component
// has it; a Sender without it (a test recorder) is taken at its word.
type iqSender interface {
	SendIQ(ctx context.Context, r xml.TokenReader) (xmppcomp.Stanza, error)
}

// pingPayload is XEP-0199's <ping/>.
type pingPayload struct {
	XMLName xml.Name `xml:"urn:xmpp:ping ping"`
}

// confirmDelivery returns once the XMPP server has processed every stanza
// sent to the user before it. A write that returned only means the bytes
// are in the socket; a server stopping now would drop them. So the gateway
// pings the user's server: it handles a stream's stanzas in order, so its
// answer (a result, or an error if it does not do pings) comes after it
// routed all of them to the user or to offline storage.
func (s *session) confirmDelivery(ctx context.Context) error {
	p := s.g.out.Load()
	if p == nil {
		return xmppcomp.ErrNotConnected
	}
	is, ok := (*p).(iqSender)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	b, err := xml.Marshal(iq{From: s.g.dom, To: s.jid.Domain().String(), ID: "confirm-" + crand.Text()[:12], Type: "get", Payload: pingPayload{}})
	if err != nil {
		return fmt.Errorf("confirm delivery: %w", err)
	}
	if _, err := is.SendIQ(ctx, xml.NewDecoder(strings.NewReader(string(b)))); err != nil {
		return fmt.Errorf("confirm delivery to %s: %w", s.key, err)
	}
	return nil
}

// ---- XMPP → QQ ----

// inboundMessage is what the gateway reads of a user's message.
type inboundMessage struct {
	XMLName xml.Name        `xml:"message"`
	Lang    string          `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Bodies  []inboundBody   `xml:"body"`
	Request *ReceiptRequest `xml:"urn:xmpp:receipts request"`
}

type inboundBody struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Text string `xml:",chardata"`
}

// body picks the message's text: the body without a language of its own
// or in the message's language, else the first (RFC 6121 5.2.3 allows one
// per language).
func (m inboundMessage) body() string {
	for _, b := range m.Bodies {
		if b.Lang == "" || b.Lang == m.Lang {
			return b.Text
		}
	}
	if len(m.Bodies) > 0 {
		return m.Bodies[0].Text
	}
	return ""
}

// handleMessage takes a message of the user to the domain or a buddy JID:
// the body of a chat or normal message goes to QQ as CLTMSG, split if it
// is longer than one request may carry; a failure comes back as a message
// error, success with a receipt if the sender asked for one (XEP-0184).
// A message without a body (chat states alone) sends nothing.
func (s *session) handleMessage(ctx context.Context, st xmppcomp.Stanza) {
	if st.Type == "error" {
		return
	}
	domain, uin, ok := s.g.target(st.To)
	switch {
	case !ok:
		s.replyError(ctx, st, newCondError(stanza.ItemNotFound, "%s is not a QQ contact: the part before @ must be a QQ number", st.To.Localpart()), forRequest)
		return
	case domain:
		s.replyError(ctx, st, newCondError(stanza.ServiceUnavailable, "The gateway takes no messages; write to 12345@%s to reach QQ number 12345.", s.g.dom), forRequest)
		return
	case st.Type == "groupchat":
		s.replyError(ctx, st, newCondError(stanza.FeatureNotImplemented, "QQ has no group chat here."), forRequest)
		return
	case st.Type == "headline":
		return // headlines want no answer and QQ has no such thing
	}
	var m inboundMessage
	if err := st.Decode(&m); err != nil {
		s.replyError(ctx, st, badRequest("The message is not well-formed."), forRequest)
		return
	}
	text := m.body()
	if text == "" {
		return // chat states and the like: nothing to relay
	}
	switch {
	case s.reg == nil:
		s.replyError(ctx, st, errRegistrationRequired, forRequest)
		return
	case s.state != stateOnline:
		s.replyError(ctx, st, newCondError(stanza.ServiceUnavailable,
			"Not logged in to QQ (%s): the message was not sent. Go online with the gateway and try again.", s.state), forRequest)
		return
	}
	s.markActive()
	chunks, err := SplitText(text, s.g.cfg.MaxMessageBytes)
	if err != nil { // only for a bad configuration, which validate rules out
		s.replyError(ctx, st, err, forRequest)
		return
	}
	for i, c := range chunks {
		if err := s.sendToQQ(ctx, uin, c); err != nil {
			s.log.WithError(err).WithField("buddy", int64(uin)).Warn("gateway: message to QQ failed")
			if i > 0 {
				se := toStanzaError(err, forRequest)
				err = &condError{cond: se.Condition, typ: se.Type, err: err, text: fmt.Sprintf(
					"Only the first %d of %d parts of this long message reached QQ: %s", i, len(chunks), se.Text[""])}
			}
			s.replyError(ctx, st, err, forRequest)
			return
		}
	}
	if receiptWanted(st.Type, st.ID, m.Request) {
		s.send(ctx, message{From: st.To.String(), To: st.From.String(), Type: st.Type, Extra: []any{Receipt{ID: st.ID}}})
	}
}

// sendToQQ sends one CLTMSG; if the server lost the session (RES=20) it
// logs in again and tries once more.
func (s *session) sendToQQ(ctx context.Context, to qqproto.UIN, text string) error {
	err := s.qq.SendMessage(ctx, to, text)
	if errors.Is(err, qqproto.ErrNotLoggedIn) {
		s.relogin(ctx)
		if s.state != stateOnline {
			return err
		}
		err = s.qq.SendMessage(ctx, to, text)
	}
	return err
}
