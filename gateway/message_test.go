package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// trickyText has everything that could break the QQ line or XML: Chinese,
// commas, a would-be field, an escape sequence, line breaks, markup.
const trickyText = "你好，世界, hi&UN=999&MG=x %2c 100%\r\nline 2\n<b>&amp;</b> =end"

// chatOf decodes what a user sees of a message.
type chatOf struct {
	Type  string `xml:"type,attr"`
	ID    string `xml:"id,attr"`
	Body  string `xml:"body"`
	Delay *struct {
		From  string `xml:"from,attr"`
		Stamp string `xml:"stamp,attr"`
	} `xml:"urn:xmpp:delay delay"`
	Received *struct {
		ID string `xml:"id,attr"`
	} `xml:"urn:xmpp:receipts received"`
}

func decodeChat(t testing.TB, st xmppcomp.Stanza) chatOf {
	t.Helper()
	var m chatOf
	if err := st.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func messageFrom(from string) func(xmppcomp.Stanza) bool {
	return func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && st.From.String() == from && st.Type != "error"
	}
}

// pendingToXMPP is what the store still holds for alice.
func (h *harness) pendingToXMPP() []store.Item {
	h.t.Helper()
	items, err := h.st.Pending(context.Background(), aliceBare, store.ToXMPP)
	if err != nil {
		h.t.Fatal(err)
	}
	return items
}

// userMessage sends a chat message of alice's phone to a buddy.
func (h *harness) userMessage(id, to, inner string) {
	h.t.Helper()
	h.in(`<message xmlns="jabber:component:accept" type="chat" id=%q from=%q to=%q>%s</message>`, id, aliceFull, to, inner)
}

// inboxFrom returns the texts uin received from alice, oldest first.
func (h *harness) inboxFrom(uin qqproto.UIN) []string {
	var out []string
	for _, it := range h.sim.Inbox(uin) {
		if it.From == 10001 && it.Type == qqproto.MsgBuddy {
			out = append(out, it.Text)
		}
	}
	return out
}

func TestQQMessageArrivesExactlyAndLeavesTheQueue(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	if err := h.sim.Send(20001, 10001, trickyText); err != nil {
		t.Fatal(err)
	}
	st := h.waitFor("Bob's message", messageFrom(buddyAddr(20001)))
	m := decodeChat(t, st)
	if m.Body != trickyText || m.Type != "chat" {
		t.Errorf("got type %q body %q, want chat %q", m.Type, m.Body, trickyText)
	}
	if st.To.String() != aliceBare {
		t.Errorf("message to %s, want the bare JID %s", st.To, aliceBare)
	}
	if m.Delay != nil {
		t.Errorf("a message delivered at once carries a delay stamp: %s", st)
	}
	h.eventually("queue emptied", func() bool { return len(h.pendingToXMPP()) == 0 })
}

