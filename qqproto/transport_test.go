package qqproto_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

// counted is a QQ server that answers every request with RES=0 (or as
// hold says) and counts the connections clients opened to it.
type counted struct {
	srv   *httptest.Server
	conns atomic.Int64
	reqs  atomic.Int64
	hold  atomic.Bool // hold the next request until its client goes
}

func newCounted(t *testing.T, ln net.Listener) *counted {
	t.Helper()
	c := &counted{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := qqproto.Parse(string(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.reqs.Add(1)
		if c.hold.CompareAndSwap(true, false) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		reply(w, req, 0, "")
	}))
	if ln != nil {
		c.srv.Listener.Close()
		c.srv.Listener = ln
	}
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	return c
}

// client is a Client of uin on tr that tries each request once, so that
// a connection lost for nothing shows as an error.
func (c *counted) client(uin qqproto.UIN, tr *qqproto.Transport) *qqproto.Client {
	return qqproto.NewClient(uin, qqproto.Options{Server: c.srv.URL, Transport: tr, MaxAttempts: 1, Timeout: 5 * time.Second})
}

// newCountedClient is a counted server and a Client of 10001 to it, on a
// Transport of its own.
func newCountedClient(t *testing.T) (*counted, *qqproto.Client) {
	t.Helper()
	srv := newCounted(t, nil)
	tr := qqproto.NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	return srv, srv.client(10001, tr)
}

// Clients sharing a Transport, one request after another, use one
// connection: the pool keeps it alive between requests and sessions.
func TestTransportReusesConnections(t *testing.T) {
	srv := newCounted(t, nil)
	tr := qqproto.NewTransport()
	defer tr.CloseIdleConnections()
	ctx := context.Background()
	for i := range 20 {
		if err := srv.client(qqproto.UIN(10001+i%4), tr).SendMessage(ctx, 10002, "hi"); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("20 requests opened %d connections, want 1", n)
	}
}

// A connection left idle for longer than a request's timeout is still
// used: the deadline its last request set has passed, but it is alive.
func TestTransportReusesConnectionsIdlePastTheirDeadline(t *testing.T) {
	srv := newCounted(t, nil)
	tr := qqproto.NewTransport()
	defer tr.CloseIdleConnections()
	c := qqproto.NewClient(10001, qqproto.Options{Server: srv.srv.URL, Transport: tr, MaxAttempts: 1, Timeout: 50 * time.Millisecond})
	ctx := context.Background()
	for i := range 3 {
		if err := c.SendMessage(ctx, 10002, "hi"); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		time.Sleep(120 * time.Millisecond)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("3 requests 120ms apart opened %d connections, want 1", n)
	}
}

// A kept-alive connection the server closed while it sat in the pool is
// not used: the request goes out on a new one at the first attempt,
// instead of being lost on a dead one and waiting for a retry.
func TestTransportSkipsConnectionsTheServerClosed(t *testing.T) {
	srv, c := newCountedClient(t)
	ctx := context.Background()
	if err := c.SendMessage(ctx, 10002, "first"); err != nil {
		t.Fatal(err)
	}
	// As a server's idle timeout would, after the connection has been
	// idle long enough to be checked.
	time.Sleep(300 * time.Millisecond)
	srv.srv.CloseClientConnections()
	time.Sleep(20 * time.Millisecond)
	if err := c.SendMessage(ctx, 10002, "second"); err != nil {
		t.Fatalf("message after the server closed the idle connection: %v", err)
	}
	if n := srv.reqs.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A request its caller gave up on while it was in flight ends at once,
// and its connection, whose reply may still come, is not handed to the
// next request.
func TestTransportCancelledRequestLeavesThePoolUsable(t *testing.T) {
	srv, c := newCountedClient(t)
	if err := c.SendMessage(context.Background(), 10002, "warm the pool"); err != nil {
		t.Fatal(err)
	}
	srv.hold.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := c.SendMessage(ctx, 10002, "given up")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want one that Is context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the cancelled request returned after %v", d)
	}
	start = time.Now()
	if err := c.SendMessage(context.Background(), 10002, "next"); err != nil {
		t.Fatalf("request after a cancelled one: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the next request took %v: it waited behind the cancelled one", d)
	}
}

// A server reachable over IPv6 only is reached, as net/http would.
func TestTransportReachesIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("this machine has no IPv6 loopback: %v", err)
	}
	srv := newCounted(t, ln)
	tr := qqproto.NewTransport()
	defer tr.CloseIdleConnections()
	if err := srv.client(10001, tr).SendMessage(context.Background(), 10002, "hi"); err != nil {
		t.Fatalf("message to %s: %v", srv.srv.URL, err)
	}
}

// A proxy named by HTTP_PROXY carries the requests, through a CONNECT
// tunnel, as an admin sets it in the unit's environment.
func TestTransportUsesTheProxyFromTheEnvironment(t *testing.T) {
	srv := newCounted(t, nil)
	var asked atomic.Value // the address the tunnel was asked for
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	go func() {
		for {
			c, err := proxy.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
					return
				}
				asked.Store(req.Host)
				// qq.test resolves nowhere: the tunnel leads to the test
				// server whatever it was asked for.
				up, err := net.Dial("tcp", srv.srv.Listener.Addr().String())
				if err != nil {
					io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				defer up.Close()
				io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				go io.Copy(up, br)
				io.Copy(c, up)
			}()
		}
	}()
	t.Setenv("HTTP_PROXY", "http://"+proxy.Addr().String())
	t.Setenv("NO_PROXY", "")
	tr := qqproto.NewTransport()
	defer tr.CloseIdleConnections()
	c := qqproto.NewClient(10001, qqproto.Options{Server: "http://qq.test:8000/", Transport: tr, MaxAttempts: 1, Timeout: 5 * time.Second})
	if err := c.SendMessage(context.Background(), 10002, "through the proxy"); err != nil {
		t.Fatalf("message through the proxy: %v", err)
	}
	if got := asked.Load(); got != "qq.test:8000" {
		t.Errorf("the proxy was asked for a tunnel to %v, want qq.test:8000", got)
	}
	if n := srv.reqs.Load(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

// An https server is spoken to over TLS, and its certificate is checked:
// one signed by an authority the system does not know is refused.
func TestTransportVerifiesHTTPSServers(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the request reached a server whose certificate should have been refused")
	}))
	defer srv.Close()
	tr := qqproto.NewTransport()
	defer tr.CloseIdleConnections()
	c := qqproto.NewClient(10001, qqproto.Options{Server: srv.URL, Transport: tr, MaxAttempts: 1, Timeout: 5 * time.Second})
	err := c.SendMessage(context.Background(), 10002, "hi")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("err %v, want the unknown certificate refused", err)
	}
}
