//go:build integration

package gateway

// The proof against real XMPP servers (issue part 9): Prosody and ejabberd
// from the distribution, qqsim over HTTP on loopback, the store on disk,
// the gateway on a real component connection, and a Go XMPP client logged
// in as the user. Each scenario runs on both servers, in the one
// environment this file builds (itEnv). Its scenarios are those of
// registration, presence and restarts; message_integration_test.go has
// messages and contacts.
//
// QQGW_TEST_SERVER=prosody (or ejabberd) runs the scenarios on that server
// only. QQGW_TEST_LOG=debug (or another logrus level) shows the gateway's
// log and every stanza it exchanges with the server.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

func TestMain(m *testing.M) { os.Exit(xmpptest.Main(m)) }

const (
	itDomain   = "qq.localhost"
	itSecret   = "gateway-test-secret"
	itPassword = "pw"
	// itPollIdle is the idle poll period of the integration gateway: a
	// buddy's change must reach the client within it (plus delivery).
	itPollIdle = time.Second
	// itWait bounds each wait for what the gateway must do by itself.
	itWait = 20 * time.Second
)

var itServerOpts = xmpptest.Options{ComponentDomain: itDomain, Secret: itSecret}

// onServers runs f as a subtest per XMPP server kind, on a server shared
// by the test binary, which f must not stop.
func onServers(t *testing.T, f func(t *testing.T, srv *xmpptest.Server)) {
	eachServer(t, xmpptest.Shared, f)
}

// onOwnServers is onServers on a server of f's own, which f may stop and
// start.
func onOwnServers(t *testing.T, f func(t *testing.T, srv *xmpptest.Server)) {
	eachServer(t, xmpptest.Start, f)
}

func eachServer(t *testing.T, start func(testing.TB, string, xmpptest.Options) *xmpptest.Server, f func(*testing.T, *xmpptest.Server)) {
	only := os.Getenv("QQGW_TEST_SERVER")
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		if only != "" && only != kind {
			t.Skipf("QQGW_TEST_SERVER=%s runs the scenarios on %s only", only, only)
		}
		f(t, start(t, kind, itServerOpts))
	})
}

// itEnv is one scenario: a QQ world in qqsim, a store on disk, a gateway
// on a component connection to srv, and a user of srv, who registers as
// QQ 10001.
type itEnv struct {
	t    *testing.T
	srv  *xmpptest.Server
	sim  *qqsim.Server
	st   *store.Store
	cfg  Config
	user string // unique per scenario and run: servers outlive a test

	gw     *Gateway            // the running gateway
	comp   *xmppcomp.Component // the running gateway's connection
	stopGW func()              // stops the running gateway
	seq    int
}

// newEnv starts qqsim with accounts, creates the user on srv and starts
// the gateway. tune, if not nil, adjusts the gateway's Config.
func newEnv(t *testing.T, srv *xmpptest.Server, tune func(*Config), accounts ...qqsim.Account) *itEnv {
	t.Helper()
	sim, qqURL := startQQ(t, qqsim.Options{}, accounts...)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &itEnv{t: t, srv: srv, sim: sim, st: st, user: xmpptest.UserName(t.Name())}
	srv.CreateUser(t, e.user, itPassword)

	e.cfg = testConfig(qqURL)
	e.cfg.Clock = nil // real time: the servers' and the client's
	e.cfg.Domain = itDomain
	e.cfg.PollActive = 100 * time.Millisecond
	e.cfg.PollIdle = itPollIdle
	e.cfg.StatusInterval = 2 * time.Second
	e.cfg.Logger = itLogger(t)
	if tune != nil {
		tune(&e.cfg)
	}
	e.startGateway()
	return e
}

// startGateway runs a new gateway and its component connection as the
// daemon does, and waits until the component is connected. stopGW shuts
// both down in the daemon's order: the gateway first, since its shutdown
// still sends through the component.
func (e *itEnv) startGateway() {
	e.t.Helper()
	g, err := New(e.cfg, e.st)
	if err != nil {
		e.t.Fatal(err)
	}
	comp, err := xmppcomp.New(xmppcomp.Config{
		Domain: itDomain, Server: e.srv.ComponentAddr, Secret: itSecret,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		OnConnect: g.OnConnect, Logger: quietLogger(),
	}, e.handler(g))
	if err != nil {
		e.t.Fatal(err)
	}
	e.gw, e.comp = g, comp
	gctx, stopG := context.WithCancel(context.Background())
	cctx, stopC := context.WithCancel(context.Background())
	compDone, gwDone := make(chan error, 1), make(chan error, 1)
	go func() { compDone <- comp.Run(cctx) }()
	go func() { gwDone <- g.Run(gctx, e.sender(comp)) }()
	stopped := false
	e.stopGW = func() {
		if stopped {
			return
		}
		stopped = true
		stopG()
		if err := <-gwDone; err != nil {
			e.t.Errorf("gateway Run: %v", err)
		}
		stopC()
		if err := <-compDone; err != nil {
			e.t.Errorf("component Run: %v", err)
		}
	}
	e.t.Cleanup(e.stopGW)
	e.waitConnected()
}

