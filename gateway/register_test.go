package gateway

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

var (
	alice = qqsim.Account{UIN: 10001, Password: "secret", Nick: "Alice", Buddies: []qqproto.UIN{20001, 20002, 20003}}
	bob   = qqsim.Account{UIN: 20001, Password: "b", Nick: "Bob", State: qqproto.StatusOnline, Buddies: []qqproto.UIN{10001}}
	carol = qqsim.Account{UIN: 20002, Password: "c", Nick: "Carol, the 1st & only", State: qqproto.StatusBusy, Buddies: []qqproto.UIN{10001}}
	dave  = qqsim.Account{UIN: 20003, Password: "d", Nick: "Dave", Buddies: []qqproto.UIN{10001}}
)

func world() []qqsim.Account { return []qqsim.Account{alice, bob, carol, dave} }

type registerAnswer struct {
	Query struct {
		Instructions string    `xml:"instructions"`
		Registered   *struct{} `xml:"registered"`
		Username     *string   `xml:"username"`
		Password     *string   `xml:"password"`
		Form         *struct {
			Type   string `xml:"type,attr"`
			Fields []struct {
				Var    string   `xml:"var,attr"`
				Type   string   `xml:"type,attr"`
				Values []string `xml:"value"`
			} `xml:"field"`
		} `xml:"jabber:x:data x"`
	} `xml:"jabber:iq:register query"`
}

func TestRegistrationGet(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	ans := h.iq("get", testDomain, `<query xmlns="jabber:iq:register"/>`)
	var r registerAnswer
	if err := ans.Decode(&r); err != nil || ans.Type != "result" {
		t.Fatalf("register get: %s (%v)", ans, err)
	}
	q := r.Query
	if q.Instructions == "" || q.Username == nil || q.Password == nil || q.Registered != nil {
		t.Errorf("unregistered get: want instructions, empty username and password, no registered: %s", ans)
	}
	if q.Form == nil || q.Form.Type != "form" {
		t.Fatalf("no data form: %s", ans)
	}
	vars := map[string]string{}
	for _, f := range q.Form.Fields {
		vars[f.Var] = f.Type
	}
	if vars["username"] == "" || vars["password"] != "text-private" || vars["FORM_TYPE"] != "hidden" {
		t.Errorf("form fields %v", vars)
	}

	h.register("10001", "secret")
	ans = h.iq("get", testDomain, `<query xmlns="jabber:iq:register"/>`)
	r = registerAnswer{}
	if err := ans.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Query.Registered == nil || r.Query.Username == nil || *r.Query.Username != "10001" {
		t.Errorf("registered get: want <registered/> and username 10001: %s", ans)
	}
}

func TestRegistrationLogsInStoresAndSubscribes(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.register("10001", "secret")
	// The gateway asks for the user's presence.
	h.waitFor("subscribe from the domain", func(st xmppcomp.Stanza) bool {
		return st.Name == "presence" && st.Type == "subscribe" && st.From.String() == testDomain && st.To.String() == aliceBare
	})
	reg, err := h.st.Registration(context.Background(), aliceBare)
	if err != nil || reg.UIN != 10001 || reg.PasswordMD5 != qqproto.PasswordMD5("secret") {
		t.Fatalf("stored registration %+v, %v", reg, err)
	}
	if n := h.sim.Session(10001).Logins; n != 1 {
		t.Errorf("%d QQ logins for the registration, want 1 (it is proved for real)", n)
	}
	// No available resource: the trial session is not kept.
	h.eventually("trial session logged out", func() bool { return !h.sim.Session(10001).LoggedIn })

	// A second set changes the password.
	h.register("10001", "secret") // same: fine
	if err := h.sim.AddAccount(qqsim.Account{UIN: 30001, Password: "x"}); err != nil {
		t.Fatal(err)
	}
	ans := h.iq("set", testDomain, `<query xmlns="jabber:iq:register"><username>10001</username><password>wrong</password></query>`)
	if cond, _, text := stanzaErr(t, ans); cond != "not-acceptable" || text != wantFormRefused {
		t.Errorf("change to a wrong password: %s", ans)
	}
	reg2, _ := h.st.Registration(context.Background(), aliceBare)
	if reg2.PasswordMD5 != reg.PasswordMD5 {
		t.Error("a refused change replaced the stored password")
	}
}

