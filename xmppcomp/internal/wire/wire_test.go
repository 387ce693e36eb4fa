package wire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/delay"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

func encode(t *testing.T, r xml.TokenReader) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := EncodeStanza(&buf, r, NSAccept); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func fromString(s string) xml.TokenReader { return xml.NewDecoder(strings.NewReader(s)) }

type rawReader struct{ *xml.Decoder }

func (r rawReader) Token() (xml.Token, error) { return r.RawToken() }

// What goes out must mean the same as what came in, with the stanza in the
// component namespace. Checked by decoding the output with namespaces.
func TestEncodeStanzaNamespaces(t *testing.T) {
	type msg struct {
		XMLName xml.Name `xml:"message"`
		To      string   `xml:"to,attr"`
		Body    string   `xml:"body"`
	}
	type clientMsg struct {
		XMLName xml.Name `xml:"jabber:client message"`
		To      string   `xml:"to,attr"`
		Body    string   `xml:"jabber:client body"`
	}
	plain, _ := xml.Marshal(msg{To: "a@b", Body: "hi"})
	client, _ := xml.Marshal(clientMsg{To: "a@b", Body: "hi"})
	withDelay := `<message to='a@b'><body>hi</body><delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'/></message>`
	prefixed := `<cl:message xmlns:cl='jabber:client' to='a@b'><cl:body>hi</cl:body><d:delay xmlns:d='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'/></cl:message>`
	forwarded := `<message to='a@b'><body>hi</body><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='x@y'><body>inner</body></message></forwarded></message>`

	for name, r := range map[string]xml.TokenReader{
		"struct":             fromString(string(plain)),
		"struct raw":         rawReader{xml.NewDecoder(bytes.NewReader(plain))},
		"jabber:client":      fromString(string(client)),
		"jabber:client raw":  rawReader{xml.NewDecoder(bytes.NewReader(client))},
		"delay":              fromString(withDelay),
		"delay raw":          rawReader{xml.NewDecoder(strings.NewReader(withDelay))},
		"prefixes":           fromString(prefixed),
		"prefixes raw":       rawReader{xml.NewDecoder(strings.NewReader(prefixed))},
		"mellium message":    stanza.Message{To: jid.MustParse("a@b")}.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData("hi")), xml.StartElement{Name: xml.Name{Local: "body"}})),
		"forwarded":          fromString(forwarded),
		"forwarded raw":      rawReader{xml.NewDecoder(strings.NewReader(forwarded))},
		"leading whitespace": fromString("\n  " + string(plain)),
	} {
		t.Run(name, func(t *testing.T) {
			out := encode(t, r)
			var got struct {
				XMLName xml.Name
				To      string `xml:"to,attr"`
				ID      string `xml:"id,attr"`
				Body    string `xml:"jabber:component:accept body"`
				Delay   *struct {
					Stamp string `xml:"stamp,attr"`
				} `xml:"urn:xmpp:delay delay"`
			}
			if err := xml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			if got.XMLName != (xml.Name{Space: NSAccept, Local: "message"}) || got.To != "a@b" || got.Body != "hi" || got.ID == "" {
				t.Errorf("got %s", out)
			}
			if strings.Contains(name, "delay") || strings.Contains(name, "prefixes") {
				if got.Delay == nil || got.Delay.Stamp != "2002-09-10T23:08:25Z" {
					t.Errorf("delay lost: %s", out)
				}
			}
			if strings.HasPrefix(name, "forwarded") {
				// The forwarded message keeps jabber:client.
				var f struct {
					Fwd struct {
						Inner struct {
							XMLName xml.Name
							Body    string `xml:"jabber:client body"`
						} `xml:"jabber:client message"`
					} `xml:"urn:xmpp:forward:0 forwarded"`
				}
				_ = xml.Unmarshal([]byte(out), &f)
				if f.Fwd.Inner.XMLName.Space != NSClient || f.Fwd.Inner.Body != "inner" {
					t.Errorf("forwarded message changed: %s", out)
				}
			}
		})
	}
}

func TestEncodeStanzaKeepsID(t *testing.T) {
	out := encode(t, fromString(`<iq type='get' id='abc' to='x'><ping xmlns='urn:xmpp:ping'/></iq>`))
	if strings.Count(out, "id=") != 1 || !strings.Contains(out, `id="abc"`) {
		t.Errorf("got %s", out)
	}
	out = encode(t, stanza.Message{ID: "", To: jid.MustParse("a@b")}.Wrap(delay.Delay{}.TokenReader()))
	if strings.Count(out, `id="`) != 1 {
		t.Errorf("want exactly one generated id: %s", out)
	}
}

