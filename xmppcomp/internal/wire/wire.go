package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode"

	"mellium.im/xmpp/jid"
)

// Namespaces a stanza may be qualified by before it is put on a stream.
const (
	NSClient = "jabber:client"
	NSServer = "jabber:server"
	NSAccept = "jabber:component:accept"
	nsXML    = "http://www.w3.org/XML/1998/namespace"
)

// MaxDepth bounds element nesting so hostile input cannot exhaust memory via
// the namespace stack.
const MaxDepth = 256

// encBuf is an encoder writing into its own buffer. An encoder is clean
// again after a complete element, so a pool saves its 4 KiB bufio per stanza.
type encBuf struct {
	buf bytes.Buffer
	enc *xml.Encoder
}

var encPool = sync.Pool{New: func() any {
	e := &encBuf{}
	e.enc = xml.NewEncoder(&e.buf)
	return e
}}

// release returns e to the pool; only after a complete element, so that the
// encoder holds no open tags.
func (e *encBuf) release() {
	if e.buf.Cap() > 64<<10 {
		return // do not keep a huge stanza's buffer alive
	}
	e.buf.Reset()
	encPool.Put(e)
}

// ErrTooDeep reports an element nested deeper than MaxDepth. ReadElement
// has then read past the whole element, so the stream can go on; the
// Element it returns with it has only Start.
var ErrTooDeep = fmt.Errorf("elements nested deeper than %d", MaxDepth)

// ErrTooLarge reports an element of more than the bytes ReadElementLimit
// was given. As with ErrTooDeep, the element was read past whole and the
// Element returned with it has only Start.
var ErrTooLarge = errors.New("element too large")

// ErrNotStanza reports a Send of something other than message, presence or iq.
var ErrNotStanza = errors.New("not a stanza: want a message, presence or iq element")

// Element is one top-level element read whole from a stream.
type Element struct {
	Start      xml.StartElement // namespaces resolved, xmlns attributes removed
	FirstChild xml.Name         // name of the first child element, if any
	Raw        []byte           // the element re-encoded as a standalone XML document
}

// Attr returns the value of the attribute with the given local name and no
// namespace.
func Attr(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Lang returns the xml:lang attribute of start.
func Lang(start xml.StartElement) string {
	for _, a := range start.Attr {
		if a.Name.Local == "lang" && (a.Name.Space == nsXML || a.Name.Space == "xml") {
			return a.Value
		}
	}
	return ""
}

// IsStanzaName reports whether local is one of the three stanza names.
func IsStanzaName(local string) bool {
	return local == "message" || local == "presence" || local == "iq"
}

// ReadElement reads the next top-level element from r, skipping whitespace
// between elements (keepalives). r must resolve namespaces (xml.Decoder.Token,
// not RawToken), which is what a mellium session's TokenReader does; it reports
// the stream's end as io.EOF and stream errors as errors.
func ReadElement(r xml.TokenReader) (Element, error) {
	return ReadElementLimit(r, 0)
}

// ReadElementLimit is ReadElement for elements of at most maxBytes (0: no
// bound), counted as the text of their tokens, about what they took on
// the wire. A larger one is read past and skipped with ErrTooLarge, so the
// stream can go on; it is never held whole in memory, although one token
// of it (a long text) is, by the decoder.
func ReadElementLimit(r xml.TokenReader, maxBytes int) (Element, error) {
	for {
		tok, err := r.Token()
		if err != nil {
			return Element{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return Element{}, fmt.Errorf("text %q between stanzas", truncate(t))
			}
		case xml.StartElement:
			return readElement(r, t.Copy(), maxBytes)
		default:
			return Element{}, fmt.Errorf("unexpected %T between stanzas", tok)
		}
	}
}

func readElement(r xml.TokenReader, start xml.StartElement, maxBytes int) (Element, error) {
	eb := encPool.Get().(*encBuf)
	enc := eb.enc
	n := newNormalizer("")
	el := Element{}
	depth, size := 0, 0
	var first = true
	tok := xml.Token(start)
	for {
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && el.FirstChild.Local == "" {
				el.FirstChild = n.resolve(t)
			}
		case xml.EndElement:
			depth--
		}
		if depth > MaxDepth {
			// Hostile or broken, but one element: skip it, keep the stream.
			return Element{Start: el.Start}, skipElement(r, depth, ErrTooDeep)
		}
		out, err := n.token(tok)
		if err != nil {
			return Element{}, err
		}
		if first {
			s := out.(xml.StartElement)
			el.Start = s.Copy()
			el.Start.Name.Space = start.Name.Space
			first = false
		}
		if err := enc.EncodeToken(out); err != nil {
			return Element{}, err
		}
		if size += tokenSize(tok); maxBytes > 0 && size > maxBytes {
			// The encoder holds open tags now: it is not pooled again.
			return Element{Start: el.Start}, skipElement(r, depth, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxBytes))
		}
		if depth == 0 {
			break
		}
		tok, err = r.Token()
		if err == io.EOF {
			return Element{}, io.ErrUnexpectedEOF
		}
		if err != nil {
			return Element{}, err
		}
	}
	if err := enc.Flush(); err != nil {
		return Element{}, err
	}
	el.Raw = bytes.Clone(eb.buf.Bytes())
	eb.release()
	return el, nil
}

