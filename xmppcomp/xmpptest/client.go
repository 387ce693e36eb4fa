package xmpptest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/internal/wire"
)

// Client is a logged-in XMPP client (c2s, SASL without TLS on loopback) for
// tests. It reads everything the server sends into a buffer that Next
// searches, and answers IQs itself so the server never waits on the test:
// roster pushes and pings get a result, any other get or set gets
// service-unavailable (disco#info, after AnnounceCaps, gets its features).
// Those IQs are still buffered, so tests can see them.
// It does not send presence until SendPresence is called.
type Client struct {
	JID jid.JID // the full JID bound by the server

	sess *xmpp.Session
	nc   net.Conn
	wmu  sync.Mutex

	mu      sync.Mutex
	buf     []xmppcomp.Stanza
	notify  chan struct{} // closed and replaced whenever buf grows or reading ends
	readErr error         // why reading ended

	closeOnce sync.Once
	done      chan struct{} // closed when the reader has returned

	caps atomic.Pointer[capsInfo] // what AnnounceCaps set; nil: none
}

// Login logs user in on s and returns the client; it is closed at cleanup.
func (s *Server) Login(t testing.TB, ctx context.Context, user, password string) *Client {
	t.Helper()
	j, err := jid.New(user, s.Domain, "")
	if err != nil {
		t.Fatalf("xmpptest: login %q: %v", user, err)
	}
	c, err := Dial(ctx, s.ClientAddr, j, password)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// NewClient creates a user with a fresh name, UserName(name), and logs
// them in; the client is closed at cleanup. For a user who logs in more
// than once, use CreateUser and Login.
func (s *Server) NewClient(t testing.TB, ctx context.Context, name string) *Client {
	t.Helper()
	user, password := UserName(name), crand.Text()
	s.CreateUser(t, user, password)
	return s.Login(t, ctx, user, password)
}

// Dial connects to the c2s listener at addr and logs in as j (bare or full;
// without a resource a random one is used).
func Dial(ctx context.Context, addr string, j jid.JID, password string) (*Client, error) {
	if j.Resourcepart() == "" {
		var err error
		if j, err = j.WithResource("xmpptest-" + crand.Text()[:8]); err != nil {
			return nil, err
		}
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", j, err)
	}
	// State Secure: the test servers allow SASL without TLS on loopback, and
	// mellium only offers SASL on a secure stream.
	sess, err := xmpp.NewSession(ctx, j.Domain(), j, nc, xmpp.Secure, xmpp.NewNegotiator(
		func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
				xmpp.SASL("", password, sasl.ScramSha256, sasl.ScramSha1, sasl.Plain),
				xmpp.BindResource(),
			}}
		}))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("login %s: %w", j, err)
	}
	_ = nc.SetDeadline(time.Time{})
	c := &Client{JID: sess.LocalAddr(), sess: sess, nc: nc, notify: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *Client) read() {
	defer close(c.done)
	r := c.sess.TokenReader()
	defer r.Close()
	for {
		el, err := wire.ReadElement(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("server closed the stream")
			}
			c.mu.Lock()
			c.readErr = err
			close(c.notify)
			c.notify = make(chan struct{})
			c.mu.Unlock()
			return
		}
		if !wire.IsStanzaName(el.Start.Name.Local) {
			continue
		}
		st := xmppcomp.Stanza(wire.StanzaOf(el))
		if st.Name == "iq" && (st.Type == "get" || st.Type == "set") {
			c.answer(st, el.FirstChild)
		}
		c.mu.Lock()
		c.buf = append(c.buf, st)
		close(c.notify)
		c.notify = make(chan struct{})
		c.mu.Unlock()
	}
}

// answer replies to an IQ request so the sender never hangs.
func (c *Client) answer(st xmppcomp.Stanza, child xml.Name) {
	iq := stanza.IQ{ID: st.ID, To: st.From, Type: stanza.ResultIQ}
	var reply xml.TokenReader
	switch {
	case st.Type == "get" && child == xml.Name{Space: disco.NSInfo, Local: "query"} && c.caps.Load() != nil:
		reply = c.discoReply(st, iq)
	case st.Type == "set" && child == xml.Name{Space: "jabber:iq:roster", Local: "query"},
		st.Type == "get" && child == xml.Name{Space: "urn:xmpp:ping", Local: "ping"}:
		reply = iq.Wrap(nil)
	default:
		// Not iq.Error: that swaps from and to.
		iq.Type = stanza.ErrorIQ
		reply = iq.Wrap(stanza.Error{Type: stanza.Cancel, Condition: stanza.ServiceUnavailable}.TokenReader())
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Send(ctx, reply)
	}()
}

