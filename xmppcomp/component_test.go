//go:build integration

package xmppcomp_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// A user's message to a JID of the component reaches the Handler intact,
// and what the component sends from such a JID reaches the user intact,
// including payloads in their own namespaces.
func TestMessagesBothWays(t *testing.T) {
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		srv := xmpptest.Shared(t, kind, sharedOpts)
		box := newInbox()
		comp := startComponent(t, srv, box, nil)
		ctx := ctxT(t, 20*time.Second)
		alice := srv.NewClient(t, ctx, "both")
		if err := alice.SendPresence(ctx); err != nil {
			t.Fatal(err)
		}
		buddy := "12345@" + compDomain

		// user -> component
		if err := alice.Encode(ctx, chatMessage{To: buddy, Type: "chat", ID: "m1", Body: "hello <QQ> & friends"}); err != nil {
			t.Fatal(err)
		}
		st := box.next(t, 5*time.Second, func(st xmppcomp.Stanza) bool { return st.Name == "message" })
		var in chatMessage
		if err := st.Decode(&in); err != nil {
			t.Fatal(err)
		}
		if !st.From.Equal(alice.JID) || st.To.String() != buddy || st.Type != "chat" || st.ID != "m1" || in.Body != "hello <QQ> & friends" {
			t.Fatalf("handler got from=%s to=%s type=%s id=%s body=%q; want from=%s to=%s type=chat id=m1\n%s",
				st.From, st.To, st.Type, st.ID, in.Body, alice.JID, buddy, st)
		}
		if !strings.Contains(string(st.Raw), `xmlns="jabber:component:accept"`) {
			t.Errorf("Raw is not in the component namespace: %s", st.Raw)
		}

		// component -> user, a plain struct through Encode, to the bare JID
		if err := comp.Encode(ctx, chatMessage{From: buddy, To: alice.JID.Bare().String(), Type: "chat", Body: "hi back ✓"}); err != nil {
			t.Fatal(err)
		}
		got := alice.Expect(t, ctx, "the component's chat", xmpptest.MessageFrom(buddy))
		var out chatMessage
		if err := got.Decode(&out); err != nil {
			t.Fatal(err)
		}
		if out.Body != "hi back ✓" || got.Type != "chat" {
			t.Fatalf("client got %s, want a chat with body %q", got, "hi back ✓")
		}

		// component -> user with delay and a vcard-update in presence, via Send
		raw := fmt.Sprintf(`<message from='%s' to='%s' type='chat'><body>old</body>`+
			`<delay xmlns='urn:xmpp:delay' from='%s' stamp='2002-09-10T23:08:25Z'>Offline Storage</delay></message>`,
			buddy, alice.JID.Bare(), compDomain)
		if err := comp.Send(ctx, xml.NewDecoder(strings.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
		got = alice.Expect(t, ctx, "the delayed message", xmpptest.MessageFrom(buddy))
		var delayed struct {
			Body  string `xml:"jabber:client body"`
			Delay struct {
				From  string `xml:"from,attr"`
				Stamp string `xml:"stamp,attr"`
				Text  string `xml:",chardata"`
			} `xml:"urn:xmpp:delay delay"`
		}
		if err := got.Decode(&delayed); err != nil {
			t.Fatal(err)
		}
		if delayed.Body != "old" || delayed.Delay.Stamp != "2002-09-10T23:08:25Z" || delayed.Delay.From != compDomain || delayed.Delay.Text != "Offline Storage" {
			t.Fatalf("delayed message arrived as %s", got)
		}

		pres := fmt.Sprintf(`<presence from='%s/QQ' to='%s'><show>away</show>`+
			`<x xmlns='vcard-temp:x:update'><photo>01b87fcd030b72895ff8e88db57ec525450f000d</photo></x></presence>`, buddy, alice.JID)
		if err := comp.Send(ctx, xml.NewDecoder(strings.NewReader(pres))); err != nil {
			t.Fatal(err)
		}
		got = alice.Expect(t, ctx, "the buddy's presence", xmpptest.PresenceFrom(buddy, ""))
		var p struct {
			Show  string `xml:"jabber:client show"`
			Photo string `xml:"vcard-temp:x:update x>photo"`
		}
		if err := got.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Show != "away" || p.Photo != "01b87fcd030b72895ff8e88db57ec525450f000d" {
			t.Fatalf("presence arrived as %s", got)
		}
	})
}

