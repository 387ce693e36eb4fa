package gateway

import (
	"bytes"
	"context"
	"encoding/xml"
	"strconv"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/delay"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/xmppcomp"
)

// Sender puts stanzas on the XMPP side; *xmppcomp.Component satisfies it.
type Sender interface {
	// Encode sends one stanza, a value encoding/xml can marshal.
	Encode(ctx context.Context, v any) error
	// ReplyError answers an inbound stanza with a stanza error.
	ReplyError(ctx context.Context, st xmppcomp.Stanza, e stanza.Error) error
	// Barrier returns once the server processed every stanza sent before
	// it, so they were routed to to's server (or its offline storage).
	Barrier(ctx context.Context, to jid.JID) error
	// SendIQ sends an iq get or set and returns its answer, a result or
	// an error stanza. Only the session workers call it: the answer is
	// read while they wait.
	SendIQ(ctx context.Context, r xml.TokenReader) (xmppcomp.Stanza, error)
}

var _ Sender = (*xmppcomp.Component)(nil)

// emitter builds and sends every stanza the gateway writes, from plain
// values: handlers never assemble XML. Safe for concurrent use.
type emitter struct {
	dom     string  // the gateway's domain, the from of its own stanzas
	domJID  jid.JID // the same, parsed
	out     atomic.Pointer[Sender]
	avatars Avatars
	caps    entityCaps
	m       *Metrics // counts the stanza errors sent
	bars    barriers // the delivery barriers, shared by the sessions
}

// resource is the one resource of every JID of the transport. Available
// presence comes from a full JID, as RFC 6121 has it: clients such as
// Gajim only show the resources of a contact, and drop available presence
// from a bare JID.
const jidResource = "qq"

// full is the full JID of the transport's JID bare.
func full(bare string) string { return bare + "/" + jidResource }

func (e *emitter) buddyJID(uin qqproto.UIN) string {
	return strconv.FormatInt(int64(uin), 10) + "@" + e.dom
}

// jidOf is the gateway's JID of a QQ number, or the domain for 0.
func (e *emitter) jidOf(uin qqproto.UIN) string {
	if uin == 0 {
		return e.dom
	}
	return e.buddyJID(uin)
}

func (e *emitter) sender() (Sender, error) {
	p := e.out.Load()
	if p == nil {
		return nil, xmppcomp.ErrNotConnected
	}
	return *p, nil
}

func (e *emitter) send(ctx context.Context, v any) error {
	s, err := e.sender()
	if err != nil {
		return err
	}
	e.m.stanzaOut()
	return s.Encode(ctx, v)
}

// barrier waits until the server processed what was sent to to before,
// sharing the round trip with the other sessions waiting (barrier.go).
func (e *emitter) barrier(ctx context.Context, to jid.JID) error {
	return e.bars.wait(ctx, to, e.ping)
}

// ping sends one barrier on the current connection.
func (e *emitter) ping(ctx context.Context, to jid.JID) error {
	s, err := e.sender()
	if err != nil {
		return err
	}
	e.m.barrier()
	return s.Barrier(ctx, to)
}

// ask sends an iq request of type typ (get or set) from the domain to to
// and returns the answer; an error answer is an *iqError.
func (e *emitter) ask(ctx context.Context, to, typ string, payload any) (xmppcomp.Stanza, error) {
	s, err := e.sender()
	if err != nil {
		return xmppcomp.Stanza{}, err
	}
	// No id: xmppcomp gives the request one and matches the answer by it.
	b, err := xml.Marshal(iq{From: e.dom, To: to, Type: typ, Payload: payload})
	if err != nil {
		return xmppcomp.Stanza{}, err
	}
	e.m.stanzaOut()
	ans, err := s.SendIQ(ctx, xml.NewDecoder(bytes.NewReader(b)))
	if err != nil {
		return xmppcomp.Stanza{}, err
	}
	if ans.Type == "error" {
		return ans, newIQError(ans)
	}
	return ans, nil
}

// ---- presence ----

// shownPresence is a presence as the user sees it; the zero value is
// unavailable, which is what a contact shows before anything was sent.
//
// A buddy shows one of two presences when available, online or busy
// (presenceFor), so that is a flag rather than the show and status texts:
// every buddy of every session keeps one.
type shownPresence struct {
	nick      string
	picture   int32 // of the avatar whose XEP-0153 hash the presence carries
	available bool
	busy      bool // show away, status busyStatus
}

