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
// tokens themselves. A stanza whose Extra holds a value that is not an
// xmlstream.Marshaler goes through encoding/xml as before.

var (
	_ xmlstream.Marshaler = message{}
	_ xmlstream.Marshaler = presence{}
	_ xmlstream.Marshaler = vcardUpdate{}
)

// TokenReader implements xmlstream.Marshaler.
func (m message) TokenReader() xml.TokenReader {
	parts := make([]xml.TokenReader, 0, 1+len(m.Extra))
	parts = appendText(parts, xml.Name{Local: "body"}, m.Body)
	parts, ok := appendExtra(parts, m.Extra)
	if !ok {
		return marshalled(plainMessage(m))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(parts...),
		stanzaStart("message", "from", m.From, "to", m.To, "id", m.ID, "type", m.Type))
}

// plainMessage is message without its TokenReader, for encoding/xml.
type plainMessage message

// TokenReader implements xmlstream.Marshaler.
func (p presence) TokenReader() xml.TokenReader {
	if p.Error != nil {
		return marshalled(plainPresence(p))
	}
	parts := make([]xml.TokenReader, 0, 3+len(p.Extra))
	parts = appendText(parts, xml.Name{Local: "show"}, p.Show)
	parts = appendText(parts, xml.Name{Local: "status"}, p.Status)
	if p.Nick != nil {
		parts = append(parts, textElement(xml.Name{Space: nsNick, Local: "nick"}, p.Nick.Text))
	}
	parts, ok := appendExtra(parts, p.Extra)
	if !ok {
		return marshalled(plainPresence(p))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(parts...),
		stanzaStart("presence", "from", p.From, "to", p.To, "type", p.Type))
}

// plainPresence is presence without its TokenReader, for encoding/xml.
type plainPresence presence

// TokenReader implements xmlstream.Marshaler.
func (v vcardUpdate) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(textElement(xml.Name{Local: "photo"}, v.Photo),
		xml.StartElement{Name: xml.Name{Space: "vcard-temp:x:update", Local: "x"}})
}

// stanzaStart is a stanza's start tag with the attributes, given as name
// and value pairs, whose value is not empty.
func stanzaStart(local string, attrs ...string) xml.StartElement {
	start := xml.StartElement{Name: xml.Name{Local: local}, Attr: make([]xml.Attr, 0, len(attrs)/2)}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	return start
}

// textElement is <name>text</name>.
func textElement(name xml.Name, text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: name})
}

// appendText appends <name>text</name> to parts unless text is empty.
func appendText(parts []xml.TokenReader, name xml.Name, text string) []xml.TokenReader {
	if text == "" {
		return parts
	}
	return append(parts, textElement(name, text))
}

// appendExtra appends the extensions' tokens, or reports that one has none
// of its own.
func appendExtra(parts []xml.TokenReader, extra []any) ([]xml.TokenReader, bool) {
	for _, x := range extra {
		tm, ok := x.(xmlstream.Marshaler)
		if !ok {
			return parts, false
		}
		parts = append(parts, tm.TokenReader())
	}
	return parts, true
}

// marshalled is v through encoding/xml, read back as tokens.
func marshalled(v any) xml.TokenReader {
	b, err := xml.Marshal(v)
	if err != nil {
		return errReader{err}
	}
	return xml.NewDecoder(bytes.NewReader(b))
}

// nsNick is XEP-0172's namespace.
const nsNick = "http://jabber.org/protocol/nick"

// errReader is a TokenReader that fails with err.
type errReader struct{ err error }

func (r errReader) Token() (xml.Token, error) { return nil, r.err }