func TestRegistrationErrors(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	cases := []struct {
		name, payload, cond, text string
	}{
		{"wrong password", registerForm("10001", "nope"), "not-acceptable", wantFormRefused},
		{"malformed number", registerForm("10x01", "secret"), "bad-request", ""},
		{"number with a leading zero", registerForm("010001", "secret"), "bad-request", ""},
		{"no password", registerForm("10001", ""), "not-acceptable", ""},
		{"legacy fields, wrong password", `<query xmlns="jabber:iq:register"><username>10001</username><password>nope</password></query>`, "not-acceptable", wantFormRefused},
	}
	for _, c := range cases {
		ans := h.iq("set", testDomain, c.payload)
		cond, _, text := stanzaErr(t, ans)
		if ans.Type != "error" || cond != c.cond || (c.text != "" && text != c.text) || text == "" {
			t.Errorf("%s: got %s %q, want %s %q: %s", c.name, cond, text, c.cond, c.text, ans)
		}
	}
	if _, err := h.st.Registration(context.Background(), aliceBare); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed registrations stored something: %v", err)
	}

	// A number another JID owns: conflict, and no login as that number.
	h.register("10001", "secret")
	before := h.sim.Session(10001).Logins
	ans := h.iqFrom("mallory@example.org/x", "set", testDomain, registerForm("10001", "secret"))
	if cond, _, _ := stanzaErr(t, ans); cond != "conflict" {
		t.Errorf("registering a taken number: %s", ans)
	}
	if after := h.sim.Session(10001).Logins; after != before {
		t.Errorf("the conflicting registration logged in to QQ (%d logins, was %d)", after, before)
	}
}

func TestRegistrationWithQQUnreachable(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	h.stop()
	h.cfg.QQ.Server = dead
	h.start()
	ans := h.iq("set", testDomain, registerForm("10001", "secret"))
	if cond, typ, text := stanzaErr(t, ans); cond != "remote-server-timeout" || typ != "wait" || text == "" {
		t.Errorf("unreachable QQ: %s", ans)
	}
}

func TestUnregistration(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.register("10001", "secret")
	h.goOnline("")
	for _, u := range []int{20001, 20002, 20003} {
		h.waitFor("subscribe from a buddy", presenceMatch(buddyAddr(u), "subscribe"))
	}
	h.eventually("QQ session", func() bool { return h.sim.Session(10001).LoggedIn })
	h.skipAll()

	ans := h.iq("set", testDomain, `<query xmlns="jabber:iq:register"><remove/></query>`)
	if ans.Type != "result" {
		t.Fatalf("remove: %s", ans)
	}
	for _, from := range []string{buddyAddr(20001), buddyAddr(20002), buddyAddr(20003), testDomain} {
		for _, typ := range []string{"unsubscribe", "unsubscribed", "unavailable"} {
			if len(h.sent(presenceMatch(from, typ))) == 0 {
				h.waitFor(typ+" from "+from, presenceMatch(from, typ))
			}
		}
	}
	if _, err := h.st.Registration(context.Background(), aliceBare); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("registration still stored: %v", err)
	}
	if cs, _ := h.st.Contacts(context.Background(), aliceBare); len(cs) != 0 {
		t.Errorf("contacts still stored: %v", cs)
	}
	h.eventually("QQ logout", func() bool { return !h.sim.Session(10001).LoggedIn })
	// Removing again: not registered.
	ans = h.iq("set", testDomain, `<query xmlns="jabber:iq:register"><remove/></query>`)
	if cond, _, _ := stanzaErr(t, ans); cond != "registration-required" {
		t.Errorf("second remove: %s", ans)
	}
}

// What a user reads when QQ refuses a password: English, with QQ's own
// words beside it.
const (
	wantFormRefused   = "QQ refused this QQ number or password (密码错误)."
	wantStoredRefused = "QQ refused the stored password (密码错误); register again with the current one."
)

// A database file deleted under the running gateway refuses registrations
// with an error, rather than "storing" them where a restart loses them.
func TestRegistrationRefusedWhenTheDatabaseFileIsGone(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	if err := os.Remove(h.dbPath); err != nil {
		t.Fatal(err)
	}
	ans := h.iq("set", testDomain, registerForm("10001", "secret"))
	if cond, typ, _ := stanzaErr(t, ans); ans.Type != "error" || cond != "internal-server-error" || typ != "wait" {
		t.Errorf("registration into a deleted database: %s", ans)
	}
}
