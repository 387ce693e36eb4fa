package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted on purpose
	}
	for _, c := range []struct {
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(3, 1, 2), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond}, // nearest rank: ceil(0.5·4) = 2nd
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
		{ms(hundred...), 1, 1 * time.Millisecond},
	} {
		if got := percentile(c.ds, c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", c.ds, c.p, got, c.want)
		}
	}
	ds := ms(3, 1, 2)
	percentile(ds, 50)
	if ds[0] != 3*time.Millisecond {
		t.Error("percentile reordered its input")
	}
}

func TestBodyRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	id, got, ok := parseBody(body("c-3-17", at))
	if !ok || id != "c-3-17" || !got.Equal(at) {
		t.Errorf("parseBody(body) = %q %v %v", id, got, ok)
	}
	for _, b := range []string{"hello", "qb x", "qb x notanumber"} {
		if _, _, ok := parseBody(b); ok {
			t.Errorf("parseBody(%q) accepted a body qqbench did not write", b)
		}
	}
}

func TestCollectorCountsLostAndDoubled(t *testing.T) {
	c := newCollector()
	b1 := c.sent("c-0-0", 1)
	b2 := c.sent("c-0-1", 1)
	c.sent("c-0-2", 1) // never arrives
	now := time.Now()
	c.arrived(b1, now)
	c.arrived(b2, now)
	c.arrived(b2, now.Add(time.Second)) // a second copy
	c.arrived(body("c-9-9", now), now)  // never sent
	c.arrived("someone's own text", now)
	got := c.tally("c-")
	if got.Sent != 3 || got.Lost != 1 || got.Doubled != 1 {
		t.Errorf("tally = sent %d lost %d doubled %d, want 3 1 1", got.Sent, got.Lost, got.Doubled)
	}
	if c.unknown != 1 {
		t.Errorf("unknown = %d, want 1", c.unknown)
	}
	if n := c.received.Load(); n != 2 {
		t.Errorf("received = %d, want 2 (first arrivals only)", n)
	}
}

// The exit status of qqbench: any lost, doubled, unknown or refused
// message, or a user who could not come online, fails the run.
func TestReportOK(t *testing.T) {
	if r := (report{Total: totals{Sent: 10}}); !r.ok() {
		t.Error("a clean run failed")
	}
	for name, tot := range map[string]totals{
		"lost": {Lost: 1}, "doubled": {Doubled: 1}, "unknown": {Unknown: 1},
		"errors": {Errors: 1}, "users failed": {UsersFailed: 1},
	} {
		if r := (report{Total: tot}); r.ok() {
			t.Errorf("a run with %s passed", name)
		}
	}
}
