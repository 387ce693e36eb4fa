package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFetchSeqCommitsWithTheItems: the SEQ of a GetMsgEx stays until the
// items it fetched are queued, in the same transaction; a reopened store
// still holds it.
func TestFetchSeqCommitsWithTheItems(t *testing.T) { eachDriver(t, testFetchSeqCommitsWithTheItems) }

func testFetchSeqCommitsWithTheItems(t *testing.T, d testDriver) {
	ctx := context.Background()
	path := d.newDB(t)
	s, err := d.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, alice, 10001)
	if seq, err := s.FetchSeq(ctx, alice); seq != 0 || err != nil {
		t.Fatalf("FetchSeq of a new user = %d, %v; want 0", seq, err)
	}
	if err := s.SetFetchSeq(ctx, alice, 77); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFetchSeq(ctx, "nobody@example.org", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetFetchSeq of an unregistered JID: %v, want ErrNotFound", err)
	}
	s.Close() // as a crash after the request went out
	if s, err = d.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if seq, err := s.FetchSeq(ctx, alice); seq != 77 || err != nil {
		t.Fatalf("FetchSeq after reopening = %d, %v; want 77", seq, err)
	}
	// A stale SEQ does not clear the current one.
	item := Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "fetched", MsgType: 9}
	if _, err := s.EnqueueFetched(ctx, alice, 76, nil); err != nil {
		t.Fatal(err)
	}
	if seq, _ := s.FetchSeq(ctx, alice); seq != 77 {
		t.Errorf("FetchSeq after clearing another SEQ = %d, want 77", seq)
	}
	ids, err := s.EnqueueFetched(ctx, alice, 77, []Item{item, item})
	if err != nil || len(ids) != 2 {
		t.Fatalf("EnqueueFetched = %v, %v", ids, err)
	}
	if seq, _ := s.FetchSeq(ctx, alice); seq != 0 {
		t.Errorf("FetchSeq after the items were queued = %d, want 0", seq)
	}
	if p, _ := s.Pending(ctx, alice, ToXMPP); len(p) != 2 || p[0].Text != "fetched" {
		t.Errorf("Pending = %+v", p)
	}
	// An item that cannot be written leaves the SEQ in place.
	s.SetFetchSeq(ctx, alice, 78)
	bad := Item{Dir: ToXMPP, JID: "nobody@example.org", Peer: 20002, Text: "x"}
	if _, err := s.EnqueueFetched(ctx, alice, 78, []Item{item, bad}); err == nil {
		t.Fatal("EnqueueFetched with an item of an unregistered JID succeeded")
	}
	if seq, _ := s.FetchSeq(ctx, alice); seq != 78 {
		t.Errorf("FetchSeq after a failed EnqueueFetched = %d, want 78", seq)
	}
	if p, _ := s.Pending(ctx, alice, ToXMPP); len(p) != 2 {
		t.Errorf("a failed EnqueueFetched queued something: %d pending", len(p))
	}
}

// TestSeqAndTriesAreKept: a row's SEQ and its failed attempts survive in
// the queue, and the first failure's time is the one kept.
func TestSeqAndTriesAreKept(t *testing.T) { eachDriver(t, testSeqAndTriesAreKept) }

func testSeqAndTriesAreKept(t *testing.T, d testDriver) {
	s, _ := openTest(t, d)
	ctx := context.Background()
	mustRegister(t, s, alice, 10001)
	id, err := s.Enqueue(ctx, Item{Dir: ToQQ, JID: alice, Peer: 20002, Text: "hi", Seq: 123456})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if first, n, err := s.MarkTried(ctx, id, t0); err != nil || n != 1 || !first.Equal(t0) {
		t.Errorf("MarkTried = %v, %d, %v; want %v, 1", first, n, err, t0)
	}
	if first, n, _ := s.MarkTried(ctx, id, t0.Add(time.Minute)); n != 2 || !first.Equal(t0) {
		t.Errorf("second MarkTried = %v, %d; want %v, 2", first, n, t0)
	}
	p, _ := s.Pending(ctx, alice, ToQQ)
	if len(p) != 1 || p[0].Seq != 123456 || p[0].Attempts != 2 || !p[0].Tried.Equal(t0) {
		t.Errorf("Pending = %+v", p)
	}
	if err := s.SetSeq(ctx, id, 99); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Pending(ctx, alice, ToQQ); p[0].Seq != 99 {
		t.Errorf("SEQ after SetSeq = %d", p[0].Seq)
	}
	if _, _, err := s.MarkTried(ctx, id+1, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkTried of a missing row: %v", err)
	}
}

// TestDeadLetter: a row given up on leaves the queue and is listed with
// its reason; the move is all or nothing.
func TestDeadLetter(t *testing.T) { eachDriver(t, testDeadLetter) }

func testDeadLetter(t *testing.T, d testDriver) {
	s, _ := openTest(t, d)
	ctx := context.Background()
	mustRegister(t, s, alice, 10001)
	id, _ := s.Enqueue(ctx, Item{Dir: ToQQ, JID: alice, Peer: 20002, Text: "lost?", Seq: 5})
	keep, _ := s.Enqueue(ctx, Item{Dir: ToQQ, JID: alice, Peer: 20002, Text: "next"})
	if err := s.MoveToDeadLetter(ctx, id, "QQ did not answer for 4 minutes"); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveToDeadLetter(ctx, id, "again"); !errors.Is(err, ErrNotFound) {
		t.Errorf("moving a row twice: %v, want ErrNotFound", err)
	}
	if p, _ := s.Pending(ctx, alice, ToQQ); len(p) != 1 || p[0].ID != keep {
		t.Errorf("Pending after the move = %+v", p)
	}
	dl, err := s.DeadLetters(ctx, 10)
	if err != nil || len(dl) != 1 {
		t.Fatalf("DeadLetters = %+v, %v", dl, err)
	}
	if d := dl[0]; d.ID != id || d.Text != "lost?" || d.Seq != 5 || d.JID != alice || d.Reason != "QQ did not answer for 4 minutes" || d.Failed.IsZero() {
		t.Errorf("dead letter %+v", d)
	}
	if n, err := s.DeadLetterCount(ctx); n != 1 || err != nil {
		t.Errorf("DeadLetterCount = %d, %v", n, err)
	}
	// They go with the user.
	if err := s.DeleteUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.DeadLetterCount(ctx); n != 0 {
		t.Errorf("dead letters of a deleted user: %d", n)
	}
}

// TestReadOnlyIsUnwritable: a write to a database that cannot take it is
// ErrUnwritable, which callers answer with "try again later".
func TestReadOnlyIsUnwritable(t *testing.T) { eachDriver(t, testReadOnlyIsUnwritable) }

func testReadOnlyIsUnwritable(t *testing.T, d testDriver) {
	// Root writes through file modes, so the database's own switch makes
	// it read-only (SQLite's PRAGMA, PostgreSQL's session setting); it
	// holds on one connection.
	s, _ := openTest(t, d)
	ctx := context.Background()
	mustRegister(t, s, alice, 10001)
	s.db.SetMaxOpenConns(1)
	readOnly := "PRAGMA query_only = ON"
	if d.name == "postgres" {
		readOnly = "SET default_transaction_read_only = on"
	}
	if _, err := s.db.ExecContext(ctx, readOnly); err != nil {
		t.Fatal(err)
	}
	_, err := s.Enqueue(ctx, Item{Dir: ToQQ, JID: alice, Peer: 20002, Text: "x"})
	if !errors.Is(err, ErrUnwritable) {
		t.Errorf("Enqueue on a read-only database: %v, want ErrUnwritable", err)
	}
}
