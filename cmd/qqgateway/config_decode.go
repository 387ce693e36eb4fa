package main

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// A key is one key of gateway.toml: a field of one of fileConfig's tables.
type key struct {
	table, name string
	tag         reflect.StructTag
	v           reflect.Value // the field, addressable
}

func (k key) String() string { return toml.Key{k.table, k.name}.String() }

// keysOf is every key of c, in the order of the struct, with c's fields.
func keysOf(c *fileConfig) []key {
	var keys []key
	cv := reflect.ValueOf(c).Elem()
	for i := range cv.NumField() {
		table, ok := cv.Type().Field(i).Tag.Lookup("toml")
		if !ok {
			continue
		}
		tv := cv.Field(i)
		for j := range tv.NumField() {
			f := tv.Type().Field(j)
			keys = append(keys, key{table: table, name: f.Tag.Get("toml"), tag: f.Tag, v: tv.Field(j)})
		}
	}
	return keys
}

// value is the field as the interfaces of its type see it.
func (k key) value() any { return k.v.Addr().Interface() }

// want is what a good value of k is, for errors.
func (k key) want() string {
	if w, ok := k.value().(interface {
		want(reflect.StructTag) string
	}); ok && k.tag.Get("want") == "" {
		return w.want(k.tag)
	}
	return k.tag.Get("want")
}

// check is the test of a value that needs the field's tags (a range, a
// list), after the type took the value.
func (k key) check() error {
	if c, ok := k.value().(interface{ check(reflect.StructTag) error }); ok {
		return c.check(k.tag)
	}
	return nil
}

// setDefault gives k the value of its default tag; it reports whether
// there is one. A default its type refuses is a mistake in fileConfig,
// which every test that parses a file finds.
func (k key) setDefault() bool {
	def, ok := k.tag.Lookup("default")
	if !ok {
		return false
	}
	var v any = def
	switch k.v.Kind() {
	case reflect.Int:
		n, err := strconv.ParseInt(def, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("fileConfig: default of %s: %v", k, err))
		}
		v = n
	case reflect.Slice: // a list: its items, separated by spaces
		items := []any{}
		for _, f := range strings.Fields(def) {
			items = append(items, f)
		}
		v = items
	}
	if err := k.value().(toml.Unmarshaler).UnmarshalTOML(v); err != nil {
		panic(fmt.Sprintf("fileConfig: default of %s: %v", k, err))
	}
	return true
}

// decoder decodes the keys of one file into the fields of a fileConfig,
// one value at a time, so that every problem is reported and not only the
// first. Keys are matched exactly, by walking MetaData.Keys: the toml
// package matches struct fields ignoring case (a "Poll_Idle" would set
// poll_idle and leave Undecoded), and decoding a table into a map marks
// every key in it decoded, unknown ones too.
type decoder struct {
	file    string
	md      toml.MetaData
	top     map[string]toml.Primitive
	tables  map[string]map[string]toml.Primitive // by dotted path, decoded so far; nil: not a table
	keys    []key
	defined map[string]bool // keys the file sets, dotted
	done    map[string]bool // keys decoded or reported, with all below them
	errs    configErrors
}

// newDecoder gives every key its default.
func newDecoder(file string, md toml.MetaData, top map[string]toml.Primitive, keys []key) *decoder {
	for _, k := range keys {
		k.setDefault()
	}
	return &decoder{file: file, md: md, top: top, keys: keys, tables: map[string]map[string]toml.Primitive{},
		defined: map[string]bool{}, done: map[string]bool{}}
}

// decodeKeys decodes every known key into its field and reports every
// unknown one, in file order, up to maxConfigErrors problems: finding the
// line of each costs the toml package a pass over the whole file.
func (d *decoder) decodeKeys() {
	for _, path := range d.md.Keys() {
		if len(d.errs) >= maxConfigErrors {
			return
		}
		if d.covered(path) {
			continue
		}
		if !d.isTable(path[0]) {
			d.fail(path[:1], "unknown key %q%s", path[:1].String(), suggest(path[:1]))
			continue
		}
		tbl, ok := d.table(path[0])
		if !ok || len(path) == 1 {
			continue
		}
		k, ok := d.find(path[0], path[1])
		if !ok {
			d.fail(path[:2], "unknown key %q%s", path[:2].String(), suggest(path[:2]))
			continue
		}
		d.decode(k, tbl[path[1]])
	}
}

// decode decodes p, the value of k in the file, into k's field.
func (d *decoder) decode(k key, p toml.Primitive) {
	path := toml.Key{k.table, k.name}
	d.defined[path.String()] = true
	d.done[path.String()] = true
	err := d.md.PrimitiveDecode(p, k.value())
	var perr toml.ParseError
	if errors.As(err, &perr) {
		// What the type said, at the line the toml package knows.
		d.failAt(perr.Position.Line, path, "key %q: want %s; %s", path.String(), k.want(), perr.Message)
		return
	}
	if err == nil {
		err = k.check()
	}
	if err != nil {
		d.fail(path, "key %q: want %s; %v", path.String(), k.want(), err)
	}
}

// reportMissing reports the keys without a default that the file lacks.
func (d *decoder) reportMissing() {
	for _, k := range d.keys {
		if _, hasDefault := k.tag.Lookup("default"); !hasDefault && !d.defined[k.String()] {
			d.fail(toml.Key{k.table, k.name}, "key %q is missing: want %s", k.String(), k.want())
		}
	}
}

