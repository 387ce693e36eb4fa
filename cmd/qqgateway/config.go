package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"mellium.im/xmpp/jid"

	"qqxmpp/gateway"
	"qqxmpp/qqproto"
)

// secretEnv overrides [component] secret, so the secret need not be in
// the file.
const secretEnv = "QQGW_COMPONENT_SECRET"

// fileConfig is what gateway.toml says, checked. A zero duration or
// count means the key was absent: the gateway's default applies.
type fileConfig struct {
	Component struct {
		JID, Server, Secret string
	}
	Gateway struct {
		Name            string
		ShutdownTimeout time.Duration
	}
	QQ struct {
		Server, ClientCode               string
		PollActive, PollIdle, ActiveFor  time.Duration
		Timeout                          time.Duration
		MaxAttempts                      int
		LoginBackoffMin, LoginBackoffMax time.Duration
		MaxInFlight, MaxMessageBytes     int
		ProfileFetches                   int
		profileFetchesSet                bool
	}
	Store struct{ Path string }
	Log   struct{ Level, Format string }

	// secretInFile: the secret in use comes from the file, so who may
	// read the file matters.
	secretInFile bool
}

// keySpec is one key of gateway.toml.
type keySpec struct {
	table, name string
	// want says what a good value is, for errors.
	want     string
	required bool
	// set checks v (as the toml package decoded it) and stores it in c.
	// Its error describes what was given instead ("got ...").
	set func(c *fileConfig, v any) error
}

func (k keySpec) key() string { return k.table + "." + k.name }

// schema is every key the file may hold; gateway.toml documents each.
var schema = []keySpec{
	{table: "component", name: "jid", required: true,
		want: `the component's bare domain, e.g. "qq.example.org"`,
		set:  text(func(c *fileConfig) *string { return &c.Component.JID }, checkDomain)},
	{table: "component", name: "server", required: true,
		want: `host:port of the XMPP server's component listener, e.g. "127.0.0.1:5347"`,
		set:  text(func(c *fileConfig) *string { return &c.Component.Server }, checkHostPort)},
	{table: "component", name: "secret", required: true,
		want: "the component secret configured on the XMPP server (or set " + secretEnv + ")",
		set: func(c *fileConfig, v any) error {
			// May be empty here when the environment supplies it;
			// parseConfig checks that one of them does.
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("got %s", describe(v))
			}
			c.Component.Secret, c.secretInFile = s, s != ""
			return nil
		}},

	{table: "gateway", name: "name",
		want: `the name shown in service discovery, e.g. "QQ"`,
		set:  text(func(c *fileConfig) *string { return &c.Gateway.Name }, nil)},
	{table: "gateway", name: "shutdown_timeout",
		want: `a positive duration such as "5s"`,
		set:  duration(func(c *fileConfig) *time.Duration { return &c.Gateway.ShutdownTimeout })},

	{table: "qq", name: "server", required: true,
		want: `the http:// or https:// URL of the QQ HTTP service, e.g. "http://127.0.0.1:8000/"`,
		set:  text(func(c *fileConfig) *string { return &c.QQ.Server }, checkURL)},
	{table: "qq", name: "client_code",
		want: `16 hex digits, e.g. "` + qqproto.DefaultClientCode + `"`,
		set:  text(func(c *fileConfig) *string { return &c.QQ.ClientCode }, checkClientCode)},
	{table: "qq", name: "poll_active",
		want: `a positive duration such as "1s"`,
		set:  duration(func(c *fileConfig) *time.Duration { return &c.QQ.PollActive })},
	{table: "qq", name: "poll_idle",
		want: `a positive duration such as "10s"`,
		set:  duration(func(c *fileConfig) *time.Duration { return &c.QQ.PollIdle })},
	{table: "qq", name: "active_for",
		want: `a positive duration such as "2m"`,
		set:  duration(func(c *fileConfig) *time.Duration { return &c.QQ.ActiveFor })},
	{table: "qq", name: "timeout",
		want: `a positive duration such as "10s"`,
		set:  duration(func(c *fileConfig) *time.Duration { return &c.QQ.Timeout })},
	{table: "qq", name: "max_attempts",
		want: "a whole number from 1 to 10",
		set:  integer(func(c *fileConfig) *int { return &c.QQ.MaxAttempts }, 1, 10)},
	{table: "qq", name: "login_backoff_min",
		want: `a positive duration such as "5s"`,
		set:  duration(func(c *fileConfig) *time.Duration { return &c.QQ.LoginBackoffMin })},
	{table: "qq", name: "login_backoff_max",
		want: `a positive duration such as "5m"`,
		set:  duration(func(c *fileConfig) *time.Duration { return &c.QQ.LoginBackoffMax })},
	{table: "qq", name: "max_in_flight",
		want: "a whole number from 1 to 100000",
		set:  integer(func(c *fileConfig) *int { return &c.QQ.MaxInFlight }, 1, 100000)},
	{table: "qq", name: "max_message_bytes",
		// gateway.Config wants at least utf8.UTFMax, so that every
		// character fits in one part.
		want: "a whole number of bytes from 4 to 1000000",
		set:  integer(func(c *fileConfig) *int { return &c.QQ.MaxMessageBytes }, 4, 1000000)},
	{table: "qq", name: "profile_fetches",
		want: "a whole number from 0 (none) to 100000",
		set: func(c *fileConfig, v any) error {
			c.QQ.profileFetchesSet = true
			return integer(func(c *fileConfig) *int { return &c.QQ.ProfileFetches }, 0, 100000)(c, v)
		}},

	{table: "store", name: "path", required: true,
		want: `the SQLite database file, e.g. "qqgateway.db"`,
		set: text(func(c *fileConfig) *string { return &c.Store.Path }, func(s string) error {
			if s == ":memory:" || strings.HasPrefix(s, "file:") {
				return fmt.Errorf("got %q (an SQLite URI, not a file path)", s)
			}
			return nil
		})},

	{table: "log", name: "level",
		want: "debug, info, warn or error",
		set: text(func(c *fileConfig) *string { return &c.Log.Level }, func(s string) error {
			switch s {
			case "debug", "info", "warn", "error":
				return nil
			}
			return fmt.Errorf("got %q", s)
		})},
	{table: "log", name: "format",
		want: "text or json",
		set: text(func(c *fileConfig) *string { return &c.Log.Format }, func(s string) error {
			if s == "text" || s == "json" {
				return nil
			}
			return fmt.Errorf("got %q", s)
		})},
}

