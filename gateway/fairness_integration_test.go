//go:build integration

package gateway

// Fairness against a real server (issue 13, finding 8): one user's flood
// of IQs must not hold back another user's answers, and the flooder hears
// resource-constraint for what the gateway would not queue, never silence.

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// floodIQs is how many IQs the flooding user sends as fast as the socket
// takes them.
const floodIQs = 20000

// floodCounts is what the flooder got back, and what the gateway dropped.
type floodCounts struct{ results, constraint, other, dropped int }

func (n floodCounts) answers() int { return n.results + n.constraint + n.other }

func TestIntegrationFloodDoesNotDelayOthers(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, nil, world()...)
		ctx := itCtx(t, 2*time.Minute)
		a := srv.NewClient(t, ctx, t.Name()+"-flooder")
		b := e.login(ctx)
		pingBuddy(ctx, t, e, b) // the first answer is not a cold start

		var got floodCounts
		floodDone := make(chan struct{})
		var sent sync.WaitGroup
		sent.Add(1)
		go func() { defer sent.Done(); flood(ctx, t, a) }()
		go func() { defer close(floodDone); got = countFloodAnswers(ctx, a, e.gw.cfg.Metrics) }()

		lat := pingWhileFlooding(ctx, t, e, b, floodDone)
		sent.Wait()
		<-floodDone // got is written
		slices.Sort(lat)
		p50, p90, p99 := lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)*99/100]
		t.Logf("%s: flooder got %d results, %d resource-constraint, %d other, %d dropped; other user's %d pings: p50 %v, p90 %v, p99 %v",
			srv.Kind, got.results, got.constraint, got.other, got.dropped, len(lat), p50, p90, p99)
		// Before the fix, on this 2-core machine: p50 0.6-0.8 s, p90 and
		// p99 2-3.8 s. After: p50 15-35 ms, p90 0.1-0.46 s; the slowest
		// pings (0.25-0.9 s) wait in the server itself, busy parsing the
		// flood: the gateway answered each within a millisecond.
		// Under -race the gateway itself is slow enough to be the bottleneck
		// (p99 up to 5.5 s seen): the counts below are still checked.
		if !raceDetector && (p50 > 250*time.Millisecond || p90 > time.Second) {
			t.Errorf("the other user's answers took p50 %v, p90 %v during the flood; want ≤ 250ms and ≤ 1s", p50, p90)
		}
		if got.answers()+got.dropped != floodIQs {
			t.Errorf("flooder got %d answers to %d IQs, and %d were dropped", got.answers(), floodIQs, got.dropped)
		}
		if got.constraint == 0 || got.other != 0 {
			t.Errorf("flooder got %d resource-constraint and %d other errors; want some of the first, none of the second", got.constraint, got.other)
		}
	})
}

