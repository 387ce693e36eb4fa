package xmppcomp

// Reading no further than the stanza being handled. A reader takes from
// the kernel whatever has arrived, several stanzas of a burst in one read;
// those past the first wait in the process's memory, where a crash loses
// them although the server counts them delivered (XEP-0114 has no
// acknowledgement). With Config.Inline the Handler makes a stanza durable
// before the next is read; for that to hold, the next must still be in the
// kernel's socket buffer, where a restarted process cannot get it either,
// but the server's end of the connection learns that it was never read.
// frameScanner finds where each top-level element of the stream ends, so
// that the reader is handed one stanza at a time from what it peeked, and
// the socket gives up only what was handled (frame_unix.go).

// frameScanner follows the XML stream's nesting, byte by byte, as far as
// it needs to find the end of each element that is a child of the stream
// (a stanza), and of the stream's own start tag. It is not a parser: it
// relies on the server sending well-formed XML, which the decoder above
// checks anyway.
type frameScanner struct {
	depth int       // open elements
	state scanState // where in the markup the last byte was
	kind  tagKind   // the kind of the tag being read
	prev  byte      // the byte before, in a tag: '/' makes it empty
	quote byte      // the quote of the attribute value being read
	run   int       // bytes of a terminator seen so far ("-->", "]]>", "?>")
}

type scanState int

const (
	inText    scanState = iota // between tags
	tagOpened                  // right after '<'
	inTag                      // inside a start or end tag
	inQuote                    // inside an attribute value
	inComment                  // <!-- ... -->
	inCDATA                    // <![CDATA[ ... ]]>
	inPI                       // <? ... ?>
	inDecl                     // <!DOCTYPE ...> and the like
)

type tagKind int

const (
	startTag tagKind = iota
	endTag
)

// boundary scans b and returns how many of its bytes end at the end of
// the first stanza (or stream start tag) in it, whether one ended, and the
// scanner's state there; if none ends in b, all of b and the state after
// it.
func (s frameScanner) boundary(b []byte) (n int, found bool, next frameScanner) {
	for i, c := range b {
		if s.step(c) {
			return i + 1, true, s
		}
	}
	return len(b), false, s
}

// step takes one byte and reports whether it completed an element at the
// stream's level: the stream start tag, a stanza, or the stream's end.
func (s *frameScanner) step(c byte) bool {
	switch s.state {
	case inText:
		if c == '<' {
			s.state = tagOpened
		}
	case tagOpened:
		switch c {
		case '/':
			s.state, s.kind = inTag, endTag
		case '?':
			s.state, s.run = inPI, 0
		case '!':
			s.state, s.run = inDecl, 0
		default:
			s.state, s.kind = inTag, startTag
		}
		s.prev = c
	case inTag:
		return s.tagByte(c)
	case inQuote:
		if c == s.quote {
			s.state = inTag
		}
	case inDecl:
		// "<!--" and "<![CDATA[" are told apart by their first bytes.
		switch {
		case s.run == 0 && c == '-':
			s.state, s.run = inComment, 0
		case s.run == 0 && c == '[':
			s.state, s.run = inCDATA, 0
		case c == '>':
			s.state = inText
		}
	case inComment:
		s.run = terminator(s.run, c, "-->")
		if s.run == 3 {
			s.state = inText
		}
	case inCDATA:
		s.run = terminator(s.run, c, "]]>")
		if s.run == 3 {
			s.state = inText
		}
	case inPI:
		s.run = terminator(s.run, c, "?>")
		if s.run == 2 {
			s.state = inText
		}
	}
	return false
}

// tagByte is one byte inside a start or end tag.
func (s *frameScanner) tagByte(c byte) bool {
	switch c {
	case '"', '\'':
		s.state, s.quote = inQuote, c
	case '>':
		s.state = inText
		switch {
		case s.kind == endTag:
			s.depth--
			return s.depth <= 1
		case s.prev == '/': // <empty/>
			return s.depth <= 1
		default:
			s.depth++
			return s.depth <= 1
		}
	}
	s.prev = c
	return false
}

// terminator advances the count of the bytes of end seen in a row. The
// ends have one repeated first byte at most ("-->", "]]>"): "--->" still
// ends a comment.
func terminator(run int, c byte, end string) int {
	switch {
	case c == end[run]:
		return run + 1
	case run == 2 && c == end[0] && end[1] == end[0]:
		return 2
	case c == end[0]:
		return 1
	}
	return 0
}
