package xmppcomp_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/internal/wire"
)

// Send, SendIQ and Barrier before any connection fail at once with
// ErrNotConnected.
func TestSendNotConnected(t *testing.T) {
	c, err := xmppcomp.New(xmppcomp.Config{Domain: compDomain, Server: "127.0.0.1:1", Secret: "x"}, newInbox())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Encode(context.Background(), chatMessage{To: "a@localhost", Body: "x"})
	if !errors.Is(err, xmppcomp.ErrNotConnected) {
		t.Fatalf("Encode = %v, want ErrNotConnected", err)
	}
	if _, err := c.SendIQ(context.Background(), stanza.IQ{Type: stanza.GetIQ}.Wrap(nil)); !errors.Is(err, xmppcomp.ErrNotConnected) {
		t.Fatalf("SendIQ = %v, want ErrNotConnected", err)
	}
	if err := c.Barrier(context.Background(), jid.MustParse("a@localhost")); !errors.Is(err, xmppcomp.ErrNotConnected) {
		t.Fatalf("Barrier = %v, want ErrNotConnected", err)
	}
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("failing took %v", d)
	}
	if c.Connected() {
		t.Error("Connected() before Run")
	}
	if err := c.Barrier(context.Background(), jid.JID{}); err == nil || errors.Is(err, xmppcomp.ErrNotConnected) {
		t.Errorf("Barrier toward no address = %v, want an error saying so", err)
	}
}

// Barrier pings the recipient's server from the component's domain, after
// what was sent before it, and returns when the server answers, with a
// result or an error alike; each call has its own id.
func TestBarrierWaitsForTheAnswer(t *testing.T) {
	fs := newFakeServer(t)
	comp, _ := runComponent(t, fs.config(), newInbox())
	sc := fs.accept(t)
	waitConnected(t, comp, 10*time.Second)
	ctx := ctxT(t, 10*time.Second)
	to := jid.MustParse("alice@example.org/phone")
	if err := comp.Encode(ctx, chatMessage{From: "1@" + compDomain, To: to.String(), Body: "first"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, answer := range []string{"result", "error"} {
		done := make(chan error, 1)
		go func() { done <- comp.Barrier(ctx, to) }()
		ping := sc.next(t)
		if ping.Name == "message" {
			ping = sc.next(t) // the message sent before the first Barrier
		}
		var p struct {
			Ping *struct{} `xml:"urn:xmpp:ping ping"`
		}
		if err := ping.Decode(&p); err != nil || ping.Name != "iq" || ping.Type != "get" || p.Ping == nil ||
			ping.From.String() != compDomain || ping.To.String() != "example.org" || ping.ID == "" || seen[ping.ID] {
			t.Fatalf("Barrier sent %s (%v); want a new ping from %s to example.org", ping, err, compDomain)
		}
		seen[ping.ID] = true
		select {
		case err := <-done:
			t.Fatalf("Barrier returned %v before the server answered", err)
		default:
		}
		sc.send(t, fmt.Sprintf(`<iq type=%q id=%q from="example.org" to=%q/>`, answer, ping.ID, compDomain))
		if err := <-done; err != nil {
			t.Errorf("Barrier answered with %s: %v, want nil", answer, err)
		}
	}
}

// A Barrier whose answer does not come returns when ctx ends; one whose
// connection drops returns ErrNotConnected.
func TestBarrierWithoutAnswer(t *testing.T) {
	fs := newFakeServer(t)
	comp, _ := runComponent(t, fs.config(), newInbox())
	sc := fs.accept(t)
	waitConnected(t, comp, 10*time.Second)
	to := jid.MustParse("example.org")

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := comp.Barrier(short, to)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, xmppcomp.ErrNotConnected) {
		t.Errorf("Barrier unanswered until ctx ended = %v, want DeadlineExceeded", err)
	}
	sc.next(t) // that ping

	done := make(chan error, 1)
	go func() { done <- comp.Barrier(ctxT(t, 10*time.Second), to) }()
	sc.next(t)
	sc.conn.Close()
	select {
	case err := <-done:
		if !errors.Is(err, xmppcomp.ErrNotConnected) || !strings.Contains(err.Error(), "example.org") {
			t.Errorf("Barrier when the connection dropped = %v, want ErrNotConnected naming example.org", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Barrier still waiting 5s after the connection dropped")
	}
}

// fakeServer is just enough of an XEP-0114 server to test what the
// component writes and how it takes answers: it accepts any secret and
// hands every stanza it reads to the test.
type fakeServer struct {
	ln    net.Listener
	conns chan *serverConn // buffered; the accept loop never waits long
}

type serverConn struct {
	conn net.Conn
	in   chan xmppcomp.Stanza // closed when reading ends
}

func newFakeServer(t *testing.T) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{ln: ln, conns: make(chan *serverConn, 8)}
	var open []net.Conn
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			open = append(open, nc)
			sc := &serverConn{conn: nc, in: make(chan xmppcomp.Stanza, 64)}
			go sc.serve()
			select {
			case fs.conns <- sc:
			default:
				nc.Close() // the test takes no more connections
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-stopped
		for _, nc := range open {
			nc.Close()
		}
	})
	return fs
}

func (fs *fakeServer) config() xmppcomp.Config {
	return xmppcomp.Config{Domain: compDomain, Server: fs.ln.Addr().String(), Secret: "any", PingInterval: -1}
}

// accept returns the next connection from the component.
func (fs *fakeServer) accept(t *testing.T) *serverConn {
	t.Helper()
	select {
	case sc := <-fs.conns:
		return sc
	case <-time.After(10 * time.Second):
		t.Fatal("the component did not connect to the fake server within 10s")
		return nil
	}
}

// serve answers the handshake and then reads stanzas until the stream ends.
func (sc *serverConn) serve() {
	defer close(sc.in)
	d := xml.NewDecoder(sc.conn)
	if _, err := d.Token(); err != nil { // the component's stream header
		return
	}
	fmt.Fprintf(sc.conn, `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams" from=%q id="fake-stream">`, compDomain)
	if _, err := wire.ReadElement(d); err != nil { // <handshake>, not checked
		return
	}
	fmt.Fprint(sc.conn, "<handshake/>")
	for {
		el, err := wire.ReadElement(d)
		if err != nil {
			return
		}
		st, err := xmppcomp.ParseStanza(el.Raw)
		if err == nil {
			sc.in <- st
		}
	}
}

// next returns the next stanza the component sent.
func (sc *serverConn) next(t *testing.T) xmppcomp.Stanza {
	t.Helper()
	select {
	case st, ok := <-sc.in:
		if !ok {
			t.Fatal("the component's stream ended")
		}
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("the component sent nothing within 10s")
		return xmppcomp.Stanza{}
	}
}

func (sc *serverConn) send(t *testing.T, text string) {
	t.Helper()
	if _, err := fmt.Fprint(sc.conn, text); err != nil {
		t.Fatal(err)
	}
}
