package gateway

// XEP-0356 privileged entity: a user's server may grant the transport
// access to its users' rosters. It says so in a message from its domain
// after each handshake of the component: urn:xmpp:privilege:2 (XEP-0356
// 0.4, Prosody's mod_privilege) or urn:xmpp:privilege:1 (0.2, ejabberd
// 23.01). With write access the gateway sets the roster items itself
// (roster.go), and nobody is asked to approve a subscription per buddy;
// without it, the subscription flow applies as before.

import (
	"context"
	"encoding/xml"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/xmppcomp"
)

const (
	nsPrivilege1 = "urn:xmpp:privilege:1"
	nsPrivilege2 = "urn:xmpp:privilege:2"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// rosterTimeout bounds one roster request: a server that does not answer
// must not hold the session's worker.
const rosterTimeout = 10 * time.Second

// rosterGrant is what a server allows the gateway over its users'
// rosters, and what came of it.
type rosterGrant struct {
	get, set bool
	ns       string // the namespace the server spoke, for logs
	// refused: the server failed a roster set despite the grant (ejabberd
	// 23.01 fails every one): nothing is written, subscriptions are asked
	// for.
	refused bool
	// keepsSub: the server writes items but keeps their subscription
	// (ejabberd from 23.04, by its source): items are renamed and removed,
	// subscriptions asked for.
	keepsSub bool
}

// canWrite reports whether roster items are to be written: renamed,
// removed.
func (r rosterGrant) canWrite() bool { return r.set && !r.refused }

// canMutual reports whether the gateway adds items with a mutual
// subscription instead of asking for one.
func (r rosterGrant) canMutual() bool { return r.canWrite() && !r.keepsSub }

// privileges are the grants by user server. What the server did with the
// writes is learnt again after each reconnect, when it announces the
// grant afresh.
type privileges struct {
	mu       sync.Mutex
	byServer map[string]rosterGrant
}

func (p *privileges) roster(server string) rosterGrant {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byServer[server]
}

// set records server's grant and reports whether it allows more than
// before.
func (p *privileges) set(server string, g rosterGrant) (more bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byServer == nil {
		p.byServer = map[string]rosterGrant{}
	}
	old := p.byServer[server]
	p.byServer[server] = g
	return (g.set && !old.set) || (g.get && !old.get)
}

// note sets a flag of server's grant (refused or keepsSub) and reports
// whether it was clear, so that the news is logged once.
func (p *privileges) note(server string, flag func(*rosterGrant) *bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.byServer[server]
	f := flag(&g)
	if *f {
		return false
	}
	*f = true
	p.byServer[server] = g
	return true
}

func refusedFlag(g *rosterGrant) *bool  { return &g.refused }
func keepsSubFlag(g *rosterGrant) *bool { return &g.keepsSub }

// wirePrivileges is a server's announcement, in either namespace.
type wirePrivileges struct {
	V1 *wirePrivilege `xml:"urn:xmpp:privilege:1 privilege"`
	V2 *wirePrivilege `xml:"urn:xmpp:privilege:2 privilege"`
}

type wirePrivilege struct {
	Perms []struct {
		Access string `xml:"access,attr"`
		Type   string `xml:"type,attr"`
	} `xml:"perm"`
}

// takePrivilege reads a message from a server's domain to the gateway's
// that announces privileges. It reports whether st was one; then it is
// served here and goes no further.
func (g *Gateway) takePrivilege(st xmppcomp.Stanza) bool {
	if st.Name != "message" || st.From.Localpart() != "" || st.From.Resourcepart() != "" || st.To.Localpart() != "" || st.Type == "error" {
		return false
	}
	var w wirePrivileges
	if st.Decode(&w) != nil || (w.V1 == nil && w.V2 == nil) {
		return false
	}
	grant := rosterGrant{ns: nsPrivilege2}
	p := w.V2
	if p == nil {
		p, grant.ns = w.V1, nsPrivilege1
	}
	for _, perm := range p.Perms {
		if perm.Access == "roster" {
			grant.get = perm.Type == "get" || perm.Type == "both"
			grant.set = perm.Type == "set" || perm.Type == "both"
		}
	}
	server := st.From.Domainpart()
	more := g.privs.set(server, grant)
	g.log.WithFields(logrus.Fields{"server": server, "namespace": grant.ns, "roster_get": grant.get, "roster_set": grant.set}).
		Info("gateway: the server announced the gateway's privileges over its users' rosters")
	if more {
		g.reimport(server)
	}
	return true
}

// reimport imports the buddy lists of server's logged-in users again, now
// that the server allows more: what the subscription flow left is set
// right.
func (g *Gateway) reimport(server string) {
	for _, s := range g.snapshot() {
		if s.jid.Domainpart() == server {
			g.submitTo(s, func(ctx context.Context, s *session) {
				if s.online() {
					s.importRoster(ctx)
				}
			})
		}
	}
}

// iqError is an error answer to an iq the gateway sent.
type iqError struct {
	from            string
	typ, cond, text string
}

func newIQError(st xmppcomp.Stanza) *iqError {
	e := &iqError{from: st.From.String()}
	e.cond, e.typ, e.text, _ = readStanzaError(st)
	return e
}

// readStanzaError reads the <error/> of an error stanza: its defined
// condition (RFC 6120 8.3.3), type and text.
func readStanzaError(st xmppcomp.Stanza) (cond, typ, text string, err error) {
	var v struct {
		Error struct {
			Type  string `xml:"type,attr"`
			Conds []struct {
				XMLName xml.Name
				Text    string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"error"`
	}
	if err := st.Decode(&v); err != nil {
		return "", "", "", err
	}
	for _, c := range v.Error.Conds {
		switch {
		case c.XMLName.Space != nsStanzas:
		case c.XMLName.Local == "text":
			text = c.Text
		default:
			cond = c.XMLName.Local
		}
	}
	return cond, v.Error.Type, text, nil
}

func (e *iqError) Error() string {
	return fmt.Sprintf("%s answered: %s %s %q", e.from, e.typ, e.cond, e.text)
}