// After Barrier returns, the server has handled every stanza the component
// sent before it. Barrier cannot know about the client's socket, so the
// client makes a round trip of its own to its server: that answer is
// queued behind anything the server handled earlier for the client, so
// every message must be in the client's buffer when it arrives. Without
// the Barrier, messages still on their way through the component's stream
// would come after it.
func TestBarrierCoversWhatWasSent(t *testing.T) {
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		srv := xmpptest.Shared(t, kind, sharedOpts)
		comp := startComponent(t, srv, newInbox(), nil)
		ctx := ctxT(t, 30*time.Second)
		alice := srv.NewClient(t, ctx, "barrier")
		from := "3@" + compDomain
		const n = 300
		for i := range n {
			if err := comp.Encode(ctx, chatMessage{From: from, To: alice.JID.String(), Type: "chat", Body: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := comp.Barrier(ctx, alice.JID); err != nil {
			t.Fatalf("Barrier: %v", err)
		}
		alice.SendXML(t, ctx, `<iq type="get" id="after-barrier" to=%q><ping xmlns="urn:xmpp:ping"/></iq>`, srv.Domain)
		alice.Expect(t, ctx, "the answer to the client's ping", xmpptest.IQResult("after-barrier"))
		now, cancel := context.WithCancel(ctx)
		cancel() // what is not buffered now is missing
		for i := range n {
			st := alice.Expect(t, now, fmt.Sprintf("message %d of %d, sent before the Barrier", i, n), xmpptest.MessageFrom(from))
			var m chatMessage
			if err := st.Decode(&m); err != nil || m.Body != fmt.Sprint(i) {
				t.Fatalf("message %d arrived as %s (%v)", i, st, err)
			}
		}
	})
}

// IQs: the component answers pings to its bare domain itself; other IQs go
// to the Handler, which answers with Send (here a vCard) or ReplyError.
func TestIQs(t *testing.T) {
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		srv := xmpptest.Shared(t, kind, sharedOpts)
		var comp *xmppcomp.Component
		var ready = make(chan struct{})
		h := xmppcomp.HandlerFunc(func(ctx context.Context, st xmppcomp.Stanza) {
			<-ready
			if st.Name != "iq" || st.Type != "get" {
				return
			}
			var q struct {
				VCard *struct{} `xml:"vcard-temp vCard"`
			}
			_ = st.Decode(&q)
			if q.VCard == nil {
				_ = comp.ReplyError(ctx, st, stanza.Error{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented, Text: map[string]string{"en": "no such thing"}})
				return
			}
			reply := fmt.Sprintf(`<iq type='result' id='%s' from='%s' to='%s'><vCard xmlns='vcard-temp'><FN>Ma Huateng</FN><NICKNAME>Pony</NICKNAME></vCard></iq>`,
				st.ID, st.To, st.From)
			_ = comp.Send(ctx, xml.NewDecoder(strings.NewReader(reply)))
		})
		comp = startComponent(t, srv, h, nil)
		close(ready)
		ctx := ctxT(t, 20*time.Second)
		c := srv.NewClient(t, ctx, "iq")

		iq := func(to, payload string) xmppcomp.Stanza {
			t.Helper()
			st, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(fmt.Sprintf(`<iq type='get' to='%s'>%s</iq>`, to, payload))))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		if st := iq(compDomain, `<ping xmlns='urn:xmpp:ping'/>`); st.Type != "result" {
			t.Errorf("ping to the component domain: got %s, want a result", st)
		}
		st := iq("10001@"+compDomain, `<vCard xmlns='vcard-temp'/>`)
		var v struct {
			FN   string `xml:"vcard-temp vCard>FN"`
			Nick string `xml:"vcard-temp vCard>NICKNAME"`
		}
		if err := st.Decode(&v); err != nil || st.Type != "result" || v.FN != "Ma Huateng" || v.Nick != "Pony" {
			t.Errorf("vcard: got %s (err %v)", st, err)
		}
		// The component asks the client; the answer goes to SendIQ, not
		// to the Handler.
		ans, err := comp.SendIQ(ctx, xml.NewDecoder(strings.NewReader(fmt.Sprintf(
			`<iq type='get' from='10001@%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>`, compDomain, c.JID))))
		if err != nil || ans.Type != "result" || !ans.From.Equal(c.JID) {
			t.Errorf("component pinging the client: %v %s", err, ans)
		}
		ans, err = comp.SendIQ(ctx, xml.NewDecoder(strings.NewReader(fmt.Sprintf(
			`<iq type='get' from='10001@%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`, compDomain, c.JID))))
		if err != nil || ans.Type != "error" || !strings.Contains(string(ans.Raw), "service-unavailable") {
			t.Errorf("component asking the client something it does not know: %v %s", err, ans)
		}

		st = iq("10001@"+compDomain, `<query xmlns='jabber:iq:version'/>`)
		var e struct {
			Cond *struct{} `xml:"error>feature-not-implemented"`
			Text string    `xml:"error>text"`
		}
		if err := st.Decode(&e); err != nil || st.Type != "error" || e.Cond == nil || e.Text != "no such thing" {
			t.Errorf("unhandled iq: got %s, want feature-not-implemented with text", st)
		}
	})
}

