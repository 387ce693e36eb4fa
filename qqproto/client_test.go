package qqproto_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

// scripted is a QQ server whose every answer the test writes: it records
// each request line as it arrived and hands it to answer.
type scripted struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []qqproto.Fields
	ctypes []string
	answer func(n int, req qqproto.Fields, w http.ResponseWriter, r *http.Request)
}

func newScripted(t *testing.T, answer func(n int, req qqproto.Fields, w http.ResponseWriter, r *http.Request)) *scripted {
	t.Helper()
	s := &scripted{t: t, answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Method != http.MethodPost {
			t.Errorf("request method %s, want POST", r.Method)
		}
		req, err := qqproto.Parse(string(body))
		if err != nil {
			t.Errorf("client sent an unparseable line %q: %v", body, err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, req)
		s.ctypes = append(s.ctypes, r.Header.Get("Content-Type"))
		s.mu.Unlock()
		s.answer(n, req, w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) requests() []qqproto.Fields {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]qqproto.Fields(nil), s.reqs...)
}

// client returns a Client of uin for this server with fast retries.
func (s *scripted) client(uin qqproto.UIN, opts qqproto.Options) *qqproto.Client {
	opts.Server = s.srv.URL
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	return qqproto.NewClient(uin, opts)
}

// reply writes the answer to req: its VER, CMD, SEQ and UIN echoed, the
// given RES, then the raw extra fields.
func reply(w http.ResponseWriter, req qqproto.Fields, res int, extra string) {
	line := "VER=" + req.Get("VER") + "&CMD=" + req.Get("CMD") + "&SEQ=" + req.Get("SEQ") +
		"&UIN=" + req.Get("UIN") + "&RES=" + itoa(res)
	if extra != "" {
		line += "&" + extra
	}
	io.WriteString(w, line)
}

func itoa(n int) string { return qqproto.UIN(n).String() }

// ok answers every request with RES=0 and the fields the command needs.
func ok(_ int, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
	extra := ""
	switch req.Get("CMD") {
	case qqproto.CmdLogin:
		extra = "RS=0&HI=60&LI=300"
	case qqproto.CmdList, qqproto.CmdQueryStat:
		extra = "FN=1&SN=0"
	case qqproto.CmdGetInfo:
		extra = "UN=" + req.Get("UN") + "&NK=nick"
	case qqproto.CmdAddToList:
		extra = "CD=0&UN=" + req.Get("UN")
	case qqproto.CmdGetMsgEx:
		extra = "MN=0"
	}
	reply(w, req, 0, extra)
}

const md5OfSecret = "5ebe2294ecd0e0f08eab7690d2a6ee69" // qqproto.PasswordMD5("secret")

// Every command goes out as a POST of text/plain with VER, CMD, SEQ, UIN
// first and then exactly the fields the spec gives it.
func TestClientRequestLines(t *testing.T) {
	s := newScripted(t, ok)
	c := s.client(415103947, qqproto.Options{})
	ctx := context.Background()
	steps := []struct {
		do   func() error
		want string // the request line after SEQ's value
	}{
		{func() error { _, err := c.Login(ctx, strings.ToUpper(md5OfSecret)); return err },
			"VER=1.1&CMD=Login&UIN=415103947&PS=" + md5OfSecret + "&M5=1&LC=9326B87B234E7235"},
		{func() error { _, err := c.Buddies(ctx); return err }, "VER=1.1&CMD=List&UIN=415103947&TN=160&UN=0"},
		{func() error { _, err := c.OnlineBuddies(ctx); return err }, "VER=1.1&CMD=Query_Stat&UIN=415103947&TN=50&UN=0"},
		{func() error { _, err := c.Profile(ctx, 24259132); return err }, "VER=1.1&CMD=GetInfo&UIN=415103947&LV=3&UN=24259132"},
		{func() error { _, err := c.AddBuddy(ctx, 24259132); return err }, "VER=1.1&CMD=AddToList&UIN=415103947&UN=24259132"},
		{func() error { return c.AnswerAdd(ctx, 24259132, qqproto.AckRequest, "it's me, a=b & c") },
			"VER=1.1&CMD=Ack_AddToList&UIN=415103947&UN=24259132&CD=2&RS=it's me%2c a%3db %26 c"},
		{func() error { return c.RemoveBuddy(ctx, 24259132) }, "VER=1.1&CMD=DelFromList&UIN=415103947&UN=24259132"},
		{func() error { return c.SetStatus(ctx, qqproto.StatusBusy) }, "VER=1.1&CMD=Change_Stat&UIN=415103947&ST=30"},
		{func() error { _, err := c.Messages(ctx); return err }, "VER=1.1&CMD=GetMsgEx&UIN=415103947"},
		{func() error { return c.SendMessage(ctx, 24259132, "hi&UN=1") }, "VER=1.1&CMD=CLTMSG&UIN=415103947&UN=24259132&MG=hi%26UN%3d1"},
		{func() error { return c.Logout(ctx) }, "VER=1.1&CMD=Logout&UIN=415103947"},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		reqs := s.requests()
		if len(reqs) != i+1 {
			t.Fatalf("step %d: server saw %d requests, want %d", i, len(reqs), i+1)
		}
		got := reqs[i]
		if len(got) < 4 || got[0].Key != "VER" || got[1].Key != "CMD" || got[2].Key != "SEQ" || got[3].Key != "UIN" {
			t.Errorf("step %d: line %q does not start VER, CMD, SEQ, UIN", i, got)
		}
		var rest qqproto.Fields
		for _, f := range got {
			if f.Key != "SEQ" {
				rest = append(rest, f)
			}
		}
		if rest.String() != st.want {
			t.Errorf("step %d: sent\n%s\nwant\n%s", i, rest, st.want)
		}
		if ct := s.ctypes[i]; ct != "text/plain; charset=UTF-8" {
			t.Errorf("step %d: Content-Type %q", i, ct)
		}
	}
	seen := map[string]bool{}
	for _, r := range s.requests() {
		seq := r.Get("SEQ")
		if seen[seq] {
			t.Errorf("SEQ %s used twice", seq)
		}
		seen[seq] = true
	}
}

// A Client for the same number made right after another (a restarted
// process, a new session) must not reuse the SEQs the server remembers.
func TestClientSeqsDoNotRepeatAcrossClients(t *testing.T) {
	s := newScripted(t, ok)
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		c := s.client(10001, qqproto.Options{})
		for j := 0; j < 5; j++ {
			if err := c.SetStatus(context.Background(), qqproto.StatusOnline); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range s.requests() {
		seen[r.Get("SEQ")]++
	}
	for seq, n := range seen {
		if n > 1 {
			t.Errorf("SEQ %s sent %d times by fresh clients", seq, n)
		}
	}
	if len(seen) != 100 {
		t.Errorf("%d distinct SEQs for 100 requests", len(seen))
	}
}

func TestClientLoginResult(t *testing.T) {
	s := newScripted(t, ok)
	got, err := s.client(10001, qqproto.Options{}).Login(context.Background(), md5OfSecret)
	if err != nil {
		t.Fatal(err)
	}
	want := qqproto.LoginResult{PollInterval: time.Minute, IdleTimeout: 5 * time.Minute}
	if got != want {
		t.Errorf("login result %+v, want %+v", got, want)
	}
}

func TestClientLoginRefused(t *testing.T) {
	s := newScripted(t, func(_ int, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		reply(w, req, 0, "RS=1&RA=密码错误")
	})
	_, err := s.client(10001, qqproto.Options{}).Login(context.Background(), md5OfSecret)
	var le *qqproto.LoginError
	if !errors.As(err, &le) {
		t.Fatalf("err %v (%T), want *LoginError", err, err)
	}
	if le.Reason != "密码错误" || le.Code != 1 || le.UIN != 10001 {
		t.Errorf("LoginError %+v", le)
	}
	if strings.Contains(err.Error(), md5OfSecret) {
		t.Errorf("error shows the password MD5: %v", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("refused login sent %d times, want 1 (a refusal is an answer)", n)
	}
}

func TestClientLoginBadInput(t *testing.T) {
	s := newScripted(t, ok)
	for _, pw := range []string{"", "secret", md5OfSecret[:31], md5OfSecret[:31] + "g"} {
		_, err := s.client(10001, qqproto.Options{}).Login(context.Background(), pw)
		if err == nil || !strings.Contains(err.Error(), "32 hex digits") {
			t.Errorf("Login(%q) = %v, want an error naming the format", pw, err)
		}
	}
	_, err := s.client(10001, qqproto.Options{ClientCode: "xyz"}).Login(context.Background(), md5OfSecret)
	if err == nil || !strings.Contains(err.Error(), "client code") {
		t.Errorf("bad LC: %v", err)
	}
	if err := s.client(10001, qqproto.Options{}).SetStatus(context.Background(), 11); err == nil {
		t.Error("SetStatus(11) succeeded")
	}
	if err := s.client(10001, qqproto.Options{}).AnswerAdd(context.Background(), 10002, 7, ""); err == nil {
		t.Error("AnswerAdd code 7 succeeded")
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("bad input reached the server %d times", n)
	}
}

// RES=20 and RES=5 are the server's answers: typed errors, sent once.
func TestClientResultErrors(t *testing.T) {
	for _, tc := range []struct {
		res   int
		check func(error) bool
	}{
		{20, func(err error) bool { return errors.Is(err, qqproto.ErrNotLoggedIn) }},
		{5, func(err error) bool {
			var re *qqproto.ResultError
			return errors.As(err, &re) && re.Code == 5 && strings.EqualFold(re.Cmd, qqproto.CmdGetInfo)
		}},
		{7, func(err error) bool { var re *qqproto.ResultError; return errors.As(err, &re) && re.Code == 7 }},
	} {
		s := newScripted(t, func(_ int, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
			reply(w, req, tc.res, "")
		})
		_, err := s.client(10001, qqproto.Options{}).Profile(context.Background(), 99999)
		if !tc.check(err) {
			t.Errorf("RES=%d: err %v (%T)", tc.res, err, err)
		}
		var te *qqproto.TransportError
		if errors.As(err, &te) {
			t.Errorf("RES=%d came back as a transport error: %v", tc.res, err)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("RES=%d: request sent %d times, want 1", tc.res, n)
		}
	}
}

// hijackClose drops the connection without a reply.
func hijackClose(t *testing.T, w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// faults are the ways a reply can be lost; each is retried with the same
// SEQ, and the request succeeds when a later attempt gets its answer.
var faults = []struct {
	name  string
	fail  func(t *testing.T, req qqproto.Fields, w http.ResponseWriter, r *http.Request)
	cause string // in the error after every attempt failed
}{
	{"HTTP 500", func(_ *testing.T, _ qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}, "HTTP 500"},
	{"HTTP 503", func(_ *testing.T, _ qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}, "HTTP 503"},
	{"garbage body", func(_ *testing.T, _ qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "<html>proxy error</html>")
	}, "malformed"},
	{"empty body", func(_ *testing.T, _ qqproto.Fields, w http.ResponseWriter, _ *http.Request) {}, "malformed"},
	{"no RES", func(_ *testing.T, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "VER=1.1&CMD=CLTMSG&SEQ="+req.Get("SEQ"))
	}, "no RES"},
	{"dropped connection", func(t *testing.T, _ qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		hijackClose(t, w)
	}, "EOF"},
	{"cut body", func(t *testing.T, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "200")
		io.WriteString(w, "VER=1.1&CMD=CLTMSG&SEQ="+req.Get("SEQ"))
		w.(http.Flusher).Flush()
		hijackClose(t, w)
	}, "reading reply"},
	{"timeout", func(_ *testing.T, _ qqproto.Fields, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}, "no reply within"},
	{"other SEQ", func(_ *testing.T, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "VER=1.1&CMD=CLTMSG&SEQ=12345&UIN="+req.Get("UIN")+"&RES=0")
	}, "SEQ=12345"},
	{"other CMD", func(_ *testing.T, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "VER=1.1&CMD=GetMsgEx&SEQ="+req.Get("SEQ")+"&UIN="+req.Get("UIN")+"&RES=0&MN=0")
	}, "CMD=GetMsgEx"},
	{"other UIN", func(_ *testing.T, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "VER=1.1&CMD=CLTMSG&SEQ="+req.Get("SEQ")+"&UIN=77777&RES=0")
	}, "UIN=77777"},
}

