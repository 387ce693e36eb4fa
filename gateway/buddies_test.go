package gateway

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"qqxmpp/qqproto"
)

// The list stays sorted, finds what it holds, and a buddy handed out
// earlier is still the list's own after others were added and removed.
func TestBuddyListKeepsOrderAndIdentity(t *testing.T) {
	var l buddyList
	first := l.add(500)
	l.setProfile(first, "kept", 0)
	for _, u := range []qqproto.UIN{900, 100, 700, 300, 500, 200} {
		l.add(u)
	}
	l.remove(700)
	l.remove(42) // not there
	var got []qqproto.UIN
	for b := range l.all() {
		got = append(got, b.uin)
	}
	if want := []qqproto.UIN{100, 200, 300, 500, 900}; !slices.Equal(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	if b := l.get(500); b != first || l.nick(b) != "kept" {
		t.Errorf("buddy 500 is %+v (%q), want the one added first", b, l.nick(b))
	}
	if l.get(700) != nil || l.get(42) != nil {
		t.Error("a removed or never added buddy is found")
	}
	if b := l.add(100); qqproto.Status(b.status) != qqproto.StatusOffline || len(l.order) != 5 {
		t.Errorf("adding a known buddy again: %+v, %d buddies", b, len(l.order))
	}
}

// Records handed out stay the list's own while the list grows over many
// blocks, as an import that lists more buddies than reserved makes it.
func TestBuddyListGrowsWithoutMovingRecords(t *testing.T) {
	var l buddyList
	l.reserve(3)
	held := map[qqproto.UIN]*buddy{}
	for i := range 5000 {
		u := qqproto.UIN((i * 7919) % 100003) // not in order
		b := l.add(u)
		held[u] = b
		l.setProfile(b, fmt.Sprintf("nick %d", u), i)
	}
	for u, b := range held {
		b.setListed(true) // through the pointer handed out first
		got := l.get(u)
		if got != b || !got.listed() || l.nick(got) != fmt.Sprintf("nick %d", u) {
			t.Fatalf("buddy %d: got %p %q, handed out %p", u, got, l.nick(got), b)
		}
	}
	if len(l.order) != len(held) || len(l.blocks) > 32 {
		t.Errorf("%d buddies in %d blocks, want %d in a few", len(l.order), len(l.blocks), len(held))
	}
	if !slices.IsSortedFunc(l.snapshot(), func(a, b *buddy) int { return cmp.Compare(a.uin, b.uin) }) {
		t.Error("the list is out of order")
	}
}

// A list that has used every block a reference can name copies its
// records into one block and goes on: every buddy keeps its number,
// place in the order and nickname.
func TestBuddyListMergesWhenOutOfBlocks(t *testing.T) {
	var l buddyList
	for i := range maxBlocks {
		l.blocks = append(l.blocks, make([]buddy, 0, 1)) // full after one buddy each
		b := l.add(qqproto.UIN(2 * (maxBlocks - i)))     // in reverse, so the order is not the blocks'
		l.setProfile(b, fmt.Sprint("n", b.uin), 0)
	}
	if len(l.blocks) != maxBlocks {
		t.Fatalf("%d blocks, want %d", len(l.blocks), maxBlocks)
	}
	b := l.add(1)
	l.setProfile(b, "n1", 0)
	if len(l.blocks) != 1 || len(l.order) != maxBlocks+1 {
		t.Fatalf("after the merge: %d blocks, %d buddies", len(l.blocks), len(l.order))
	}
	prev := qqproto.UIN(0)
	for b := range l.all() {
		if b.uin <= prev || l.nick(b) != fmt.Sprint("n", b.uin) || l.get(b.uin) != b {
			t.Fatalf("after the merge buddy %d (after %d) is called %q", b.uin, prev, l.nick(b))
		}
		prev = b.uin
	}
}

// A nickname longer than a record can point to is cut as the gateway cuts
// any text (on a character boundary, with the cut mark), not wrapped round.
func TestBuddyNicknameLongerThanARecordTakes(t *testing.T) {
	var l buddyList
	b := l.add(1)
	long := strings.Repeat("名", 30000) // 90,000 bytes
	l.setProfile(b, long, 0)
	got := l.nick(b)
	kept, marked := strings.CutSuffix(got, cutMark)
	if !marked || len(got) > math.MaxUint16 || len(kept) < math.MaxUint16-len(cutMark)-utf8.UTFMax || !strings.HasPrefix(long, kept) || !utf8.ValidString(got) {
		t.Errorf("a 90,000-byte nickname became %d bytes (cut mark: %v, a prefix before it: %v)", len(got), marked, strings.HasPrefix(long, kept))
	}
}

// Nicknames changed again and again are rewritten into a string of the
// right size, every buddy keeping its own; a string handed out before
// stays what it was, and a removed buddy has no nickname.
func TestBuddyNicknamesSurviveRewrites(t *testing.T) {
	var l buddyList
	for u := range qqproto.UIN(10) {
		l.setProfile(l.add(u), "初始", 1)
	}
	old := l.nick(l.get(3))
	gone := l.get(9)
	l.remove(9)
	for round := range 200 {
		for u := range qqproto.UIN(9) {
			l.setProfile(l.get(u), fmt.Sprintf("昵称 %d/%d", u, round), 1)
		}
	}
	for u := range qqproto.UIN(9) {
		if got, want := l.nick(l.get(u)), fmt.Sprintf("昵称 %d/199", u); got != want {
			t.Errorf("buddy %d is called %q, want %q", u, got, want)
		}
	}
	if old != "初始" {
		t.Errorf("a nickname handed out before the rewrites became %q", old)
	}
	if l.nick(gone) != "" {
		t.Errorf("a removed buddy is called %q", l.nick(gone))
	}
	if live := 9 * len("昵称 0/199"); l.names.Len() > 2*live+256 {
		t.Errorf("the names take %d bytes for %d bytes of nicknames", l.names.Len(), live)
	}
	if l.fit(); l.names.Cap() > l.names.Len()+64 {
		t.Errorf("after fit the names hold %d bytes for %d", l.names.Cap(), l.names.Len())
	}
}

// A buddy's record is what a session holds per buddy: its size is the
// per-buddy memory figure of docs/benchmarks.md, and with no pointer in it
// the collector never scans the blocks.
func TestBuddyRecordStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(buddy{}); n > 24 {
		t.Errorf("a buddy record takes %d bytes, want at most 24", n)
	}
	rt := reflect.TypeFor[buddy]()
	for i := range rt.NumField() {
		switch f := rt.Field(i); f.Type.Kind() {
		case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan:
			t.Errorf("buddy.%s is a %s: the record would hold a pointer", f.Name, f.Type.Kind())
		}
	}
}

