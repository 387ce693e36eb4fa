package qqproto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
)

// These tests run the Client against the emulator over real loopback HTTP.

type simWorld struct {
	sim *qqsim.Server
	srv *httptest.Server
	hc  *http.Client       // for the emulator's control requests
	tr  *qqproto.Transport // for the Clients under test
}

func newSim(t testing.TB, accts ...qqsim.Account) *simWorld {
	t.Helper()
	sim := qqsim.New(qqsim.Options{})
	for _, a := range accts {
		if err := sim.AddAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	return serveSim(t, sim, sim)
}

func serveSim(t testing.TB, sim *qqsim.Server, h http.Handler) *simWorld {
	t.Helper()
	srv := httptest.NewServer(h)
	hc := &http.Client{}
	tr := qqproto.NewTransport()
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		tr.CloseIdleConnections()
		srv.Close()
	})
	return &simWorld{sim: sim, srv: srv, hc: hc, tr: tr}
}

func (w *simWorld) client(uin qqproto.UIN, opts qqproto.Options) *qqproto.Client {
	opts.Server = w.srv.URL
	if opts.Transport == nil {
		opts.Transport = w.tr
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Millisecond
	}
	return qqproto.NewClient(uin, opts)
}

func (w *simWorld) login(t testing.TB, uin qqproto.UIN, password string, opts qqproto.Options) *qqproto.Client {
	t.Helper()
	c := w.client(uin, opts)
	if _, err := c.Login(context.Background(), qqproto.PasswordMD5(password)); err != nil {
		t.Fatalf("login %d: %v", uin, err)
	}
	return c
}

// Every command of the protocol against the demo world, checked through
// the server's own view where the reply alone proves little.
func TestClientSimCommands(t *testing.T) {
	w := newSim(t, qqsim.DemoWorld()...)
	ctx := context.Background()
	c := w.client(10001, qqproto.Options{})

	_, err := c.Login(ctx, qqproto.PasswordMD5("wrong"))
	var le *qqproto.LoginError
	if !errors.As(err, &le) || le.Reason != "密码错误" {
		t.Fatalf("wrong password: %v, want a LoginError with RA 密码错误", err)
	}
	if _, err := c.Messages(ctx); !errors.Is(err, qqproto.ErrNotLoggedIn) {
		t.Fatalf("Messages before login: %v, want ErrNotLoggedIn", err)
	}

	if _, err := w.client(99998, qqproto.Options{}).Login(ctx, qqproto.PasswordMD5("demo")); !isRES(err, qqproto.ResInvalidUIN) {
		t.Errorf("login of an unknown number: %v, want a ResultError RES=5", err)
	}

	lr, err := c.Login(ctx, qqproto.PasswordMD5("demo"))
	if err != nil {
		t.Fatal(err)
	}
	if lr.PollInterval != 60*time.Second || lr.IdleTimeout != 300*time.Second {
		t.Errorf("login result %+v", lr)
	}
	if s := w.sim.Session(10001); !s.LoggedIn || s.LoginCode != qqproto.DefaultClientCode {
		t.Errorf("server session after login: %+v", s)
	}

	buddies, err := c.Buddies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []qqproto.UIN{10002, 10003, 10004, 10005, 10010, 10011}; !reflect.DeepEqual(buddies, want) {
		t.Errorf("buddies %v, want %v", buddies, want)
	}

	online, err := c.OnlineBuddies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantOnline := []qqproto.Buddy{
		{UIN: 10002, Nick: "微程", Face: 141, Status: qqproto.StatusOnline},
		{UIN: 10003, Nick: "小明,小红&朋友们=好", Face: 33, Status: qqproto.StatusOnline},
		{UIN: 10004, Nick: "忙碌的老王", Face: 60, Status: qqproto.StatusBusy},
		{UIN: 10010, Nick: "回声机器人", Face: 3, Status: qqproto.StatusOnline},
	}
	if !reflect.DeepEqual(online, wantOnline) {
		t.Errorf("online\n%+v\nwant\n%+v", online, wantOnline)
	}

	p, err := c.Profile(ctx, 10001)
	if err != nil {
		t.Fatal(err)
	}
	if p.UIN != 10001 || p.Nick != "演示用户" || p.RealName != "张三" || p.Age != 28 || p.Sex != qqproto.SexMale ||
		p.City != "昆明" || p.Country != "中国" || p.Level != 3 ||
		p.About != "网络为媒,关系为本,信息为财,客户为主.\r\n欢迎来聊天 & 交朋友" {
		t.Errorf("profile %+v", p)
	}
	if _, err := c.Profile(ctx, 99999); !isRES(err, qqproto.ResInvalidUIN) {
		t.Errorf("profile of an unknown number: %v, want a ResultError RES=5", err)
	}

	if r, err := c.AddBuddy(ctx, 10007); err != nil || r != qqproto.AddRefused {
		t.Errorf("add 10007 (auth 3): %v %v", r, err)
	}
	if r, err := c.AddBuddy(ctx, 10006); err != nil || r != qqproto.AddNeedsAuth {
		t.Fatalf("add 10006 (auth 1): %v %v", r, err)
	}
	if err := c.AnswerAdd(ctx, 10006, qqproto.AckRequest, "我是演示用户, let me in & thanks"); err != nil {
		t.Fatal(err)
	}
	in := w.sim.Inbox(10006)
	if len(in) != 1 || in[0].Type != qqproto.MsgAddRequest || in[0].Text != "我是演示用户, let me in & thanks" {
		t.Errorf("10006 received %+v", in)
	}
	if err := c.AnswerAdd(ctx, 10007, qqproto.AckRequest, ""); !isRES(err, qqsim.ResRefused) {
		t.Errorf("asking 10007: %v, want RES=3", err)
	}

	if err := c.RemoveBuddy(ctx, 10011); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(ctx, qqproto.StatusBusy); err != nil {
		t.Fatal(err)
	}
	if s := w.sim.Session(10001); s.State != qqproto.StatusBusy || contains(s.Buddies, 10011) || !contains(s.Buddies, 10006) {
		t.Errorf("server session: state %v, buddies %v; want busy, 10011 gone, 10006 added", s.State, s.Buddies)
	}

	if err := c.SendMessage(ctx, 10010, "echo me, please"); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMessage(ctx, 99999, "nobody"); !isRES(err, qqproto.ResInvalidUIN) {
		t.Errorf("message to an unknown number: %v, want RES=5", err)
	}
	msgs, err := c.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []qqproto.Message{
		{Type: qqproto.MsgAddAccepted, From: 10006},
		{Type: qqproto.MsgBuddy, From: 10010, Text: "echo me, please"},
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("messages %+v, want %+v", msgs, want)
	}

	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if w.sim.Session(10001).LoggedIn {
		t.Error("still logged in after Logout")
	}
	if err := c.SendMessage(ctx, 10002, "after logout"); !errors.Is(err, qqproto.ErrNotLoggedIn) {
		t.Errorf("send after logout: %v, want ErrNotLoggedIn", err)
	}
	for _, r := range w.sim.Requests(10001) {
		if !r.Executed || r.Replayed {
			t.Errorf("request %+v was not executed exactly once; no fault was set", r)
		}
	}
}

