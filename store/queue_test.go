package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQueue(t *testing.T) { eachDriver(t, testQueue) }

func testQueue(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, clk := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	mustRegister(t, s, bob, 10002)

	if items, err := s.Pending(ctx, alice, ToXMPP); err != nil || len(items) != 0 {
		t.Errorf("Pending of an empty queue = %v, %v", items, err)
	}

	received := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	in := []Item{
		{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "one", Received: received, MsgType: 99},
		{Dir: ToQQ, JID: alice, Peer: 20002, Text: "to qq", Received: received.Add(time.Hour),
			Resource: "laptop/2 <é>", StanzaID: "stanza-17", StanzaType: "chat", WantsReceipt: true},
		{Dir: ToXMPP, JID: bob, Peer: 30003, Text: "for bob", Received: received, MsgType: 9},
		{Dir: ToXMPP, JID: alice, Peer: 30003, Text: "two <&> 你好\x00end", MsgType: -1},
		{Dir: ToQQ, JID: alice, Peer: 30003, Text: "<message to='x'/>", Received: received, RawStanza: true},
		{Dir: ToQQ, JID: alice, Peer: 30003, Text: "", Received: received, StanzaType: "normal"},
	}
	var ids []int64
	for _, it := range in {
		it.ID = 999 // ignored
		id, err := s.Enqueue(ctx, it)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("IDs not increasing: %v", ids)
		}
	}
	want := make([]Item, len(in))
	for i, it := range in {
		want[i] = it
		want[i].ID = ids[i]
	}

	// A zero Received is filled in with the store's clock.
	toXMPP, err := s.Pending(ctx, alice, ToXMPP)
	if err != nil || len(toXMPP) != 2 {
		t.Fatalf("Pending(alice, ToXMPP) = %+v, %v; want 2 items", toXMPP, err)
	}
	if r := toXMPP[1].Received; r.IsZero() || r.After(clk.now()) || r.Year() != 2024 {
		t.Errorf("default Received = %v", r)
	}
	want[3].Received = toXMPP[1].Received

	for _, c := range []struct {
		jid  string
		dir  Direction
		want []Item
	}{
		{alice, ToXMPP, []Item{want[0], want[3]}},
		{alice, ToQQ, []Item{want[1], want[4], want[5]}},
		{bob, ToXMPP, []Item{want[2]}},
		{bob, ToQQ, nil},
	} {
		got, err := s.Pending(ctx, c.jid, c.dir)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Pending(%s, %v) = %+v, %v\nwant %+v", c.jid, c.dir, got, err, c.want)
		}
	}

	// Remove.
	if err := s.Remove(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, ids[2]); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if items, _ := s.Pending(ctx, bob, ToXMPP); len(items) != 0 {
		t.Errorf("removed item still pending: %+v", items)
	}
	if n := queueLen(t, s); n != len(in)-1 {
		t.Errorf("%d items queued after one Remove, want %d", n, len(in)-1)
	}
}

// EnqueueBatch writes every field as Enqueue does.
func TestEnqueueBatchKeepsFields(t *testing.T) { eachDriver(t, testEnqueueBatchKeepsFields) }

func testEnqueueBatchKeepsFields(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	received := time.Date(2021, 6, 7, 8, 9, 10, 11, time.UTC)
	in := []Item{
		{Dir: ToQQ, JID: alice, Peer: 5, Text: "q", Received: received,
			Resource: "phone", StanzaID: "id-1", StanzaType: "normal", WantsReceipt: true},
		{Dir: ToXMPP, JID: alice, Peer: 5, Text: "x", Received: received, MsgType: 2},
		{Dir: ToQQ, JID: alice, Peer: 6, Text: "<message/>", Received: received, RawStanza: true},
	}
	ids, err := s.EnqueueBatch(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i].ID = ids[i]
	}
	if got, err := s.Pending(ctx, alice, ToQQ); err != nil || !reflect.DeepEqual(got, []Item{in[0], in[2]}) {
		t.Errorf("Pending(ToQQ) = %+v, %v\nwant %+v", got, err, []Item{in[0], in[2]})
	}
	if got, err := s.Pending(ctx, alice, ToXMPP); err != nil || !reflect.DeepEqual(got, []Item{in[1]}) {
		t.Errorf("Pending(ToXMPP) = %+v, %v\nwant %+v", got, err, []Item{in[1]})
	}
}

