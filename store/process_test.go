package store

import (
	"context"
	"reflect"
	"sync"
	"testing"
)

// TestBeatProcess: a beat makes a process alive until its expiry and
// leaves its slots alone; Processes lists the live ones by owner.
func TestBeatProcess(t *testing.T) { eachDriver(t, testBeatProcess) }

func testBeatProcess(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	for _, b := range []struct {
		owner string
		until int
	}{{procB, 30}, {procA, 30}, {procC, 10}} {
		if err := s.BeatProcess(ctx, b.owner, at(b.until)); err != nil {
			t.Fatalf("BeatProcess(%s): %v", b.owner, err)
		}
	}
	if ok, err := s.ClaimSlot(ctx, procA, 3, at(5), at(30)); !ok || err != nil {
		t.Fatalf("ClaimSlot = %v, %v", ok, err)
	}
	if err := s.BeatProcess(ctx, procA, at(40)); err != nil {
		t.Fatal(err)
	}
	want := []Process{{procA, at(40), 1}, {procB, at(30), 0}}
	if got, err := s.Processes(ctx, at(10)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Processes at 10 = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.Processes(ctx, at(40)); err != nil || len(got) != 0 {
		t.Errorf("Processes at 40 = %+v, %v; want none", got, err)
	}
}

// TestClaimSlotRace: processes claiming at once never hold more slots
// together than there are; every one of them is alive afterwards.
func TestClaimSlotRace(t *testing.T) { eachDriver(t, testClaimSlotRace) }

func testClaimSlotRace(t *testing.T, d testDriver) {
	ctx := context.Background()
	for round := range 10 {
		s, _ := openTest(t, d)
		owners := []string{procA, procB, procC}
		claimed := make([]bool, len(owners))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, owner := range owners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var err error
				if claimed[i], err = s.ClaimSlot(ctx, owner, 2, at(0), at(30)); err != nil {
					t.Errorf("round %d: ClaimSlot(%s): %v", round, owner, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		n := 0
		for _, c := range claimed {
			if c {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("round %d: claims = %v; want exactly 2 of 2 slots", round, claimed)
		}
		ps, err := s.Processes(ctx, at(0))
		if err != nil || len(ps) != 3 {
			t.Fatalf("round %d: Processes = %+v, %v; want all 3", round, ps, err)
		}
		for i, p := range ps { // sorted by owner as owners is
			if want := map[bool]int{true: 1}[claimed[i]]; p.Slots != want || p.Expires != at(30) {
				t.Errorf("round %d: %+v, want %d slots until 30", round, p, want)
			}
		}
		s.Close()
	}
}

// TestClaimSlotAfterExpiry: a dead process's slots are free for others;
// a process's own slots count against it even after its row expired.
func TestClaimSlotAfterExpiry(t *testing.T) { eachDriver(t, testClaimSlotAfterExpiry) }

func testClaimSlotAfterExpiry(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	for _, c := range []struct {
		owner           string
		total, now, exp int
		want            bool
	}{
		{procA, 2, 0, 10, true},
		{procA, 2, 1, 10, true},
		{procA, 2, 2, 10, false}, // both taken
		{procB, 2, 5, 20, false}, // procA is alive
		{procB, 2, 10, 20, true}, // procA expired at 10
		{procB, 2, 11, 20, true},
		{procB, 2, 12, 20, false},
		{procC, 1, 12, 15, false}, // procB's
		{procC, 1, 20, 22, true},  // procB expired at 20
		{procC, 1, 25, 40, false}, // its own, though expired at 22
	} {
		if got, err := s.ClaimSlot(ctx, c.owner, c.total, at(c.now), at(c.exp)); err != nil || got != c.want {
			t.Errorf("ClaimSlot(%s, %d) at %d = %v, %v; want %v", c.owner, c.total, c.now, got, err, c.want)
		}
	}
	want := []Process{{procC, at(40), 1}}
	if got, err := s.Processes(ctx, at(25)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Processes = %+v, %v; want %+v", got, err, want)
	}
	// procA's row, expired, is no longer listed; its slots are procB's.
	want = []Process{{procB, at(20), 2}, {procC, at(40), 1}}
	if got, err := s.Processes(ctx, at(12)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Processes at 12 = %+v, %v; want %+v", got, err, want)
	}
}

// TestReleaseSlot: slots given back are free for others, and a process
// never holds fewer than none.
func TestReleaseSlot(t *testing.T) { eachDriver(t, testReleaseSlot) }

func testReleaseSlot(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	if ok, err := s.ClaimSlot(ctx, procA, 1, at(0), at(30)); !ok || err != nil {
		t.Fatalf("ClaimSlot = %v, %v", ok, err)
	}
	for range 2 {
		if err := s.ReleaseSlot(ctx, procA); err != nil {
			t.Fatalf("ReleaseSlot: %v", err)
		}
	}
	if err := s.ReleaseSlot(ctx, procB); err != nil {
		t.Errorf("ReleaseSlot of an unknown process: %v", err)
	}
	want := []Process{{procA, at(30), 0}}
	if got, err := s.Processes(ctx, at(1)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Processes = %+v, %v; want %+v", got, err, want)
	}
	if ok, err := s.ClaimSlot(ctx, procB, 1, at(1), at(30)); !ok || err != nil {
		t.Errorf("ClaimSlot of the slot given back = %v, %v; want it claimed", ok, err)
	}
	if ok, err := s.ClaimSlot(ctx, procA, 1, at(1), at(30)); ok || err != nil {
		t.Errorf("ClaimSlot with procB holding the only slot = %v, %v; want refused", ok, err)
	}
}

// TestLeaveCluster: a process stopping cleanly gives back its slots and
// its users at once.
func TestLeaveCluster(t *testing.T) { eachDriver(t, testLeaveCluster) }

func testLeaveCluster(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	mustRegister(t, s, bob, 10002)
	mustAcquire(t, s, alice, procA, at(0), at(30))
	mustAcquire(t, s, bob, procB, at(0), at(30))
	for _, owner := range []string{procA, procB} {
		if ok, err := s.ClaimSlot(ctx, owner, 2, at(0), at(30)); !ok || err != nil {
			t.Fatalf("ClaimSlot(%s) = %v, %v", owner, ok, err)
		}
	}
	if err := s.LeaveCluster(ctx, procA, at(5)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Processes(ctx, at(5)); err != nil || len(got) != 1 || got[0].Owner != procB {
		t.Errorf("Processes after %s left = %+v, %v; want %s only", procA, got, err, procB)
	}
	want := []Lease{{alice, procA, at(5)}}
	if got, err := s.LeasesExpired(ctx, at(0), at(29)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("LeasesExpired = %+v, %v; want %+v", got, err, want)
	}
	if ok, err := s.ClaimSlot(ctx, procB, 2, at(6), at(30)); !ok || err != nil {
		t.Errorf("ClaimSlot of the slot %s gave back = %v, %v", procA, ok, err)
	}
	mustAcquire(t, s, alice, procB, at(6), at(30))
	if err := s.LeaveCluster(ctx, procC, at(6)); err != nil {
		t.Errorf("LeaveCluster of an unknown process: %v", err)
	}
}
