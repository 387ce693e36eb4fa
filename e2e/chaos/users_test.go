//go:build e2e

package chaos

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// user is an XMPP user registered with the gateway as QQ userUIN(n). Its
// client reconnects whenever the connection ends (a Prosody restart), as
// a real client does, and reports every message it receives to the ledger.
type user struct {
	n        int
	name     string
	password string
	srv      *xmpptest.Server
	led      *ledger

	mu    sync.Mutex
	gen   int              // connections made so far
	c     *xmpptest.Client // nil while disconnected
	ready chan struct{}    // closed when c is set; replaced when it is lost
}

func newUser(t *testing.T, srv *xmpptest.Server, led *ledger, n int) *user {
	t.Helper()
	u := &user{n: n, name: xmpptest.UserName(fmt.Sprintf("chaos%d", n)), password: "xmpp password", srv: srv, led: led, ready: make(chan struct{})}
	srv.CreateUser(t, u.name, u.password)
	return u
}

func (u *user) jid() jid.JID { return jidOf(u.name, u.srv.Domain) }

func jidOf(local, domain string) jid.JID { return jid.MustParse(local + "@" + domain) }

// connect logs in, gets the roster and sends presence, as a client does.
// The server picks a new resource each time (mellium does not ask for
// one), so an error about a message sent before a reconnect goes to a
// resource that is gone, and Prosody drops it: such a refusal would count
// as lost.
func (u *user) connect(ctx context.Context) (*xmpptest.Client, error) {
	c, err := xmpptest.Dial(ctx, u.srv.ClientAddr, u.jid(), u.password)
	if err != nil {
		return nil, err
	}
	ans, err := c.SendIQ(ctx, raw(`<iq type="get" id="roster"><query xmlns="jabber:iq:roster"/></iq>`))
	if err == nil && ans.Type != "result" {
		err = fmt.Errorf("roster get: %s", ans)
	}
	if err == nil {
		err = c.SendPresence(ctx)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", u.name, err)
	}
	return c, nil
}

// register connects the first time and registers QQ userUIN(u.n); the
// transport's and the buddies' subscription requests are approved by run.
func (u *user) register(ctx context.Context) error {
	c, err := u.connect(ctx)
	if err != nil {
		return err
	}
	ans, err := c.SendIQ(ctx, raw(fmt.Sprintf(`<iq type="set" id="reg" to=%q><query xmlns="jabber:iq:register">`+
		`<username>%d</username><password>%s</password></query></iq>`, transport, userUIN(u.n), qqPass)))
	if err == nil && ans.Type != "result" {
		err = fmt.Errorf("registration: %s", ans)
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("%s: %w", u.name, err)
	}
	u.set(c)
	return nil
}

func (u *user) set(c *xmpptest.Client) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.c = c
	u.gen++
	close(u.ready)
}

// generation is how many connections the user has made so far.
func (u *user) generation() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gen
}

func (u *user) lost() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.c.Close()
	u.c = nil
	u.ready = make(chan struct{})
}

