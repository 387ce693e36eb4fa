package gateway

// A delivered message whose removal from the queue fails (disk full,
// database locked) is never sent again by this process (issue 13,
// finding 6); the removal is retried later.

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp"
)

// lockStore takes the database's write lock from another connection, so
// that every write of the gateway fails after its busy timeout; the
// returned func releases it.
func (h *harness) lockStore() func() {
	h.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+h.dbPath+"?_txlock=immediate")
	if err != nil {
		h.t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		h.t.Fatal(err)
	}
	return func() {
		tx.Rollback()
		db.Close()
	}
}

// quiesceLocked is quiesce while the store is locked: every write waits
// out SQLite's busy timeout (5 s), a failed group commit twice (the group,
// then the write alone), more than quiesce waits for.
func (h *harness) quiesceLocked() {
	h.t.Helper()
	for deadline := time.Now().Add(40 * time.Second); !h.g.sched.quiet(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			h.t.Fatal("the gateway is still busy after 40s")
		}
	}
}

// wrapQQ replaces alice's session's QQ client with wrap's, on the
// session's own work queue.
func (h *harness) wrapQQ(wrap func(QQ) QQ) {
	s := h.session()
	done := make(chan struct{})
	h.g.sched.submit(s.task, func(context.Context) {
		s.link.qq = wrap(s.link.qq)
		close(done)
	})
	<-done
}

// lockAfterSend takes the store's write lock once a CLTMSG went through,
// before the gateway removes the message from its outbox.
type lockAfterSend struct {
	QQ
	lock   func() func()
	unlock chan func()
}

func (l *lockAfterSend) SendMessage(ctx context.Context, seq int64, to qqproto.UIN, text string) error {
	err := l.QQ.SendMessage(ctx, seq, to, text)
	if err == nil && l.lock != nil {
		l.unlock <- l.lock()
		l.lock = nil
	}
	return err
}

func TestHandledMessageToQQWhoseRemovalFailedIsNotSentAgain(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	l := &lockAfterSend{lock: h.lockStore, unlock: make(chan func(), 1)}
	h.wrapQQ(func(qq QQ) QQ { l.QQ = qq; return l })
	h.userMessage("d1", buddyAddr(20001), `<body>removal fails</body>`)
	unlock := <-l.unlock
	h.quiesceLocked() // the removal has failed after the busy timeout
	unlock()
	// A new login replays the outbox: the handled row is removed, not sent.
	h.presence(aliceFull, testDomain, "unavailable", "")
	h.eventually("logged out", func() bool { return !h.sim.Session(10001).LoggedIn })
	h.goOnline("")
	h.eventually("the row removed", func() bool { return len(h.pendingToQQ()) == 0 })
	n := 0
	for _, r := range h.sim.Requests(10001) {
		if r.Cmd == "CLTMSG" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d CLTMSG requests, want 1: a handled message was sent again", n)
	}
}

func TestDeliveredQQMessageWhoseRemovalFailedIsNotSentAgain(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	h.out.down.Store(true)
	if err := h.sim.Send(20001, 10001, "delivered once"); err != nil {
		t.Fatal(err)
	}
	h.eventually("the message queued", func() bool { return len(h.pendingToXMPP()) == 1 })
	unlocks := make(chan func(), 1)
	lock := func() { unlocks <- h.lockStore() } // after the send, before the removal
	h.out.onBarrier.Store(&lock)
	h.out.down.Store(false)
	h.waitFor("the message", messageFrom(buddyAddr(20001)))
	h.quiesceLocked() // its removal has failed
	(<-unlocks)()
	h.leap(30*time.Second, time.Second) // polls, each flushing the queue
	if again := h.sent(messageFrom(buddyAddr(20001))); len(again) != 0 {
		t.Errorf("sent %d more times", len(again))
	}
	h.eventually("the row removed", func() bool { return len(h.pendingToXMPP()) == 0 })
}

// lostThenLock answers the first CLTMSG with a lost session after taking
// the store's write lock: the SEQs the re-login calls for cannot be
// stored.
type lostThenLock struct {
	QQ
	lock   func() func()
	unlock chan func()
}

func (l *lostThenLock) SendMessage(ctx context.Context, seq int64, to qqproto.UIN, text string) error {
	if l.lock != nil {
		l.unlock <- l.lock()
		l.lock = nil
		return ErrSessionLost
	}
	return l.QQ.SendMessage(ctx, seq, to, text)
}

// A message whose fresh SEQs cannot be stored after a lost QQ session is
// not refused (the refusal could not be noted, so a restart would send it
// after all: the chaos suite's "false error"); it waits in the outbox and
// goes once the store takes writes again, with its receipt.
func TestMessageWhoseNewSeqsCannotBeStoredWaits(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	h.skipAll()
	l := &lostThenLock{lock: h.lockStore, unlock: make(chan func(), 1)}
	h.wrapQQ(func(qq QQ) QQ { l.QQ = qq; return l })
	h.userMessage("k1", buddyAddr(20001), `<body>after the disk frees</body><request xmlns="urn:xmpp:receipts"/>`)
	unlock := <-l.unlock
	h.quiesceLocked() // SetSeq has failed after the busy timeout
	unlock()
	if errs := h.sent(func(st xmppcomp.Stanza) bool { return st.Type == "error" }); len(errs) > 0 {
		t.Fatalf("the message was refused: %s", errs[0])
	}
	h.advance(storeRetry + time.Second)
	h.waitFor("the receipt", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && strings.Contains(string(st.Raw), `id="k1"`) && strings.Contains(string(st.Raw), "urn:xmpp:receipts")
	})
	if got := h.inboxFrom(20001); len(got) != 1 || got[0] != "after the disk frees" {
		t.Fatalf("buddy 20001 got %q, want the message once", got)
	}
}
