//go:build e2e

package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"

	"qqxmpp/xmppcomp/xmpptest"
)

// attacker is an XMPP user of the same server, not registered with the
// gateway, who sends it stanzas meant to break its reader or handlers. It
// writes raw bytes after logging in, since a well-behaved encoder refuses
// to produce most of them. Prosody passes them on, except what it refuses
// itself (invalid XML or UTF-8, stanzas over its size limit: it closes the
// attacker's stream), which therefore never reaches the gateway.
type attacker struct {
	srv      *xmpptest.Server
	name     string
	password string

	nc      net.Conn
	mu      sync.Mutex
	replies bytes.Buffer // everything received, for counting the answers
}

func newAttacker(t *testing.T, srv *xmpptest.Server) *attacker {
	t.Helper()
	a := &attacker{srv: srv, name: xmpptest.UserName("mallory"), password: "mallory"}
	srv.CreateUser(t, a.name, a.password)
	return a
}

// dial logs in as xmpptest.Dial does and keeps the bare connection.
func (a *attacker) dial(ctx context.Context) error {
	j, err := jidOf(a.name, a.srv.Domain).WithResource("evil")
	if err != nil {
		return err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", a.srv.ClientAddr)
	if err != nil {
		return err
	}
	_, err = xmpp.NewSession(ctx, j.Domain(), j, nc, xmpp.Secure, xmpp.NewNegotiator(
		func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
				xmpp.SASL("", a.password, sasl.Plain), xmpp.BindResource(),
			}}
		}))
	if err != nil {
		nc.Close()
		return err
	}
	_ = nc.SetDeadline(time.Time{})
	a.nc = nc
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := nc.Read(buf)
			a.mu.Lock()
			a.replies.Write(buf[:n])
			a.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	_, err = io.WriteString(nc, "<presence/>")
	return err
}

// hostile is one stanza of a round; id names it in the gateway's answer.
type hostile struct{ id, xml string }

// hostileStanzas are the stanzas of one round, aimed at a buddy JID, the
// domain, and a number that is no buddy. The last ones may make Prosody
// close the attacker's stream: a long one, and invalid UTF-8.
func hostileStanzas() []hostile {
	buddy := fmt.Sprintf("%d@%s", buddyUIN(0, 0), transport)
	deep := func(n int) string { return strings.Repeat("<a>", n) + "x" + strings.Repeat("</a>", n) }
	many := strings.Repeat("<b/>", 20000)
	var attrs strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&attrs, " a%d='%s'", i, strings.Repeat("v", 20))
	}
	long := strings.Repeat("名", 40000) // 120 KB, under Prosody's 256 KB c2s limit
	odd := "\u202e\u200d\ufeff\U0001F600e\u0301\ufffd\u0085"
	h := []hostile{
		{"deep", `<message type='chat' to='%s' id='%s'><body>deep</body>` + deep(300) + `</message>`},
		{"deep-domain", `<message type='chat' to='` + transport + `' id='%[2]s'><body>help</body>` + deep(1000) + `</message>`},
		{"deep-body", `<message type='chat' to='%s' id='%s'><body>` + deep(300) + `</body></message>`},
		{"deep-iq", `<iq type='get' to='` + transport + `' id='%[2]s'><query xmlns='jabber:iq:register'>` + deep(300) + `</query></iq>`},
		{"deep-iq2", `<iq type='set' to='` + transport + `' id='%[2]s'><query xmlns='jabber:iq:register'><username>` + deep(400) + `</username></query></iq>`},
		{"deep-pres", `<presence to='%s' id='%s'>` + deep(300) + `</presence>`},
		{"wide", `<message type='chat' to='%s' id='%s'><body>wide</body>` + many + `</message>`},
		{"attrs", `<message type='chat' to='%s' id='%s'` + attrs.String() + `><body>attrs</body></message>`},
		{"odd", `<message type='chat' to='%s' id='%s'><body>` + odd + `</body><x-é中 xmlns='urn:x:` + odd + `'/></message>`},
		{"bignum", `<message type='chat' to='99999999999999999999@` + transport + `' id='%[2]s'><body>x</body></message>`},
		{"vcard-deep", `<iq type='get' to='%s' id='%s'><vCard xmlns='vcard-temp'>` + deep(300) + `</vCard></iq>`},
		{"cmd-deep", `<iq type='set' to='` + transport + `' id='%[2]s'><command xmlns='http://jabber.org/protocol/commands' node='register' action='execute'>` + deep(300) + `</command></iq>`},
		{"long", `<message type='chat' to='%s' id='%s'><body>` + long + `</body></message>`},
		{"bad-utf8", `<message type='chat' to='%s' id='%s'><body>` + "\xff\xfe\xc3\x28" + `</body></message>`},
	}
	for i := range h {
		h[i].xml = fmt.Sprintf(h[i].xml, buddy, h[i].id)
	}
	return h
}

// attack sends rounds of hostile stanzas for d, reconnecting when Prosody
// closes the attacker's stream. It returns how many were sent, and the
// kinds no answer came back for (the gateway's, or Prosody's bounce while
// the component is away): those Prosody swallowed or the gateway dropped.
func (a *attacker) attack(ctx context.Context, d time.Duration) (sent int, unanswered []string) {
	end := time.Now().Add(d)
	a.mu.Lock()
	a.replies.Reset()
	a.mu.Unlock()
	for time.Now().Before(end) && ctx.Err() == nil {
		for _, h := range hostileStanzas() {
			if a.nc == nil {
				if err := a.dial(ctx); err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			if h.id == "bad-utf8" {
				// Prosody closes the stream on it: the answers to the
				// others must have come back first.
				time.Sleep(300 * time.Millisecond)
			}
			_ = a.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(a.nc, h.xml); err != nil {
				a.close()
				continue
			}
			sent++
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	got := a.replies.String()
	for _, h := range hostileStanzas() {
		if !strings.Contains(got, "id='"+h.id+"'") {
			unanswered = append(unanswered, h.id)
		}
	}
	return sent, unanswered
}

func (a *attacker) close() {
	if a.nc != nil {
		a.nc.Close()
		a.nc = nil
	}
}
