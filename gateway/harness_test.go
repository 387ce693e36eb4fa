package gateway

// A test harness for the gateway without an XMPP server: qqsim over HTTP on
// loopback, a real store on disk, and a recorder standing in for the
// component connection. Stanzas go in through HandleStanza as the
// component would hand them; what the gateway sends is parsed back into
// xmppcomp.Stanza values and waited for.

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

const (
	testDomain = "qq.example.org"
	aliceBare  = "alice@example.org"
	aliceFull  = "alice@example.org/phone"
)

// recorder is a Sender that keeps what the gateway sends.
type recorder struct {
	mu       sync.Mutex
	got      []xmppcomp.Stanza
	down     atomic.Bool // while true, sends fail as if disconnected
	barriers atomic.Int64
	// failBarriers makes that many barriers fail, as when the connection
	// drops after a send: the server may or may not have the stanzas.
	failBarriers atomic.Int32
	// onBarrier, if set, runs once at the next barrier, before it passes.
	onBarrier atomic.Pointer[func()]
	t         testing.TB
	// server answers the gateway's iq requests, as the XMPP server would;
	// nil answers service-unavailable.
	server func(req xmppcomp.Stanza) string
}

func (r *recorder) Send(_ context.Context, tr xml.TokenReader) error {
	if r.down.Load() {
		return xmppcomp.ErrNotConnected
	}
	b, err := tokens(tr)
	if err != nil {
		return err
	}
	return r.add(b)
}

// SendIQ keeps the request like any stanza and returns the answer of
// r.server.
func (r *recorder) SendIQ(_ context.Context, tr xml.TokenReader) (xmppcomp.Stanza, error) {
	if r.down.Load() {
		return xmppcomp.Stanza{}, xmppcomp.ErrNotConnected
	}
	b, err := tokens(tr)
	if err != nil {
		return xmppcomp.Stanza{}, err
	}
	req, err := xmppcomp.ParseStanza(b)
	if err != nil {
		r.t.Errorf("gateway sent unparseable XML %s: %v", b, err)
		return xmppcomp.Stanza{}, err
	}
	r.mu.Lock()
	r.got = append(r.got, req)
	server := r.server
	r.mu.Unlock()
	ans := fmt.Sprintf(`<iq type="error" from=%q to=%q><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`, req.To, req.From)
	if server != nil {
		ans = server(req)
	}
	return xmppcomp.ParseStanza([]byte(ans))
}

