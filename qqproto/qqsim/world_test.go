package qqsim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qqxmpp/qqproto"
)

func TestDemoWorld(t *testing.T) {
	accts, err := LoadWorld("demo-world.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(DemoWorld()) != len(accts) {
		t.Fatal("DemoWorld differs from demo-world.toml")
	}
	m := newSim(t, Options{}, accts...)
	by := map[qqproto.UIN]Account{}
	for _, a := range accts {
		by[a.UIN] = a
	}
	// The documented password works; the file keeps no secret in memory.
	f := m.ok(10001, "Login", "PS="+qqproto.PasswordMD5("demo")+"&M5=1")
	if f.Get("RS") != "0" {
		t.Fatalf("demo login: %s", f)
	}
	text, _ := os.ReadFile("demo-world.toml")
	if !strings.Contains(string(text), `password "demo"`) {
		t.Error("the file's comments do not give the demo password")
	}

	// What the demo needs to show.
	var echo, busy, invisible, auth1, auth3, comma bool
	for _, a := range accts {
		echo = echo || a.Bot == BotEcho
		busy = busy || a.State == qqproto.StatusBusy
		invisible = invisible || a.State == qqproto.StatusInvisible
		auth1 = auth1 || a.Auth == 1
		auth3 = auth3 || a.Auth == 3
		comma = comma || strings.Contains(a.Nick, ",")
	}
	if !echo || !busy || !invisible || !auth1 || !auth3 || !comma {
		t.Errorf("demo world lacks a case: echo %v busy %v invisible %v auth1 %v auth3 %v comma %v",
			echo, busy, invisible, auth1, auth3, comma)
	}
	if pr := by[10001].Profile["PR"]; !strings.Contains(pr, ",") || !strings.Contains(pr, "\n") {
		t.Errorf("demo user's PR %q lacks a comma or a newline", pr)
	}
	p, _ := qqproto.ReadProfile(m.ok(10001, "GetInfo", "LV=3&UN=10001"))
	if p.About != by[10001].Profile["PR"] || p.City != "昆明" {
		t.Errorf("demo profile round trip: %+v", p)
	}

	// Its buddy list and who is online.
	uns, _, _ := qqproto.ReadList(m.ok(10001, "List", ""))
	if len(uns) != 6 {
		t.Errorf("demo buddies %v", uns)
	}
	online, _, _ := qqproto.ReadOnline(m.ok(10001, "Query_Stat", ""))
	var nicks []string
	for _, b := range online {
		nicks = append(nicks, b.Nick)
	}
	if got := strings.Join(nicks, "|"); got != "演示用户|微程|小明,小红&朋友们=好|忙碌的老王|回声机器人" {
		t.Errorf("demo online: %s", got)
	}
	m.send(10001, 10010, "你好")
	wantMsgs(t, m.msgs(10001), msg(9, 10010, "你好"))
}

func writeWorld(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "world.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadWorldErrors(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"unknown key", "[[account]]\nuin = 10001\npassword = \"x\"\nnickname = \"typo\"\n", `unknown key "account.nickname"`},
		{"unknown table", "[[acount]]\nuin = 10001\n", `unknown key "acount"`},
		{"bad auth", "[[account]]\nuin = 10001\npassword = \"x\"\nauth = 2\n", "account 1 (uin 10001): auth: is 2"},
		{"bad state", "[[account]]\nuin = 10001\npassword = \"x\"\nstate = 5\n", "state: is 5"},
		{"no password", "[[account]]\nuin = 10001\n", "password: must not be empty"},
		{"bad uin", "[[account]]\nuin = 12\npassword = \"x\"\n", "uin: 12 is not a QQ number"},
		{"duplicate", "[[account]]\nuin = 10001\npassword = \"x\"\n[[account]]\nuin = 10001\npassword = \"y\"\n", "account 2: uin: 10001 is defined twice"},
		{"dangling buddy", "[[account]]\nuin = 10001\npassword = \"x\"\nbuddies = [10002]\n", "buddies[0]: 10002 is not an account of this file"},
		{"profile key", "[[account]]\nuin = 10001\npassword = \"x\"\n[account.profile]\nZZ = \"1\"\n", "profile.ZZ: unknown GetInfo key"},
		{"profile type", "[[account]]\nuin = 10001\npassword = \"x\"\n[account.profile]\nAG = 30\n", "AG"},
		{"syntax", "[[account]\n", "toml: line"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeWorld(t, c.text)
			_, err := LoadWorld(p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %v does not name the file", err)
			}
		})
	}
	if _, err := LoadWorld(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestLoadWorldForwardBuddies(t *testing.T) {
	accts, err := LoadWorld(writeWorld(t, `
[[account]]
uin = 10001
password = "x"
buddies = [10003, 10002, 10003]
[[account]]
uin = 10002
password = "y"
state = 10
[[account]]
uin = 10003
password = "z"
[account.profile]
rn = "lower-case key"
`))
	if err != nil {
		t.Fatal(err)
	}
	if accts[2].Profile["RN"] != "lower-case key" || accts[1].State != qqproto.StatusOnline || accts[2].State != qqproto.StatusOffline {
		t.Errorf("accounts %+v", accts)
	}
	m := newSim(t, Options{}, accts...)
	if b := m.s.Session(10001).Buddies; len(b) != 2 || b[0] != 10002 || b[1] != 10003 {
		t.Errorf("buddies %v, want [10002 10003]", b)
	}
}
