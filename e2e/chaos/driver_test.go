//go:build e2e

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto/qqsim"
)

// The fault kinds, as the table names them.
const (
	fCalm      = "calm"
	fKill      = "gateway kill -9"
	fProsTerm  = "prosody SIGTERM"
	fProsKill  = "prosody SIGKILL"
	fQQ500     = "QQ HTTP 500"
	fQQGarbage = "QQ garbage"
	fQQDrop    = "QQ dropped replies"
	fQQSlow    = "QQ latency"
	fRelogin   = "QQ re-login, replies lost"
	fDiskFull  = "disk full"
	fHostile   = "hostile stanzas"
)

// driver acts out fault kinds one after another, in an order and with
// timings drawn from a seeded source: the same seed makes the same
// choices (the interleaving with the traffic is the machine's).
type driver struct {
	t       *testing.T
	st      *stack
	users   []*user
	phase   *phaseNow
	rnd     *rand.Rand
	holdMin time.Duration
	holdMax time.Duration
	hostile *attacker
	hurry   *hurry
	led     *ledger
	only    string // comma-separated substrings of the kinds to act out; "" for all

	log          []string // what was done, for the report
	crashes      int      // gateway exits the driver did not cause
	hostileDrops int      // component reconnects during hostile phases
	relogins     int
}

// allKinds are the fault kinds, in the order a seed permutes.
var allKinds = []string{fCalm, fKill, fProsTerm, fProsKill, fQQ500, fQQGarbage, fQQDrop, fQQSlow, fRelogin, fHostile, fDiskFull}

// kinds are the fault kinds of this run: those only names, if given (by
// substring), and disk full only with a disk to fill.
func (d *driver) kinds() []string {
	var k []string
	for _, kind := range allKinds {
		if kind == fDiskFull && d.st.disk == nil {
			continue
		}
		if d.only == "" || slices.ContainsFunc(strings.Split(d.only, ","), func(s string) bool { return s != "" && strings.Contains(kind, s) }) {
			k = append(k, kind)
		}
	}
	return k
}

// run acts out kinds until window has passed, each round a fresh seeded
// permutation of all kinds, so that a short run still meets every one.
func (d *driver) run(ctx context.Context, window time.Duration) {
	end := time.Now().Add(window)
	if len(d.kinds()) == 0 {
		d.t.Fatalf("-chaos.faults=%q names none of the fault kinds %q", d.only, allKinds)
	}
	for time.Now().Before(end) && ctx.Err() == nil {
		kinds := d.kinds()
		d.rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		for _, k := range kinds {
			if !time.Now().Before(end) || ctx.Err() != nil {
				break
			}
			d.act(ctx, k)
			d.checkGateway()
		}
	}
	d.phase.set(fCalm)
}

// hold draws a phase's length.
func (d *driver) hold() time.Duration {
	return d.holdMin + time.Duration(d.rnd.Int64N(int64(d.holdMax-d.holdMin)+1))
}

// within draws a moment in [0, max).
func (d *driver) within(max time.Duration) time.Duration {
	return time.Duration(d.rnd.Int64N(int64(max) + 1))
}

func (d *driver) act(ctx context.Context, kind string) {
	hold := d.hold()
	began := time.Now()
	d.phase.set(kind)
	note := ""
	switch kind {
	case fCalm:
		time.Sleep(hold)
	case fKill:
		for range 2 {
			note += d.killGateway(hold/4) + "; "
		}
	case fProsTerm, fProsKill:
		time.Sleep(d.within(hold / 2))
		if kind == fProsKill {
			d.hurry.now()
			time.Sleep(d.within(150 * time.Millisecond))
		}
		killed, gens := time.Now(), d.generations()
		unread, err := d.st.restartProsody(kind == fProsKill)
		note = unreadNote(unread, err)
		d.st.waitGateway()
		if kind == fProsKill {
			// A client writes into its connection to the dead Prosody
			// until it notices the loss (the kernel takes the first
			// writes after a peer's death), and the restarted Prosody
			// bounces what comes before the component is back to a
			// client that may be gone again (no XEP-0198 here): those
			// messages died with the XMPP server; the gateway never
			// saw them. Counted under "in socket", never excused if
			// delivered twice or refused falsely.
			d.waitReconnected(gens, 15*time.Second)
			d.st.led.deadBetween(killed, time.Now(), "prosody: sent while the killed Prosody came back")
		}
	case fQQ500, fQQGarbage, fQQDrop, fQQSlow:
		f := d.qqFaults(kind)
		d.st.setFaults(f)
		time.Sleep(hold)
		d.st.setFaults(qqsim.Faults{})
		note = fmt.Sprintf("%+v", f)
	case fRelogin:
		note = d.relogin(ctx, hold)
	case fDiskFull:
		note = d.diskFull(hold)
	case fHostile:
		note = d.hostilePhase(ctx, hold)
	}
	if rest := hold - time.Since(began); rest > 0 && kind != fCalm {
		time.Sleep(rest) // the phase's traffic meets the aftermath too
	}
	line := fmt.Sprintf("%6.1fs %-26s %5.1fs %s", time.Since(d.st.t0).Seconds(), kind, time.Since(began).Seconds(), note)
	d.log = append(d.log, line)
	d.t.Log(line)
}

