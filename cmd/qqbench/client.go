package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// stanza is what the lean client reads of a stanza: enough to answer
// iqs, accept subscriptions and count messages.
type stanza struct {
	XMLName xml.Name
	From    string `xml:"from,attr"`
	To      string `xml:"to,attr"`
	Type    string `xml:"type,attr"`
	ID      string `xml:"id,attr"`
	Body    string `xml:"body"`
	Child   []struct {
		XMLName xml.Name
	} `xml:",any"`
}

func (s *stanza) firstChild() xml.Name {
	if len(s.Child) == 0 {
		return xml.Name{}
	}
	return s.Child[0].XMLName
}

// handler receives a client's stanzas, on the client's reading goroutine.
type handler func(c *client, st *stanza, at time.Time)

// client is a lean c2s client: SASL PLAIN without TLS (loopback), one
// goroutine reading, writes of preformatted stanzas under a lock. mellium's
// session would do, but costs more per connection than the 10,000 users
// this benchmark keeps online need; the reading is encoding/xml either way.
type client struct {
	user, domain string
	nc           net.Conn
	dec          *xml.Decoder
	br           *bufio.Reader

	wmu sync.Mutex

	mu      sync.Mutex
	pending map[string]chan *stanza // iq id → its answer
	nextID  int
	on      handler
	done    chan struct{}
	err     error // why reading ended
}

const streamHeader = "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' " +
	"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

// dial connects and logs in as user@domain with resource "bench".
func dial(ctx context.Context, addr, user, domain, password string) (*client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	c := &client{user: user, domain: domain, nc: nc, br: bufio.NewReaderSize(nc, 4096),
		pending: map[string]chan *stanza{}, done: make(chan struct{})}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if err := c.login(password); err != nil {
		nc.Close()
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *client) login(password string) error {
	if err := c.openStream(); err != nil {
		return err
	}
	creds := base64.StdEncoding.EncodeToString([]byte("\x00" + c.user + "\x00" + password))
	if err := c.write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + creds + "</auth>"); err != nil {
		return err
	}
	var res stanza
	if err := c.next(&res); err != nil {
		return fmt.Errorf("sasl: %w", err)
	}
	if res.XMLName.Local != "success" {
		return fmt.Errorf("sasl: server answered <%s>", res.XMLName.Local)
	}
	if err := c.openStream(); err != nil {
		return err
	}
	if err := c.write("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>"); err != nil {
		return err
	}
	if err := c.next(&res); err != nil || res.Type != "result" {
		return fmt.Errorf("bind: %v %q", err, res.Type)
	}
	return nil
}

// openStream sends a stream header and reads the server's up to its
// features. A new decoder per stream: SASL success restarts the stream,
// and the bufio.Reader underneath keeps whatever was read ahead.
func (c *client) openStream() error {
	if err := c.write(fmt.Sprintf(streamHeader, c.domain)); err != nil {
		return err
	}
	c.dec = xml.NewDecoder(c.br)
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			break
		}
	}
	var features stanza
	if err := c.next(&features); err != nil {
		return fmt.Errorf("stream features: %w", err)
	}
	return nil
}

// next reads the stream's next element into st.
func (c *client) next(st *stanza) error {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			*st = stanza{}
			return c.dec.DecodeElement(st, &t)
		case xml.EndElement:
			return io.EOF // </stream:stream>
		}
	}
}

// run reads stanzas until the connection ends, answering iq results to
// their waiters and everything else to on.
func (c *client) run(on handler) {
	c.on = on
	go func() {
		defer close(c.done)
		for {
			st := new(stanza)
			err := c.next(st)
			if err != nil {
				c.mu.Lock()
				c.err = err
				for id, ch := range c.pending {
					close(ch)
					delete(c.pending, id)
				}
				c.mu.Unlock()
				return
			}
			c.dispatch(st, time.Now())
		}
	}()
}

func (c *client) dispatch(st *stanza, at time.Time) {
	if st.XMLName.Local == "iq" && (st.Type == "result" || st.Type == "error") {
		c.mu.Lock()
		ch := c.pending[st.ID]
		delete(c.pending, st.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- st
			return
		}
	}
	if st.XMLName.Local == "iq" && (st.Type == "get" || st.Type == "set") {
		c.answerIQ(st)
	}
	c.on(c, st, at)
}

// answerIQ answers roster pushes and pings with a result and anything else
// with service-unavailable, as a client does, so nobody waits on it.
func (c *client) answerIQ(st *stanza) {
	ch := st.firstChild()
	to := ""
	if st.From != "" {
		to = " to='" + xmlEscape(st.From) + "'"
	}
	if ch.Space == "jabber:iq:roster" || ch.Space == "urn:xmpp:ping" {
		_ = c.write("<iq type='result' id='" + xmlEscape(st.ID) + "'" + to + "/>")
		return
	}
	_ = c.write("<iq type='error' id='" + xmlEscape(st.ID) + "'" + to + "><error type='cancel'>" +
		"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
}

// iq sends an iq whose id the client picks (body is everything inside
// the iq element) and waits for its answer.
func (c *client) iq(ctx context.Context, typ, to, body string) (*stanza, error) {
	ch := make(chan *stanza, 1)
	c.mu.Lock()
	c.nextID++
	id := "q" + strconv.Itoa(c.nextID)
	c.pending[id] = ch
	c.mu.Unlock()
	attr := ""
	if to != "" {
		attr = " to='" + xmlEscape(to) + "'"
	}
	if err := c.write("<iq type='" + typ + "' id='" + id + "'" + attr + ">" + body + "</iq>"); err != nil {
		return nil, err
	}
	select {
	case st, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: connection ended before the iq's answer: %v", c.user, c.err)
		}
		return st, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: iq to %s: %w", c.user, to, ctx.Err())
	}
}

func (c *client) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		return fmt.Errorf("%s: write: %w", c.user, err)
	}
	return nil
}

func (c *client) presence(to, typ string) error {
	s := "<presence"
	if to != "" {
		s += " to='" + xmlEscape(to) + "'"
	}
	if typ != "" {
		s += " type='" + typ + "'"
	}
	return c.write(s + "/>")
}

func (c *client) message(to, body string) error {
	return c.write("<message type='chat' to='" + xmlEscape(to) + "'><body>" + xmlEscape(body) + "</body></message>")
}

// close ends the stream and the connection and waits for the reader.
func (c *client) close() {
	_ = c.write("</stream:stream>")
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	c.nc.Close()
	if c.on != nil {
		<-c.done
	}
}

func xmlEscape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '&':
			rep = "&amp;"
		case '\'':
			rep = "&apos;"
		case '"':
			rep = "&quot;"
		default:
			if b != nil {
				b = append(b, s[i])
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = append(b, rep...)
	}
	if b == nil {
		return s
	}
	return string(b)
}
