package gateway

import (
	"bytes"
	"encoding/xml"

	"mellium.im/xmlstream"
)

// The relay's stanza as tokens. xmppcomp takes an xmlstream.Marshaler's
// tokens as they are; any other value it marshals with encoding/xml and
// reads back with a decoder, a new encoder, buffer and decoder per stanza.
// A message is the stanza sent per relayed message, and presences are what
// a login sends most (one per buddy and resource), so both make their
// tokens themselves.

var _ xmlstream.Marshaler = message{}

// TokenReader implements xmlstream.Marshaler. A message whose Extra holds
// a value that is not an xmlstream.Marshaler goes through encoding/xml as
// before.
func (m message) TokenReader() xml.TokenReader {
	parts := make([]xml.TokenReader, 0, 1+len(m.Extra))
	if m.Body != "" {
		parts = append(parts, xmlstream.Wrap(xmlstream.Token(xml.CharData(m.Body)), xml.StartElement{Name: xml.Name{Local: "body"}}))
	}
	for _, x := range m.Extra {
		tm, ok := x.(xmlstream.Marshaler)
		if !ok {
			return m.marshalled()
		}
		parts = append(parts, tm.TokenReader())
	}
	start := xml.StartElement{Name: xml.Name{Local: "message"}, Attr: make([]xml.Attr, 0, 4)}
	for _, a := range [...]struct{ name, value string }{{"from", m.From}, {"to", m.To}, {"id", m.ID}, {"type", m.Type}} {
		if a.value != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a.name}, Value: a.value})
		}
	}
	return xmlstream.Wrap(xmlstream.MultiReader(parts...), start)
}

// marshalled is m through encoding/xml, read back as tokens.
func (m message) marshalled() xml.TokenReader {
	b, err := xml.Marshal(plainMessage(m))
	if err != nil {
		return errReader{err}
	}
	return xml.NewDecoder(bytes.NewReader(b))
}

// plainMessage is message without its TokenReader, for encoding/xml.
type plainMessage message

var _ xmlstream.Marshaler = presence{}

// TokenReader implements xmlstream.Marshaler, as message's does.
func (p presence) TokenReader() xml.TokenReader {
	if p.Error != nil {
		return p.marshalled()
	}
	parts := make([]xml.TokenReader, 0, 3+len(p.Extra))
	text := func(local, s string) {
		if s != "" {
			parts = append(parts, xmlstream.Wrap(xmlstream.Token(xml.CharData(s)), xml.StartElement{Name: xml.Name{Local: local}}))
		}
	}
	text("show", p.Show)
	text("status", p.Status)
	if p.Nick != nil {
		parts = append(parts, xmlstream.Wrap(xmlstream.Token(xml.CharData(p.Nick.Text)),
			xml.StartElement{Name: xml.Name{Space: nsNick, Local: "nick"}}))
	}
	for _, x := range p.Extra {
		tm, ok := x.(xmlstream.Marshaler)
		if !ok {
			return p.marshalled()
		}
		parts = append(parts, tm.TokenReader())
	}
	start := xml.StartElement{Name: xml.Name{Local: "presence"}, Attr: make([]xml.Attr, 0, 3)}
	for _, a := range [...]struct{ name, value string }{{"from", p.From}, {"to", p.To}, {"type", p.Type}} {
		if a.value != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a.name}, Value: a.value})
		}
	}
	return xmlstream.Wrap(xmlstream.MultiReader(parts...), start)
}

// marshalled is p through encoding/xml, read back as tokens.
func (p presence) marshalled() xml.TokenReader {
	b, err := xml.Marshal(plainPresence(p))
	if err != nil {
		return errReader{err}
	}
	return xml.NewDecoder(bytes.NewReader(b))
}

// plainPresence is presence without its TokenReader, for encoding/xml.
type plainPresence presence

var _ xmlstream.Marshaler = vcardUpdate{}

// TokenReader implements xmlstream.Marshaler.
func (v vcardUpdate) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(v.Photo)), xml.StartElement{Name: xml.Name{Local: "photo"}}),
		xml.StartElement{Name: xml.Name{Space: "vcard-temp:x:update", Local: "x"}})
}

// nsNick is XEP-0172's namespace.
const nsNick = "http://jabber.org/protocol/nick"

// errReader is a TokenReader that fails with err.
type errReader struct{ err error }

func (r errReader) Token() (xml.Token, error) { return nil, r.err }