func isRES(err error, code int) bool {
	var re *qqproto.ResultError
	return errors.As(err, &re) && re.Code == code
}

func contains(l []qqproto.UIN, u qqproto.UIN) bool {
	for _, x := range l {
		if x == u {
			return true
		}
	}
	return false
}

// A list longer than a page comes whole, in order, in as many requests as
// pages: 400 buddies are 3 List pages of 160 and 8 Query_Stat pages of 50.
func TestClientSimPaging(t *testing.T) {
	const user, n = 100000, 400
	accts := []qqsim.Account{{UIN: user, Password: "pw"}}
	var wantAll []qqproto.UIN
	var wantOnline []qqproto.Buddy
	for i := range n {
		u := qqproto.UIN(200000 + i)
		st := []qqproto.Status{qqproto.StatusOnline, qqproto.StatusBusy, qqproto.StatusOffline, qqproto.StatusInvisible}[i%4]
		nick := fmt.Sprintf("好友%d,&=%%", i)
		accts = append(accts, qqsim.Account{UIN: u, Password: "pw", Nick: nick, Face: i % 100, State: st})
		accts[0].Buddies = append(accts[0].Buddies, u)
		wantAll = append(wantAll, u)
		if st == qqproto.StatusOnline || st == qqproto.StatusBusy {
			wantOnline = append(wantOnline, qqproto.Buddy{UIN: u, Nick: nick, Face: i % 100, Status: st})
		}
	}
	w := newSim(t, accts...)
	c := w.login(t, user, "pw", qqproto.Options{})
	ctx := context.Background()

	all, err := c.Buddies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all, wantAll) {
		t.Errorf("got %d buddies, want %d in order", len(all), len(wantAll))
	}
	online, err := c.OnlineBuddies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(online, wantOnline) {
		t.Errorf("got %d online buddies, want %d (the user's own number left out)", len(online), len(wantOnline))
	}
	count := map[string]int{}
	for _, r := range w.sim.Requests(user) {
		count[r.Cmd]++
	}
	// 200 online buddies plus the user's own entry: 201 entries, 5 pages.
	if count["LIST"] != 3 || count["QUERY_STAT"] != 5 {
		t.Errorf("requests per command %v, want 3 LIST and 5 QUERY_STAT", count)
	}
}

