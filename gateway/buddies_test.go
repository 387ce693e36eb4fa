package gateway

import (
	"testing"
	"unsafe"

	"qqxmpp/qqproto"
)

// The list stays sorted, finds what it holds, and a buddy handed out
// earlier is still the list's own after others were added and removed.
func TestBuddyListKeepsOrderAndIdentity(t *testing.T) {
	var l buddyList
	first := l.add(500)
	first.nick = "kept"
	for _, u := range []qqproto.UIN{900, 100, 700, 300, 500, 200} {
		l.add(u)
	}
	l.remove(700)
	l.remove(42) // not there
	var got []qqproto.UIN
	for _, b := range l {
		got = append(got, b.uin)
	}
	want := []qqproto.UIN{100, 200, 300, 500, 900}
	if len(got) != len(want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("list %v, want %v", got, want)
		}
	}
	if b := l.get(500); b != first || b.nick != "kept" {
		t.Errorf("buddy 500 is %+v, want the one added first", b)
	}
	if l.get(700) != nil || l.get(42) != nil {
		t.Error("a removed or never added buddy is found")
	}
	if b := l.add(100); b.status != qqproto.StatusOffline || len(l) != 5 {
		t.Errorf("adding a known buddy again: %+v, %d buddies", b, len(l))
	}
}

// A buddy's record is what a session holds per buddy: its size is the
// per-buddy memory figure of docs/benchmarks.md.
func TestBuddyRecordStaysSmall(t *testing.T) {
	if n := unsafe.Sizeof(buddy{}); n > 48 {
		t.Errorf("a buddy record takes %d bytes, want at most 48 (a malloc size class)", n)
	}
}

// What the buddy's JID last showed is compared as the full presence was:
// a new nickname, picture, state or availability is a change; the same
// nickname set again is not; an unavailable presence carries no nickname.
func TestBuddyShowsWhatWasLastSent(t *testing.T) {
	b := &buddy{uin: 10001, status: qqproto.StatusOnline}
	b.setProfile("小明", 3)
	if b.shows(presenceFor(b)) {
		t.Fatal("a buddy never shown counts as shown")
	}
	b.record(presenceFor(b))
	if !b.shows(presenceFor(b)) {
		t.Fatal("what was just recorded does not count as shown")
	}
	b.setProfile("小明", 3)
	if !b.shows(presenceFor(b)) {
		t.Error("the same nickname set again counts as a change")
	}
	b.setProfile("小明明", 3)
	if b.shows(presenceFor(b)) {
		t.Error("a new nickname does not count as a change")
	}
	b.record(presenceFor(b))
	if avatarPicture(6) == avatarPicture(3) {
		t.Fatal("faces 3 and 6 share a picture: pick others")
	}
	b.setProfile("小明明", 6)
	if b.shows(presenceFor(b)) {
		t.Error("a new avatar picture does not count as a change")
	}
	b.record(presenceFor(b))
	b.status = qqproto.StatusBusy
	if b.shows(presenceFor(b)) {
		t.Error("online to busy does not count as a change")
	}
	b.status = qqproto.StatusOffline
	if b.shows(presenceFor(b)) {
		t.Error("going offline does not count as a change")
	}
	b.record(presenceFor(b))
	b.setProfile("别的", 9)
	if !b.shows(presenceFor(b)) {
		t.Error("an offline buddy's new nickname counts as a change of its unavailable presence")
	}
	b.record(shownPresence{})
	if !b.shows(shownPresence{}) {
		t.Error("nothing shown is not what was recorded as nothing shown")
	}
}
