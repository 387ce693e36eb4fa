//go:build integration

package gateway

// The message and contact flows proved against real XMPP servers (issue 6,
// part 5): Prosody and ejabberd from the distribution, qqsim over HTTP on
// loopback, the store on disk, the gateway on a real component connection,
// and a Go XMPP client logged in as the user.

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// QQGW_TEST_LOG=1 shows the gateway's log and every stanza it exchanges
// with the server, for diagnosing a failing scenario.
var testLog = os.Getenv("QQGW_TEST_LOG") != ""

// logSender logs what the gateway sends.
type logSender struct {
	*xmppcomp.Component
	t *testing.T
}

func (l logSender) Encode(ctx context.Context, v any) error {
	b, _ := xml.Marshal(v)
	err := l.Component.Encode(ctx, v)
	l.t.Logf("OUT %s (err %v)", b, err)
	return err
}

// mitEnv is one scenario: a QQ world, a store, a gateway on a component
// connection, and the user's client.
type mitEnv struct {
	t      *testing.T
	srv    *xmpptest.Server
	sim    *qqsim.Server
	st     *store.Store
	cfg    Config
	comp   *xmppcomp.Component
	user   string
	stopGW func()
}

// newMsgEnv starts qqsim with accounts and a gateway connected to srv.
// tune, if not nil, adjusts the gateway's Config.
func newMsgEnv(t *testing.T, srv *xmpptest.Server, tune func(*Config), accounts ...qqsim.Account) *mitEnv {
	t.Helper()
	sim := qqsim.New(qqsim.Options{})
	for _, a := range accounts {
		if err := sim.AddAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &mitEnv{t: t, srv: srv, sim: sim, st: st}
	e.user = "m" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	srv.CreateUser(t, e.user, "pw")

	e.cfg = testConfig(hs.URL + "/")
	e.cfg.Clock = nil // real time: the servers' and the client's
	e.cfg.Domain = itDomain
	e.cfg.PollActive = 100 * time.Millisecond
	e.cfg.PollIdle = 500 * time.Millisecond
	e.cfg.StatusInterval = 2 * time.Second
	if tune != nil {
		tune(&e.cfg)
	}
	if testLog {
		l := logrus.New()
		l.SetLevel(logrus.DebugLevel)
		e.cfg.Logger = l
	}
	g, err := New(e.cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := xmppcomp.New(xmppcomp.Config{
		Domain: itDomain, Server: srv.ComponentAddr, Secret: itSecret,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		OnConnect: g.OnConnect, Logger: quietLogger(),
	}, xmppcomp.HandlerFunc(func(ctx context.Context, st xmppcomp.Stanza) {
		if testLog {
			t.Logf("IN %s", st)
		}
		g.HandleStanza(ctx, st)
	}))
	if err != nil {
		t.Fatal(err)
	}
	e.comp = comp
	gctx, stopG := context.WithCancel(context.Background())
	cctx, stopC := context.WithCancel(context.Background())
	compDone, gwDone := make(chan error, 1), make(chan error, 1)
	go func() { compDone <- comp.Run(cctx) }()
	var out Sender = comp
	if testLog {
		out = logSender{comp, t}
	}
	go func() { gwDone <- g.Run(gctx, out) }()
	stopped := false
	e.stopGW = func() {
		if stopped {
			return
		}
		stopped = true
		stopG()
		<-gwDone
		stopC()
		<-compDone
	}
	t.Cleanup(e.stopGW)
	e.waitConnected()
	return e
}

func (e *mitEnv) waitConnected() {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !e.comp.Connected() {
		if time.Now().After(deadline) {
			e.t.Fatal("the component did not connect within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client logs the user in as a real client does: it fetches its roster
// (which makes it an "interested resource" that servers tell of
// subscription changes) and becomes available.
func (e *mitEnv) client(ctx context.Context) *xmpptest.Client {
	e.t.Helper()
	c := e.srv.Login(e.t, ctx, e.user, "pw")
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(`<iq type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>`)))
	if err != nil || ans.Type != "result" {
		e.t.Fatalf("roster get: %s %v", ans, err)
	}
	if err := c.SendPresence(ctx); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func mitMessageFrom(from string) func(xmppcomp.Stanza) bool {
	return func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && st.From.Bare().String() == from && st.Type != "error"
	}
}

// register registers QQ 10001 and behaves as a client that accepts the
// transport and each buddy it offers, until the QQ session is up and the
// listed buddies were offered.
func (e *mitEnv) register(ctx context.Context, c *xmpptest.Client, buddies ...qqproto.UIN) {
	t := e.t
	t.Helper()
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(
		fmt.Sprintf(`<iq type="set" id="reg" to=%q>%s</iq>`, itDomain, registerForm("10001", "secret")))))
	if err != nil || ans.Type != "result" {
		t.Fatalf("registration: %s %v", ans, err)
	}
	next(t, ctx, c, "subscribe from the gateway", presFrom(itDomain, "subscribe"))
	sendXML(t, ctx, c, `<presence to=%q type="subscribed"/>`, itDomain)
	sendXML(t, ctx, c, `<presence to=%q type="subscribe"/>`, itDomain)
	for _, u := range buddies {
		next(t, ctx, c, fmt.Sprintf("subscribe from %d", u), presFrom(itBuddy(u), "subscribe"))
		sendXML(t, ctx, c, `<presence to=%q type="subscribed"/>`, itBuddy(u))
		sendXML(t, ctx, c, `<presence to=%q type="subscribe"/>`, itBuddy(u))
	}
	deadline := time.Now().Add(20 * time.Second)
	for !e.sim.Session(10001).LoggedIn {
		if time.Now().After(deadline) {
			t.Fatal("no QQ session within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inboxFrom10001 returns the texts uin received from the user, oldest first.
func (e *mitEnv) inboxFrom10001(uin qqproto.UIN) []string {
	var out []string
	for _, it := range e.sim.Inbox(uin) {
		if it.From == 10001 && it.Type == qqproto.MsgBuddy {
			out = append(out, it.Text)
		}
	}
	return out
}

func (e *mitEnv) eventually(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wireText is what must cross both ways unchanged: Chinese, commas, a
// would-be field, an escape sequence, newlines. (No CR: XML servers may
// normalise line ends.)
const wireText = "你好，世界, hi&UN=999&MG=x %2c 100% done\nline 2\n\n<b>&amp;</b> =end"

// bigText is 10 KB and more of mixed text, longer than one CLTMSG carries.
func bigText() string {
	var b strings.Builder
	for i := 0; b.Len() < 10*1024; i++ {
		fmt.Fprintf(&b, "第%d行, line %d: 中文&UN=999&MG=x%%2c\n", i, i)
	}
	return b.String()
}

func TestIntegrationMessagesBothWays(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newMsgEnv(t, srv, func(c *Config) { c.MaxMessageBytes = 3000 }, world()...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := e.client(ctx)
		e.register(ctx, c, 20001, 20002, 20003)
		big := bigText()

		// QQ → XMPP.
		for _, text := range []string{wireText, big} {
			if err := e.sim.Send(20001, 10001, text); err != nil {
				t.Fatal(err)
			}
			st := next(t, ctx, c, "Bob's message", mitMessageFrom(itBuddy(20001)))
			m := decodeChat(t, st)
			if m.Body != text || m.Type != "chat" {
				t.Errorf("QQ→XMPP: got %d bytes %q…, want %d bytes %q…", len(m.Body), trunc(m.Body), len(text), trunc(text))
			}
		}

		// XMPP → QQ, with a receipt for the first.
		sendXML(t, ctx, c, `<message type="chat" id="w1" to=%q><body>%s</body><request xmlns="urn:xmpp:receipts"/></message>`,
			itBuddy(20001), xmlEscape(wireText))
		rc := next(t, ctx, c, "receipt", func(st xmppcomp.Stanza) bool {
			return st.Name == "message" && decodeChat(t, st).Received != nil
		})
		if id := decodeChat(t, rc).Received.ID; id != "w1" || rc.From.Bare().String() != itBuddy(20001) {
			t.Errorf("receipt: %s", rc)
		}
		if got := e.inboxFrom10001(20001); len(got) != 1 || got[0] != wireText {
			t.Errorf("XMPP→QQ: Bob got %q, want %q", got, wireText)
		}
		sendXML(t, ctx, c, `<message type="chat" id="w2" to=%q><body>%s</body></message>`, itBuddy(20001), xmlEscape(big))
		want, _ := SplitText(big, 3000)
		e.eventually("the long message's parts in Bob's inbox", 20*time.Second, func() bool { return len(e.inboxFrom10001(20001)) == 1+len(want) })
		parts := e.inboxFrom10001(20001)[1:]
		if strings.Join(parts, "") != big {
			t.Errorf("XMPP→QQ: the %d parts of the long message do not join to it", len(parts))
		}
		for i, p := range parts {
			if len(p) > 3000 {
				t.Errorf("part %d has %d bytes", i, len(p))
			}
		}

		// A message QQ refuses comes back as an error.
		sendXML(t, ctx, c, `<message type="chat" id="w3" to=%q><body>anyone?</body></message>`, itBuddy(99999))
		st := next(t, ctx, c, "error for the refused message", func(st xmppcomp.Stanza) bool {
			return st.Name == "message" && st.Type == "error" && st.ID == "w3"
		})
		if cond, _, text := stanzaErr(t, st); cond != "item-not-found" || text == "" {
			t.Errorf("refusal: %q %q in %s", cond, text, st)
		}
	})
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

func TestIntegrationContactFlows(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		shy := alice
		shy.Auth = 1 // requests to add alice reach her
		extra := []qqsim.Account{openAcct, askAcct, yesAcct, noAcct, closedAcct,
			{UIN: 30005, Password: "r", Nick: "Requester"}, {UIN: 30006, Password: "r", Nick: "Rejected"}}
		e := newMsgEnv(t, srv, nil, append([]qqsim.Account{shy, bob, carol, dave}, extra...)...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := e.client(ctx)
		e.register(ctx, c, 20001, 20002, 20003)

		// CD=0: added at once, then its presence.
		sendXML(t, ctx, c, `<presence to=%q type="subscribe"/>`, itBuddy(30000))
		next(t, ctx, c, "subscribed from 30000", presFrom(itBuddy(30000), "subscribed"))
		next(t, ctx, c, "presence of 30000", presFrom(itBuddy(30000), ""))

		// CD=1, accepted (by the test as 30001), with the status as reason.
		sendXML(t, ctx, c, `<presence to=%q type="subscribe"><status>我是Alice, 请加我</status></presence>`, itBuddy(30001))
		e.eventually("request at 30001", 10*time.Second, func() bool {
			for _, it := range e.sim.Inbox(30001) {
				if it.Type == qqproto.MsgAddRequest && it.From == 10001 && it.Text == "我是Alice, 请加我" {
					return true
				}
			}
			return false
		})
		if err := e.sim.Ack(30001, 10001, qqproto.AckApprove, ""); err != nil {
			t.Fatal(err)
		}
		next(t, ctx, c, "subscribed from 30001", presFrom(itBuddy(30001), "subscribed"))

		// CD=1, refused with a reason.
		sendXML(t, ctx, c, `<presence to=%q type="subscribe"><status>hi</status></presence>`, itBuddy(30003))
		st := next(t, ctx, c, "unsubscribed from 30003", presFrom(itBuddy(30003), "unsubscribed"))
		if _, status := showOf(t, st); status != "对不起，我不加陌生人" {
			t.Errorf("refusal reason %q", status)
		}

		// CD=3: nobody may add.
		sendXML(t, ctx, c, `<presence to=%q type="subscribe"/>`, itBuddy(30004))
		st = next(t, ctx, c, "unsubscribed from 30004", presFrom(itBuddy(30004), "unsubscribed"))
		if _, status := showOf(t, st); !strings.Contains(status, "accepts nobody") {
			t.Errorf("CD=3 status %q", status)
		}

		// Incoming requests: one accepted, one refused.
		if err := e.sim.Ack(30005, 10001, qqproto.AckRequest, "我们见过, we met"); err != nil {
			t.Fatal(err)
		}
		st = next(t, ctx, c, "subscribe from 30005", presFrom(itBuddy(30005), "subscribe"))
		if _, status := showOf(t, st); status != "我们见过, we met" {
			t.Errorf("request status %q", status)
		}
		sendXML(t, ctx, c, `<presence to=%q type="subscribed"/>`, itBuddy(30005))
		e.eventually("30005 lists alice", 10*time.Second, func() bool { return hasItem(e.sim.Inbox(30005), qqproto.MsgAddAccepted) })

		if err := e.sim.Ack(30006, 10001, qqproto.AckRequest, "let me in"); err != nil {
			t.Fatal(err)
		}
		next(t, ctx, c, "subscribe from 30006", presFrom(itBuddy(30006), "subscribe"))
		sendXML(t, ctx, c, `<presence to=%q type="unsubscribed"/>`, itBuddy(30006))
		e.eventually("30006 refused", 10*time.Second, func() bool { return hasItem(e.sim.Inbox(30006), qqproto.MsgAddRefused) })
	})
}

func TestIntegrationVCardOfAWorldProfile(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newMsgEnv(t, srv, nil, vcardWorld()...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := e.client(ctx)
		e.register(ctx, c, 20001, 20002, 20003, seedProfileAccount.UIN)
		ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(
			fmt.Sprintf(`<iq type="get" id="vc1" to=%q><vCard xmlns="vcard-temp"/></iq>`, itBuddy(seedProfileAccount.UIN)))))
		if err != nil || ans.Type != "result" {
			t.Fatalf("vCard: %s %v", ans, err)
		}
		var r struct {
			V readVCard `xml:"vCard"`
		}
		if err := ans.Decode(&r); err != nil {
			t.Fatal(err)
		}
		v := r.V
		for _, f := range []struct{ name, got, want string }{
			{"FN", v.FN, "刘X"}, {"NICKNAME", v.Nickname, "微程"}, {"TITLE", v.Title, "程序员"},
			{"URL", v.URL, "msger.org(建设中...)"}, {"DESC", v.Desc, "网络为媒,关系为本,信息为财,客户为主.\n"},
			{"NOTE", v.Note, "性别/Sex: 男/male\n毕业院校/School: 社会大学"}, {"PHOTO/TYPE", v.Photo.Type, "image/png"},
		} {
			// Servers may turn the CR of CRLF into a plain LF.
			if strings.ReplaceAll(f.got, "\r\n", "\n") != f.want {
				t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
			}
		}
		if len(v.Email) != 1 || v.Email[0].UserID != "Microprogramer@hotmail.com" || len(v.Tel) != 1 || v.Tel[0].Number != "0871-6466529" {
			t.Errorf("EMAIL/TEL: %+v %+v", v.Email, v.Tel)
		}
		for _, s := range []string{"<STREET>云南昆明</STREET>", "<REGION>云南省</REGION>", "<PCODE>650000</PCODE>"} {
			if !strings.Contains(ans.String(), s) {
				t.Errorf("ADR lacks %s", s)
			}
		}
	})
}

// received is one message as the client saw it.
type received struct{ id, body string }

// drain returns the messages from from that c received, in order, waiting
// up to wait for more after the last one.
func drain(c *xmpptest.Client, from string, wait time.Duration) []received {
	var out []received
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		st, err := c.Next(ctx, mitMessageFrom(from))
		cancel()
		if err != nil {
			return out
		}
		var m chatOf
		if st.Decode(&m) == nil {
			out = append(out, received{m.ID, m.Body})
		}
	}
}

// dropResends removes the messages that repeat an earlier one with the same
// id and text (the gateway sending again what it could not prove
// delivered), returning the texts and how many were dropped.
func dropResends(got []received) ([]string, int) {
	seen := make(map[received]bool, len(got))
	var out []string
	for _, r := range got {
		if seen[r] {
			continue
		}
		seen[r] = true
		out = append(out, r.body)
	}
	return out, len(got) - len(out)
}

// noMessageErrors fails the test if c received a message error.
func noMessageErrors(t *testing.T, c *xmpptest.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if st, err := c.Next(ctx, func(st xmppcomp.Stanza) bool { return st.Type == "error" && st.Name == "message" }); err == nil {
		t.Errorf("an error stanza came back: %s", st)
	}
}

// checkSequence reports how got differs from prefix0000 … prefix(n-1):
// gaps, repeats, reordering.
func checkSequence(got []string, prefix string, n int) error {
	seen := make(map[string]int, len(got))
	var problems []string
	for i, s := range got {
		if j, dup := seen[s]; dup {
			problems = append(problems, fmt.Sprintf("%q arrived twice (at %d and %d)", s, j, i))
		}
		seen[s] = i
	}
	var missing []string
	for i := 0; i < n; i++ {
		if _, ok := seen[fmt.Sprintf("%s%04d", prefix, i)]; !ok {
			missing = append(missing, fmt.Sprintf("%s%04d", prefix, i))
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d missing: %s", len(missing), strings.Join(missing[:min(len(missing), 10)], " ")))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			problems = append(problems, fmt.Sprintf("out of order at %d: %q after %q", i, got[i], got[i-1]))
			break
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d received: %s", len(got), strings.Join(problems[:min(len(problems), 5)], "; "))
	}
	return nil
}

// A thousand messages each way, in order, none lost or doubled, while qqsim
// injects errors, garbage and dropped replies and the XMPP server is
// stopped and started once in the middle: the messages Bob writes while it
// is down wait (in qqsim and the gateway's queue) and then flow in order.
func TestIntegrationThousandMessagesEachWayThroughFaultsAndARestart(t *testing.T) {
	onFreshServers(t, func(t *testing.T, srv *xmpptest.Server) { thousandMessages(t, srv, false) })
}

// The same with the restart hitting the stream of messages mid-burst: a
// soak test, run with QQGW_TEST_MIDBURST=1, because what it shows beyond
// the test above is the servers' behaviour while they stop, which no
// gateway controls. A server that stops may take stanzas and never answer
// the ping that confirms them; the gateway sends the unconfirmed ones
// again after the restart, with the same ids (at least once), which this
// test allows up to one batch. But the servers also, rarely, drop a
// message they routed to a client session that is closing (Prosody, 1 in
// 8 runs) or deliver what they stored offline after later live messages
// (ejabberd, 1 in 8 runs), though they had confirmed it: only client
// acknowledgements (XEP-0198 on the client's stream) close that gap.
func TestIntegrationThousandMessagesRestartMidBurst(t *testing.T) {
	if os.Getenv("QQGW_TEST_MIDBURST") == "" {
		t.Skip("soak test of server restarts mid-burst; set QQGW_TEST_MIDBURST=1 to run it (see its comment for what it may show)")
	}
	onFreshServers(t, func(t *testing.T, srv *xmpptest.Server) { thousandMessages(t, srv, true) })
}

// onFreshServers runs f per server kind on a server of its own, which f
// may restart. QQGW_TEST_SERVER=prosody (or ejabberd) selects one kind.
func onFreshServers(t *testing.T, f func(t *testing.T, srv *xmpptest.Server)) {
	for _, kind := range []string{xmpptest.Prosody, xmpptest.Ejabberd} {
		t.Run(kind, func(t *testing.T) {
			if k := os.Getenv("QQGW_TEST_SERVER"); k != "" && k != kind {
				t.Skipf("QQGW_TEST_SERVER=%s runs this scenario on %s only", k, k)
			}
			if kind == xmpptest.Prosody {
				f(t, xmpptest.StartProsody(t, itServerOpts))
			} else {
				f(t, xmpptest.StartEjabberd(t, itServerOpts))
			}
		})
	}
}

func thousandMessages(t *testing.T, srv *xmpptest.Server, midBurst bool) {
	const n = 1000
	e := newMsgEnv(t, srv, func(c *Config) {
		// Each request fails with probability 0.09; ten attempts make
		// losing one (0.09^10 ≈ 3e-11) impossible in practice.
		c.QQ.MaxAttempts = 10
		c.PollActive = 50 * time.Millisecond
	}, world()...)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()
	c := e.client(ctx)
	e.register(ctx, c, 20001, 20002, 20003)
	if err := e.sim.SetFaults(qqsim.Faults{ErrorRate: 0.03, GarbageRate: 0.03, DropRate: 0.03, Seed: time.Now().UnixNano()}); err != nil {
		t.Fatal(err)
	}
	bobWrites := func(from, to int) {
		for i := from; i < to; i++ {
			if err := e.sim.Send(20001, 10001, fmt.Sprintf("q%04d", i)); err != nil {
				t.Error(err)
				return
			}
			if i%20 == 19 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	userWrites := func(c *xmpptest.Client, from, to int) {
		for i := from; i < to; i++ {
			sendXML(t, ctx, c, `<message type="chat" id="x%d" to=%q><body>x%04d</body></message>`, i, itBuddy(20001), i)
		}
	}
	var got []received
	collect := func(c *xmpptest.Client, want int) {
		for ctx.Err() == nil {
			if bodies, _ := dropResends(got); len(bodies) >= want {
				return
			}
			st, err := c.Next(ctx, mitMessageFrom(itBuddy(20001)))
			if err != nil {
				t.Fatalf("waiting for QQ message %d of %d: %v", len(got), want, err)
			}
			m := decodeChat(t, st)
			got = append(got, received{m.ID, m.Body})
		}
	}

	bobDone := make(chan struct{})
	if midBurst {
		// Bob writes all along, so the restart meets his stream.
		go func() { defer close(bobDone); bobWrites(0, n) }()
	} else {
		bobWrites(0, n/2)
	}
	userWrites(c, 0, n/2)
	e.eventually("the first half in Bob's inbox", 60*time.Second, func() bool { return len(e.inboxFrom10001(20001)) >= n/2 })
	if !midBurst {
		collect(c, n/2)
		e.eventually("nothing left in flight", 10*time.Second, func() bool {
			left, err := e.st.Pending(ctx, e.user+"@"+srv.Domain, store.ToXMPP)
			return err == nil && len(left) == 0
		})
	}

	srv.Stop(t)
	if !midBurst {
		bobWrites(n/2, 3*n/4) // while the server is down
	}
	srv.Start(t)
	got = append(got, drain(c, itBuddy(20001), 100*time.Millisecond)...) // the old connection's last
	noMessageErrors(t, c)
	t.Logf("%s restarted after %d of %d QQ messages had arrived", srv.Kind, len(got), n)
	e.waitConnected()
	c = e.client(ctx)
	// The gateway shows itself available (answering the client's probe)
	// once the session is back: then the user writes on.
	next(t, ctx, c, "the gateway available again", presFrom(itDomain, ""))
	if !midBurst {
		go func() { defer close(bobDone); bobWrites(3*n/4, n) }()
	}
	userWrites(c, n/2, n)
	<-bobDone

	collect(c, n)
	got = append(got, drain(c, itBuddy(20001), 300*time.Millisecond)...) // anything doubled
	bodies, resent := dropResends(got)
	if err := checkSequence(bodies, "q", n); err != nil {
		t.Errorf("QQ→XMPP: %v", err)
		t.Logf("received: %s", strings.Join(bodies[:min(len(bodies), 200)], " "))
	}
	switch {
	case resent == 0:
	case midBurst && resent <= flushBatch:
		t.Logf("%d messages in flight at the restart were sent again (same ids)", resent)
	default:
		t.Errorf("QQ→XMPP: %d messages arrived twice", resent)
	}

	e.eventually("all in Bob's inbox", 60*time.Second, func() bool { return len(e.inboxFrom10001(20001)) >= n })
	time.Sleep(300 * time.Millisecond) // anything doubled arrives meanwhile
	if err := checkSequence(e.inboxFrom10001(20001), "x", n); err != nil {
		t.Errorf("XMPP→QQ: %v", err)
	}
	noMessageErrors(t, c)
	stats := e.sim.Stats()
	if stats.Errors == 0 || stats.Garbage == 0 || stats.Drops == 0 {
		t.Errorf("qqsim injected too few faults to prove anything: %+v", stats)
	}
	if left, err := e.st.Pending(context.Background(), e.user+"@"+srv.Domain, store.ToXMPP); err != nil || len(left) != 0 {
		t.Errorf("delivery queue not empty at the end: %d items (%v)", len(left), err)
	}
	t.Logf("%d messages each way in %v through %d errors, %d garbage replies, %d dropped replies (%d replayed)",
		n, time.Since(start).Round(time.Millisecond), stats.Errors, stats.Garbage, stats.Drops, stats.Replayed)
}