// waitConnected waits until the component is connected to the server.
func (e *itEnv) waitConnected() {
	e.t.Helper()
	e.eventually("the component's connection", itWait, e.comp.Connected)
}

// poll reports whether cond came true within timeout.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// eventually fails the test unless cond comes true within timeout.
func (e *itEnv) eventually(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	if !poll(timeout, cond) {
		e.t.Fatalf("%s: not within %v", what, timeout)
	}
}

// waitQQ waits until the QQ session of 10001 is as cond wants.
func (e *itEnv) waitQQ(what string, cond func(qqsim.SessionInfo) bool) {
	e.t.Helper()
	if !poll(itWait, func() bool { return cond(e.sim.Session(10001)) }) {
		e.t.Fatalf("%s: not within %v; qqsim says %+v", what, itWait, e.sim.Session(10001))
	}
}

func itCtx(t *testing.T, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func (e *itEnv) bare() string { return e.user + "@" + e.srv.Domain }

func itBuddy(u qqproto.UIN) string { return fmt.Sprintf("%d@%s", u, itDomain) }

// id returns a stanza id not used before in this scenario.
func (e *itEnv) id(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s-%d", prefix, e.seq)
}

// login logs the user in as a real client does: it fetches its roster
// (which makes it an "interested resource" that servers tell of
// subscription changes) and becomes available.
func (e *itEnv) login(ctx context.Context) *xmpptest.Client {
	e.t.Helper()
	c := e.srv.Login(e.t, ctx, e.user, itPassword)
	id := e.id("roster")
	c.SendXML(e.t, ctx, `<iq type="get" id=%q><query xmlns="jabber:iq:roster"/></iq>`, id)
	c.Expect(e.t, ctx, "the roster", xmpptest.IQResult(id))
	if err := c.SendPresence(ctx); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// registerIQ sends a form registration of QQ uin and returns the answer,
// a result or an error.
func (e *itEnv) registerIQ(ctx context.Context, c *xmpptest.Client, uin, password string) xmppcomp.Stanza {
	e.t.Helper()
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(
		fmt.Sprintf(`<iq type="set" id=%q to=%q>%s</iq>`, e.id("reg"), itDomain, registerForm(uin, password)))))
	if err != nil {
		e.t.Fatal(err)
	}
	return ans
}

// register registers the user as QQ 10001 (password "secret") and acts as
// a client that accepts the transport and every contact it offers:
// subscribed and subscribe back. It returns once every buddy in want was
// offered with its nick, and the QQ session is up.
func (e *itEnv) register(ctx context.Context, c *xmpptest.Client, want map[qqproto.UIN]string) {
	t := e.t
	t.Helper()
	if ans := e.registerIQ(ctx, c, "10001", "secret"); ans.Type != "result" {
		t.Fatalf("registration: %s", ans)
	}
	c.Expect(t, ctx, "subscribe from the gateway", xmpptest.PresenceFrom(itDomain, "subscribe"))
	approve(t, ctx, c, itDomain)
	for len(want) > 0 {
		st := c.Expect(t, ctx, fmt.Sprintf("subscribes of %d more buddies", len(want)), func(st xmppcomp.Stanza) bool {
			return st.Name == "presence" && st.Type == "subscribe" && st.From.Domainpart() == itDomain && st.From.Localpart() != ""
		})
		u, _ := qqproto.ParseUIN(st.From.Localpart())
		nick, ok := want[u]
		if !ok {
			t.Fatalf("subscribe from an unexpected JID: %s", st)
		}
		if got := nickOf(t, st); got != nick {
			t.Errorf("subscribe from %s has nick %q, want %q", st.From, got, nick)
		}
		delete(want, u)
		approve(t, ctx, c, st.From.Bare().String())
	}
	e.waitQQ("QQ login", func(s qqsim.SessionInfo) bool { return s.LoggedIn })
}

