package gateway

import (
	"bytes"
	"encoding/xml"

	"mellium.im/xmlstream"
)

// The relay's stanza as tokens. xmppcomp takes an xmlstream.Marshaler's
// tokens as they are; any other value it marshals with encoding/xml and
// reads back with a decoder, a new encoder, buffer and decoder per stanza.
// A message is the stanza sent per relayed message, so it makes its
// tokens itself.

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

// errReader is a TokenReader that fails with err.
type errReader struct{ err error }

func (r errReader) Token() (xml.Token, error) { return nil, r.err }