// text is the set of a string key; check, if any, refuses bad strings.
func text(field func(*fileConfig) *string, check func(string) error) func(*fileConfig, any) error {
	return func(c *fileConfig, v any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("got %s", describe(v))
		}
		if s == "" {
			return errors.New(`got "" (empty)`)
		}
		if check != nil {
			if err := check(s); err != nil {
				return err
			}
		}
		*field(c) = s
		return nil
	}
}

// duration is the set of a duration key: a string time.ParseDuration reads.
func duration(field func(*fileConfig) *time.Duration) func(*fileConfig, any) error {
	return func(c *fileConfig, v any) error {
		s, ok := v.(string)
		if !ok {
			if _, isInt := v.(int64); isInt {
				return fmt.Errorf("got %s (a duration is a string with a unit)", describe(v))
			}
			return fmt.Errorf("got %s", describe(v))
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("got %q", s)
		}
		if d <= 0 {
			return fmt.Errorf("got %q (not positive)", s)
		}
		*field(c) = d
		return nil
	}
}

// integer is the set of a whole number key within [min, max].
func integer(field func(*fileConfig) *int, lo, hi int) func(*fileConfig, any) error {
	return func(c *fileConfig, v any) error {
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("got %s", describe(v))
		}
		if n < int64(lo) || n > int64(hi) {
			return fmt.Errorf("got %d", n)
		}
		*field(c) = int(n)
		return nil
	}
}

// describe names a decoded TOML value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case int64:
		return "the number " + strconv.FormatInt(v, 10)
	case float64:
		return "the number " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "the boolean " + strconv.FormatBool(v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date"
	}
	return fmt.Sprintf("a %T", v)
}

