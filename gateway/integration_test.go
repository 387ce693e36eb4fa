//go:build integration

package gateway

// The proof against real XMPP servers (issue part 9): Prosody and ejabberd
// from the distribution, qqsim over HTTP on loopback, the store on disk, a
// Go XMPP client logged in as the user. Each scenario runs on both servers.

import (
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http/httptest"
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

func TestMain(m *testing.M) {
	code := m.Run()
	xmpptest.StopShared()
	os.Exit(code)
}

const (
	itDomain = "qq.localhost"
	itSecret = "gateway-test-secret"
	// itPollIdle is the idle poll period of the integration gateway: a
	// buddy's change must reach the client within it (plus delivery).
	itPollIdle = time.Second
)

var itServerOpts = xmpptest.Options{ComponentDomain: itDomain, Secret: itSecret}

// onServers runs f as a subtest per XMPP server kind, on a server shared
// by the test binary.
func onServers(t *testing.T, f func(t *testing.T, srv *xmpptest.Server)) {
	for _, kind := range []string{xmpptest.Prosody, xmpptest.Ejabberd} {
		t.Run(kind, func(t *testing.T) {
			var srv *xmpptest.Server
			if kind == xmpptest.Prosody {
				srv = xmpptest.SharedProsody(t, itServerOpts)
			} else {
				srv = xmpptest.SharedEjabberd(t, itServerOpts)
			}
			f(t, srv)
		})
	}
}

// itEnv is one scenario: a QQ world, a store and a running gateway.
type itEnv struct {
	t      *testing.T
	srv    *xmpptest.Server
	sim    *qqsim.Server
	qqURL  string
	dbPath string
	st     *store.Store
	stopGW func()
	gw     *Gateway // the running gateway
	user   string   // the XMPP user's name on srv, unique per scenario
}

func newEnv(t *testing.T, srv *xmpptest.Server, accounts ...qqsim.Account) *itEnv {
	t.Helper()
	sim := qqsim.New(qqsim.Options{})
	for _, a := range accounts {
		if err := sim.AddAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	e := &itEnv{t: t, srv: srv, sim: sim, qqURL: hs.URL + "/", dbPath: filepath.Join(t.TempDir(), "gw.db")}
	st, err := store.Open(context.Background(), e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	// Unique per run, since the server outlives the test (-count=2).
	e.user = strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + strings.ToLower(rand.Text()[:6])
	srv.CreateUser(t, e.user, "pw")
	e.startGateway()
	return e
}

// startGateway runs a gateway and its component connection, as the daemon
// does; stopGW shuts both down in the daemon's order.
func (e *itEnv) startGateway() {
	e.t.Helper()
	cfg := testConfig(e.qqURL)
	cfg.Clock = nil // real time: the servers' and the client's
	cfg.Domain = itDomain
	cfg.PollActive = 200 * time.Millisecond
	cfg.PollIdle = itPollIdle
	cfg.StatusInterval = 3 * time.Second
	cfg.Logger = itLogger(e.t)
	g, err := New(cfg, e.st)
	if err != nil {
		e.t.Fatal(err)
	}
	e.gw = g
	comp, err := xmppcomp.New(xmppcomp.Config{
		Domain: itDomain, Server: e.srv.ComponentAddr, Secret: itSecret,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		OnConnect: g.OnConnect, Logger: quietLogger(),
	}, g)
	if err != nil {
		e.t.Fatal(err)
	}
	gctx, stopG := context.WithCancel(context.Background())
	cctx, stopC := context.WithCancel(context.Background())
	compDone, gwDone := make(chan error, 1), make(chan error, 1)
	go func() { compDone <- comp.Run(cctx) }()
	go func() { gwDone <- g.Run(gctx, comp) }()
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
	deadline := time.Now().Add(20 * time.Second)
	for !comp.Connected() {
		if time.Now().After(deadline) {
			e.t.Fatal("the component did not connect within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func itCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// login logs the user in and makes them available.
func (e *itEnv) login(ctx context.Context) *xmpptest.Client {
	e.t.Helper()
	c := e.srv.Login(e.t, ctx, e.user, "pw")
	// Like any client: ask for the roster, which makes the session one
	// that servers send subscription changes to (Prosody's "interested").
	if ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(`<iq type="get" id="roster1"><query xmlns="jabber:iq:roster"/></iq>`))); err != nil || ans.Type != "result" {
		e.t.Fatalf("roster get: %s %v", ans, err)
	}
	if err := c.SendPresence(ctx); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *itEnv) bare() string { return e.user + "@" + e.srv.Domain }

// sendXML sends raw XML from the client.
func sendXML(t *testing.T, ctx context.Context, c *xmpptest.Client, format string, args ...any) {
	t.Helper()
	if err := c.Send(ctx, xml.NewDecoder(strings.NewReader(fmt.Sprintf(format, args...)))); err != nil {
		t.Fatal(err)
	}
}

// registerIQ sends a form registration and returns the answer.
func registerIQ(t *testing.T, ctx context.Context, c *xmpptest.Client, uin, password string) xmppcomp.Stanza {
	t.Helper()
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(
		fmt.Sprintf(`<iq type="set" id="reg-%d" to=%q>%s</iq>`, time.Now().UnixNano(), itDomain, registerForm(uin, password)))))
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

func next(t *testing.T, ctx context.Context, c *xmpptest.Client, what string, match func(xmppcomp.Stanza) bool) xmppcomp.Stanza {
	t.Helper()
	st, err := c.Next(ctx, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return st
}

func presFrom(from, typ string) func(xmppcomp.Stanza) bool {
	return func(st xmppcomp.Stanza) bool {
		return st.Name == "presence" && st.From.Bare().String() == from && st.Type == typ
	}
}

func itBuddy(u qqproto.UIN) string { return fmt.Sprintf("%d@%s", u, itDomain) }

// registerAndApprove registers through the form and acts as a client that
// accepts the transport and every contact it offers: subscribed and
// subscribe back. It returns once every buddy in want was offered.
func (e *itEnv) registerAndApprove(ctx context.Context, c *xmpptest.Client, want map[qqproto.UIN]string) {
	t := e.t
	t.Helper()
	if ans := registerIQ(t, ctx, c, "10001", "secret"); ans.Type != "result" {
		t.Fatalf("registration: %s", ans)
	}
	next(t, ctx, c, "subscribe from the gateway", presFrom(itDomain, "subscribe"))
	sendXML(t, ctx, c, `<presence to=%q type="subscribed"/>`, itDomain)
	sendXML(t, ctx, c, `<presence to=%q type="subscribe"/>`, itDomain)
	for len(want) > 0 {
		st := next(t, ctx, c, fmt.Sprintf("subscribes of %d more buddies", len(want)), func(st xmppcomp.Stanza) bool {
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
		sendXML(t, ctx, c, `<presence to=%q type="subscribed"/>`, st.From.Bare())
		sendXML(t, ctx, c, `<presence to=%q type="subscribe"/>`, st.From.Bare())
	}
}

func smallWorldNicks() map[qqproto.UIN]string {
	return map[qqproto.UIN]string{20001: bob.Nick, 20002: carol.Nick, 20003: dave.Nick}
}

func TestIntegrationRegisterWithForm(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, world()...)
		ctx := itCtx(t)
		c := e.login(ctx)
		ans := registerIQ(t, ctx, c, "10001", "secret")
		if ans.Type != "result" {
			t.Fatalf("registration: %s", ans)
		}
		next(t, ctx, c, "subscribe from the gateway", presFrom(itDomain, "subscribe"))
		reg, err := e.st.Registration(ctx, e.bare())
		if err != nil || reg.UIN != 10001 {
			t.Fatalf("stored: %+v %v", reg, err)
		}
	})
}

func TestIntegrationWrongPassword(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, world()...)
		ctx := itCtx(t)
		c := e.login(ctx)
		ans := registerIQ(t, ctx, c, "10001", "not-the-password")
		cond, _, text := stanzaErr(t, ans)
		if ans.Type != "error" || cond != "not-acceptable" || text != "密码错误" {
			t.Fatalf("wrong password: %s", ans)
		}
	})
}

func TestIntegrationRosterGetsEveryBuddyWithNick(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		accounts, want := longBuddyList(173) // longer than one List page (160)
		e := newEnv(t, srv, accounts...)
		ctx := itCtx(t)
		c := e.login(ctx)
		e.registerAndApprove(ctx, c, want)
		// The approved, online ones show available at the client.
		next(t, ctx, c, "Bob available", presFrom(itBuddy(20001), ""))
	})
}

