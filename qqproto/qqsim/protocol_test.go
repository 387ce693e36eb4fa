package qqsim

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

const (
	alice qqproto.UIN = 10001
	bob   qqproto.UIN = 10002
	carol qqproto.UIN = 10003
	dave  qqproto.UIN = 10004
)

func fourFriends() []Account {
	return []Account{
		acct(alice, "阿丽斯", 0, bob, carol),
		acct(bob, "鲍勃", 0, alice),
		acct(carol, "卡罗尔", 0, alice),
		acct(dave, "戴夫", 0),
	}
}

func TestLogin(t *testing.T) {
	m := newSim(t, Options{PollInterval: 15 * time.Second, IdleTimeout: 90 * time.Second}, fourFriends()...)

	f := m.ok(alice, "Login", "PS="+strings.ToUpper(qqproto.PasswordMD5("pw"))+"&M5=1&LC=0123456789abcdef")
	if lr, err := qqproto.ReadLogin(f, alice); err != nil || lr.PollInterval != 15*time.Second || lr.IdleTimeout != 90*time.Second {
		t.Errorf("MD5 login (upper-case hex): %+v, %v (%s)", lr, err, f)
	}
	if s := m.s.Session(alice); !s.LoggedIn || s.LoginCode != "0123456789abcdef" || s.State != qqproto.StatusOnline {
		t.Errorf("session after login: %+v", s)
	}

	f = m.ok(bob, "Login", "PS=pw") // no M5=1: PS is the plaintext password
	if _, err := qqproto.ReadLogin(f, bob); err != nil {
		t.Errorf("plaintext login: %v (%s)", err, f)
	}

	f = m.ok(carol, "Login", "PS="+qqproto.PasswordMD5("wrong")+"&M5=1")
	_, err := qqproto.ReadLogin(f, carol)
	le, ok := err.(*qqproto.LoginError)
	if !ok || le.Reason != "密码错误" || le.Code != 1 {
		t.Errorf("wrong password: %v (%s)", err, f)
	}
	if m.s.Session(carol).LoggedIn {
		t.Error("a wrong password logged in")
	}
	if f = m.ok(carol, "Login", "M5=1"); f.Get("RS") != "1" {
		t.Errorf("no PS: %s", f)
	}

	if f = m.cmd(99999, "Login", "PS="+qqproto.PasswordMD5("pw")+"&M5=1"); res(f) != qqproto.ResInvalidUIN {
		t.Errorf("unknown number: %s", f)
	}
	if f = m.cmd(0, "Login", "PS=x"); res(f) != qqproto.ResInvalidUIN {
		t.Errorf("number 0: %s", f)
	}
}

func TestNotLoggedIn(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	for _, c := range []string{"List", "Query_Stat", "GetInfo", "AddToList", "Ack_AddToList", "DelFromList",
		"Change_Stat", "Logout", "GetMsgEx", "CLTMSG"} {
		if f := m.cmd(alice, c, "UN=10002&ST=10&CD=0&MG=hi"); res(f) != qqproto.ResNotLoggedIn {
			t.Errorf("%s before Login: %s, want RES=20", c, f)
		}
	}
	if len(m.s.Inbox(bob)) != 0 {
		t.Error("a CLTMSG without a session was delivered")
	}
}

