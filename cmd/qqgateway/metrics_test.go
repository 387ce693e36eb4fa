package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/gateway"
	"qqxmpp/store"
)

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// A scrape of a gateway with a registered user and a queued message shows
// them, with the runtime's metrics, in a form promtool accepts.
func TestMetricsScrapePassesPromtool(t *testing.T) {
	ms, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.close)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "gw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutRegistration(ctx, store.Registration{JID: "alice@example.org", UIN: 10001, PasswordMD5: strings.Repeat("a", 32)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(ctx, store.Item{Dir: store.ToXMPP, JID: "alice@example.org", Peer: 20001, Text: "hi",
		Received: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	cfg := gateway.DefaultConfig("qq.example.org")
	cfg.Metrics = ms.metrics()
	if _, err := gateway.New(cfg, st); err != nil {
		t.Fatal(err)
	}
	ms.serve(func(context.Context) error { return nil }, quietLog())
	code, body := get(t, "http://"+ms.ln.Addr().String()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, want := range []string{"\nqqgateway_users_registered 1\n", "\nqqgateway_queue_messages{direction=\"to_xmpp\"} 1\n",
		"\nqqgateway_component_connected 0\n", "\nqqgateway_messages_relayed_total{direction=\"to_qq\"} 0\n",
		"# TYPE qqgateway_relay_latency_seconds histogram\n", "\ngo_goroutines ", "\nprocess_start_time_seconds "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	promtool := lookPromtool(t)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// lookPromtool finds promtool (Debian's prometheus package); without it
// the test fails under CI and is skipped elsewhere.
func lookPromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	const hint = "promtool not found: apt-get install prometheus"
	if os.Getenv("CI") == "true" {
		t.Fatal(hint)
	}
	t.Skip(hint + " (the check runs, and fails without it, when CI=true)")
	return ""
}

// /healthz answers while the process runs; /readyz only while the
// readiness check passes, else 503 with its reason on one line.
func TestReadyzFollowsTheComponentAndTheStore(t *testing.T) {
	var problem atomic.Pointer[error]
	ready := func(context.Context) error {
		if p := problem.Load(); p != nil {
			return *p
		}
		return nil
	}
	srv := httptest.NewServer(probeHandler(nil, ready, quietLog()))
	defer srv.Close()
	for _, c := range []struct {
		problem error
		code    int
		body    string
	}{
		{nil, 200, "ready\n"},
		{errors.New("not connected to the XMPP server at 127.0.0.1:5347"), 503, "not ready: not connected to the XMPP server at 127.0.0.1:5347\n"},
		{errors.New("the database does not take writes:\ndisk full"), 503, "not ready: the database does not take writes:; disk full\n"},
		{nil, 200, "ready\n"},
	} {
		if c.problem != nil {
			problem.Store(&c.problem)
		} else {
			problem.Store(nil)
		}
		if code, body := get(t, srv.URL+"/readyz"); code != c.code || body != c.body {
			t.Errorf("with %v: /readyz %d %q, want %d %q", c.problem, code, body, c.code, c.body)
		}
		if code, _ := get(t, srv.URL+"/healthz"); code != 200 {
			t.Errorf("with %v: /healthz %d, want 200", c.problem, code)
		}
	}
}

// No address, no listener; a taken address stops the start with an error
// that names the key.
func TestListenMetrics(t *testing.T) {
	if ms, err := listenMetrics(""); ms != nil || err != nil || ms.metrics() != nil {
		t.Errorf(`listenMetrics("") = %v, %v; want nil, nil`, ms, err)
	}
	ms, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ms.close()
	_, err = listenMetrics(ms.ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "[metrics] listen") {
		t.Errorf("a taken port: %v, want an error naming [metrics] listen", err)
	}
}
