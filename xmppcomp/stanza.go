package xmppcomp

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"

	"mellium.im/xmpp/jid"

	"qqxmpp/xmppcomp/internal/wire"
)

// Stanza is one inbound stanza, read whole.
type Stanza struct {
	Name           string // "message", "presence" or "iq"
	ID, Type, Lang string
	From, To       jid.JID // zero if the attribute was absent or not a valid JID
	// Raw is the whole stanza as XML (start element .. end element),
	// re-encoded, in the namespace of the stream it came from
	// (jabber:component:accept on a component stream).
	Raw []byte
}

// Decode unmarshals the stanza into v with encoding/xml, as xml.Unmarshal(Raw, v).
func (s Stanza) Decode(v any) error {
	if err := xml.Unmarshal(s.Raw, v); err != nil {
		return fmt.Errorf("decode <%s id=%q>: %w", s.Name, s.ID, err)
	}
	return nil
}

// TokenReader returns the stanza as tokens, for forwarding or for mellium's
// decoders.
func (s Stanza) TokenReader() xml.TokenReader {
	return xml.NewDecoder(bytes.NewReader(s.Raw))
}

// String returns the raw XML, for logs and test failures.
func (s Stanza) String() string { return string(s.Raw) }

// ParseStanza reads one stanza from its XML text. Handy in tests of code
// that takes a Stanza; the Component itself builds them from the stream.
func ParseStanza(raw []byte) (Stanza, error) {
	el, err := wire.ReadElement(xml.NewDecoder(bytes.NewReader(raw)))
	if err != nil {
		return Stanza{}, fmt.Errorf("parse stanza: %w", err)
	}
	if !wire.IsStanzaName(el.Start.Name.Local) {
		return Stanza{}, fmt.Errorf("parse stanza: <%s> is not message, presence or iq", el.Start.Name.Local)
	}
	return fromElement(el), nil
}

func fromElement(el wire.Element) Stanza { return Stanza(wire.StanzaOf(el)) }

// Handler receives inbound stanzas.
type Handler interface {
	HandleStanza(ctx context.Context, st Stanza)
}

// BatchHandler is a Handler that also takes several stanzas at once. With
// Config.Inline, the component hands it the stanzas that arrived together
// (at most MaxBatch, in order) in one call, and takes them out of the
// socket only after it returned: a Handler that makes stanzas durable can
// do so for all of them in one transaction. A stanza the component answers
// itself (its own pings and their results) ends a batch first, so that
// nothing is answered before the stanzas that came ahead of it.
type BatchHandler interface {
	Handler
	HandleStanzas(ctx context.Context, sts []Stanza)
}

// MaxBatch bounds the stanzas of one HandleStanzas call.
const MaxBatch = 64

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, st Stanza)

// HandleStanza calls f.
func (f HandlerFunc) HandleStanza(ctx context.Context, st Stanza) { f(ctx, st) }
