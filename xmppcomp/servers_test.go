//go:build integration

package xmppcomp_test

import (
	"os"
	"testing"
	"time"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// The tests in files tagged integration run against real Prosody and
// ejabberd (xmpptest): go test -tags integration ./xmppcomp/...

func TestMain(m *testing.M) { os.Exit(xmpptest.Main(m)) }

var sharedOpts = xmpptest.Options{ComponentDomain: compDomain, Secret: compSecret}

// componentConfig is a Config for srv with short waits for tests.
func componentConfig(srv *xmpptest.Server) xmppcomp.Config {
	return xmppcomp.Config{Domain: srv.ComponentDomain, Server: srv.ComponentAddr, Secret: srv.Secret,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, DialTimeout: 2 * time.Second}
}

// startComponent runs a component against srv until the test ends and waits
// until it is connected.
func startComponent(t testing.TB, srv *xmpptest.Server, h xmppcomp.Handler, edit func(*xmppcomp.Config)) *xmppcomp.Component {
	t.Helper()
	cfg := componentConfig(srv)
	if edit != nil {
		edit(&cfg)
	}
	c, _ := runComponent(t, cfg, h)
	waitConnected(t, c, 10*time.Second)
	return c
}