// flood sends floodIQs disco#info and disco#items IQs to the gateway's
// domain, alternately.
func flood(ctx context.Context, t *testing.T, a *xmpptest.Client) {
	for i := range floodIQs {
		var err error
		if i%2 == 0 {
			err = sendText(ctx, a, fmt.Sprintf(`<iq type="get" id="f%d" to=%q><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, i, itDomain))
		} else {
			err = sendText(ctx, a, fmt.Sprintf(`<iq type="get" id="f%d" to=%q><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`, i, itDomain))
		}
		if err != nil {
			t.Errorf("flood stopped after %d IQs: %v", i, err)
			return
		}
	}
}

// countFloodAnswers reads the flooder's answers until every IQ was
// answered or counted as dropped, or ctx ends.
func countFloodAnswers(ctx context.Context, a *xmpptest.Client, m *Metrics) floodCounts {
	var n floodCounts
	for n.answers()+n.dropped < floodIQs && ctx.Err() == nil {
		wait, cancel := context.WithTimeout(ctx, time.Second)
		st, err := a.Next(wait, func(st xmppcomp.Stanza) bool { return st.Name == "iq" })
		cancel()
		if err != nil {
			n.dropped = int(testutil.ToFloat64(m.drops.WithLabelValues("flood")))
			continue
		}
		switch {
		case st.Type == "result":
			n.results++
		case st.Type == "error" && isConstraint(st):
			n.constraint++
		default:
			n.other++
		}
	}
	return n
}

// pingWhileFlooding pings a buddy as b every 100 ms until the flood is
// answered, and returns each answer's latency.
func pingWhileFlooding(ctx context.Context, t *testing.T, e *itEnv, b *xmpptest.Client, floodDone <-chan struct{}) []time.Duration {
	var lat []time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		lat = append(lat, pingBuddy(ctx, t, e, b))
		select {
		case <-floodDone:
			return lat
		case <-tick.C:
		case <-ctx.Done():
			return lat
		}
	}
}

// sendText sends one stanza written out as text.
func sendText(ctx context.Context, c *xmpptest.Client, text string) error {
	return c.Send(ctx, xml.NewDecoder(strings.NewReader(text)))
}

func isConstraint(st xmppcomp.Stanza) bool {
	cond, _, _, err := readStanzaError(st)
	return err == nil && cond == "resource-constraint"
}

// pingBuddy pings a buddy as b and returns how long the answer took. Not
// registered, b gets registration-required: an answer of b's session all
// the same.
func pingBuddy(ctx context.Context, t *testing.T, e *itEnv, b *xmpptest.Client) time.Duration {
	id := e.id("fair")
	start := time.Now()
	b.SendXML(t, ctx, `<iq type="get" id=%q to=%q><ping xmlns="urn:xmpp:ping"/></iq>`, id, itBuddy(20001))
	b.Expect(t, ctx, "the answer to the other user's ping", func(st xmppcomp.Stanza) bool {
		return st.Name == "iq" && st.ID == id
	})
	return time.Since(start)
}

// floodMessages is how many chat messages the registered user sends to a
// buddy at once.
const floodMessages = 3000

// A registered user's flood of messages to QQ neither delays another
// user's answers nor loses a message: each is delivered to QQ or refused
// with resource-constraint.
func TestIntegrationMessageFloodDoesNotDelayOthers(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		e := newEnv(t, srv, nil, world()...)
		ctx := itCtx(t, 2*time.Minute)
		a := e.loginRegistered(ctx, smallWorldNicks())
		b := srv.NewClient(t, ctx, t.Name()+"-other")
		pingBuddy(ctx, t, e, b)
		before := len(inboxTexts(e.sim, 20001))

		refused := 0
		floodDone := make(chan struct{})
		go func() {
			for i := range floodMessages {
				if err := sendText(ctx, a, fmt.Sprintf(`<message type="chat" id="fm%d" to=%q><body>fm%05d</body></message>`, i, itBuddy(20001), i)); err != nil {
					t.Errorf("flood stopped after %d messages: %v", i, err)
					break
				}
			}
		}()
		go func() {
			defer close(floodDone)
			for ctx.Err() == nil && refused+len(inboxTexts(e.sim, 20001))-before < floodMessages {
				wait, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
				st, err := a.Next(wait, func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.Type == "error" })
				cancel()
				if err == nil && isConstraint(st) {
					refused++
				} else if err == nil {
					t.Errorf("flooded message answered with %s", st)
				}
			}
		}()
		lat := pingWhileFlooding(ctx, t, e, b, floodDone)
		<-floodDone // refused is written
		delivered := len(inboxTexts(e.sim, 20001)) - before
		slices.Sort(lat)
		p50, p90, p99 := lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)*99/100]
		t.Logf("%s: %d messages delivered, %d refused; other user's %d pings: p50 %v, p90 %v, p99 %v",
			srv.Kind, delivered, refused, len(lat), p50, p90, p99)
		if !raceDetector && (p50 > 250*time.Millisecond || p90 > time.Second) {
			t.Errorf("the other user's answers took p50 %v, p90 %v during the flood; want ≤ 250ms and ≤ 1s", p50, p90)
		}
		if delivered+refused != floodMessages {
			t.Errorf("%d messages delivered and %d refused of %d sent", delivered, refused, floodMessages)
		}
	})
}