// A wrong secret stops Run at once with an error that says what happened
// and names the domain, instead of retrying forever or reporting EOF.
func TestWrongSecret(t *testing.T) {
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		srv := xmpptest.Shared(t, kind, sharedOpts)
		c, err := xmppcomp.New(xmppcomp.Config{Domain: compDomain, Server: srv.ComponentAddr, Secret: "not-the-secret"}, newInbox())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = c.Run(ctxT(t, 10*time.Second))
		if !errors.Is(err, xmppcomp.ErrNotAuthorized) {
			t.Fatalf("Run = %v, want ErrNotAuthorized", err)
		}
		var he *xmppcomp.HandshakeError
		if !errors.As(err, &he) || he.Domain != compDomain {
			t.Errorf("Run = %#v, want a *HandshakeError for %s", err, compDomain)
		}
		for _, want := range []string{compDomain, "refused the secret", srv.ComponentAddr} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Run took %v to give up", d)
		}
		if kind == xmpptest.Prosody {
			// Prosody also tells an unknown domain apart.
			c, _ := xmppcomp.New(xmppcomp.Config{Domain: "unknown.localhost", Server: srv.ComponentAddr, Secret: compSecret}, newInbox())
			err := c.Run(ctxT(t, 10*time.Second))
			if !errors.Is(err, xmppcomp.ErrHostUnknown) || !strings.Contains(err.Error(), "unknown.localhost") {
				t.Errorf("unknown domain: Run = %v, want ErrHostUnknown naming the domain", err)
			}
		}
	})
}

// The server goes away and comes back on the same port: Send fails fast
// meanwhile, and the component is back and passing traffic within the
// backoff bound once the server listens again.
func TestReconnectAfterServerRestart(t *testing.T) {
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		srv := xmpptest.Start(t, kind, sharedOpts)
		box := newInbox()
		var mu sync.Mutex
		var connects int
		var disconnects []error
		const maxBackoff = 1 * time.Second
		comp := startComponent(t, srv, box, func(cfg *xmppcomp.Config) {
			cfg.MinBackoff, cfg.MaxBackoff = 100*time.Millisecond, maxBackoff
			cfg.OnConnect = func(context.Context) { mu.Lock(); connects++; mu.Unlock() }
			cfg.OnDisconnect = func(err error) { mu.Lock(); disconnects = append(disconnects, err); mu.Unlock() }
		})

		srv.Stop(t)
		for deadline := time.Now().Add(5 * time.Second); comp.Connected(); {
			if time.Now().After(deadline) {
				t.Fatal("component still connected 5s after the server stopped")
			}
			time.Sleep(5 * time.Millisecond)
		}
		start := time.Now()
		err := comp.Encode(context.Background(), chatMessage{To: "restart@localhost", Body: "lost"})
		if !errors.Is(err, xmppcomp.ErrNotConnected) || time.Since(start) > 10*time.Millisecond {
			t.Errorf("Encode while the server is down = %v after %v, want ErrNotConnected at once", err, time.Since(start))
		}
		start = time.Now()
		err = comp.Barrier(context.Background(), jid.MustParse("restart@localhost"))
		if !errors.Is(err, xmppcomp.ErrNotConnected) || time.Since(start) > 10*time.Millisecond {
			t.Errorf("Barrier while the server is down = %v after %v, want ErrNotConnected at once", err, time.Since(start))
		}
		time.Sleep(2 * maxBackoff) // let the backoff grow to its cap

		srv.Start(t)
		up := time.Now()
		took := waitConnected(t, comp, 10*time.Second)
		// The wait before the next attempt is at most MaxBackoff; allow for
		// the handshake itself and a loaded machine.
		if limit := maxBackoff + time.Second; took > limit {
			t.Errorf("reconnected %v after the server was back, want within %v", took, limit)
		}
		ctx := ctxT(t, 20*time.Second)
		alice := srv.NewClient(t, ctx, "restart")
		if err := alice.SendPresence(ctx); err != nil {
			t.Fatal(err)
		}
		if err := comp.Encode(ctx, chatMessage{From: "1@" + compDomain, To: alice.JID.String(), Body: "back"}); err != nil {
			t.Fatal(err)
		}
		alice.Expect(t, ctx, "the message after the reconnect", xmpptest.MessageFrom("1@"+compDomain))
		if err := alice.Encode(ctx, chatMessage{To: "1@" + compDomain, Body: "in"}); err != nil {
			t.Fatal(err)
		}
		box.next(t, 5*time.Second, func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.From.Equal(alice.JID) })
		t.Logf("%s: component back %v after the server listened again; traffic both ways %v after", kind, took, time.Since(up))

		mu.Lock()
		defer mu.Unlock()
		if connects != 2 || len(disconnects) != 1 || disconnects[0] == nil {
			t.Errorf("OnConnect called %d times, OnDisconnect with %v; want 2 and one non-nil error", connects, disconnects)
		}
	})
}

