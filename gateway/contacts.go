package gateway

// The contact flows: the user's subscribe/unsubscribe to a buddy JID
// become AddToList/DelFromList, a buddy's add request (MT=2) becomes a
// subscribe from its JID, and the answers go back the other way.

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
// unsubscribed answers it (approveAdd, userUnsubscribed).
func (s *session) addRequested(ctx context.Context, from qqproto.UIN, reason string) error {
	b := s.buddy(from)
	if err := s.e.subscription(ctx, from, s.key, presSubscribe, strings.TrimSpace(reason), s.nick(b)); err != nil {
		return err
	}
	s.log.WithField("buddy", int64(from)).Info("gateway: a QQ user asks to add the user; asked the user")
	if c, err := s.g.st.Contact(ctx, s.key, int64(from)); err == nil && c.Sub == store.Both {
		return nil // already mutual: the answer changes nothing here
	}
	s.markContact(ctx, b, store.PendingIn)
	return nil
}

// addAccepted takes MT=3: the buddy the user asked to add accepted, so the
// user's subscribe is approved, and the buddy's state learnt soon.
func (s *session) addAccepted(ctx context.Context, from qqproto.UIN) error {
	b := s.buddy(from)
	s.learnNick(ctx, b)
	if err := s.e.subscription(ctx, from, s.key, presSubscribed, "", s.nick(b)); err != nil {
		return err
	}
	b.setListed(true)
	s.log.WithField("buddy", int64(from)).Info("gateway: the buddy accepted the user's request to add them")
	if s.runs.offerOnAccept[from] {
		// Asked by a command, not from the roster, where the subscribed
		// above completes nothing: offer the new buddy.
		delete(s.runs.offerOnAccept, from)
		s.offerContact(ctx, b)
	} else {
		s.markContact(ctx, b, store.Both)
		s.introduce(ctx, b)
	}
	s.reshow(ctx, b) // a new roster item: show its presence afresh
	s.statSoon()
	return nil
}

// addRefused takes MT=4: the buddy refused; the user's subscribe is denied
// with their reason as status.
func (s *session) addRefused(ctx context.Context, from qqproto.UIN, reason string) error {
	if err := s.e.subscription(ctx, from, s.key, presUnsubscribed, strings.TrimSpace(reason), ""); err != nil {
		return err
	}
	s.log.WithField("buddy", int64(from)).Info("gateway: the buddy refused the user's request to add them")
	if c, err := s.g.st.Contact(ctx, s.key, int64(from)); err == nil && c.Sub == store.PendingOut {
		s.deleteContact(ctx, from)
	}
	return nil
}

// statSoon asks for the buddies' states at the next poll: a new buddy's is
// not known yet.
func (s *session) statSoon() {
	if !s.online() {
		return
	}
	s.link.nextStat = s.g.clock.Now()
	s.reschedule()
}

// ---- the user's side (presence to a buddy JID) ----

// addBuddy takes the user's subscribe to a number not on the QQ buddy
// list: AddToList. CD=0 adds at once (subscribed, then presence); CD=1 (or
// 2) asks the buddy with Ack_AddToList CD=2, the subscribe's status as the
// reason, and the answer comes as MT=3 or MT=4; CD=3 is a refusal
// (unsubscribed with a text saying so).
func (s *session) addBuddy(ctx context.Context, uin qqproto.UIN, reason string) error {
	if !s.online() {
		return errNotOnline(s.link.state, "the request was not sent.")
	}
	res, err := s.addOnQQ(ctx, uin, reason)
	if err != nil {
		return s.subscribeFailed(ctx, uin, err)
	}
	switch res {
	case qqproto.AddAccepted:
		b := s.buddy(uin)
		s.learnNick(ctx, b)
		s.confirmContact(ctx, b)
		s.introduce(ctx, b)
		s.statSoon()
	case qqproto.AddNeedsAuth, qqproto.AddAuthAlt:
		// The answer comes as MT=3 or MT=4.
	case qqproto.AddRefused:
		s.e.subscription(ctx, uin, s.key, presUnsubscribed, refusedAllText(uin), "")
	default:
		s.e.subscription(ctx, uin, s.key, presUnsubscribed, unknownAddText(uin, res), "")
	}
	return nil
}

