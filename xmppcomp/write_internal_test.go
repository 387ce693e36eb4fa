package xmppcomp

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the connection.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func testConn(t *testing.T) (*conn, *countingConn, net.Conn) {
	t.Helper()
	c, err := New(Config{Domain: "qq.example.org", Server: "127.0.0.1:5347", Secret: "s"},
		HandlerFunc(func(context.Context, Stanza) {}))
	if err != nil {
		t.Fatal(err)
	}
	ours, server := net.Pipe()
	cc := &countingConn{Conn: ours}
	cn := &conn{c: c, nc: cc, wsem: make(chan struct{}, 1), done: make(chan struct{})}
	t.Cleanup(func() { cn.kill(nil); server.Close() })
	return cn, cc, server
}

// Writers that come together share writes, and every stanza arrives
// whole, each writer's in its order.
func TestConcurrentWritesShareSystemCalls(t *testing.T) {
	cn, cc, server := testConn(t)
	const writers, each = 50, 40
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(server)
		got <- string(b)
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := cn.write(context.Background(), fmt.Appendf(nil, "<m w='%d' i='%d'/>", w, i)); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The last writer always writes: nothing may be left behind.
	cn.wsem <- struct{}{}
	left := len(cn.wbuf)
	<-cn.wsem
	if left != 0 {
		t.Fatalf("%d bytes left unwritten after every writer returned", left)
	}
	cn.nc.Close()
	text := <-got
	next := make([]int, writers)
	for _, el := range strings.SplitAfter(text, "/>") {
		if el == "" {
			continue
		}
		var w, i int
		if _, err := fmt.Sscanf(el, "<m w='%d' i='%d'/>", &w, &i); err != nil {
			t.Fatalf("torn stanza %q: %v", el, err)
		}
		if i != next[w] {
			t.Fatalf("writer %d: stanza %d arrived after %d", w, i, next[w]-1)
		}
		next[w]++
	}
	for w, n := range next {
		if n != each {
			t.Fatalf("writer %d: %d of %d stanzas arrived", w, n, each)
		}
	}
	if n := cc.writes.Load(); n >= writers*each {
		t.Errorf("%d stanzas took %d writes: none shared", writers*each, n)
	}
}

// A writer that gives up waiting does not strand the stanza the writer
// before it left for it.
func TestWriterGivingUpLeavesNothingUnwritten(t *testing.T) {
	cn, _, server := testConn(t)
	cn.wsem <- struct{}{} // the writer before holds the stream
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- cn.write(ctx, []byte("<late/>")) }()
	for cn.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// It saw the writer waiting, so it leaves its stanza for it...
	cn.wbuf = append(cn.wbuf, "<left/>"...)
	cancel() // ...which gives up,
	if err := <-errc; err == nil {
		t.Fatal("a writer whose context ended reported its stanza written")
	}
	<-cn.wsem // ...and the stream is free again.
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, err := server.Read(b)
	if err != nil || string(b[:n]) != "<left/>" {
		t.Fatalf("read %q, %v; want the stanza left behind", b[:n], err)
	}
}