func checkDomain(s string) error {
	j, err := jid.Parse(s)
	if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return fmt.Errorf("got %q", s)
	}
	return nil
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("got %q (no port)", s)
	}
	if host == "" {
		return fmt.Errorf("got %q (no host)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("got %q (port %q is not a number from 1 to 65535)", s, port)
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("got %q", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("got %q (not http or https)", s)
	}
	if u.Host == "" {
		return fmt.Errorf("got %q (no host)", s)
	}
	return nil
}

var hex16 = regexp.MustCompile(`^[0-9A-Fa-f]{16}$`)

func checkClientCode(s string) error {
	if !hex16.MatchString(s) {
		return fmt.Errorf("got %q", s)
	}
	return nil
}

// checkStorePath makes sure the database can be created or written where
// the file says: SQLite also writes its -wal and -shm files beside it, so
// the directory must be writable too. It is checked at start, so that a
// typo is reported as a configuration error rather than a runtime one.
func checkStorePath(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("got %q: %v", path, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("got %q, which is a directory", path)
	case err == nil:
		f, err := os.OpenFile(abs, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("got %q, which cannot be opened for writing: %v", path, cause(err))
		}
		f.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("got %q: %v", path, err)
	}
	dir := filepath.Dir(abs)
	f, err := os.CreateTemp(dir, ".qqgateway-check-*")
	if err != nil {
		return fmt.Errorf("got %q, but its directory %s is not writable: %v (SQLite keeps the database and its -wal and -shm files there)", path, dir, cause(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// cause drops the path an *fs.PathError repeats: the message names it
// already.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// configError is one problem with the configuration file.
type configError struct {
	File string
	Line int    // 0 when no single line is to blame
	Key  string // dotted, e.g. "qq.poll_idle"; "" for syntax errors
	Msg  string // what is wrong and what is expected, naming the key
}

func (e *configError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// configErrors are all the problems found in one file, in file order.
type configErrors []*configError

func (es configErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// maxConfigErrors bounds the report: past this many, the file is probably
// not a gateway.toml at all.
const maxConfigErrors = 20

// loadConfig reads and checks the file at path. Its error is a
// *configError or configErrors; warnings are about things that work but
// should not be so (a secret others may read).
func loadConfig(path string, getenv func(string) string) (c *fileConfig, warnings []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &configError{File: path, Msg: "cannot read the configuration: " + cause(err).Error()}
	}
	c, err = parseConfig(path, data, getenv, checkStorePath)
	if err != nil {
		return nil, nil, err
	}
	if c.secretInFile {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			warnings = append(warnings, fmt.Sprintf("%s holds the component secret but others may read it (mode %#o): chmod 600 %s, or move the secret to %s",
				path, fi.Mode().Perm(), path, secretEnv))
		}
	}
	return c, warnings, nil
}

// parseConfig checks the text of a configuration file named name;
// checkStore, if not nil, checks that the database can live at store.path.
func parseConfig(name string, data []byte, getenv func(string) string, checkStore func(path string) error) (*fileConfig, error) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			msg := "not valid TOML: " + perr.Message
			if perr.Usage != "" {
				msg += " (" + strings.TrimSpace(perr.Usage) + ")"
			}
			return nil, &configError{File: name, Line: perr.Position.Line, Msg: msg}
		}
		return nil, &configError{File: name, Msg: "not valid TOML: " + err.Error()}
	}
	src := &source{md: md, top: top, tables: map[string]map[string]toml.Primitive{}}
	c := &fileConfig{}
	var errs configErrors
	fail := func(key toml.Key, format string, args ...any) {
		errs = append(errs, &configError{File: name, Line: src.line(key), Key: key.String(), Msg: fmt.Sprintf(format, args...)})
	}

	// Walk the keys in file order, so that errors come in that order too.
	// Lookups are exact: the toml package itself would match struct fields
	// case-insensitively, which hides a mistyped key.
	reported := map[string]bool{} // keys whose descendants are not checked
	defined := map[string]bool{}
	for _, key := range md.Keys() {
		if reported[key.String()] || reportedPrefix(reported, key) {
			continue
		}
		switch len(key) {
		case 1:
			if !knownTable(key[0]) {
				fail(key, "unknown key %q%s", key.String(), suggest(key))
				reported[key.String()] = true
			} else if typ := md.Type(key...); typ != "Hash" {
				fail(key, "key %q: want the table [%s]; got %s", key.String(), key[0], tomlTypeName(typ))
				reported[key.String()] = true
			}
		case 2:
			spec, ok := lookup(key[0], key[1])
			if !ok {
				fail(key, "unknown key %q%s", key.String(), suggest(key))
				reported[key.String()] = true
				continue
			}
			defined[spec.key()] = true
			v, ok := src.value(key[0], key[1])
			if !ok {
				fail(key, "key %q: want %s", key.String(), spec.want)
			} else if err := spec.set(c, v); err != nil {
				fail(key, "key %q: want %s; %v", key.String(), spec.want, err)
			}
			// Children of a known key mean it was given a table: set
			// refused that already.
			reported[key.String()] = true
		default:
			fail(key, "unknown key %q", key.String())
			reported[key.String()] = true
		}
		if len(errs) >= maxConfigErrors {
			return nil, errs
		}
	}

	if s := getenv(secretEnv); s != "" {
		// The file's secret, if any, is not the one in use.
		c.Component.Secret, c.secretInFile = s, false
	} else if defined["component.secret"] && c.Component.Secret == "" {
		fail(toml.Key{"component", "secret"}, "key \"component.secret\" is empty: want %s", lookupWant("component", "secret"))
	}
	for _, spec := range schema {
		if spec.required && !defined[spec.key()] && !(spec.key() == "component.secret" && c.Component.Secret != "") {
			msg := fmt.Sprintf("key %q is missing: want %s", spec.key(), spec.want)
			errs = append(errs, &configError{File: name, Key: spec.key(), Msg: msg})
		}
	}

	if checkStore != nil && c.Store.Path != "" {
		if err := checkStore(c.Store.Path); err != nil {
			fail(toml.Key{"store", "path"}, "key \"store.path\": want %s; %v", lookupWant("store", "path"), err)
		}
	}

	// Relations between keys, with the gateway's defaults for absent ones.
	active, idle := orDefault(c.QQ.PollActive, gateway.DefaultPollActive), orDefault(c.QQ.PollIdle, gateway.DefaultPollIdle)
	if active > idle {
		fail(toml.Key{"qq", "poll_active"}, "key \"qq.poll_active\" (%v) is longer than qq.poll_idle (%v); want at most poll_idle", active, idle)
	}
	lo, hi := orDefault(c.QQ.LoginBackoffMin, gateway.DefaultLoginBackoffMin), orDefault(c.QQ.LoginBackoffMax, gateway.DefaultLoginBackoffMax)
	if lo > hi {
		fail(toml.Key{"qq", "login_backoff_min"}, "key \"qq.login_backoff_min\" (%v) is longer than qq.login_backoff_max (%v); want at most login_backoff_max", lo, hi)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func reportedPrefix(reported map[string]bool, key toml.Key) bool {
	for i := 1; i < len(key); i++ {
		if reported[key[:i].String()] {
			return true
		}
	}
	return false
}

func lookup(table, name string) (keySpec, bool) {
	for _, s := range schema {
		if s.table == table && s.name == name {
			return s, true
		}
	}
	return keySpec{}, false
}

func lookupWant(table, name string) string {
	s, _ := lookup(table, name)
	return s.want
}

func knownTable(table string) bool {
	for _, s := range schema {
		if s.table == table {
			return true
		}
	}
	return false
}

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

// suggest is " (did you mean ...?)" for an unknown key that is close to a
// known one, or "".
func suggest(key toml.Key) string {
	name := key[len(key)-1]
	if len(key) == 1 {
		// A table name, or a key written outside its table.
		if t := closest(name, tableNames()); t != "" {
			return fmt.Sprintf(" (did you mean [%s]?)", t)
		}
		for _, s := range schema {
			if s.name == name {
				return fmt.Sprintf(" (did you mean %q? it belongs in [%s])", s.key(), s.table)
			}
		}
		return ""
	}
	if !knownTable(key[0]) {
		if t := closest(key[0], tableNames()); t != "" {
			return fmt.Sprintf(" (did you mean [%s]?)", t)
		}
		return ""
	}
	var names []string
	for _, s := range schema {
		if s.table == key[0] {
			names = append(names, s.name)
		}
	}
	if n := closest(name, names); n != "" {
		return fmt.Sprintf(" (did you mean %q?)", n)
	}
	for _, s := range schema {
		if s.name == name {
			return fmt.Sprintf(" (did you mean %q? it belongs in [%s])", s.key(), s.table)
		}
	}
	return ""
}

func tableNames() []string {
	var out []string
	for _, s := range schema {
		if len(out) == 0 || out[len(out)-1] != s.table {
			out = append(out, s.table)
		}
	}
	return out
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

// source gives the values and lines of a decoded file.
type source struct {
	md     toml.MetaData
	top    map[string]toml.Primitive
	tables map[string]map[string]toml.Primitive
}

func (s *source) table(name string) (map[string]toml.Primitive, bool) {
	if t, ok := s.tables[name]; ok {
		return t, true
	}
	p, ok := s.top[name]
	if !ok {
		return nil, false
	}
	var t map[string]toml.Primitive
	if err := s.md.PrimitiveDecode(p, &t); err != nil {
		return nil, false
	}
	s.tables[name] = t
	return t, true
}

// value is table.name as the toml package decodes it into an any:
// string, int64, float64, bool, time.Time, []any or map[string]any.
func (s *source) value(table, name string) (any, bool) {
	t, ok := s.table(table)
	if !ok {
		return nil, false
	}
	p, ok := t[name]
	if !ok {
		return nil, false
	}
	var v any
	if err := s.md.PrimitiveDecode(p, &v); err != nil {
		return nil, false
	}
	return v, true
}

// line is where key is defined, or 0 if that is not known. The toml
// package records each key's position but tells it only in the ParseError
// of a value that failed to decode; so the value is decoded into
// lineProbe, which always fails.
func (s *source) line(key toml.Key) int {
	var p toml.Primitive
	switch len(key) {
	case 1:
		v, ok := s.top[key[0]]
		if !ok {
			return 0
		}
		p = v
	case 2:
		t, ok := s.table(key[0])
		if !ok {
			return 0
		}
		v, ok := t[key[1]]
		if !ok {
			return 0
		}
		p = v
	default:
		// Deeper keys: the line of the nearest ancestor is close enough.
		return s.line(key[:2])
	}
	var perr toml.ParseError
	if err := s.md.PrimitiveDecode(p, &lineProbe{}); errors.As(err, &perr) {
		return perr.Position.Line
	}
	return 0
}

type lineProbe struct{}

func (*lineProbe) UnmarshalTOML(any) error { return errors.New("line probe") }

// gatewayConfig turns the file into gateway.Config.
func (c *fileConfig) gatewayConfig() gateway.Config {
	g := gateway.Config{
		Domain:          c.Component.JID,
		Name:            c.Gateway.Name,
		ShutdownTimeout: c.Gateway.ShutdownTimeout,
		PollActive:      c.QQ.PollActive,
		PollIdle:        c.QQ.PollIdle,
		ActiveFor:       c.QQ.ActiveFor,
		MaxInFlight:     c.QQ.MaxInFlight,
		LoginBackoffMin: c.QQ.LoginBackoffMin,
		LoginBackoffMax: c.QQ.LoginBackoffMax,
		MaxMessageBytes: c.QQ.MaxMessageBytes,
		ProfileFetches:  c.QQ.ProfileFetches,
	}
	if c.QQ.profileFetchesSet && c.QQ.ProfileFetches == 0 {
		g.ProfileFetches = -1 // the file's 0 means none; the gateway's 0 means the default
	}
	g.QQ.Server = c.QQ.Server
	g.QQ.ClientCode = c.QQ.ClientCode
	g.QQ.Timeout = c.QQ.Timeout
	g.QQ.MaxAttempts = c.QQ.MaxAttempts
	return g
}

// shutdownTimeout is the gateway's bound on its shutdown.
func (c *fileConfig) shutdownTimeout() time.Duration {
	return orDefault(c.Gateway.ShutdownTimeout, gateway.DefaultShutdownTimeout)
}