func TestBadRequests(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(alice)

	resp, err := http.Get(m.srv.URL + "/?VER=1.1&CMD=Logout&SEQ=1&UIN=10001")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: HTTP %d Allow=%q, want 405 POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	for _, body := range []string{"", "hello world", "<html>", "VER=1.1&SEQ=1&UIN=10001"} {
		if code, reply := m.raw("text/plain", body); code != http.StatusBadRequest {
			t.Errorf("body %q: HTTP %d %q, want 400", body, code, reply)
		}
	}
	if code, _ := m.raw("text/plain", strings.Repeat("A=b&", 20000)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: HTTP %d, want 413", code)
	}
	for _, c := range []struct{ cmd, extra string }{
		{"Fly", ""},
		{"List", "TN=abc"},
		{"List", "UN=-1"},
		{"Query_Stat", "TN=x"},
		{"GetInfo", "LV=9&UN=10002"},
		{"Change_Stat", "ST=15"},
		{"Change_Stat", ""},
		{"Ack_AddToList", "UN=10002&CD=7"},
		{"Ack_AddToList", "UN=10002"},
		{"CLTMSG", "UN=10002"},
	} {
		if f := m.cmd(alice, c.cmd, c.extra); res(f) != ResBadRequest {
			t.Errorf("%s %s: %s, want RES=1", c.cmd, c.extra, f)
		}
	}
	for _, c := range []struct{ cmd, extra string }{
		{"GetInfo", "UN=99999"},
		{"AddToList", "UN=99999"},
		{"AddToList", "UN=10001"},
		{"AddToList", "UN=abc"},
		{"Ack_AddToList", "UN=99999&CD=2"},
		{"DelFromList", "UN=99999"},
		{"CLTMSG", "UN=99999&MG=hi"},
		{"CLTMSG", "MG=hi"},
	} {
		if f := m.cmd(alice, c.cmd, c.extra); res(f) != qqproto.ResInvalidUIN {
			t.Errorf("%s %s: %s, want RES=5", c.cmd, c.extra, f)
		}
	}
	// Command names are case-insensitive; the echo keeps the seed's forms.
	if f := m.ok(alice, "list", ""); f.Get("CMD") != "LIST" {
		t.Errorf("lower-case list echoes %q", f.Get("CMD"))
	}
	if f := m.ok(alice, "cltmsg", "UN=10002&MG=x"); f.Get("CMD") != "cltmsg" {
		t.Errorf("lower-case cltmsg echoes %q", f.Get("CMD"))
	}
}

func TestExpiry(t *testing.T) {
	const li = 2 * time.Second
	m := newSim(t, Options{IdleTimeout: li}, fourFriends()...)
	if f := m.ok(bob, "Login", "PS=pw"); f.Get("LI") != "2" {
		t.Fatalf("Login LI: %s", f)
	}
	m.login(alice)
	wantMsgs(t, m.msgs(bob), msg(99, alice, "10 "))

	// Bob keeps polling, Alice falls silent.
	for range 3 {
		m.clock.Advance(li * 3 / 4)
		m.msgs(bob)
	}
	if m.s.Session(alice).LoggedIn {
		t.Fatal("alice still logged in after more than LI of silence")
	}
	// Bob was told; the notice came while he polled.
	var states []string
	for _, it := range m.s.Inbox(bob) {
		if it.From == alice {
			states = append(states, it.Text)
		}
	}
	if strings.Join(states, "|") != "10 |20 " {
		t.Errorf("bob saw alice's states %q, want 10 then 20", states)
	}
	if f := m.cmd(alice, "GetMsgEx", ""); res(f) != qqproto.ResNotLoggedIn {
		t.Errorf("after expiry: %s, want RES=20", f)
	}
	if f := m.ok(bob, "Query_Stat", ""); strings.Contains(f.Get("UN"), alice.String()) {
		t.Errorf("expired alice still online: %s", f)
	}
	m.login(alice)
	if !m.s.Session(alice).LoggedIn {
		t.Error("login after expiry failed")
	}
}

// TestExpiryRealClock runs a 1 s LI on the real clock.
func TestExpiryRealClock(t *testing.T) {
	m := newSim(t, Options{IdleTimeout: time.Second, Now: time.Now}, fourFriends()...)
	m.login(alice)
	time.Sleep(1100 * time.Millisecond)
	if f := m.cmd(alice, "GetMsgEx", ""); res(f) != qqproto.ResNotLoggedIn {
		t.Errorf("after 1.1 s of silence with LI=1: %s, want RES=20", f)
	}
}

