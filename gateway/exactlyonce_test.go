package gateway

// Exactly once to and from QQ when replies are lost, the session is lost
// and the gateway restarts (issue 13, findings 3–5): every CLTMSG and
// GetMsgEx repeats the SEQ stored before its first attempt.

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// leap moves the gateway's clock by d in steps, letting it work between.
func (h *harness) leap(d, step time.Duration) {
	h.t.Helper()
	for moved := time.Duration(0); moved < d; moved += step {
		h.quiesce()
		h.fakeClock().Advance(step)
		h.g.sched.nudge()
	}
	h.quiesce()
}

func setFaults(t *testing.T, sim *qqsim.Server, f qqsim.Faults) {
	t.Helper()
	if err := sim.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

func errorFor(id string) func(xmppcomp.Stanza) bool {
	return func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.Type == "error" && st.ID == id }
}

// A message whose every CLTMSG reply was lost reached QQ; the gateway
// must not tell the user it failed (who would send it again), but keep it
// and repeat it with its SEQ until QQ answers; then the receipt comes and
// the buddy has it once (finding 4).
func TestMessageWithLostRepliesIsKeptAndSentOnce(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	setFaults(t, h.sim, qqsim.Faults{DropRate: 1})
	h.userMessage("m1", buddyAddr(20001), `<body>once</body><request xmlns="urn:xmpp:receipts"/>`)
	h.quiesce()
	if errs := h.sent(errorFor("m1")); len(errs) != 0 {
		t.Fatalf("the user was told a message QQ took had failed: %v", errs)
	}
	if p := h.pendingToQQ(); len(p) != 1 || p[0].Attempts != 1 || p[0].Seq == 0 {
		t.Fatalf("outbox %+v, want the message kept with its SEQ and one failed attempt", p)
	}
	setFaults(t, h.sim, qqsim.Faults{})
	st := h.waitFor("receipt", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && decodeChat(t, st).Received != nil
	})
	if m := decodeChat(t, st); m.Received.ID != "m1" {
		t.Errorf("receipt %s", st)
	}
	if got := h.inboxFrom(20001); len(got) != 1 || got[0] != "once" {
		t.Errorf("Bob received %q, want it exactly once", got)
	}
	var seqs []string
	for _, r := range h.sim.Requests(10001) {
		if r.Cmd == "CLTMSG" {
			seqs = append(seqs, r.Seq)
		}
	}
	for _, s := range seqs[1:] {
		if s != seqs[0] {
			t.Errorf("CLTMSG SEQs %v, want one SEQ for every attempt", seqs)
			break
		}
	}
	h.eventually("outbox emptied", func() bool { return len(h.pendingToQQ()) == 0 })
	if errs := h.sent(errorFor("m1")); len(errs) != 0 {
		t.Errorf("error after the receipt: %v", errs)
	}
}

// A message QQ never confirms is given up on before the server's memory of
// replies runs out, moved to the dead letters, and the user hears that it
// may have been delivered.
func TestMessageNeverConfirmedIsGivenUpOnAsMaybeDelivered(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	setFaults(t, h.sim, qqsim.Faults{DropRate: 1})
	h.userMessage("m2", buddyAddr(20001), `<body>lost?</body>`)
	h.leap(outboxGiveUp+2*outboxRetryMax, 5*time.Second)
	st := h.waitFor("the give-up", errorFor("m2"))
	if cond, typ, text := stanzaErr(t, st); cond != "remote-server-timeout" || typ != "wait" || !strings.Contains(text, "may have been delivered") {
		t.Errorf("error %q %q %q", cond, typ, text)
	}
	if got := h.inboxFrom(20001); len(got) != 1 {
		t.Errorf("Bob received %q, want it once (every retry repeated its SEQ)", got)
	}
	if p := h.pendingToQQ(); len(p) != 0 {
		t.Errorf("outbox still holds %+v", p)
	}
	if n, err := h.st.DeadLetterCount(context.Background()); n != 1 || err != nil {
		t.Errorf("dead letters: %d, %v; want 1", n, err)
	}
	// An admin sees it in the statistics.
	h.g.SetAdmins([]string{adminBare})
	wantSaid(t, h.adminCommand("stats").Form.text(), "Dead letters: 1")
	if errs := h.sent(errorFor("m2")); len(errs) != 0 {
		t.Errorf("told twice: %v", errs)
	}
}

