package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// user is one XMPP user of the gateway: online over c2s, registered with
// its QQ account, accepting its buddies as a client's user does.
type user struct {
	i int
	c *client

	mu         sync.Mutex
	asked      map[string]bool // JIDs we sent subscribe to
	subscribe  map[string]bool // buddy JIDs that asked us
	subscribed map[string]bool // buddy JIDs that approved us
	available  map[string]bool // buddy JIDs seen online
	ready      chan struct{}   // closed once every buddy asked and approved
	isReady    bool
}

// online counts the users whose subscriptions are complete.
type online struct {
	ready  atomic.Int64
	failed atomic.Int64
	shown  atomic.Int64 // buddies every user's client shows online, summed
	// allShownAt is when shown last reached every user's every buddy
	// (unix nanoseconds).
	allShownAt atomic.Int64
}

func (b *bench) buddyJID(i int) string { return fmt.Sprintf("%d@%s", b.w.uin(i), componentDomain) }

// handle is what a user's client does with what it receives.
func (b *bench) handle(u *user) handler {
	return func(c *client, st *stanza, at time.Time) {
		from := st.From
		if i := strings.IndexByte(from, '/'); i >= 0 {
			from = from[:i]
		}
		switch st.XMLName.Local {
		case "message":
			if st.Type == "error" {
				b.col.errored(u.c.user, "message error from "+st.From)
				return
			}
			b.col.arrived(st.Body, at)
		case "presence":
			b.presence(u, from, st.Type)
		}
	}
}

// presence accepts every subscription request from the transport and its
// contacts and asks back (what journey.py's user does), and notes which
// buddies are complete.
func (b *bench) presence(u *user, from, typ string) {
	if from != componentDomain && !strings.HasSuffix(from, "@"+componentDomain) {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	switch typ {
	case "subscribe":
		_ = u.c.presence(from, "subscribed")
		if !u.asked[from] {
			u.asked[from] = true
			_ = u.c.presence(from, "subscribe")
		}
		if from != componentDomain {
			u.subscribe[from] = true
		}
	case "subscribed":
		if from != componentDomain {
			u.subscribed[from] = true
		}
	case "":
		if from != componentDomain && !u.available[from] {
			u.available[from] = true
			if b.on.shown.Add(1) == int64(b.w.Users*b.w.Buddies) {
				b.on.allShownAt.Store(time.Now().UnixNano())
			}
		}
	case "unavailable":
		if u.available[from] {
			delete(u.available, from)
			b.on.shown.Add(-1)
		}
		return
	default:
		return
	}
	if !u.isReady && b.complete(u) {
		u.isReady = true
		b.on.ready.Add(1)
		close(u.ready)
	}
}

// complete reports whether u has all its buddies: with a handshake, each
// asked and approved; with roster files, each seen online. u.mu is held.
func (b *bench) complete(u *user) bool {
	if b.o.rosterFiles {
		return len(u.available) >= b.w.Buddies
	}
	return len(u.subscribe) >= b.w.Buddies && len(u.subscribed) >= b.w.Buddies
}

// connect logs user i in, makes it available and registers it with the
// gateway (XEP-0077, the legacy fields, as most clients send them).
func (b *bench) connect(ctx context.Context, i int) (*user, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.stepTimeout)
	defer cancel()
	c, err := dial(ctx, b.st.clientAddr, b.w.xmppUser(i), domain, b.w.xmppPassword(i))
	if err != nil {
		return nil, err
	}
	u := &user{i: i, c: c, asked: map[string]bool{}, subscribe: map[string]bool{},
		subscribed: map[string]bool{}, available: map[string]bool{}, ready: make(chan struct{})}
	c.run(b.handle(u))
	// As a client does: the roster first, which also makes the server
	// send roster pushes and subscription approvals to this resource.
	if _, err := c.iq(ctx, "get", "", "<query xmlns='jabber:iq:roster'/>"); err != nil {
		return u, err
	}
	if err := c.presence("", ""); err != nil {
		return u, err
	}
	res, err := c.iq(ctx, "set", componentDomain, fmt.Sprintf(
		"<query xmlns='jabber:iq:register'><username>%d</username><password>%s</password></query>",
		b.w.uin(i), b.w.qqPassword(i)))
	if err != nil {
		return u, fmt.Errorf("register %s: %w", c.user, err)
	}
	if res.Type != "result" {
		return u, fmt.Errorf("register %s: the gateway answered %s", c.user, res.Type)
	}
	return u, nil
}

// connectAll brings every user online with a bounded number of logins in
// flight, then waits until all subscriptions are complete.
func (b *bench) connectAll(ctx context.Context) error {
	b.users = make([]*user, b.w.Users)
	work := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range b.o.loginWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				u, err := b.connect(ctx, i)
				b.users[i] = u
				if err != nil {
					b.on.failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	for i := range b.w.Users {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("%d users failed to come online; first: %w", b.on.failed.Load(), err)
	}
	return b.waitReady()
}

// waitReady waits until every user has all its subscriptions, or none
// completed for the stall time.
func (b *bench) waitReady() error {
	last, lastAt := b.on.ready.Load(), time.Now()
	for b.on.ready.Load() < int64(b.w.Users) {
		if n := b.on.ready.Load(); n != last {
			last, lastAt = n, time.Now()
		}
		if time.Since(lastAt) > b.o.stall {
			return fmt.Errorf("only %d of %d users have all %d buddies (none completed for %v); e.g. %s",
				last, b.w.Users, b.w.Buddies, b.o.stall, b.notReady())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func (b *bench) notReady() string {
	for _, u := range b.users {
		u.mu.Lock()
		s := fmt.Sprintf("%s: %d subscribe, %d subscribed, %d buddies online", u.c.user, len(u.subscribe), len(u.subscribed), len(u.available))
		r := u.isReady
		u.mu.Unlock()
		if !r {
			return s
		}
	}
	return "none"
}
