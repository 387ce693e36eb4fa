package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// ringUsers is how many users newRing registers; ringUIN and ringUser
// are user i's QQ number and bare JID, i taken round the ring.
const ringUsers = 8

func ringUIN(i int) qqproto.UIN { return qqproto.UIN(30000 + (i+ringUsers)%ringUsers) }
func ringUser(i int) string     { return fmt.Sprintf("u%d@example.org", (i+ringUsers)%ringUsers) }

// newRing makes ringUsers registered users whose QQ accounts are buddies
// in a ring (user i's buddies are i-1 and i+1), each a contact of the
// others already, as after an earlier run.
func newRing(t *testing.T) *harness {
	t.Helper()
	accounts := make([]qqsim.Account, ringUsers)
	for i := range accounts {
		accounts[i] = qqsim.Account{UIN: ringUIN(i), Password: "p", Nick: fmt.Sprintf("U%d", i),
			Buddies: []qqproto.UIN{ringUIN(i - 1), ringUIN(i + 1)}}
	}
	h := newHarness(t, qqsim.Options{}, accounts...)
	ctx := context.Background()
	for i := range ringUsers {
		if err := h.st.PutRegistration(ctx, store.Registration{JID: ringUser(i), UIN: int64(ringUIN(i)), PasswordMD5: qqproto.PasswordMD5("p")}); err != nil {
			t.Fatal(err)
		}
		var cs []store.Contact
		for _, b := range []int{i - 1, i + 1} {
			cs = append(cs, store.Contact{UIN: int64(ringUIN(b)), Nick: fmt.Sprintf("U%d", (b+ringUsers)%ringUsers), Sub: store.Both})
		}
		if err := h.st.PutContacts(ctx, ringUser(i), cs); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// holdOver is the log entry of the end of a restart's hold, or nil.
func holdOver(hook *logtest.Hook) *logrus.Entry {
	for _, e := range hook.AllEntries() {
		if strings.HasPrefix(e.Message, "gateway: restart hold over") {
			return e
		}
	}
	return nil
}

// waitLoggedIn waits, in real time and without moving the gateway's
// clock, until QQ has a session for uin.
func waitLoggedIn(t *testing.T, h *harness, uin qqproto.UIN) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !h.sim.Session(uin).LoggedIn {
		if time.Now().After(deadline) {
			t.Fatalf("%d is not logged in to QQ", uin)
		}
		time.Sleep(time.Millisecond)
	}
}

// After a restart, the users whose QQ accounts are each other's buddies
// see each other online as soon as their buddy lists are imported, even
// when their servers answer the gateway's probes a while apart: no list is
// imported before every probe is answered, so no buddy is shown offline
// because its own session was not back yet (which Query_Stat would mend
// only a minute later).
func TestRestartImportsBuddyListsOnceEveryProbeIsAnswered(t *testing.T) {
	h := newRing(t)
	hook := h.captureLog()
	const n = ringUsers
	uin, user := ringUIN, ringUser
	h.g.OnConnect(context.Background())
	// Without moving the clock, which would end the hold.
	h.quiesce()
	if probes := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "presence" && st.Type == "probe" }); len(probes) != n {
		t.Fatalf("%d probes sent, want one to each of the %d users", len(probes), n)
	}
	// The first half's servers answer, and their sessions log in; the
	// clock stands still, so nothing ends the hold but the answers.
	answer := func(i int) { h.presence(user(i)+"/phone", testDomain, "", "") }
	loggedIn := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			waitLoggedIn(t, h, uin(i))
		}
	}
	for i := range n / 2 {
		answer(i)
	}
	loggedIn(0, n/2)
	h.quiesce()
	for i := range n / 2 {
		for _, r := range h.sim.Requests(uin(i)) {
			if r.Cmd == "LIST" || r.Cmd == "QUERY_STAT" {
				t.Fatalf("%s's buddy list was fetched (%s) while probes were still unanswered", user(i), r.Cmd)
			}
		}
	}
	for i := n / 2; i < n; i++ {
		answer(i)
	}
	loggedIn(n/2, n)
	h.quiesce()
	// Every user now sees both buddies online, without the clock moving
	// to a Query_Stat.
	for i := range n {
		for _, b := range []int{i - 1, i + 1} {
			from := buddyAddr(int(uin(b)))
			got := h.sent(func(st xmppcomp.Stanza) bool {
				return presenceMatch(from, "")(st) && st.To.Bare().String() == user(i)
			})
			if len(got) == 0 {
				t.Errorf("%s was not shown buddy %d online", user(i), uin(b))
			}
		}
	}
	if e := holdOver(hook); e == nil || e.Data["ended"] != "every probe answered" || e.Data["unanswered"] != 0 || e.Data["sessions"] != n {
		t.Errorf("the end of the hold was logged as %v, want every probe answered, none unanswered, %d sessions", e, n)
	}
}