// 1,000 stanzas sent concurrently from 16 goroutines all arrive, each
// sender's in its order.
func TestConcurrentSends(t *testing.T) {
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		srv := xmpptest.Shared(t, kind, sharedOpts)
		comp := startComponent(t, srv, newInbox(), nil)
		ctx := ctxT(t, 60*time.Second)
		alice := srv.NewClient(t, ctx, "many")
		const senders, total = 16, 1000
		var wg sync.WaitGroup
		errs := make(chan error, senders)
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < total; i += senders {
					msg := chatMessage{From: fmt.Sprintf("%d@%s", 1000+g, compDomain), To: alice.JID.String(), Type: "chat", Body: fmt.Sprint(i)}
					if err := comp.Encode(ctx, msg); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		last := map[string]int{}
		for n := range total {
			st, err := alice.Next(ctx, func(st xmppcomp.Stanza) bool { return st.Name == "message" })
			if err != nil {
				t.Fatalf("after %d of %d: %v", n, total, err)
			}
			var m chatMessage
			if err := st.Decode(&m); err != nil {
				t.Fatal(err)
			}
			var i int
			fmt.Sscan(m.Body, &i)
			from := st.From.String()
			if prev, ok := last[from]; ok && i <= prev {
				t.Fatalf("from %s: %d arrived after %d", from, i, prev)
			}
			last[from] = i
		}
		if len(last) != senders {
			t.Errorf("messages from %d senders, want %d", len(last), senders)
		}
	})
}

// A hung server (SIGSTOP) is noticed by the pings within PingInterval +
// PingTimeout, and the component reconnects once the server continues.
func TestPingDetectsHungServer(t *testing.T) {
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		srv := xmpptest.Start(t, kind, sharedOpts)
		const interval, timeout = 300 * time.Millisecond, 300 * time.Millisecond
		lost := make(chan error, 4)
		comp := startComponent(t, srv, newInbox(), func(cfg *xmppcomp.Config) {
			cfg.PingInterval, cfg.PingTimeout = interval, timeout
			cfg.DialTimeout = time.Second
			cfg.OnDisconnect = func(err error) { lost <- err }
		})
		// Healthy: pings are answered, nothing is lost.
		time.Sleep(4 * interval)
		if !comp.Connected() || len(lost) > 0 {
			t.Fatalf("healthy connection was dropped: %v", <-lost)
		}
		srv.Pause(t)
		paused := time.Now()
		barrier := make(chan error, 1)
		go func() { barrier <- comp.Barrier(context.Background(), jid.MustParse(srv.Domain)) }()
		select {
		case err := <-lost:
			d := time.Since(paused)
			if !errors.Is(err, xmppcomp.ErrPingTimeout) {
				t.Errorf("OnDisconnect(%v), want ErrPingTimeout", err)
			}
			// One interval until the next ping, one timeout, plus scheduling.
			if limit := interval + timeout + 500*time.Millisecond; d > limit {
				t.Errorf("noticed after %v, want within %v", d, limit)
			}
			t.Logf("%s: hung server noticed after %v", kind, d)
		case <-time.After(10 * time.Second):
			srv.Resume(t)
			t.Fatal("no disconnect 10s after the server hung")
		}
		if comp.Connected() {
			t.Error("Connected() after the ping timeout")
		}
		// The Barrier sent to the hung server ends with its connection.
		select {
		case err := <-barrier:
			if !errors.Is(err, xmppcomp.ErrNotConnected) {
				t.Errorf("Barrier on the hung server = %v, want ErrNotConnected", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Barrier still waiting 5s after the connection was closed")
		}
		srv.Resume(t)
		waitConnected(t, comp, 15*time.Second)
	})
}