// buddyPresence sends what a buddy's JID shows, from its full JID, with
// the buddy's entity capabilities (XEP-0115) and avatar hash (XEP-0153).
func (e *emitter) buddyPresence(ctx context.Context, uin qqproto.UIN, to string, sp shownPresence) error {
	p := presence{From: full(e.buddyJID(uin)), To: to}
	if !sp.available {
		p.Type = presUnavailable
		return e.send(ctx, p)
	}
	if sp.busy {
		p.Show, p.Status = "away", busyStatus
	}
	p.Nick = newNick(sp.nick)
	p.Extra = []any{e.caps.contact}
	if av, err := e.avatars.forPicture(int(sp.picture)); err == nil {
		p.Extra = append(p.Extra, vcardUpdate{Photo: av.Hash})
	}
	return e.send(ctx, p)
}

// domainPresence sends the gateway's own presence, from its full JID:
// available while the user's QQ session is logged in, else unavailable
// with a reason.
func (e *emitter) domainPresence(ctx context.Context, to string, available bool, status string) error {
	p := presence{From: full(e.dom), To: to}
	if !available {
		p.Type, p.Status = presUnavailable, status
		return e.send(ctx, p)
	}
	p.Extra = []any{e.caps.gateway}
	return e.send(ctx, p)
}

// subscription sends a presence of type typ (subscribe, unsubscribed, …)
// from a buddy's JID or, for uin 0, the domain.
func (e *emitter) subscription(ctx context.Context, uin qqproto.UIN, to, typ, status, nick string) error {
	return e.send(ctx, presence{From: e.jidOf(uin), To: to, Type: typ, Status: status, Nick: newNick(nick)})
}

// goodbye takes a JID of the transport out of the user's roster.
func (e *emitter) goodbye(ctx context.Context, uin qqproto.UIN, to string) {
	for _, typ := range []string{presUnsubscribe, presUnsubscribed, presUnavailable} {
		if e.subscription(ctx, uin, to, typ, "", "") != nil {
			return
		}
	}
}

// presenceError sends a presence error from a buddy's JID or the domain.
func (e *emitter) presenceError(ctx context.Context, uin qqproto.UIN, to string, se stanza.Error) error {
	err := e.send(ctx, presence{From: e.jidOf(uin), To: to, Type: presError, Error: &se})
	if err == nil {
		e.m.stanzaError(se.Condition)
	}
	return err
}

func (e *emitter) probe(ctx context.Context, to string) error {
	return e.send(ctx, presence{From: e.dom, To: to, Type: presProbe})
}

// ---- messages ----

// qqMessage is a message from QQ as the user gets it.
type qqMessage struct {
	from    qqproto.UIN // 0: the domain
	id      string      // stable across re-sends, so clients can deduplicate
	typ     string      // chat or normal
	text    string
	delayed time.Time // when the gateway got it, if delivered later; else zero
}

func (e *emitter) message(ctx context.Context, to string, m qqMessage) error {
	out := message{From: e.jidOf(m.from), To: to, ID: m.id, Type: m.typ, Body: m.text}
	if m.id != "" {
		// XEP-0359: the same ids on every re-send, so that clients and
		// archives that do not read the id attribute deduplicate too.
		out.Extra = []any{stanza.OriginID{ID: m.id}, stanza.ID{ID: m.id, By: e.domJID}}
	}
	if !m.delayed.IsZero() {
		out.Extra = append(out.Extra, delay.Delay{From: e.domJID, Time: m.delayed.UTC()})
	}
	return e.send(ctx, out)
}

// receipt acknowledges a user's message (XEP-0184).
func (e *emitter) receipt(ctx context.Context, from, to, typ, id string) error {
	return e.send(ctx, message{From: from, To: to, Type: typ, Extra: []any{receiptReceived{ID: id}}})
}

// ---- iq ----

// result answers an iq with payload (nil: empty).
func (e *emitter) result(ctx context.Context, st xmppcomp.Stanza, payload any) error {
	return e.send(ctx, iq{From: st.To.String(), To: st.From.String(), ID: st.ID, Type: "result", Payload: payload})
}