func TestIntegrationBuddyBusyShowsAway(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, world()...)
		ctx := itCtx(t)
		c := e.login(ctx)
		e.registerAndApprove(ctx, c, smallWorldNicks())
		next(t, ctx, c, "Bob available", presFrom(itBuddy(20001), ""))
		start := time.Now()
		if err := e.sim.SetState(20001, qqproto.StatusBusy); err != nil {
			t.Fatal(err)
		}
		st := next(t, ctx, c, "Bob away", func(st xmppcomp.Stanza) bool {
			if !presFrom(itBuddy(20001), "")(st) {
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
		e := newEnv(t, srv, world()...)
		ctx := itCtx(t)
		c := e.login(ctx)
		e.registerAndApprove(ctx, c, smallWorldNicks())
		waitQQ(t, e.sim, "QQ login", func(s qqsim.SessionInfo) bool { return s.LoggedIn && s.State == qqproto.StatusOnline })
		sendXML(t, ctx, c, `<presence><show>dnd</show></presence>`)
		waitQQ(t, e.sim, "state 30", func(s qqsim.SessionInfo) bool { return s.State == qqproto.StatusBusy })
	})
}

func TestIntegrationUserOfflineLogsOut(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, world()...)
		ctx := itCtx(t)
		c := e.login(ctx)
		e.registerAndApprove(ctx, c, smallWorldNicks())
		waitQQ(t, e.sim, "QQ login", func(s qqsim.SessionInfo) bool { return s.LoggedIn })
		sendXML(t, ctx, c, `<presence type="unavailable"/>`)
		waitQQ(t, e.sim, "QQ logout", func(s qqsim.SessionInfo) bool { return !s.LoggedIn })
	})
}