// addOnQQ asks QQ to put uin on the user's buddy list: AddToList, and if
// the buddy must agree, Ack_AddToList CD=2 with reason. It returns what
// AddToList answered; a listed buddy is marked so, an asked one pending.
func (s *session) addOnQQ(ctx context.Context, uin qqproto.UIN, reason string) (qqproto.AddResult, error) {
	b := s.buddy(uin)
	log := s.log.WithField("buddy", int64(uin))
	res, err := s.link.qq.AddBuddy(ctx, uin)
	if err != nil {
		log.WithError(err).Warn("gateway: AddToList failed")
		return res, err
	}
	switch res {
	case qqproto.AddAccepted:
		b.setListed(true)
		log.Info("gateway: buddy added on QQ")
	case qqproto.AddNeedsAuth, qqproto.AddAuthAlt:
		if err := s.link.qq.AnswerAdd(ctx, uin, qqproto.AckRequest, reason); err != nil {
			log.WithError(err).Warn("gateway: Ack_AddToList failed")
			return res, err
		}
		log.Info("gateway: asked the QQ user to accept the user as a buddy")
		s.markContact(ctx, b, store.PendingOut)
	}
	return res, nil
}

func unknownAddText(uin qqproto.UIN, res qqproto.AddResult) string {
	return fmt.Sprintf("QQ answered the request to add %d with an unknown code (CD=%d).", uin, int(res))
}

// subscribeFailed answers a subscribe whose QQ request failed: a number QQ
// does not know, or one that accepts nobody, is denied (unsubscribed, so
// the request does not hang in the roster); any other failure is a
// presence error the user can retry.
func (s *session) subscribeFailed(ctx context.Context, uin qqproto.UIN, err error) error {
	switch {
	case errors.Is(err, ErrUnknownNumber):
		s.e.subscription(ctx, uin, s.key, presUnsubscribed, fmt.Sprintf("QQ does not know the number %d.", uin), "")
		return nil
	case errors.Is(err, ErrAcceptsNobody):
		s.e.subscription(ctx, uin, s.key, presUnsubscribed, refusedAllText(uin), "")
		return nil
	}
	return err
}

// offerContact puts a listed buddy into the user's roster as the roster
// import does for a new one: its item written where the server lets the
// gateway (writeContact), else a subscribe from its JID to accept.
func (s *session) offerContact(ctx context.Context, b *buddy) {
	if s.writeContact(ctx, b) {
		return
	}
	if s.e.subscription(ctx, b.uin, s.key, presSubscribe, "", s.nick(b)) == nil {
		s.markContact(ctx, b, store.PendingIn)
	}
}

// writeContact writes a listed buddy's roster item, named and mutual, and
// shows its presence, if the user's server lets the gateway: nobody is
// asked to accept anything. It reports whether it did.
func (s *session) writeContact(ctx context.Context, b *buddy) bool {
	if !s.writable() || !s.nameItem(ctx, b) || !s.mutual() {
		return false
	}
	s.markContact(ctx, b, store.Both)
	s.reshow(ctx, b)
	return true
}

// learnNick gives a buddy the user adds its QQ nickname, from its profile
// (GetInfo, cached), unless known: the user typed only a number.
func (s *session) learnNick(ctx context.Context, b *buddy) {
	if s.nick(b) != "" || !s.online() {
		return
	}
	if p, err := s.profile(ctx, b.uin); err == nil {
		s.buddies.setProfile(b, p.Nick, p.Face)
	}
}

// introduce puts the nickname of a buddy the user added, whose
// subscription QQ just approved, where the user's client shows it, and
// makes the subscription mutual like an imported buddy's: the roster item
// named by the gateway where the server lets it write the roster; else a
// subscribe from the buddy's JID carrying the nickname (XEP-0172), which
// clients offer as the contact's name.
func (s *session) introduce(ctx context.Context, b *buddy) {
	if s.writable() && s.nameItem(ctx, b) && s.mutual() {
		return
	}
	s.e.subscription(ctx, b.uin, s.key, presSubscribe, "", s.nick(b))
}

