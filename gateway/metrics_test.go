package gateway

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp"
)

// newMeteredHarness is a harness whose gateway reports to metrics
// registered with a registry of its own.
func newMeteredHarness(t *testing.T) (*harness, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, qqsim.Options{}, world()...)
	h.stop()
	h.cfg.Metrics = m
	h.start()
	return h, reg
}

// scrape reads every series as a scrape would see it, by name and then
// labels as name="value" pairs joined with commas in name order. A counter
// or gauge gives its value, a histogram its sample count.
func scrape(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[seriesName(mf.GetName(), m.GetLabel())] = sampleValue(m)
		}
	}
	return out
}

func seriesName(name string, labels []*dto.LabelPair) string {
	pairs := make([]string, len(labels))
	for i, l := range labels {
		pairs[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// moved is how much each series in after differs from before, without
// the series that did not move.
func moved(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// wantMoved fails unless the series named in want moved by exactly that
// much.
func wantMoved(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s moved by %v, want %v", k, got[k], v)
		}
	}
}

// N messages each way move the relay counters, the latency histograms
// and QQ's CLTMSG count by exactly N, and no failure counter at all.
func TestMetricsCountExactlyTheMessagesRelayed(t *testing.T) {
	h, reg := newMeteredHarness(t)
	h.online("")
	h.quiesce()
	before := scrape(t, reg)
	const n = 7
	for i := range n {
		h.userMessage(h.id(), buddyAddr(20001), fmt.Sprintf("<body>to bob %d</body>", i))
	}
	h.eventually("every message at Bob's", func() bool { return len(h.inboxFrom(20001)) == n })
	for i := range n {
		if err := h.sim.Send(20001, 10001, fmt.Sprintf("to alice %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		h.waitFor(fmt.Sprintf("message %d from Bob", i), messageFrom(buddyAddr(20001)))
	}
	h.eventually("delivery queue emptied", func() bool { return len(h.pendingToXMPP()) == 0 })
	h.quiesce()
	after := scrape(t, reg)
	got := moved(before, after)
	wantMoved(t, got, map[string]float64{
		`qqgateway_messages_relayed_total{direction="to_qq"}`:                   n,
		`qqgateway_messages_relayed_total{direction="to_xmpp"}`:                 n,
		`qqgateway_relay_latency_seconds{direction="to_qq"}`:                    n,
		`qqgateway_relay_latency_seconds{direction="to_xmpp"}`:                  n,
		`qqgateway_qq_requests_total{command="CLTMSG",result="ok"}`:             n,
		`qqgateway_qq_request_duration_seconds{command="CLTMSG"}`:               n,
		`qqgateway_queue_messages{direction="to_xmpp"}`:                         0,
		`qqgateway_queue_messages{direction="to_qq"}`:                           0,
		`qqgateway_qq_requests_total{command="GetMsgEx",result="session_lost"}`: 0,
		`qqgateway_stanzas_received_total{}`:                                    n,
	})
	// Bob's messages went out, each confirmed by a delivery ping shared
	// with those sent at the same time.
	if out := got["qqgateway_stanzas_sent_total{}"]; out < n {
		t.Errorf("qqgateway_stanzas_sent_total moved by %v, want at least the %d messages", out, n)
	}
	if b := got["qqgateway_delivery_barriers_total{}"]; b < 1 || b > n {
		t.Errorf("qqgateway_delivery_barriers_total moved by %v, want 1 to %d", b, n)
	}
	// Each message was written at least twice (queued, removed), in as
	// many commits at most.
	if c, w := got["qqgateway_store_commits_total{}"], got["qqgateway_store_writes_total{}"]; c < 1 || w < 2*n || c > w {
		t.Errorf("the store's commits moved by %v and its writes by %v; want 1 to writes, and at least %d writes", c, w, 2*n)
	}
	for k := range got {
		if strings.HasPrefix(k, "qqgateway_messages_failed_total") || strings.HasPrefix(k, "qqgateway_stanza_errors_sent_total") {
			t.Errorf("%s moved by %v while every message got through", k, got[k])
		}
	}
	// Every poll started is a GetMsgEx request finished, and there were some.
	polls, requests := after["qqgateway_polls_total{}"], 0.0
	for k, v := range after {
		if strings.HasPrefix(k, `qqgateway_qq_requests_total{command="GetMsgEx"`) {
			requests += v
		}
	}
	if polls == 0 || polls != requests {
		t.Errorf("qqgateway_polls_total is %v, GetMsgEx requests %v; want the same, above 0", polls, requests)
	}
	for k, want := range map[string]float64{"qqgateway_users_registered{}": 1, "qqgateway_sessions_online{}": 1} {
		if after[k] != want {
			t.Errorf("%s = %v, want %v", k, after[k], want)
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// Messages refused count as failed, with their reason, and as the stanza
// errors the user got; nothing reaches QQ.
func TestMetricsCountRefusedMessagesAndTheirStanzaErrors(t *testing.T) {
	h, reg := newMeteredHarness(t)
	h.online("")
	h.presence(aliceFull, testDomain, presUnavailable, "")
	h.eventually("logged out", func() bool { return !h.sim.Session(10001).LoggedIn })
	h.quiesce()
	if v := scrape(t, reg)["qqgateway_sessions_online{}"]; v != 0 {
		t.Errorf("qqgateway_sessions_online is %v after the logout, want 0", v)
	}
	before := scrape(t, reg)
	const n = 3
	for range n {
		id := h.id()
		h.userMessage(id, buddyAddr(20001), "<body>while offline</body>")
		h.waitFor("error for "+id, func(st xmppcomp.Stanza) bool { return st.ID == id && st.Type == "error" })
	}
	// And one from a JID that never registered.
	h.in(`<message xmlns="jabber:component:accept" type="chat" id="x1" from="eve@example.org/pc" to=%q><body>hi</body></message>`, buddyAddr(20001))
	h.waitFor("error for eve", func(st xmppcomp.Stanza) bool { return st.ID == "x1" && st.Type == "error" })
	h.quiesce()
	got := moved(before, scrape(t, reg))
	wantMoved(t, got, map[string]float64{
		`qqgateway_messages_failed_total{direction="to_qq",reason="not_logged_in"}`:  n,
		`qqgateway_messages_failed_total{direction="to_qq",reason="not_registered"}`: 1,
		`qqgateway_stanza_errors_sent_total{condition="service-unavailable"}`:        n,
		`qqgateway_stanza_errors_sent_total{condition="registration-required"}`:      1,
		`qqgateway_messages_relayed_total{direction="to_qq"}`:                        0,
		`qqgateway_qq_requests_total{command="CLTMSG",result="ok"}`:                  0,
		`qqgateway_stanzas_received_total{}`:                                         n + 1,
		`qqgateway_stanzas_sent_total{}`:                                             n + 1, // the errors
	})
	delete(got, "qqgateway_store_commits_total{}") // the refused messages were queued and removed
	delete(got, "qqgateway_store_writes_total{}")
	if len(got) != 6 {
		t.Errorf("moved: %v; want only the failures, the stanza errors and the stanzas", got)
	}
}

// The queue gauges show what waits and for how long; the component gauge
// follows each connection's life.
func TestMetricsShowTheQueueAndTheComponent(t *testing.T) {
	h, reg := newMeteredHarness(t)
	h.online("")
	h.out.down.Store(true)
	for i := range 3 {
		if err := h.sim.Send(20002, 10001, fmt.Sprintf("waits %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("3 messages queued", func() bool { return len(h.pendingToXMPP()) == 3 })
	h.advance(10 * time.Second)
	s := scrape(t, reg)
	if v := s[`qqgateway_queue_messages{direction="to_xmpp"}`]; v != 3 {
		t.Errorf("to_xmpp queue depth %v, want 3", v)
	}
	if v := s[`qqgateway_queue_oldest_age_seconds{direction="to_xmpp"}`]; v < 10 || v > 12 {
		t.Errorf("oldest to_xmpp age %vs, want 10s to 12s after the fetch", v)
	}
	if v := s[`qqgateway_queue_oldest_age_seconds{direction="to_qq"}`]; v != 0 {
		t.Errorf("oldest to_qq age %v with nothing queued, want 0", v)
	}

	if v := s["qqgateway_component_connected{}"]; v != 0 {
		t.Fatalf("component_connected is %v before any connection", v)
	}
	h.out.down.Store(false)
	conn1, lost1 := context.WithCancel(context.Background())
	h.g.OnConnect(conn1)
	s = scrape(t, reg)
	if s["qqgateway_component_connected{}"] != 1 || s["qqgateway_component_reconnects_total{}"] != 0 {
		t.Errorf("after the first connect: connected %v, reconnects %v; want 1 and 0",
			s["qqgateway_component_connected{}"], s["qqgateway_component_reconnects_total{}"])
	}
	lost1()
	h.eventually("component_connected back to 0", func() bool { return scrape(t, reg)["qqgateway_component_connected{}"] == 0 })
	conn2, lost2 := context.WithCancel(context.Background())
	defer lost2()
	h.g.OnConnect(conn2)
	s = scrape(t, reg)
	if s["qqgateway_component_connected{}"] != 1 || s["qqgateway_component_reconnects_total{}"] != 1 {
		t.Errorf("after a reconnect: connected %v, reconnects %v; want 1 and 1",
			s["qqgateway_component_connected{}"], s["qqgateway_component_reconnects_total{}"])
	}
}

// Two gateways' metrics on one registry would mix: NewMetrics refuses.
func TestNewMetricsRefusesARegistryTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("a second NewMetrics on one registry succeeded")
	}
}