// replyError answers any stanza with a stanza error. An error, or an iq
// result, is never answered (RFC 6120 8.3.1).
func (e *emitter) replyError(ctx context.Context, st xmppcomp.Stanza, se stanza.Error) error {
	if st.Type == "error" || (st.Name == "iq" && st.Type == "result") {
		return nil
	}
	s, err := e.sender()
	if err != nil {
		return err
	}
	e.m.stanzaOut()
	if err := s.ReplyError(ctx, st, se); err != nil {
		return err
	}
	e.m.stanzaError(se.Condition)
	return nil
}

// iqError answers an iq with a stanza error that carries an XEP-0050
// condition (bad-sessionid, …) beside the stanza one.
func (e *emitter) iqError(ctx context.Context, st xmppcomp.Stanza, se stanza.Error, app string) error {
	out := commandErrorXML{Type: string(se.Type), Cond: xmlName{XMLName: xml.Name{Space: stanza.NSError, Local: string(se.Condition)}},
		Text: se.Text[""], App: xmlName{XMLName: xml.Name{Space: nsCommands, Local: app}}}
	return e.send(ctx, iq{From: st.To.String(), To: st.From.String(), ID: st.ID, Type: "error", Payload: out})
}

// ---- the stanzas' shapes ----

// The structs below are written by encoding/xml in no namespace: xmppcomp
// puts them in the component stream's. Addresses are strings so that an
// empty one is left out.

type presence struct {
	XMLName xml.Name      `xml:"presence"`
	From    string        `xml:"from,attr,omitempty"`
	To      string        `xml:"to,attr,omitempty"`
	Type    string        `xml:"type,attr,omitempty"`
	Show    string        `xml:"show,omitempty"`
	Status  string        `xml:"status,omitempty"`
	Nick    *nick         `xml:"http://jabber.org/protocol/nick nick,omitempty"`
	Error   *stanza.Error `xml:"error,omitempty"`
	Extra   []any         `xml:",omitempty"`
}

// Presence types (RFC 6121); available is the absent type.
const (
	presAvailable    = ""
	presUnavailable  = "unavailable"
	presProbe        = "probe"
	presSubscribe    = "subscribe"
	presSubscribed   = "subscribed"
	presUnsubscribe  = "unsubscribe"
	presUnsubscribed = "unsubscribed"
	presError        = "error"
)

// nick is XEP-0172's user nickname.
type nick struct {
	Text string `xml:",chardata"`
}

func newNick(s string) *nick {
	if s == "" {
		return nil
	}
	return &nick{Text: s}
}

type message struct {
	XMLName xml.Name `xml:"message"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr,omitempty"`
	ID      string   `xml:"id,attr,omitempty"`
	Type    string   `xml:"type,attr,omitempty"`
	Body    string   `xml:"body,omitempty"`
	Extra   []any    `xml:",omitempty"`
}

type iq struct {
	XMLName xml.Name `xml:"iq"`
	From    string   `xml:"from,attr,omitempty"`
	To      string   `xml:"to,attr,omitempty"`
	ID      string   `xml:"id,attr"`
	Type    string   `xml:"type,attr"`
	Payload any      `xml:",omitempty"`
}

// commandErrorXML is an <error/> with an application condition, which
// mellium's stanza.Error cannot carry.
type commandErrorXML struct {
	XMLName xml.Name `xml:"error"`
	Type    string   `xml:"type,attr"`
	Cond    xmlName
	Text    string `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text,omitempty"`
	App     xmlName
}

// xmlName is an empty element named by its value.
type xmlName struct{ XMLName xml.Name }

// receiptReceived is XEP-0184's <received/>; mellium's receipts package
// only has the request.
type receiptReceived struct {
	XMLName xml.Name `xml:"urn:xmpp:receipts received"`
	ID      string   `xml:"id,attr"`
}

// vcardUpdate is XEP-0153's <x xmlns='vcard-temp:x:update'><photo>hash</photo></x>.
type vcardUpdate struct {
	XMLName xml.Name `xml:"vcard-temp:x:update x"`
	Photo   string   `xml:"photo"`
}

// pepEvent sends a PEP notification (XEP-0163) from a buddy's bare JID, as
// the buddy's server would: a headline, which clients do not show as chat.
func (e *emitter) pepEvent(ctx context.Context, uin qqproto.UIN, to string, ev any) error {
	return e.send(ctx, message{From: e.buddyJID(uin), To: to, Type: "headline", Extra: []any{ev}})
}
