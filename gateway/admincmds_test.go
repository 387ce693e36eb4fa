package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

const (
	adminBare = "admin@example.org"
	adminFull = "admin@example.org/desk"
)

// adminHarness has alice registered and online, and admin@example.org as
// the gateway's administrator.
func adminHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, qqsim.Options{}, world()...)
	h.stop()
	h.cfg.Admins = []string{adminBare}
	h.start()
	h.online("")
	h.quiesce() // alice's session has published its state
	return h
}

// adminCommand runs an ad-hoc command of the admin's to its end, filling
// each page with the values for it, in order.
func (h *harness) adminCommand(node string, pages ...map[string]string) adhocAnswer {
	h.t.Helper()
	a := decodeAdhoc(h.t, h.command(adminFull, node, "execute", "", nil))
	for _, p := range pages {
		a = decodeAdhoc(h.t, h.command(adminFull, node, "next", a.ID, p))
	}
	if a.Status != "completed" {
		h.t.Fatalf("%s did not complete: %+v", node, a)
	}
	return a
}

func TestAdminAccessFollowsConfigAndSetAdmins(t *testing.T) {
	h := adminHarness(t)
	wantCond(t, h.command(aliceFull, "stats", "execute", "", nil), "forbidden", "")
	wantSaid(t, h.say("users"), "⚠ Only the gateway's administrators")
	if got := h.commandNodes(adminFull); !slices.Equal(got, append([]string{"register"}, adminCmds...)) {
		t.Errorf("an unregistered admin sees %v", got)
	}
	h.g.SetAdmins([]string{aliceBare, "not a jid@@"})
	if got := h.commandNodes(adminFull); !slices.Equal(got, guestCommands) {
		t.Errorf("a former admin sees %v", got)
	}
	wantSaid(t, h.say("stats"), "Gateway statistics")

	cfg := h.cfg
	cfg.Admins = []string{"@bad"}
	if _, err := New(cfg, h.st); err == nil || !strings.Contains(err.Error(), "Admins") {
		t.Errorf("New with a bad admin JID: %v", err)
	}
}

func TestAdminListsUsersAndShowsOne(t *testing.T) {
	h := adminHarness(t)
	h.advance(h.cfg.PollIdle) // a poll, for "last poll"
	a := h.adminCommand("users")
	f := a.Form
	if f == nil || len(f.Reported.Fields) != 4 || len(f.Items) != 1 {
		t.Fatalf("users table: %+v", f)
	}
	row := map[string]string{}
	for _, x := range f.Items[0].Fields {
		row[x.Var] = strings.Join(x.Values, "")
	}
	if row["jid"] != aliceBare || row["uin"] != "10001" || row["qq"] != "online" || row["clients"] != "1" {
		t.Errorf("alice's row %v", row)
	}
	wantSaid(t, h.sayFrom(adminFull, "users"), "Registered users: 1", "alice@example.org · 10001 · online · 1")

	u := h.adminCommand("user", map[string]string{"jid": aliceFull})
	wantSaid(t, u.Form.text(), "QQ number: 10001", "QQ: online", "Clients online: 1", "Contacts: 3", "Queued for QQ: 0", "Queued for XMPP: 0")
	if strings.Contains(u.Form.text(), "Last poll: never") {
		t.Errorf("no poll noted: %s", u.Form.text())
	}
	wantSaid(t, h.sayFrom(adminFull, "user "+aliceBare), "QQ number: 10001", "Last poll: ")
	wantSaid(t, h.sayFrom(adminFull, "user bob@example.org"), "⚠ No user is registered as bob@example.org")
	wantSaid(t, h.sayFrom(adminFull, "user nobody"), "⚠", "not a user's JID")
}

func TestAdminStatistics(t *testing.T) {
	h := adminHarness(t)
	h.userMessage("m1", buddyAddr(20001), "<body>hi Bob</body>")
	h.eventually("Bob got it", func() bool { return len(h.inboxFrom(20001)) == 1 })
	if err := h.sim.Send(20001, 10001, "hi Alice"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("Bob's message", messageFrom(buddyAddr(20001)))
	// Counted once the server confirmed it (the shared barrier's answer),
	// a moment after it went out.
	var s string
	h.eventually("Bob's message counted", func() bool {
		s = h.adminCommand("stats").Form.text()
		return strings.Contains(s, "Messages from QQ: 1")
	})
	wantSaid(t, s, "Version: dev", "Uptime: ", "Registered users: 1", "Sessions: 2", "Logged in to QQ: 1",
		"Messages to QQ: 1", "Messages from QQ: 1", "QQ request errors: 0")
	if strings.Contains(s, "QQ requests: 0") {
		t.Errorf("no QQ request counted: %s", s)
	}
	wantSaid(t, h.sayFrom(adminFull, "stats"), "Messages to QQ: 1")
}

func TestAdminAnnouncement(t *testing.T) {
	h := adminHarness(t)
	mark := h.cursor
	a := h.adminCommand("announce", map[string]string{"text": "Maintenance at noon.\nBack by one."})
	wantSaid(t, a.note(), "Sent to 1 users online")
	h.cursor = mark // sent before the command's answer
	st := h.waitFor("the announcement", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && st.From.String() == testDomain && st.To.String() == aliceBare
	})
	if b := decodeChat(t, st).Body; b != "Maintenance at noon.\nBack by one." {
		t.Errorf("announcement %q", b)
	}
	mark = h.cursor
	wantSaid(t, h.sayFrom(adminFull, "announce Back soon"), "Sent to 1 users online")
	h.cursor = mark
	st = h.waitFor("the second announcement", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && st.From.String() == testDomain && st.To.String() == aliceBare
	})
	if b := decodeChat(t, st).Body; b != "Back soon" || st.To.String() != aliceBare {
		t.Errorf("announcement %q to %s", b, st.To)
	}
}