// A server that never answers the probe holds nobody for long: once no
// answer came for stormQuiet, the sessions logged in meanwhile settle.
func TestRestartHoldEndsWhenAnswersStop(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	hook := h.captureLog()
	ctx := context.Background()
	if err := h.st.PutRegistration(ctx, store.Registration{JID: aliceBare, UIN: int64(alice.UIN), PasswordMD5: qqproto.PasswordMD5(alice.Password)}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.PutRegistration(ctx, store.Registration{JID: "silent@example.net", UIN: int64(dave.UIN), PasswordMD5: qqproto.PasswordMD5(dave.Password)}); err != nil {
		t.Fatal(err)
	}
	h.g.OnConnect(ctx)
	h.waitFor("probe of alice", func(st xmppcomp.Stanza) bool {
		return st.Name == "presence" && st.Type == "probe" && st.To.String() == aliceBare
	})
	h.goOnline("")
	waitLoggedIn(t, h, alice.UIN)
	h.quiesce()
	if got := h.sent(presenceMatch(buddyAddr(int(bob.UIN)), "")); len(got) != 0 {
		t.Fatalf("Bob shown before the hold ended: %v", got)
	}
	h.advance(stormQuiet + stormCheck)
	h.waitFor("Bob online once the hold ended", presenceMatch(buddyAddr(int(bob.UIN)), ""))
	// The admin reads why, and how many servers never answered.
	if e := holdOver(hook); e == nil || e.Data["ended"] != "no answer for 2s" || e.Data["unanswered"] != 1 {
		t.Errorf("the end of the hold was logged as %v, want no answer for 2s with 1 unanswered", e)
	}
}

// At shutdown every user learns that the transport is going before any
// buddy's unavailable presence is sent: with many users the buddies may
// not all fit in the shutdown's time.
func TestShutdownTellsEveryUserTheTransportIsGoingFirst(t *testing.T) {
	h := newRing(t)
	ringOnline(h)
	h.skipAll()
	h.stop()
	firstBuddy, lastDomain, domains := -1, -1, 0
	for i, st := range h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "presence" && st.Type == "unavailable" }) {
		switch {
		case st.From.Localpart() == "":
			lastDomain = i
			domains++
		case firstBuddy < 0:
			firstBuddy = i
		}
	}
	if domains != ringUsers || firstBuddy < 0 {
		t.Fatalf("at shutdown: %d unavailable presences from the domain (want %d), first from a buddy at %d", domains, ringUsers, firstBuddy)
	}
	if lastDomain > firstBuddy {
		t.Errorf("a buddy's unavailable presence (#%d) went before the last user was told the transport is going (#%d)", firstBuddy, lastDomain)
	}
}

// Logouts that fail at shutdown (with thousands of users, the presences
// may have taken all of ShutdownTimeout) are one line in the log, not one
// per user.
func TestShutdownLogsFailedLogoutsOnce(t *testing.T) {
	h := newRing(t)
	hook := h.captureLog()
	ringOnline(h)
	for i := range ringUsers { // QQ forgets them: each logout is refused
		if err := h.sim.EndSession(ringUIN(i)); err != nil {
			t.Fatal(err)
		}
	}
	h.stop()
	var summary []*logrus.Entry
	for _, e := range hook.AllEntries() {
		switch e.Message {
		case "gateway: QQ logout failed":
			t.Errorf("a line per failed logout at shutdown: %v", e.Data)
		case "gateway: QQ logouts failed at shutdown; the QQ server ends those sessions after its idle timeout":
			summary = append(summary, e)
		}
	}
	if len(summary) != 1 {
		t.Fatalf("%d summary lines of the failed logouts, want 1", len(summary))
	}
	if f, n := summary[0].Data["failed"], summary[0].Data["logouts"]; f != int64(ringUsers) || n != ringUsers {
		t.Errorf("summary says %v of %v logouts failed, want %d of %d", f, n, ringUsers, ringUsers)
	}
	if summary[0].Data[logrus.ErrorKey] == nil {
		t.Error("the summary does not say why a logout failed")
	}
}

// ringOnline connects the ring's gateway, brings every user online and
// waits until each is logged in to QQ and the gateway is quiet.
func ringOnline(h *harness) {
	h.t.Helper()
	h.g.OnConnect(context.Background())
	for i := range ringUsers {
		h.presence(ringUser(i)+"/phone", testDomain, "", "")
	}
	for i := range ringUsers {
		h.eventually(ringUser(i)+" logged in to QQ", func() bool { return h.sim.Session(ringUIN(i)).LoggedIn })
	}
	h.quiesce()
}