// Texts that look like protocol arrive exactly as typed and add nothing.
func TestClientSimEscapingRoundTrip(t *testing.T) {
	w := newSim(t,
		qqsim.Account{UIN: 10001, Password: "a"},
		qqsim.Account{UIN: 10002, Password: "b"},
		qqsim.Account{UIN: 99999, Password: "c", Auth: 1},
	)
	a := w.login(t, 10001, "a", qqproto.Options{})
	b := w.login(t, 10002, "b", qqproto.Options{})
	texts := []string{
		"hi&UN=999&MG=x",
		"&UN=99999&MG=injected",
		"100%2c sure %26 %zz %",
		"a,b,,c,",
		"line one\r\nline two\nline three\r",
		"你好，世界！今天天气不错。",
		"=&%,",
		"1+1=2 (plus stays plus)",
		" padded ",
		"😀 emoji and \t tab",
	}
	ctx := context.Background()
	for _, text := range texts {
		if err := a.SendMessage(ctx, 10002, text); err != nil {
			t.Fatalf("send %q: %v", text, err)
		}
	}
	got, err := b.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(texts) {
		t.Fatalf("received %d messages, want %d: %+v", len(got), len(texts), got)
	}
	for i, m := range got {
		if m.Text != texts[i] || m.From != 10001 || m.Type != qqproto.MsgBuddy {
			t.Errorf("message %d: %+v, want %q from 10001", i, m, texts[i])
		}
	}
	if in := w.sim.Inbox(99999); len(in) != 0 {
		t.Errorf("99999 received %+v: a text added a field", in)
	}
	// And the other way: a reason text of Ack_AddToList.
	if err := a.AnswerAdd(ctx, 99999, qqproto.AckRequest, texts[0]); err != nil {
		t.Fatal(err)
	}
	if in := w.sim.Inbox(99999); len(in) != 1 || in[0].Text != texts[0] {
		t.Errorf("99999 received %+v, want one request with reason %q", in, texts[0])
	}
}

// losingProxy passes requests to the emulator, which executes them and
// remembers the replies, but throws away the replies to the requests that
// lose says to, closing the connection instead: the lost-response case.
type losingProxy struct {
	next http.Handler
	lose func(cmd string, n int) bool // n counts requests with this CMD
	mu   sync.Mutex
	seen map[string]int
}