// tokenSize is about the bytes tok took in the document. Resolved
// namespaces are not counted: the document named each once, in an xmlns
// attribute, which is.
func tokenSize(tok xml.Token) int {
	switch t := tok.(type) {
	case xml.StartElement:
		n := len(t.Name.Local) + 2
		for _, a := range t.Attr {
			n += len(a.Name.Local) + len(a.Value) + 4
		}
		return n
	case xml.EndElement:
		return len(t.Name.Local) + 3
	case xml.CharData:
		return len(t)
	case xml.Comment:
		return len(t) + 7
	case xml.ProcInst:
		return len(t.Target) + len(t.Inst) + 4
	case xml.Directive:
		return len(t) + 3
	}
	return 0
}

// skipElement reads past the end of the element whose content r is in,
// depth levels down, and returns why (ErrTooDeep, ErrTooLarge), or the
// stream's error.
func skipElement(r xml.TokenReader, depth int, why error) error {
	for depth > 0 {
		tok, err := r.Token()
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return why
}

// EncodeStanza writes the first element of r to w as a complete stanza
// qualified by stanzaNS, reading the whole element before writing anything
// (so a failing reader never leaves half a stanza on the stream).
//
// The top element must be message, presence or iq in no namespace,
// jabber:client, jabber:server or stanzaNS. Children that were in the
// stanza's namespace inherit stanzaNS; payloads in their own namespace
// (delay, vcard-temp, a forwarded jabber:client message inside a foreign
// element, ...) keep it. r may yield raw tokens (prefixes unresolved, xmlns
// as attributes), resolved tokens, or a mix.
func EncodeStanza(w io.Writer, r xml.TokenReader, stanzaNS string) (xml.StartElement, error) {
	start, err := firstStart(r)
	if err != nil {
		return start, err
	}
	n := newNormalizer(stanzaNS)
	first, err := n.token(start)
	if err != nil {
		return start, err
	}
	top := first.(xml.StartElement)
	if !IsStanzaName(top.Name.Local) {
		return start, fmt.Errorf("%w: got <%s>", ErrNotStanza, top.Name.Local)
	}
	top = withID(top)
	// On an error the encoder may hold open tags: it is not pooled again.
	eb := encPool.Get().(*encBuf)
	if err := eb.enc.EncodeToken(top); err != nil {
		return start, err
	}
	if err := copyBody(r, eb.enc, n, top.Name.Local); err != nil {
		return start, err
	}
	if err := eb.enc.Flush(); err != nil {
		return start, err
	}
	_, err = w.Write(eb.buf.Bytes())
	eb.release()
	return top, err
}

// firstStart reads r up to its first start element, skipping white space,
// comments and processing instructions.
func firstStart(r xml.TokenReader) (xml.StartElement, error) {
	for empty := 0; ; {
		tok, err := r.Token()
		if tok == nil {
			if err == nil && empty < 100 {
				empty++
				continue
			}
			if err == nil || err == io.EOF {
				return xml.StartElement{}, errors.New("no element to send")
			}
			return xml.StartElement{}, err
		}
		if s, ok := tok.(xml.StartElement); ok {
			return s.Copy(), nil
		}
		if err != nil && err != io.EOF {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) == 0 {
				continue
			}
		case xml.ProcInst, xml.Comment:
			continue
		}
		return xml.StartElement{}, fmt.Errorf("want a start element, got %T", tok)
	}
}