func TestAdminRemovesAUser(t *testing.T) {
	h := adminHarness(t)
	wantSaid(t, h.sayFrom(adminFull, "remove "+aliceBare), "QQ number: 10001", "Remove alice@example.org? (yes or no)")
	wantSaid(t, h.sayFrom(adminFull, "no"), "Nothing was changed")

	a := decodeAdhoc(t, h.command(adminFull, "remove", "execute", "", nil))
	a = decodeAdhoc(t, h.command(adminFull, "remove", "next", a.ID, map[string]string{"jid": aliceBare}))
	if f, ok := a.Form.field("confirm"); !ok || f.Type != "boolean" || !strings.Contains(a.Form.text(), "10001") {
		t.Fatalf("confirmation page %+v", a.Form)
	}
	mark := h.cursor
	done := decodeAdhoc(t, h.command(adminFull, "remove", "complete", a.ID, map[string]string{"confirm": "true"}))
	wantSaid(t, done.note(), "alice@example.org is being removed")
	h.cursor = mark // alice's session may tell her before the admin hears back
	st := h.waitFor("the notice to alice", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && st.From.String() == testDomain && st.To.String() == aliceBare
	})
	wantSaid(t, decodeChat(t, st).Body, "administrator", "removed your registration")
	h.waitFor("the domain leaves alice's roster", presenceMatch(testDomain, "unsubscribed"))
	if _, err := h.st.Registration(context.Background(), aliceBare); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice still registered: %v", err)
	}
	h.eventually("QQ logout", func() bool { return !h.sim.Session(qqproto.UIN(10001)).LoggedIn })
	a = decodeAdhoc(t, h.command(adminFull, "remove", "execute", "", nil))
	wantCond(t, h.command(adminFull, "remove", "next", a.ID, map[string]string{"jid": aliceBare}), "item-not-found", "")
}

// The stats command reads the metrics themselves: after messages each way
// and refused ones, it shows what a scrape shows.
func TestAdminStatisticsAreTheMetrics(t *testing.T) {
	h, reg := newMeteredHarness(t)
	h.stop()
	h.cfg.Admins = []string{adminBare}
	h.start()
	h.online("")
	h.userMessage(h.id(), buddyAddr(20001), "<body>hi Bob</body>")
	h.eventually("Bob got it", func() bool { return len(h.inboxFrom(20001)) == 1 })
	if err := h.sim.Send(20001, 10001, "hi Alice"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("Bob's message", messageFrom(buddyAddr(20001)))
	h.eventually("delivery queue emptied", func() bool { return len(h.pendingToXMPP()) == 0 })
	h.in(`<message xmlns="jabber:component:accept" type="chat" id="x1" from="eve@example.org/pc" to=%q><body>hi</body></message>`, buddyAddr(20001))
	h.waitFor("error for eve", func(st xmppcomp.Stanza) bool { return st.ID == "x1" && st.Type == "error" })
	h.presence(aliceFull, testDomain, presUnavailable, "")
	h.eventually("logged out", func() bool { return !h.sim.Session(10001).LoggedIn })
	h.quiesce()

	got := scrape(t, reg)
	sum := func(prefix string, skip string) int {
		n := 0.0
		for k, v := range got {
			if strings.HasPrefix(k, prefix) && (skip == "" || !strings.Contains(k, skip)) {
				n += v
			}
		}
		return int(n)
	}
	requests, failures := sum("qqgateway_qq_requests_total{", ""), sum("qqgateway_qq_requests_total{", `result="ok"`)
	if requests == 0 {
		t.Fatal("no QQ request scraped")
	}
	wantSaid(t, h.adminCommand("stats").Form.text(), "Messages to QQ: 1", "Messages from QQ: 1",
		"Messages failed: 1 to QQ, 0 from QQ", "Logged in to QQ: 0",
		fmt.Sprintf("QQ requests: %d\n", requests), fmt.Sprintf("QQ request errors: %d\n", failures))
}
