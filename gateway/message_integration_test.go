//go:build integration

package gateway

// The message and contact flows proved against real XMPP servers (issue 6,
// part 5), in the environment of integration_test.go.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// chatFrom matches a message from the address from that is not an error.
func chatFrom(from string) func(xmppcomp.Stanza) bool {
	is := xmpptest.MessageFrom(from)
	return func(st xmppcomp.Stanza) bool { return is(st) && st.Type != "error" }
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
		e := newEnv(t, srv, func(c *Config) { c.MaxMessageBytes = 3000 }, world()...)
		ctx := itCtx(t, time.Minute)
		c := e.loginRegistered(ctx, smallWorldNicks())
		big := bigText()

		// QQ → XMPP.
		for _, text := range []string{wireText, big} {
			if err := e.sim.Send(20001, 10001, text); err != nil {
				t.Fatal(err)
			}
			st := c.Expect(t, ctx, "Bob's message", chatFrom(itBuddy(20001)))
			m := decodeChat(t, st)
			if m.Body != text || m.Type != "chat" {
				t.Errorf("QQ→XMPP: got %d bytes %q…, want %d bytes %q…", len(m.Body), trunc(m.Body), len(text), trunc(text))
			}
		}

		// XMPP → QQ, with a receipt for the first.
		c.SendXML(t, ctx, `<message type="chat" id="w1" to=%q><body>%s</body><request xmlns="urn:xmpp:receipts"/></message>`,
			itBuddy(20001), xmlEscape(wireText))
		rc := c.Expect(t, ctx, "receipt", func(st xmppcomp.Stanza) bool {
			return st.Name == "message" && decodeChat(t, st).Received != nil
		})
		if id := decodeChat(t, rc).Received.ID; id != "w1" || rc.From.Bare().String() != itBuddy(20001) {
			t.Errorf("receipt: %s", rc)
		}
		if got := inboxTexts(e.sim, 20001); len(got) != 1 || got[0] != wireText {
			t.Errorf("XMPP→QQ: Bob got %q, want %q", got, wireText)
		}
		c.SendXML(t, ctx, `<message type="chat" id="w2" to=%q><body>%s</body></message>`, itBuddy(20001), xmlEscape(big))
		want, _ := SplitText(big, 3000)
		e.eventually("the long message's parts in Bob's inbox", 20*time.Second, func() bool { return len(inboxTexts(e.sim, 20001)) == 1+len(want) })
		parts := inboxTexts(e.sim, 20001)[1:]
		if strings.Join(parts, "") != big {
			t.Errorf("XMPP→QQ: the %d parts of the long message do not join to it", len(parts))
		}
		for i, p := range parts {
			if len(p) > 3000 {
				t.Errorf("part %d has %d bytes", i, len(p))
			}
		}

		// A message QQ refuses comes back as an error.
		c.SendXML(t, ctx, `<message type="chat" id="w3" to=%q><body>anyone?</body></message>`, itBuddy(99999))
		st := c.Expect(t, ctx, "error for the refused message", func(st xmppcomp.Stanza) bool {
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
		e := newEnv(t, srv, nil, append([]qqsim.Account{shy, bob, carol, dave}, extra...)...)
		ctx := itCtx(t, time.Minute)
		c := e.loginRegistered(ctx, smallWorldNicks())

		// CD=0: added at once, then its presence.
		c.SendXML(t, ctx, `<presence to=%q type="subscribe"/>`, itBuddy(30000))
		c.Expect(t, ctx, "subscribed from 30000", xmpptest.PresenceFrom(itBuddy(30000), "subscribed"))
		c.Expect(t, ctx, "presence of 30000", xmpptest.PresenceFrom(itBuddy(30000), ""))

		// CD=1, accepted (by the test as 30001), with the status as reason.
		c.SendXML(t, ctx, `<presence to=%q type="subscribe"><status>我是Alice, 请加我</status></presence>`, itBuddy(30001))
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
		c.Expect(t, ctx, "subscribed from 30001", xmpptest.PresenceFrom(itBuddy(30001), "subscribed"))

		// CD=1, refused with a reason.
		c.SendXML(t, ctx, `<presence to=%q type="subscribe"><status>hi</status></presence>`, itBuddy(30003))
		st := c.Expect(t, ctx, "unsubscribed from 30003", xmpptest.PresenceFrom(itBuddy(30003), "unsubscribed"))
		if _, status := showOf(t, st); status != "对不起，我不加陌生人" {
			t.Errorf("refusal reason %q", status)
		}

		// CD=3: nobody may add.
		c.SendXML(t, ctx, `<presence to=%q type="subscribe"/>`, itBuddy(30004))
		st = c.Expect(t, ctx, "unsubscribed from 30004", xmpptest.PresenceFrom(itBuddy(30004), "unsubscribed"))
		if _, status := showOf(t, st); !strings.Contains(status, "accepts nobody") {
			t.Errorf("CD=3 status %q", status)
		}

		// Incoming requests: one accepted, one refused.
		if err := e.sim.Ack(30005, 10001, qqproto.AckRequest, "我们见过, we met"); err != nil {
			t.Fatal(err)
		}
		st = c.Expect(t, ctx, "subscribe from 30005", xmpptest.PresenceFrom(itBuddy(30005), "subscribe"))
		if _, status := showOf(t, st); status != "我们见过, we met" {
			t.Errorf("request status %q", status)
		}
		c.SendXML(t, ctx, `<presence to=%q type="subscribed"/>`, itBuddy(30005))
		e.eventually("30005 lists alice", 10*time.Second, func() bool { return hasItem(e.sim.Inbox(30005), qqproto.MsgAddAccepted) })

		if err := e.sim.Ack(30006, 10001, qqproto.AckRequest, "let me in"); err != nil {
			t.Fatal(err)
		}
		c.Expect(t, ctx, "subscribe from 30006", xmpptest.PresenceFrom(itBuddy(30006), "subscribe"))
		c.SendXML(t, ctx, `<presence to=%q type="unsubscribed"/>`, itBuddy(30006))
		e.eventually("30006 refused", 10*time.Second, func() bool { return hasItem(e.sim.Inbox(30006), qqproto.MsgAddRefused) })
	})
}

