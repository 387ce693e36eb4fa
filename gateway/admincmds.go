package gateway

// The administrators' commands (Config.Admins): the registered users, one
// user's details, statistics, an announcement to every online user, and
// removing a user.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/store"
)

func adminCommands() []*command {
	jidStep := func(title string, last bool, then step) step {
		return func(*session, context.Context, answers) (reply, error) {
			return reply{title: title, ask: []field{{name: "jid", label: "The user's JID", kind: jidField, check: checkJID}}, next: then, last: last}, nil
		}
	}
	return []*command{
		{name: "users", title: "List registered users", who: forAdmins, start: (*session).listUsers},
		{name: "user", title: "Show a user", args: "[JID]", who: forAdmins, start: jidStep("Show a user", true, (*session).showUser)},
		{name: "stats", title: "Gateway statistics", who: forAdmins, start: (*session).showStats},
		{name: "announce", title: "Send an announcement", args: "[text]", who: forAdmins, start: (*session).askAnnouncement},
		{name: "remove", title: "Remove a user", args: "[JID]", who: forAdmins, start: jidStep("Remove a user", false, (*session).confirmRemoval)},
	}
}

// SetAdmins replaces the bare JIDs that may run the administrators'
// commands, as after a configuration reload. A string that is no JID is
// logged and left out. Safe for concurrent use.
func (g *Gateway) SetAdmins(admins []string) {
	m := make(map[string]bool, len(admins))
	for _, a := range admins {
		j, err := jid.Parse(strings.TrimSpace(a))
		if err != nil {
			g.log.WithField("admin", a).Warn("gateway: an administrator's JID is not a JID; left out")
			continue
		}
		m[j.Bare().String()] = true
	}
	g.admins.Store(&m)
}

func (g *Gateway) isAdmin(j jid.JID) bool {
	m := g.admins.Load()
	return m != nil && (*m)[j.Bare().String()]
}

// listUsers lists every registration with its QQ state.
func (s *session) listUsers(ctx context.Context, _ answers) (reply, error) {
	regs, err := s.g.st.Registrations(ctx)
	if err != nil {
		return reply{}, err
	}
	if len(regs) == 0 {
		return done("No user is registered."), nil
	}
	t := &table{cols: []column{{"jid", "JID", true}, {"uin", "QQ number", false}, {"qq", "QQ", false}, {"clients", "Clients online", false}}}
	for _, r := range regs {
		v := s.g.viewOf(r.JID)
		t.rows = append(t.rows, []string{r.JID, strconv.FormatInt(r.UIN, 10), v.state.String(), strconv.Itoa(v.clients)})
	}
	return reply{title: fmt.Sprintf("Registered users: %d", len(regs)), table: t}, nil
}

// registrationOf is the registration of a user an admin named.
func (s *session) registrationOf(ctx context.Context, bare string) (store.Registration, error) {
	r, err := s.g.st.Registration(ctx, bare)
	if errors.Is(err, store.ErrNotFound) {
		return r, newUserError(stanza.ItemNotFound, "No user is registered as %s.", bare)
	}
	return r, err
}

// showUser shows one user: registration, QQ state, last poll, queues.
func (s *session) showUser(ctx context.Context, a answers) (reply, error) {
	bare := a.bareJID("jid")
	r, err := s.registrationOf(ctx, bare)
	if err != nil {
		return reply{}, err
	}
	v := s.g.viewOf(bare)
	facts := []fact{
		{"JID", bare}, {"QQ number", strconv.FormatInt(r.UIN, 10)},
		{"Registered", stamp(r.Created)}, {"Password changed", stamp(r.Updated)},
		{"QQ", v.state.String()}, {"Clients online", strconv.Itoa(v.clients)},
		{"Last poll", s.ago(v.lastPoll)},
	}
	contacts, err := s.g.st.Contacts(ctx, bare)
	if err != nil {
		return reply{}, err
	}
	facts = append(facts, fact{"Contacts", strconv.Itoa(len(contacts))})
	for _, q := range []struct {
		label string
		dir   store.Direction
	}{{"Queued for QQ", store.ToQQ}, {"Queued for XMPP", store.ToXMPP}} {
		items, err := s.g.st.Pending(ctx, bare, q.dir)
		if err != nil {
			return reply{}, err
		}
		facts = append(facts, fact{q.label, strconv.Itoa(len(items))})
	}
	return reply{title: bare, facts: facts}, nil
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// ago is a past time and how long ago it was, or "never".
func (s *session) ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%s (%v ago)", stamp(t), s.g.clock.Since(t).Round(time.Second))
}

