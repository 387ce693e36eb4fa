//go:build e2e

package chaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"qqxmpp/qqproto"
)

// phaseNow is the fault kind the driver is acting out, which each message
// is filed under when it is sent.
type phaseNow struct{ v atomic.Value }

func (p *phaseNow) set(s string) { p.v.Store(s) }
func (p *phaseNow) get() string {
	s, _ := p.v.Load().(string)
	return s
}

// hurry makes the senders send their next messages at once: the driver
// calls now just before a kill, so that messages are on their way through
// every stage when it strikes.
type hurry struct {
	mu sync.Mutex
	ch chan struct{}
}

func newHurry() *hurry { return &hurry{ch: make(chan struct{})} }

func (h *hurry) now() {
	h.mu.Lock()
	close(h.ch)
	h.ch = make(chan struct{})
	h.mu.Unlock()
}

func (h *hurry) wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ch
}

// Burst sizes when hurried: per XMPP user, and of the QQ injector.
const (
	burstToQQ   = 5
	burstToXMPP = 10
)

// traffic sends the run's messages both ways, spread evenly over window.
type traffic struct {
	hurry  *hurry
	st     *stack
	led    *ledger
	users  []*user
	phase  *phaseNow
	n      int // messages each way
	window time.Duration
}

// run sends n messages each way and returns when all are handed over (or
// ctx ends): XMPP→QQ from every user in turn, one goroutine per user;
// QQ→XMPP injected through qqsim from one goroutine.
func (tr *traffic) run(ctx context.Context) {
	var wg sync.WaitGroup
	per := (tr.n + len(tr.users) - 1) / len(tr.users)
	for i, u := range tr.users {
		first, last := i*per, min((i+1)*per, tr.n)
		if first >= last {
			continue
		}
		wg.Go(func() { tr.toQQ(ctx, u, first, last) })
	}
	wg.Go(func() { tr.toXMPP(ctx) })
	wg.Wait()
}

// pace waits until message k of n is due, or the driver hurries the
// senders: then this one and the next burst-1 go at once (credit counts
// them down).
func (tr *traffic) pace(ctx context.Context, start time.Time, k, n int, credit *int, burst int) bool {
	if *credit > 0 {
		*credit--
		return true
	}
	due := start.Add(time.Duration(int64(tr.window) * int64(k) / int64(n)))
	t := time.NewTimer(time.Until(due))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-tr.hurry.wait():
		*credit = burst - 1
		return true
	case <-ctx.Done():
		return false
	}
}

func (tr *traffic) toQQ(ctx context.Context, u *user, first, last int) {
	start, credit := time.Now(), 0
	for k := first; k < last; k++ {
		if !tr.pace(ctx, start, k-first, last-first, &credit, burstToQQ) {
			return
		}
		c, err := u.client(ctx) // a client being reconnected sends later
		if err != nil {
			return
		}
		buddy := buddyUIN(u.n, k%buddiesPerUser)
		id := fmt.Sprintf("x%05d", k)
		tr.led.add(&record{id: id, dir: toQQ, phase: tr.phase.get(), user: u.n, buddy: buddy})
		if err := u.send(ctx, c, buddy, id); err != nil {
			tr.led.setUnsent(id)
		}
	}
}

func (tr *traffic) toXMPP(ctx context.Context) {
	start, credit := time.Now(), 0
	for k := range tr.n {
		if !tr.pace(ctx, start, k, tr.n, &credit, burstToXMPP) {
			return
		}
		u := tr.users[k%len(tr.users)]
		buddy := buddyUIN(u.n, (k/len(tr.users))%buddiesPerUser)
		id := fmt.Sprintf("q%05d", k)
		tr.led.add(&record{id: id, dir: toXMPP, phase: tr.phase.get(), user: u.n, buddy: buddy})
		if err := tr.st.inject(buddy, userUIN(u.n), id); err != nil {
			tr.led.setUnsent(id)
		}
	}
}

// countQQ reads every buddy's QQ inbox and counts the copies of each id
// the users sent.
func (tr *traffic) countQQ() (map[string]int, error) {
	counts := map[string]int{}
	for _, u := range tr.users {
		for b := range buddiesPerUser {
			in, err := tr.st.inbox(buddyUIN(u.n, b))
			if err != nil {
				return nil, err
			}
			for _, it := range in {
				if it.From == userUIN(u.n) && it.Type == qqproto.MsgBuddy {
					counts[it.Text]++
				}
			}
		}
	}
	return counts, nil
}
