package main

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sentMsg is one benchmark message: its id is in the body with the send
// time, so that each arrival is matched to exactly one send.
type sentMsg struct {
	at    time.Time
	to    int // receiving user (index), -1 for a plain user
	first time.Time
	count int
}

// collector counts arrivals by message id: lost is sent and never
// received, doubled is received more than once.
type collector struct {
	mu       sync.Mutex
	msgs     map[string]*sentMsg
	unknown  int // bodies with the prefix but an id never sent
	errors   int // message stanzas of type error
	received atomic.Int64
	lastErr  string
}

func newCollector() *collector { return &collector{msgs: map[string]*sentMsg{}} }

const bodyPrefix = "qb "

// body is a message's text: prefix, id, send time in Unix nanoseconds.
func body(id string, at time.Time) string {
	return bodyPrefix + id + " " + strconv.FormatInt(at.UnixNano(), 10)
}

// parseBody returns the id and the send time of a benchmark body.
func parseBody(b string) (id string, at time.Time, ok bool) {
	rest, ok := strings.CutPrefix(b, bodyPrefix)
	if !ok {
		return "", time.Time{}, false
	}
	id, ns, ok := strings.Cut(rest, " ")
	if !ok {
		return "", time.Time{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return id, time.Unix(0, n), true
}

// sent records a message before it is written, and returns its body.
func (c *collector) sent(id string, to int) string {
	now := time.Now()
	c.mu.Lock()
	c.msgs[id] = &sentMsg{at: now, to: to}
	c.mu.Unlock()
	return body(id, now)
}

// arrived takes a received message body.
func (c *collector) arrived(b string, at time.Time) {
	id, _, ok := parseBody(b)
	if !ok {
		return
	}
	c.mu.Lock()
	m := c.msgs[id]
	switch {
	case m == nil:
		c.unknown++
	case m.count == 0:
		m.first = at
		c.received.Add(1)
		fallthrough
	default:
		m.count++
	}
	c.mu.Unlock()
}

func (c *collector) errored(from, what string) {
	c.mu.Lock()
	c.errors++
	if c.lastErr == "" {
		c.lastErr = from + ": " + what
	}
	c.mu.Unlock()
}

// tally is what became of the messages whose id starts with prefix.
type tally struct {
	Sent    int `json:"sent"`
	Lost    int `json:"lost"`
	Doubled int `json:"doubled"` // extra copies
	// First and last send, last first arrival.
	firstSent, lastSent, lastArrived time.Time
	latency                          []time.Duration // send → first arrival
}

func (c *collector) tally(prefix string) tally {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t tally
	for id, m := range c.msgs {
		if !strings.HasPrefix(id, prefix) {
			continue
		}
		t.Sent++
		if t.firstSent.IsZero() || m.at.Before(t.firstSent) {
			t.firstSent = m.at
		}
		if m.at.After(t.lastSent) {
			t.lastSent = m.at
		}
		if m.count == 0 {
			t.Lost++
			continue
		}
		t.Doubled += m.count - 1
		t.latency = append(t.latency, m.first.Sub(m.at))
		if m.first.After(t.lastArrived) {
			t.lastArrived = m.first
		}
	}
	return t
}

// arrivedOf returns when the message id first arrived (zero if not).
func (c *collector) arrivedOf(id string) (sent, first time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.msgs[id]; m != nil {
		return m.at, m.first
	}
	return time.Time{}, time.Time{}
}

// waitReceived waits until want messages in all have arrived, or none
// arrived for stall; it returns whether all did.
func (c *collector) waitReceived(want int64, stall time.Duration) bool {
	last, lastAt := c.received.Load(), time.Now()
	for {
		n := c.received.Load()
		if n >= want {
			return true
		}
		if n != last {
			last, lastAt = n, time.Now()
		}
		if time.Since(lastAt) > stall {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
