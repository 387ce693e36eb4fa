package gateway

// Fairness (issue 13, finding 8): a user's stanzas beyond
// Config.MaxUserQueue are refused at once with resource-constraint, and
// another user's are served while the flooder's wait.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jonboulle/clockwork"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// gatedQQ holds every CLTMSG until the test opens the gate, so that the
// sender's session is busy for as long as the test wants.
type gatedQQ struct {
	*fakeQQ
	entered chan struct{} // receives when a CLTMSG waits at the gate
	gate    chan struct{} // closed to let CLTMSGs through
}

func (q *gatedQQ) SendMessage(ctx context.Context, seq int64, to qqproto.UIN, text string) error {
	select {
	case q.entered <- struct{}{}:
	default: // the test waits for the first only
	}
	<-q.gate
	return q.fakeQQ.SendMessage(ctx, seq, to, text)
}

// newFloodHarness is a fake-QQ harness with a queue bound of limit, alice
// registered and online, and her session held in a CLTMSG.
func newFloodHarness(t *testing.T, limit int) (*harness, *gatedQQ) {
	t.Helper()
	qq := &gatedQQ{fakeQQ: newFakeQQ("secret", qqproto.Buddy{UIN: 20001, Nick: "Bob", Status: qqproto.StatusOnline}),
		entered: make(chan struct{}, 1), gate: make(chan struct{})}
	h := &harness{t: t, dbPath: filepath.Join(t.TempDir(), "gw.db")}
	h.cfg = testConfig("http://127.0.0.1:1/")
	h.cfg.NewQQ = func(qqproto.UIN) QQ { return qq }
	h.cfg.MaxUserQueue = limit
	h.openStore()
	h.start()
	t.Cleanup(func() {
		select {
		case <-qq.gate:
		default:
			close(qq.gate)
		}
	})
	h.register("10001", "secret")
	h.goOnline("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.quiesce()
	h.skipAll()
	h.in(`<message xmlns="jabber:component:accept" from=%q to=%q type="chat" id="held"><body>hold</body></message>`, aliceFull, buddyAddr(20001))
	<-qq.entered
	return h, qq
}

func discoIQ(from, id string) string {
	return fmt.Sprintf(`<iq xmlns="jabber:component:accept" type="get" id=%q from=%q to=%q>`+
		`<query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, id, from, testDomain)
}

func TestFloodBeyondTheQueueIsRefusedAndOthersAreServed(t *testing.T) {
	const limit = 4
	h, qq := newFloodHarness(t, limit)
	for i := range limit + 3 {
		h.in("%s", discoIQ(aliceFull, fmt.Sprintf("f%d", i)))
	}
	// Another user is answered while alice's session is still held.
	h.in("%s", discoIQ("bob@example.org/pc", "other"))
	h.waitFor("the other user's answer", func(st xmppcomp.Stanza) bool { return st.ID == "other" && st.Type == "result" })

	close(qq.gate)
	h.waitFor("the answer to the last queued", func(st xmppcomp.Stanza) bool { return st.ID == fmt.Sprintf("f%d", limit-1) })
	var order []string
	for _, st := range h.out.all() {
		if st.To.String() != aliceFull || st.Name != "iq" || !strings.HasPrefix(st.ID, "f") {
			continue
		}
		what := st.Type
		if st.Type == "error" {
			cond, typ, _ := stanzaErr(t, st)
			what = cond + "/" + typ
		}
		order = append(order, st.ID+":"+what)
	}
	// The refusals go out before the work they could not join.
	want := []string{"f4:resource-constraint/wait", "f5:resource-constraint/wait", "f6:resource-constraint/wait",
		"f0:result", "f1:result", "f2:result", "f3:result"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("alice's answers: %v\nwant %v", order, want)
	}
}

// A message beyond the bound is answered with an error and not kept for
// QQ: the user knows it did not go, and it will not go later either.
func TestFloodedMessageIsRefusedNotKept(t *testing.T) {
	const limit = 2
	h, qq := newFloodHarness(t, limit)
	for i := range limit + 1 {
		h.in(`<message xmlns="jabber:component:accept" from=%q to=%q type="chat" id="m%d"><body>text %d</body></message>`,
			aliceFull, buddyAddr(20001), i, i)
	}
	queued, err := h.st.Pending(context.Background(), aliceBare, store.ToQQ)
	close(qq.gate)
	st := h.waitFor("the refusal of m2", func(st xmppcomp.Stanza) bool { return st.ID == "m2" })
	if cond, typ, _ := stanzaErr(t, st); st.Name != "message" || st.Type != "error" || cond != "resource-constraint" || typ != "wait" {
		t.Errorf("m2 answered with %s", st)
	}
	if err != nil {
		t.Fatal(err)
	}
	// "held", m0 and m1; not m2.
	if len(queued) != limit+1 {
		t.Errorf("%d messages kept for QQ, want %d", len(queued), limit+1)
	}
}

// With one worker, a task with a long backlog and a task with one item
// take turns: the second runs after at most taskBatch (8) items of the
// first, not after all of them. A refusal queued last runs before the backlog.
func TestSchedulerTakesTurnsBetweenTasks(t *testing.T) {
	sc := newScheduler(1, clockwork.NewRealClock(), quietLogger())
	a, b := newTask(func(context.Context) {}), newTask(func(context.Context) {})
	var (
		mu    sync.Mutex
		order []string
		done  = make(chan struct{})
	)
	record := func(what string) func(context.Context) {
		return func(context.Context) {
			mu.Lock()
			order = append(order, what)
			if len(order) == 102 {
				close(done)
			}
			mu.Unlock()
		}
	}
	for range 100 {
		sc.submit(a, record("a"))
	}
	sc.submit(b, record("b"))
	if !sc.submitUrgent(a, record("refusal"), 1) || sc.submitUrgent(a, record("refusal"), 1) {
		t.Fatal("the urgent lane of one did not take exactly one refusal")
	}
	runScheduler(t, sc)
	waitDone(t, done, "the queued work did not run")
	if order[0] != "refusal" {
		t.Errorf("first ran %q, want the refusal", order[0])
	}
	// The refusal, then taskBatch items of a at most.
	if i := slices.Index(order, "b"); i < 0 || i > 9 {
		t.Errorf("the other task ran at position %d of %d; want within the first 10", i, len(order))
	}
}