// withID gives a stanza without an id a random one: an id lets errors be
// matched to what caused them, and an iq requires one.
func withID(top xml.StartElement) xml.StartElement {
	if Attr(top, "id") != "" {
		return top
	}
	attrs := top.Attr[:0]
	for _, a := range top.Attr {
		if !(a.Name.Space == "" && a.Name.Local == "id") {
			attrs = append(attrs, a)
		}
	}
	top.Attr = append(attrs, xml.Attr{Name: xml.Name{Local: "id"}, Value: rand.Text()})
	return top
}

// copyBody copies the rest of the stanza named name, up to and including
// its end element, from r to enc through n; comments are dropped.
func copyBody(r xml.TokenReader, enc *xml.Encoder, n *normalizer, name string) error {
	depth := 1
	for empty := 0; depth > 0; {
		tok, err := r.Token()
		if tok == nil {
			if err == nil && empty < 100 {
				empty++
				continue
			}
			if err == nil || err == io.EOF {
				return fmt.Errorf("<%s> not closed", name)
			}
			return err
		}
		empty = 0
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.ProcInst, xml.Directive:
			return fmt.Errorf("%T inside a stanza", tok)
		}
		if _, ok := tok.(xml.Comment); !ok {
			out, nerr := n.token(tok)
			if nerr != nil {
				return nerr
			}
			if werr := enc.EncodeToken(out); werr != nil {
				return werr
			}
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// normalizer rewrites tokens so that xml.Encoder emits correct, minimal
// namespace declarations: every element gets its resolved namespace, set
// only where it differs from its parent's, and xmlns attributes are dropped
// (the encoder declares what it needs).
type normalizer struct {
	stanzaNS string // non-empty when writing: the namespace the stanza must carry
	stack    []frame
}

type frame struct {
	ns       string            // resolved namespace of the element
	prefixes map[string]string // xmlns:p declarations on this element
	name     xml.Name          // the name as emitted, for the end tag
	inStanza bool              // the element is in the stanza's own namespace
}

func newNormalizer(stanzaNS string) *normalizer { return &normalizer{stanzaNS: stanzaNS} }

func isStanzaNS(s string) bool {
	return s == "" || s == NSClient || s == NSServer || s == NSAccept
}

func (n *normalizer) lookupPrefix(p string) (string, bool) {
	if p == "xml" {
		return nsXML, true
	}
	for i := len(n.stack) - 1; i >= 0; i-- {
		if u, ok := n.stack[i].prefixes[p]; ok {
			return u, true
		}
	}
	return "", false
}

// resolve returns the element's namespace as a URL, whatever form the token
// arrived in.
func (n *normalizer) resolve(t xml.StartElement) xml.Name {
	name := t.Name
	if name.Space != "" {
		if u, ok := n.lookupPrefixWith(name.Space, t.Attr); ok {
			name.Space = u
		}
		return name
	}
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" {
			name.Space = a.Value
			return name
		}
	}
	if len(n.stack) > 0 {
		name.Space = n.stack[len(n.stack)-1].ns
	}
	return name
}

func (n *normalizer) lookupPrefixWith(p string, attrs []xml.Attr) (string, bool) {
	for _, a := range attrs {
		if a.Name.Space == "xmlns" && a.Name.Local == p {
			return a.Value, true
		}
	}
	return n.lookupPrefix(p)
}

