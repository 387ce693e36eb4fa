package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// adhocAnswer is what a client reads of a <command/> answer.
type adhocAnswer struct {
	Node   string `xml:"node,attr"`
	ID     string `xml:"sessionid,attr"`
	Status string `xml:"status,attr"`
	Acts   *struct {
		Execute  string    `xml:"execute,attr"`
		Next     *struct{} `xml:"next"`
		Complete *struct{} `xml:"complete"`
	} `xml:"actions"`
	Notes []struct {
		Type string `xml:"type,attr"`
		Text string `xml:",chardata"`
	} `xml:"note"`
	Form *dataForm `xml:"jabber:x:data x"`
}

type dataForm struct {
	Type         string      `xml:"type,attr"`
	Title        string      `xml:"title"`
	Instructions []string    `xml:"instructions"`
	Fields       []wantField `xml:"field"`
	Reported     struct {
		Fields []wantField `xml:"field"`
	} `xml:"reported"`
	Items []struct {
		Fields []wantField `xml:"field"`
	} `xml:"item"`
}

type wantField struct {
	Var      string    `xml:"var,attr"`
	Type     string    `xml:"type,attr"`
	Label    string    `xml:"label,attr"`
	Values   []string  `xml:"value"`
	Required *struct{} `xml:"required"`
}

// field returns the form's field named v.
func (f *dataForm) field(v string) (wantField, bool) {
	if f == nil {
		return wantField{}, false
	}
	i := slices.IndexFunc(f.Fields, func(x wantField) bool { return x.Var == v })
	if i < 0 {
		return wantField{}, false
	}
	return f.Fields[i], true
}

// text is everything the form shows as text: fixed fields and values.
func (f *dataForm) text() string {
	if f == nil {
		return ""
	}
	var b strings.Builder
	for _, x := range f.Fields {
		b.WriteString(x.Label + ": " + strings.Join(x.Values, "\n") + "\n")
	}
	return b.String()
}

func decodeAdhoc(t testing.TB, st xmppcomp.Stanza) adhocAnswer {
	t.Helper()
	var v struct {
		C adhocAnswer `xml:"http://jabber.org/protocol/commands command"`
	}
	if st.Type != "result" {
		t.Fatalf("command answered with %s", st)
	}
	if err := st.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.C
}

func (a adhocAnswer) note() string {
	var out []string
	for _, n := range a.Notes {
		out = append(out, n.Text)
	}
	return strings.Join(out, "\n")
}

// submitted is a filled form of type submit.
func submitted(values map[string]string) string {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(`<x xmlns="jabber:x:data" type="submit">`)
	for _, k := range keys {
		fmt.Fprintf(&b, `<field var=%q><value>%s</value></field>`, k, xmlText(values[k]))
	}
	b.WriteString(`</x>`)
	return b.String()
}

// command sends a <command/> of from and returns the answer.
func (h *harness) command(from, node, action, sid string, values map[string]string) xmppcomp.Stanza {
	h.t.Helper()
	attrs := fmt.Sprintf(` node=%q`, node)
	if action != "" {
		attrs += fmt.Sprintf(` action=%q`, action)
	}
	if sid != "" {
		attrs += fmt.Sprintf(` sessionid=%q`, sid)
	}
	inner := ""
	if values != nil {
		inner = submitted(values)
	}
	return h.iqFrom(from, "set", testDomain, `<command xmlns="http://jabber.org/protocol/commands"`+attrs+`>`+inner+`</command>`)
}

// execute starts a command of alice's.
func (h *harness) execute(node string) adhocAnswer {
	h.t.Helper()
	return decodeAdhoc(h.t, h.command(aliceFull, node, "execute", "", nil))
}

// next submits values to alice's command session.
func (h *harness) next(a adhocAnswer, values map[string]string) xmppcomp.Stanza {
	h.t.Helper()
	return h.command(aliceFull, a.Node, "next", a.ID, values)
}

// commandNodes lists the commands disco#items shows from.
func (h *harness) commandNodes(from string) []string {
	h.t.Helper()
	ans := h.iqFrom(from, "get", testDomain, `<query xmlns="http://jabber.org/protocol/disco#items" node="http://jabber.org/protocol/commands"/>`)
	var v struct {
		Query struct {
			Node  string `xml:"node,attr"`
			Items []struct {
				JID  string `xml:"jid,attr"`
				Node string `xml:"node,attr"`
				Name string `xml:"name,attr"`
			} `xml:"item"`
		} `xml:"http://jabber.org/protocol/disco#items query"`
	}
	if err := ans.Decode(&v); err != nil || ans.Type != "result" || v.Query.Node != nsCommands {
		h.t.Fatalf("disco#items of the commands node: %s (%v)", ans, err)
	}
	var out []string
	for _, it := range v.Query.Items {
		if it.JID != testDomain || it.Name == "" {
			h.t.Errorf("command item %+v: want the domain's JID and a name", it)
		}
		out = append(out, it.Node)
	}
	return out
}