func TestSecondLoginReplaces(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(bob)
	m.login(alice)
	m.ok(alice, "Change_Stat", "ST=30")
	first := m.s.Session(alice)

	m.clock.Advance(time.Minute)
	m.login(alice)
	second := m.s.Session(alice)
	if second.Logins != 2 || !second.Since.After(first.Since) || second.State != qqproto.StatusOnline {
		t.Errorf("after second login %+v (first %+v)", second, first)
	}
	// Bob saw busy, then online again: one session's state replaced the other's.
	wantMsgs(t, m.msgs(bob), msg(99, alice, "10 "), msg(99, alice, "30 "), msg(99, alice, "10 "))
}

func TestListPaging(t *testing.T) {
	const n = 400
	var buddies []qqproto.UIN
	var accts []Account
	for i := range n {
		u := qqproto.UIN(20000 + i)
		buddies = append(buddies, u)
		st := qqproto.StatusOnline
		switch i % 4 {
		case 1:
			st = qqproto.StatusBusy
		case 2:
			st = qqproto.StatusOffline
		case 3:
			st = qqproto.StatusInvisible
		}
		accts = append(accts, acct(u, fmt.Sprintf("好友,%d", i), st))
	}
	// The user's number sits in the middle of its buddies' numbers.
	accts = append(accts, acct(20100, "me", 0))
	accts[100] = acct(90000, "not a buddy", qqproto.StatusOnline)
	buddies[100] = 90000
	me := qqproto.UIN(20100)
	accts[len(accts)-1].Buddies = buddies
	m := newSim(t, Options{}, accts...)
	m.login(me)

	var all []qqproto.UIN
	var sizes []int
	for start := 0; ; {
		f := m.ok(me, "List", fmt.Sprintf("TN=500&UN=%d", start))
		uns, page, err := qqproto.ReadList(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, uns...)
		sizes = append(sizes, page.Count)
		if page.Last {
			break
		}
		start += page.Count
	}
	if fmt.Sprint(sizes) != "[160 160 80]" || len(all) != n {
		t.Fatalf("List pages %v, %d buddies", sizes, len(all))
	}
	for i := 1; i < n; i++ {
		if all[i] <= all[i-1] {
			t.Fatalf("List not in number order at %d: %v", i, all[i-1:i+1])
		}
	}

	var online []qqproto.Buddy
	sizes = nil
	for start := 0; ; {
		f := m.ok(me, "Query_Stat", fmt.Sprintf("TN=160&UN=%d", start))
		bs, page, err := qqproto.ReadOnline(f)
		if err != nil {
			t.Fatal(err)
		}
		online = append(online, bs...)
		sizes = append(sizes, page.Count)
		if page.Last {
			break
		}
		start += page.Count
	}
	// 200 buddies are 10 or 30 (one of them is 90000, also online), plus the user.
	if fmt.Sprint(sizes) != "[50 50 50 50 1]" || len(online) != 201 {
		t.Fatalf("Query_Stat pages %v, %d entries", sizes, len(online))
	}
	self := 0
	for i, b := range online {
		if b.UIN == me {
			self++
			if online[i-1].UIN > me || online[i+1].UIN < me {
				t.Errorf("own number not in number order: %v", online[i-1:i+2])
			}
			continue
		}
		if b.Status != qqproto.StatusOnline && b.Status != qqproto.StatusBusy {
			t.Errorf("Query_Stat lists %d in state %d", b.UIN, b.Status)
		}
		if b.UIN != 90000 && b.Nick != fmt.Sprintf("好友,%d", b.UIN-20000) {
			t.Errorf("nick of %d = %q", b.UIN, b.Nick)
		}
	}
	if self != 1 {
		t.Errorf("own number listed %d times", self)
	}
	// A start past the end is an empty last page.
	f := m.ok(me, "List", "TN=160&UN=1000")
	if uns, page, err := qqproto.ReadList(f); err != nil || len(uns) != 0 || !page.Last {
		t.Errorf("List past the end: %v %+v %v", uns, page, err)
	}
}

