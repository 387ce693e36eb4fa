package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

const (
	registerInstructions = "Enter your QQ number and QQ password. The gateway logs in to QQ to check them, " +
		"then keeps only a digest of the password."
	registerTitle = "QQ registration"
	// registerTimeout bounds the trial login of a registration, so the
	// client hears back before it gives up on the iq.
	registerTimeout = 30 * time.Second
)

// registerQuery is XEP-0077's jabber:iq:register query, with the legacy
// fields and a XEP-0004 form.
type registerQuery struct {
	XMLName      xml.Name   `xml:"jabber:iq:register query"`
	Instructions string     `xml:"instructions,omitempty"`
	Registered   *struct{}  `xml:"registered"`
	Username     *string    `xml:"username"`
	Password     *string    `xml:"password"`
	Remove       *struct{}  `xml:"remove"`
	Form         *form.Data `xml:"jabber:x:data x"`
}

// registerForm answers XEP-0077's get: instructions, the legacy fields and
// a data form, or for a registered user <registered/> and their number.
func (s *session) registerForm(context.Context, inbound) (any, error) {
	uinText := ""
	if s.reg != nil {
		uinText = s.uin().String()
	}
	user := []form.Option{form.Label("QQ number"), form.Required}
	if uinText != "" {
		user = append(user, form.Value(uinText))
	}
	empty := ""
	q := registerQuery{
		Instructions: registerInstructions,
		Username:     &uinText,
		Password:     &empty,
		Form: form.New(
			form.Title(registerTitle),
			form.Instructions(registerInstructions),
			form.Hidden("FORM_TYPE", form.Value(nsRegister)),
			form.Text("username", user...),
			form.TextPrivate("password", form.Label("Password"), form.Required),
		),
	}
	if s.reg != nil {
		q.Registered = &struct{}{}
	}
	return q, nil
}

// registerSet takes a registration, a password change or a removal.
func (s *session) registerSet(ctx context.Context, in inbound) (any, error) {
	var req struct {
		Query registerQuery
	}
	if err := xml.Unmarshal(in.st.Raw, &req); err != nil {
		return nil, badRequest("The registration request is not well-formed.")
	}
	if req.Query.Remove != nil {
		return nil, s.unregister(ctx)
	}
	username, password, err := registrationFields(req.Query, in.st.Raw)
	if err != nil {
		return nil, err
	}
	return nil, s.register(ctx, username, password)
}

// submittedForm reads the type attribute mellium's form.Data keeps to
// itself: only a submitted form registers.
type submittedForm struct {
	Query struct {
		X *struct {
			Type string `xml:"type,attr"`
		} `xml:"jabber:x:data x"`
	} `xml:"jabber:iq:register query"`
}