func TestEncodeStanzaRejects(t *testing.T) {
	for name, in := range map[string]xml.TokenReader{
		"not a stanza":    fromString(`<handshake>x</handshake>`),
		"stream element":  fromString(`<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>`),
		"foreign ns":      fromString(`<message xmlns='urn:other'/>`),
		"empty":           fromString(``),
		"text":            fromString(`hello`),
		"unclosed":        xmlstream.MultiReader(xmlstream.Token(xml.StartElement{Name: xml.Name{Local: "message"}})),
		"mismatched":      xmlstream.MultiReader(xmlstream.Token(xml.StartElement{Name: xml.Name{Local: "message"}}), xmlstream.Token(xml.StartElement{Name: xml.Name{Local: "body"}}), xmlstream.Token(xml.EndElement{Name: xml.Name{Local: "message"}})),
		"truncated input": fromString(`<message><body>hi`),
		"failing reader":  xmlstream.MultiReader(xmlstream.Token(xml.StartElement{Name: xml.Name{Local: "message"}}), errReader{}),
		"deep":            fromString(strings.Repeat("<message>", MaxDepth+1)),
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := EncodeStanza(&buf, in, NSAccept)
			if err == nil {
				t.Fatalf("no error; wrote %s", buf.String())
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q despite the error %v", buf.String(), err)
			}
		})
	}
	var buf bytes.Buffer
	_, err := EncodeStanza(&buf, fromString(`<presence/>`), NSAccept)
	if err != nil || buf.String() == "" {
		t.Errorf("presence: %v", err)
	}
	_, err = EncodeStanza(&buf, fromString(`<foo/>`), NSAccept)
	if !errors.Is(err, ErrNotStanza) {
		t.Errorf("foo: %v, want ErrNotStanza", err)
	}
}

type errReader struct{}

func (errReader) Token() (xml.Token, error) { return nil, errors.New("boom") }

func TestReadElement(t *testing.T) {
	in := `  <message xmlns='jabber:component:accept' from='a@b/c' to='1@comp' type='chat' id='x' xml:lang='zh'>` +
		`<body>你好 &amp; &lt;hi&gt;</body><x:delay xmlns:x='urn:xmpp:delay' stamp='s'/></message>` +
		"\n<iq xmlns='jabber:component:accept' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"
	d := xml.NewDecoder(strings.NewReader(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>` + in))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	el, err := ReadElement(d)
	if err != nil {
		t.Fatal(err)
	}
	if el.Start.Name != (xml.Name{Space: NSAccept, Local: "message"}) || Attr(el.Start, "from") != "a@b/c" || Lang(el.Start) != "zh" {
		t.Errorf("start: %+v", el.Start)
	}
	if el.FirstChild != (xml.Name{Space: NSAccept, Local: "body"}) {
		t.Errorf("first child %v", el.FirstChild)
	}
	var m struct {
		Body  string `xml:"jabber:component:accept body"`
		Delay struct {
			Stamp string `xml:"stamp,attr"`
		} `xml:"urn:xmpp:delay delay"`
		Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	}
	if err := xml.Unmarshal(el.Raw, &m); err != nil {
		t.Fatalf("%v: %s", err, el.Raw)
	}
	if m.Body != "你好 & <hi>" || m.Lang != "zh" || m.Delay.Stamp != "s" {
		t.Errorf("raw %s decoded as %+v", el.Raw, m)
	}
	if bytes.Count(el.Raw, []byte("jabber:component:accept")) != 1 {
		t.Errorf("children should inherit the namespace: %s", el.Raw)
	}
	el, err = ReadElement(d)
	if err != nil || el.FirstChild != (xml.Name{Space: "urn:xmpp:ping", Local: "ping"}) {
		t.Fatalf("iq: %v %+v", err, el)
	}
	// The stream is cut without </stream:stream>: an error, never a stanza.
	if _, err := ReadElement(d); err == nil {
		t.Error("no error at the end of input")
	}
	// A stanza cut in the middle is an error too.
	d = xml.NewDecoder(strings.NewReader(`<message><body>hi`))
	if _, err := ReadElement(d); err == nil {
		t.Error("no error for a truncated stanza")
	}
	if _, err := ReadElement(xml.NewDecoder(strings.NewReader(``))); !errors.Is(err, io.EOF) {
		t.Errorf("empty input: %v, want io.EOF", err)
	}
}

// Whatever the server sends, reading never panics, and what it returns
// reads back to itself. Read with a bound it does not fit, it is skipped
// whole with ErrTooLarge, and the element after it reads as usual.
func FuzzReadElement(f *testing.F) {
	for _, s := range []string{
		`<message xmlns='jabber:component:accept' to='a@b'><body>x</body></message>`,
		`<iq xmlns:a='urn:a' a:x='1' type='get'><a:q/></iq>`,
		`<presence xml:lang='en'><status>&lt;</status></presence>`,
		`<message><body>`, `</x>`, `<a xmlns:p='u'><p:b p:c='d'/></a>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		el, err := ReadElement(xml.NewDecoder(strings.NewReader(s)))
		if err != nil {
			return
		}
		again, err := ReadElement(xml.NewDecoder(bytes.NewReader(el.Raw)))
		if err != nil {
			t.Fatalf("Raw %q does not read back: %v", el.Raw, err)
		}
		if !bytes.Equal(again.Raw, el.Raw) {
			t.Fatalf("Raw changed on re-reading:\n%s\n%s", el.Raw, again.Raw)
		}
		checkLimit(t, el)
		for _, r := range []xml.TokenReader{xml.NewDecoder(bytes.NewReader(el.Raw)), rawReader{xml.NewDecoder(strings.NewReader(s))}} {
			var buf bytes.Buffer
			if _, err := EncodeStanza(&buf, r, NSAccept); err != nil {
				continue
			}
			out, err := ReadElement(xml.NewDecoder(&buf))
			if err != nil || out.Start.Name.Space != NSAccept {
				t.Fatalf("EncodeStanza wrote what does not read back as a stanza (%v): %s", err, buf.String())
			}
		}
	})
}

