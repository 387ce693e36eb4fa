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

// traffic sends the run's messages both ways, spread evenly over window.
type traffic struct {
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

// pace waits until message k of n is due.
func (tr *traffic) pace(ctx context.Context, start time.Time, k, n int) bool {
	due := start.Add(time.Duration(int64(tr.window) * int64(k) / int64(n)))
	select {
	case <-time.After(time.Until(due)):
		return true
	case <-ctx.Done():
		return false
	}
}

func (tr *traffic) toQQ(ctx context.Context, u *user, first, last int) {
	start := time.Now()
	for k := first; k < last; k++ {
		if !tr.pace(ctx, start, k-first, last-first) {
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
	start := time.Now()
	for k := range tr.n {
		if !tr.pace(ctx, start, k, tr.n) {
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
