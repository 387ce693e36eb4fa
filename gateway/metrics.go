package gateway

// Prometheus metrics. The gateway calls plain methods of *Metrics at the
// few places where something worth counting happens; without
// Config.Metrics it keeps metrics of its own, registered nowhere, which the
// admins' stats command reads (totals). A nil *Metrics makes each method a
// no-op. What only the store or the sessions know
// (users, queue depth, sessions online) is asked for at scrape time.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// Metrics are the gateway's Prometheus metrics, all named qqgateway_*.
// Create them with NewMetrics and pass them as Config.Metrics. The scrape
// asks the Gateway that New made last with them: a gateway made anew in
// the same process carries on with the same counters.
type Metrics struct {
	relayed      *prometheus.CounterVec   // direction
	failed       *prometheus.CounterVec   // direction, reason
	qqRequests   *prometheus.CounterVec   // command, result
	qqDuration   *prometheus.HistogramVec // command
	relayLatency *prometheus.HistogramVec // direction
	stanzaErrors *prometheus.CounterVec   // condition
	drops        *prometheus.CounterVec   // reason
	polls        prometheus.Counter
	reconnects   prometheus.Counter
	stanzasIn    prometheus.Counter
	stanzasOut   prometheus.Counter
	barriers     prometheus.Counter

	links atomic.Int64            // live component connections (0 or 1; 2 for a moment while one ends)
	gw    atomic.Pointer[Gateway] // the gateway whose store and sessions are asked at scrape time
}

// Label values of the direction label.
const (
	labelToQQ   = "to_qq"
	labelToXMPP = "to_xmpp"
)

func dirLabel(d store.Direction) string {
	if d == store.ToQQ {
		return labelToQQ
	}
	return labelToXMPP
}

// Buckets in seconds. A QQ request may take up to max_attempts times the
// timeout; a message to XMPP waits in the queue while its user is offline,
// so its latency reaches hours.
var (
	qqBuckets    = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	relayBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 4 * 3600}
)

// NewMetrics creates the gateway's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("gateway: NewMetrics: Registerer is nil")
	}
	m := &Metrics{
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qqgateway_messages_relayed_total",
			Help: "Messages relayed: to_qq once QQ accepted every part, to_xmpp once the XMPP server confirmed it."}, []string{"direction"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qqgateway_messages_failed_total",
			Help: "Messages that did not get through, by direction and reason."}, []string{"direction", "reason"}),
		qqRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qqgateway_qq_requests_total",
			Help: "QQ requests by protocol command and result; a paged listing or a retried request counts once."}, []string{"command", "result"}),
		qqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "qqgateway_qq_request_duration_seconds",
			Help: "Time QQ requests took, retries included, by protocol command.", Buckets: qqBuckets}, []string{"command"}),
		relayLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "qqgateway_relay_latency_seconds",
			Help:    "Time from receipt to delivery: to_qq from the gateway's door to CLTMSG accepted, to_xmpp from the poll that fetched it to the XMPP server's confirmation.",
			Buckets: relayBuckets}, []string{"direction"}),
		stanzaErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qqgateway_stanza_errors_sent_total",
			Help: "Stanza errors sent to users, by defined condition."}, []string{"condition"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qqgateway_stanzas_dropped_total",
			Help: "Inbound stanzas dropped unanswered, by reason: flood, a user with more waiting than even the refusals may."}, []string{"reason"}),
		polls: prometheus.NewCounter(prometheus.CounterOpts{Name: "qqgateway_polls_total",
			Help: "GetMsgEx polls the sessions started."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "qqgateway_component_reconnects_total",
			Help: "Connections of the XMPP component after its first one."}),
		stanzasIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "qqgateway_stanzas_received_total",
			Help: "Stanzas the XMPP server sent the gateway, besides the answers to its own pings and requests."}),
		stanzasOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "qqgateway_stanzas_sent_total",
			Help: "Stanzas the gateway sent the XMPP server, besides its delivery pings (qqgateway_delivery_barriers_total)."}),
		barriers: prometheus.NewCounter(prometheus.CounterOpts{Name: "qqgateway_delivery_barriers_total",
			Help: "Pings sent to learn that the XMPP server took the messages sent before them, shared by the sessions waiting at once."}),
	}
	for _, d := range []string{labelToQQ, labelToXMPP} {
		m.relayed.WithLabelValues(d)
		m.relayLatency.WithLabelValues(d)
	}
	for _, c := range []prometheus.Collector{m.relayed, m.failed, m.qqRequests, m.qqDuration, m.relayLatency,
		m.stanzaErrors, m.drops, m.polls, m.reconnects, m.stanzasIn, m.stanzasOut, m.barriers, scrapeCollector{m}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway: NewMetrics: %w", err)
		}
	}
	return m, nil
}

