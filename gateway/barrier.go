package gateway

import (
	"context"
	"sync"

	"mellium.im/xmpp/jid"
)

// Shared delivery barriers. The component stream is ordered: one ping
// answered by a server confirms every stanza written to the stream before
// the ping, for every user of that server. Sessions that finish a batch at
// the same time therefore share one ping instead of sending one each: the
// server's cost per relayed message was several times its cost of a
// client's message, much of it the pings of small batches.

// barriers coalesces the delivery barriers of all sessions, per server.
// The zero value is ready.
type barriers struct {
	mu     sync.Mutex
	groups map[string]*barrierGroup // by domain
}

// barrierGroup is one server's: at most one ping in flight, and the
// waiters for the next.
type barrierGroup struct {
	next     *barrierCall // waiters whose stanzas the ping in flight may not cover
	inFlight bool
}

// barrierCall is one ping and everyone it confirms.
type barrierCall struct {
	done    chan struct{}
	err     error
	waiters int // for tests: how many joined it
}

// pingFunc sends one barrier toward to's server and waits for its answer.
type pingFunc func(ctx context.Context, to jid.JID) error

// wait returns once a ping sent after the call began was answered for
// to's server, or ctx ended. A ping already in flight is not enough: it
// may have been written before the caller's stanzas. The ping itself runs
// on its own deadline (barrierTimeout), so that one waiter giving up does
// not fail the others.
func (b *barriers) wait(ctx context.Context, to jid.JID, ping pingFunc) error {
	dom := to.Domainpart()
	b.mu.Lock()
	if b.groups == nil {
		b.groups = map[string]*barrierGroup{}
	}
	g := b.groups[dom]
	if g == nil {
		g = &barrierGroup{}
		b.groups[dom] = g
	}
	if g.next == nil {
		g.next = &barrierCall{done: make(chan struct{})}
	}
	call := g.next
	call.waiters++
	if !g.inFlight {
		g.inFlight = true
		go b.send(g, to, ping)
	}
	b.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send pings for g's waiters until none are left.
func (b *barriers) send(g *barrierGroup, to jid.JID, ping pingFunc) {
	for {
		b.mu.Lock()
		call := g.next
		if call == nil {
			g.inFlight = false
			b.mu.Unlock()
			return
		}
		g.next = nil
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), barrierTimeout)
		call.err = ping(ctx, to)
		cancel()
		close(call.done)
	}
}
