//go:build e2e

package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagN      = flag.Int("chaos.n", 100, "messages each way")
	flagUsers  = flag.Int("chaos.users", 4, "XMPP users, each with its own QQ number and 2 buddies")
	flagSeed   = flag.Uint64("chaos.seed", 0, "seed of the driver's choices; 0: a new one, printed")
	flagWindow = flag.Duration("chaos.window", 0, "how long the messages are spread over and faults acted out; 0: 30s for up to 100 messages each way, else 180s")
	flagDrain  = flag.Duration("chaos.drain", 0, "bound on the wait for the queues to drain afterwards; 0: 25s for a window up to 30s, else 90s")
	flagHold   = flag.Duration("chaos.hold", 0, "longest phase of one fault kind; 0: 3s for a window up to 30s, else 8s")
	flagRace   = flag.Bool("chaos.race", false, "build the binaries with the race detector (slower)")
	flagFaults = flag.String("chaos.faults", "", "comma-separated parts of the fault kinds' names to act out (e.g. \"kill,QQ\"); empty: all")
	flagDedup  = flag.Bool("chaos.dedup-ok", false, "do not fail on QQ→XMPP copies that all carry one XEP-0359 origin-id or stanza-id (clients show them once)")
	flagDisk   = flag.Bool("chaos.disk", true, "fill the disk under the gateway's database (needs root for a tmpfs mount)")
)

// settle is how long the suite keeps counting after everything resolved,
// for late copies (a re-send at a later login). It can only add to the
// doubled count: a run never passes or fails by waiting.
const settle = 4 * time.Second

// TestChaos is the suite: see the package documentation.
func TestChaos(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64() >> 1
	}
	window, drain, holdMax := timings()
	fmt.Printf("chaos: seed %d (the same choices again: -chaos.seed=%d, or make chaos CHAOS_SEED=%d), %d messages each way, %d users, window %v\n",
		seed, seed, seed, *flagN, *flagUsers, window)

	diskFault := *flagDisk
	if diskFault && os.Geteuid() != 0 {
		msg := "disk full: NOT RUN, mounting a tmpfs needs root"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set)")
		}
		fmt.Println("chaos: SKIPPED fault " + msg)
		diskFault = false
	}

	bins := build(t, *flagRace)
	led := newLedger()
	st := newStack(t, bins, led, *flagUsers, diskFault)
	users := registerUsers(t, st, led)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readers sync.WaitGroup
	for _, u := range users {
		readers.Go(func() { u.run(ctx) })
	}
	defer readers.Wait()
	defer cancel()
	waitLoggedIn(t, st, users, 30*time.Second)

	phase := &phaseNow{}
	phase.set(fCalm)
	hur := newHurry()
	tr := &traffic{hurry: hur, st: st, led: led, users: users, phase: phase, n: *flagN, window: window}
	atk := newAttacker(t, st.srv)
	defer atk.close()
	d := &driver{t: t, st: st, users: users, phase: phase, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		holdMin: holdMax / 3, holdMax: holdMax, hostile: atk, only: *flagFaults, hurry: hur, led: led}

	st.t0 = time.Now()
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		tr.run(sendCtx)
	}()
	d.run(ctx, window)
	select {
	case <-sent:
	case <-time.After(time.Minute):
		// A client that never came back holds its sender.
		t.Errorf("the senders had not finished a minute after the window")
		stopSending()
		<-sent
	}
	d.checkGateway()
	drained := drainQueues(t, st, tr, drain)

	sum := led.summarize()
	report(t, st, users, d, sum, drained, seed)
}

// timings are the window, the drain bound and the longest phase, from the
// flags or by the run's size.
func timings() (window, drain, hold time.Duration) {
	small := *flagN <= 100
	window, drain, hold = 180*time.Second, 90*time.Second, 8*time.Second
	if small {
		window, drain, hold = 30*time.Second, 25*time.Second, 3*time.Second
	}
	if *flagWindow > 0 {
		window = *flagWindow
	}
	if *flagDrain > 0 {
		drain = *flagDrain
	}
	if *flagHold > 0 {
		hold = *flagHold
	}
	return window, drain, hold
}

