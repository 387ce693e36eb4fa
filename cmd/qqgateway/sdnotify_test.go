package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What systemd hears from a gateway it runs as Type=notify with a
// watchdog: a status while it connects, READY=1 only once the component
// is connected, WATCHDOG=1 while healthy and never while the connection
// is down, and STOPPING=1 last.
func TestSystemdNotifications(t *testing.T) {
	sock := listenNotify(t)
	xmpp := newFakeXMPP(t)
	env := map[string]string{
		"NOTIFY_SOCKET": sock.path,
		"WATCHDOG_USEC": "300000", // a check every 100ms
		"WATCHDOG_PID":  strconv.Itoa(os.Getpid()),
	}
	path := writeConfig(t, strings.Replace(minimal, `server = "127.0.0.1:5347"`, fmt.Sprintf("server = %q", xmpp.addr()), 1))
	sigs := make(chan os.Signal, 2)
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- command{args: []string{"-config", path}, stdout: io.Discard, stderr: &stderr,
			getenv: func(k string) string { return env[k] }, signals: sigs}.run()
	}()
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", stderr.String())
		}
	}()

	conn := xmpp.accept(t)
	// The component has dialled but the handshake is not answered yet.
	if m := sock.next(t); !m.has("STATUS=starting: not connected to the XMPP server at "+xmpp.addr()) || m.has("READY=1") || m.has("WATCHDOG=1") {
		t.Fatalf("before the handshake: %q, want only a status saying it is connecting", m)
	}
	conn.handshake(t)
	connected := "STATUS=connected to " + xmpp.addr() + " as qq.example.org"
	if m := sock.next(t); !m.has("READY=1") || !m.has(connected) || !m.has("WATCHDOG=1") {
		t.Fatalf("after the handshake: %q, want READY=1, %s and WATCHDOG=1", m, connected)
	}
	for range 2 {
		if m := sock.next(t); !slices.Equal(m, notification{"WATCHDOG=1"}) {
			t.Fatalf("while connected: %q, want WATCHDOG=1", m)
		}
	}

	conn.close()
	sock.skipWatchdog(t, "STATUS=unhealthy: not connected to the XMPP server at "+xmpp.addr())
	// The component redials after its backoff; meanwhile several checks
	// fail and the watchdog goes hungry.
	xmpp.accept(t).handshake(t)
	if m := sock.next(t); !m.has(connected) || !m.has("WATCHDOG=1") || m.has("READY=1") {
		t.Fatalf("the first notification after the connection was lost: %q, want %s and WATCHDOG=1 (READY=1 only once)", m, connected)
	}

	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after SIGTERM", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10s after SIGTERM")
	}
	// Everything it sent is queued on the socket now.
	rest := sock.drain(t)
	if len(rest) == 0 || !rest[len(rest)-1].has("STOPPING=1") {
		t.Fatalf("the last notifications: %q, want STOPPING=1 last", rest)
	}
	for _, m := range rest[:len(rest)-1] {
		if !slices.Equal(m, notification{"WATCHDOG=1"}) {
			t.Errorf("between the reconnection and STOPPING=1: %q", m)
		}
	}
}

// The watchdog is fed only by the process systemd started, and only when
// systemd listens.
func TestNotifierEnvironment(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		env      map[string]string
		enabled  bool
		watchdog time.Duration
		err      string
	}{
		{env: nil},
		{env: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify"}, enabled: true},
		{env: map[string]string{"NOTIFY_SOCKET": "@abstract"}, enabled: true},
		{env: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": pid},
			enabled: true, watchdog: time.Minute},
		{env: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000"},
			enabled: true, watchdog: time.Minute},
		// For another process, one that started this one.
		{env: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"},
			enabled: true},
		{env: map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "soon"},
			enabled: true, err: `WATCHDOG_USEC="soon"`},
		{env: map[string]string{"NOTIFY_SOCKET": "vsock:2:1234"}, err: `NOTIFY_SOCKET="vsock:2:1234"`},
	} {
		n, err := newNotifier(func(k string) string { return tc.env[k] })
		if n.enabled() != tc.enabled || n.watchdog != tc.watchdog || (err == nil) != (tc.err == "") ||
			(err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: enabled %v, watchdog %v, error %v; want %v, %v, %q", tc.env, n.enabled(), n.watchdog, err, tc.enabled, tc.watchdog, tc.err)
		}
	}
}

