package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func TestQueueStatsAndRegistrationCount(t *testing.T) {
	eachDriver(t, testQueueStatsAndRegistrationCount)
}

func testQueueStatsAndRegistrationCount(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	if n, err := s.RegistrationCount(ctx); err != nil || n != 0 {
		t.Errorf("RegistrationCount of a new store = %d, %v; want 0", n, err)
	}
	if byDir, oldest, err := s.QueueStats(ctx); err != nil || len(byDir) != 0 || len(oldest) != 0 {
		t.Errorf("QueueStats of an empty queue = %v, %v, %v; want empty maps", byDir, oldest, err)
	}
	mustRegister(t, s, alice, 10001)
	mustRegister(t, s, bob, 10002)
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	var ids []int64
	for _, it := range []Item{
		{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "a", Received: t0.Add(time.Minute)},
		{Dir: ToXMPP, JID: bob, Peer: 20002, Text: "b", Received: t0},
		{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "c", Received: t0.Add(time.Hour)},
		{Dir: ToQQ, JID: bob, Peer: 20002, Text: "d", Received: t0.Add(2 * time.Hour)},
	} {
		id, err := s.Enqueue(ctx, it)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := s.Remove(ctx, ids[1]); err != nil { // the oldest goes: the next one counts
		t.Fatal(err)
	}
	byDir, oldest, err := s.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[Direction]int{ToXMPP: 2, ToQQ: 1}; !reflect.DeepEqual(byDir, want) {
		t.Errorf("depth %v, want %v", byDir, want)
	}
	if want := map[Direction]time.Time{ToXMPP: t0.Add(time.Minute), ToQQ: t0.Add(2 * time.Hour)}; !reflect.DeepEqual(oldest, want) {
		t.Errorf("oldest %v, want %v", oldest, want)
	}
	if n, err := s.RegistrationCount(ctx); err != nil || n != 2 {
		t.Errorf("RegistrationCount = %d, %v; want 2", n, err)
	}
	s.Close()
	if _, _, err := s.QueueStats(ctx); err == nil {
		t.Error("QueueStats of a closed store succeeded")
	}
}
