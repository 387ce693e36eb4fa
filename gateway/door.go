package gateway

// The door: every inbound stanza is read here once, into a plain value,
// and handed to its sender's session queue. A user's message to a buddy is
// also written to the store's outbox before it is queued, so that a crash
// cannot lose it; a message to the domain is a command line (chatcmd.go),
// never stored: it may carry a password.

import (
	"context"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/receipts"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// inbound is one stanza of a user as the gateway reads it.
type inbound struct {
	st     xmppcomp.Stanza // addresses, id, type; Raw only for iq payloads
	domain bool            // to the gateway's domain, not a buddy
	uin    qqproto.UIN     // the buddy it is to
	bad    error           // why it cannot be served, answered as such

	msg  *outgoing   // a message with text for QQ
	line *chatLine   // a message with text for the domain: a command line
	pres *presenceIn // a presence
	iq   xml.Name    // an iq get or set: its payload
}

// outgoing is a user's message to a QQ buddy.
type outgoing struct {
	queueID      int64 // its outbox row; 0 if it could not be stored
	seq          int64 // the SEQ of its first CLTMSG (part i: seq+i); 0 if none chosen yet
	retrying     bool  // QQ may have taken it: kept in the outbox for a retry
	buried       bool  // given up on: moved to the dead letters
	tried        bool  // an earlier attempt may have reached QQ (its row counts attempts)
	to           qqproto.UIN
	text         string
	id, typ      string // the stanza's id and type
	wantsReceipt bool
	at           time.Time // when it came in at the door, for the relay latency
}

// chatLine is a user's message to the domain JID.
type chatLine struct {
	text string
	typ  string // chat or normal: the answer's type
}

// presenceIn is a user's presence.
type presenceIn struct {
	show, status string
	prio         int
	caps         capsRef // the client's entity capabilities (usercaps.go)
}

// HandleStanza implements xmppcomp.Handler. It never blocks on QQ: the
// stanza is read once and goes to its sender's session queue, to be served
// there in order with everything else of that user.
func (g *Gateway) HandleStanza(_ context.Context, st xmppcomp.Stanza) {
	g.handle([]xmppcomp.Stanza{st}, 0)
}

// HandleStanzas implements xmppcomp.BatchHandler: the stanzas that arrived
// together, as HandleStanza would take them one by one, with their
// messages for QQ written to the outbox in one commit.
func (g *Gateway) HandleStanzas(_ context.Context, sts []xmppcomp.Stanza) { g.handle(sts, 0) }

// arrival is a stanza read at the door, to be queued for its user.
type arrival struct {
	bare jid.JID
	in   inbound
}

// handle is HandleStanzas for stanzas that came by connection via (0: the
// primary one; cluster.go).
func (g *Gateway) handle(sts []xmppcomp.Stanza, via int) {
	g.cfg.Metrics.stanzaIn(len(sts))
	now := g.clock.Now()
	arrived := make([]arrival, 0, len(sts)) // never grown: keep points into it
	var keep []*inbound
	for _, st := range sts {
		if !g.accept(st, via) {
			continue
		}
		arrived = append(arrived, arrival{bare: st.From.Bare(), in: g.read(st)})
		if in := &arrived[len(arrived)-1].in; in.msg != nil {
			in.msg.at = now
			keep = append(keep, in)
		}
	}
	g.keep(keep)
	for _, a := range arrived {
		in := a.in
		g.enqueue(a.bare, func(ctx context.Context, s *session) {
			s.serve(ctx, in)
			if in.pres != nil {
				g.answered(s.key) // and the login it brought is done: see storm.go
			}
		})
	}
}

// accept is whether st goes to its user's session: it is a user's stanza
// for this domain, and its user has room for it.
func (g *Gateway) accept(st xmppcomp.Stanza, via int) bool {
	switch {
	case st.From.Domainpart() == "":
		g.log.WithField("stanza", st.Name).Debug("gateway: dropping stanza without a valid from")
		return false
	case st.To.Domainpart() != g.domain.Domainpart():
		g.log.WithField("to", st.To.String()).Debug("gateway: dropping stanza for another domain")
		return false
	case g.takePrivilege(st):
		return false // a server's grant (privilege.go), not a user's stanza
	case !g.admit(st):
		return false // refused: its user has too much waiting (gateway.go)
	}
	if g.cl != nil {
		g.cl.noteVia(st.From.Bare(), via)
	}
	return true
}

// read decodes st into an inbound.
func (g *Gateway) read(st xmppcomp.Stanza) inbound {
	in := inbound{st: st}
	in.st.Raw = nil
	if st.To.Localpart() == "" {
		in.domain = true
	} else if u, ok := qqproto.ParseUIN(st.To.Localpart()); ok {
		in.uin = u
	} else {
		in.bad = errNotAContact(st.To.Localpart())
	}
	switch st.Name {
	case "message":
		in.msg, in.line, in.bad = readMessage(st, in)
	case "presence":
		in.pres = readPresence(st)
	case "iq":
		in.iq, in.bad = readIQ(st, in.bad)
		in.st.Raw = st.Raw // payload handlers decode their own part
	}
	return in
}

// wireMessage is what the gateway reads of a user's message.
type wireMessage struct {
	Lang    string             `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Bodies  []wireBody         `xml:"body"`
	Request receipts.Requested `xml:"urn:xmpp:receipts request"`
}

type wireBody struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Text string `xml:",chardata"`
}

// body picks the message's text: a body with text without a language of its
// own or in the message's language, else the first with text (RFC 6121 5.2.3).
func (m wireMessage) body() string {
	for _, b := range m.Bodies {
		if (b.Lang == "" || b.Lang == m.Lang) && b.Text != "" {
			return b.Text
		}
	}
	// No text in the stanza's own language: any body with text, rather
	// than dropping a message whose first body is empty.
	for _, b := range m.Bodies {
		if b.Text != "" {
			return b.Text
		}
	}
	return ""
}

// readMessage reads a message: one with text for a buddy is outgoing, one
// with text for the domain a command line; one the gateway refuses comes
// back with its error; the rest (errors, headlines, chat states alone) is
// neither and is dropped.
func readMessage(st xmppcomp.Stanza, in inbound) (*outgoing, *chatLine, error) {
	switch {
	case st.Type == "error" || st.Type == "headline":
		return nil, nil, nil
	case in.bad != nil:
		return nil, nil, in.bad
	case st.Type == "groupchat":
		return nil, nil, errNoGroupChat
	}
	var m wireMessage
	if err := st.Decode(&m); err != nil {
		return nil, nil, errMalformed
	}
	text := m.body()
	if text == "" {
		return nil, nil, nil
	}
	typ := st.Type
	if typ == "" {
		typ = "normal"
	}
	if in.domain {
		return nil, &chatLine{text: text, typ: typ}, nil
	}
	// XEP-0184 §5: no receipt without an id to name.
	return &outgoing{to: in.uin, text: text, id: st.ID, typ: typ, wantsReceipt: bool(m.Request) && st.ID != ""}, nil, nil
}

// wirePresence is what the gateway reads of a presence.
type wirePresence struct {
	Show     string    `xml:"show"`
	Status   string    `xml:"status"`
	Priority string    `xml:"priority"`
	Caps     *wireCaps `xml:"http://jabber.org/protocol/caps c"`
}

func readPresence(st xmppcomp.Stanza) *presenceIn {
	var p wirePresence
	// An unreadable payload leaves the defaults: type and addresses are known.
	_ = st.Decode(&p)
	prio, err := strconv.Atoi(strings.TrimSpace(p.Priority))
	if err != nil || prio < -128 || prio > 127 { // RFC 6121 4.7.2.3
		prio = 0
	}
	return &presenceIn{show: normalShow(p.Show), status: strings.TrimSpace(p.Status), prio: prio,
		caps: capsOf(p.Caps, st.From.String())}
}

func normalShow(show string) string {
	switch show {
	case "away", "chat", "dnd", "xa":
		return show
	}
	return ""
}

// wireIQ reads only the names of an iq's children.
type wireIQ struct {
	Children []struct {
		XMLName xml.Name
	} `xml:",any"`
}

// readIQ reads the name of a request's payload: its first child that is
// not an <error/>. Results and errors are not requests: the gateway asks
// nothing, so they carry nothing for it.
func readIQ(st xmppcomp.Stanza, bad error) (xml.Name, error) {
	if st.Type != "get" && st.Type != "set" {
		return xml.Name{}, nil
	}
	if bad != nil {
		return xml.Name{}, bad
	}
	var w wireIQ
	if err := st.Decode(&w); err != nil {
		return xml.Name{}, errMalformed
	}
	for _, ch := range w.Children {
		if ch.XMLName.Local != "error" {
			return ch.XMLName, nil
		}
	}
	return xml.Name{}, errNoPayload
}

// keep writes messages for QQ to the outbox, with the SEQs of their
// CLTMSGs, in one commit, before they wait in memory; each leaves the
// store once served. Only a registered user's can be kept: the rest is
// refused when served. A message the store cannot take is refused (try
// again later), never sent unkept.
func (g *Gateway) keep(ins []*inbound) {
	if len(ins) == 0 {
		return
	}
	items := make([]store.Item, len(ins))
	for i, in := range ins {
		m := in.msg
		m.seq = g.seqs.Reserve(partsOf(m.text, g.cfg.MaxMessageBytes))
		items[i] = store.Item{
			Dir: store.ToQQ, JID: in.st.From.Bare().String(), Peer: int64(m.to), Text: m.text,
			Resource: in.st.From.Resourcepart(), StanzaID: m.id, StanzaType: m.typ, WantsReceipt: m.wantsReceipt,
			Received: m.at, Seq: m.seq,
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Insert and mark under one lock: a replay at login that reads the new
	// rows must also see that their work items are waiting.
	g.outbox.mu.Lock()
	defer g.outbox.mu.Unlock()
	ids, errs := g.st.EnqueueEach(ctx, items)
	for i, in := range ins {
		switch err := errs[i]; {
		case errors.Is(err, store.ErrNotFound): // not registered: refused when served
		case err != nil:
			g.log.WithError(err).WithField("jid", items[i].JID).Error("gateway: cannot queue a message to QQ; refusing it")
			in.bad = errCannotStore
		default:
			in.msg.queueID = ids[i]
			g.outbox.addLocked(ids[i])
		}
	}
}

// partsOf is how many CLTMSGs text takes at max bytes each.
func partsOf(text string, max int) int {
	if len(text) <= max {
		return 1
	}
	parts, err := SplitText(text, max)
	if err != nil {
		return 1
	}
	return len(parts)
}