// Send writes the first element of r as one stanza (message, presence or iq).
func (c *Client) Send(ctx context.Context, r xml.TokenReader) error {
	var buf bytes.Buffer
	if _, err := wire.EncodeStanza(&buf, r, wire.NSClient); err != nil {
		return fmt.Errorf("xmpptest: %s send: %w", c.JID, err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		_ = c.nc.SetWriteDeadline(d)
	} else {
		_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	if _, err := c.nc.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("xmpptest: %s send: %w", c.JID, err)
	}
	return nil
}

// Encode is Send for a value encoding/xml can marshal.
func (c *Client) Encode(ctx context.Context, v any) error {
	var r xml.TokenReader
	switch t := v.(type) {
	case xml.TokenReader:
		r = t
	case xmlstream.Marshaler:
		r = t.TokenReader()
	default:
		b, err := xml.Marshal(v)
		if err != nil {
			return fmt.Errorf("xmpptest: %s encode %T: %w", c.JID, v, err)
		}
		r = xml.NewDecoder(bytes.NewReader(b))
	}
	return c.Send(ctx, r)
}

// SendPresence sends initial (available) presence, so that the server
// delivers messages addressed to the bare JID and sends presence probes.
func (c *Client) SendPresence(ctx context.Context) error {
	return c.Send(ctx, stanza.Presence{}.Wrap(nil))
}

// SendIQ sends an iq get or set and waits for its result or error.
func (c *Client) SendIQ(ctx context.Context, r xml.TokenReader) (xmppcomp.Stanza, error) {
	var buf bytes.Buffer
	top, err := wire.EncodeStanza(&buf, r, wire.NSClient)
	if err != nil {
		return xmppcomp.Stanza{}, fmt.Errorf("xmpptest: %s send iq: %w", c.JID, err)
	}
	id := wire.Attr(top, "id")
	if err := c.Send(ctx, xml.NewDecoder(&buf)); err != nil {
		return xmppcomp.Stanza{}, err
	}
	return c.Next(ctx, func(st xmppcomp.Stanza) bool {
		return st.Name == "iq" && st.ID == id && (st.Type == "result" || st.Type == "error")
	})
}

// Next returns the first received stanza, oldest first, for which match
// returns true (nil matches anything), removing it from the buffer; others
// stay for later calls. It waits until one arrives, ctx ends, or the
// connection ends; the error then lists what is buffered.
func (c *Client) Next(ctx context.Context, match func(xmppcomp.Stanza) bool) (xmppcomp.Stanza, error) {
	for {
		c.mu.Lock()
		for i, st := range c.buf {
			if match == nil || match(st) {
				if i == 0 {
					c.buf[0] = xmppcomp.Stanza{}
					c.buf = c.buf[1:]
				} else {
					c.buf = append(c.buf[:i], c.buf[i+1:]...)
				}
				c.mu.Unlock()
				return st, nil
			}
		}
		readErr, ch := c.readErr, c.notify
		pending := c.describeBuffered()
		c.mu.Unlock()
		if readErr != nil {
			return xmppcomp.Stanza{}, fmt.Errorf("xmpptest: %s: connection ended (%v) without a matching stanza; %s", c.JID, readErr, pending)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return xmppcomp.Stanza{}, fmt.Errorf("xmpptest: %s: no matching stanza: %w; %s", c.JID, ctx.Err(), pending)
		}
	}
}

// describeBuffered summarises the buffer for errors; c.mu is held.
func (c *Client) describeBuffered() string {
	if len(c.buf) == 0 {
		return "nothing else received"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d other stanza(s) received:", len(c.buf))
	for i, st := range c.buf {
		if i == 5 {
			fmt.Fprintf(&b, "\n  ...")
			break
		}
		raw := st.String()
		if len(raw) > 300 {
			raw = raw[:300] + "..."
		}
		fmt.Fprintf(&b, "\n  %s", raw)
	}
	return b.String()
}

// Close ends the stream and the connection. It is safe to call twice.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.wmu.Lock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c.nc, "</stream:stream>")
		c.wmu.Unlock()
		select {
		case <-c.done:
		case <-time.After(time.Second):
		}
		c.nc.Close()
		<-c.done
	})
	return nil
}