// killGateway waits a moment drawn within wait, makes the senders send a
// burst, kills the gateway in the middle of it and restarts it after
// 0.1–1.5s.
func (d *driver) killGateway(wait time.Duration) string {
	time.Sleep(d.within(wait))
	d.hurry.now()
	time.Sleep(d.within(150 * time.Millisecond))
	unread, err := d.st.killGateway()
	down := 100*time.Millisecond + d.within(1400*time.Millisecond)
	time.Sleep(down)
	d.st.startGateway()
	return fmt.Sprintf("down %v, %s", down.Round(time.Millisecond), unreadNote(unread, err))
}

// unreadNote says what a kill left unread in the killed process's sockets.
func unreadNote(unread []string, err error) string {
	if err != nil {
		return fmt.Sprintf("unread messages unknown (%v)", err)
	}
	return fmt.Sprintf("%d messages unread in its sockets", len(unread))
}

func (d *driver) qqFaults(kind string) qqsim.Faults {
	f := qqsim.Faults{Seed: int64(d.rnd.Uint64() >> 1)}
	rate := 0.2 + 0.3*d.rnd.Float64()
	switch kind {
	case fQQ500:
		f.ErrorRate = rate
	case fQQGarbage:
		f.GarbageRate = rate
	case fQQDrop:
		f.DropRate = rate
	case fQQSlow:
		// Up to beyond the gateway's 3s timeout: a reply that comes too
		// late is a lost reply to a command that ran.
		f.LatencyMS = float64(300 + d.rnd.IntN(3700))
	}
	return f
}

// relogin loses replies (GetMsgEx's among them) and meanwhile kicks each
// user's QQ session: a login elsewhere clears qqsim's replay memory of the
// number, the logout makes the gateway log in again, so that the retry of
// a lost reply comes after a new login.
func (d *driver) relogin(ctx context.Context, hold time.Duration) string {
	f := qqsim.Faults{DropRate: 0.4 + 0.3*d.rnd.Float64(), Seed: int64(d.rnd.Uint64() >> 1)}
	d.st.setFaults(f)
	order := d.rnd.Perm(len(d.users))
	kicked := 0
	for _, i := range order {
		time.Sleep(d.within(hold / time.Duration(len(order)+1)))
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := d.st.kick(kctx, userUIN(i))
		cancel()
		if err != nil {
			d.t.Logf("re-login phase: %v", err)
			continue
		}
		kicked++
	}
	d.relogins += kicked
	time.Sleep(d.within(hold / 2))
	d.st.setFaults(qqsim.Faults{})
	return fmt.Sprintf("drop_rate %.2f, %d sessions kicked", f.DropRate, kicked)
}

// diskFull fills the disk under the gateway's database, holds, frees it.
func (d *driver) diskFull(hold time.Duration) string {
	if err := d.st.disk.fill(); err != nil {
		d.t.Fatal(err)
	}
	time.Sleep(hold)
	if err := d.st.disk.free(); err != nil {
		d.t.Fatal(err)
	}
	return "tmpfs " + diskSize + " full for " + hold.Round(time.Millisecond).String()
}

// hostilePhase sends hostile stanzas at the gateway through Prosody for
// hold and counts the component reconnects meanwhile: there must be none.
func (d *driver) hostilePhase(ctx context.Context, hold time.Duration) string {
	before, err := d.st.reconnects()
	if err != nil {
		d.t.Fatalf("hostile phase: %v", err)
	}
	sent, unanswered := d.hostile.attack(ctx, hold)
	after, err := d.st.reconnects()
	if err != nil || !d.st.gw.running() {
		d.hostileDrops++
		return fmt.Sprintf("%d stanzas; the gateway is gone: %v", sent, err)
	}
	d.hostileDrops += after - before
	return fmt.Sprintf("%d stanzas sent, %d component reconnects; no answer to %v", sent, after-before, unanswered)
}

// checkGateway restarts a gateway that exited by itself, counting it as a
// crash.
func (d *driver) checkGateway() {
	if d.st.gw.running() {
		return
	}
	d.crashes++
	d.t.Errorf("the gateway exited by itself (%v); last lines of its log:\n%s", d.st.gw.err, tail(d.st.gw.log, 30))
	d.st.startGateway()
}

// generations is each user's connection count.
func (d *driver) generations() []int {
	gens := make([]int, len(d.users))
	for i, u := range d.users {
		gens[i] = u.generation()
	}
	return gens
}

// waitReconnected waits until every user made a connection after gens.
func (d *driver) waitReconnected(gens []int, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		done := true
		for i, u := range d.users {
			if u.generation() <= gens[i] {
				done = false
			}
		}
		if done {
			return
		}
	}
	d.t.Errorf("users did not reconnect to Prosody within %v", limit)
}
