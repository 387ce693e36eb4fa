package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

const (
	procA = "gw-a"
	procB = "gw-b"
	procC = "gw-c"
	carol = "carol@example.org"
)

// at is a point in the tests' time, sec seconds after an arbitrary start.
func at(sec int) time.Time {
	return time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
}

// mustAcquire takes jid's lease for owner from now until until or fails.
func mustAcquire(t *testing.T, s *Store, jid, owner string, now, until time.Time) {
	t.Helper()
	if cur, held, err := s.AcquireLease(context.Background(), jid, owner, now, until); err != nil || !held {
		t.Fatalf("AcquireLease(%s, %s) = %+v, %v, %v; want it held", jid, owner, cur, held, err)
	}
}

// TestAcquireLease: a lease is taken when free, expired or one's own, and
// refused while another process holds it.
func TestAcquireLease(t *testing.T) { eachDriver(t, testAcquireLease) }

func testAcquireLease(t *testing.T, d testDriver) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		before *Lease // the lease in place, if any
		want   Lease  // the lease after procA asked at 100 until 130
		held   bool
	}{
		{"free", nil, Lease{alice, procA, at(130)}, true},
		{"own, renewed", &Lease{alice, procA, at(110)}, Lease{alice, procA, at(130)}, true},
		{"own, expired", &Lease{alice, procA, at(50)}, Lease{alice, procA, at(130)}, true},
		{"another's, live", &Lease{alice, procB, at(101)}, Lease{alice, procB, at(101)}, false},
		{"another's, expired", &Lease{alice, procB, at(99)}, Lease{alice, procA, at(130)}, true},
		{"another's, expiring now", &Lease{alice, procB, at(100)}, Lease{alice, procA, at(130)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t, d)
			mustRegister(t, s, alice, 10001)
			if b := tc.before; b != nil {
				mustAcquire(t, s, b.JID, b.Owner, b.Expires.Add(-time.Second), b.Expires)
			}
			cur, held, err := s.AcquireLease(ctx, alice, procA, at(100), at(130))
			if err != nil || held != tc.held || cur != tc.want {
				t.Errorf("AcquireLease = %+v, %v, %v; want %+v, %v", cur, held, err, tc.want, tc.held)
			}
			if l, err := s.Lease(ctx, alice); err != nil || l != tc.want {
				t.Errorf("Lease = %+v, %v; want %+v", l, err, tc.want)
			}
		})
	}
}

// TestAcquireLeaseRefuses: no lease for a user who is not registered, nor
// one that would end before it begins.
func TestAcquireLeaseRefuses(t *testing.T) { eachDriver(t, testAcquireLeaseRefuses) }

func testAcquireLeaseRefuses(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	if _, _, err := s.AcquireLease(ctx, bob, procA, at(0), at(30)); !errors.Is(err, ErrNotFound) {
		t.Errorf("AcquireLease of an unregistered user: %v, want ErrNotFound", err)
	}
	for _, tc := range []struct {
		jid, owner string
		until      time.Time
	}{{alice, procA, at(0)}, {alice, "", at(30)}, {"", procA, at(30)}, {alice + "/res", procA, at(30)}} {
		if _, _, err := s.AcquireLease(ctx, tc.jid, tc.owner, at(0), tc.until); !errors.Is(err, ErrInvalid) {
			t.Errorf("AcquireLease(%q, %q, until %v): %v, want ErrInvalid", tc.jid, tc.owner, tc.until, err)
		}
	}
	if l, err := s.Lease(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lease after refused acquisitions = %+v, %v; want ErrNotFound", l, err)
	}
}

// TestAcquireLeaseRace: two processes asking for one user's lease at the
// same moment never both get it.
func TestAcquireLeaseRace(t *testing.T) { eachDriver(t, testAcquireLeaseRace) }