// tokens encodes a stanza's tokens.
func tokens(tr xml.TokenReader) ([]byte, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	for {
		tok, err := tr.Token()
		if tok != nil {
			if err := enc.EncodeToken(tok); err != nil {
				return nil, err
			}
		}
		if err != nil {
			break
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (r *recorder) Encode(_ context.Context, v any) error {
	if r.down.Load() {
		return xmppcomp.ErrNotConnected
	}
	b, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	return r.add(b)
}

// ReplyError answers st as xmppcomp.Component does.
func (r *recorder) ReplyError(ctx context.Context, st xmppcomp.Stanza, e stanza.Error) error {
	start := xml.StartElement{Name: xml.Name{Local: st.Name}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "error"},
		{Name: xml.Name{Local: "id"}, Value: st.ID},
		{Name: xml.Name{Local: "from"}, Value: st.To.String()},
		{Name: xml.Name{Local: "to"}, Value: st.From.String()},
	}}
	return r.Send(ctx, xmlstream.Wrap(e.TokenReader(), start))
}

// Barrier is immediate: what the recorder got, it has.
func (r *recorder) Barrier(context.Context, jid.JID) error {
	if r.down.Load() || r.failBarrier() {
		return xmppcomp.ErrNotConnected
	}
	if f := r.onBarrier.Swap(nil); f != nil {
		(*f)()
	}
	r.barriers.Add(1)
	return nil
}

// failBarrier takes one of the barriers to fail, if any is left.
func (r *recorder) failBarrier() bool {
	for {
		n := r.failBarriers.Load()
		if n <= 0 {
			return false
		}
		if r.failBarriers.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (r *recorder) add(b []byte) error {
	st, err := xmppcomp.ParseStanza(b)
	if err != nil {
		r.t.Errorf("gateway sent unparseable XML %s: %v", b, err)
		return err
	}
	r.mu.Lock()
	r.got = append(r.got, st)
	r.mu.Unlock()
	return nil
}

func (r *recorder) all() []xmppcomp.Stanza {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]xmppcomp.Stanza(nil), r.got...)
}

type harness struct {
	t      *testing.T
	sim    *qqsim.Server
	qqURL  string
	dbPath string
	st     *store.Store
	cfg    Config
	g      *Gateway
	out    *recorder
	cursor int // waitFor looks at stanzas from here on
	stopFn func()
	seq    int
}

// testConfig is quick: everything a test waits for happens within a
// second or so.
func testConfig(qqURL string) Config {
	cfg := DefaultConfig(testDomain)
	cfg.QQ = qqproto.Options{Server: qqURL, Timeout: 2 * time.Second, MaxAttempts: 2, RetryBackoff: 10 * time.Millisecond}
	cfg.PollActive = 100 * time.Millisecond
	cfg.PollIdle = 200 * time.Millisecond
	cfg.StatusInterval = 300 * time.Millisecond
	cfg.LoginBackoffMin = 100 * time.Millisecond
	cfg.LoginBackoffMax = 400 * time.Millisecond
	cfg.ShutdownTimeout = 3 * time.Second
	cfg.Logger = quietLogger()
	// Time moves only when a test moves it (advance), or while waitFor
	// waits and the gateway has nothing left to do.
	cfg.Clock = clockwork.NewFakeClockAt(time.Now().Truncate(timerQuantum))
	return cfg
}

// newHarness starts qqsim with accounts and a gateway on a fresh store.
func newHarness(t *testing.T, simOpts qqsim.Options, accounts ...qqsim.Account) *harness {
	t.Helper()
	sim, url := startQQ(t, simOpts, accounts...)
	h := &harness{t: t, sim: sim, qqURL: url, dbPath: filepath.Join(t.TempDir(), "gw.db")}
	h.cfg = testConfig(h.qqURL)
	h.openStore()
	h.start()
	return h
}

func (h *harness) openStore() {
	st, err := store.Open(context.Background(), h.dbPath)
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	h.t.Cleanup(func() { st.Close() })
}

// start runs a new Gateway on the harness's store with h.cfg.
func (h *harness) start() {
	h.t.Helper()
	g, err := New(h.cfg, h.st)
	if err != nil {
		h.t.Fatal(err)
	}
	h.g = g
	if h.out == nil {
		h.out = &recorder{t: h.t}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Run(ctx, h.out); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	h.stopFn = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				h.t.Error("Run did not return within 10s of its context ending")
			}
		})
	}
	h.t.Cleanup(h.stopFn)
}

// stop ends Run and waits for its shutdown.
func (h *harness) stop() { h.stopFn() }

// in hands the gateway one inbound stanza.
func (h *harness) in(format string, args ...any) {
	h.t.Helper()
	raw := fmt.Sprintf(format, args...)
	st, err := xmppcomp.ParseStanza([]byte(raw))
	if err != nil {
		h.t.Fatalf("bad test stanza %s: %v", raw, err)
	}
	h.g.HandleStanza(context.Background(), st)
}

func (h *harness) id() string {
	h.seq++
	return fmt.Sprintf("t%d", h.seq)
}

// iq sends an iq from alice's full JID and waits for its answer.
func (h *harness) iq(typ, to, payload string) xmppcomp.Stanza {
	h.t.Helper()
	return h.iqFrom(aliceFull, typ, to, payload)
}

func (h *harness) iqFrom(from, typ, to, payload string) xmppcomp.Stanza {
	h.t.Helper()
	id := h.id()
	h.in(`<iq xmlns="jabber:component:accept" type=%q id=%q from=%q to=%q>%s</iq>`, typ, id, from, to, payload)
	return h.waitFor("answer to iq "+id, func(st xmppcomp.Stanza) bool {
		return st.Name == "iq" && st.ID == id && (st.Type == "result" || st.Type == "error")
	})
}

// presence sends a presence of alice.
func (h *harness) presence(from, to, typ, inner string) {
	h.t.Helper()
	attr := ""
	if typ != "" {
		attr = fmt.Sprintf(` type=%q`, typ)
	}
	h.in(`<presence xmlns="jabber:component:accept" from=%q to=%q%s>%s</presence>`, from, to, attr, inner)
}

const waitTimeout = 10 * time.Second

// fakeClock is the harness's clock.
func (h *harness) fakeClock() *clockwork.FakeClock { return h.cfg.Clock.(*clockwork.FakeClock) }

