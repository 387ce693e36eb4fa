package gateway

// The contact flows: the user's subscribe/unsubscribe to a buddy JID
// become AddToList/DelFromList, a buddy's add request (MT=2) becomes a
// subscribe from its JID, and the answers go back the other way.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// refusedAllText is the status of the unsubscribed that answers adding a
// QQ user who accepts nobody as buddy (AddToList CD=3).
func refusedAllText(uin qqproto.UIN) string {
	return fmt.Sprintf("QQ %d 不允许任何人加为好友 / QQ user %d accepts nobody as a buddy.", uin, uin)
}

// ---- the buddy's side (GetMsgEx items, delivered through the queue) ----

// addRequested takes MT=2, someone asking to add the user: a subscribe
// from their JID with their reason as status. The user's subscribed or
// unsubscribed answers it (onUserSubscribed, onUserUnsubscribed).
func (s *session) addRequested(ctx context.Context, m qqproto.Message) error {
	b := s.buddy(m.From)
	p := presence{From: s.g.buddyJID(m.From), To: s.key, Type: presSubscribe, Status: strings.TrimSpace(m.Text), Nick: newNick(b.nick)}
	if err := s.send(ctx, p); err != nil {
		return err
	}
	if c, err := s.g.st.Contact(ctx, s.key, int64(m.From)); err == nil && c.Sub == store.Both {
		return nil // already mutual: the answer changes nothing here
	}
	s.markContact(ctx, b, store.PendingIn)
	return nil
}

// addAccepted takes MT=3: the buddy the user asked to add accepted, so the
// user's subscribe is approved, and the buddy's state learnt soon.
func (s *session) addAccepted(ctx context.Context, m qqproto.Message) error {
	b := s.buddy(m.From)
	if err := s.send(ctx, presence{From: s.g.buddyJID(m.From), To: s.key, Type: presSubscribed}); err != nil {
		return err
	}
	b.listed = true
	s.markContact(ctx, b, store.Both)
	s.reshow(ctx, b) // a new roster item: show its presence afresh
	s.statSoon()
	return nil
}

// addRefused takes MT=4: the buddy refused; the user's subscribe is denied
// with their reason as status.
func (s *session) addRefused(ctx context.Context, m qqproto.Message) error {
	p := presence{From: s.g.buddyJID(m.From), To: s.key, Type: presUnsubscribed, Status: strings.TrimSpace(m.Text)}
	if err := s.send(ctx, p); err != nil {
		return err
	}
	if c, err := s.g.st.Contact(ctx, s.key, int64(m.From)); err == nil && c.Sub == store.PendingOut {
		s.deleteContact(ctx, m.From)
	}
	return nil
}

// The hooks the core's handleQQMessage calls for unqueued items.

func (s *session) onAddRequest(ctx context.Context, m qqproto.Message)  { s.addRequested(ctx, m) }
func (s *session) onAddAccepted(ctx context.Context, m qqproto.Message) { s.addAccepted(ctx, m) }
func (s *session) onAddRefused(ctx context.Context, m qqproto.Message)  { s.addRefused(ctx, m) }

// statSoon asks for the buddies' states at the next poll: a new buddy's is
// not known yet.
func (s *session) statSoon() {
	if s.state != stateOnline {
		return
	}
	s.nextStat = time.Now()
	s.reschedule()
}

// ---- the user's side (presence to a buddy JID) ----

// onUserSubscribe takes the user's subscribe to a number not on the QQ
// buddy list: AddToList. CD=0 adds at once (subscribed, then presence);
// CD=1 (or 2) asks the buddy with Ack_AddToList CD=2, the subscribe's
// status as the reason, and the answer comes as MT=3 or MT=4; CD=3 is a
// refusal (unsubscribed with a text saying so).
func (s *session) onUserSubscribe(ctx context.Context, uin qqproto.UIN, p presence) {
	from := s.g.buddyJID(uin)
	if s.state != stateOnline {
		s.send(ctx, presence{From: from, To: s.key, Type: presError,
			Error: &stanza.Error{Type: stanza.Wait, Condition: stanza.RemoteServerTimeout,
				Text: map[string]string{"": "Not logged in to QQ; go online with the gateway and try again."}}})
		return
	}
	b := s.buddy(uin)
	res, err := s.qq.AddBuddy(ctx, uin)
	if err != nil {
		s.subscribeFailed(ctx, uin, "AddToList", err)
		return
	}
	switch res {
	case qqproto.AddAccepted:
		b.listed = true
		s.confirmContact(ctx, b)
		s.statSoon()
	case qqproto.AddNeedsAuth, qqproto.AddAuthAlt:
		if err := s.qq.AnswerAdd(ctx, uin, qqproto.AckRequest, strings.TrimSpace(p.Status)); err != nil {
			var re *qqproto.ResultError
			if errors.As(err, &re) && re.Code == 3 {
				// The emulator's (and a plausible server's) "nobody may add"
				// answer to the request itself.
				s.send(ctx, presence{From: from, To: s.key, Type: presUnsubscribed, Status: refusedAllText(uin)})
				return
			}
			s.subscribeFailed(ctx, uin, "Ack_AddToList", err)
			return
		}
		s.markContact(ctx, b, store.PendingOut)
	case qqproto.AddRefused:
		s.send(ctx, presence{From: from, To: s.key, Type: presUnsubscribed, Status: refusedAllText(uin)})
	default:
		s.send(ctx, presence{From: from, To: s.key, Type: presUnsubscribed,
			Status: fmt.Sprintf("QQ answered the request to add %d with an unknown code (CD=%d).", uin, int(res))})
	}
}