func TestQQMessagesWaitWhileDisconnectedThenFlowInOrderWithDelay(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	h.out.down.Store(true)
	before := h.fakeClock().Now()
	for i := 1; i <= 5; i++ {
		if err := h.sim.Send(20001+qqproto.UIN(i%2), 10001, fmt.Sprintf("msg %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("5 messages fetched into the queue", func() bool { return len(h.pendingToXMPP()) == 5 })
	fetched := h.fakeClock().Now()
	if n := len(h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "message" })); n != 0 {
		t.Fatalf("%d messages went out while disconnected", n)
	}
	h.advance(50 * time.Millisecond)
	h.out.down.Store(false)
	h.g.OnConnect(context.Background())
	// Until the server confirms the user is still there (its answer to
	// the gateway's probe), the messages wait in the gateway's queue.
	h.waitFor("probe of alice", presenceMatch(testDomain, "probe"))
	h.advance(3 * h.cfg.PollActive)
	if n := len(h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "message" })); n != 0 {
		t.Fatalf("%d messages sent before the user was confirmed online", n)
	}
	h.goOnline("") // the server's answer to the probe
	for i := 1; i <= 5; i++ {
		st := h.waitFor(fmt.Sprintf("message %d", i), func(st xmppcomp.Stanza) bool { return st.Name == "message" })
		m := decodeChat(t, st)
		if want := fmt.Sprintf("msg %d", i); m.Body != want || st.From.String() != buddyAddr(20001+i%2) {
			t.Fatalf("message %d: got %q from %s, want %q from %s", i, m.Body, st.From, want, buddyAddr(20001+i%2))
		}
		if m.Delay == nil || m.Delay.From != testDomain {
			t.Fatalf("message %d delivered late has no delay stamp from the gateway: %s", i, st)
		}
		stamp, err := time.Parse(time.RFC3339Nano, m.Delay.Stamp)
		if err != nil || stamp.Before(before.Truncate(time.Millisecond)) || stamp.After(fetched) {
			t.Errorf("message %d: stamp %q is not the time it was fetched (between %v and %v)", i, m.Delay.Stamp, before, fetched)
		}
	}
	h.eventually("queue emptied", func() bool { return len(h.pendingToXMPP()) == 0 })
	if extra := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "message" }); len(extra) != 0 {
		t.Errorf("messages delivered twice: %v", extra)
	}

	// Afterwards messages flow at once again, without a stamp.
	if err := h.sim.Send(20001, 10001, "live"); err != nil {
		t.Fatal(err)
	}
	if m := decodeChat(t, h.waitFor("live message", messageFrom(buddyAddr(20001)))); m.Body != "live" || m.Delay != nil {
		t.Errorf("live message after the backlog: %+v", m)
	}
}

