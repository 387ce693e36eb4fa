package gateway

// fakeQQ is an in-memory stand-in for the QQ seam: what the gateway asks
// of QQ is counted, and answers and failures are set by the test. With the
// harness's fake clock, a test can step through hours of polling and
// assert what was (and was not) asked and sent, without sleeping.

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/xmppcomp"
)

type fakeQQ struct {
	mu       sync.Mutex
	password string // plaintext; Login compares its MD5
	buddies  []qqproto.Buddy
	calls    map[string]int
	fail     map[string][]error // next errors of a command, consumed in order
	loggedIn bool
}

func newFakeQQ(password string, buddies ...qqproto.Buddy) *fakeQQ {
	return &fakeQQ{password: password, buddies: buddies, calls: map[string]int{}, fail: map[string][]error{}}
}

// call counts cmd and returns the next failure set for it, if any.
func (f *fakeQQ) call(cmd string) error {
	f.calls[cmd]++
	if errs := f.fail[cmd]; len(errs) > 0 {
		f.fail[cmd] = errs[1:]
		return errs[0]
	}
	if cmd != "Login" && !f.loggedIn {
		return ErrSessionLost
	}
	return nil
}

// failNext makes the next calls of cmd fail with errs, in order.
func (f *fakeQQ) failNext(cmd string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[cmd] = append(f.fail[cmd], errs...)
}

// setPassword changes the account's password, as on another QQ client.
func (f *fakeQQ) setPassword(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.password = p
}

func (f *fakeQQ) count(cmd string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[cmd]
}

func (f *fakeQQ) Login(_ context.Context, md5 string) (qqproto.LoginResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Login"); err != nil {
		return qqproto.LoginResult{}, err
	}
	if md5 != qqproto.PasswordMD5(f.password) {
		return qqproto.LoginResult{}, &LoginRefusedError{Reason: "密码错误"}
	}
	f.loggedIn = true
	return qqproto.LoginResult{PollInterval: time.Minute, IdleTimeout: 10 * time.Minute}, nil
}

func (f *fakeQQ) Buddies(context.Context) ([]qqproto.UIN, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []qqproto.UIN
	for _, b := range f.buddies {
		out = append(out, b.UIN)
	}
	return out, f.call("List")
}

func (f *fakeQQ) OnlineBuddies(context.Context) ([]qqproto.Buddy, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []qqproto.Buddy
	for _, b := range f.buddies {
		if b.Status != qqproto.StatusOffline {
			out = append(out, b)
		}
	}
	return out, f.call("Query_Stat")
}

func (f *fakeQQ) Profile(_ context.Context, uin qqproto.UIN) (qqproto.Profile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return qqproto.Profile{UIN: uin, Nick: uin.String()}, f.call("GetInfo")
}

func (f *fakeQQ) AddBuddy(context.Context, qqproto.UIN) (qqproto.AddResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return qqproto.AddAccepted, f.call("AddToList")
}

func (f *fakeQQ) AnswerAdd(context.Context, qqproto.UIN, qqproto.AckCode, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.call("Ack_AddToList")
}

func (f *fakeQQ) RemoveBuddy(context.Context, qqproto.UIN) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.call("DelFromList")
}

func (f *fakeQQ) SetStatus(context.Context, qqproto.Status) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.call("Change_Stat")
}

func (f *fakeQQ) Logout(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.call("Logout")
	f.loggedIn = false
	return err
}

// Messages finds nothing: message flows are proved against qqsim.
func (f *fakeQQ) Messages(context.Context, int64) ([]qqproto.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, f.call("GetMsgEx")
}

func (f *fakeQQ) SendMessage(context.Context, int64, qqproto.UIN, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.call("CLTMSG")
}

// newFakeHarness is a harness whose every QQ account is qq.
func newFakeHarness(t *testing.T, qq *fakeQQ) *harness {
	t.Helper()
	h := &harness{t: t, dbPath: filepath.Join(t.TempDir(), "gw.db")}
	h.cfg = testConfig("http://127.0.0.1:1/")
	h.cfg.NewQQ = func(qqproto.UIN) QQ { return qq }
	h.openStore()
	h.start()
	return h
}