func testAcquireLeaseRace(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	for round := range 50 {
		jid := fmt.Sprintf("user%d@example.org", round)
		mustRegister(t, s, jid, int64(10001+round))
		if round%2 == 1 { // half the rounds race for an expired lease
			mustAcquire(t, s, jid, procC, at(0), at(10))
		}
		owners := []string{procA, procB}
		held := make([]bool, 2)
		curs := make([]Lease, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, owner := range owners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var err error
				if curs[i], held[i], err = s.AcquireLease(ctx, jid, owner, at(100), at(130)); err != nil {
					t.Errorf("round %d: AcquireLease(%s): %v", round, owner, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if held[0] == held[1] {
			t.Fatalf("round %d: held = %v; want exactly one owner", round, held)
		}
		winner, loser := 0, 1
		if held[1] {
			winner, loser = 1, 0
		}
		want := Lease{jid, owners[winner], at(130)}
		if curs[loser] != want {
			t.Errorf("round %d: the loser was shown %+v, want %+v", round, curs[loser], want)
		}
		if l, err := s.Lease(ctx, jid); err != nil || l != want {
			t.Errorf("round %d: Lease = %+v, %v; want %+v", round, l, err, want)
		}
	}
}

// TestRenewLeases: a process renews its own live leases, never one that
// lapsed (nobody took it yet) nor one another process took.
func TestRenewLeases(t *testing.T) { eachDriver(t, testRenewLeases) }

func testRenewLeases(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	dave := "dave@example.org"
	for i, jid := range []string{alice, bob, carol, dave} {
		mustRegister(t, s, jid, int64(10001+i))
	}
	mustAcquire(t, s, dave, procA, at(0), at(10))  // expires, nobody takes it
	mustAcquire(t, s, carol, procA, at(0), at(10)) // expires, procB takes it
	mustAcquire(t, s, alice, procA, at(0), at(30))
	mustAcquire(t, s, bob, procB, at(0), at(30))
	mustAcquire(t, s, carol, procB, at(20), at(50))

	got, err := s.RenewLeases(ctx, procA, at(25), at(60))
	if want := []string{alice}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("RenewLeases(%s) = %q, %v; want %q", procA, got, err, want)
	}
	for _, want := range []Lease{{alice, procA, at(60)}, {bob, procB, at(30)}, {carol, procB, at(50)}, {dave, procA, at(10)}} {
		if l, err := s.Lease(ctx, want.JID); err != nil || l != want {
			t.Errorf("Lease(%s) = %+v, %v; want %+v", want.JID, l, err, want)
		}
	}
	if got, err := s.RenewLeases(ctx, procC, at(25), at(60)); err != nil || len(got) != 0 {
		t.Errorf("RenewLeases of a process without leases = %q, %v; want none", got, err)
	}
}

// TestReleaseLease: a released lease ends at once, is reported once by
// LeasesExpired, and is free for another process.
func TestReleaseLease(t *testing.T) { eachDriver(t, testReleaseLease) }

func testReleaseLease(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	for i, jid := range []string{alice, bob, carol} {
		mustRegister(t, s, jid, int64(10001+i))
	}
	mustAcquire(t, s, alice, procA, at(0), at(30))
	mustAcquire(t, s, bob, procB, at(0), at(12)) // procB dies
	mustAcquire(t, s, carol, procA, at(0), at(30))

	if err := s.ReleaseLease(ctx, alice, procB, at(10)); err != nil {
		t.Errorf("ReleaseLease by a process not holding it: %v", err)
	}
	if err := s.ReleaseLease(ctx, alice, procA, at(15)); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	if err := s.ReleaseLease(ctx, alice, procA, at(18)); err != nil { // again, later
		t.Fatalf("ReleaseLease of a released lease: %v", err)
	}
	for _, tc := range []struct {
		after, upTo int
		want        []Lease
	}{
		{0, 11, nil},
		{0, 20, []Lease{{bob, procB, at(12)}, {alice, procA, at(15)}}},
		{12, 15, []Lease{{alice, procA, at(15)}}}, // after is not in, upTo is
		{15, 29, nil},
	} {
		if got, err := s.LeasesExpired(ctx, at(tc.after), at(tc.upTo)); err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("LeasesExpired(%d, %d] = %+v, %v; want %+v", tc.after, tc.upTo, got, err, tc.want)
		}
	}
	if l, err := s.Lease(ctx, carol); err != nil || l.Expires != at(30) {
		t.Errorf("Lease(%s) after releasing another = %+v, %v; want it until 30", carol, l, err)
	}
	mustAcquire(t, s, alice, procB, at(16), at(40))
}

// TestLeaveClusterReleasesLeases: a process stopping ends all its leases
// and no other's.
func TestLeaveClusterReleasesLeases(t *testing.T) { eachDriver(t, testLeaveClusterReleasesLeases) }

func testLeaveClusterReleasesLeases(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	for i, jid := range []string{alice, bob, carol} {
		mustRegister(t, s, jid, int64(10001+i))
	}
	mustAcquire(t, s, alice, procA, at(0), at(30))
	mustAcquire(t, s, bob, procB, at(0), at(30))
	mustAcquire(t, s, carol, procA, at(0), at(30))
	if err := s.LeaveCluster(ctx, procA, at(20)); err != nil {
		t.Fatal(err)
	}
	want := []Lease{{alice, procA, at(20)}, {carol, procA, at(20)}}
	if got, err := s.LeasesExpired(ctx, at(0), at(29)); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("LeasesExpired = %+v, %v; want %+v", got, err, want)
	}
	if l, _ := s.Lease(ctx, bob); l.Expires != at(30) {
		t.Errorf("another process's lease after LeaveCluster = %+v, want it until 30", l)
	}
}

