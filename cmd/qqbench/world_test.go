package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qqxmpp/qqproto/qqsim"
)

func TestWorldIsValidForQQSim(t *testing.T) {
	w, err := newWorld(50, 20)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := w.writeTOML(&b); err != nil {
		t.Fatal(err)
	}
	accts, err := qqsim.ParseWorld(b.String())
	if err != nil {
		t.Fatalf("qqsim rejects the generated world: %v", err)
	}
	if len(accts) != 50 {
		t.Fatalf("%d accounts, want 50", len(accts))
	}
	lists := map[int]map[int]bool{}
	for _, a := range accts {
		i, ok := w.index(a.UIN)
		if !ok {
			t.Fatalf("account %d is not a bench user", a.UIN)
		}
		if a.Password != w.qqPassword(i) {
			t.Errorf("account %d: password %q, want %q", a.UIN, a.Password, w.qqPassword(i))
		}
		if len(a.Buddies) != 20 {
			t.Errorf("account %d has %d buddies, want 20", a.UIN, len(a.Buddies))
		}
		lists[i] = map[int]bool{}
		for _, u := range a.Buddies {
			j, _ := w.index(u)
			lists[i][j] = true
		}
	}
	for i, l := range lists {
		if !l[w.partner(i)] {
			t.Errorf("user %d's chat partner %d is not its buddy", i, w.partner(i))
		}
		for j := range l {
			if !lists[j][i] {
				t.Errorf("user %d lists %d but not the other way round", i, j)
			}
		}
	}
}

func TestWorldEveryoneAndLimits(t *testing.T) {
	w, err := newWorld(20, 19)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.buddies(5); len(got) != 19 {
		t.Errorf("with buddies = users-1 user 5 has %d buddies, want 19", len(got))
	}
	for _, c := range [][2]int{{21, 4}, {20, 20}, {20, 5}, {0, 0}} {
		if _, err := newWorld(c[0], c[1]); err == nil {
			t.Errorf("newWorld(%d users, %d buddies) accepted", c[0], c[1])
		}
	}
}

func TestAccountFiles(t *testing.T) {
	if got := prosodyEncode("qq.local-host"); got != "qq%2elocal%2dhost" {
		t.Errorf("prosodyEncode = %q", got)
	}
	dir := t.TempDir()
	aw, err := newAccountWriter(dir, "my.host")
	if err != nil {
		t.Fatal(err)
	}
	if err := aw.write("Foo.Bar", `pa"ss\`); err != nil {
		t.Fatal(err)
	}
	// What prosodyctl register writes for the same user (Prosody 0.12.3).
	data, err := os.ReadFile(filepath.Join(dir, "my%2ehost", "accounts", "foo%2ebar.dat"))
	if err != nil {
		t.Fatal(err)
	}
	want := "return {\n\t[\"password\"] = \"pa\\\"ss\\\\\";\n};\n"
	if string(data) != want {
		t.Errorf("account file:\n%s\nwant:\n%s", data, want)
	}
}

func TestRosterFile(t *testing.T) {
	w, err := newWorld(10, 4)
	if err != nil {
		t.Fatal(err)
	}
	got := string(w.rosterFile(0))
	// The transport and the four ring neighbours, each "both", in the
	// layout Prosody 0.12 itself writes (see a roster after a handshake).
	for _, j := range []string{"qq.localhost", "100001@qq.localhost", "100009@qq.localhost", "100002@qq.localhost", "100008@qq.localhost"} {
		if !strings.Contains(got, "\t[\""+j+"\"] = {\n\t\t[\"subscription\"] = \"both\";\n\t\t[\"groups\"] = {};\n\t};\n") {
			t.Errorf("roster of user 0 has no item %s:\n%s", j, got)
		}
	}
	if n := strings.Count(got, `"both"`); n != 5 {
		t.Errorf("%d items, want 5 (the transport and 4 buddies)", n)
	}
	if !strings.HasPrefix(got, "return {\n\t[false] = {\n") || !strings.HasSuffix(got, "};\n") {
		t.Errorf("not a Prosody data file:\n%s", got)
	}
}