// A Handler that blocks does not stall reading: the liveness pings keep
// passing while the queue is full, and everything is delivered in order
// once the Handler continues.
func TestSlowHandler(t *testing.T) {
	srv := xmpptest.SharedProsody(t, sharedOpts)
	release := make(chan struct{})
	var mu sync.Mutex
	var bodies []string
	h := xmppcomp.HandlerFunc(func(ctx context.Context, st xmppcomp.Stanza) {
		<-release
		var m chatMessage
		if st.Name == "message" && st.Decode(&m) == nil {
			mu.Lock()
			bodies = append(bodies, m.Body)
			mu.Unlock()
		}
	})
	lost := make(chan error, 1)
	comp := startComponent(t, srv, h, func(cfg *xmppcomp.Config) {
		cfg.QueueSize = 4
		cfg.PingInterval, cfg.PingTimeout = 100*time.Millisecond, 100*time.Millisecond
		cfg.OnDisconnect = func(err error) { lost <- err }
	})
	ctx := ctxT(t, 20*time.Second)
	alice := srv.NewClient(t, ctx, "slow")
	const n = 50
	for i := range n {
		if err := alice.Encode(ctx, chatMessage{To: "2@" + compDomain, Body: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Meanwhile the component still sends (writing is independent of the
	// Handler) and the connection is not declared dead.
	if err := alice.SendPresence(ctx); err != nil {
		t.Fatal(err)
	}
	if err := comp.Encode(ctx, chatMessage{From: "2@" + compDomain, To: alice.JID.String(), Body: "still here"}); err != nil {
		t.Fatal(err)
	}
	alice.Expect(t, ctx, "the message sent while the handler is slow", xmpptest.MessageFrom("2@"+compDomain))
	time.Sleep(time.Second)
	select {
	case err := <-lost:
		t.Fatalf("connection dropped while the handler was slow: %v", err)
	default:
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); ; {
		mu.Lock()
		got := len(bodies)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("handler got %d of %d messages", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, b := range bodies {
		if b != fmt.Sprint(i) {
			t.Fatalf("message %d has body %q: order lost", i, b)
		}
	}
}

// A second connection for the same domain is refused by Prosody with
// conflict; that is not fatal: it is retried, and takes over once the first
// connection goes away (a restarted gateway whose old connection the server
// has not yet noticed as dead).
func TestConflictIsRetried(t *testing.T) {
	srv := xmpptest.SharedProsody(t, sharedOpts)
	cfg := xmppcomp.Config{Domain: compDomain, Server: srv.ComponentAddr, Secret: compSecret,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
	first, stopFirst := runComponent(t, cfg, newInbox())
	waitConnected(t, first, 10*time.Second)

	second, _ := runComponent(t, cfg, newInbox())
	time.Sleep(time.Second)
	if second.Connected() {
		t.Fatal("second component connected while the first is")
	}
	stopFirst()
	if d := waitConnected(t, second, 5*time.Second); d > cfg.MaxBackoff+time.Second {
		t.Errorf("second took %v to take over", d)
	}
}

// Roster pushes reach the test client's Next (Prosody pushes only to a
// resource that fetched the roster) and, answered by the client itself,
// leave the connection working: what a gateway's subscription tests need.
func TestClientAnswersRosterPush(t *testing.T) {
	xmpptest.EachKind(t, func(t *testing.T, kind string) {
		srv := xmpptest.Shared(t, kind, sharedOpts)
		ctx := ctxT(t, 10*time.Second)
		c := srv.NewClient(t, ctx, "roster")
		// Prosody pushes only to resources that have fetched the roster.
		if st, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(`<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`))); err != nil || st.Type != "result" {
			t.Fatalf("roster get: %v %s", err, st)
		}
		set := fmt.Sprintf(`<iq type='set'><query xmlns='jabber:iq:roster'><item jid='10001@%s' name='Pony'/></query></iq>`, compDomain)
		res, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(set)))
		if err != nil || res.Type != "result" {
			t.Fatalf("roster set: %v %s", err, res)
		}
		push, err := c.Next(ctx, func(st xmppcomp.Stanza) bool { return st.Name == "iq" && st.Type == "set" })
		if err != nil || !strings.Contains(string(push.Raw), "10001@"+compDomain) {
			t.Fatalf("roster push: %v %s", err, push)
		}
		if st, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(`<iq type='get'><query xmlns='jabber:iq:roster'/></iq>`))); err != nil || st.Type != "result" {
			t.Fatalf("roster get after the push: %v %s", err, st)
		}
	})
}
