package qqsim

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

// TestConcurrentSessions: 200 clients at once, each sending to the next
// in a ring and polling for what the previous one sent; every message
// arrives exactly once and in order.
func TestConcurrentSessions(t *testing.T) {
	const n, perClient = 200, 5
	var accts []Account
	for i := range n {
		u := qqproto.UIN(30000 + i)
		accts = append(accts, acct(u, fmt.Sprintf("用户%d", i), 0, 30000+qqproto.UIN((i+1)%n), 30000+qqproto.UIN((i+n-1)%n)))
	}
	m := newSim(t, Options{Now: time.Now}, accts...)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var seq atomic.Int64
	do := func(uin qqproto.UIN, cmd, extra string) (qqproto.Fields, error) {
		body := fmt.Sprintf("VER=1.1&CMD=%s&SEQ=%d&UIN=%d&%s", cmd, seq.Add(1), uin, extra)
		resp, err := client.Post(m.srv.URL, "text/plain", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		f, err := qqproto.Parse(string(b))
		if err != nil {
			return nil, err
		}
		if r := res(f); r != 0 {
			return nil, fmt.Errorf("%s: RES=%d", body, r)
		}
		return f, nil
	}

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			me := qqproto.UIN(30000 + i)
			next, prev := 30000+qqproto.UIN((i+1)%n), 30000+qqproto.UIN((i+n-1)%n)
			if _, err := do(me, "Login", "PS=pw"); err != nil {
				errs <- err
				return
			}
			var got []string
			sent := 0
			for deadline := time.Now().Add(20 * time.Second); len(got) < perClient || sent < perClient; {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("%d got only %v", me, got)
					return
				}
				if sent < perClient {
					if _, err := do(me, "CLTMSG", fmt.Sprintf("UN=%d&MG=%d%%2c%d", next, me, sent)); err != nil {
						errs <- err
						return
					}
					sent++
				}
				f, err := do(me, "GetMsgEx", "")
				if err == nil {
					var ms []qqproto.Message
					ms, err = qqproto.ReadMessages(f)
					for _, x := range ms {
						if x.Type == qqproto.MsgBuddy {
							if x.From != prev {
								err = fmt.Errorf("%d got a message from %d", me, x.From)
							}
							got = append(got, x.Text)
						}
					}
				}
				if err != nil {
					errs <- err
					return
				}
				if _, err := do(me, "Query_Stat", "TN=50&UN=0"); err != nil {
					errs <- err
					return
				}
			}
			for k, g := range got {
				if g != fmt.Sprintf("%d,%d", prev, k) {
					errs <- fmt.Errorf("%d: message %d is %q", me, k, g)
					return
				}
			}
			if _, err := do(me, "Change_Stat", "ST=30"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := m.s.Stats(); st.Sessions != n {
		t.Errorf("stats %+v", st)
	}
	for i := range n {
		if in := m.s.Inbox(qqproto.UIN(30000 + i)); countType(in, qqproto.MsgBuddy) != perClient {
			t.Fatalf("%d received %d messages", 30000+i, countType(in, qqproto.MsgBuddy))
		}
	}
}

func countType(in []InboxItem, mt qqproto.MessageType) int {
	n := 0
	for _, it := range in {
		if it.Type == mt {
			n++
		}
	}
	return n
}

// serve calls the handler directly, without a network or request parsing.
func serve(h http.Handler, body string) string {
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	h.ServeHTTP(rec, req)
	return rec.Body.String()
}

// TestThousandsOfSessions: 5000 sessions cost no goroutines and expire
// together, lazily, when the clock has passed LI.
func TestThousandsOfSessions(t *testing.T) {
	const n = 5000
	c := newClock()
	s := New(Options{Now: c.Now, IdleTimeout: time.Minute})
	for i := range n {
		u := qqproto.UIN(100000 + i)
		if err := s.AddAccount(acct(u, "x", 0, 100000+qqproto.UIN((i+1)%n))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if r := serve(s, fmt.Sprintf("VER=1.1&CMD=Login&SEQ=1&UIN=%d&PS=pw", 100000+i)); !strings.Contains(r, "RS=0") {
			t.Fatalf("login: %s", r)
		}
	}
	if st := s.Stats(); st.Sessions != n {
		t.Fatalf("%d sessions", st.Sessions)
	}
	// Half keep talking; after LI the other half is gone.
	c.Advance(40 * time.Second)
	for i := 0; i < n; i += 2 {
		serve(s, fmt.Sprintf("VER=1.1&CMD=GetMsgEx&SEQ=2&UIN=%d", 100000+i))
	}
	c.Advance(30 * time.Second)
	if st := s.Stats(); st.Sessions != n/2 {
		t.Fatalf("%d sessions after half went silent, want %d", st.Sessions, n/2)
	}
	// Each talker's buddy (odd numbers) went silent: its offline notice is queued.
	r := serve(s, "VER=1.1&CMD=GetMsgEx&SEQ=3&UIN=100000")
	if !strings.Contains(r, "MT=99,&UN=100001,&MG=20 ,") {
		t.Errorf("notice of the silent buddy: %s", r)
	}
}

// BenchmarkHandler is one CLTMSG and the recipient's GetMsgEx through the
// handler, no network: the emulator's own cost per message.
func BenchmarkHandler(b *testing.B) {
	s := New(Options{})
	s.AddAccount(acct(alice, "a", 0, bob))
	s.AddAccount(acct(bob, "b", 0, alice))
	serve(s, "VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS=pw")
	serve(s, "VER=1.1&CMD=Login&SEQ=1&UIN=10002&PS=pw")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		serve(s, fmt.Sprintf("VER=1.1&CMD=CLTMSG&SEQ=%d&UIN=10001&UN=10002&MG=hello%%2c world %d", i+2, i))
		if r := serve(s, fmt.Sprintf("VER=1.1&CMD=GetMsgEx&SEQ=%d&UIN=10002", i+2)); !strings.Contains(r, "MN=1") {
			b.Fatal(r)
		}
	}
}

// BenchmarkHandlerHTTP is the same pair over loopback HTTP with keep-alive.
func BenchmarkHandlerHTTP(b *testing.B) {
	s := New(Options{})
	s.AddAccount(acct(alice, "a", 0, bob))
	s.AddAccount(acct(bob, "b", 0, alice))
	srv := httptest.NewServer(s)
	defer srv.Close()
	post := func(body string) string {
		resp, err := http.Post(srv.URL, "text/plain; charset=UTF-8", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		r, _ := io.ReadAll(resp.Body)
		return string(r)
	}
	post("VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS=pw")
	post("VER=1.1&CMD=Login&SEQ=1&UIN=10002&PS=pw")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		post(fmt.Sprintf("VER=1.1&CMD=CLTMSG&SEQ=%d&UIN=10001&UN=10002&MG=hello%%2c world %d", i+2, i))
		if r := post(fmt.Sprintf("VER=1.1&CMD=GetMsgEx&SEQ=%d&UIN=10002", i+2)); !strings.Contains(r, "MN=1") {
			b.Fatal(r)
		}
	}
}

// BenchmarkHandlerParallel is the pair from many sessions at once (1000
// pairs of accounts), through the handler: the cost of the one lock.
func BenchmarkHandlerParallel(b *testing.B) {
	const pairs = 1000
	s := New(Options{})
	for i := range pairs {
		a, c := qqproto.UIN(100000+2*i), qqproto.UIN(100001+2*i)
		s.AddAccount(acct(a, "a", 0, c))
		s.AddAccount(acct(c, "c", 0, a))
		serve(s, fmt.Sprintf("VER=1.1&CMD=Login&SEQ=1&UIN=%d&PS=pw", a))
		serve(s, fmt.Sprintf("VER=1.1&CMD=Login&SEQ=1&UIN=%d&PS=pw", c))
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := next.Add(1) % pairs
		a, c := 100000+2*p, 100001+2*p
		for i := int64(2); pb.Next(); i++ {
			serve(s, fmt.Sprintf("VER=1.1&CMD=CLTMSG&SEQ=%d&UIN=%d&UN=%d&MG=hi", i, a, c))
			serve(s, fmt.Sprintf("VER=1.1&CMD=GetMsgEx&SEQ=%d&UIN=%d", i, c))
		}
	})
}