func TestGetInfo(t *testing.T) {
	a := acct(alice, "阿丽斯", 0)
	a.Face = 27
	a.Profile = map[string]string{"RN": "王 & 李", "PR": "a,b=c&d%41\r\nline 2", "CT": "昆明", "MO": "139", "SX": "1", "AG": "30"}
	m := newSim(t, Options{}, a, acct(bob, "鲍勃", 0))
	m.login(bob)

	f := m.ok(bob, "GetInfo", "LV=2&UN=10001")
	if !strings.Contains(f.String(), "&PR=a%252cb%253dc%2526d%252541%0d%0aline 2&") {
		t.Errorf("PR not escaped twice as the seed: %s", f)
	}
	p, err := qqproto.ReadProfile(f)
	if err != nil {
		t.Fatal(err)
	}
	if p.UIN != alice || p.Nick != "阿丽斯" || p.Face != 27 || p.RealName != "王 & 李" || p.About != "a,b=c&d%41\r\nline 2" ||
		p.Sex != qqproto.SexFemale || p.Age != 30 || p.City != "" || p.Level != 2 {
		t.Errorf("LV=2 profile %+v", p)
	}
	p, _ = qqproto.ReadProfile(m.ok(bob, "GetInfo", "LV=3&UN=10001"))
	if p.City != "昆明" || p.Mobile != "139" || p.Level != 3 {
		t.Errorf("LV=3 profile %+v", p)
	}
	p, _ = qqproto.ReadProfile(m.ok(bob, "GetInfo", ""))
	if p.UIN != bob || p.Nick != "鲍勃" {
		t.Errorf("own profile %+v", p)
	}
}

// auth is a world with one account per auth mode, nobody in anyone's list.
func authWorld() []Account {
	open, ask, closed, auto := acct(bob, "open", 10), acct(carol, "ask", 10), acct(dave, "closed", 10), acct(10005, "auto", 10)
	ask.Auth, closed.Auth, auto.Auth = 1, 3, 1
	auto.OnAdd = OnAddApprove
	rej := acct(10006, "rejects", 10)
	rej.Auth, rej.OnAdd = 1, OnAddReject
	me := acct(alice, "me", 0)
	me.Auth = 1
	return []Account{me, open, ask, closed, auto, rej}
}

func listOf(t *testing.T, m *sim, uin qqproto.UIN) string {
	t.Helper()
	uns, _, err := qqproto.ReadList(m.ok(uin, "List", ""))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(uns)
}