func TestIntegrationRestartBringsSessionBack(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, world()...)
		ctx := itCtx(t)
		c := e.login(ctx)
		e.registerAndApprove(ctx, c, smallWorldNicks())
		next(t, ctx, c, "Bob available", presFrom(itBuddy(20001), ""))
		waitQQ(t, e.sim, "QQ login", func(s qqsim.SessionInfo) bool { return s.LoggedIn })

		e.stopGW()
		next(t, ctx, c, "Bob unavailable at shutdown", presFrom(itBuddy(20001), "unavailable"))
		next(t, ctx, c, "gateway unavailable at shutdown", presFrom(itDomain, "unavailable"))
		if e.sim.Session(10001).LoggedIn {
			t.Fatal("QQ session survived the shutdown")
		}
		logins := e.sim.Session(10001).Logins

		e.startGateway() // the user does nothing
		waitQQ(t, e.sim, "QQ login after restart", func(s qqsim.SessionInfo) bool { return s.LoggedIn && s.Logins > logins })
		next(t, ctx, c, "Bob available again", presFrom(itBuddy(20001), ""))
	})
}

func TestIntegrationUnregister(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, world()...)
		ctx := itCtx(t)
		c := e.login(ctx)
		e.registerAndApprove(ctx, c, smallWorldNicks())
		waitQQ(t, e.sim, "QQ login", func(s qqsim.SessionInfo) bool { return s.LoggedIn })
		ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(
			fmt.Sprintf(`<iq type="set" id="unreg" to=%q><query xmlns="jabber:iq:register"><remove/></query></iq>`, itDomain))))
		if err != nil || ans.Type != "result" {
			t.Fatalf("remove: %s %v", ans, err)
		}
		for _, from := range []string{itDomain, itBuddy(20001), itBuddy(20002), itBuddy(20003)} {
			for _, typ := range []string{"unsubscribe", "unsubscribed"} {
				next(t, ctx, c, typ+" from "+from, presFrom(from, typ))
			}
		}
		if _, err := e.st.Registration(ctx, e.bare()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("registration left in the store: %v", err)
		}
		if cs, err := e.st.Contacts(ctx, e.bare()); err != nil || len(cs) != 0 {
			t.Errorf("contacts left in the store: %v %v", cs, err)
		}
		waitQQ(t, e.sim, "QQ logout", func(s qqsim.SessionInfo) bool { return !s.LoggedIn })
	})
}

func waitQQ(t *testing.T, sim *qqsim.Server, what string, cond func(qqsim.SessionInfo) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(sim.Session(10001)) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s; qqsim says %+v", what, sim.Session(10001))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// itLogger logs to the test when GATEWAY_TEST_LOG is set (to a logrus
// level), and discards otherwise.
func itLogger(t *testing.T) logrus.FieldLogger {
	lvl, err := logrus.ParseLevel(os.Getenv("GATEWAY_TEST_LOG"))
	if err != nil {
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
