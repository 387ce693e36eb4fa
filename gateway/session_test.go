package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// online registers alice and brings her phone online, waiting for the
// import's subscribes of the three buddies of world().
func (h *harness) online(show string) {
	h.t.Helper()
	h.register("10001", "secret")
	h.goOnline(show)
	for _, u := range []int{20001, 20002, 20003} {
		h.waitFor(fmt.Sprintf("subscribe from %d", u), presenceMatch(buddyAddr(u), "subscribe"))
	}
}

func TestLoginImportsRosterWithNicksAndPresence(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.register("10001", "secret")
	mark := h.cursor
	h.goOnline("")
	h.eventually("QQ session", func() bool { return h.sim.Session(10001).LoggedIn })
	h.waitFor("available from the domain", presenceMatch(testDomain, ""))
	h.cursor = mark
	nicks := map[int]string{20001: "Bob", 20002: "Carol, the 1st & only", 20003: "Dave"}
	for u, want := range nicks {
		h.cursor = mark
		st := h.waitFor(fmt.Sprintf("subscribe from %d", u), presenceMatch(buddyAddr(u), "subscribe"))
		if got := nickOf(t, st); got != want {
			t.Errorf("subscribe from %d carries nick %q, want %q", u, got, want)
		}
		if st.To.String() != aliceBare {
			t.Errorf("subscribe sent to %s, want the bare JID", st.To)
		}
	}
	h.cursor = mark
	bob := h.waitFor("available from Bob", presenceMatch(buddyAddr(20001), ""))
	if show, _ := showOf(t, bob); show != "" || nickOf(t, bob) != "Bob" {
		t.Errorf("Bob (online): %s", bob)
	}
	h.cursor = mark
	carol := h.waitFor("presence from Carol", presenceMatch(buddyAddr(20002), ""))
	if show, status := showOf(t, carol); show != "away" || status != busyStatus {
		t.Errorf("Carol (busy): %s, want show away with the busy text", carol)
	}
	h.cursor = mark
	if got := h.sent(presenceMatch(buddyAddr(20003), "")); len(got) != 0 {
		t.Errorf("Dave is offline but shown available: %v", got)
	}
	cs, err := h.st.Contacts(context.Background(), aliceBare)
	if err != nil || len(cs) != 3 {
		t.Fatalf("stored contacts %v, %v", cs, err)
	}
	for _, c := range cs {
		if c.Sub != store.PendingIn || c.Nick != nicks[int(c.UIN)] {
			t.Errorf("stored contact %+v", c)
		}
	}
}

func TestBuddyStateChangesAreSentOnce(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.skipAll()

	if err := h.sim.SetState(20001, qqproto.StatusBusy); err != nil {
		t.Fatal(err)
	}
	st := h.waitFor("Bob away", presenceMatch(buddyAddr(20001), ""))
	if show, _ := showOf(t, st); show != "away" {
		t.Fatalf("Bob busy: %s", st)
	}
	// Several MT=99 polls and Query_Stat periods later, still one presence.
	h.advance(4 * h.cfg.StatusInterval)
	if n := len(h.sent(presenceMatch(buddyAddr(20001), ""))); n != 0 {
		t.Errorf("%d more presences from Bob with nothing changed", n)
	}
	if err := h.sim.SetState(20003, qqproto.StatusOnline); err != nil {
		t.Fatal(err)
	}
	h.waitFor("Dave available", presenceMatch(buddyAddr(20003), ""))
	if err := h.sim.SetState(20002, qqproto.StatusInvisible); err != nil {
		t.Fatal(err)
	}
	h.waitFor("Carol unavailable (invisible)", presenceMatch(buddyAddr(20002), "unavailable"))
	if err := h.sim.SetState(20001, qqproto.StatusOffline); err != nil {
		t.Fatal(err)
	}
	h.waitFor("Bob unavailable", presenceMatch(buddyAddr(20001), "unavailable"))
	h.advance(2 * h.cfg.StatusInterval)
	for _, u := range []int{20001, 20002, 20003} {
		if n := len(h.sent(func(st xmppcomp.Stanza) bool {
			return st.Name == "presence" && st.From.Bare().String() == buddyAddr(u) && (st.Type == "" || st.Type == "unavailable")
		})); n != 0 {
			t.Errorf("%d repeated presences from %d", n, u)
		}
	}
}

