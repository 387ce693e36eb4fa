package gateway

// The users' commands: register, log in again, sync contacts, look up a
// QQ number (and add it), add one, change the stored password, unregister.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

func userCommands() []*command {
	return []*command{
		{name: "register", title: "Register with QQ", args: "[QQ number]", who: forGuests, start: (*session).askRegistration},
		{name: "login", title: "Log in to QQ again", who: forUsers, start: (*session).loginAgain},
		{name: "sync", title: "Sync QQ contacts", who: forUsers, start: (*session).syncContacts},
		{name: "lookup", title: "Look up a QQ number", args: "[QQ number]", who: forUsers, start: askNumber("Look up a QQ number", (*session).showProfile)},
		{name: "add", title: "Add a QQ contact", args: "[QQ number]", who: forUsers, start: askNumber("Add a QQ contact", (*session).addByNumber)},
		{name: "password", title: "Change the QQ password", who: forUsers, start: (*session).askPassword},
		{name: "unregister", title: "Unregister", who: forUsers, start: (*session).askUnregister},
	}
}

var uinField = field{name: "uin", label: "QQ number", check: checkUIN}

// askNumber is a first step that asks for a QQ number and hands it on.
func askNumber(title string, then func(*session, context.Context, qqproto.UIN) (reply, error)) step {
	return func(*session, context.Context, answers) (reply, error) {
		return reply{title: title, ask: []field{uinField}, last: true,
			next: func(s *session, ctx context.Context, a answers) (reply, error) { return then(s, ctx, a.uin("uin")) }}, nil
	}
}

// ---- register and unregister ----

func (s *session) askRegistration(context.Context, answers) (reply, error) {
	return reply{
		title: registerTitle, text: registerInstructions,
		ask:  []field{{name: "username", label: "QQ number", check: checkUIN}, {name: "password", label: "QQ password", kind: secretField}},
		next: (*session).doRegister, last: true,
	}, nil
}

// doRegister registers as XEP-0077 does: QQ must accept the password.
func (s *session) doRegister(ctx context.Context, a answers) (reply, error) {
	if err := s.register(ctx, a["username"], a["password"]); err != nil {
		return reply{}, typedCredentials(err)
	}
	if s.mutual() { // the server lets the gateway write the roster: no requests follow
		return done("Registered with QQ number %d. Your QQ contacts are being added to your roster.", s.uin()), nil
	}
	return done("Registered with QQ number %d. The gateway now asks to see your presence: accept, and your QQ "+
		"contacts follow as contact requests.", s.uin()), nil
}

// typedCredentials reads err as the answer to a number and password the
// user just typed, as a registration form's: a refused login means they
// are wrong, not that the stored password stopped working.
func typedCredentials(err error) error {
	if cond, text := condition(err, forRegistration); cond == stanza.NotAcceptable {
		return newUserError(cond, "%s", text)
	}
	return err
}

func (s *session) askPassword(context.Context, answers) (reply, error) {
	return reply{
		title: "Change the QQ password",
		text:  fmt.Sprintf("The gateway logs in to QQ %d with the new password before it replaces the stored one.", s.uin()),
		ask:   []field{{name: "password", label: "New QQ password", kind: secretField}},
		next:  (*session).changePassword, last: true,
	}, nil
}

func (s *session) changePassword(ctx context.Context, a answers) (reply, error) {
	if err := s.register(ctx, s.uin().String(), a["password"]); err != nil {
		return reply{}, typedCredentials(err)
	}
	return done("The stored password of QQ %d is changed.", s.uin()), nil
}

func (s *session) askUnregister(context.Context, answers) (reply, error) {
	return reply{
		title: "Unregister",
		text: "This logs you out of QQ, makes the gateway forget your QQ number, password digest and contacts, " +
			"and takes the transport and your QQ contacts out of your roster.",
		ask:  []field{{name: "confirm", label: "Unregister from the QQ gateway", kind: yesNoField}},
		next: (*session).doUnregister, last: true,
	}, nil
}

func (s *session) doUnregister(ctx context.Context, a answers) (reply, error) {
	if !a.yes("confirm") {
		return done("Nothing was changed."), nil
	}
	if err := s.unregister(ctx); err != nil {
		return reply{}, err
	}
	return done("Unregistered. You can register again at any time."), nil
}

// ---- the QQ session ----

// loginAgain logs in to QQ now: after a refused password was fixed on the
// QQ side, or instead of waiting for the next retry.
func (s *session) loginAgain(ctx context.Context, _ answers) (reply, error) {
	switch {
	case s.online():
		return done("Logged in to QQ as %d already.", s.uin()), nil
	case !s.res.any():
		return reply{}, newUserError(stanza.NotAllowed, "The gateway does not see you online: accept its presence "+
			"subscription (%s in your contacts) so that it knows when you are, and try again.", s.e.dom)
	}
	s.g.sched.cancel(s.task) // a retry waiting for its time happens now
	if err := s.login(ctx); err != nil {
		return reply{}, err
	}
	return done("Logged in to QQ as %d.", s.uin()), nil
}