// TestLeaseGoesWithTheUser: unregistering a user removes the lease.
func TestLeaseGoesWithTheUser(t *testing.T) { eachDriver(t, testLeaseGoesWithTheUser) }

func testLeaseGoesWithTheUser(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	mustRegister(t, s, bob, 10002)
	mustAcquire(t, s, alice, procA, at(0), at(30))
	mustAcquire(t, s, bob, procA, at(0), at(30))
	if err := s.DeleteUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Lease(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lease of an unregistered user = %+v, %v; want ErrNotFound", l, err)
	}
	if got, err := s.RenewLeases(ctx, procA, at(0), at(40)); err != nil || !reflect.DeepEqual(got, []string{bob}) {
		t.Errorf("RenewLeases after unregistering %s = %q, %v; want [%s]", alice, got, err, bob)
	}
	if got, err := s.LeasesExpired(ctx, at(0), at(100)); err != nil || len(got) != 1 || got[0].JID != bob {
		t.Errorf("LeasesExpired = %+v, %v; want %s's only", got, err, bob)
	}
}

// TestLeaseWritesUnwritable: every write of leases and slots refused by a
// read-only database is ErrUnwritable, so that callers retry it later
// rather than take it for "held by another".
func TestLeaseWritesUnwritable(t *testing.T) { eachDriver(t, testLeaseWritesUnwritable) }

func testLeaseWritesUnwritable(t *testing.T, d testDriver) {
	s, _ := openTest(t, d)
	ctx := context.Background()
	mustRegister(t, s, alice, 10001)
	mustAcquire(t, s, alice, procA, at(0), at(30))
	s.db.SetMaxOpenConns(1) // the switch below holds on one connection
	readOnly := "PRAGMA query_only = ON"
	if d.name == "postgres" {
		readOnly = "SET default_transaction_read_only = on"
	}
	if _, err := s.db.ExecContext(ctx, readOnly); err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func() error{
		"AcquireLease": func() error { _, _, err := s.AcquireLease(ctx, alice, procA, at(1), at(40)); return err },
		"RenewLeases":  func() error { _, err := s.RenewLeases(ctx, procA, at(0), at(40)); return err },
		"ReleaseLease": func() error { return s.ReleaseLease(ctx, alice, procA, at(1)) },
		"BeatProcess":  func() error { return s.BeatProcess(ctx, procA, at(40)) },
		"ClaimSlot":    func() error { _, err := s.ClaimSlot(ctx, procA, 2, at(1), at(40)); return err },
		"ReleaseSlot":  func() error { return s.ReleaseSlot(ctx, procA) },
		"LeaveCluster": func() error { return s.LeaveCluster(ctx, procA, at(1)) },
	} {
		if err := write(); !errors.Is(err, ErrUnwritable) {
			t.Errorf("%s on a read-only database: %v, want ErrUnwritable", name, err)
		}
	}
}