func TestUserShowBecomesQQState(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("dnd")
	state := func(want qqproto.Status) {
		t.Helper()
		h.eventually(fmt.Sprintf("QQ state %d", want), func() bool { return h.sim.Session(10001).State == want })
	}
	state(qqproto.StatusBusy)
	// A second resource with a higher priority decides.
	h.presence("alice@example.org/desk", testDomain, "", "<show>chat</show><priority>5</priority>")
	state(qqproto.StatusOnline)
	h.presence("alice@example.org/desk", testDomain, "", "<show>xa</show><priority>5</priority>")
	state(qqproto.StatusBusy)
	h.presence("alice@example.org/desk", testDomain, "", "<priority>5</priority>")
	state(qqproto.StatusOnline)
	// It leaves: the phone's dnd counts again, and the session stays.
	h.presence("alice@example.org/desk", testDomain, "unavailable", "")
	state(qqproto.StatusBusy)
	if !h.sim.Session(10001).LoggedIn {
		t.Fatal("logged out while a resource remains")
	}
	// An unavailable to one buddy JID alone is the user removing that
	// contact from the roster (RFC 6121 3.3.2), not leaving.
	h.presence(aliceFull, buddyAddr(20001), "unavailable", "")
	h.iq("get", testDomain, `<ping xmlns="urn:xmpp:ping"/>`) // a barrier
	if !h.sim.Session(10001).LoggedIn {
		t.Fatal("logged out by an unavailable to one contact")
	}
	// The last resource leaves: the server's broadcast reaches the buddies
	// and the domain. Logout, and everything shows unavailable.
	h.skipAll()
	h.presence(aliceFull, buddyAddr(20002), "unavailable", "")
	h.presence(aliceFull, testDomain, "unavailable", "")
	h.eventually("QQ logout", func() bool { return !h.sim.Session(10001).LoggedIn })
	for _, from := range []string{buddyAddr(20001), buddyAddr(20002), testDomain} {
		h.waitFor("unavailable from "+from, presenceMatch(from, "unavailable"))
	}
	// Back online through a presence to a buddy JID: a new session...
	h.presence(aliceFull, buddyAddr(20001), "", "")
	h.eventually("QQ login again", func() bool { return h.sim.Session(10001).LoggedIn })
	// ...whose resource, unknown to the domain, leaves when the last buddy
	// JID that had its presence hears it go.
	h.presence(aliceFull, buddyAddr(20002), "", "")
	h.presence(aliceFull, buddyAddr(20001), "unavailable", "")
	h.iq("get", testDomain, `<ping xmlns="urn:xmpp:ping"/>`)
	if !h.sim.Session(10001).LoggedIn {
		t.Fatal("logged out while 20002 still had the resource's presence")
	}
	h.presence(aliceFull, buddyAddr(20002), "unavailable", "")
	h.eventually("QQ logout again", func() bool { return !h.sim.Session(10001).LoggedIn })
}

