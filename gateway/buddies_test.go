package gateway

import (
	"testing"

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
