//go:build integration

package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The running daemon with [metrics] listen: ready while connected, a
// user's message counted once it reached QQ, and the listener gone after
// SIGTERM.
func TestDaemonServesMetricsAndProbes(t *testing.T) {
	s := newStack(t, dSecret)
	addr := freeAddr(t)
	f, err := os.OpenFile(s.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[metrics]\nlisten = %q\n", addr)
	f.Close()
	ctx := testCtx(t)
	p, c := s.online(t, ctx)
	base := "http://" + addr

	if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("/readyz while connected: %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	c.SendXML(t, ctx, `<message to=%q type="chat" id="m1"><body>hello Bob</body></message>`, "20001@"+dTransport)
	want := []string{"\nqqgateway_component_connected 1\n", "\nqqgateway_users_registered 1\n",
		"\nqqgateway_sessions_online 1\n", "\nqqgateway_messages_relayed_total{direction=\"to_qq\"} 1\n",
		"\nqqgateway_qq_requests_total{command=\"CLTMSG\",result=\"ok\"} 1\n"}
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body = get(t, base+"/metrics")
		missing := 0
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks some of %q:\n%s", want, body)
		}
	}
	inbox := s.sim.Inbox(20001)
	if len(inbox) != 1 || inbox[0].Text != "hello Bob" || inbox[0].Type != qqproto.MsgBuddy {
		t.Errorf("Bob's inbox: %+v", inbox)
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 8*time.Second); code != exitOK {
		t.Errorf("exit code %d", code)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the metrics listener outlived the process")
	}
}