func TestRosterImportPagesAndSendsOnlyChanges(t *testing.T) {
	const n = 200 // more than one List page (160)
	a := qqsim.Account{UIN: 10001, Password: "secret", Nick: "Alice"}
	accounts := []qqsim.Account{}
	for i := 0; i < n; i++ {
		u := qqproto.UIN(40000 + i)
		a.Buddies = append(a.Buddies, u)
		st := qqproto.StatusOffline
		if i%3 == 0 {
			st = qqproto.StatusOnline
		}
		accounts = append(accounts, qqsim.Account{UIN: u, Password: "p", Nick: fmt.Sprintf("B%03d", i), State: st})
	}
	accounts = append(accounts, a, qqsim.Account{UIN: 50000, Password: "p", Nick: "Newcomer"})
	h := newHarness(t, qqsim.Options{}, accounts...)
	h.cfg.ProfileFetches = n
	h.stop()
	h.start()
	h.register("10001", "secret")
	h.goOnline("")
	for i := 0; i < n; i++ {
		u := 40000 + i
		st := h.waitFor(fmt.Sprintf("subscribe from %d", u), func(st xmppcomp.Stanza) bool {
			return st.Name == "presence" && st.Type == "subscribe" && st.From.String() == buddyAddr(u)
		})
		h.cursor = 0
		if got, want := nickOf(t, st), fmt.Sprintf("B%03d", i); got != want {
			t.Errorf("buddy %d: nick %q, want %q", u, got, want)
		}
	}
	// The user takes Bob-the-first into the roster.
	h.presence(aliceFull, buddyAddr(40000), "subscribed", "")
	h.presence(aliceFull, buddyAddr(40000), "subscribe", "")
	h.skipAll()
	h.waitFor("subscribed answer", presenceMatch(buddyAddr(40000), "subscribed"))
	h.eventually("stored as both", func() bool {
		c, err := h.st.Contact(context.Background(), aliceBare, 40000)
		return err == nil && c.Sub == store.Both
	})

	// Offline and back, after the QQ list changed: one buddy added, the
	// confirmed one removed. Only the changes are sent.
	h.presence(aliceFull, testDomain, "unavailable", "")
	h.eventually("logout", func() bool { return !h.sim.Session(10001).LoggedIn })
	if err := h.sim.Ack(10001, 50000, qqproto.AckRequest, ""); err != nil { // auth 0: added at once
		t.Fatal(err)
	}
	removeBuddy(t, h, 40000)
	h.skipAll()
	h.goOnline("")
	h.waitFor("subscribe from the newcomer", presenceMatch(buddyAddr(50000), "subscribe"))
	h.waitFor("removed buddy unsubscribed", presenceMatch(buddyAddr(40000), "unsubscribed"))
	h.advance(2 * h.cfg.StatusInterval)
	subs := 0
	for _, st := range h.sentSinceLogin() {
		if st.Type == "subscribe" {
			subs++
		}
	}
	if subs != 1 {
		t.Errorf("%d subscribes at the second import, want 1 (only the new buddy)", subs)
	}
}

// sentSinceLogin returns what was sent since the last available presence
// from the domain.
func (h *harness) sentSinceLogin() []xmppcomp.Stanza {
	all := h.out.all()
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Name == "presence" && all[i].From.Bare().String() == testDomain && all[i].Type == "" {
			return all[i:]
		}
	}
	return all
}

// removeBuddy deletes a buddy from alice's QQ list behind the gateway's
// back, with a client of her own.
func removeBuddy(t *testing.T, h *harness, u qqproto.UIN) {
	t.Helper()
	c := qqproto.NewClient(10001, qqproto.Options{Server: h.qqURL})
	ctx := context.Background()
	if _, err := c.Login(ctx, qqproto.PasswordMD5("secret")); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveBuddy(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestProbesAreAnswered(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.register("10001", "secret")
	h.presence(aliceBare, buddyAddr(20001), "probe", "")
	h.waitFor("unavailable while offline", presenceMatch(buddyAddr(20001), "unavailable"))
	h.presence(aliceBare, testDomain, "probe", "")
	h.waitFor("domain unavailable while offline", presenceMatch(testDomain, "unavailable"))
	h.goOnline("")
	h.waitFor("Carol away", presenceMatch(buddyAddr(20002), ""))
	// The server's probe at the resource's login: the resource was shown
	// everything directly, so an answer would only repeat it.
	h.quiesce()
	h.skipAll()
	h.presence(aliceBare, buddyAddr(20002), "probe", "")
	h.presence(aliceFull, buddyAddr(20002), "probe", "") // Prosody's, from the full JID
	h.presence(aliceBare, testDomain, "probe", "")
	h.quiesce()
	if got := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "presence" }); len(got) != 0 {
		t.Errorf("probes of an online user's server answered again: %v", got)
	}
}

