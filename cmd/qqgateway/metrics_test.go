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
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// scrapeGateway serves the metrics of a gateway (not running) on a store
// with a registered user and a queued message, and returns a scrape.
func scrapeGateway(t *testing.T) string {
	t.Helper()
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
	return body
}

// A scrape of a gateway with a registered user and a queued message shows
// them, with the runtime's metrics, in a form promtool accepts.
func TestMetricsScrapePassesPromtool(t *testing.T) {
	body := scrapeGateway(t)
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

// docs/operations.md lists every metric of the gateway and no other, and
// its alert rules are valid rules on metrics that exist.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, ok := markdownSection(string(doc), "## Metrics and alerts")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Metrics and alerts" section`)
	}
	scraped := descNames{}
	if _, err := gateway.NewMetrics(scraped); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(qqgateway_\\w+)` \\|").FindAllStringSubmatch(section, -1) {
		listed[m[1]] = true
	}
	for name := range scraped {
		if !listed[name] {
			t.Errorf("%s is not in the table of docs/operations.md", name)
		}
	}
	for name := range listed {
		if !scraped[name] {
			t.Errorf("docs/operations.md lists %s, which the gateway does not have", name)
		}
	}
	rules, ok := fencedBlock(section, "groups:")
	if !ok {
		t.Fatal("the section has no ```yaml block of alert rules")
	}
	suffix := regexp.MustCompile(`_(bucket|sum|count)$`)
	for _, name := range regexp.MustCompile(`qqgateway_\w+`).FindAllString(rules, -1) {
		if !scraped[suffix.ReplaceAllString(name, "")] {
			t.Errorf("an alert rule uses %s, which the gateway does not have", name)
		}
	}
	file := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(lookPromtool(t), "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

// markdownSection is the text of doc from the heading line to the next
// heading of the same level.
func markdownSection(doc, heading string) (string, bool) {
	start := strings.Index(doc, "\n"+heading+"\n")
	if start < 0 {
		return "", false
	}
	rest := doc[start+1:]
	if end := strings.Index(rest[len(heading):], "\n"+heading[:strings.Index(heading, " ")+1]); end >= 0 {
		rest = rest[:len(heading)+end+1]
	}
	return rest, true
}

// fencedBlock is the first ```yaml block of text that contains want.
func fencedBlock(text, want string) (string, bool) {
	for _, part := range strings.Split(text, "```yaml\n")[1:] {
		block, _, ok := strings.Cut(part, "\n```")
		if ok && strings.Contains(block, want) {
			return block + "\n", true
		}
	}
	return "", false
}

// descNames is a prometheus.Registerer that keeps the names of the
// metrics registered with it, including vectors without a series yet.
type descNames map[string]bool

var fqName = regexp.MustCompile(`fqName: "(\w+)"`)

func (d descNames) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d[m[1]] = true
		}
	}
	return nil
}

func (d descNames) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		d.Register(c)
	}
}

func (d descNames) Unregister(prometheus.Collector) bool { return false }