func TestClientRetriesLostReplyWithSameSeq(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			s := newScripted(t, func(n int, req qqproto.Fields, w http.ResponseWriter, r *http.Request) {
				if n < 2 {
					f.fail(t, req, w, r)
					return
				}
				reply(w, req, 0, "")
			})
			c := s.client(10001, qqproto.Options{Timeout: 100 * time.Millisecond, MaxAttempts: 3})
			if err := c.SendMessage(context.Background(), 10002, "hello"); err != nil {
				t.Fatalf("third attempt should have succeeded: %v", err)
			}
			reqs := s.requests()
			if len(reqs) != 3 {
				t.Fatalf("server saw %d attempts, want 3", len(reqs))
			}
			for i := range reqs {
				if reqs[i].String() != reqs[0].String() {
					t.Errorf("attempt %d sent %q, first sent %q: a retry must repeat the request, SEQ included", i+1, reqs[i], reqs[0])
				}
			}
		})
	}
}

func TestClientGivesUpAfterMaxAttempts(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			s := newScripted(t, func(_ int, req qqproto.Fields, w http.ResponseWriter, r *http.Request) {
				f.fail(t, req, w, r)
			})
			c := s.client(10001, qqproto.Options{Timeout: 100 * time.Millisecond, MaxAttempts: 2})
			err := c.SendMessage(context.Background(), 10002, "hello")
			var te *qqproto.TransportError
			if !errors.As(err, &te) {
				t.Fatalf("err %v (%T), want *TransportError", err, err)
			}
			if te.Attempts != 2 || te.Cmd != qqproto.CmdCLTMSG {
				t.Errorf("TransportError %+v, want 2 attempts of CLTMSG", te)
			}
			if !strings.Contains(err.Error(), f.cause) {
				t.Errorf("error %q does not name the cause %q", err, f.cause)
			}
			if n := len(s.requests()); n != 2 {
				t.Errorf("server saw %d attempts, want 2", n)
			}
		})
	}
}