// A GetMsgEx whose replies were lost, then a restart of the gateway and a
// new QQ login: the SEQ was stored, the batch is asked for again with it
// and arrives once (finding 3).
func TestLostFetchAcrossRestartAndReloginLosesNothing(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	setFaults(t, h.sim, qqsim.Faults{DropRate: 1})
	for _, text := range []string{"one", "two"} {
		if err := h.sim.Send(20001, 10001, text); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("the batch fetched with its reply lost", func() bool { return h.sim.Session(10001).Queued == 0 })
	h.stop()
	if err := h.sim.EndSession(10001); err != nil {
		t.Fatal(err)
	}
	setFaults(t, h.sim, qqsim.Faults{})
	h.start()
	h.g.OnConnect(context.Background())
	h.goOnline("")
	for _, want := range []string{"one", "two"} {
		st := h.waitFor("message "+want, messageFrom(buddyAddr(20001)))
		if m := decodeChat(t, st); m.Body != want {
			t.Fatalf("got %q, want %q", m.Body, want)
		}
	}
	h.leap(30*time.Second, time.Second)
	if extra := h.sent(messageFrom(buddyAddr(20001))); len(extra) != 0 {
		t.Errorf("%d messages came twice", len(extra))
	}
	if n := h.sim.Session(10001).Logins; n < 2 {
		t.Errorf("QQ logins %d: the test did not log in again", n)
	}
}

// A kill -9 between CLTMSG and the outbox removal: the next start repeats
// the stored SEQ and the buddy gets the message once (finding 5).
func TestOutboxRowSentBeforeACrashIsNotDoubled(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.stop()
	// What a crash leaves: the row, with the SEQ QQ already executed.
	seq := qqproto.NewSeqs().Next()
	if _, err := h.st.Enqueue(context.Background(), store.Item{Dir: store.ToQQ, JID: aliceBare, Peer: 20001,
		Text: "before the crash", Resource: "phone", StanzaType: "chat", Seq: seq}); err != nil {
		t.Fatal(err)
	}
	c := qqproto.NewClient(10001, qqproto.Options{Server: h.qqURL})
	if _, err := c.Login(context.Background(), qqproto.PasswordMD5("secret")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMessageSeq(context.Background(), seq, 20001, "before the crash"); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.goOnline("")
	h.eventually("outbox emptied", func() bool { return len(h.pendingToQQ()) == 0 })
	if got := h.inboxFrom(20001); len(got) != 1 {
		t.Errorf("Bob received %q, want it once", got)
	}
}

// A QQ message sent but not confirmed by the XMPP server (the connection
// dropped) is sent again with the same id, origin-id and stanza-id
// (XEP-0359), so that clients and archives show it once.
func TestResentQQMessageKeepsItsStableIDs(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	h.out.failBarriers.Store(1)
	if err := h.sim.Send(20001, 10001, "twice on the wire, once for the user"); err != nil {
		t.Fatal(err)
	}
	type ids struct {
		ID     string `xml:"id,attr"`
		Origin struct {
			ID string `xml:"id,attr"`
		} `xml:"urn:xmpp:sid:0 origin-id"`
		Stanza struct {
			ID string `xml:"id,attr"`
			By string `xml:"by,attr"`
		} `xml:"urn:xmpp:sid:0 stanza-id"`
	}
	var got [2]ids
	for i := range got {
		st := h.waitFor("the message", messageFrom(buddyAddr(20001)))
		if err := st.Decode(&got[i]); err != nil {
			t.Fatal(err)
		}
	}
	a, b := got[0], got[1]
	if a.ID == "" || a != b || a.Origin.ID != a.ID || a.Stanza.ID != a.ID || a.Stanza.By != testDomain {
		t.Errorf("first send %+v, second %+v: want the same non-empty id everywhere, stanza-id by %s", a, b, testDomain)
	}
	h.eventually("queue emptied", func() bool { return len(h.pendingToXMPP()) == 0 })
}

// lostWhileDown answers every CLTMSG with a lost session and every Login
// with no reply while down is set: a QQ server that dropped the session
// and cannot be reached to log in again.
type lostWhileDown struct {
	QQ
	down atomic.Bool
}

func (q *lostWhileDown) SendMessage(ctx context.Context, seq int64, to qqproto.UIN, text string) error {
	if q.down.Load() {
		return ErrSessionLost
	}
	return q.QQ.SendMessage(ctx, seq, to, text)
}

func (q *lostWhileDown) Login(ctx context.Context, md5 string) (qqproto.LoginResult, error) {
	if q.down.Load() {
		return qqproto.LoginResult{}, &UnreachableError{Err: errors.New("no reply")}
	}
	return q.QQ.Login(ctx, md5)
}

// A message QQ may have taken (every reply lost) is not refused when its
// retry finds the session lost and the re-login fails: a refusal could be
// wrong, and its sender may be gone (the chaos suite lost such a one). It
// stays kept and goes once QQ is back, exactly once.
func TestMessageMaybeTakenIsNotRefusedWhenTheSessionIsLost(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	q := &lostWhileDown{}
	h.wrapQQ(func(qq QQ) QQ { q.QQ = qq; return q })
	setFaults(t, h.sim, qqsim.Faults{DropRate: 1})
	h.userMessage("m1", buddyAddr(20001), `<body>kept through it all</body><request xmlns="urn:xmpp:receipts"/>`)
	h.quiesce()
	setFaults(t, h.sim, qqsim.Faults{})
	q.down.Store(true)
	h.advance(20 * time.Second) // retries: the session lost, no login
	if errs := h.sent(errorFor("m1")); len(errs) != 0 {
		t.Fatalf("the message QQ may have taken was refused: %v", errs)
	}
	if p := h.pendingToQQ(); len(p) != 1 {
		t.Fatalf("outbox %+v, want the message still kept", p)
	}
	q.down.Store(false)
	st := h.waitFor("receipt", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && decodeChat(t, st).Received != nil
	})
	if m := decodeChat(t, st); m.Received.ID != "m1" {
		t.Errorf("receipt %s", st)
	}
	if got := h.inboxFrom(20001); len(got) != 1 || got[0] != "kept through it all" {
		t.Errorf("Bob received %q, want it exactly once", got)
	}
}
