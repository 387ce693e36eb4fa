package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// clusterHarness is a gateway named gw-a in a cluster of two slots, with
// short leases.
func clusterHarness(t *testing.T) *harness {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.stop()
	h.cfg.Cluster = ClusterConfig{Owner: "gw-a", Slots: 2, LeaseTTL: 3 * time.Second, Beat: 100 * time.Millisecond}
	h.start()
	return h
}

func TestShareDividesTheSlots(t *testing.T) {
	procs := func(names ...string) []store.Process {
		var out []store.Process
		for _, n := range names {
			out = append(out, store.Process{Owner: n})
		}
		return out
	}
	for _, c := range []struct {
		slots int
		live  []store.Process
		owner string
		want  int
	}{
		{2, nil, "a", 2},                        // alone, before its first beat
		{2, procs("a"), "a", 2},                 // alone
		{2, procs("a", "b"), "a", 1},            // two: one each
		{2, procs("a", "b"), "b", 1},            //
		{3, procs("a", "b"), "a", 2},            // the first by name takes the odd one
		{3, procs("a", "b"), "b", 1},            //
		{2, procs("a", "b", "c"), "c", 0},       // more processes than slots: a spare
		{4, procs("b", "c"), "a", 2},            // a joining process counts itself
		{1000, procs("a", "b", "c"), "b", 333},  //
		{1000, procs("a", "b", "c"), "a", 334},  //
		{2, procs("gw-2", "gw-10"), "gw-10", 1}, // byte order, as the store sorts
	} {
		if got := share(c.slots, c.live, c.owner); got != c.want {
			t.Errorf("share(%d slots, %v, %s) = %d, want %d", c.slots, c.live, c.owner, got, c.want)
		}
	}
}

// A process of a cluster logs a user in to QQ only once it holds their
// lease: while another process holds it, it waits for it to expire, then
// takes it; when the user goes offline it gives the lease back.
func TestClusterLogsInOnlyWithTheLease(t *testing.T) {
	h := clusterHarness(t)
	ctx := context.Background()
	logins := func() int {
		n := 0
		for _, r := range h.sim.Requests(alice.UIN) {
			if r.Cmd == "LOGIN" {
				n++
			}
		}
		return n
	}

	h.register("10001", "secret") // a trial login, logged out: alice is not online
	h.quiesce()
	trial := logins()
	now := h.fakeClock().Now()
	if _, held, err := h.st.AcquireLease(ctx, aliceBare, "gw-b", now, now.Add(2*time.Second)); err != nil || !held {
		t.Fatalf("gw-b could not take alice's lease: %v", err)
	}
	h.goOnline("")
	h.advance(time.Second)
	if n := logins() - trial; n != 0 {
		t.Fatalf("%d QQ logins while another process holds alice's lease, want 0", n)
	}
	// A message meanwhile waits for the login instead of being refused.
	h.skipAll()
	h.userMessage("wait1", buddyAddr(20001), `<body>while gw-b lets go</body><request xmlns="urn:xmpp:receipts"/>`)
	h.quiesce()
	if errs := h.sent(func(st xmppcomp.Stanza) bool { return st.Type == "error" }); len(errs) > 0 {
		t.Fatalf("the message sent during the lease wait was refused: %s", errs[0])
	}
	h.advance(1500 * time.Millisecond)
	h.eventually("alice logged in once gw-b's lease expired", func() bool { return logins()-trial == 1 })
	h.waitFor("the receipt for the message that waited", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && strings.Contains(string(st.Raw), `id="wait1"`) && strings.Contains(string(st.Raw), "urn:xmpp:receipts")
	})
	if got := h.inboxFrom(20001); len(got) != 1 || got[0] != "while gw-b lets go" {
		t.Fatalf("buddy 20001 got %q, want the waiting message once", got)
	}
	if l, err := h.st.Lease(ctx, aliceBare); err != nil || l.Owner != "gw-a" || !l.Expires.After(h.fakeClock().Now()) {
		t.Fatalf("alice's lease after the login: %+v, %v; want gw-a's, live", l, err)
	}
	if _, held, _ := h.st.AcquireLease(ctx, aliceBare, "gw-b", h.fakeClock().Now(), h.fakeClock().Now().Add(time.Second)); held {
		t.Fatal("gw-b took alice's lease while gw-a serves her")
	}

	// The lease outlives its TTL while gw-a serves alice: it is renewed.
	h.advance(4 * time.Second)
	if l, err := h.st.Lease(ctx, aliceBare); err != nil || l.Owner != "gw-a" || !l.Expires.After(h.fakeClock().Now()) {
		t.Fatalf("alice's lease after 4s of service: %+v, %v; want gw-a's, renewed", l, err)
	}

	h.presence(aliceFull, testDomain, "unavailable", "")
	h.eventually("alice's lease given back when she went offline", func() bool {
		l, err := h.st.Lease(ctx, aliceBare)
		return err == nil && !l.Expires.After(h.fakeClock().Now())
	})
	if n := logins() - trial; n != 1 {
		t.Errorf("%d QQ logins after the trial, want 1", n)
	}
}

