package qqsim

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"qqxmpp/qqproto"
)

func TestStateNotices(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(bob)   // lists alice
	m.login(carol) // lists alice
	m.login(dave)  // does not list alice
	m.login(alice)
	m.ok(alice, "Change_Stat", "ST=30")
	m.ok(alice, "Change_Stat", "ST=30") // no change: no notice
	m.ok(alice, "Change_Stat", "ST=40") // invisible looks offline
	m.ok(alice, "Change_Stat", "ST=20")
	m.ok(alice, "Change_Stat", "ST=10")
	m.ok(carol, "Logout", "")
	m.ok(alice, "Logout", "")
	wantMsgs(t, m.msgs(bob),
		msg(99, alice, "10 "), msg(99, alice, "30 "), msg(99, alice, "20 "), msg(99, alice, "10 "), msg(99, alice, "20 "))
	for _, ms := range m.msgs(bob) {
		t.Errorf("second poll got %+v", ms)
	}
	if len(m.msgs(dave)) != 0 {
		t.Error("dave does not list alice but got her notices")
	}
	// Carol logged out before polling: the notices she had not fetched
	// went with her session (stale by her next login), and alice's own
	// logout came after hers.
	m.login(carol)
	if ms := m.msgs(carol); len(ms) != 0 {
		t.Errorf("stale notices after a new login: %v", ms)
	}

	// The notices read as states through the codec.
	m.login(alice)
	for _, ms := range m.msgs(bob) {
		if st, ok := ms.State(); !ok || st != qqproto.StatusOnline {
			t.Errorf("notice %+v does not read as online", ms)
		}
	}
	// A simulated account's state change reaches logged-in watchers too.
	if err := m.s.SetState(carol, qqproto.StatusBusy); err != nil {
		t.Fatal(err)
	}
	// Notices queued before alice's logout went with her session: only
	// the change since her new login is news.
	wantMsgs(t, m.msgs(alice), msg(99, carol, "30 "))
	f := m.ok(alice, "Query_Stat", "")
	if f.Get("UN") != "10001,10002,10003," || f.Get("ST") != "10,10,30," {
		t.Errorf("Query_Stat: %s", f)
	}
}

func TestOfflineQueue(t *testing.T) {
	m := newSim(t, Options{MaxMessages: 20}, fourFriends()...)
	m.login(alice)
	for i := range 25 {
		m.send(alice, dave, fmt.Sprintf("消息 %d", i)) // dave is offline and not a buddy
	}
	if q := m.s.Session(dave).Queued; q != 25 {
		t.Fatalf("dave's queue holds %d", q)
	}
	m.login(dave)
	first, second := m.msgs(dave), m.msgs(dave)
	if len(first) != 20 || len(second) != 5 || len(m.msgs(dave)) != 0 {
		t.Fatalf("polls got %d, %d", len(first), len(second))
	}
	for i, ms := range append(first, second...) {
		if ms != msg(9, alice, fmt.Sprintf("消息 %d", i)) {
			t.Errorf("item %d = %+v", i, ms)
		}
	}
	// The queue outlives logout.
	m.ok(dave, "Logout", "")
	m.send(alice, dave, "still there")
	m.login(dave)
	wantMsgs(t, m.msgs(dave), msg(9, alice, "still there"))
}

func TestMessageText(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(alice)
	m.login(bob)
	texts := []string{
		"hello, world",
		"a&UN=99999&MG=evil",
		"100% = 1+1",
		"line 1\r\nline 2\n",
		"  spaces  ",
		"你好，世界！😀",
		"%zz %4",
	}
	for _, tx := range texts {
		m.send(alice, bob, tx)
	}
	var want []qqproto.Message
	for _, tx := range texts {
		want = append(want, msg(9, alice, tx))
	}
	wantMsgs(t, m.msgs(bob), want...)
	for _, it := range m.s.Inbox(bob) {
		if it.From != alice {
			t.Errorf("inbox item from %d", it.From)
		}
	}

	// Form encoding: '+' is a space there, and %XX decodes.
	code, reply := m.raw("application/x-www-form-urlencoded",
		"VER=1.1&CMD=CLTMSG&SEQ=9001&UIN=10001&UN=10002&MG=a+b%2Bc%E4%BD%A0")
	if code != http.StatusOK || !strings.HasSuffix(reply, "RES=0") {
		t.Fatalf("form CLTMSG: %d %s", code, reply)
	}
	// text/plain: '+' stays.
	m.line("VER=1.1&CMD=CLTMSG&SEQ=9002&UIN=10001&UN=10002&MG=a+b")
	wantMsgs(t, m.msgs(bob), msg(9, alice, "a b+c你"), msg(9, alice, "a+b"))
}

