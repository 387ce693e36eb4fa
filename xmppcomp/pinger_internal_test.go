package xmppcomp

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// A ping that cannot be sent because other writes hold the stream for
// longer than PingTimeout must not end the pinging: once the stream is free
// again, the next tick sends a ping.
func TestPingerOutlivesBusyWriter(t *testing.T) {
	c, err := New(Config{
		Domain: "qq.example.org", Server: "127.0.0.1:5347", Secret: "s",
		PingInterval: 20 * time.Millisecond, PingTimeout: 20 * time.Millisecond,
	}, HandlerFunc(func(context.Context, Stanza) {}))
	if err != nil {
		t.Fatal(err)
	}
	ours, server := net.Pipe()
	defer server.Close()
	cn := &conn{c: c, nc: ours, wsem: make(chan struct{}, 1), done: make(chan struct{})}
	cn.lastRead.Store(time.Now().Add(time.Hour).UnixNano()) // never "nothing read"
	defer cn.kill(nil)

	cn.wsem <- struct{}{} // a long write holds the stream
	go c.pinger(cn)
	time.Sleep(10 * c.cfg.PingTimeout) // several pings fail to get the stream
	<-cn.wsem

	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 512)
		n, _ := io.ReadAtLeast(server, b, 1)
		got <- b[:n]
	}()
	select {
	case b := <-got:
		if !bytes.Contains(b, []byte("urn:xmpp:ping")) {
			t.Errorf("wrote %q, want a ping", b)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no ping sent after the stream was free again")
	}
}