// notification is one datagram, split into its lines.
type notification []string

func (n notification) has(line string) bool { return slices.Contains(n, line) }

// notifySocket is systemd's end of NOTIFY_SOCKET.
type notifySocket struct {
	path string
	c    *net.UnixConn
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{path: path, c: c}
}

// next waits for the next notification.
func (s *notifySocket) next(t *testing.T) notification {
	t.Helper()
	m, err := s.read(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return m
}

func (s *notifySocket) read(deadline time.Time) (notification, error) {
	buf := make([]byte, 4096)
	if err := s.c.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	n, err := s.c.Read(buf)
	if err != nil {
		return nil, err
	}
	return strings.Split(string(buf[:n]), "\n"), nil
}

// skipWatchdog waits for a notification holding want; only WATCHDOG=1 may
// come before it.
func (s *notifySocket) skipWatchdog(t *testing.T, want string) {
	t.Helper()
	for {
		m := s.next(t)
		if m.has(want) {
			if m.has("WATCHDOG=1") {
				t.Fatalf("%q: fed the watchdog along with %s", m, want)
			}
			return
		}
		if !slices.Equal(m, notification{"WATCHDOG=1"}) {
			t.Fatalf("%q while waiting for %s", m, want)
		}
	}
}

// drain returns the notifications already queued.
func (s *notifySocket) drain(t *testing.T) []notification {
	t.Helper()
	var all []notification
	for {
		m, err := s.read(time.Now().Add(50 * time.Millisecond))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
}

// fakeXMPP is just enough of an XMPP server's component listener
// (XEP-0114) for the daemon to connect to: it takes any secret, and
// answers each handshake when the test says so.
type fakeXMPP struct {
	ln    net.Listener
	conns chan net.Conn
}

func newFakeXMPP(t *testing.T) *fakeXMPP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeXMPP{ln: ln, conns: make(chan net.Conn, 4)}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
			f.conns <- nc
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return f
}

func (f *fakeXMPP) addr() string { return f.ln.Addr().String() }

// accept returns the next connection, once the component opened its
// stream on it.
func (f *fakeXMPP) accept(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case nc := <-f.conns:
		c := &fakeConn{nc: nc, d: xml.NewDecoder(nc)}
		c.nc.SetDeadline(time.Now().Add(10 * time.Second))
		c.expect(t, "stream")
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the component did not connect within 10s")
		return nil
	}
}

type fakeConn struct {
	nc net.Conn
	d  *xml.Decoder
}

// expect reads up to the start of the element local, skipping it.
func (c *fakeConn) expect(t *testing.T, local string) {
	t.Helper()
	for {
		tok, err := c.d.Token()
		if err != nil {
			t.Fatalf("reading the component's <%s>: %v", local, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == local {
			if local != "stream" {
				c.d.Skip()
			}
			return
		}
	}
}

// handshake answers the component's handshake and then reads whatever it
// sends until the connection ends.
func (c *fakeConn) handshake(t *testing.T) {
	t.Helper()
	fmt.Fprint(c.nc, `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams" from="qq.example.org" id="fake">`)
	c.expect(t, "handshake")
	if _, err := fmt.Fprint(c.nc, "<handshake/>"); err != nil {
		t.Fatal(err)
	}
	c.nc.SetDeadline(time.Time{})
	go io.Copy(io.Discard, c.nc)
}

func (c *fakeConn) close() { c.nc.Close() }