// An ID is never handed out twice, even after the newest item was removed:
// a caller holding a stale ID can never remove someone else's message.
func TestQueueIDsNotReused(t *testing.T) { eachDriver(t, testQueueIDsNotReused) }

func testQueueIDsNotReused(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	id1, _ := s.Enqueue(ctx, Item{Dir: ToQQ, JID: alice, Peer: 1, Text: "a"})
	if err := s.Remove(ctx, id1); err != nil {
		t.Fatal(err)
	}
	id2, err := s.Enqueue(ctx, Item{Dir: ToQQ, JID: alice, Peer: 1, Text: "b"})
	if err != nil || id2 <= id1 {
		t.Errorf("ID after removing the newest = %d, %v; want > %d", id2, err, id1)
	}
}

func TestQueueValidation(t *testing.T) { eachDriver(t, testQueueValidation) }

func testQueueValidation(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	good := Item{Dir: ToXMPP, JID: alice, Peer: 1, Text: "x"}
	for name, mut := range map[string]func(*Item){
		"bad direction": func(it *Item) { it.Dir = 2 },
		"negative dir":  func(it *Item) { it.Dir = -1 },
		"empty jid":     func(it *Item) { it.JID = "" },
		"full jid":      func(it *Item) { it.JID = alice + "/res" },
		"zero peer":     func(it *Item) { it.Peer = 0 },
	} {
		it := good
		mut(&it)
		if _, err := s.Enqueue(ctx, it); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Enqueue = %v, want ErrInvalid", name, err)
		}
		if _, err := s.EnqueueBatch(ctx, []Item{good, it}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: EnqueueBatch = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Enqueue(ctx, Item{Dir: ToXMPP, JID: bob, Peer: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Enqueue for a stranger = %v, want ErrNotFound", err)
	}
	if n := queueLen(t, s); n != 0 {
		t.Errorf("%d refused items were queued", n)
	}
}

func TestEnqueueBatch(t *testing.T) { eachDriver(t, testEnqueueBatch) }

func testEnqueueBatch(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	mustRegister(t, s, bob, 10002)

	if ids, err := s.EnqueueBatch(ctx, nil); err != nil || len(ids) != 0 {
		t.Errorf("empty batch = %v, %v", ids, err)
	}
	batch := []Item{
		{Dir: ToXMPP, JID: alice, Peer: 5, Text: "m1"},
		{Dir: ToXMPP, JID: bob, Peer: 5, Text: "m2"},
		{Dir: ToXMPP, JID: alice, Peer: 6, Text: "m3"},
	}
	ids, err := s.EnqueueBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || !(ids[0] < ids[1] && ids[1] < ids[2]) {
		t.Fatalf("ids = %v", ids)
	}
	got, _ := s.Pending(ctx, alice, ToXMPP)
	if len(got) != 2 || got[0].ID != ids[0] || got[0].Text != "m1" || got[1].ID != ids[2] || got[1].Text != "m3" {
		t.Errorf("alice's pending = %+v", got)
	}
	// All received in one batch share one timestamp.
	if !got[0].Received.Equal(got[1].Received) {
		t.Errorf("batch timestamps differ: %v, %v", got[0].Received, got[1].Received)
	}

	// One item for an unregistered user fails the whole batch.
	bad := []Item{
		{Dir: ToXMPP, JID: alice, Peer: 5, Text: "lost 1"},
		{Dir: ToXMPP, JID: bob, Peer: 5, Text: "lost 2"},
		{Dir: ToXMPP, JID: "nobody@example.org", Peer: 5, Text: "lost 3"},
	}
	if ids, err := s.EnqueueBatch(ctx, bad); !errors.Is(err, ErrNotFound) || ids != nil {
		t.Errorf("batch with a stranger = %v, %v; want ErrNotFound", ids, err)
	}
	for _, jid := range []string{alice, bob} {
		items, _ := s.Pending(ctx, jid, ToXMPP)
		for _, it := range items {
			if strings.HasPrefix(it.Text, "lost") {
				t.Errorf("part of a failed batch was written: %+v", it)
			}
		}
	}
}

func TestDirectionString(t *testing.T) {
	for d, want := range map[Direction]string{ToXMPP: "to-xmpp", ToQQ: "to-qq", 5: "Direction(5)"} {
		if got := d.String(); got != want {
			t.Errorf("Direction(%d).String() = %q, want %q", int(d), got, want)
		}
	}
}

// Many goroutines enqueue, read and remove for different users at once;
// afterwards exactly the items that were not removed remain, in order.
func TestQueueConcurrent(t *testing.T) { eachDriver(t, testQueueConcurrent) }

func testQueueConcurrent(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	const users, workersPerUser, perWorker = 6, 3, 40
	jids := make([]string, users)
	for u := range jids {
		jids[u] = fmt.Sprintf("user%d@example.org", u)
		mustRegister(t, s, jids[u], int64(10000+u))
	}

	var mu sync.Mutex
	kept := map[string]map[int64]string{} // jid -> id -> text
	for _, jid := range jids {
		kept[jid] = map[int64]string{}
	}
	var wg sync.WaitGroup
	errs := make(chan error, users*workersPerUser)
	for u := 0; u < users; u++ {
		for w := 0; w < workersPerUser; w++ {
			wg.Add(1)
			go func(jid string, w int) {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					text := fmt.Sprintf("w%d-%d", w, i)
					var ids []int64
					var err error
					if i%5 == 0 {
						ids, err = s.EnqueueBatch(ctx, []Item{
							{Dir: ToXMPP, JID: jid, Peer: 1, Text: text + "a"},
							{Dir: ToXMPP, JID: jid, Peer: 1, Text: text + "b"},
						})
					} else {
						var id int64
						id, err = s.Enqueue(ctx, Item{Dir: ToXMPP, JID: jid, Peer: 1, Text: text})
						ids = []int64{id}
					}
					if err != nil {
						errs <- err
						return
					}
					if i%2 == 0 { // delivered at once
						for _, id := range ids {
							if err := s.Remove(ctx, id); err != nil {
								errs <- err
								return
							}
						}
					} else {
						mu.Lock()
						if len(ids) == 1 {
							kept[jid][ids[0]] = text
						} else {
							kept[jid][ids[0]], kept[jid][ids[1]] = text+"a", text+"b"
						}
						mu.Unlock()
					}
					if _, err := s.Pending(ctx, jid, ToXMPP); err != nil {
						errs <- err
						return
					}
				}
			}(jids[u], w)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent operation failed: %v", err)
	}

	for _, jid := range jids {
		items, err := s.Pending(ctx, jid, ToXMPP)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != len(kept[jid]) {
			t.Errorf("%s: %d pending, want %d", jid, len(items), len(kept[jid]))
		}
		for i, it := range items {
			if i > 0 && it.ID <= items[i-1].ID {
				t.Errorf("%s: not in ID order: %d after %d", jid, it.ID, items[i-1].ID)
			}
			if want, ok := kept[jid][it.ID]; !ok || it.Text != want || it.JID != jid {
				t.Errorf("%s: unexpected item %+v (want text %q, known %v)", jid, it, want, ok)
			}
		}
	}
}

// RemoveBatch removes exactly the given items in one go, skips ones already
// gone, and leaves every other item (of this user and others) in place.
func TestQueueRemoveBatch(t *testing.T) { eachDriver(t, testQueueRemoveBatch) }

func testQueueRemoveBatch(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	mustRegister(t, s, bob, 10002)
	var items []Item
	for i := 0; i < 6; i++ {
		items = append(items, Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: fmt.Sprintf("m%d", i)})
	}
	items = append(items, Item{Dir: ToXMPP, JID: bob, Peer: 20002, Text: "bob's"})
	ids, err := s.EnqueueBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	n, err := s.RemoveBatch(ctx, []int64{ids[0], ids[1], ids[2], ids[4]})
	if err != nil || n != 3 {
		t.Fatalf("RemoveBatch = %d, %v; want 3 removed (one was gone already)", n, err)
	}
	left, err := s.Pending(ctx, alice, ToXMPP)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, it := range left {
		texts = append(texts, it.Text)
	}
	if !reflect.DeepEqual(texts, []string{"m3", "m5"}) {
		t.Errorf("left for alice: %q, want [m3 m5]", texts)
	}
	if bobs, _ := s.Pending(ctx, bob, ToXMPP); len(bobs) != 1 {
		t.Errorf("bob's queue = %+v, want his item untouched", bobs)
	}
	if n, err := s.RemoveBatch(ctx, nil); n != 0 || err != nil {
		t.Errorf("RemoveBatch(nil) = %d, %v", n, err)
	}
}
