//go:build integration

package xmppcomp_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// Balanced connections on a two-node ejabberd cluster (domain_balancing,
// two slots): each connection gets its share of the users, keeps itself
// alive with pings that come back to it although the server's own answers
// go by the sender's slot, confirms delivery to its users with Barrier,
// and an extra connection takes the slot a stopped one left. A connection
// made while both slots are held learns it got none.
func TestBalancedConnectionsShareTheDomain(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	cl := xmpptest.StartEjabberdCluster(t, xmpptest.ClusterOptions{Options: xmpptest.Options{ComponentDomain: compDomain, Secret: compSecret}})
	balanced := func(node int, log logrus.FieldLogger) xmppcomp.Config {
		cfg := componentConfig(cl.Nodes[node])
		cfg.Balanced, cfg.Slots = true, 2
		cfg.PingInterval, cfg.PingTimeout = 200*time.Millisecond, time.Second
		cfg.Logger = log
		return cfg
	}
	logA, hookA := logtest.NewNullLogger()
	logA.SetLevel(logrus.DebugLevel)
	inA, inB, inX := newInbox(), newInbox(), newInbox()
	a, _ := runComponent(t, balanced(0, logA), inA)
	waitConnected(t, a, 10*time.Second)
	logB, hookB := logtest.NewNullLogger()
	b, stopB := runComponent(t, balanced(1, logB), inB)
	waitConnected(t, b, 10*time.Second)

	var users []*xmpptest.Client
	for i := range 12 {
		name := xmpptest.UserName(fmt.Sprintf("%s-%d", t.Name(), i))
		cl.CreateUser(t, name, "pw")
		users = append(users, cl.Nodes[i%2].Login(t, ctx, name, "pw"))
	}
	bot := "bot@" + compDomain
	round := func(tag string, boxes ...*inbox) map[int]int {
		t.Helper()
		for i, u := range users {
			u.SendXML(t, ctx, `<message to=%q type="chat"><body>%s %d</body></message>`, bot, tag, i)
		}
		where := map[int]int{}
		for i := range users {
			body := fmt.Sprintf("<body>%s %d</body>", tag, i)
			where[i] = waitIn(t, boxes, func(st xmppcomp.Stanza) bool { return strings.Contains(st.String(), body) })
		}
		return where
	}
	first := round("one", inA, inB)
	n := map[int]int{}
	for _, box := range first {
		n[box]++
	}
	if n[0] == 0 || n[1] == 0 {
		t.Fatalf("users by connection %v: want both connections to have some", n)
	}
	// 200 ms pings, a second to answer, for 3 s: the connections stay up, since their
	// pings come back to them.
	time.Sleep(3 * time.Second)
	for _, e := range append(hookA.AllEntries(), hookB.AllEntries()...) {
		if e.Message == "xmppcomp: connection lost" {
			t.Fatalf("a connection was lost: %v", e.Data)
		}
	}
	if again := round("two", inA, inB); fmt.Sprint(again) != fmt.Sprint(first) {
		t.Fatalf("users moved between connections: %v, then %v", first, again)
	}
	for i, box := range first {
		if box == 0 {
			bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := a.Barrier(bctx, users[i].JID)
			cancel()
			if err != nil {
				t.Fatalf("A's barrier toward its user %s: %v", users[i].JID, err)
			}
			break
		}
	}

	// B stops: an extra connection of A takes its slot, and B's users reach it.
	stopB()
	xctx, stopX := context.WithCancel(ctx)
	defer stopX()
	connected := make(chan struct{}, 1)
	go a.Extra(xctx, inX, func(context.Context) { connected <- struct{}{} })
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("the extra connection never got a slot")
	}
	after := round("three", inA, inX)
	for i, box := range first {
		if box != after[i] {
			t.Errorf("user %d was on connection %d, then on %d after B stopped (0 A, 1 B then A's extra)", i, box, after[i])
		}
	}

	// A third connection while both slots are held: no slot.
	logY, hookY := logtest.NewNullLogger()
	y, err := xmppcomp.New(balanced(1, logY), newInbox())
	if err != nil {
		t.Fatal(err)
	}
	yctx, stopY := context.WithCancel(ctx)
	defer stopY()
	go y.Run(yctx)
	deadline := time.Now().Add(20 * time.Second)
	for !hasNoSlot(hookY) {
		if time.Now().After(deadline) {
			t.Fatalf("a connection made while both slots are held did not report ErrNoSlot; log: %v", hookY.AllEntries())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasNoSlot(h *logtest.Hook) bool {
	for _, e := range h.AllEntries() {
		if err, ok := e.Data[logrus.ErrorKey].(error); ok && errors.Is(err, xmppcomp.ErrNoSlot) {
			return true
		}
	}
	return false
}

// waitIn waits until one of boxes has a stanza matching match and returns
// that box's index.
func waitIn(t *testing.T, boxes []*inbox, match func(xmppcomp.Stanza) bool) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, b := range boxes {
			if b.take(match) {
				return i
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no connection received the stanza within 10s")
	return -1
}