// client waits for a connected client.
func (u *user) client(ctx context.Context) (*xmpptest.Client, error) {
	for {
		u.mu.Lock()
		c, ready := u.c, u.ready
		u.mu.Unlock()
		if c != nil {
			return c, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// run reads what the current client receives until ctx ends, and
// reconnects (every 200ms) whenever the connection is lost.
func (u *user) run(ctx context.Context) {
	for ctx.Err() == nil {
		c, err := u.client(ctx)
		if err != nil {
			return
		}
		u.read(ctx, c)
		if ctx.Err() != nil {
			return
		}
		u.lost()
		for ctx.Err() == nil {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c, err := u.connect(dctx)
			cancel()
			if err == nil {
				u.set(c)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// read handles c's stanzas until its connection ends or ctx does.
func (u *user) read(ctx context.Context, c *xmpptest.Client) {
	for {
		st, err := c.Next(ctx, nil)
		if err != nil {
			return
		}
		u.handle(ctx, c, st)
	}
}

// wireMsg is what the suite reads of a message.
type wireMsg struct {
	Body     string `xml:"body"`
	OriginID *sid   `xml:"urn:xmpp:sid:0 origin-id"`
	StanzaID *sid   `xml:"urn:xmpp:sid:0 stanza-id"`
	Error    *struct {
		Type  string `xml:"type,attr"`
		Conds []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	} `xml:"error"`
}

func (u *user) handle(ctx context.Context, c *xmpptest.Client, st xmppcomp.Stanza) {
	fromGateway := st.From.Domainpart() == transport
	switch {
	case st.Name == "presence" && st.Type == "subscribe" && fromGateway:
		// A user who accepts the transport and every buddy it offers.
		to := st.From.Bare().String()
		_ = c.Send(ctx, raw(fmt.Sprintf(`<presence to=%q type="subscribed"/>`, to)))
		_ = c.Send(ctx, raw(fmt.Sprintf(`<presence to=%q type="subscribe"/>`, to)))
	case st.Name == "message" && fromGateway && st.From.Localpart() != "":
		var m wireMsg
		if err := st.Decode(&m); err != nil {
			return
		}
		switch {
		case st.Type == "error":
			u.led.errored(st.ID, errorText(m))
		case m.Body != "":
			u.led.deliveredXMPP(m.Body, copyKey(st, m))
		}
	}
}

// sid is a XEP-0359 unique and stable id.
type sid struct {
	ID string `xml:"id,attr"`
}

// copyKey names the id a client could deduplicate a copy by: its XEP-0359
// origin-id or stanza-id, else the stanza's id attribute.
func copyKey(st xmppcomp.Stanza, m wireMsg) string {
	switch {
	case m.OriginID != nil && m.OriginID.ID != "":
		return "origin-id=" + m.OriginID.ID
	case m.StanzaID != nil && m.StanzaID.ID != "":
		return "stanza-id=" + m.StanzaID.ID
	}
	return "id=" + st.ID
}

// errorText is an error stanza's type, condition and text, for the report.
func errorText(m wireMsg) string {
	if m.Error == nil {
		return "(no <error/>)"
	}
	var cond, text string
	for _, c := range m.Error.Conds {
		if c.XMLName.Local == "text" {
			text = strings.TrimSpace(c.Text)
		} else if cond == "" {
			cond = c.XMLName.Local
		}
	}
	if text != "" {
		return fmt.Sprintf("%s/%s: %q", m.Error.Type, cond, text)
	}
	return m.Error.Type + "/" + cond
}

// send sends one message to a buddy whose body is its id.
func (u *user) send(ctx context.Context, c *xmpptest.Client, to qqproto.UIN, id string) error {
	return c.Send(ctx, raw(fmt.Sprintf(`<message type="chat" id=%q to="%d@%s"><body>%s</body></message>`, id, to, transport, id)))
}

func raw(s string) xml.TokenReader { return xml.NewDecoder(strings.NewReader(s)) }

// TestCopyKey: a copy is known by its XEP-0359 origin-id, else its
// stanza-id, else its id attribute.
func TestCopyKey(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{`<message xmlns="jabber:client" id="qq-7"><body>q00001</body><origin-id xmlns="urn:xmpp:sid:0" id="o1"/><stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="x"/></message>`, "origin-id=o1"},
		{`<message xmlns="jabber:client" id="qq-7"><body>q00001</body><stanza-id xmlns="urn:xmpp:sid:0" id="s1" by="x"/></message>`, "stanza-id=s1"},
		{`<message xmlns="jabber:client" id="qq-7"><body>q00001</body><origin-id xmlns="urn:other" id="o1"/></message>`, "id=qq-7"},
	} {
		st, err := xmppcomp.ParseStanza([]byte(c.raw))
		if err != nil {
			t.Fatal(err)
		}
		var m wireMsg
		if err := st.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if got := copyKey(st, m); got != c.want || m.Body != "q00001" {
			t.Errorf("%s: key %q body %q, want %q and q00001", c.raw, got, m.Body, c.want)
		}
	}
}