func wantCond(t testing.TB, st xmppcomp.Stanza, cond, app string) {
	t.Helper()
	got, _, text := stanzaErr(t, st)
	if st.Type != "error" || got != cond || text == "" {
		t.Errorf("want a %s error with a text, got %s", cond, st)
	}
	if app == "" {
		return
	}
	var v struct {
		Error struct {
			Conds []struct{ XMLName xml.Name } `xml:",any"`
		} `xml:"error"`
	}
	st.Decode(&v)
	for _, c := range v.Error.Conds {
		if c.XMLName.Space == nsCommands && c.XMLName.Local == app {
			return
		}
	}
	t.Errorf("no XEP-0050 condition %s in %s", app, st)
}

var (
	guestCommands = []string{"register"}
	userCmds      = []string{"login", "sync", "lookup", "add", "password", "unregister"}
	adminCmds     = []string{"users", "user", "stats", "announce", "remove"}
)

// The commands a user may run are the items of the commands node, and
// each answers disco#info; the domain announces the feature.
func TestCommandsInServiceDiscoveryFollowAccess(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	ans := h.iq("get", testDomain, `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	var d discoResult
	if err := ans.Decode(&d); err != nil || !slices.Contains(d.features(), nsCommands) {
		t.Errorf("the domain does not announce %s: %s", nsCommands, ans)
	}
	if got := h.commandNodes(aliceFull); !slices.Equal(got, guestCommands) {
		t.Errorf("unregistered: commands %v, want %v", got, guestCommands)
	}
	h.register("10001", "secret")
	if got := h.commandNodes(aliceFull); !slices.Equal(got, userCmds) {
		t.Errorf("registered: commands %v, want %v", got, userCmds)
	}
	h.g.SetAdmins([]string{"Alice@Example.org/anything"})
	if got := h.commandNodes(aliceFull); !slices.Equal(got, append(slices.Clone(userCmds), adminCmds...)) {
		t.Errorf("admin: commands %v", got)
	}
	if got := h.commandNodes("mallory@example.org/x"); !slices.Equal(got, guestCommands) {
		t.Errorf("another JID: commands %v", got)
	}

	ans = h.iq("get", testDomain, `<query xmlns="http://jabber.org/protocol/disco#info" node="lookup"/>`)
	d = discoResult{}
	if err := ans.Decode(&d); err != nil || ans.Type != "result" || len(d.Query.Identities) != 1 ||
		d.Query.Identities[0].Category != "automation" || d.Query.Identities[0].Type != "command-node" ||
		!slices.Contains(d.features(), nsCommands) || !slices.Contains(d.features(), "jabber:x:data") {
		t.Errorf("disco#info of a command node: %s", ans)
	}
	for _, node := range []string{"nonsense", "users"} {
		ans = h.iqFrom("mallory@example.org/x", "get", testDomain, `<query xmlns="http://jabber.org/protocol/disco#info" node="`+node+`"/>`)
		wantCond(t, ans, "item-not-found", "")
	}
}

// Registration as a command: one form with the number and a private
// password field; a wrong password is refused with QQ's reason.
func TestAdhocRegister(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	a := h.execute("register")
	if a.Status != "executing" || a.ID == "" || a.Acts == nil || a.Acts.Execute != "complete" || a.Acts.Complete == nil {
		t.Fatalf("register: want a one-page form with complete: %+v", a)
	}
	if f, ok := a.Form.field("username"); !ok || f.Type != "text-single" || f.Required == nil {
		t.Errorf("username field %+v", f)
	}
	if f, ok := a.Form.field("password"); !ok || f.Type != "text-private" {
		t.Errorf("password field %+v: want text-private", f)
	}
	ans := h.command(aliceFull, "register", "complete", a.ID, map[string]string{"username": "10001", "password": "wrong"})
	if _, _, text := stanzaErr(t, ans); ans.Type != "error" || text != wantFormRefused {
		t.Errorf("wrong password: %s", ans)
	}
	// The refused attempt ended the session; a new one registers.
	a = h.execute("register")
	done := decodeAdhoc(t, h.command(aliceFull, "register", "complete", a.ID, map[string]string{"username": "10001", "password": "secret"}))
	if done.Status != "completed" || !strings.Contains(done.note(), "10001") {
		t.Errorf("registration: %+v", done)
	}
	h.waitFor("subscribe from the domain", presenceMatch(testDomain, "subscribe"))
	if reg, err := h.st.Registration(context.Background(), aliceBare); err != nil || reg.UIN != 10001 {
		t.Errorf("stored %+v %v", reg, err)
	}
	if got := h.commandNodes(aliceFull); slices.Contains(got, "register") {
		t.Errorf("a registered user is offered register: %v", got)
	}
}

// Look up a number, see the profile, add it: a command of two pages.
func TestAdhocLookupThenAdd(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	h.online("")
	a := h.execute("lookup")
	if a.Status != "executing" || a.Acts == nil || a.Acts.Execute != "complete" {
		t.Fatalf("lookup: %+v", a)
	}
	if _, ok := a.Form.field("uin"); !ok {
		t.Fatalf("lookup asks no number: %+v", a.Form)
	}
	bad := h.next(a, map[string]string{"uin": "12"})
	wantCond(t, bad, "bad-request", "")

	a = h.execute("lookup")
	p := decodeAdhoc(t, h.next(a, map[string]string{"uin": "30000"}))
	if p.Status != "executing" || !strings.Contains(p.Form.text(), "Open") {
		t.Fatalf("profile of 30000: %+v", p)
	}
	if f, ok := p.Form.field("add"); !ok || f.Type != "boolean" {
		t.Fatalf("no add question: %+v", p.Form)
	}
	done := decodeAdhoc(t, h.command(aliceFull, "lookup", "complete", p.ID, map[string]string{"add": "1"}))
	if done.Status != "completed" || !strings.Contains(done.note(), "30000") {
		t.Errorf("add: %+v", done)
	}
	st := h.waitFor("the new buddy offered", presenceMatch(buddyAddr(30000), "subscribe"))
	if nickOf(t, st) != "Open" {
		t.Errorf("offer without the nick: %s", st)
	}
	if !slices.Contains(h.sim.Session(10001).Buddies, 30000) {
		t.Error("30000 is not on alice's QQ list")
	}
	// Accepting it in the roster makes it a contact with presence.
	h.presence(aliceFull, buddyAddr(30000), "subscribed", "")
	h.waitFor("30000 available", presenceMatch(buddyAddr(30000), ""))
	if c, err := h.contact(30000); err != nil || c.Sub != store.Both {
		t.Errorf("contact %+v %v", c, err)
	}
}

// The protocol's refusals carry XEP-0050's conditions.
func TestAdhocSessionErrors(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	wantCond(t, h.command(aliceFull, "lookup", "execute", "", nil), "registration-required", "")
	wantCond(t, h.command(aliceFull, "stats", "execute", "", nil), "forbidden", "")
	wantCond(t, h.command(aliceFull, "nonsense", "execute", "", nil), "item-not-found", "")
	h.register("10001", "secret")
	a := h.execute("password")
	wantCond(t, h.command(aliceFull, "password", "next", "no-such-id", map[string]string{"password": "x"}), "bad-request", "bad-sessionid")
	wantCond(t, h.command("alice@example.org/laptop", "password", "next", a.ID, map[string]string{"password": "x"}), "bad-request", "bad-sessionid")
	wantCond(t, h.command(aliceFull, "password", "prev", a.ID, nil), "bad-request", "bad-action")
	wantCond(t, h.command(aliceFull, "password", "jump", a.ID, nil), "bad-request", "malformed-action")
	wantCond(t, h.command(aliceFull, "password", "next", a.ID, map[string]string{}), "bad-request", "bad-payload")

	a = h.execute("password")
	c := decodeAdhoc(t, h.command(aliceFull, "password", "cancel", a.ID, nil))
	if c.Status != "canceled" {
		t.Errorf("cancel: %+v", c)
	}
	wantCond(t, h.command(aliceFull, "password", "next", a.ID, map[string]string{"password": "x"}), "bad-request", "bad-sessionid")

	a = h.execute("password")
	h.jump(commandTimeout)
	wantCond(t, h.command(aliceFull, "password", "next", a.ID, map[string]string{"password": "secret"}), "not-allowed", "session-expired")
}

// The password command proves the new password with QQ before it keeps
// its digest; the old one is kept when QQ refuses.
func TestAdhocPassword(t *testing.T) {
	qq := newFakeQQ("secret")
	h := newFakeHarness(t, qq)
	h.register("10001", "secret")
	qq.setPassword("new secret")
	a := h.execute("password")
	if f, ok := a.Form.field("password"); !ok || f.Type != "text-private" {
		t.Fatalf("password form %+v", a.Form)
	}
	wrong := h.command(aliceFull, "password", "complete", a.ID, map[string]string{"password": "guess"})
	if _, _, text := stanzaErr(t, wrong); text != wantFormRefused {
		t.Errorf("wrong password: %s", wrong)
	}
	if reg, _ := h.st.Registration(context.Background(), aliceBare); reg.PasswordMD5 != qqproto.PasswordMD5("secret") {
		t.Error("a refused password replaced the stored one")
	}
	a = h.execute("password")
	done := decodeAdhoc(t, h.command(aliceFull, "password", "complete", a.ID, map[string]string{"password": "new secret"}))
	if done.Status != "completed" {
		t.Errorf("password change: %+v", done)
	}
	if reg, _ := h.st.Registration(context.Background(), aliceBare); reg.PasswordMD5 != qqproto.PasswordMD5("new secret") {
		t.Error("the new password's digest is not stored")
	}
}

// Unregistering asks first; no is no.
func TestAdhocUnregister(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	a := h.execute("unregister")
	if f, ok := a.Form.field("confirm"); !ok || f.Type != "boolean" {
		t.Fatalf("unregister form %+v", a.Form)
	}
	no := decodeAdhoc(t, h.command(aliceFull, "unregister", "complete", a.ID, map[string]string{"confirm": "false"}))
	if _, err := h.st.Registration(context.Background(), aliceBare); err != nil || no.Status != "completed" {
		t.Fatalf("unregister answered no: %+v, %v", no, err)
	}
	a = h.execute("unregister")
	decodeAdhoc(t, h.command(aliceFull, "unregister", "complete", a.ID, map[string]string{"confirm": "true"}))
	h.waitFor("the domain leaves the roster", presenceMatch(testDomain, "unsubscribed"))
	if _, err := h.st.Registration(context.Background(), aliceBare); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("still registered: %v", err)
	}
	h.eventually("QQ logout", func() bool { return !h.sim.Session(10001).LoggedIn })
}

// Log in again: after the password was fixed on the QQ side, without
// waiting for the user's next presence.
func TestAdhocLoginAgain(t *testing.T) {
	qq := newFakeQQ("secret")
	h := newFakeHarness(t, qq)
	h.register("10001", "secret")
	// No presence of the user's: the gateway would log out at once.
	wantCond(t, h.command(aliceFull, "login", "execute", "", nil), "not-allowed", "")

	qq.setPassword("changed elsewhere")
	h.goOnline("")
	h.waitFor("refusal", presenceMatch(testDomain, "error"))
	wantCond(t, h.command(aliceFull, "login", "execute", "", nil), "not-authorized", "")

	qq.setPassword("secret")
	mark := h.cursor
	done := decodeAdhoc(t, h.command(aliceFull, "login", "execute", "", nil))
	if done.Status != "completed" || !strings.Contains(done.note(), "Logged in") {
		t.Errorf("login: %+v", done)
	}
	h.cursor = mark
	h.waitFor("the domain available", presenceMatch(testDomain, ""))
	again := decodeAdhoc(t, h.command(aliceFull, "login", "execute", "", nil))
	if !strings.Contains(again.note(), "already") {
		t.Errorf("login while logged in: %+v", again)
	}
}

// Sync imports the buddy list again: a buddy added on the QQ side is
// offered, and one the user left unanswered is offered again.
func TestAdhocSync(t *testing.T) {
	qq := newFakeQQ("secret", qqproto.Buddy{UIN: 20001, Nick: "Bob", Status: qqproto.StatusOnline})
	h := newFakeHarness(t, qq)
	h.register("10001", "secret")
	h.goOnline("")
	h.waitFor("Bob offered", presenceMatch(buddyAddr(20001), "subscribe"))
	qq.mu.Lock()
	qq.buddies = append(qq.buddies, qqproto.Buddy{UIN: 20002, Nick: "Carol", Status: qqproto.StatusOnline})
	qq.mu.Unlock()
	done := decodeAdhoc(t, h.command(aliceFull, "sync", "execute", "", nil))
	if done.Status != "completed" || !strings.Contains(done.Form.text(), "On your QQ buddy list: 2") {
		t.Errorf("sync: %+v", done)
	}
	// Bob was offered by the import at login and again by the sync,
	// Carol for the first time.
	got := map[string]int{}
	for _, st := range h.out.all() {
		if st.Name == "presence" && st.Type == "subscribe" {
			got[st.From.Bare().String()]++
		}
	}
	if got[buddyAddr(20001)] != 2 || got[buddyAddr(20002)] != 1 {
		t.Errorf("subscribes sent %v: want Bob's twice and Carol's once", got)
	}
}

// jump moves the gateway's clock by d at once, as after a long silence.
func (h *harness) jump(d time.Duration) {
	h.t.Helper()
	h.quiesce()
	h.fakeClock().Advance(d)
	h.g.sched.nudge()
	h.quiesce()
}