// approveAdd takes the user's approval of someone not on the QQ list: the
// answer to their add request (MT=2), Ack_AddToList CD=0.
func (s *session) approveAdd(ctx context.Context, uin qqproto.UIN) error {
	c, err := s.g.st.Contact(ctx, s.key, int64(uin))
	switch {
	case err == nil && c.Sub != store.PendingIn:
		return nil // no request waits for an answer (a client's automatic reply, say)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		s.log.WithError(err).Warn("gateway: cannot read a contact")
	}
	if !s.online() {
		return errNotOnline(s.link.state, "your approval was not sent.")
	}
	if err := s.link.qq.AnswerAdd(ctx, uin, qqproto.AckApprove, ""); err != nil {
		return err
	}
	s.log.WithField("buddy", int64(uin)).Info("gateway: the user allowed the QQ user to add them")
	// They may now list the user; the user's own QQ list is unchanged,
	// so the contact is no longer pending but not mutual either.
	s.markContact(ctx, s.buddy(uin), store.None)
	return nil
}

// userUnsubscribed takes the user's refusal of a pending add request
// (MT=2): Ack_AddToList CD=1. Revoking a listed buddy's subscription has
// no QQ equivalent and changes nothing there.
func (s *session) userUnsubscribed(ctx context.Context, in inbound) error {
	c, err := s.g.st.Contact(ctx, s.key, int64(in.uin))
	if err != nil || c.Sub != store.PendingIn {
		return nil
	}
	if b := s.buddies.get(in.uin); b != nil && b.listed() {
		return nil // a listed buddy's import request: the roster simply lacks it
	}
	if !s.online() {
		return errNotOnline(s.link.state, "your refusal was not sent.")
	}
	if err := s.link.qq.AnswerAdd(ctx, in.uin, qqproto.AckReject, ""); err != nil {
		return err
	}
	s.log.WithField("buddy", int64(in.uin)).Info("gateway: the user refused the QQ user's request to add them")
	s.deleteContact(ctx, in.uin)
	return nil
}

// userUnsubscribe takes the user's unsubscribe from a buddy: DelFromList,
// and the contact leaves the roster.
func (s *session) userUnsubscribe(ctx context.Context, in inbound) error {
	var err error
	if s.online() {
		if err = s.link.qq.RemoveBuddy(ctx, in.uin); err != nil {
			s.log.WithError(err).WithField("buddy", int64(in.uin)).Warn("gateway: DelFromList failed")
		} else {
			s.log.WithField("buddy", int64(in.uin)).Info("gateway: buddy removed on QQ")
		}
	}
	s.e.subscription(ctx, in.uin, s.key, presUnsubscribed, "", "")
	s.e.subscription(ctx, in.uin, s.key, presUnavailable, "", "")
	s.deleteContact(ctx, in.uin)
	s.buddies.remove(in.uin)
	return err
}

// confirmContact approves the user's subscription to a listed buddy and
// shows the buddy's presence.
func (s *session) confirmContact(ctx context.Context, b *buddy) {
	s.e.subscription(ctx, b.uin, s.key, presSubscribed, "", s.nick(b))
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
	if err == nil && c.Sub == sub && c.Nick == s.nick(b) {
		return
	}
	c.UIN, c.Sub = int64(b.uin), sub
	if s.nick(b) != "" {
		c.Nick, c.Face = s.nick(b), int(b.face)
	}
	if err := s.g.st.PutContact(ctx, s.key, c); err != nil {
		s.log.WithError(err).Warn("gateway: cannot store a contact")
	}
}

func (s *session) deleteContact(ctx context.Context, uin qqproto.UIN) {
	if err := s.g.st.DeleteContact(ctx, s.key, int64(uin)); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Warn("gateway: cannot delete a contact")
	}
}