func TestAddAuthModes(t *testing.T) {
	m := newSim(t, Options{}, authWorld()...)
	m.login(alice)
	m.login(carol)

	add := func(who qqproto.UIN) qqproto.AddResult {
		t.Helper()
		f := m.ok(alice, "AddToList", fmt.Sprintf("UN=%d", who))
		if f.Get("UN") != who.String() {
			t.Errorf("AddToList reply UN=%q", f.Get("UN"))
		}
		cd, err := qqproto.ReadAdd(f)
		if err != nil {
			t.Fatal(err)
		}
		return cd
	}

	// Auth 0: added at once, one way.
	if cd := add(bob); cd != qqproto.AddAccepted {
		t.Fatalf("auth 0: CD=%d", cd)
	}
	if l := listOf(t, m, alice); l != "[10002]" {
		t.Errorf("after adding bob: %s", l)
	}
	if l := m.s.Session(bob).Buddies; len(l) != 0 {
		t.Errorf("adding bob changed bob's own list: %v", l)
	}

	// Auth 3: refused, and so is a request.
	if cd := add(dave); cd != qqproto.AddRefused {
		t.Fatalf("auth 3: CD=%d", cd)
	}
	if f := m.cmd(alice, "Ack_AddToList", "UN=10004&CD=2&RS=please"); res(f) != ResRefused {
		t.Errorf("request to auth 3: %s, want RES=3", f)
	}
	if len(m.s.Inbox(dave)) != 0 {
		t.Error("auth-3 account received a request")
	}

	// Auth 1: CD=1; the request reaches carol as MT=2 with its reason.
	if cd := add(carol); cd != qqproto.AddNeedsAuth {
		t.Fatalf("auth 1: CD=%d", cd)
	}
	if l := listOf(t, m, alice); l != "[10002]" {
		t.Errorf("CD=1 added at once: %s", l)
	}
	m.ok(alice, "Ack_AddToList", "UN=10003&CD=2&RS="+qqproto.Escape("我是阿丽斯, 加我吧 & 谢谢"))
	wantMsgs(t, m.msgs(carol), msg(2, alice, "我是阿丽斯, 加我吧 & 谢谢"))
	// Carol refuses: alice gets MT=4 with the reason, her list is unchanged.
	m.ok(carol, "Ack_AddToList", "UN=10001&CD=1&RS="+qqproto.Escape("不认识你"))
	wantMsgs(t, m.msgs(alice), msg(4, carol, "不认识你"))
	if l := listOf(t, m, alice); l != "[10002]" {
		t.Errorf("refused request added: %s", l)
	}
	// Answering again, with nothing pending, changes nothing.
	m.ok(carol, "Ack_AddToList", "UN=10001&CD=0")
	if l := listOf(t, m, alice); l != "[10002]" {
		t.Errorf("approval of a refused request added: %s", l)
	}
	// Alice asks again; carol approves: MT=3, and carol is in alice's list.
	m.ok(alice, "Ack_AddToList", "UN=10003&CD=2&RS=again")
	wantMsgs(t, m.msgs(carol), msg(2, alice, "again"))
	m.ok(carol, "Ack_AddToList", "UN=10001&CD=0&RS=")
	wantMsgs(t, m.msgs(alice), msg(3, carol, ""))
	if l := listOf(t, m, alice); l != "[10002 10003]" {
		t.Errorf("after approval: %s", l)
	}
	if l := m.s.Session(carol).Buddies; len(l) != 0 {
		t.Errorf("approval changed the approver's list: %v", l)
	}

	// Simulated accounts that answer by themselves.
	if cd := add(10005); cd != qqproto.AddNeedsAuth {
		t.Fatalf("auto: CD=%d", cd)
	}
	m.ok(alice, "Ack_AddToList", "UN=10005&CD=2&RS=hi")
	m.ok(alice, "Ack_AddToList", "UN=10006&CD=2&RS=hi")
	wantMsgs(t, m.msgs(alice), msg(3, 10005, ""), msg(4, 10006, autoRejectText))
	if l := listOf(t, m, alice); l != "[10002 10003 10005]" {
		t.Errorf("after automatic answers: %s", l)
	}

	// A simulated account's request (alice's auth is 1) reaches her; she approves.
	if err := m.s.Ack(dave, alice, qqproto.AckRequest, "加个好友"); err != nil {
		t.Fatal(err)
	}
	wantMsgs(t, m.msgs(alice), msg(2, dave, "加个好友"))
	m.ok(alice, "Ack_AddToList", "UN=10004&CD=0")
	if got := m.s.Session(dave).Buddies; fmt.Sprint(got) != "[10001]" {
		t.Errorf("dave's list after alice approved: %v", got)
	}
	if in := m.s.Inbox(dave); len(in) != 1 || in[0].Type != qqproto.MsgAddAccepted || in[0].From != alice {
		t.Errorf("dave's inbox: %+v", in)
	}

	// DelFromList removes one way; deleting again is fine.
	m.ok(alice, "DelFromList", "UN=10002")
	m.ok(alice, "DelFromList", "UN=10002")
	if l := listOf(t, m, alice); l != "[10003 10005]" {
		t.Errorf("after delete: %s", l)
	}
}
