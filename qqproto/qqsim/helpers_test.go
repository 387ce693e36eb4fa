package qqsim

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

// clock is an injected time source the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2005, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sim is a Server behind a real loopback HTTP server, spoken to in raw
// protocol lines (not through qqproto.Client).
type sim struct {
	t     *testing.T
	s     *Server
	srv   *httptest.Server
	clock *clock

	mu  sync.Mutex
	seq int
}

func newSim(t *testing.T, opts Options, accts ...Account) *sim {
	t.Helper()
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	s := New(opts)
	for _, a := range accts {
		if err := s.AddAccount(a); err != nil {
			t.Fatalf("AddAccount: %v", err)
		}
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &sim{t: t, s: s, srv: srv, clock: c}
}

// acct is a test account with password "pw".
func acct(uin qqproto.UIN, nick string, st qqproto.Status, buddies ...qqproto.UIN) Account {
	return Account{UIN: uin, Password: "pw", Nick: nick, State: st, Buddies: buddies}
}

// raw posts body with the given content type and returns status and body.
func (m *sim) raw(contentType, body string) (int, string) {
	m.t.Helper()
	resp, err := http.Post(m.srv.URL+"/", contentType, strings.NewReader(body))
	if err != nil {
		m.t.Fatalf("POST %q: %v", body, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		m.t.Fatalf("reading reply to %q: %v", body, err)
	}
	return resp.StatusCode, string(b)
}

// line posts a request line as text/plain and returns the reply line.
func (m *sim) line(body string) string {
	m.t.Helper()
	code, reply := m.raw("text/plain; charset=UTF-8", body)
	if code != http.StatusOK {
		m.t.Fatalf("POST %q: HTTP %d %s", body, code, reply)
	}
	return reply
}

func (m *sim) nextSeq() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	return 1000 + m.seq
}

// cmd sends CMD for uin with a fresh SEQ and extra "K=V&…" fields (already
// on-the-wire form) and returns the parsed reply, checking the echo.
func (m *sim) cmd(uin qqproto.UIN, cmd, extra string) qqproto.Fields {
	m.t.Helper()
	seq := m.nextSeq()
	body := fmt.Sprintf("VER=1.1&CMD=%s&SEQ=%d&UIN=%d", cmd, seq, uin)
	if extra != "" {
		body += "&" + extra
	}
	f, err := qqproto.Parse(m.line(body))
	if err != nil {
		m.t.Fatalf("reply to %q does not parse: %v", body, err)
	}
	if got := f.Get("SEQ"); got != fmt.Sprint(seq) {
		m.t.Fatalf("reply to %q echoes SEQ=%q", body, got)
	}
	if !strings.EqualFold(f.Get("CMD"), cmd) {
		m.t.Fatalf("reply to %q echoes CMD=%q", body, f.Get("CMD"))
	}
	return f
}

// ok is cmd that insists on RES=0.
func (m *sim) ok(uin qqproto.UIN, cmd, extra string) qqproto.Fields {
	m.t.Helper()
	f := m.cmd(uin, cmd, extra)
	if r := res(f); r != 0 {
		m.t.Fatalf("%d %s %s: RES=%d, want 0 (%s)", uin, cmd, extra, r, f)
	}
	return f
}

func res(f qqproto.Fields) int {
	n, err := f.Int("RES")
	if err != nil {
		return -1
	}
	return int(n)
}

func (m *sim) login(uin qqproto.UIN) {
	m.t.Helper()
	f := m.ok(uin, "Login", "PS="+qqproto.PasswordMD5("pw")+"&M5=1&LC=9326B87B234E7235")
	if f.Get("RS") != "0" {
		m.t.Fatalf("login %d: %s", uin, f)
	}
}

// msgs polls uin once and returns the items.
func (m *sim) msgs(uin qqproto.UIN) []qqproto.Message {
	m.t.Helper()
	ms, err := qqproto.ReadMessages(m.ok(uin, "GetMsgEx", ""))
	if err != nil {
		m.t.Fatalf("GetMsgEx of %d: %v", uin, err)
	}
	return ms
}

func (m *sim) send(from, to qqproto.UIN, text string) {
	m.t.Helper()
	m.ok(from, "CLTMSG", fmt.Sprintf("UN=%d&MG=%s", to, qqproto.Escape(text)))
}

func msg(t qqproto.MessageType, from qqproto.UIN, text string) qqproto.Message {
	return qqproto.Message{Type: t, From: from, Text: text}
}

func wantMsgs(t *testing.T, got []qqproto.Message, want ...qqproto.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