// registeredInVCardWorld is registeredInWorld with the account of the
// protocol article's GetInfo example among alice's buddies.
func registeredInVCardWorld(t *testing.T, srv *xmpptest.Server) (context.Context, *xmpptest.Client) {
	t.Helper()
	e := newEnv(t, srv, nil, vcardWorld()...)
	ctx := itCtx(t, time.Minute)
	want := smallWorldNicks()
	want[seedProfileAccount.UIN] = seedProfileAccount.Nick
	return ctx, e.loginRegistered(ctx, want)
}

func TestIntegrationVCardOfAWorldProfile(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		ctx, c := registeredInVCardWorld(t, srv)
		c.SendXML(t, ctx, `<iq type="get" id="vc1" to=%q><vCard xmlns="vcard-temp"/></iq>`, itBuddy(seedProfileAccount.UIN))
		ans := c.Expect(t, ctx, "the vCard", xmpptest.IQResult("vc1"))
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

// takeReceived returns the messages from from that c has received by now,
// in order, without waiting: call it after a barrier.
func takeReceived(c *xmpptest.Client, from string) []received {
	var out []received
	for _, st := range takeBuffered(c, chatFrom(from)) {
		var m chatOf
		if st.Decode(&m) == nil {
			out = append(out, received{m.ID, m.Body})
		}
	}
	return out
}

// takeBuffered returns the stanzas c has received by now that match, in
// order, without waiting.
func takeBuffered(c *xmpptest.Client, match func(xmppcomp.Stanza) bool) []xmppcomp.Stanza {
	now, cancel := context.WithCancel(context.Background())
	cancel() // Next looks at what is buffered before it would wait
	var out []xmppcomp.Stanza
	for {
		st, err := c.Next(now, match)
		if err != nil {
			return out
		}
		out = append(out, st)
	}
}

// waitClosed waits until the server has closed c's stream: then all it
// will ever receive is buffered.
func waitClosed(t *testing.T, ctx context.Context, c *xmpptest.Client) {
	t.Helper()
	if _, err := c.Next(ctx, func(xmppcomp.Stanza) bool { return false }); ctx.Err() != nil {
		t.Fatalf("the client's stream did not end with the server: %v", err)
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

// noMessageErrors fails the test if c received a message error. Call it
// after a barrier.
func noMessageErrors(t *testing.T, c *xmpptest.Client) {
	t.Helper()
	for _, st := range takeBuffered(c, func(st xmppcomp.Stanza) bool { return st.Type == "error" && st.Name == "message" }) {
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
	onOwnServers(t, func(t *testing.T, srv *xmpptest.Server) { thousandMessages(t, srv, false) })
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
	onOwnServers(t, func(t *testing.T, srv *xmpptest.Server) { thousandMessages(t, srv, true) })
}

// queued is how many items the store holds for the user in direction dir
// (-1 if it cannot tell): messages not yet confirmed delivered to XMPP, or
// not yet handled towards QQ.
func (e *itEnv) queued(ctx context.Context, dir store.Direction) int {
	items, err := e.st.Pending(ctx, e.bare(), dir)
	if err != nil {
		e.t.Errorf("reading the queue: %v", err)
		return -1
	}
	return len(items)
}

func thousandMessages(t *testing.T, srv *xmpptest.Server, midBurst bool) {
	const n = 1000
	e := newEnv(t, srv, func(c *Config) {
		// Each request fails with probability 0.09; ten attempts make
		// losing one (0.09^10 ≈ 3e-11) impossible in practice.
		c.QQ.MaxAttempts = 10
		c.PollActive = 50 * time.Millisecond
	}, world()...)
	ctx := itCtx(t, 2*time.Minute)
	start := time.Now()
	c := e.loginRegistered(ctx, smallWorldNicks())
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
				time.Sleep(5 * time.Millisecond) // Bob types; not a wait for anything
			}
		}
	}
	userWrites := func(c *xmpptest.Client, from, to int) {
		for i := from; i < to; i++ {
			c.SendXML(t, ctx, `<message type="chat" id="x%d" to=%q><body>x%04d</body></message>`, i, itBuddy(20001), i)
		}
	}
	var got []received
	collect := func(c *xmpptest.Client, want int) {
		for ctx.Err() == nil {
			if bodies, _ := dropResends(got); len(bodies) >= want {
				return
			}
			st := c.Expect(t, ctx, fmt.Sprintf("QQ message %d of %d", len(got), want), chatFrom(itBuddy(20001)))
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
	e.eventually("the first half in Bob's inbox", time.Minute, func() bool { return len(inboxTexts(e.sim, 20001)) >= n/2 })
	if !midBurst {
		collect(c, n/2)
		e.eventually("nothing left in flight", 10*time.Second, func() bool { return e.queued(ctx, store.ToXMPP) == 0 })
	}

	srv.Stop(t)
	if !midBurst {
		bobWrites(n/2, 3*n/4) // while the server is down
	}
	srv.Start(t)
	waitClosed(t, ctx, c)
	got = append(got, takeReceived(c, itBuddy(20001))...) // the old connection's last
	noMessageErrors(t, c)
	t.Logf("%s restarted after %d of %d QQ messages had arrived", srv.Kind, len(got), n)
	e.waitConnected()
	c = e.login(ctx)
	// The gateway shows itself available (answering the client's probe)
	// once the session is back: then the user writes on.
	c.Expect(t, ctx, "the gateway available again", xmpptest.PresenceFrom(itDomain, ""))
	if !midBurst {
		go func() { defer close(bobDone); bobWrites(3*n/4, n) }()
	}
	userWrites(c, n/2, n)
	<-bobDone

	collect(c, n)
	// Once the queue is empty the gateway sends nothing again; the barrier
	// brings whatever it sent twice.
	if !poll(itWait, func() bool { return e.queued(ctx, store.ToXMPP) == 0 }) {
		t.Errorf("delivery queue not empty at the end: %d items", e.queued(ctx, store.ToXMPP))
	}
	e.barrier(ctx, c)
	got = append(got, takeReceived(c, itBuddy(20001))...)
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

	// A message leaves the queue once QQ took it: nothing is sent to QQ
	// after the queue is empty.
	e.eventually("all in Bob's inbox and none left to send", time.Minute, func() bool {
		return len(inboxTexts(e.sim, 20001)) >= n && e.queued(ctx, store.ToQQ) == 0
	})
	if err := checkSequence(inboxTexts(e.sim, 20001), "x", n); err != nil {
		t.Errorf("XMPP→QQ: %v", err)
	}
	e.barrier(ctx, c)
	noMessageErrors(t, c)
	stats := e.sim.Stats()
	if stats.Errors == 0 || stats.Garbage == 0 || stats.Drops == 0 {
		t.Errorf("qqsim injected too few faults to prove anything: %+v", stats)
	}
	t.Logf("%d messages each way in %v through %d errors, %d garbage replies, %d dropped replies (%d replayed)",
		n, time.Since(start).Round(time.Millisecond), stats.Errors, stats.Garbage, stats.Drops, stats.Replayed)
}