// showStats shows the gateway's figures: the totals are those of its
// Metrics, counted since they were made (the daemon's start).
func (s *session) showStats(ctx context.Context, _ answers) (reply, error) {
	regs, err := s.g.st.Registrations(ctx)
	if err != nil {
		return reply{}, err
	}
	dead, err := s.g.st.DeadLetterCount(ctx)
	if err != nil {
		return reply{}, err
	}
	t := s.g.cfg.Metrics.totals()
	n := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return reply{title: "Gateway statistics", facts: []fact{
		{"Version", s.g.cfg.Version},
		{"Uptime", s.g.clock.Since(s.g.started).Round(time.Second).String()},
		{"Registered users", strconv.Itoa(len(regs))},
		{"Sessions", strconv.Itoa(len(s.g.snapshot()))},
		{"Logged in to QQ", strconv.Itoa(s.g.onlineSessions())},
		{"Messages to QQ", n(t.toQQ)},
		{"Messages from QQ", n(t.toXMPP)},
		{"Messages failed", fmt.Sprintf("%s to QQ, %s from QQ", n(t.failedToQQ), n(t.failedToXMPP))},
		// Rows given up on, kept in the database's dead_letter table.
		{"Dead letters", strconv.Itoa(dead)},
		{"QQ requests", n(t.qqRequests)},
		{"QQ request errors", n(t.qqErrors)},
	}}, nil
}

func (s *session) askAnnouncement(context.Context, answers) (reply, error) {
	return reply{
		title: "Send an announcement",
		text:  fmt.Sprintf("A message from %s to every user with a client online.", s.e.dom),
		ask:   []field{{name: "text", label: "Announcement", kind: longField}},
		next:  (*session).sendAnnouncement, last: true,
	}, nil
}

// sendAnnouncement sends text from the domain to every user who has a
// client online.
func (s *session) sendAnnouncement(ctx context.Context, a answers) (reply, error) {
	n := 0
	for _, u := range s.g.snapshot() {
		if v := u.view.Load(); v == nil || v.clients == 0 {
			continue
		}
		if s.e.message(ctx, u.key, qqMessage{typ: "normal", text: a["text"]}) == nil {
			n++
		}
	}
	s.log.WithField("recipients", n).Info("gateway: announcement sent")
	return done("Sent to %d users online.", n), nil
}

// confirmRemoval shows whom an admin is about to remove, and asks.
func (s *session) confirmRemoval(ctx context.Context, a answers) (reply, error) {
	bare := a.bareJID("jid")
	r, err := s.registrationOf(ctx, bare)
	if err != nil {
		return reply{}, err
	}
	return reply{
		title: "Remove " + bare,
		text: "This logs the user out of QQ, deletes their registration and contacts, and takes the transport " +
			"out of their roster. They are told.",
		facts: []fact{{"JID", bare}, {"QQ number", strconv.FormatInt(r.UIN, 10)}},
		ask:   []field{{name: "confirm", label: "Remove " + bare, kind: yesNoField}},
		last:  true,
		next: func(s *session, _ context.Context, a answers) (reply, error) {
			if !a.yes("confirm") {
				return done("Nothing was changed."), nil
			}
			s.removeUser(bare)
			return done("%s is being removed.", bare), nil
		},
	}, nil
}

// removeUser unregisters bare in its own session, after what it has
// queued: a session waits for no other.
func (s *session) removeUser(bare string) {
	j, err := jid.Parse(bare)
	if err != nil {
		return
	}
	admin := s.key
	s.log.WithField("user", bare).Info("gateway: an administrator removes a user")
	s.g.enqueue(j, func(ctx context.Context, u *session) {
		defer u.g.maybeDrop(u)
		if err := u.load(ctx); err != nil || u.reg == nil {
			return
		}
		if err := u.unregister(ctx); err != nil {
			u.log.WithError(err).Error("gateway: removal by an administrator failed")
			return
		}
		u.log.WithField("admin", admin).Info("gateway: removed by an administrator")
		u.e.message(ctx, u.key, qqMessage{typ: "normal", text: "An administrator of the QQ gateway removed your registration. You may register again."})
		u.afterReply(ctx) // the transport's contacts leave the roster
	})
}
