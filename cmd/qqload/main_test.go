package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestSmallLoad runs the whole measurement on 50 users with chat traffic:
// every user must log in, every message must arrive exactly once, and the
// report must carry each figure.
func TestSmallLoad(t *testing.T) {
	o := options{
		Users: 50, Buddies: 10, MaxInFlight: 64,
		Duration: 2 * time.Second, PollIdle: 200 * time.Millisecond, PollActive: 100 * time.Millisecond,
		LoginTimeout: 5 * time.Second, Settle: 300 * time.Millisecond, Grace: 3 * time.Second,
		ChatRate: 20,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Second)
	defer cancel()
	rep, err := run(ctx, o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.problems(); len(p) > 0 {
		t.Fatalf("problems: %q", p)
	}
	if rep.loggedIn != 50 {
		t.Errorf("logged in %d, want 50", rep.loggedIn)
	}
	if rep.sent < 20 || rep.delivered != rep.sent || rep.lost != 0 || rep.dups != 0 {
		t.Errorf("messages: sent %d delivered %d lost %d dups %d; want ≥20 sent, all delivered once",
			rep.sent, rep.delivered, rep.lost, rep.dups)
	}
	if rep.requests == 0 || rep.msgs < int64(rep.sent)/2 || rep.cpu <= 0 || rep.heapEnd == 0 {
		t.Errorf("implausible figures: %+v", rep)
	}
	var b strings.Builder
	rep.write(&b)
	for _, want := range []string{
		"logged in: 50/50", "cpu total:", "cpu in qqsim handlers:", "heap per user:", "goroutines:",
		"qq requests/s:", "stanzas out/s:", "0 lost, 0 duplicated", "delivery latency: p50",
		"qqsim runs in this process",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestLostMessageFails proves the loss check can fail: a message the
// gateway never delivers is reported.
func TestLostMessageFails(t *testing.T) {
	c := &countingSender{sent: map[int]time.Time{}, seen: map[int]int{}}
	c.expect(1)
	c.expect(2)
	c.noteBody([]byte(`<message><body>` + bodyMark + `1</body></message>`))
	c.noteBody([]byte(`<message><body>` + bodyMark + `1</body></message>`))
	rep := &report{o: options{Users: 2}, loggedIn: 2}
	c.summarise(rep)
	if rep.lost != 1 || rep.dups != 1 || len(rep.problems()) != 1 {
		t.Errorf("lost %d dups %d problems %q; want 1, 1 and one problem", rep.lost, rep.dups, rep.problems())
	}
}