// quiesce waits (in real time) until the gateway has nothing to do: no
// work item runs or waits and no poll is due by its clock. What it sent by
// then is all it will send until the clock moves or a stanza comes in.
func (h *harness) quiesce() {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !h.g.sched.quiet() {
		if time.Now().After(deadline) {
			h.t.Fatalf("the gateway is still busy after %v", waitTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// tick moves the gateway's clock by one scheduler quantum.
func (h *harness) tick() {
	h.fakeClock().Advance(timerQuantum)
	h.g.sched.nudge()
}

// advance moves the gateway's clock by d, one scheduler quantum at a time,
// letting it do all it has to at each step.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.quiesce()
	for moved := time.Duration(0); moved < d; moved += timerQuantum {
		h.tick()
		h.quiesce()
	}
}

// waitFor returns the first stanza from the cursor on that matches, and
// moves the cursor past it. While none has come and the gateway is idle,
// its clock moves on.
func (h *harness) waitFor(what string, match func(xmppcomp.Stanza) bool) xmppcomp.Stanza {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := h.out.all()
		for i := h.cursor; i < len(got); i++ {
			if match(got[i]) {
				h.cursor = i + 1
				return got[i]
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, st := range got[min(h.cursor, len(got)):] {
				b.WriteString("\n  " + st.String())
			}
			h.t.Fatalf("no %s within %v; sent since the last match:%s", what, waitTimeout, b.String())
		}
		if h.g.sched.quiet() {
			h.tick()
		}
		time.Sleep(time.Millisecond)
	}
}

// sent returns the stanzas from the cursor on that match, without waiting.
func (h *harness) sent(match func(xmppcomp.Stanza) bool) []xmppcomp.Stanza {
	var out []xmppcomp.Stanza
	got := h.out.all()
	for _, st := range got[min(h.cursor, len(got)):] {
		if match(st) {
			out = append(out, st)
		}
	}
	return out
}

// skipAll moves the cursor past everything sent so far.
func (h *harness) skipAll() { h.cursor = len(h.out.all()) }

// eventually polls cond until it holds. While it does not and the
// gateway is idle, its clock moves on.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within %v", what, waitTimeout)
		}
		if h.g.sched.quiet() {
			h.tick()
		}
		time.Sleep(time.Millisecond)
	}
}

// presenceMatch matches a presence by from and type. A bare from matches
// the JID's presence whatever its resource: availability comes from the
// full JID, subscriptions from the bare one.
func presenceMatch(from, typ string) func(xmppcomp.Stanza) bool {
	return func(st xmppcomp.Stanza) bool {
		f := st.From.String()
		if !strings.Contains(from, "/") {
			f = st.From.Bare().String()
		}
		return st.Name == "presence" && f == from && st.Type == typ
	}
}

// registerForm is the payload of a form registration.
func registerForm(uin, password string) string {
	return fmt.Sprintf(`<query xmlns="jabber:iq:register"><x xmlns="jabber:x:data" type="submit">`+
		`<field var="FORM_TYPE"><value>jabber:iq:register</value></field>`+
		`<field var="username"><value>%s</value></field><field var="password"><value>%s</value></field></x></query>`, uin, password)
}

// register registers alice with a form and fails the test unless it works.
func (h *harness) register(uin, password string) {
	h.t.Helper()
	ans := h.iq("set", testDomain, registerForm(uin, password))
	if ans.Type != "result" {
		h.t.Fatalf("registration failed: %s", ans)
	}
}

// goOnline makes alice's phone available to the domain.
func (h *harness) goOnline(show string) {
	inner := ""
	if show != "" {
		inner = "<show>" + show + "</show>"
	}
	h.presence(aliceFull, testDomain, "", inner)
}

// stanzaErr decodes the error of an error stanza.
func stanzaErr(t testing.TB, st xmppcomp.Stanza) (cond, typ, text string) {
	t.Helper()
	cond, typ, text, err := readStanzaError(st)
	if err != nil {
		t.Fatal(err)
	}
	return cond, typ, text
}

// nickOf returns the XEP-0172 nick in a stanza.
func nickOf(t testing.TB, st xmppcomp.Stanza) string {
	t.Helper()
	var v struct {
		Nick string `xml:"http://jabber.org/protocol/nick nick"`
	}
	if err := st.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Nick
}

// showOf returns the show and status of a presence.
func showOf(t testing.TB, st xmppcomp.Stanza) (show, status string) {
	t.Helper()
	var v presence
	if err := st.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Show, v.Status
}

func buddyAddr(uin int) string { return fmt.Sprintf("%d@%s", uin, testDomain) }