// Each of the user's resources sees each presence once: the first by the
// login, one that comes later by a catch-up sent to it alone.
func TestEachResourceSeesEachPresenceOnce(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.quiesce()
	phone := map[string]int{}
	for _, st := range h.out.all() {
		if st.Name == "presence" && st.Type == "" && st.To.String() == aliceFull {
			phone[st.From.Bare().String()]++
		}
	}
	for _, from := range []string{testDomain, buddyAddr(20001), buddyAddr(20002)} {
		if phone[from] != 1 {
			t.Errorf("the phone saw %d available presences from %s, want 1", phone[from], from)
		}
	}
	h.skipAll()
	const desk = "alice@example.org/desk"
	h.presence(desk, testDomain, "", "")
	h.presence(desk, buddyAddr(20001), "", "")
	h.presence("alice@example.org", buddyAddr(20001), "probe", "")
	h.quiesce()
	got := map[string]int{}
	for _, st := range h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "presence" }) {
		if st.To.String() != desk {
			t.Errorf("a second resource's arrival sent %s", st)
		}
		got[st.From.Bare().String()]++
	}
	for _, from := range []string{testDomain, buddyAddr(20001), buddyAddr(20002)} {
		if got[from] != 1 {
			t.Errorf("the desk saw %d presences from %s, want 1", got[from], from)
		}
	}
	if got[buddyAddr(20003)] != 0 {
		t.Errorf("the desk saw offline Dave: %d", got[buddyAddr(20003)])
	}
}

func TestUnregisteredUserGetsRegistrationRequired(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.presence(aliceFull, buddyAddr(20001), "", "")
	st := h.waitFor("presence error", presenceMatch(buddyAddr(20001), "error"))
	if cond, typ, _ := stanzaErr(t, st); cond != "registration-required" || typ != "auth" {
		t.Errorf("presence to a buddy: %s", st)
	}
	h.in(`<message xmlns="jabber:component:accept" type="chat" id="m1" from=%q to=%q><body>hi</body></message>`, aliceFull, buddyAddr(20001))
	st = h.waitFor("message error", func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.Type == "error" })
	if cond, _, _ := stanzaErr(t, st); cond != "registration-required" || st.ID != "m1" {
		t.Errorf("message to a buddy: %s", st)
	}
	h.presence(aliceFull, buddyAddr(20001), "subscribe", "")
	st = h.waitFor("subscribe error", presenceMatch(buddyAddr(20001), "error"))
	if cond, _, _ := stanzaErr(t, st); cond != "registration-required" {
		t.Errorf("subscribe to a buddy: %s", st)
	}
	// Nothing lingers for a JID that is not registered.
	h.presence(aliceFull, buddyAddr(20001), "unavailable", "")
	h.iq("get", testDomain, `<ping xmlns="urn:xmpp:ping"/>`)
	h.eventually("session dropped", func() bool { return sessionCount(h.g) == 0 })
}

func TestLoginRefusedLaterIsReportedWithoutRetryStorm(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	// The password changed on the QQ side since registration.
	if err := h.st.PutRegistration(context.Background(), store.Registration{JID: aliceBare, UIN: 10001, PasswordMD5: qqproto.PasswordMD5("old")}); err != nil {
		t.Fatal(err)
	}
	logins := func() int {
		n := 0
		for _, r := range h.sim.Requests(10001) {
			if r.Cmd == "LOGIN" {
				n++
			}
		}
		return n
	}
	h.goOnline("")
	st := h.waitFor("presence error from the domain", presenceMatch(testDomain, "error"))
	if cond, typ, text := stanzaErr(t, st); cond != "not-authorized" || typ != "auth" || text != wantStoredRefused || st.To.String() != aliceFull {
		t.Errorf("refused login: %s", st)
	}
	h.advance(10 * h.cfg.LoginBackoffMin)
	h.goOnline("away") // a show change is no reason to try again
	h.iq("get", testDomain, `<ping xmlns="urn:xmpp:ping"/>`)
	h.advance(5 * h.cfg.LoginBackoffMin)
	if n := logins(); n != 1 {
		t.Errorf("%d logins after a refusal, want 1", n)
	}
	// Coming back online later tries once more.
	h.presence(aliceFull, testDomain, "unavailable", "")
	h.goOnline("")
	h.waitFor("second presence error", presenceMatch(testDomain, "error"))
	if n := logins(); n != 2 {
		t.Errorf("%d logins after coming back, want 2", n)
	}
	// Re-registering with the new password fixes it at once.
	h.register("10001", "secret")
	h.eventually("QQ session", func() bool { return h.sim.Session(10001).LoggedIn })
	h.waitFor("domain available", presenceMatch(testDomain, ""))
	if reg, err := h.st.Registration(context.Background(), aliceBare); err != nil || reg.PasswordMD5 != qqproto.PasswordMD5("secret") {
		t.Errorf("the second registration did not change the stored password: %v", err)
	}
}