func (p *losingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, _ := qqproto.Parse(string(body))
	cmd := strings.ToUpper(req.Get("CMD"))
	p.mu.Lock()
	p.seen[cmd]++
	k := p.seen[cmd]
	p.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !p.lose(cmd, k) {
		p.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r) // executed and remembered; the reply goes nowhere
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// A lost reply is retried with the same SEQ; the emulator answers the
// retry from memory, so the message is delivered exactly once.
func TestClientSimLostReplyDeliversOnce(t *testing.T) {
	sim := qqsim.New(qqsim.Options{})
	for _, a := range []qqsim.Account{{UIN: 10001, Password: "a"}, {UIN: 10002, Password: "b"}} {
		if err := sim.AddAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	proxy := &losingProxy{next: sim, seen: map[string]int{}, lose: func(cmd string, n int) bool {
		// The first attempt of the CLTMSG and of the GetMsgEx that fetches it.
		return (cmd == "CLTMSG" || cmd == "GETMSGEX") && n == 1
	}}
	w := serveSim(t, sim, proxy)
	a := w.login(t, 10001, "a", qqproto.Options{})
	b := w.login(t, 10002, "b", qqproto.Options{})
	ctx := context.Background()
	if err := a.SendMessage(ctx, 10002, "exactly once"); err != nil {
		t.Fatalf("send with a lost first reply: %v", err)
	}
	if in := sim.Inbox(10002); len(in) != 1 || in[0].Text != "exactly once" {
		t.Errorf("10002's inbox %+v, want the message once", in)
	}
	assertSeqSeenTwice(t, sim.Requests(10001), "CLTMSG")

	// The fetch's reply is lost too; its retry gets the same messages
	// from memory although they already left the queue.
	msgs, err := b.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Text != "exactly once" {
		t.Errorf("fetched %+v, want the message once", msgs)
	}
	assertSeqSeenTwice(t, sim.Requests(10002), "GETMSGEX")
	if msgs, err := b.Messages(ctx); err != nil || len(msgs) != 0 {
		t.Errorf("second fetch %+v %v, want nothing", msgs, err)
	}
}

// assertSeqSeenTwice checks that the server saw one request of cmd twice
// under the same SEQ: executed the first time, replayed the second.
func assertSeqSeenTwice(t *testing.T, reqs []qqsim.RequestRecord, cmd string) {
	t.Helper()
	var got []qqsim.RequestRecord
	for _, r := range reqs {
		if r.Cmd == cmd {
			got = append(got, r)
		}
	}
	if len(got) != 2 || got[0].Seq != got[1].Seq || !got[0].Executed || !got[1].Replayed || got[1].Executed {
		t.Errorf("server saw %s as %+v, want the same SEQ twice: executed, then replayed", cmd, got)
	}
}

// When every reply is lost the client gives up with a TransportError, yet
// its retries used one SEQ, so the message was still delivered only once.
func TestClientSimAllRepliesLost(t *testing.T) {
	w := newSim(t, qqsim.Account{UIN: 10001, Password: "a"}, qqsim.Account{UIN: 10002, Password: "b"})
	a := w.login(t, 10001, "a", qqproto.Options{})
	setFaults(t, w, `{"drop_rate": 1}`)
	err := a.SendMessage(context.Background(), 10002, "once")
	var te *qqproto.TransportError
	if !errors.As(err, &te) || te.Attempts != qqproto.DefaultMaxAttempts {
		t.Fatalf("err %v, want a TransportError after %d attempts", err, qqproto.DefaultMaxAttempts)
	}
	if in := w.sim.Inbox(10002); len(in) != 1 {
		t.Errorf("inbox %+v, want the message exactly once", in)
	}
	var cltmsg []qqsim.RequestRecord
	for _, r := range w.sim.Requests(10001) {
		if r.Cmd == "CLTMSG" {
			cltmsg = append(cltmsg, r)
		}
	}
	if len(cltmsg) != 3 || cltmsg[0].Seq != cltmsg[2].Seq || cltmsg[1].Seq != cltmsg[0].Seq {
		t.Errorf("server saw CLTMSG as %+v, want one SEQ three times", cltmsg)
	}
}

// setFaults sets the emulator's faults through its control API, as a
// script would.
func setFaults(t *testing.T, w *simWorld, js string) {
	t.Helper()
	resp, err := w.hc.Post(w.srv.URL+"/_sim/faults", "application/json", strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /_sim/faults %s: %s", js, resp.Status)
	}
}

// Under random drops, garbage and HTTP 500s, every message of a stream
// arrives once and in order, in both directions of the exchange.
func TestClientSimFaultsLoseAndDuplicateNothing(t *testing.T) {
	w := newSim(t, qqsim.Account{UIN: 10001, Password: "a"}, qqsim.Account{UIN: 10002, Password: "b"})
	opts := qqproto.Options{MaxAttempts: 25, Timeout: 2 * time.Second}
	a := w.login(t, 10001, "a", opts)
	b := w.login(t, 10002, "b", opts)
	setFaults(t, w, `{"drop_rate": 0.2, "garbage_rate": 0.15, "error_rate": 0.15, "seed": 7}`)
	ctx := context.Background()
	const n = 60
	var got []string
	for i := range n {
		if err := a.SendMessage(ctx, 10002, fmt.Sprintf("msg %d", i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i%7 == 6 {
			ms, err := b.Messages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				got = append(got, m.Text)
			}
		}
	}
	for len(got) < n {
		ms, err := b.Messages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			got = append(got, m.Text)
		}
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("msg %d", i))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("received %d messages %q, want %d in order", len(got), got, n)
	}
	st := w.sim.Stats()
	if st.Drops == 0 || st.Garbage == 0 || st.Errors == 0 || st.Replayed == 0 {
		t.Errorf("stats %+v: the faults did not all happen, so the test proved little", st)
	}
}

// An attempt the server does not answer within Timeout is abandoned and
// retried; when none is answered in time the error says so.
func TestClientSimTimeout(t *testing.T) {
	w := newSim(t, qqsim.Account{UIN: 10001, Password: "a"})
	c := w.login(t, 10001, "a", qqproto.Options{Timeout: 50 * time.Millisecond, MaxAttempts: 2})
	setFaults(t, w, `{"latency_ms": 1000}`)
	start := time.Now()
	err := c.SetStatus(context.Background(), qqproto.StatusBusy)
	var te *qqproto.TransportError
	if !errors.As(err, &te) || te.Attempts != 2 || !strings.Contains(err.Error(), "no reply within 50ms") {
		t.Errorf("err %v, want a TransportError after 2 timed-out attempts", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("gave up after %v; the attempts should have ended at 50ms each", d)
	}
}

// Many sessions at once, sharing one HTTP client, as the gateway runs
// them: every message arrives once, and connections are reused.
func TestClientSimManyClientsConcurrently(t *testing.T) {
	const n, perClient = 200, 5
	var accts []qqsim.Account
	for i := range n {
		accts = append(accts, qqsim.Account{UIN: qqproto.UIN(300000 + i), Password: "pw"})
	}
	sim := qqsim.New(qqsim.Options{})
	for _, a := range accts {
		if err := sim.AddAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(sim)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tr := qqproto.NewTransport()
	defer tr.CloseIdleConnections()

	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me, next := qqproto.UIN(300000+i), qqproto.UIN(300000+(i+1)%n)
			c := qqproto.NewClient(me, qqproto.Options{Server: srv.URL, Transport: tr})
			if _, err := c.Login(ctx, qqproto.PasswordMD5("pw")); err != nil {
				errs <- err
				return
			}
			for j := range perClient {
				if err := c.SendMessage(ctx, next, fmt.Sprintf("%d→%d #%d", me, next, j)); err != nil {
					errs <- err
					return
				}
			}
			if _, err := c.Messages(ctx); err != nil {
				errs <- err
				return
			}
			if err := c.SetStatus(ctx, qqproto.StatusBusy); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range n {
		me, prev := qqproto.UIN(300000+i), qqproto.UIN(300000+(i+n-1)%n)
		var texts []string
		for _, it := range sim.Inbox(me) {
			if it.Type == qqproto.MsgBuddy {
				texts = append(texts, it.Text)
			}
		}
		if len(texts) != perClient {
			t.Errorf("%d received %d messages, want %d", me, len(texts), perClient)
			continue
		}
		for j, text := range texts {
			if want := fmt.Sprintf("%d→%d #%d", prev, me, j); text != want {
				t.Errorf("%d message %d is %q, want %q", me, j, text, want)
			}
		}
	}
	st := sim.Stats()
	if st.Executed != int64(n*(perClient+3)) || st.Replayed != 0 {
		t.Errorf("server executed %d and replayed %d requests, want %d and 0", st.Executed, st.Replayed, n*(perClient+3))
	}
	// Concurrency bounds the connections; keep-alive must carry the rest.
	if c := conns.Load(); c > n+n/2 {
		t.Errorf("%d connections for %d requests: keep-alive is not reusing them", c, st.Requests)
	}
	t.Logf("%d requests over %d connections", st.Requests, conns.Load())
}

// A GetMsgEx whose every reply was lost may have emptied the server's queue
// already; the next Messages call repeats it with the same SEQ, so the batch
// is received from the server's memory instead of being lost.
func TestClientSimAllFetchRepliesLostThenRecovered(t *testing.T) {
	w := newSim(t, qqsim.Account{UIN: 10001, Password: "a"}, qqsim.Account{UIN: 10002, Password: "b"})
	a := w.login(t, 10001, "a", qqproto.Options{})
	for _, text := range []string{"one", "two"} {
		if err := w.sim.Send(10002, 10001, text); err != nil {
			t.Fatal(err)
		}
	}
	setFaults(t, w, `{"drop_rate": 1}`)
	var te *qqproto.TransportError
	if _, err := a.Messages(context.Background()); !errors.As(err, &te) {
		t.Fatalf("Messages with every reply dropped: %v, want a TransportError", err)
	}
	setFaults(t, w, `{}`)
	got, err := a.Messages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range got {
		texts = append(texts, m.Text)
	}
	if !reflect.DeepEqual(texts, []string{"one", "two"}) {
		t.Fatalf("after the lost fetch, Messages = %q, want [one two]", texts)
	}
	// The recovered batch is not handed out a second time.
	if again, err := a.Messages(context.Background()); err != nil || len(again) != 0 {
		t.Fatalf("next Messages = %+v, %v; want nothing", again, err)
	}
}