func (d *decoder) isTable(name string) bool {
	return slices.ContainsFunc(d.keys, func(k key) bool { return k.table == name })
}

func (d *decoder) find(table, name string) (key, bool) {
	i := slices.IndexFunc(d.keys, func(k key) bool { return k.table == table && k.name == name })
	if i < 0 {
		return key{}, false
	}
	return d.keys[i], true
}

// table is the known table name of the file, decoded into its keys; false,
// reported, when the file gives name something else than a table.
func (d *decoder) table(name string) (map[string]toml.Primitive, bool) {
	// "" is a table implied by a dotted key, like qq in qq.timeout = "5s".
	if typ := d.md.Type(name); typ != "Hash" && typ != "" {
		d.fail(toml.Key{name}, "key %q: want the table [%s]; got %s", name, name, tomlTypeName(typ))
		return nil, false
	}
	return d.keysAt(toml.Key{name}), true
}

// keysAt is the value at path decoded into its keys, once: nil if it is
// not a table.
func (d *decoder) keysAt(path toml.Key) map[string]toml.Primitive {
	if tbl, ok := d.tables[path.String()]; ok {
		return tbl
	}
	var tbl map[string]toml.Primitive
	if p, ok := d.valueAt(path); !ok || d.md.PrimitiveDecode(p, &tbl) != nil {
		tbl = nil
	}
	d.tables[path.String()] = tbl
	return tbl
}

// valueAt is the undecoded value at path.
func (d *decoder) valueAt(path toml.Key) (toml.Primitive, bool) {
	if len(path) == 1 {
		p, ok := d.top[path[0]]
		return p, ok
	}
	p, ok := d.keysAt(path[:len(path)-1])[path[len(path)-1]]
	return p, ok
}

// covered: path or one above it was decoded or reported already.
func (d *decoder) covered(path toml.Key) bool {
	for i := 1; i <= len(path); i++ {
		if d.done[path[:i].String()] {
			return true
		}
	}
	return false
}

// want is what the known key path wants.
func (d *decoder) want(path toml.Key) string {
	k, _ := d.find(path[0], path[1])
	return k.want()
}

// failed: a problem with path was reported already.
func (d *decoder) failed(path toml.Key) bool {
	return slices.ContainsFunc(d.errs, func(e *configError) bool { return e.Key == path.String() })
}

// fail reports a problem with path, at the line where the file defines it
// (none for a missing key).
func (d *decoder) fail(path toml.Key, format string, args ...any) {
	d.failAt(0, path, format, args...)
}

// failAt is fail where the line may be known already.
func (d *decoder) failAt(line int, path toml.Key, format string, args ...any) {
	if line == 0 {
		line = d.line(path)
	}
	d.done[path.String()] = true
	d.errs = append(d.errs, &configError{File: d.file, Line: line, Key: path.String(), Msg: fmt.Sprintf(format, args...)})
}

// line is where the file defines path, or 0; for a table implied by a
// dotted key (qq.timeout in qq.timeout.x = 1), which has no line of its
// own, that of the first key below it.
func (d *decoder) line(path toml.Key) int {
	if n := d.ownLine(path); n > 0 {
		return n
	}
	for _, k := range d.md.Keys() {
		if len(k) > len(path) && slices.Equal(k[:len(path)], path) {
			return d.ownLine(k)
		}
	}
	return 0
}

// ownLine is the line of path's own definition. MetaData knows every
// key's position but tells it only in the ParseError of a value that
// failed to decode: so the value is decoded into lineProbe, which always
// fails.
func (d *decoder) ownLine(path toml.Key) int {
	p, ok := d.valueAt(path)
	var perr toml.ParseError
	if ok && errors.As(d.md.PrimitiveDecode(p, &lineProbe{}), &perr) {
		return perr.Position.Line
	}
	return 0
}

type lineProbe struct{}

func (*lineProbe) UnmarshalTOML(any) error { return errors.New("line probe") }

// tomlTypeName turns MetaData.Type into words.
func tomlTypeName(typ string) string {
	switch typ {
	case "ArrayHash":
		return "an array of tables"
	case "Array":
		return "an array"
	case "String":
		return "a string"
	case "Integer", "Float":
		return "a number"
	case "Bool":
		return "a boolean"
	}
	return "a " + strings.ToLower(typ)
}

// suggest is " (did you mean ...?)" for an unknown key (a table, or a key
// in one) that is close to a known one, or "".
func suggest(path toml.Key) string {
	keys := keysOf(&fileConfig{})
	var tables, names []string
	for _, k := range keys {
		if len(tables) == 0 || tables[len(tables)-1] != k.table {
			tables = append(tables, k.table)
		}
		if len(path) == 2 && k.table == path[0] {
			names = append(names, k.name)
		}
	}
	if names != nil {
		if n := closest(path[1], names); n != "" {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	} else if t := closest(path[0], tables); t != "" {
		return fmt.Sprintf(" (did you mean [%s]?)", t)
	}
	// A key written in the wrong table, or outside any.
	for _, k := range keys {
		if strings.EqualFold(k.name, path[len(path)-1]) {
			return fmt.Sprintf(" (did you mean %q? it belongs in [%s])", k.String(), k.table)
		}
	}
	return ""
}

// closest is the candidate nearest to s by edit distance, ignoring case,
// if it is near enough to be a typo: at most a third of its length, and at
// least one edit allowed.
func closest(s string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if limit := max(1, len(c)/3); d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, by bytes
// (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