// syncContacts imports the QQ buddy list again, and offers again the
// buddies the user has not taken into the roster yet.
func (s *session) syncContacts(ctx context.Context, _ answers) (reply, error) {
	if !s.online() {
		return reply{}, errNotOnline(s.link.state, "nothing was synced.")
	}
	again := s.reofferPending(ctx)
	n := s.importRoster(ctx)
	if s.importDue {
		return reply{}, newUserError(stanza.ServiceUnavailable, "QQ did not give the buddy list; the gateway tries again shortly.")
	}
	facts := []fact{
		{"On your QQ buddy list", strconv.Itoa(n.listed)},
		{"New, offered to your roster", strconv.Itoa(n.asked)},
		{"Offered again", strconv.Itoa(again)},
	}
	if n.pushed > 0 { // the server lets the gateway write the roster
		facts = append(facts, fact{"Written into your roster", strconv.Itoa(n.pushed)})
	}
	return reply{title: "QQ contacts synced", facts: facts}, nil
}

// reofferPending asks again about the listed buddies the user was offered
// but has not accepted; it returns how many.
func (s *session) reofferPending(ctx context.Context) int {
	contacts, err := s.g.st.Contacts(ctx, s.key)
	if err != nil {
		s.log.WithError(err).Warn("gateway: cannot read contacts")
		return 0
	}
	n := 0
	for _, c := range contacts {
		if b := s.buddies.get(qqproto.UIN(c.UIN)); b != nil && b.listed() && c.Sub == store.PendingIn {
			s.offerContact(ctx, b)
			n++
		}
	}
	return n
}

// ---- other QQ users ----

// showProfile shows uin's QQ profile and offers to add them.
func (s *session) showProfile(ctx context.Context, uin qqproto.UIN) (reply, error) {
	if !s.online() {
		return reply{}, errNotOnline(s.link.state, "QQ was not asked.")
	}
	p, err := s.profile(ctx, uin)
	if err != nil {
		return reply{}, err
	}
	rep := reply{title: fmt.Sprintf("QQ %d", uin), facts: profileFacts(p)}
	switch b := s.buddies.get(uin); {
	case uin == s.uin():
		rep.text = "This is your own QQ number."
	case b != nil && b.listed():
		rep.text = "On your QQ buddy list."
	default:
		rep.ask = []field{{name: "add", label: fmt.Sprintf("Add %d to your QQ contacts", uin), kind: yesNoField}}
		rep.last = true
		rep.next = func(s *session, ctx context.Context, a answers) (reply, error) {
			if !a.yes("add") {
				return done("Not added."), nil
			}
			return s.addByNumber(ctx, uin)
		}
	}
	return rep, nil
}

// profileFacts are what a profile tells, in words.
func profileFacts(p qqproto.Profile) []fact {
	where := []string{}
	for _, v := range []string{p.City, p.Province, p.Country} {
		if v != "" {
			where = append(where, v)
		}
	}
	out := []fact{{"QQ number", p.UIN.String()}}
	for _, f := range []fact{
		{"Nickname", p.Nick}, {"Real name", p.RealName}, {"Location", strings.Join(where, ", ")},
		{"School", p.School}, {"Job", p.Job}, {"Homepage", p.Homepage}, {"About", p.About},
	} {
		if f.value != "" {
			out = append(out, f)
		}
	}
	if note := profileNote(p); note != "" {
		out = append(out, fact{"Other", note})
	}
	return out
}

// addByNumber puts uin on the user's QQ buddy list and offers it to the
// roster; if uin must agree first, it is offered once they do.
func (s *session) addByNumber(ctx context.Context, uin qqproto.UIN) (reply, error) {
	switch {
	case !s.online():
		return reply{}, errNotOnline(s.link.state, "nobody was added.")
	case uin == s.uin():
		return reply{}, badRequest("That is your own QQ number.")
	}
	b := s.buddy(uin)
	if s.nick(b) == "" { // for the roster: a nickname, if QQ gives one
		if p, err := s.profile(ctx, uin); err == nil {
			s.buddies.setProfile(b, p.Nick, p.Face)
		}
	}
	offer := func(ctx context.Context) { s.offerContact(ctx, b) } // after the answer
	if b.listed() {
		s.afterResult = offer
		return done("QQ %d is on your QQ buddy list already; it was offered to your roster again.", uin), nil
	}
	res, err := s.addOnQQ(ctx, uin, "")
	if err != nil {
		return reply{}, err
	}
	switch res {
	case qqproto.AddAccepted:
		s.statSoon()
		if s.writeContact(ctx, b) {
			return done("QQ %d is on your QQ buddy list now, and in your roster.", uin), nil
		}
		s.afterResult = offer
		return done("QQ %d is on your QQ buddy list now. Accept the contact request from %s to have them in your roster.",
			uin, s.e.buddyJID(uin)), nil
	case qqproto.AddNeedsAuth, qqproto.AddAuthAlt:
		if s.runs.offerOnAccept == nil {
			s.runs.offerOnAccept = map[qqproto.UIN]bool{}
		}
		s.runs.offerOnAccept[uin] = true
		return done("QQ %d must accept you first: the request was sent. If they accept, they are offered to your roster.", uin), nil
	case qqproto.AddRefused:
		return reply{}, newUserError(stanza.NotAllowed, "%s", refusedAllText(uin))
	}
	return reply{}, newUserError(stanza.UndefinedCondition, "%s", unknownAddText(uin, res))
}
