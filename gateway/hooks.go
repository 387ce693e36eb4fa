package gateway

// The hooks in this file are where message relaying and the contact flows
// plug into the session core. Each is a plain method of session that runs
// on the session's worker (so it may touch session state freely and call
// QQ and the store directly). The bodies here are simple, working
// defaults: the messages/contacts work replaces them, keeping the names.

import (
	"context"
	"errors"
	"time"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// deliverQQ takes one GetMsgEx batch, in order. The default hands each item
// to handleQQMessage, which handles MT=99 state notices itself and passes
// the rest to the on… hooks below. A durable version writes the batch to
// the store's queue first.
func (s *session) deliverQQ(ctx context.Context, msgs []qqproto.Message) {
	for _, m := range msgs {
		s.handleQQMessage(ctx, m)
	}
}

// onBuddyMessage takes MT=9, a buddy's message: a chat message from the
// buddy's JID.
func (s *session) onBuddyMessage(ctx context.Context, m qqproto.Message) {
	s.markActive()
	s.send(ctx, message{From: s.g.buddyJID(m.From), To: s.key, Type: "chat", Body: m.Text})
}

// onAddRequest takes MT=2, someone asking to add the user: a subscribe from
// their JID, with their reason as status.
func (s *session) onAddRequest(ctx context.Context, m qqproto.Message) {
	b := s.buddy(m.From)
	s.send(ctx, presence{From: s.g.buddyJID(m.From), To: s.key, Type: presSubscribe, Status: m.Text, Nick: newNick(b.nick)})
	if c, err := s.g.st.Contact(ctx, s.key, int64(m.From)); err == nil && c.Sub == store.Both {
		return
	}
	s.markContact(ctx, b, store.PendingIn)
}

// onAddAccepted takes MT=3: the buddy the user asked to add accepted.
func (s *session) onAddAccepted(ctx context.Context, m qqproto.Message) {
	b := s.buddy(m.From)
	b.listed = true
	s.send(ctx, presence{From: s.g.buddyJID(m.From), To: s.key, Type: presSubscribed})
	s.markContact(ctx, b, store.Both)
	s.nextStat = time.Now() // learn their state soon
	s.reschedule()
}

// onAddRefused takes MT=4: the buddy refused; the reason goes as status.
func (s *session) onAddRefused(ctx context.Context, m qqproto.Message) {
	s.send(ctx, presence{From: s.g.buddyJID(m.From), To: s.key, Type: presUnsubscribed, Status: m.Text})
	if c, err := s.g.st.Contact(ctx, s.key, int64(m.From)); err == nil && c.Sub == store.PendingOut {
		s.g.st.DeleteContact(ctx, s.key, int64(m.From))
	}
}

// onSystemNotice takes any other item: a headline from the domain.
func (s *session) onSystemNotice(ctx context.Context, m qqproto.Message) {
	if m.Text == "" {
		return
	}
	s.send(ctx, message{From: s.g.dom, To: s.key, Type: "headline", Body: m.Text})
}

// handleMessage takes a message of the user to the domain or a buddy JID.
// The default sends the body of a chat or normal message to QQ; a failure
// comes back as a message error.
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
	case s.reg == nil:
		s.replyError(ctx, st, errRegistrationRequired, forRequest)
		return
	case st.Type == "groupchat":
		s.replyError(ctx, st, newCondError(stanza.FeatureNotImplemented, "QQ has no group chat here."), forRequest)
		return
	}
	var m message
	if err := st.Decode(&m); err != nil {
		s.replyError(ctx, st, badRequest("The message is not well-formed."), forRequest)
		return
	}
	if m.Body == "" {
		return // chat states and the like: nothing to relay
	}
	if s.state != stateOnline {
		s.replyError(ctx, st, qqproto.ErrNotLoggedIn, forRequest)
		return
	}
	s.markActive()
	err := s.qq.SendMessage(ctx, uin, m.Body)
	if errors.Is(err, qqproto.ErrNotLoggedIn) {
		s.relogin(ctx)
		if s.state == stateOnline {
			err = s.qq.SendMessage(ctx, uin, m.Body)
		}
	}
	if err != nil {
		s.log.WithError(err).Warn("gateway: message to QQ failed")
		s.replyError(ctx, st, err, forRequest)
	}
}

