package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// clock is a fake time source that advances one second per reading, so every
// write gets a distinct, predictable timestamp.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// openTest opens a fresh database of driver d with a fake clock and
// closes it when the test ends.
func openTest(t testing.TB, d testDriver) (*Store, *clock) {
	t.Helper()
	c := newClock()
	o := d.opts
	o.nowFunc = c.now
	s, err := d.open(context.Background(), d.newDB(t), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, c
}

const (
	alice = "alice@example.org"
	bob   = "bob@example.org"
	md5a  = "0123456789abcdef0123456789abcdef"
	md5b  = "fedcba9876543210fedcba9876543210"
)

// mustRegister registers jid with uin or fails the test.
func mustRegister(t testing.TB, s *Store, jid string, uin int64) {
	t.Helper()
	if err := s.PutRegistration(context.Background(), Registration{JID: jid, UIN: uin, PasswordMD5: md5a}); err != nil {
		t.Fatalf("PutRegistration(%s, %d): %v", jid, uin, err)
	}
}

// latestVersion is the schema version of the newest embedded migration.
const latestVersion = 6

// queueLen counts every queued item of every user in both directions.
func queueLen(t testing.TB, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), `SELECT count(*) FROM queue`).Scan(&n); err != nil {
		t.Fatalf("count queue: %v", err)
	}
	return n
}