// flaky wraps the emulator with a switch that makes it answer 503.
type flaky struct {
	h    http.Handler
	down atomic.Bool
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	f.h.ServeHTTP(w, r)
}

func TestLoginRetriesWithBackoffWhileQQIsDown(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	f := &flaky{h: h.sim}
	srv := httptest.NewServer(f)
	defer srv.Close()
	h.stop()
	h.cfg.QQ.Server = srv.URL + "/"
	h.start()
	h.register("10001", "secret")
	f.down.Store(true)
	h.goOnline("")
	st := h.waitFor("presence error", presenceMatch(testDomain, "error"))
	if cond, typ, _ := stanzaErr(t, st); cond != "remote-server-timeout" || typ != "wait" {
		t.Errorf("QQ down: %s", st)
	}
	h.advance(2 * h.cfg.LoginBackoffMax)
	if n := len(h.sent(presenceMatch(testDomain, "error"))); n != 0 {
		t.Errorf("%d more presence errors during one outage, want none", n)
	}
	f.down.Store(false)
	h.eventually("QQ session after the outage", func() bool { return h.sim.Session(10001).LoggedIn })
	h.waitFor("domain available", presenceMatch(testDomain, ""))
}

// clock is a settable time for qqsim.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func TestLostQQSessionIsQuietlyRestored(t *testing.T) {
	clk := &clock{}
	h := newHarness(t, qqsim.Options{Now: clk.now, IdleTimeout: time.Minute}, world()...)
	h.online("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.waitFor("Carol away", presenceMatch(buddyAddr(20002), ""))
	h.advance(h.cfg.PollIdle)
	h.skipAll()
	// The server drops the session: the gateway's next poll meets RES=20.
	clk.advance(2 * time.Minute)
	h.eventually("second login", func() bool { return h.sim.Session(10001).Logins == 2 })
	h.eventually("logged in", func() bool { return h.sim.Session(10001).LoggedIn })
	h.advance(3 * h.cfg.StatusInterval)
	for _, st := range h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "presence" }) {
		t.Errorf("the user saw %s during a quiet re-login", st)
	}
	// And the session works: a state change arrives.
	if err := h.sim.SetState(20001, qqproto.StatusBusy); err != nil {
		t.Fatal(err)
	}
	h.waitFor("Bob away", presenceMatch(buddyAddr(20001), ""))
}

func TestShutdownAndRestart(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("dnd")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.waitFor("Carol away", presenceMatch(buddyAddr(20002), ""))
	h.skipAll()
	start := time.Now()
	h.stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	// The transport first (every user learns it is going), then its buddies.
	for _, from := range []string{testDomain, buddyAddr(20001), buddyAddr(20002)} {
		h.waitFor("unavailable from "+from+" at shutdown", presenceMatch(from, "unavailable"))
	}
	if h.sim.Session(10001).LoggedIn {
		t.Error("QQ session still logged in after shutdown")
	}

	// A new process on the same store: it probes every registered user,
	// and the server's answer brings the session back.
	h.start()
	h.g.OnConnect(context.Background())
	h.waitFor("probe of alice", func(st xmppcomp.Stanza) bool {
		return st.Name == "presence" && st.Type == "probe" && st.From.String() == testDomain && st.To.String() == aliceBare
	})
	h.goOnline("dnd") // what the user's server answers
	h.eventually("QQ session back", func() bool { return h.sim.Session(10001).LoggedIn })
	h.eventually("dnd restored", func() bool { return h.sim.Session(10001).State == qqproto.StatusBusy })
	h.waitFor("Bob available again", presenceMatch(buddyAddr(20001), ""))
	// Nothing asked again: the roster is known.
	if subs := h.sent(func(st xmppcomp.Stanza) bool { return st.Type == "subscribe" }); len(subs) != 0 {
		t.Errorf("restart re-sent subscribes: %v", subs)
	}
}

