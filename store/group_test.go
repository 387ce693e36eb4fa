package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// holdCommitter occupies s's committer with a write that waits until the
// returned func is called, so that the writes made meanwhile wait for it
// and go in one group after it.
func holdCommitter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	running, hold := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(context.Context, *sql.Tx) error {
			close(running)
			<-hold
			return nil
		})
	}()
	<-running
	return func() {
		close(hold)
		if err := <-done; err != nil {
			t.Errorf("the holding write: %v", err)
		}
	}
}

// waitForWriters returns once n writes (besides the holding one) wait for
// the committer.
func waitForWriters(t *testing.T, s *Store, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.group.waiting.Load() < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes wait, want %d", s.group.waiting.Load()-1, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupedWritesEachSeeTheirOwnOutcome: writes of many sessions that
// wait together are committed together; one that fails (its user is not
// registered) fails alone, and every other is durable.
func TestGroupedWritesEachSeeTheirOwnOutcome(t *testing.T) {
	eachDriver(t, testGroupedWritesEachSeeTheirOwnOutcome)
}

func testGroupedWritesEachSeeTheirOwnOutcome(t *testing.T, d testDriver) {
	ctx := context.Background()
	path := d.newDB(t)
	s, err := d.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("user%d@example.org", i)
		mustRegister(t, s, users[i], int64(10001+i))
	}
	release := holdCommitter(t, s)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() { errs[i] = s.SetFetchSeq(ctx, u, int64(100+i)) })
	}
	wg.Go(func() { errs[n] = s.SetFetchSeq(ctx, "nobody@example.org", 1) })
	waitForWriters(t, s, n+1)
	groupsBefore := s.group.groups.Load()
	release()
	wg.Wait()
	if g := s.group.groups.Load() - groupsBefore; g >= n {
		t.Errorf("%d writes took %d groups: not grouped", n+1, g)
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("SetFetchSeq of %s: %v", users[i], errs[i])
		}
	}
	if !errors.Is(errs[n], ErrNotFound) {
		t.Errorf("SetFetchSeq of an unregistered JID in the group: %v, want ErrNotFound", errs[n])
	}
	s.Close() // every acknowledged write is on disk
	if s, err = d.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, u := range users {
		if seq, err := s.FetchSeq(ctx, u); seq != int64(100+i) || err != nil {
			t.Errorf("FetchSeq of %s after reopening = %d, %v; want %d", u, seq, err, 100+i)
		}
	}
}

// TestEnqueueEachIsOneCommit: the messages a door hands over together take
// one group; an unregistered user's fails alone, and the rest are durable
// in order with their IDs.
func TestEnqueueEachIsOneCommit(t *testing.T) { eachDriver(t, testEnqueueEachIsOneCommit) }

func testEnqueueEachIsOneCommit(t *testing.T, d testDriver) {
	ctx := context.Background()
	path := d.newDB(t)
	s, err := d.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, "a@example.org", 10001)
	items := make([]Item, 0, 21)
	for i := range 20 {
		items = append(items, Item{Dir: ToQQ, JID: "a@example.org", Peer: 20002, Text: fmt.Sprint("m", i), Seq: int64(1 + i)})
	}
	items = append(items[:10], append([]Item{{Dir: ToQQ, JID: "nobody@example.org", Peer: 20002, Text: "x", Seq: 99}}, items[10:]...)...)
	groupsBefore := s.group.groups.Load()
	ids, errs := s.EnqueueEach(ctx, items)
	if g := s.group.groups.Load() - groupsBefore; g != 1 {
		t.Errorf("%d items took %d groups, want 1", len(items), g)
	}
	for i := range items {
		switch {
		case i == 10:
			if !errors.Is(errs[i], ErrNotFound) || ids[i] != 0 {
				t.Errorf("item of an unregistered JID: id %d, %v; want ErrNotFound", ids[i], errs[i])
			}
		case errs[i] != nil || ids[i] == 0:
			t.Errorf("item %d: id %d, %v", i, ids[i], errs[i])
		}
	}
	s.Close()
	if s, err = d.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Pending(ctx, "a@example.org", ToQQ)
	if err != nil || len(got) != 20 {
		t.Fatalf("Pending after reopening: %d items, %v; want 20", len(got), err)
	}
	for i, it := range got {
		want := i
		if it.Text != fmt.Sprint("m", want) || it.ID != ids[map[bool]int{true: i, false: i + 1}[i < 10]] {
			t.Errorf("pending %d = %q id %d; want %q", i, it.Text, it.ID, fmt.Sprint("m", want))
		}
	}
}

// TestWriteGivenUpBeforeItRanIsNotWritten: a caller whose context ends
// while its write waits for the committer hears so, and nothing is
// written.
func TestWriteGivenUpBeforeItRanIsNotWritten(t *testing.T) {
	eachDriver(t, testWriteGivenUpBeforeItRanIsNotWritten)
}

func testWriteGivenUpBeforeItRanIsNotWritten(t *testing.T, d testDriver) {
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	release := holdCommitter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.SetFetchSeq(ctx, alice, 5) }()
	waitForWriters(t, s, 1)
	cancel()
	err := <-done
	release()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("SetFetchSeq given up: %v, want context.Canceled", err)
	}
	if seq, err := s.FetchSeq(context.Background(), alice); seq != 0 || err != nil {
		t.Errorf("FetchSeq = %d, %v; want 0: the write was given up", seq, err)
	}
}

// TestWritesAfterCloseFail: Close ends the committer; a later write fails
// instead of waiting for ever.
func TestWritesAfterCloseFail(t *testing.T) {
	eachDriver(t, func(t *testing.T, d testDriver) {
		s, _ := openTest(t, d)
		mustRegister(t, s, alice, 10001)
		if err := s.SetFetchSeq(context.Background(), alice, 1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := s.SetFetchSeq(context.Background(), alice, 2); err == nil {
			t.Error("SetFetchSeq after Close succeeded")
		}
	})
}