// A session whose lease another process took (here: released behind its
// back, then taken) stops at the next renewal: it logs out of QQ and
// sends nothing more for the user, and tells the user nothing, since the
// other process serves them.
func TestClusterStopsWhenTheLeaseIsTaken(t *testing.T) {
	h := clusterHarness(t)
	ctx := context.Background()
	h.online("")
	h.eventually("alice logged in", func() bool { si := h.sim.Session(alice.UIN); return si.LoggedIn })

	now := h.fakeClock().Now()
	if err := h.st.ReleaseLease(ctx, aliceBare, "gw-a", now); err != nil {
		t.Fatal(err)
	}
	if _, held, err := h.st.AcquireLease(ctx, aliceBare, "gw-b", now, now.Add(time.Minute)); err != nil || !held {
		t.Fatalf("gw-b could not take the released lease: %v", err)
	}
	h.skipAll()
	h.advance(2 * time.Second) // past a renewal
	h.eventually("gw-a logged alice out of QQ", func() bool { return !h.sim.Session(alice.UIN).LoggedIn })
	n := len(h.sim.Requests(alice.UIN))
	h.advance(2 * time.Second)
	if m := len(h.sim.Requests(alice.UIN)); m != n {
		t.Errorf("gw-a made %d more QQ requests for alice after losing her lease", m-n)
	}
	if un := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "presence" && st.Type == "unavailable" }); len(un) > 0 {
		t.Errorf("gw-a told alice it is gone: %s", un[0])
	}
}

// In a cluster, a message from a registered user whose presence this
// process has not seen (its first stanza after it took over the user's
// slot) waits for the presence its probe asks for, and goes at the login;
// without a presence within presenceWait it is refused.
func TestClusterMessageBeforePresenceWaitsForIt(t *testing.T) {
	h := clusterHarness(t)
	h.register("10001", "secret")
	h.quiesce()
	h.skipAll()

	h.userMessage("early", buddyAddr(20001), `<body>before any presence</body>`)
	h.waitFor("a probe of alice", func(st xmppcomp.Stanza) bool {
		return st.Name == "presence" && st.Type == "probe" && st.To.String() == aliceBare
	})
	if errs := h.sent(func(st xmppcomp.Stanza) bool { return st.Type == "error" }); len(errs) > 0 {
		t.Fatalf("the message was refused: %s", errs[0])
	}
	h.goOnline("")
	h.eventually("the waiting message reached QQ", func() bool { return len(h.inboxFrom(20001)) == 1 })

	// Gone again; a message without a presence that never comes is
	// refused once presenceWait has passed.
	h.presence(aliceFull, testDomain, "unavailable", "")
	h.quiesce()
	h.skipAll()
	h.userMessage("late", buddyAddr(20002), `<body>nobody answers the probe</body>`)
	h.advance(presenceWait + time.Second)
	e := h.waitFor("the refusal", func(st xmppcomp.Stanza) bool { return st.Type == "error" && st.ID == "late" })
	if cond, _, _ := stanzaErr(t, e); cond != "service-unavailable" {
		t.Errorf("refused with %s, want service-unavailable", cond)
	}
	if got := h.inboxFrom(20002); len(got) != 0 {
		t.Errorf("buddy 20002 got %q", got)
	}
}