func TestEchoBot(t *testing.T) {
	bot := acct(10010, "回声机器人", qqproto.StatusOnline)
	bot.Bot = BotEcho
	bot2 := acct(10011, "另一个机器人", qqproto.StatusOnline)
	bot2.Bot = BotEcho
	m := newSim(t, Options{}, append(fourFriends(), bot, bot2)...)
	m.login(alice)
	m.send(alice, 10010, "你好, bot & co")
	m.send(alice, 10010, "again")
	wantMsgs(t, m.msgs(alice), msg(9, 10010, "你好, bot & co"), msg(9, 10010, "again"))
	if in := m.s.Inbox(10010); len(in) != 2 || in[0].Text != "你好, bot & co" || in[0].From != alice {
		t.Errorf("bot inbox %+v", in)
	}
	if q := m.s.Session(10010).Queued; q != 0 {
		t.Errorf("a bot queues what it reads: %d", q)
	}
	// Two echo bots answer once, not forever.
	if err := m.s.Send(10010, 10011, "ping"); err != nil {
		t.Fatal(err)
	}
	if n1, n2 := len(m.s.Inbox(10010)), len(m.s.Inbox(10011)); n1 != 3 || n2 != 1 {
		t.Errorf("bot ping-pong: inboxes %d and %d", n1, n2)
	}
}

// TestReplay: a repeated request is answered from memory and not executed.
func TestReplay(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(alice)
	m.login(bob)
	req := "VER=1.1&CMD=CLTMSG&SEQ=4242&UIN=10001&UN=10002&MG=" + qqproto.Escape("只一次, once")
	r1 := m.line(req)
	_, r2 := m.raw("application/x-www-form-urlencoded", req) // same fields, other encoding
	if r1 != r2 {
		t.Errorf("replayed reply %q differs from %q", r2, r1)
	}
	if in := m.s.Inbox(bob); len(in) != 1 {
		t.Fatalf("bob received %d messages, want 1", len(in))
	}
	recs := m.s.Requests(alice)
	last := recs[len(recs)-2:]
	if !last[0].Executed || last[0].Replayed || last[1].Executed || !last[1].Replayed || last[1].Seq != "4242" || last[1].Cmd != "CLTMSG" {
		t.Errorf("request log %+v", last)
	}

	// A lost GetMsgEx reply: the retry returns the same items again, and
	// they have left the queue.
	g1 := m.line("VER=1.1&CMD=GetMsgEx&SEQ=77&UIN=10002")
	g2 := m.line("VER=1.1&CMD=GetMsgEx&SEQ=77&UIN=10002")
	if g1 != g2 || !strings.Contains(g1, "MN=1") {
		t.Errorf("GetMsgEx retry: %q then %q", g1, g2)
	}
	if ms := m.msgs(bob); len(ms) != 0 {
		t.Errorf("fetched items still queued: %v", ms)
	}

	// The same SEQ with other fields is a new request, executed.
	m.line("VER=1.1&CMD=CLTMSG&SEQ=4242&UIN=10001&UN=10002&MG=different")
	if in := m.s.Inbox(bob); len(in) != 2 || in[1].Text != "different" {
		t.Errorf("SEQ reused for another message: inbox %+v", in)
	}
	// Another command with the same SEQ is no repeat either.
	if f, _ := qqproto.Parse(m.line("VER=1.1&CMD=List&SEQ=4242&UIN=10001")); f.Get("CMD") != "LIST" {
		t.Errorf("List with a CLTMSG's SEQ: %s", f)
	}
	// An empty SEQ is never remembered.
	m.line("VER=1.1&CMD=CLTMSG&SEQ=&UIN=10001&UN=10002&MG=x")
	m.line("VER=1.1&CMD=CLTMSG&SEQ=&UIN=10001&UN=10002&MG=x")
	if in := m.s.Inbox(bob); len(in) != 4 {
		t.Errorf("empty SEQ: inbox has %d, want 4", len(in))
	}

	// The memory belongs to the number, not to one login: a client that
	// logged in again and repeats its last CLTMSG with the stored SEQ gets
	// the remembered reply, not a second delivery.
	once := "VER=1.1&CMD=CLTMSG&SEQ=4343&UIN=10001&UN=10002&MG=before+the+crash"
	m.line(once)
	m.login(alice)
	m.line(once)
	if in := m.s.Inbox(bob); len(in) != 5 {
		t.Errorf("after re-login: inbox has %d, want 5 (the repeat answered from memory)", len(in))
	}
	m.msgs(bob)
	// Likewise a GetMsgEx whose replies were lost, asked again after a new
	// Login: the same items, though they left the queue.
	m.send(alice, bob, "fetched, reply lost")
	g3 := m.line("VER=1.1&CMD=GetMsgEx&SEQ=78&UIN=10002")
	m.login(bob)
	if g4 := m.line("VER=1.1&CMD=GetMsgEx&SEQ=78&UIN=10002"); g4 != g3 || !strings.Contains(g4, "MN=1&") {
		t.Errorf("GetMsgEx asked again after re-login: %q, first reply %q", g4, g3)
	}
	// Memory lasts ReplayWindow (5 minutes).
	m.clock.Advance(4 * 60e9)
	m.line(once)
	if in := m.s.Inbox(bob); len(in) != 6 {
		t.Errorf("within the window: inbox has %d, want 6", len(in))
	}
	m.clock.Advance(2 * 60e9)
	m.msgs(alice)
	m.line(once)
	if in := m.s.Inbox(bob); len(in) != 7 {
		t.Errorf("after the window: inbox has %d, want 7", len(in))
	}
	// A Login repeated is itself answered from memory, not a new session.
	login := "VER=1.1&CMD=Login&SEQ=31&UIN=10001&PS=pw"
	m.line(login)
	n := m.s.Session(alice).Logins
	m.line(login)
	if m.s.Session(alice).Logins != n {
		t.Error("a repeated Login executed again")
	}

}