// approve answers a subscribe from addr as a user who wants it: subscribed,
// and subscribe back.
func approve(t *testing.T, ctx context.Context, c *xmpptest.Client, addr string) {
	t.Helper()
	c.SendXML(t, ctx, `<presence to=%q type="subscribed"/>`, addr)
	c.SendXML(t, ctx, `<presence to=%q type="subscribe"/>`, addr)
}

// loginRegistered is login, then register with want.
func (e *itEnv) loginRegistered(ctx context.Context, want map[qqproto.UIN]string) *xmpptest.Client {
	e.t.Helper()
	c := e.login(ctx)
	e.register(ctx, c, want)
	return c
}

// smallWorldNicks are alice's buddies in world(), by UIN.
func smallWorldNicks() map[qqproto.UIN]string {
	return map[qqproto.UIN]string{20001: bob.Nick, 20002: carol.Nick, 20003: dave.Nick}
}

// registeredInWorld is how most scenarios start: a gateway for world(),
// the user logged in and registered as alice (10001), her buddies
// approved; ctx bounds the scenario.
func registeredInWorld(t *testing.T, srv *xmpptest.Server) (*itEnv, context.Context, *xmpptest.Client) {
	t.Helper()
	e := newEnv(t, srv, nil, world()...)
	ctx := itCtx(t, time.Minute)
	return e, ctx, e.loginRegistered(ctx, smallWorldNicks())
}

// barrier returns once the gateway answered a ping from c to Bob. The
// ping waits in the user's session queue behind everything c sent before
// it, so what the session sent c for those came before the answer: a
// stanza that has not come by now is not coming. (A ping to the bare
// domain would not do: xmppcomp answers those itself.)
func (e *itEnv) barrier(ctx context.Context, c *xmpptest.Client) {
	e.t.Helper()
	id := e.id("ping")
	c.SendXML(e.t, ctx, `<iq type="get" id=%q to=%q><ping xmlns="urn:xmpp:ping"/></iq>`, id, itBuddy(20001))
	c.Expect(e.t, ctx, "the gateway's answer to a ping", xmpptest.IQResult(id))
}

// itLogging is the log level of QQGW_TEST_LOG, if set: the gateway logs
// to the test, and every stanza it exchanges is logged too.
func itLogging() (logrus.Level, bool) {
	v := os.Getenv("QQGW_TEST_LOG")
	if v == "" {
		return 0, false
	}
	if lvl, err := logrus.ParseLevel(v); err == nil {
		return lvl, true
	}
	return logrus.DebugLevel, true
}

func itLogger(t *testing.T) logrus.FieldLogger {
	lvl, ok := itLogging()
	if !ok {
		return quietLogger()
	}
	l := logrus.New()
	l.SetLevel(lvl)
	l.SetOutput(testWriter{t})
	return l
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// handler is g, logging what comes in when QQGW_TEST_LOG is set.
func (e *itEnv) handler(g *Gateway) xmppcomp.Handler {
	if _, ok := itLogging(); !ok {
		return g
	}
	return xmppcomp.HandlerFunc(func(ctx context.Context, st xmppcomp.Stanza) {
		e.t.Logf("IN %s", st)
		g.HandleStanza(ctx, st)
	})
}

// sender is comp, logging what goes out when QQGW_TEST_LOG is set.
func (e *itEnv) sender(comp *xmppcomp.Component) Sender {
	if _, ok := itLogging(); !ok {
		return comp
	}
	return logSender{comp, e.t}
}

type logSender struct {
	*xmppcomp.Component
	t *testing.T
}

func (l logSender) Encode(ctx context.Context, v any) error {
	b, _ := xml.Marshal(v)
	err := l.Component.Encode(ctx, v)
	l.t.Logf("OUT %s (err %v)", b, err)
	return err
}

func TestIntegrationRegisterWithForm(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, nil, world()...)
		ctx := itCtx(t, time.Minute)
		c := e.login(ctx)
		if ans := e.registerIQ(ctx, c, "10001", "secret"); ans.Type != "result" {
			t.Fatalf("registration: %s", ans)
		}
		c.Expect(t, ctx, "subscribe from the gateway", xmpptest.PresenceFrom(itDomain, "subscribe"))
		reg, err := e.st.Registration(ctx, e.bare())
		if err != nil || reg.UIN != 10001 {
			t.Fatalf("stored: %+v %v", reg, err)
		}
	})
}