// checkLimit reads el, in a stream and followed by another element, with
// bounds under and over its size.
func checkLimit(t *testing.T, el Element) {
	for _, limit := range []int{1, len(el.Raw) / 2, 2 * len(el.Raw)} {
		d := xml.NewDecoder(strings.NewReader("<s>" + string(el.Raw) + "<next/></s>"))
		if _, err := d.Token(); err != nil {
			t.Fatal(err)
		}
		got, err := ReadElementLimit(d, limit)
		switch {
		case errors.Is(err, ErrTooLarge):
			if limit > len(el.Raw) || got.Start.Name.Local != el.Start.Name.Local {
				t.Fatalf("limit %d: too large with start %v; the element has %d bytes: %s", limit, got.Start.Name, len(el.Raw), el.Raw)
			}
		case err != nil:
			t.Fatalf("limit %d: %v reading %s", limit, err, el.Raw)
		case !bytes.Equal(got.Raw, el.Raw):
			t.Fatalf("limit %d: read %s, want %s", limit, got.Raw, el.Raw)
		}
		if next, err := ReadElement(d); err != nil || next.Start.Name.Local != "next" {
			t.Fatalf("limit %d: after %s: %v, %v", limit, el.Raw, next.Start.Name, err)
		}
	}
}

// An element nested past MaxDepth is skipped whole, with ErrTooDeep and its
// start element, and the next element reads as usual: one hostile stanza
// must not end the stream.
func TestReadElementSkipsTooDeep(t *testing.T) {
	deep := strings.Repeat("<x>", MaxDepth+44) + strings.Repeat("</x>", MaxDepth+44)
	in := `<s xmlns="jabber:component:accept"><message id="deep" from="a@b/c" to="d@e">` + deep +
		`</message><message id="next" to="d@e"><body>hi</body></message></s>`
	d := xml.NewDecoder(strings.NewReader(in))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	el, err := ReadElement(d)
	if !errors.Is(err, ErrTooDeep) || Attr(el.Start, "id") != "deep" || Attr(el.Start, "from") != "a@b/c" {
		t.Fatalf("deep element: %v, start %+v; want ErrTooDeep with the start", err, el.Start)
	}
	el, err = ReadElement(d)
	if err != nil || Attr(el.Start, "id") != "next" || !strings.Contains(string(el.Raw), "<body>hi</body>") {
		t.Fatalf("element after the deep one: %v, %s", err, el.Raw)
	}
}

// An element over ReadElementLimit's bound is skipped whole, with
// ErrTooLarge and its start element, and the next element reads as usual;
// one just under the bound reads whole.
func TestReadElementLimitSkipsTooLarge(t *testing.T) {
	const limit = 4096
	big := strings.Repeat("<b>"+strings.Repeat("y", 100)+"</b>", 50) // 5 KB in 50 elements
	fits := strings.Repeat("z", limit-200)
	in := `<s xmlns="jabber:component:accept"><message id="big" from="a@b/c" to="d@e">` + big +
		`</message><message id="fits" to="d@e"><body>` + fits + `</body></message>` +
		`<message id="huge" from="a@b/c"><body>` + strings.Repeat("x", 3*limit) + `</body></message>` +
		`<message id="next" to="d@e"><body>hi</body></message></s>`
	d := xml.NewDecoder(strings.NewReader(in))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id  string
		err error
	}{{"big", ErrTooLarge}, {"fits", nil}, {"huge", ErrTooLarge}, {"next", nil}} {
		el, err := ReadElementLimit(d, limit)
		if !errors.Is(err, want.err) || (err == nil) != (want.err == nil) || Attr(el.Start, "id") != want.id {
			t.Fatalf("element %s: %v, start %+v; want error %v", want.id, err, el.Start, want.err)
		}
		if err == nil && !strings.Contains(string(el.Raw), "</message>") {
			t.Errorf("element %s read in part: %d bytes", want.id, len(el.Raw))
		}
	}
}
