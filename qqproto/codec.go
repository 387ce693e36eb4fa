package qqproto

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed marks a line that is not KEY=value&… at all, or a field that
// does not hold what its key promises (a number that is not one, say).
var ErrMalformed = errors.New("malformed QQ line")

// Field is one KEY=value pair of a line. Raw is the value as it stands on
// the wire, still escaped: list values must be split on their raw commas
// before they are unescaped, so the decoded value is computed on demand.
type Field struct {
	Key string
	Raw string
}

// Fields is a request or response line: its fields in wire order.
type Fields []Field

// Parse reads one line of the protocol. It tolerates a trailing '&', a
// trailing newline, and empty values; a non-empty part without '=' or with
// an empty key is an error, since it cannot be told apart from damage.
func Parse(line string) (Fields, error) {
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("%w: empty line", ErrMalformed)
	}
	parts := strings.Split(line, "&")
	f := make(Fields, 0, len(parts))
	for _, p := range parts {
		if p == "" {
			continue // "…&RES=0&" and "&&" carry nothing
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: part %q has no KEY=", ErrMalformed, truncate(p, 40))
		}
		f = append(f, Field{Key: k, Raw: v})
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("%w: no fields", ErrMalformed)
	}
	return f, nil
}

// ParseForm reads a request body sent as application/x-www-form-urlencoded,
// where a '+' stands for a space; everything else is as in Parse.
func ParseForm(line string) (Fields, error) {
	f, err := Parse(line)
	if err != nil {
		return nil, err
	}
	for i := range f {
		f[i].Raw = strings.ReplaceAll(f[i].Raw, "+", "%20")
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Has reports whether the line has a field named key.
func (f Fields) Has(key string) bool {
	_, ok := f.raw(key)
	return ok
}

func (f Fields) raw(key string) (string, bool) {
	for _, fl := range f {
		if fl.Key == key {
			return fl.Raw, true
		}
	}
	return "", false
}

// Get returns the unescaped value of the first field named key, or "".
func (f Fields) Get(key string) string {
	r, _ := f.raw(key)
	return Unescape(r)
}

// Int returns the value of key as an integer. Spaces around the number are
// ignored (the seed's GetMsgEx pads values with one).
func (f Fields) Int(key string) (int64, error) {
	r, ok := f.raw(key)
	if !ok {
		return 0, fmt.Errorf("%w: no %s field", ErrMalformed, key)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(Unescape(r)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not a number", ErrMalformed, key, truncate(r, 20))
	}
	return n, nil
}

// List returns the items of a comma-separated list field, each unescaped.
// The trailing comma the protocol puts after the last item adds no item; an
// absent or empty field is an empty list.
func (f Fields) List(key string) []string {
	r, _ := f.raw(key)
	if r == "" {
		return nil
	}
	r = strings.TrimSuffix(r, ",")
	items := strings.Split(r, ",")
	for i, it := range items {
		items[i] = Unescape(it)
	}
	return items
}

// Ints returns a list field whose items are numbers.
func (f Fields) Ints(key string) ([]int64, error) {
	items := f.List(key)
	out := make([]int64, len(items))
	for i, it := range items {
		n, err := strconv.ParseInt(strings.TrimSpace(it), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: %s item %d %q is not a number", ErrMalformed, key, i, truncate(it, 20))
		}
		out[i] = n
	}
	return out, nil
}

// Set replaces the value of key (escaping it) or appends the field.
func (f *Fields) Set(key, value string) {
	f.setRaw(key, Escape(value))
}

// SetInt is Set for a number.
func (f *Fields) SetInt(key string, n int64) {
	f.setRaw(key, strconv.FormatInt(n, 10))
}

// SetList sets a list field: every item escaped, each followed by a comma,
// as the protocol writes lists.
func (f *Fields) SetList(key string, items []string) {
	var b strings.Builder
	for _, it := range items {
		b.WriteString(Escape(it))
		b.WriteByte(',')
	}
	f.setRaw(key, b.String())
}

func (f *Fields) setRaw(key, raw string) {
	for i := range *f {
		if (*f)[i].Key == key {
			(*f)[i].Raw = raw
			return
		}
	}
	*f = append(*f, Field{Key: key, Raw: raw})
}

// String encodes the line as it goes on the wire.
func (f Fields) String() string {
	var b strings.Builder
	for i, fl := range f {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(fl.Key)
		b.WriteByte('=')
		b.WriteString(fl.Raw)
	}
	return b.String()
}

const hexDigits = "0123456789abcdef"

// mustEscape lists the bytes that would change the meaning of a line if
// left raw: the separators, the escape character itself, and line breaks.
func mustEscape(c byte) bool {
	switch c {
	case '%', '&', ',', '=', '\r', '\n':
		return true
	}
	return false
}

// Escape makes any text safe as one value or one list item: % & , = CR LF
// become %25 %26 %2c %3d %0d %0a; everything else, UTF-8 included, stays raw.
func Escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if mustEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEscape(c) {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// Unescape turns every %XX into its byte; a '%' not followed by two hex
// digits is kept as it is.
func Unescape(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, c)
	}
	return string(b)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