func TestIntegrationWrongPassword(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, nil, world()...)
		ctx := itCtx(t, time.Minute)
		ans := e.registerIQ(ctx, e.login(ctx), "10001", "not-the-password")
		cond, _, text := stanzaErr(t, ans)
		if ans.Type != "error" || cond != "not-acceptable" || text != wantFormRefused {
			t.Fatalf("wrong password: %s", ans)
		}
	})
}

func TestIntegrationRosterGetsEveryBuddyWithNick(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		accounts, want := longBuddyList(173) // longer than one List page (160)
		e := newEnv(t, srv, nil, accounts...)
		ctx := itCtx(t, time.Minute)
		c := e.loginRegistered(ctx, want)
		// The approved, online ones show available at the client.
		c.Expect(t, ctx, "Bob available", xmpptest.PresenceFrom(itBuddy(20001), ""))
	})
}

func TestIntegrationBuddyBusyShowsAway(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e, ctx, c := registeredInWorld(t, srv)
		c.Expect(t, ctx, "Bob available", xmpptest.PresenceFrom(itBuddy(20001), ""))
		start := time.Now()
		if err := e.sim.SetState(20001, qqproto.StatusBusy); err != nil {
			t.Fatal(err)
		}
		bobAvailable := xmpptest.PresenceFrom(itBuddy(20001), "")
		st := c.Expect(t, ctx, "Bob away", func(st xmppcomp.Stanza) bool {
			if !bobAvailable(st) {
				return false
			}
			show, _ := showOf(t, st)
			return show == "away"
		})
		if d := time.Since(start); d > itPollIdle+time.Second {
			t.Errorf("busy reached the client after %v, want within one poll period (%v) and delivery", d, itPollIdle)
		}
		if _, status := showOf(t, st); status != busyStatus {
			t.Errorf("busy status text %q", status)
		}
	})
}

func TestIntegrationUserDndIsQQBusy(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e, ctx, c := registeredInWorld(t, srv)
		e.waitQQ("QQ online", func(s qqsim.SessionInfo) bool { return s.LoggedIn && s.State == qqproto.StatusOnline })
		c.SendXML(t, ctx, `<presence><show>dnd</show></presence>`)
		e.waitQQ("state 30", func(s qqsim.SessionInfo) bool { return s.State == qqproto.StatusBusy })
	})
}

func TestIntegrationUserOfflineLogsOut(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e, ctx, c := registeredInWorld(t, srv)
		c.SendXML(t, ctx, `<presence type="unavailable"/>`)
		e.waitQQ("QQ logout", func(s qqsim.SessionInfo) bool { return !s.LoggedIn })
	})
}

func TestIntegrationRestartBringsSessionBack(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e, ctx, c := registeredInWorld(t, srv)
		c.Expect(t, ctx, "Bob available", xmpptest.PresenceFrom(itBuddy(20001), ""))

		e.stopGW()
		c.Expect(t, ctx, "Bob unavailable at shutdown", xmpptest.PresenceFrom(itBuddy(20001), "unavailable"))
		c.Expect(t, ctx, "gateway unavailable at shutdown", xmpptest.PresenceFrom(itDomain, "unavailable"))
		if e.sim.Session(10001).LoggedIn {
			t.Fatal("QQ session survived the shutdown")
		}
		logins := e.sim.Session(10001).Logins

		e.startGateway() // the user does nothing
		e.waitQQ("QQ login after restart", func(s qqsim.SessionInfo) bool { return s.LoggedIn && s.Logins > logins })
		c.Expect(t, ctx, "Bob available again", xmpptest.PresenceFrom(itBuddy(20001), ""))
	})
}

func TestIntegrationUnregister(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e, ctx, c := registeredInWorld(t, srv)
		c.SendXML(t, ctx, `<iq type="set" id="unreg" to=%q><query xmlns="jabber:iq:register"><remove/></query></iq>`, itDomain)
		c.Expect(t, ctx, "the result of remove", xmpptest.IQResult("unreg"))
		for _, from := range []string{itDomain, itBuddy(20001), itBuddy(20002), itBuddy(20003)} {
			for _, typ := range []string{"unsubscribe", "unsubscribed"} {
				c.Expect(t, ctx, typ+" from "+from, xmpptest.PresenceFrom(from, typ))
			}
		}
		if _, err := e.st.Registration(ctx, e.bare()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("registration left in the store: %v", err)
		}
		if cs, err := e.st.Contacts(ctx, e.bare()); err != nil || len(cs) != 0 {
			t.Errorf("contacts left in the store: %v %v", cs, err)
		}
		e.waitQQ("QQ logout", func(s qqsim.SessionInfo) bool { return !s.LoggedIn })
	})
}