// onUserSubscribe takes the user's subscribe to a number not on the QQ
// buddy list: AddToList, asking for authorisation when needed.
func (s *session) onUserSubscribe(ctx context.Context, uin qqproto.UIN, _ presence) {
	from := s.g.buddyJID(uin)
	if s.state != stateOnline {
		s.send(ctx, presence{From: from, To: s.key, Type: presError,
			Error: &stanza.Error{Type: stanza.Wait, Condition: stanza.RemoteServerTimeout,
				Text: map[string]string{"": "Not logged in to QQ; go online and try again."}}})
		return
	}
	b := s.buddy(uin)
	res, err := s.qq.AddBuddy(ctx, uin)
	if err != nil {
		s.log.WithError(err).Warn("gateway: AddToList failed")
		s.send(ctx, presence{From: from, To: s.key, Type: presUnsubscribed})
		return
	}
	switch res {
	case qqproto.AddAccepted:
		b.listed = true
		s.confirmContact(ctx, b)
		s.nextStat = time.Now()
		s.reschedule()
	case qqproto.AddRefused:
		s.send(ctx, presence{From: from, To: s.key, Type: presUnsubscribed})
	default:
		if err := s.qq.AnswerAdd(ctx, uin, qqproto.AckRequest, ""); err != nil {
			s.log.WithError(err).Warn("gateway: Ack_AddToList failed")
		}
		s.markContact(ctx, b, store.PendingOut)
	}
}

// onUserSubscribed takes the user's approval of someone not on the QQ list
// (an MT=2 request): Ack_AddToList approve.
func (s *session) onUserSubscribed(ctx context.Context, uin qqproto.UIN) {
	if s.state == stateOnline {
		if err := s.qq.AnswerAdd(ctx, uin, qqproto.AckApprove, ""); err != nil {
			s.log.WithError(err).Warn("gateway: Ack_AddToList approve failed")
		}
	}
	s.markContact(ctx, s.buddy(uin), store.Both)
}

// onUserUnsubscribe takes the user's unsubscribe from a buddy: DelFromList
// and the contact leaves the roster.
func (s *session) onUserUnsubscribe(ctx context.Context, uin qqproto.UIN) {
	if s.state == stateOnline {
		if err := s.qq.RemoveBuddy(ctx, uin); err != nil {
			s.log.WithError(err).Warn("gateway: DelFromList failed")
		}
	}
	from := s.g.buddyJID(uin)
	s.send(ctx, presence{From: from, To: s.key, Type: presUnsubscribed})
	s.send(ctx, presence{From: from, To: s.key, Type: presUnavailable})
	if err := s.g.st.DeleteContact(ctx, s.key, int64(uin)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Warn("gateway: cannot delete a contact")
	}
	delete(s.buddies, uin)
}

// onUserUnsubscribed takes the user's refusal (or revocation): a pending
// MT=2 request is rejected.
func (s *session) onUserUnsubscribed(ctx context.Context, uin qqproto.UIN) {
	c, err := s.g.st.Contact(ctx, s.key, int64(uin))
	if err != nil || c.Sub != store.PendingIn {
		return
	}
	if b := s.buddies[uin]; b != nil && b.listed {
		return // a listed buddy's import request: the roster simply lacks it
	}
	if s.state == stateOnline {
		if err := s.qq.AnswerAdd(ctx, uin, qqproto.AckReject, ""); err != nil {
			s.log.WithError(err).Warn("gateway: Ack_AddToList reject failed")
		}
	}
	s.g.st.DeleteContact(ctx, s.key, int64(uin))
}

// vcardIQ answers a vcard-temp get of the domain (uin 0) or a buddy.
func (s *session) vcardIQ(ctx context.Context, st xmppcomp.Stanza, uin qqproto.UIN) {
	if uin == 0 {
		s.replyResult(ctx, st, TransportVCard(s.g.dom))
		return
	}
	if s.state == stateOnline {
		p, err := s.qq.Profile(ctx, uin)
		if err != nil {
			s.replyError(ctx, st, err, forRequest)
			return
		}
		s.replyResult(ctx, st, BuddyVCard(p, nil))
		return
	}
	nick := ""
	if b := s.buddies[uin]; b != nil {
		nick = b.nick
	}
	s.replyResult(ctx, st, VCard{FN: firstNonEmpty(nick, uin.String()), Nickname: nick})
}

// extraGatewayFeatures are disco features of the domain beyond the core's.
func (s *session) extraGatewayFeatures() []string { return nil }

// extraContactFeatures are disco features of buddy JIDs beyond the core's.
func (s *session) extraContactFeatures() []string { return nil }

// buddyPresenceExtras are payloads added to a buddy's available presence
// (an avatar hash, say).
func (s *session) buddyPresenceExtras(*buddy) []any { return nil }