// attach makes g the gateway asked at scrape time.
func (m *Metrics) attach(g *Gateway) {
	if m != nil {
		m.gw.Store(g)
	}
}

// stanzaIn counts n stanzas that came in; stanzaOut one sent; barrier a
// delivery ping sent.
func (m *Metrics) stanzaIn(n int) {
	if m != nil {
		m.stanzasIn.Add(float64(n))
	}
}

func (m *Metrics) stanzaOut() {
	if m != nil {
		m.stanzasOut.Inc()
	}
}

func (m *Metrics) barrier() {
	if m != nil {
		m.barriers.Inc()
	}
}

// relayedMsg counts a message that got through, latency after it came in.
func (m *Metrics) relayedMsg(d store.Direction, latency time.Duration) {
	if m == nil {
		return
	}
	m.relayed.WithLabelValues(dirLabel(d)).Inc()
	m.relayLatency.WithLabelValues(dirLabel(d)).Observe(max(latency, 0).Seconds())
}

// failedMsg counts n messages that did not get through.
func (m *Metrics) failedMsg(d store.Direction, reason string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.failed.WithLabelValues(dirLabel(d), reason).Add(float64(n))
}

// qqRequest counts one request of the QQ seam.
func (m *Metrics) qqRequest(cmd string, err error, took time.Duration) {
	if m == nil {
		return
	}
	m.qqRequests.WithLabelValues(cmd, qqResult(err)).Inc()
	m.qqDuration.WithLabelValues(cmd).Observe(took.Seconds())
}

// stanzaError counts a stanza error sent.
func (m *Metrics) stanzaError(c stanza.Condition) {
	if m != nil {
		m.stanzaErrors.WithLabelValues(string(c)).Inc()
	}
}

// dropped counts an inbound stanza dropped unanswered.
func (m *Metrics) dropped(reason string) {
	if m != nil {
		m.drops.WithLabelValues(reason).Inc()
	}
}

// poll counts a GetMsgEx poll started.
func (m *Metrics) poll() {
	if m != nil {
		m.polls.Inc()
	}
}

// connected notes a component connection, which lasts until ctx ends;
// epoch counts the connections so far.
func (m *Metrics) connected(ctx context.Context, epoch uint64) {
	if m == nil {
		return
	}
	m.links.Add(1)
	context.AfterFunc(ctx, func() { m.links.Add(-1) })
	if epoch > 1 {
		m.reconnects.Inc()
	}
}

// qqResult is the result label of a QQ request's error, as the seam
// returns it.
func qqResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrSessionLost):
		return "session_lost"
	case errors.As(err, new(*UnreachableError)), errors.Is(err, context.DeadlineExceeded):
		return "unreachable"
	case errors.As(err, new(*LoginRefusedError)), errors.As(err, new(*RefusedError)),
		errors.Is(err, ErrUnknownNumber), errors.Is(err, ErrAcceptsNobody):
		return "refused"
	}
	return "error"
}

// failReason is the reason label of a message to QQ that failed with err.
func failReason(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "shutdown"
	case errors.Is(err, errRegistrationRequired):
		return "not_registered"
	case errors.Is(err, errNoQQSession):
		return "not_logged_in"
	case errors.Is(err, ErrSessionLost):
		return "session_lost"
	case errors.Is(err, ErrUnknownNumber):
		return "unknown_number"
	case errors.As(err, new(*UnreachableError)), errors.Is(err, context.DeadlineExceeded):
		return "qq_unreachable"
	case errors.As(err, new(*RefusedError)), errors.As(err, new(*LoginRefusedError)):
		return "qq_refused"
	}
	return "other"
}

