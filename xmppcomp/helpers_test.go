package xmppcomp_test

import (
	"context"
	"encoding/xml"
	"sync"
	"testing"
	"time"

	"qqxmpp/xmppcomp"
)

const (
	compDomain = "comp.localhost"
	// Quotes and a backslash prove the configuration templates quote it.
	compSecret = `s3cret "for" \tests'`
)

// inbox collects what the component's Handler receives.
type inbox struct {
	mu     sync.Mutex
	got    []xmppcomp.Stanza
	notify chan struct{}
}

func newInbox() *inbox { return &inbox{notify: make(chan struct{})} }

func (b *inbox) HandleStanza(_ context.Context, st xmppcomp.Stanza) {
	b.mu.Lock()
	b.got = append(b.got, st)
	close(b.notify)
	b.notify = make(chan struct{})
	b.mu.Unlock()
}

// next waits for the first stanza matching match and removes it.
func (b *inbox) next(t *testing.T, timeout time.Duration, match func(xmppcomp.Stanza) bool) xmppcomp.Stanza {
	t.Helper()
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		for i, st := range b.got {
			if match(st) {
				b.got = append(b.got[:i], b.got[i+1:]...)
				b.mu.Unlock()
				return st
			}
		}
		ch := b.notify
		n := len(b.got)
		b.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("handler got no matching stanza within %v (%d others)", timeout, n)
		}
	}
}

// runComponent runs a component with cfg until stop is called or the test
// ends, without waiting for it to connect. stop cancels Run and fails the
// test unless Run returns nil promptly; it may be called again.
func runComponent(t testing.TB, cfg xmppcomp.Config, h xmppcomp.Handler) (c *xmppcomp.Component, stop func()) {
	t.Helper()
	c, err := xmppcomp.New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

func waitConnected(t testing.TB, c *xmppcomp.Component, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !c.Connected() {
		if time.Since(start) > timeout {
			t.Fatalf("component not connected within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// chatMessage is the kind of struct a gateway passes to Encode.
type chatMessage struct {
	XMLName xml.Name `xml:"message"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr"`
	Type    string   `xml:"type,attr,omitempty"`
	ID      string   `xml:"id,attr,omitempty"`
	Body    string   `xml:"body"`
}

// take removes the first stanza matching match, if one is there.
func (b *inbox) take(match func(xmppcomp.Stanza) bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, st := range b.got {
		if match(st) {
			b.got = append(b.got[:i], b.got[i+1:]...)
			return true
		}
	}
	return false
}