// A state QQ does not define shows the buddy offline, as it did when
// the record kept the number.
func TestBuddyUnknownStateIsOffline(t *testing.T) {
	var l buddyList
	b := l.add(10001)
	b.setState(qqproto.StatusOnline)
	b.setState(qqproto.Status(266)) // 10 once cut to a byte
	if st := qqproto.Status(b.status); st != qqproto.StatusOffline || l.presence(b).available {
		t.Errorf("state 266 is kept as %v, shown available: %v", st, l.presence(b).available)
	}
}

// What the buddy's JID last showed is compared as the full presence was:
// a new nickname, picture, state or availability is a change; the same
// nickname set again is not; an unavailable presence carries no nickname.
func TestBuddyShowsWhatWasLastSent(t *testing.T) {
	var l buddyList
	b := l.add(10001)
	b.setState(qqproto.StatusOnline)
	l.setProfile(b, "小明", 3)
	if b.shows(l.presence(b)) {
		t.Fatal("a buddy never shown counts as shown")
	}
	b.record(l.presence(b))
	if !b.shows(l.presence(b)) {
		t.Fatal("what was just recorded does not count as shown")
	}
	l.setProfile(b, "小明", 3)
	if !b.shows(l.presence(b)) {
		t.Error("the same nickname set again counts as a change")
	}
	l.setProfile(b, "小明明", 3)
	if b.shows(l.presence(b)) {
		t.Error("a new nickname does not count as a change")
	}
	b.record(l.presence(b))
	if avatarPicture(6) == avatarPicture(3) {
		t.Fatal("faces 3 and 6 share a picture: pick others")
	}
	l.setProfile(b, "小明明", 6)
	if b.shows(l.presence(b)) {
		t.Error("a new avatar picture does not count as a change")
	}
	b.record(l.presence(b))
	b.setState(qqproto.StatusBusy)
	if b.shows(l.presence(b)) {
		t.Error("online to busy does not count as a change")
	}
	b.setState(qqproto.StatusOffline)
	if b.shows(l.presence(b)) {
		t.Error("going offline does not count as a change")
	}
	b.record(l.presence(b))
	l.setProfile(b, "别的", 9)
	if !b.shows(l.presence(b)) {
		t.Error("an offline buddy's new nickname counts as a change of its unavailable presence")
	}
	b.record(shownPresence{})
	if !b.shows(shownPresence{}) {
		t.Error("nothing shown is not what was recorded as nothing shown")
	}
}