func TestClientNoRetryWhenMaxAttemptsIsOne(t *testing.T) {
	s := newScripted(t, func(_ int, _ qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	err := s.client(10001, qqproto.Options{MaxAttempts: 1}).Logout(context.Background())
	var te *qqproto.TransportError
	if !errors.As(err, &te) || te.Attempts != 1 || len(s.requests()) != 1 {
		t.Errorf("err %v after %d requests, want one attempt", err, len(s.requests()))
	}
}

// A 4xx means the server refused the request itself: the same bytes again
// cannot fare better.
func TestClientDoesNotRetryHTTP404(t *testing.T) {
	s := newScripted(t, func(_ int, _ qqproto.Fields, w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	})
	err := s.client(10001, qqproto.Options{}).Logout(context.Background())
	var te *qqproto.TransportError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "404") {
		t.Errorf("err %v, want a TransportError naming HTTP 404", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("404 sent %d times, want 1", n)
	}
}

func TestClientUnreachableServer(t *testing.T) {
	s := newScripted(t, ok)
	url := s.srv.URL
	s.srv.Close() // nothing listens there any more
	c := qqproto.NewClient(10001, qqproto.Options{Server: url, RetryBackoff: time.Millisecond})
	err := c.Logout(context.Background())
	var te *qqproto.TransportError
	if !errors.As(err, &te) || te.Attempts != qqproto.DefaultMaxAttempts {
		t.Errorf("err %v, want a TransportError after %d attempts", err, qqproto.DefaultMaxAttempts)
	}
}

// A caller that gives up is not kept waiting for backoffs or attempts.
func TestClientHonoursContext(t *testing.T) {
	s := newScripted(t, func(_ int, _ qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	c := s.client(10001, qqproto.Options{MaxAttempts: 10, RetryBackoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Logout(ctx)
	if time.Since(start) > 2*time.Second {
		t.Errorf("Logout took %v after its context ended", time.Since(start))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want one that Is context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("err %q does not say what failed before", err)
	}

	// Cancelled while the attempt is in flight.
	hang := newScripted(t, func(_ int, _ qqproto.Fields, _ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err = hang.client(10001, qqproto.Options{}).Logout(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want one that Is context.Canceled", err)
	}
	if n := len(hang.requests()); n != 1 {
		t.Errorf("%d attempts after cancel, want 1", n)
	}
}

// The historic server's replies as the seed shows them: an upper-cased
// CMD, SEQ=-1 in Query_Stat, an empty UIN in Login, trailing '&'.
func TestClientReadsHistoricReplies(t *testing.T) {
	s := newScripted(t, func(_ int, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		seq := req.Get("SEQ")
		switch req.Get("CMD") {
		case qqproto.CmdLogin:
			io.WriteString(w, "VER=1.1&CMD=Login&SEQ="+seq+"&UIN=&RES=0&RS=0&HI=60&LI=300")
		case qqproto.CmdQueryStat:
			io.WriteString(w, "VER=1.1&CMD=QUERY_STAT&SEQ=-1&UIN=29501213&RES=0&FC=141,270,270,&FN=1&SN=3&ST=10,10,10,&UN=12327207,24259132,29501213,&NK= □,微程,鶹鸑,&")
		case qqproto.CmdGetMsgEx:
			io.WriteString(w, "VER=1.1&CMD=GETMSGEX&SEQ="+seq+"&UIN=29501213&RES=0&MN=3&MT=99,9,9,&UN=24259132,24259132,24259132,&MG=30 ,asdfasdfasdfasdf ,asdfasdfasdf ,&")
		case qqproto.CmdLogout:
			io.WriteString(w, "VER=1.1&CMD=LOGOUT&SEQ="+seq+"&UIN=29501213&RES=0")
		}
	})
	c := s.client(29501213, qqproto.Options{})
	ctx := context.Background()
	if _, err := c.Login(ctx, md5OfSecret); err != nil {
		t.Fatal(err)
	}
	online, err := c.OnlineBuddies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantOnline := []qqproto.Buddy{
		{UIN: 12327207, Nick: " □", Face: 141, Status: qqproto.StatusOnline},
		{UIN: 24259132, Nick: "微程", Face: 270, Status: qqproto.StatusOnline},
	}
	if !reflect.DeepEqual(online, wantOnline) {
		t.Errorf("online %+v, want %+v (the user's own number left out)", online, wantOnline)
	}
	msgs, err := c.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[1].Text != "asdfasdfasdfasdf " {
		t.Errorf("messages %+v", msgs)
	}
	if st, ok := msgs[0].State(); !ok || st != qqproto.StatusBusy {
		t.Errorf("first message %+v is not a busy notice", msgs[0])
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(s.requests()); n != 4 {
		t.Errorf("%d requests, want 4 (no retries)", n)
	}
}

// A page that is empty but not the last would make the client ask for the
// same page for ever; it must fail instead.
func TestClientStuckPaging(t *testing.T) {
	s := newScripted(t, func(_ int, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		reply(w, req, 0, "FN=0&SN=0&UN=")
	})
	_, err := s.client(10001, qqproto.Options{}).Buddies(context.Background())
	if !errors.Is(err, qqproto.ErrMalformed) {
		t.Errorf("err %v, want ErrMalformed", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// A server whose paging never ends (FN never 1) must cost a bounded number
// of requests and then an error, not requests for ever: whether it sends
// one entry a page or full pages. The client documents its bound as 200
// pages and 10000 entries.
func TestClientEndlessPaging(t *testing.T) {
	for _, c := range []struct {
		name     string
		perPage  int
		maxPages int
	}{
		{"short pages", 1, 200},
		{"full pages", 160, 10000/160 + 1},
	} {
		for _, cmd := range []string{qqproto.CmdList, qqproto.CmdQueryStat} {
			t.Run(c.name+"/"+cmd, func(t *testing.T) {
				s := newScripted(t, func(_ int, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
					reply(w, req, 0, "FN=0&"+endlessPage(c.perPage))
				})
				cl := s.client(10001, qqproto.Options{})
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				var err error
				if cmd == qqproto.CmdList {
					_, err = cl.Buddies(ctx)
				} else {
					_, err = cl.OnlineBuddies(ctx)
				}
				if !errors.Is(err, qqproto.ErrMalformed) {
					t.Errorf("err %v, want ErrMalformed", err)
				}
				if n := len(s.requests()); n > c.maxPages {
					t.Errorf("%d requests, want at most %d", n, c.maxPages)
				}
			})
		}
	}
}

// endlessPage is a page of n online buddies, which also reads as a List
// page of n numbers.
func endlessPage(n int) string {
	var uns, sts, fcs, nks strings.Builder
	for i := range n {
		uns.WriteString(itoa(20000+i) + ",")
		sts.WriteString("10,")
		fcs.WriteString("0,")
		nks.WriteString("n,")
	}
	return "SN=" + itoa(n) + "&UN=" + uns.String() + "&ST=" + sts.String() + "&FC=" + fcs.String() + "&NK=" + nks.String()
}

// The pauses between the attempts of one request start at RetryBackoff
// and double, each jittered by at most half.
func TestClientBacksOffBetweenAttempts(t *testing.T) {
	var (
		mu sync.Mutex
		at []time.Time
	)
	s := newScripted(t, func(n int, req qqproto.Fields, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if n < 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		reply(w, req, 0, "")
	})
	const first = 40 * time.Millisecond
	if err := s.client(10001, qqproto.Options{RetryBackoff: first}).Logout(context.Background()); err != nil {
		t.Fatalf("third attempt should have succeeded: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 3 {
		t.Fatalf("%d attempts, want 3", len(at))
	}
	for i, least := range []time.Duration{first / 2, 2 * first / 2} {
		if gap := at[i+1].Sub(at[i]); gap < least {
			t.Errorf("pause before retry %d was %v, want at least %v", i+1, gap, least)
		}
	}
}

func TestClientDefaults(t *testing.T) {
	c := qqproto.NewClient(10001, qqproto.Options{})
	if c.UIN() != 10001 {
		t.Errorf("UIN() = %d", c.UIN())
	}
	err := qqproto.NewClient(10001, qqproto.Options{Server: "::not a url"}).Logout(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad server URL") {
		t.Errorf("Logout to a bad URL: %v, want an error naming the URL", err)
	}
	err = qqproto.NewClient(10001, qqproto.Options{Server: "ftp://qq.example.org/"}).Logout(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad server URL") || !strings.Contains(err.Error(), "ftp") {
		t.Errorf("Logout to an ftp URL: %v, want an error naming its scheme", err)
	}
}