func TestReconnectReannouncesLostPresence(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.skipAll()
	h.out.down.Store(true) // the component connection is down
	if err := h.sim.SetState(20001, qqproto.StatusBusy); err != nil {
		t.Fatal(err)
	}
	h.advance(3 * h.cfg.StatusInterval)
	h.out.down.Store(false)
	h.g.OnConnect(context.Background())
	mark := h.cursor
	st := h.waitFor("Bob's presence after the reconnect", presenceMatch(buddyAddr(20001), ""))
	if show, _ := showOf(t, st); show != "away" {
		t.Errorf("after reconnect: %s", st)
	}
	h.cursor = mark
	h.waitFor("domain available", presenceMatch(testDomain, ""))
}

func TestDefaultMessageRelay(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	if err := h.sim.Send(20001, 10001, "你好, & hi"); err != nil {
		t.Fatal(err)
	}
	st := h.waitFor("message from Bob", func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.From.String() == buddyAddr(20001) })
	var m message
	if err := st.Decode(&m); err != nil || m.Body != "你好, & hi" || m.Type != "chat" {
		t.Errorf("message: %s", st)
	}
	h.in(`<message xmlns="jabber:component:accept" type="chat" id="m2" from=%q to=%q><body>hello &amp; bye</body></message>`, aliceFull, buddyAddr(20001))
	h.eventually("message in Bob's inbox", func() bool {
		for _, it := range h.sim.Inbox(20001) {
			if it.From == 10001 && it.Text == "hello & bye" {
				return true
			}
		}
		return false
	})
	if errs := h.sent(func(st xmppcomp.Stanza) bool { return st.Type == "error" }); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

// After a reconnect, resources the user's server does not confirm (by
// answering the probe) went away while the connection was down.
func TestReconnectSweepsUnconfirmedResources(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.g.cfg.ResourceGrace = 300 * time.Millisecond
	h.online("dnd")
	h.presence("alice@example.org/desk", testDomain, "", "<priority>5</priority>")
	h.iq("get", testDomain, `<ping xmlns="urn:xmpp:ping"/>`) // a barrier: the desk is known
	h.eventually("online by the desk's priority", func() bool { return h.sim.Session(10001).State == qqproto.StatusOnline })
	h.g.OnConnect(context.Background()) // the first connection
	h.g.OnConnect(context.Background()) // a reconnect
	// The server answers the probe for the phone only: the desk is gone.
	h.goOnline("dnd")
	h.advance(3 * h.g.cfg.ResourceGrace)
	// Had the desk (priority 5, no show) stayed, QQ would show online.
	if s := h.sim.Session(10001); !s.LoggedIn || s.State != qqproto.StatusBusy {
		t.Fatalf("after the sweep: %+v, want logged in and busy (the phone)", s)
	}
	h.g.OnConnect(context.Background())
	// Nothing confirmed this time: the user went offline unseen.
	h.eventually("logout after an unconfirmed reconnect", func() bool { return !h.sim.Session(10001).LoggedIn })
}

// A message the gateway cannot keep because the store fails must not
// vanish: the sender gets an error (try again later) instead of silence,
// and it is not sent without the guarantee.
func TestMessageAnsweredWhenRegistrationUnreadable(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	h.in(`<message xmlns="jabber:component:accept" type="chat" id="m1" from=%q to=%q><body>hi</body></message>`, aliceFull, buddyAddr(20001))
	ans := h.waitFor("error for the message", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && st.ID == "m1"
	})
	if ans.Type != "error" {
		t.Fatalf("answer is %s, want an error", ans)
	}
	if cond, typ, _ := stanzaErr(t, ans); cond != "resource-constraint" || typ != "wait" {
		t.Errorf("condition %q type %q, want resource-constraint, wait", cond, typ)
	}
}

// sessionCount is the number of sessions in memory.
func sessionCount(g *Gateway) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}

// When the XMPP server goes down with the user, the unavailable presences
// of the logout cannot be sent; the next login must still show the
// transport and the buddies available, not take them for already shown.
func TestLoginAfterALogoutThatCouldNotBeSentShowsEverything(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.quiesce()
	h.out.down.Store(true) // the server goes away, and the user with it
	h.presence(aliceFull, testDomain, "unavailable", "")
	h.eventually("logout", func() bool { return !h.sim.Session(10001).LoggedIn })
	h.quiesce()
	h.out.down.Store(false)
	h.skipAll()
	h.goOnline("")
	h.waitFor("the domain available again", presenceMatch(testDomain, ""))
	h.waitFor("Bob available again", presenceMatch(buddyAddr(20001), ""))
}
