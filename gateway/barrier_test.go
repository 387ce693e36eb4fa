package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// blockingPing is a server whose answers to barrier pings the test
// releases one by one.
type blockingPing struct {
	started chan int      // the number of each ping as it is sent
	release chan struct{} // one answer per receive
	sent    atomic.Int32
}

func newBlockingPing() *blockingPing {
	return &blockingPing{started: make(chan int, 16), release: make(chan struct{})}
}

func (p *blockingPing) ping(ctx context.Context, _ jid.JID) error {
	p.started <- int(p.sent.Add(1))
	select {
	case <-p.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitJoined returns once n waiters joined the next ping of dom's group.
func waitJoined(t *testing.T, b *barriers, dom string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		joined := 0
		if g := b.groups[dom]; g != nil && g.next != nil {
			joined = g.next.waiters
		}
		b.mu.Unlock()
		if joined >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters joined the next ping, want %d", joined, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBarrierIsSharedButNeverEarly: sessions that wait for a barrier
// while a ping is in flight share the next ping, one for all of them; the
// ping in flight, which may have gone out before their stanzas, does not
// release them.
func TestBarrierIsSharedButNeverEarly(t *testing.T) {
	var b barriers
	p := newBlockingPing()
	user := jid.MustParse("alice@example.org")
	first := make(chan error, 1)
	go func() { first <- b.wait(context.Background(), user, p.ping) }()
	if n := <-p.started; n != 1 {
		t.Fatalf("first ping is number %d", n)
	}
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = b.wait(context.Background(), jid.MustParse("bob@example.org"), p.ping) })
	}
	waitJoined(t, &b, "example.org", n)
	p.release <- struct{}{} // answers the first ping only
	if err := <-first; err != nil {
		t.Fatalf("first waiter: %v", err)
	}
	if got := <-p.started; got != 2 {
		t.Fatalf("second ping is number %d", got)
	}
	p.release <- struct{}{}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("waiter %d: %v", i, err)
		}
	}
	if got := p.sent.Load(); got != 2 {
		t.Errorf("%d pings for 1 + %d waiters, want 2", got, n)
	}
}

// TestBarrierWaiterGivingUpLeavesTheOthers: a session whose context ends
// stops waiting; the ping goes on for the others.
func TestBarrierWaiterGivingUpLeavesTheOthers(t *testing.T) {
	var b barriers
	p := newBlockingPing()
	user := jid.MustParse("alice@example.org")
	ctx, cancel := context.WithCancel(context.Background())
	quitter := make(chan error, 1)
	go func() { quitter <- b.wait(ctx, user, p.ping) }()
	<-p.started
	stayer := make(chan error, 1)
	go func() { stayer <- b.wait(context.Background(), user, p.ping) }()
	waitJoined(t, &b, "example.org", 1)
	cancel()
	if err := <-quitter; !errors.Is(err, context.Canceled) {
		t.Errorf("waiter that gave up: %v, want context.Canceled", err)
	}
	p.release <- struct{}{}
	<-p.started
	p.release <- struct{}{}
	if err := <-stayer; err != nil {
		t.Errorf("waiter that stayed: %v", err)
	}
}