func (n *normalizer) token(tok xml.Token) (xml.Token, error) {
	switch t := tok.(type) {
	case xml.StartElement:
		if len(n.stack) >= MaxDepth {
			return nil, fmt.Errorf("elements nested deeper than %d", MaxDepth)
		}
		var prefixes map[string]string
		for _, a := range t.Attr {
			if a.Name.Space == "xmlns" {
				if prefixes == nil {
					prefixes = map[string]string{}
				}
				prefixes[a.Name.Local] = a.Value
			}
		}
		name := n.resolve(t)
		if !isName(name.Local) {
			return nil, fmt.Errorf("invalid element name %q", name.Local)
		}
		f := frame{ns: name.Space, prefixes: prefixes}
		out := xml.StartElement{Name: xml.Name{Local: name.Local}}
		top := len(n.stack) == 0
		var parent frame
		if !top {
			parent = n.stack[len(n.stack)-1]
		}
		switch {
		case top && n.stanzaNS != "":
			if !isStanzaNS(name.Space) {
				return nil, fmt.Errorf("%w: got <%s xmlns=%q>", ErrNotStanza, name.Local, name.Space)
			}
			f.ns, f.inStanza = n.stanzaNS, true
			out.Name.Space = n.stanzaNS
		case top:
			out.Name.Space = name.Space
			f.inStanza = true
		case parent.inStanza && (isStanzaNS(name.Space) || name.Space == parent.ns):
			// body, subject, show, error...: inherit the stanza namespace.
			f.ns, f.inStanza = parent.ns, true
		case name.Space == parent.ns:
			// inherit
		default:
			out.Name.Space = name.Space
		}
		f.name = out.Name
		out.Attr = make([]xml.Attr, 0, len(t.Attr))
		for _, a := range t.Attr {
			switch {
			case a.Name.Space == "xmlns", a.Name.Space == "" && a.Name.Local == "xmlns":
				continue
			case a.Name.Space != "":
				if u, ok := n.lookupPrefixWith(a.Name.Space, t.Attr); ok {
					a.Name.Space = u
				}
			}
			if !isName(a.Name.Local) {
				return nil, fmt.Errorf("invalid attribute name %q", a.Name.Local)
			}
			out.Attr = append(out.Attr, a)
		}
		n.stack = append(n.stack, f)
		return out, nil
	case xml.EndElement:
		if len(n.stack) == 0 {
			return nil, fmt.Errorf("unexpected end tag </%s>", t.Name.Local)
		}
		f := n.stack[len(n.stack)-1]
		if t.Name.Local != f.name.Local {
			return nil, fmt.Errorf("end tag </%s> closes <%s>", t.Name.Local, f.name.Local)
		}
		n.stack = n.stack[:len(n.stack)-1]
		return xml.EndElement{Name: f.name}, nil
	case xml.CharData:
		return t.Copy(), nil
	case xml.Comment:
		return t.Copy(), nil
	default:
		return nil, fmt.Errorf("unexpected %T inside an element", tok)
	}
}

// isName reports whether s is a valid XML local name (NCName), so that
// what is written can always be read back; encoding/xml's decoder is more
// lenient than the XML specification.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (r == '-' || r == '.' || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || r == 0xB7):
		default:
			return false
		}
	}
	return true
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// Stanza is xmppcomp.Stanza's fields, in its order, so that the component
// and the test client convert an Element the same way:
// xmppcomp.Stanza(wire.StanzaOf(el)). The conversion stops compiling if
// the two drift apart.
type Stanza struct {
	Name           string
	ID, Type, Lang string
	From, To       jid.JID
	Raw            []byte
}

// StanzaOf reads the stanza's attributes from el. An address that is not a
// valid JID stays zero; Raw still has its text.
func StanzaOf(el Element) Stanza {
	st := Stanza{
		Name: el.Start.Name.Local,
		ID:   Attr(el.Start, "id"),
		Type: Attr(el.Start, "type"),
		Lang: Lang(el.Start),
		Raw:  el.Raw,
	}
	st.From, _ = jid.Parse(Attr(el.Start, "from"))
	st.To, _ = jid.Parse(Attr(el.Start, "to"))
	return st
}
