package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

const (
	registerInstructions = "Enter your QQ number and QQ password. The gateway logs in to QQ to check them, " +
		"then keeps only a digest of the password."
	registerTitle = "QQ registration"
	// registerTimeout bounds the trial login of a registration, so the
	// client hears back before it gives up on the iq.
	registerTimeout = 30 * time.Second
)

// registerGet answers XEP-0077's get: instructions, the legacy fields and
// a data form, or for a registered user <registered/> and their number.
func (s *session) registerGet(ctx context.Context, st xmppcomp.Stanza) {
	uinText := ""
	if s.reg != nil {
		uinText = qqproto.UIN(s.reg.UIN).String()
	}
	q := registerQuery{
		Instructions: registerInstructions,
		Username:     strPtr(uinText),
		Password:     strPtr(""),
		Form: &dataForm{
			Type:         "form",
			Title:        registerTitle,
			Instructions: registerInstructions,
			Fields: []formField{
				{Var: "FORM_TYPE", Type: "hidden", Values: []string{nsRegister}},
				{Var: "username", Type: "text-single", Label: "QQ number", Required: &struct{}{}, Values: nonEmpty(uinText)},
				{Var: "password", Type: "text-private", Label: "Password", Required: &struct{}{}},
			},
		},
	}
	if s.reg != nil {
		q.Registered = &struct{}{}
	}
	s.replyResult(ctx, st, q)
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// registerSet takes a registration, a password change or a removal.
func (s *session) registerSet(ctx context.Context, st xmppcomp.Stanza) {
	var req struct {
		Query registerQuery
	}
	if err := st.Decode(&req); err != nil {
		s.replyError(ctx, st, badRequest("The registration request is not well-formed."), forRegistration)
		return
	}
	q := req.Query
	if q.Remove != nil {
		s.unregister(ctx, st)
		return
	}
	username, password, err := registrationFields(q)
	if err != nil {
		s.replyError(ctx, st, err, forRegistration)
		return
	}
	if err := s.register(ctx, username, password); err != nil {
		s.replyError(ctx, st, err, forRegistration)
		return
	}
	s.replyResult(ctx, st, nil)
	s.afterRegister(ctx)
}

// registrationFields reads the QQ number and password from the submitted
// form, or from the legacy fields.
func registrationFields(q registerQuery) (username, password string, err error) {
	if q.Form != nil {
		switch q.Form.Type {
		case "submit":
			username, _ = q.Form.value("username")
			password, _ = q.Form.value("password")
		case "cancel":
			return "", "", newCondError(stanza.NotAcceptable, "Registration cancelled.")
		default:
			return "", "", badRequest("A registration form must be submitted with type submit.")
		}
	} else {
		if q.Username != nil {
			username = *q.Username
		}
		if q.Password != nil {
			password = *q.Password
		}
	}
	username = strings.TrimSpace(username)
	if username == "" || password == "" {
		return "", "", newCondError(stanza.NotAcceptable, "Both the QQ number and the password are required.")
	}
	return username, password, nil
}

// registerResult is what afterRegister needs from register.
type registerResult struct {
	first   bool // a new registration, not a change
	login   qqproto.LoginResult
	client  QQ
	changed bool // the QQ number changed
}

// register checks a registration for real and stores it: the number must
// be free, and QQ must accept the password. Its outcome waits in
// s.pending for afterRegister, which runs after the iq result went out.
func (s *session) register(ctx context.Context, username, password string) error {
	uin, ok := qqproto.ParseUIN(username)
	if !ok {
		return badRequest("%s", notAUINText(username))
	}
	if s.jid.Localpart() == "" {
		return newCondError(stanza.NotAllowed, "Only user accounts can register.")
	}
	// Never log in as a number another user holds: that Login would end
	// their session.
	owner, err := s.g.st.RegistrationByUIN(ctx, int64(uin))
	switch {
	case err == nil && owner.JID != s.key:
		return &store.ConflictError{UIN: int64(uin)}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	md5 := qqproto.PasswordMD5(password)

	client := s.qq
	if client == nil || s.qqUIN != uin {
		client = s.g.cfg.NewQQ(uin)
	}
	lctx, cancel := context.WithTimeout(ctx, registerTimeout)
	res, err := client.Login(lctx, md5)
	cancel()
	if err != nil {
		s.log.WithError(err).WithField("uin", uin).Info("gateway: registration refused by QQ")
		return err
	}
	old := s.reg
	err = s.g.st.PutRegistration(ctx, store.Registration{JID: s.key, UIN: int64(uin), PasswordMD5: md5})
	if err != nil {
		if s.qq != client || s.state != stateOnline {
			client.Logout(ctx)
		}
		return err
	}
	reg, err := s.g.st.Registration(ctx, s.key)
	if err != nil {
		return err
	}
	s.setRegistration(&reg)
	s.pending = &registerResult{first: old == nil, login: res, client: client, changed: old != nil && old.UIN != int64(uin)}
	return nil
}

// afterRegister finishes a stored registration once the iq result is out:
// the gateway asks for the user's presence (XEP-0100), and the trial
// login becomes the session's login if the user is online.
func (s *session) afterRegister(ctx context.Context) {
	r := s.pending
	s.pending = nil
	if r == nil {
		return
	}
	if r.changed {
		// Another QQ number: the old session and its buddies are gone.
		s.hideAll(ctx, "")
		if s.qq != nil && s.state == stateOnline {
			s.qq.Logout(ctx)
		}
		s.state = stateOffline
		s.g.sched.cancel(s.task)
		clear(s.buddies)
	}
	s.log.Info("gateway: registered")
	if r.first {
		s.send(ctx, presence{From: s.g.dom, To: s.key, Type: presSubscribe})
	}
	s.qq, s.qqUIN = r.client, s.uin()
	if !s.wantOnline() {
		if err := r.client.Logout(ctx); err != nil {
			s.log.WithError(err).Debug("gateway: logout after the trial login failed")
		}
		s.state = stateOffline
		return
	}
	s.loggedIn(ctx, r.login)
}

// unregister takes <remove/>: log out, delete everything of the user, and
// take every JID of the transport out of their roster.
func (s *session) unregister(ctx context.Context, st xmppcomp.Stanza) {
	if s.reg == nil {
		s.replyError(ctx, st, newCondError(stanza.RegistrationRequired, "You are not registered with this gateway."), forRequest)
		return
	}
	contacts, err := s.g.st.Contacts(ctx, s.key)
	if err != nil {
		s.replyError(ctx, st, err, forRequest)
		return
	}
	if err := s.g.st.DeleteUser(ctx, s.key); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Error("gateway: cannot delete user")
		s.replyError(ctx, st, err, forRequest)
		return
	}
	if s.qq != nil && s.state == stateOnline {
		if err := s.qq.Logout(ctx); err != nil {
			s.log.WithError(err).Warn("gateway: QQ logout at unregistration failed")
		}
	}
	s.g.sched.cancel(s.task)
	s.replyResult(ctx, st, nil)

	seen := map[qqproto.UIN]bool{}
	var uins []qqproto.UIN
	for _, c := range contacts {
		u := qqproto.UIN(c.UIN)
		if !seen[u] {
			seen[u] = true
			uins = append(uins, u)
		}
	}
	for _, b := range s.sortedBuddies() {
		if !seen[b.uin] {
			seen[b.uin] = true
			uins = append(uins, b.uin)
		}
	}
	for _, u := range uins {
		from := s.g.buddyJID(u)
		for _, typ := range []string{presUnsubscribe, presUnsubscribed, presUnavailable} {
			s.send(ctx, presence{From: from, To: s.key, Type: typ})
		}
	}
	for _, typ := range []string{presUnsubscribe, presUnsubscribed, presUnavailable} {
		s.send(ctx, presence{From: s.g.dom, To: s.key, Type: typ})
	}
	s.log.WithField("contacts", len(uins)).Info("gateway: unregistered")
	s.setRegistration(nil)
	s.state = stateOffline
	s.status = qqproto.StatusOffline
	s.domainShown = false
	s.qq, s.qqUIN = nil, 0
	clear(s.buddies)
}