// registrationFields reads the QQ number and password from the submitted
// form, or from the legacy fields.
func registrationFields(q registerQuery, raw []byte) (username, password string, err error) {
	if q.Form != nil {
		var sf submittedForm
		_ = xml.Unmarshal(raw, &sf)
		typ := ""
		if sf.Query.X != nil {
			typ = sf.Query.X.Type
		}
		switch typ {
		case "submit":
			username, _ = q.Form.GetString("username")
			password, _ = q.Form.GetString("password")
		case "cancel":
			return "", "", newUserError(stanza.NotAcceptable, "Registration cancelled.")
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
		return "", "", newUserError(stanza.NotAcceptable, "Both the QQ number and the password are required.")
	}
	return username, password, nil
}

// register checks a registration for real and stores it: the number must
// be free, and QQ must accept the password. What follows (presences, the
// session's login) waits until the iq result is out.
func (s *session) register(ctx context.Context, username, password string) error {
	uin, ok := qqproto.ParseUIN(username)
	if !ok {
		return badRequest("%s", notAUINText(username))
	}
	if s.jid.Localpart() == "" {
		return newUserError(stanza.NotAllowed, "Only user accounts can register.")
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
	if err := s.g.st.CheckFile(); err != nil {
		s.log.WithError(err).Error("gateway: the database file is gone; registrations are refused until the gateway is restarted")
		return errStoreGone
	}
	// In a cluster, a registered user's trial login needs their lease too:
	// it would end another process's session.
	if s.reg != nil && !s.holdLease(ctx) {
		return errServedElsewhere
	}
	md5 := qqproto.PasswordMD5(password)
	client := s.link.qq
	if client == nil || s.link.uin != uin {
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
	if err := s.g.st.PutRegistration(ctx, store.Registration{JID: s.key, UIN: int64(uin), PasswordMD5: md5}); err != nil {
		if client != s.link.qq || !s.online() {
			client.Logout(ctx)
		}
		return err
	}
	reg, err := s.g.st.Registration(ctx, s.key)
	if err != nil {
		return err
	}
	s.setRegistration(&reg)
	first, changed := old == nil, old != nil && old.UIN != int64(uin)
	// The transport's roster item, where the server lets the gateway
	// write it, is tried before the answer: a server that granted but
	// refuses (ejabberd 23.01) is found out, and the answer tells the truth.
	inRoster := first && s.addDomainItem(ctx)
	s.afterResult = func(ctx context.Context) { s.registered(ctx, first, changed, inRoster, client, res) }
	return nil
}

// registered finishes a stored registration once the iq result is out:
// the gateway asks for the user's presence (XEP-0100) unless its roster
// item is in, and the trial login becomes the session's login if the
// user is online.
func (s *session) registered(ctx context.Context, first, changed, inRoster bool, client QQ, res qqproto.LoginResult) {
	if changed {
		// Another QQ number: the old session and its buddies are gone.
		s.hideAll(ctx, "")
		s.link.logout(ctx, s.log.entry())
		s.g.sched.cancel(s.task)
		s.buddies = buddyList{}
	}
	if changed {
		s.log.Info("gateway: registration changed to another QQ number")
	} else if first {
		s.log.Info("gateway: registered")
	} else {
		s.log.Info("gateway: stored QQ password changed")
	}
	switch {
	case first && inRoster:
		// A new item does not bring the user's presence: ask for it.
		if err := s.e.probe(ctx, s.key); err != nil {
			s.log.WithError(err).Warn("gateway: presence probe after registration not sent")
		}
	case first:
		s.e.subscription(ctx, 0, s.key, presSubscribe, "", "")
	}
	s.link.qq, s.link.uin = client, s.uin()
	if !s.res.any() {
		s.endTrial(ctx, client)
		s.link.state = stateOffline
		return
	}
	if !s.holdLease(ctx) {
		s.endTrial(ctx, client) // the login is tried again when the lease is free
		return
	}
	s.loggedIn(ctx, res)
}

// endTrial logs the registration's trial login out.
func (s *session) endTrial(ctx context.Context, client QQ) {
	if err := client.Logout(ctx); err != nil {
		s.log.WithError(err).Debug("gateway: logout after the trial login failed")
	}
}

// unregister takes <remove/>: log out, delete everything of the user, and,
// once the result is out, take every JID of the transport out of their
// roster.
func (s *session) unregister(ctx context.Context) error {
	if s.reg == nil {
		return errNotRegistered
	}
	contacts, err := s.g.st.Contacts(ctx, s.key)
	if err != nil {
		return err
	}
	if err := s.g.st.DeleteUser(ctx, s.key); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WithError(err).Error("gateway: cannot delete user")
		return err
	}
	s.link.logout(ctx, s.log.entry())
	s.g.sched.cancel(s.task)
	seen := map[qqproto.UIN]bool{}
	var uins []qqproto.UIN
	for _, c := range contacts {
		seen[qqproto.UIN(c.UIN)] = true
		uins = append(uins, qqproto.UIN(c.UIN))
	}
	for _, b := range s.sortedBuddies() {
		if !seen[b.uin] {
			seen[b.uin] = true
			uins = append(uins, b.uin)
		}
	}
	log := s.log.entry() // before the registration goes
	s.setRegistration(nil)
	s.shown = false
	s.link = qqLink{}
	s.link.init(&s.g.cfg)
	s.buddies = buddyList{}
	s.afterResult = func(ctx context.Context) {
		removed := s.leaveRoster(ctx, uins)
		log.WithFields(logrus.Fields{"contacts": len(uins), "roster_items_removed": removed}).Info("gateway: unregistered")
	}
	return nil
}