// isMessage reports whether a queued QQ item becomes a message (a buddy's
// chat or a notice) rather than a step of a contact flow.
func isMessage(it store.Item) bool {
	switch qqproto.MessageType(it.MsgType) {
	case qqproto.MsgAddRequest, qqproto.MsgAddAccepted, qqproto.MsgAddRefused:
		return qqproto.UIN(it.Peer) == qqproto.SystemUIN
	}
	return true
}

// totals are the counts the admins' stats command shows, read from the
// metrics themselves so that both always agree.
type totals struct {
	toQQ, toXMPP             uint64 // messages relayed
	failedToQQ, failedToXMPP uint64 // messages that did not get through
	qqRequests, qqErrors     uint64 // QQ requests, and those whose result was not ok
}

// totals sums the counters over their labels.
func (m *Metrics) totals() totals {
	var t totals
	sumCounter(m.relayed, func(l map[string]string, v uint64) {
		if l["direction"] == labelToQQ {
			t.toQQ += v
		} else {
			t.toXMPP += v
		}
	})
	sumCounter(m.failed, func(l map[string]string, v uint64) {
		if l["direction"] == labelToQQ {
			t.failedToQQ += v
		} else {
			t.failedToXMPP += v
		}
	})
	sumCounter(m.qqRequests, func(l map[string]string, v uint64) {
		t.qqRequests += v
		if l["result"] != "ok" {
			t.qqErrors += v
		}
	})
	return t
}

// sumCounter calls add with the labels and value of each counter c has.
func sumCounter(c prometheus.Collector, add func(labels map[string]string, v uint64)) {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil || d.Counter == nil {
			continue
		}
		l := make(map[string]string, len(d.Label))
		for _, p := range d.Label {
			l[p.GetName()] = p.GetValue()
		}
		add(l, uint64(d.Counter.GetValue()))
	}
}

// ---- asked at scrape time ----

// scrapeTimeout bounds the store queries of one scrape.
const scrapeTimeout = 5 * time.Second

var (
	descUsers = prometheus.NewDesc("qqgateway_users_registered",
		"Jabber users registered with the gateway.", nil, nil)
	descSessions = prometheus.NewDesc("qqgateway_sessions_online",
		"Sessions logged in to QQ.", nil, nil)
	descQueue = prometheus.NewDesc("qqgateway_queue_messages",
		"Items waiting in the store: to_xmpp the delivery queue, to_qq the outbox.", []string{"direction"}, nil)
	descOldest = prometheus.NewDesc("qqgateway_queue_oldest_age_seconds",
		"Age of the oldest item waiting in the store; 0 when none waits.", []string{"direction"}, nil)
	descConnected = prometheus.NewDesc("qqgateway_component_connected",
		"1 while the XMPP component is connected to its server, else 0.", nil, nil)
	descCommits = prometheus.NewDesc("qqgateway_store_commits_total",
		"Transactions of the store's group commit: the relay's writes, shared by the sessions writing at once.", nil, nil)
	descWrites = prometheus.NewDesc("qqgateway_store_writes_total",
		"Writes those transactions held (queued, removed and fetched messages, poll SEQs).", nil, nil)
)

// scrapeCollector reports what is read when Prometheus scrapes.
type scrapeCollector struct{ m *Metrics }

func (c scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUsers, descSessions, descQueue, descOldest, descConnected, descCommits, descWrites} {
		ch <- d
	}
}

func (c scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.m.links.Load() > 0 {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, up)
	g := c.m.gw.Load()
	if g == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(g.onlineSessions()))
	groups, writes := g.st.Commits()
	ch <- prometheus.MustNewConstMetric(descCommits, prometheus.CounterValue, float64(groups))
	ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, float64(writes))
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if n, err := g.st.RegistrationCount(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(descUsers, err)
	} else {
		ch <- prometheus.MustNewConstMetric(descUsers, prometheus.GaugeValue, float64(n))
	}
	depth, oldest, err := g.st.QueueStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descQueue, err)
		return
	}
	now := g.clock.Now()
	for _, d := range []store.Direction{store.ToXMPP, store.ToQQ} {
		age := 0.0
		if t, ok := oldest[d]; ok {
			age = max(now.Sub(t).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(depth[d]), dirLabel(d))
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, dirLabel(d))
	}
}
