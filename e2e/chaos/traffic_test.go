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

// Burst sizes when hurried: per XMPP user, and of the QQ injector. Burst
// messages come on top of the n paced ones.
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
	n      int // paced messages each way
	window time.Duration

	nextQQ, nextXMPP atomic.Int64 // ids handed out
}

// run sends n messages each way and returns when all are handed over (or
// ctx ends): XMPP→QQ from every user in turn, one goroutine per user;
// QQ→XMPP injected through qqsim from one goroutine.
func (tr *traffic) run(ctx context.Context) {
	var wg sync.WaitGroup
	per := (tr.n + len(tr.users) - 1) / len(tr.users)
	for i, u := range tr.users {
		count := min(per, tr.n-i*per)
		if count <= 0 {
			continue
		}
		wg.Go(func() { tr.paced(ctx, count, burstToQQ, func() { tr.toQQ(ctx, u) }) })
	}
	wg.Go(func() { tr.paced(ctx, tr.n, burstToXMPP, func() { tr.toXMPP() }) })
	wg.Wait()
}

// paced calls send count times, spread over the window: each wait is the
// rest of the window shared among the messages left, so that a burst
// leaves no gap. When the driver hurries the senders, burst more go at
// once, on top.
func (tr *traffic) paced(ctx context.Context, count, burst int, send func()) {
	end := time.Now().Add(tr.window)
	for left := count; left > 0; {
		t := time.NewTimer(time.Until(end) / time.Duration(left))
		select {
		case <-t.C:
			send()
			left--
		case <-tr.hurry.wait():
			t.Stop()
			for range burst {
				send()
			}
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// toQQ sends one message from u to one of its buddies, in turn.
func (tr *traffic) toQQ(ctx context.Context, u *user) {
	c, err := u.client(ctx) // a client being reconnected sends later
	if err != nil {
		return
	}
	k := tr.nextQQ.Add(1) - 1
	buddy := buddyUIN(u.n, int(k)%buddiesPerUser)
	id := fmt.Sprintf("x%05d", k)
	tr.led.add(&record{id: id, dir: toQQ, phase: tr.phase.get(), user: u.n, buddy: buddy, at: time.Now()})
	if err := u.send(ctx, c, buddy, id); err != nil {
		tr.led.setUnsent(id)
	}
}

// toXMPP makes a buddy send one message to its user, users and buddies in
// turn.
func (tr *traffic) toXMPP() {
	k := int(tr.nextXMPP.Add(1) - 1)
	u := tr.users[k%len(tr.users)]
	buddy := buddyUIN(u.n, (k/len(tr.users))%buddiesPerUser)
	id := fmt.Sprintf("q%05d", k)
	tr.led.add(&record{id: id, dir: toXMPP, phase: tr.phase.get(), user: u.n, buddy: buddy, at: time.Now()})
	if err := tr.st.inject(buddy, userUIN(u.n), id); err != nil {
		tr.led.setUnsent(id)
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