func TestQueuedMessagesSurviveAGatewayRestart(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.out.down.Store(true)
	for i := 1; i <= 3; i++ {
		if err := h.sim.Send(20001, 10001, fmt.Sprintf("before restart %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("messages fetched into the queue", func() bool { return len(h.pendingToXMPP()) == 3 })
	h.stop()
	h.skipAll()
	h.out.down.Store(false)
	h.start()
	h.g.OnConnect(context.Background()) // the component connects and probes
	h.goOnline("")                      // the server answers: queued items go first
	for i := 1; i <= 3; i++ {
		st := h.waitFor(fmt.Sprintf("queued message %d", i), messageFrom(buddyAddr(20001)))
		if m := decodeChat(t, st); m.Body != fmt.Sprintf("before restart %d", i) || m.Delay == nil {
			t.Fatalf("after restart got %s", st)
		}
	}
	h.eventually("queue emptied", func() bool { return len(h.pendingToXMPP()) == 0 })
}

// A session that starts with old items in the store delivers them before
// anything it fetches itself.
func TestOldQueueItemsGoBeforeNewMessages(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.register("10001", "secret")
	if _, err := h.st.Enqueue(context.Background(), store.Item{Dir: store.ToXMPP, JID: aliceBare, Peer: 20002,
		Text: "old", MsgType: int(qqproto.MsgBuddy)}); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.Send(20001, 10001, "new"); err != nil {
		t.Fatal(err)
	}
	h.goOnline("")
	first := h.waitFor("first message", func(st xmppcomp.Stanza) bool { return st.Name == "message" })
	if m := decodeChat(t, first); m.Body != "old" || first.From.String() != buddyAddr(20002) || m.Delay == nil {
		t.Errorf("first message: %s, want the old queued one with a delay stamp", first)
	}
	second := h.waitFor("second message", func(st xmppcomp.Stanza) bool { return st.Name == "message" })
	if m := decodeChat(t, second); m.Body != "new" {
		t.Errorf("second message: %s", second)
	}
}

func TestSystemNoticeComesFromTheDomain(t *testing.T) {
	sys := qqsim.Account{UIN: qqproto.SystemUIN, Password: "x", Nick: "系统"}
	h := newHarness(t, qqsim.Options{}, append(world(), sys)...)
	h.online("")
	if err := h.sim.Send(qqproto.SystemUIN, 10001, "系统通知: 维护"); err != nil {
		t.Fatal(err)
	}
	st := h.waitFor("notice", messageFrom(testDomain))
	if m := decodeChat(t, st); m.Body != "系统通知: 维护" || m.Type != "normal" {
		t.Errorf("notice: %s", st)
	}
	if got := h.sent(messageFrom(buddyAddr(int(qqproto.SystemUIN)))); len(got) != 0 {
		t.Errorf("notice also came from the system account's JID: %v", got)
	}
}

// Lost GetMsgEx replies are fetched again with the same SEQ: nothing is
// lost, nothing doubled, order kept.
func TestLostPollRepliesLoseAndDoubleNothing(t *testing.T) {
	h := newHarness(t, qqsim.Options{MaxMessages: 3}, world()...)
	h.stop()
	// Each request fails with probability 0.35; twelve attempts make
	// losing one (0.35^12 ≈ 3e-6) far less likely than the test's other
	// ways to fail.
	h.cfg.QQ.MaxAttempts = 12
	h.start()
	h.online("")
	if err := h.sim.SetFaults(qqsim.Faults{DropRate: 0.2, GarbageRate: 0.1, ErrorRate: 0.05, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	const n = 60
	for i := 0; i < n; i++ {
		if err := h.sim.Send(20001, 10001, fmt.Sprintf("m%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		st := h.waitFor(fmt.Sprintf("message %d", i), messageFrom(buddyAddr(20001)))
		if m := decodeChat(t, st); m.Body != fmt.Sprintf("m%02d", i) {
			t.Fatalf("message %d is %q", i, m.Body)
		}
	}
	h.advance(5 * h.cfg.PollActive)
	if extra := h.sent(messageFrom(buddyAddr(20001))); len(extra) != 0 {
		t.Errorf("%d messages came twice", len(extra))
	}
	if st := h.sim.Stats(); st.Drops == 0 || st.Replayed == 0 {
		t.Errorf("the faults did not happen as planned: %+v", st)
	}
}

func TestMessageToQQIsExactAndSplitAtTheConfiguredSize(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.stop()
	h.cfg.MaxMessageBytes = 64
	h.start()
	h.online("")
	long := strings.Repeat(trickyText, 6)
	h.userMessage("m1", buddyAddr(20001), "<body>"+xmlEscape(trickyText)+"</body>")
	h.userMessage("m2", buddyAddr(20001), "<body>"+xmlEscape(long)+"</body>")
	h.eventually("both messages in Bob's inbox", func() bool { return strings.Join(h.inboxFrom(20001), "") == trickyText+long })
	got := h.inboxFrom(20001)
	want, _ := SplitText(trickyText+"", 64)
	rest, _ := SplitText(long, 64)
	want = append(want, rest...)
	if len(got) != len(want) {
		t.Fatalf("Bob got %d CLTMSGs, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] || len(got[i]) > 64 {
			t.Errorf("part %d: %q, want %q", i, got[i], want[i])
		}
	}
	if errs := h.sent(func(st xmppcomp.Stanza) bool { return st.Type == "error" }); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestChatStatesAloneSendNothing(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	h.userMessage("c1", buddyAddr(20001), `<composing xmlns="http://jabber.org/protocol/chatstates"/>`)
	h.userMessage("c2", buddyAddr(20001), `<body></body><active xmlns="http://jabber.org/protocol/chatstates"/>`)
	h.userMessage("c3", buddyAddr(20001), `<body>after</body>`)
	h.eventually("the real message in Bob's inbox", func() bool { return len(h.inboxFrom(20001)) > 0 })
	if got := h.inboxFrom(20001); len(got) != 1 || got[0] != "after" {
		t.Errorf("Bob got %q, want only \"after\"", got)
	}
	if errs := h.sent(func(st xmppcomp.Stanza) bool { return st.Type == "error" }); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

func TestMessagesToQQKeepTheirOrder(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	const n = 100
	for i := 0; i < n; i++ {
		h.userMessage(fmt.Sprintf("o%d", i), buddyAddr(20002), fmt.Sprintf("<body>%d</body>", i))
	}
	h.eventually("all in Carol's inbox", func() bool { return len(h.inboxFrom(20002)) == n })
	for i, text := range h.inboxFrom(20002) {
		if text != fmt.Sprint(i) {
			t.Fatalf("message %d arrived as %q", i, text)
		}
	}
}

// Stanzas that arrived together (xmppcomp hands them over in one call)
// are served as if they came one by one: a stranger's message among them
// is refused alone, and the user's reach QQ in order.
func TestStanzasArrivingTogetherKeepTheirOrder(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	var sts []xmppcomp.Stanza
	const n = 30
	for i := range n {
		raw := fmt.Sprintf(`<message xmlns="jabber:component:accept" type="chat" id="b%d" from=%q to=%q><body>%d</body></message>`,
			i, aliceFull, buddyAddr(20002), i)
		if i == n/2 {
			raw = fmt.Sprintf(`<message xmlns="jabber:component:accept" type="chat" id="s1" from="stranger@example.org/x" to=%q><body>hi</body></message>`,
				buddyAddr(20002))
		}
		st, err := xmppcomp.ParseStanza([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	h.g.HandleStanzas(context.Background(), sts)
	st := h.waitFor("the stranger's refusal", func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.Type == "error" })
	if st.ID != "s1" || st.To.String() != "stranger@example.org/x" {
		t.Errorf("refusal addressed wrong: %s", st)
	}
	h.eventually("all of alice's in Carol's inbox", func() bool { return len(h.inboxFrom(20002)) == n-1 })
	want := 0
	for _, text := range h.inboxFrom(20002) {
		if want == n/2 {
			want++
		}
		if text != fmt.Sprint(want) {
			t.Fatalf("message %d arrived as %q", want, text)
		}
		want++
	}
}

func TestRefusedMessageComesBackAsError(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.userMessage("bad1", buddyAddr(99999), "<body>anyone there?</body>")
	st := h.waitFor("error", func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.Type == "error" })
	if st.ID != "bad1" || st.From.String() != buddyAddr(99999) || st.To.String() != aliceFull {
		t.Errorf("error stanza addressed wrong: %s", st)
	}
	if cond, _, text := stanzaErr(t, st); cond != "item-not-found" || !strings.Contains(text, "QQ number") {
		t.Errorf("error %q %q, want item-not-found with a text", cond, text)
	}
}

func TestMessageWhileNotLoggedInComesBackAsError(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.register("10001", "secret") // registered, but no resource is online
	h.skipAll()
	h.userMessage("off1", buddyAddr(20001), "<body>hello?</body>")
	st := h.waitFor("error", func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.Type == "error" })
	if cond, _, text := stanzaErr(t, st); cond != "service-unavailable" || !strings.Contains(text, "Not logged in") {
		t.Errorf("error %q %q", cond, text)
	}
	if got := h.inboxFrom(20001); len(got) != 0 {
		t.Errorf("Bob got %q", got)
	}
}

func TestMessageFailingMidwayNamesThePartsSent(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.stop()
	h.cfg.MaxMessageBytes = 8
	h.start()
	h.online("")
	h.skipAll()
	// The QQ server goes away after the first part of three.
	calls := 0
	h.g.mu.Lock()
	s := h.g.sessions[aliceBare]
	h.g.mu.Unlock()
	done := make(chan struct{})
	h.g.sched.submit(s.task, func(context.Context) {
		s.link.qq = &failAfter{QQ: s.link.qq, n: 1, calls: &calls}
		close(done)
	})
	<-done
	h.userMessage("long1", buddyAddr(20001), "<body>aaaaaaaabbbbbbbbcccc</body>")
	// Retried quietly until the gateway gives up on it: past that at once,
	// rather than a quantum per wait of waitFor.
	h.advance(outboxGiveUp)
	st := h.waitFor("error", func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.Type == "error" })
	if cond, _, text := stanzaErr(t, st); cond != "remote-server-timeout" || !strings.Contains(text, "first 1 of 3 parts") {
		t.Errorf("error %q %q", cond, text)
	}
	if got := h.inboxFrom(20001); len(got) != 1 || got[0] != "aaaaaaaa" {
		t.Errorf("Bob got %q", got)
	}
}

// failAfter lets n messages through, then fails as an unreachable server;
// a repeat of a SEQ that went through is answered, as the server answers
// it from its memory.
type failAfter struct {
	QQ
	n     int
	calls *int
	ok    map[int64]bool
}

func (f *failAfter) SendMessage(ctx context.Context, seq int64, to qqproto.UIN, text string) error {
	*f.calls++
	if !f.ok[seq] && len(f.ok) >= f.n {
		return &UnreachableError{Err: fmt.Errorf("connection refused")}
	}
	if f.ok == nil {
		f.ok = map[int64]bool{}
	}
	f.ok[seq] = true
	return f.QQ.SendMessage(ctx, seq, to, text)
}

func TestReceiptOnlyAfterQQAccepted(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	h.userMessage("r1", buddyAddr(20001), `<body>receipt please</body><request xmlns="urn:xmpp:receipts"/>`)
	st := h.waitFor("receipt", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && decodeChat(t, st).Received != nil
	})
	if got := h.inboxFrom(20001); len(got) != 1 || got[0] != "receipt please" {
		t.Errorf("receipt sent but Bob's inbox holds %q", got)
	}
	if m := decodeChat(t, st); m.Received.ID != "r1" || st.From.String() != buddyAddr(20001) || st.To.String() != aliceFull || m.Body != "" {
		t.Errorf("receipt: %s", st)
	}
	// A refused message gets its error and no receipt.
	h.userMessage("r2", buddyAddr(99999), `<body>x</body><request xmlns="urn:xmpp:receipts"/>`)
	h.waitFor("error", func(st xmppcomp.Stanza) bool { return st.Type == "error" && st.ID == "r2" })
	h.quiesce()
	if rs := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "message" && decodeChat(t, st).Received != nil }); len(rs) != 0 {
		t.Errorf("receipt for a refused message: %v", rs)
	}
}

// benchSession is a logged-in, reachable session of a gateway whose
// stanzas go to a recorder, on a store on disk: the QQ → XMPP path alone.
func benchSession(b *testing.B) (*session, *recorder) {
	b.Helper()
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "gw.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	reg := store.Registration{JID: aliceBare, UIN: 10001, PasswordMD5: qqproto.PasswordMD5("secret")}
	if err := st.PutRegistration(context.Background(), reg); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig("http://127.0.0.1:1/")
	g, err := New(cfg, st)
	if err != nil {
		b.Fatal(err)
	}
	out := &recorder{t: b}
	var sender Sender = out
	g.emit.out.Store(&sender)
	bare, _ := jid.Parse(aliceBare)
	s := newSession(g, bare)
	s.reg, s.loaded, s.link.state = &reg, true, stateOnline
	s.res.set("phone", 0, true, &presenceIn{}, g.epoch.Load())
	s.drained = true
	return s, out
}

func benchBatch() []qqproto.Message {
	msgs := make([]qqproto.Message, 20) // one GetMsgEx reply of qqsim
	for i := range msgs {
		msgs[i] = qqproto.Message{Type: qqproto.MsgBuddy, From: 20001, Text: fmt.Sprintf("消息 %d, with a comma", i)}
	}
	return msgs
}

// BenchmarkDeliverQueued is the durable path: each batch of 20 is written to
// the store, sent, and removed.
func BenchmarkDeliverQueued(b *testing.B) {
	s, out := benchSession(b)
	msgs := benchBatch()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.deliverQQ(ctx, int64(i+1), msgs)
	}
	b.StopTimer()
	if len(out.all()) != 20*b.N || !s.drained {
		b.Fatalf("%d stanzas for %d batches", len(out.all()), b.N)
	}
}

// BenchmarkDeliverUnqueued sends the same batches straight, as the store
// fallback does: the difference is the price of durability.
func BenchmarkDeliverUnqueued(b *testing.B) {
	s, out := benchSession(b)
	msgs := benchBatch()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range msgs {
			s.deliverItem(ctx, store.Item{Peer: int64(m.From), Text: m.Text, MsgType: int(m.Type)}, false)
		}
	}
	b.StopTimer()
	if len(out.all()) != 20*b.N {
		b.Fatalf("%d stanzas for %d batches", len(out.all()), b.N)
	}
}

// pendingToQQ is what the store holds of alice's messages to QQ.
func (h *harness) pendingToQQ() []store.Item {
	h.t.Helper()
	items, err := h.st.Pending(context.Background(), aliceBare, store.ToQQ)
	if err != nil {
		h.t.Fatal(err)
	}
	return items
}

func inboxTexts(sim *qqsim.Server, uin qqproto.UIN) []string {
	var out []string
	for _, it := range sim.Inbox(uin) {
		if it.Type == qqproto.MsgBuddy {
			out = append(out, it.Text)
		}
	}
	return out
}

// A message to QQ is in the store while it waits and gone once sent.
func TestOutgoingMessageQueuedUntilSent(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.in(`<message xmlns="jabber:component:accept" type="chat" id="m1" from=%q to=%q><body>queued, then sent</body></message>`,
		aliceFull, buddyAddr(20002))
	h.eventually("message in 20002's inbox", func() bool {
		return slices.Equal(inboxTexts(h.sim, 20002), []string{"queued, then sent"})
	})
	h.eventually("queue of messages to QQ emptied", func() bool { return len(h.pendingToQQ()) == 0 })
}

// Messages the user sent that were still waiting when the gateway stopped
// are not lost: they stay in the store and go to QQ, in order, when the
// session logs in again after the restart.
func TestOutgoingMessagesSurviveAGatewayStop(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	// Every QQ request now takes 300 ms, so the burst is still waiting when
	// the gateway stops.
	if err := h.sim.SetFaults(qqsim.Faults{LatencyMS: 300}); err != nil {
		t.Fatal(err)
	}
	const n = 6
	for i := 1; i <= n; i++ {
		h.in(`<message xmlns="jabber:component:accept" type="chat" id="s%d" from=%q to=%q><body>waiting %d</body></message>`,
			i, aliceFull, buddyAddr(20002), i)
	}
	h.eventually("the first message in 20002's inbox", func() bool { return len(inboxTexts(h.sim, 20002)) > 0 })
	h.stop()
	if before := len(inboxTexts(h.sim, 20002)); before >= n {
		t.Fatal("the whole burst reached QQ before the stop; the test proves nothing")
	}
	if err := h.sim.SetFaults(qqsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.g.OnConnect(context.Background())
	h.goOnline("")
	h.eventually("every message in 20002's inbox", func() bool { return len(h.pendingToQQ()) == 0 })
	// In order and complete; the one in flight at the stop may come twice
	// (at least once), nothing else may.
	var got []string
	for _, text := range inboxTexts(h.sim, 20002) {
		if len(got) > 0 && got[len(got)-1] == text {
			continue
		}
		got = append(got, text)
	}
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("waiting %d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("20002 received %q, want %q", inboxTexts(h.sim, 20002), want)
	}
	if extra := len(inboxTexts(h.sim, 20002)) - n; extra > 1 {
		t.Errorf("%d messages arrived twice, want at most the one in flight at the stop", extra)
	}
}

// A QQ text too long for one stanza (Prosody closes the stream past 1 MB)
// reaches the user whole, in order, as several messages of at most
// maxXMPPText bytes each.
func TestLongQQTextArrivesInPartsThatFitAStanza(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	long := strings.Repeat("长文本 & <x> line\n", 40000) // 920,000 bytes
	if err := h.sim.Send(20001, 10001, long); err != nil {
		t.Fatal(err)
	}
	want := (len(long) + maxXMPPText - 1) / maxXMPPText
	var got strings.Builder
	for i := 0; i < want; i++ {
		st := h.waitFor(fmt.Sprintf("part %d of %d", i+1, want), messageFrom(buddyAddr(20001)))
		body := decodeChat(t, st).Body
		if len(body) > maxXMPPText {
			t.Fatalf("part %d has %d bytes, over %d", i+1, len(body), maxXMPPText)
		}
		got.WriteString(body)
	}
	if got.String() != long {
		t.Errorf("the parts put together are %d bytes and differ from the %d sent", got.Len(), len(long))
	}
}