// Idle polling is what the schedule says and shows the user nothing new:
// asserted over ten idle periods of the gateway's clock.
func TestIdleSessionPollsOnScheduleAndSendsNothing(t *testing.T) {
	qq := newFakeQQ("secret",
		qqproto.Buddy{UIN: 20001, Nick: "Bob", Status: qqproto.StatusOnline},
		qqproto.Buddy{UIN: 20002, Nick: "Carol", Status: qqproto.StatusOffline})
	h := newFakeHarness(t, qq)
	h.register("10001", "secret")
	h.goOnline("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.quiesce()
	h.skipAll()
	polls, stats := qq.count("GetMsgEx"), qq.count("Query_Stat")

	h.advance(10 * h.cfg.PollIdle)

	if got := h.sent(func(xmppcomp.Stanza) bool { return true }); len(got) != 0 {
		t.Errorf("an idle session sent %d stanzas: %v", len(got), got)
	}
	if n := qq.count("GetMsgEx") - polls; n != 10 {
		t.Errorf("%d GetMsgEx in 10 idle periods, want 10", n)
	}
	wantStats := int(10 * h.cfg.PollIdle / h.cfg.StatusInterval)
	if n := qq.count("Query_Stat") - stats; n < wantStats-1 || n > wantStats+1 {
		t.Errorf("%d Query_Stat in %v, want %d ± 1", n, 10*h.cfg.PollIdle, wantStats)
	}
	if n := qq.count("Login"); n != 2 { // the registration's trial login and the session's
		t.Errorf("%d logins, want 2", n)
	}
}

// A refused password is told once and not tried again, however long the
// user stays online.
func TestRefusedLoginIsToldOnceAndNotRetried(t *testing.T) {
	qq := newFakeQQ("secret")
	h := newFakeHarness(t, qq)
	h.register("10001", "secret")
	qq.setPassword("changed elsewhere")
	h.goOnline("")
	st := h.waitFor("presence error from the domain", presenceMatch(testDomain, "error"))
	if cond, _, text := stanzaErr(t, st); cond != "not-authorized" || text != wantStoredRefused {
		t.Errorf("refusal told as %q %q", cond, text)
	}
	logins := qq.count("Login")
	h.skipAll()

	h.advance(5 * h.cfg.LoginBackoffMax)

	if n := qq.count("Login") - logins; n != 0 {
		t.Errorf("%d more logins after a refusal", n)
	}
	if got := h.sent(func(xmppcomp.Stanza) bool { return true }); len(got) != 0 {
		t.Errorf("sent after the refusal: %v", got)
	}
}

// While QQ cannot be reached, logins back off (the waits grow to the cap)
// and the user is told once, not at every retry.
func TestUnreachableQQBacksOffAndTellsOnce(t *testing.T) {
	qq := newFakeQQ("secret")
	h := newFakeHarness(t, qq)
	h.register("10001", "secret")
	down := &UnreachableError{Err: context.DeadlineExceeded}
	qq.failNext("Login", down, down, down, down, down, down, down, down, down, down, down, down)
	h.goOnline("")
	h.waitFor("presence error from the domain", presenceMatch(testDomain, "error"))
	h.skipAll()
	base := qq.count("Login")

	h.advance(2 * h.cfg.LoginBackoffMax)

	// With waits doubling from 100 ms (±50%) to a 400 ms cap, 800 ms hold
	// at most a handful of attempts, never one per scheduler step.
	if n := qq.count("Login") - base; n < 2 || n > 6 {
		t.Errorf("%d login attempts in %v", n, 2*h.cfg.LoginBackoffMax)
	}
	if got := h.sent(presenceMatch(testDomain, "error")); len(got) != 0 {
		t.Errorf("the outage was told again: %v", got)
	}
}

// A buddy list QQ cannot hand over (a server whose paging never ends, say)
// is asked again after growing waits, not at every poll: each attempt may
// cost the QQ server up to 200 pages.
func TestFailingImportBacksOff(t *testing.T) {
	qq := newFakeQQ("secret", qqproto.Buddy{UIN: 20001, Nick: "Bob", Status: qqproto.StatusOnline})
	h := newFakeHarness(t, qq)
	h.register("10001", "secret")
	endless := fmt.Errorf("List: %w", qqproto.ErrMalformed)
	errs := make([]error, 1000)
	for i := range errs {
		errs[i] = endless
	}
	qq.failNext("List", errs...)
	h.goOnline("")
	h.waitFor("the domain available", presenceMatch(testDomain, ""))
	h.quiesce()
	polls := qq.count("GetMsgEx")

	h.advance(30 * h.cfg.PollIdle) // 6 s of idle polling; status interval 300 ms

	if n := qq.count("GetMsgEx") - polls; n < 25 {
		t.Fatalf("%d polls in 30 idle periods: the session stopped polling", n)
	}
	// Waits of 300 ms doubling: 0.3+0.6+1.2+2.4 s fit in 6 s, so the first
	// attempt and at most 5 more.
	if n := qq.count("List"); n > 6 {
		t.Errorf("List asked %d times in 6 s while it kept failing, want at most 6", n)
	}
	qq.mu.Lock()
	qq.fail["List"] = nil
	qq.mu.Unlock()
	h.waitFor("Bob's subscribe once List answers", presenceMatch(buddyAddr(20001), "subscribe"))
}