// registerUsers creates the users and registers each with the gateway.
func registerUsers(t *testing.T, st *stack, led *ledger) []*user {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	users := make([]*user, *flagUsers)
	for i := range users {
		users[i] = newUser(t, st.srv, led, i)
		if err := users[i].register(ctx); err != nil {
			t.Fatalf("%v\n--- gateway log:\n%s", err, tail(st.gw.log, 30))
		}
		t.Cleanup(func() {
			if c, err := users[i].client(context.Background()); err == nil && c != nil {
				c.Close()
			}
		})
	}
	return users
}

// waitLoggedIn waits until every user's QQ session is up and its buddies'
// subscriptions are answered (the buddies show as available).
func waitLoggedIn(t *testing.T, st *stack, users []*user, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, u := range users {
		for {
			si, err := st.session(userUIN(u.n))
			if err == nil && si.LoggedIn {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("QQ %d not logged in after %v (%v)\n--- gateway log:\n%s", userUIN(u.n), timeout, err, tail(st.gw.log, 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// drainQueues waits, at most bound, until every message handed over was
// delivered or refused, then settle longer for late copies. It reports
// whether everything resolved.
func drainQueues(t *testing.T, st *stack, tr *traffic, bound time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		counts, err := tr.countQQ()
		if err != nil {
			t.Fatal(err)
		}
		tr.led.setQQCounts(counts)
		left := tr.led.unresolved()
		if left == 0 || time.Now().After(deadline) {
			time.Sleep(settle)
			counts, err := tr.countQQ()
			if err != nil {
				t.Fatal(err)
			}
			tr.led.setQQCounts(counts)
			t.Logf("drain: %d messages unresolved after %v", tr.led.unresolved(), bound-time.Until(deadline))
			return tr.led.unresolved() == 0
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// report prints the driver's log and the table, and fails the test on any
// lost, doubled or falsely failed message, a hostile stanza that dropped
// the stream, or a crash.
func report(t *testing.T, st *stack, users []*user, d *driver, sum summary, drained bool, seed uint64) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== chaos: seed %d, %d gateway starts, %d QQ sessions kicked, %v\n", seed, st.starts, d.relogins, time.Since(st.t0).Round(time.Second))
	if !drained {
		fmt.Fprintf(&b, "the queues did not drain within the bound: the lost below may still have been on their way\n")
	}
	sum.print(&b)
	for _, u := range users {
		if si, err := st.session(userUIN(u.n)); err == nil && si.Queued > 0 {
			fmt.Fprintf(&b, "QQ %d: %d items still waiting at QQ for GetMsgEx (logged in: %v)\n", si.UIN, si.Queued, si.LoggedIn)
		}
	}
	fmt.Fprintf(&b, "hostile stanzas: %d component reconnects during their phases (must be 0)\n", d.hostileDrops)
	fmt.Fprintf(&b, "gateway crashes (exits the driver did not cause): %d\n", d.crashes)
	logText, _ := os.ReadFile(st.gw.log)
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if n := strings.Count(string(logText), bad); n > 0 {
			fmt.Fprintf(&b, "the gateway's output has %q %d times\n", bad, n)
			t.Errorf("the gateway's output contains %q", bad)
		}
	}
	if sum.total.dedupable > 0 {
		fmt.Fprintf(&b, "doubled QQ→XMPP whose copies all carried one XEP-0359 id: %d (-chaos.dedup-ok=%v)\n", sum.total.dedupable, *flagDedup)
	}
	fmt.Print(b.String())
	if n := sum.failures(*flagDedup); n > 0 {
		t.Errorf("chaos: %d lost, %d doubled, %d reported as failed although delivered (seed %d); the gateway's log: %s",
			sum.total.lost, sum.total.doubled, sum.total.falseErr, seed, st.gw.log)
	}
	if d.hostileDrops > 0 {
		t.Errorf("chaos: hostile stanzas dropped the component stream %d times", d.hostileDrops)
	}
}