// subscribeFailed answers a subscribe whose QQ request failed: a number QQ
// does not know is denied (unsubscribed, so the request does not hang in
// the roster); any other failure is a presence error the user can retry.
func (s *session) subscribeFailed(ctx context.Context, uin qqproto.UIN, cmd string, err error) {
	s.log.WithError(err).WithField("buddy", int64(uin)).Warn("gateway: " + cmd + " failed")
	from := s.g.buddyJID(uin)
	var re *qqproto.ResultError
	if errors.As(err, &re) && re.Code == qqproto.ResInvalidUIN {
		s.send(ctx, presence{From: from, To: s.key, Type: presUnsubscribed,
			Status: fmt.Sprintf("QQ does not know the number %d.", uin)})
		return
	}
	se := toStanzaError(err, forRequest)
	s.send(ctx, presence{From: from, To: s.key, Type: presError, Error: &se})
}

// onUserSubscribed takes the user's approval of someone not on the QQ list:
// the answer to their add request (MT=2), Ack_AddToList CD=0.
func (s *session) onUserSubscribed(ctx context.Context, uin qqproto.UIN) {
	c, err := s.g.st.Contact(ctx, s.key, int64(uin))
	switch {
	case err == nil && c.Sub != store.PendingIn:
		return // no request waits for an answer (a client's automatic reply, say)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		s.log.WithError(err).Warn("gateway: cannot read a contact")
	}
	if s.state != stateOnline {
		s.tellNotSent(ctx, uin, "approval")
		return
	}
	if err := s.qq.AnswerAdd(ctx, uin, qqproto.AckApprove, ""); err != nil {
		s.log.WithError(err).Warn("gateway: Ack_AddToList approve failed")
		se := toStanzaError(err, forRequest)
		s.send(ctx, presence{From: s.g.buddyJID(uin), To: s.key, Type: presError, Error: &se})
		return
	}
	// They may now list the user; the user's own QQ list is unchanged,
	// so the contact is no longer pending but not mutual either.
	s.markContact(ctx, s.buddy(uin), store.None)
}

// onUserUnsubscribed takes the user's refusal of a pending add request
// (MT=2): Ack_AddToList CD=1. Revoking a listed buddy's subscription has
// no QQ equivalent and changes nothing there.
func (s *session) onUserUnsubscribed(ctx context.Context, uin qqproto.UIN) {
	c, err := s.g.st.Contact(ctx, s.key, int64(uin))
	if err != nil || c.Sub != store.PendingIn {
		return
	}
	if b := s.buddies[uin]; b != nil && b.listed {
		return // a listed buddy's import request: the roster simply lacks it
	}
	if s.state != stateOnline {
		s.tellNotSent(ctx, uin, "refusal")
		return
	}
	if err := s.qq.AnswerAdd(ctx, uin, qqproto.AckReject, ""); err != nil {
		s.log.WithError(err).Warn("gateway: Ack_AddToList reject failed")
		se := toStanzaError(err, forRequest)
		s.send(ctx, presence{From: s.g.buddyJID(uin), To: s.key, Type: presError, Error: &se})
		return
	}
	s.deleteContact(ctx, uin)
}

// onUserUnsubscribe takes the user's unsubscribe from a buddy: DelFromList,
// and the contact leaves the roster.
func (s *session) onUserUnsubscribe(ctx context.Context, uin qqproto.UIN) {
	if s.state == stateOnline {
		if err := s.qq.RemoveBuddy(ctx, uin); err != nil {
			s.log.WithError(err).WithField("buddy", int64(uin)).Warn("gateway: DelFromList failed")
			se := toStanzaError(err, forRequest)
			s.send(ctx, presence{From: s.g.buddyJID(uin), To: s.key, Type: presError, Error: &se})
		}
	}
	from := s.g.buddyJID(uin)
	s.send(ctx, presence{From: from, To: s.key, Type: presUnsubscribed})
	s.send(ctx, presence{From: from, To: s.key, Type: presUnavailable})
	s.deleteContact(ctx, uin)
	delete(s.buddies, uin)
}

// tellNotSent says, as a presence error from the buddy's JID, that an
// answer to an add request could not reach QQ.
func (s *session) tellNotSent(ctx context.Context, uin qqproto.UIN, what string) {
	s.send(ctx, presence{From: s.g.buddyJID(uin), To: s.key, Type: presError,
		Error: &stanza.Error{Type: stanza.Wait, Condition: stanza.RemoteServerTimeout,
			Text: map[string]string{"": "Not logged in to QQ: your " + what + " was not sent. Go online with the gateway and answer again."}}})
}

func (s *session) deleteContact(ctx context.Context, uin qqproto.UIN) {
	if err := s.g.st.DeleteContact(ctx, s.key, int64(uin)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Warn("gateway: cannot delete a contact")
	}
}
