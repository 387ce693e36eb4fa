package gateway

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/delay"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// TestMessageTokensAreWhatEncodingXMLWrites: the relay's message written
// from its own tokens reads as the stanza encoding/xml wrote before, for
// every shape the gateway sends.
func TestMessageTokensAreWhatEncodingXMLWrites(t *testing.T) {
	dom := jid.MustParse("qq.example.org")
	at := time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC)
	for name, m := range map[string]message{
		"chat with ids": {From: "10001@qq.example.org", To: "alice@example.org", ID: "qq-7", Type: "chat", Body: "hi <&> \"there\"\n\x01",
			Extra: []any{stanza.OriginID{ID: "qq-7"}, stanza.ID{ID: "qq-7", By: dom}}},
		"delayed": {From: "qq.example.org", To: "alice@example.org", ID: "qq-8", Type: "normal", Body: "notice",
			Extra: []any{stanza.OriginID{ID: "qq-8"}, stanza.ID{ID: "qq-8", By: dom}, delay.Delay{From: dom, Time: at}}},
		"receipt":  {From: "10001@qq.example.org/qq", To: "alice@example.org/pc", Type: "chat", Extra: []any{receiptReceived{ID: "m1"}}},
		"no extra": {To: "alice@example.org", Body: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := xml.Marshal(plainMessage(m))
			if err != nil {
				t.Fatal(err)
			}
			// xmppcomp read encoding/xml's bytes back and wrote the tokens.
			want := encodeTokens(t, xml.NewDecoder(bytes.NewReader(b)))
			if got := encodeTokens(t, m.TokenReader()); got != want {
				t.Errorf("tokens write\n%s\nencoding/xml wrote\n%s", got, want)
			}
		})
	}
}

// TestPresenceTokensAreWhatEncodingXMLWrites: the same for presences, the
// stanzas a login sends most.
func TestPresenceTokensAreWhatEncodingXMLWrites(t *testing.T) {
	caps := newEntityCaps("QQ")
	for name, p := range map[string]presence{
		"buddy": {From: "10001@qq.example.org/qq", To: "alice@example.org/pc", Show: "away", Status: "忙碌 <&>",
			Nick: newNick("Bob & co"), Extra: []any{caps.contact, vcardUpdate{Photo: "e5b57ce7"}}},
		"buddy, no photo hash": {From: "10001@qq.example.org/qq", To: "alice@example.org/pc", Extra: []any{caps.contact, vcardUpdate{}}},
		"domain":               {From: "qq.example.org/qq", To: "alice@example.org", Extra: []any{caps.gateway}},
		"unavailable":          {From: "10001@qq.example.org/qq", To: "alice@example.org", Type: presUnavailable, Status: "gone"},
		"subscribe":            {From: "10001@qq.example.org", To: "alice@example.org", Type: presSubscribe, Nick: newNick("Bob")},
		"error":                {From: "10001@qq.example.org", To: "alice@example.org", Type: presError, Error: &stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := xml.Marshal(plainPresence(p))
			if err != nil {
				t.Fatal(err)
			}
			want := encodeTokens(t, xml.NewDecoder(bytes.NewReader(b)))
			if got := encodeTokens(t, p.TokenReader()); got != want {
				t.Errorf("tokens write\n%s\nencoding/xml wrote\n%s", got, want)
			}
		})
	}
}

// encodeTokens is what a server reads from r's tokens written as
// xmppcomp does: elements with their namespaces and attributes, and text.
func encodeTokens(t *testing.T, r xml.TokenReader) string {
	t.Helper()
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(enc, r); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	d := xml.NewDecoder(&b)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out.String()
		}
		if err != nil {
			t.Fatalf("%v in %s", err, b.String())
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			fmt.Fprintf(&out, "<{%s}%s", tok.Name.Space, tok.Name.Local)
			for _, a := range tok.Attr {
				if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
					fmt.Fprintf(&out, " %s=%q", a.Name.Local, a.Value)
				}
			}
			out.WriteString(">")
		case xml.EndElement:
			out.WriteString("</>")
		case xml.CharData:
			fmt.Fprintf(&out, "%q", tok)
		}
	}
}
