package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"qqxmpp/store"
)

// The types of the keys of fileConfig. Each is a toml.Unmarshaler, so that
// it sees the value as the file has it (string, int64, float64, bool,
// time.Time, []any or map[string]any) and can say what was given ("got
// the number 10"); the decoder puts the key and what it wants in front.
type (
	label      string        // any text but ""
	optLabel   string        // any text, "" for none
	secret     string        // any text: "" when the environment supplies it
	domain     string        // a bare JID domain
	hostPort   string        // host:port, port from 1 to 65535
	listenAddr string        // a hostPort, or "" for none
	httpURL    string        // http:// or https:// with a host
	clientCode string        // 16 hex digits
	dbPath     string        // an SQLite file name, not a URI
	pgDSN      string        // a PostgreSQL DSN without a password, or "" for none
	choice     string        // one of the field's oneof tag
	duration   time.Duration // positive, from a string such as "5s"
	whole      int           // from the field's min tag to its max tag
	jidList    []string      // bare JIDs of users; nil when empty
)

func (s *label) UnmarshalTOML(v any) error    { return setText(s, v, nil) }
func (s *domain) UnmarshalTOML(v any) error   { return setText(s, v, checkDomain) }
func (s *hostPort) UnmarshalTOML(v any) error { return setText(s, v, checkHostPort) }
func (s *httpURL) UnmarshalTOML(v any) error  { return setText(s, v, checkURL) }

// String is the URL as logs may show it: a password in it is masked.
func (s httpURL) String() string {
	if u, err := url.Parse(string(s)); err == nil {
		return u.Redacted()
	}
	return string(s)
}
func (s *clientCode) UnmarshalTOML(v any) error { return setText(s, v, checkClientCode) }
func (s *dbPath) UnmarshalTOML(v any) error     { return setText(s, v, checkDBPath) }
func (s *choice) UnmarshalTOML(v any) error     { return setText(s, v, nil) }

// UnmarshalTOML takes a DSN that store.OpenPostgres takes, without a
// password: that comes from the environment (PGPASSWORD) or the password
// file, so that the file holds no secret of the database. Its errors do
// not repeat the value, which may hold the password.
func (s *pgDSN) UnmarshalTOML(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("got %s", describe(v))
	}
	if str != "" {
		hasPassword, err := store.CheckDSN(str)
		if err != nil {
			why := strings.TrimSuffix(strings.TrimPrefix(err.Error(), "store: postgres DSN: "), ": "+store.ErrInvalid.Error())
			return fmt.Errorf("got a DSN that does not parse: %s", why)
		}
		if hasPassword {
			return errors.New("got a DSN with a password in it; set PGPASSWORD in the gateway's environment instead, or use the password file (~/.pgpass or PGPASSFILE)")
		}
	}
	*s = pgDSN(str)
	return nil
}

// String keeps a password out of anything that prints a fileConfig,
// should one get in.
func (s pgDSN) String() string {
	if s == "" {
		return ""
	}
	return store.RedactDSN(string(s))
}

func (s *optLabel) UnmarshalTOML(v any) error {
	if v == "" {
		*s = ""
		return nil
	}
	return setText(s, v, nil)
}

func (s *listenAddr) UnmarshalTOML(v any) error {
	if v == "" {
		*s = ""
		return nil
	}
	return setText(s, v, checkHostPort)
}

func (s *secret) UnmarshalTOML(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("got %s", describe(v))
	}
	*s = secret(str)
	return nil
}

// String keeps the secret out of anything that prints a fileConfig.
func (secret) String() string { return "(secret)" }

func (secret) GoString() string { return "(secret)" }

// setText stores v in *dst if it is a string other than "" that check, if
// any, accepts.
func setText[T ~string](dst *T, v any, check func(string) error) error {
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
	*dst = T(s)
	return nil
}

func (l *jidList) UnmarshalTOML(v any) error {
	items, ok := v.([]any)
	if !ok {
		return fmt.Errorf("got %s", describe(v))
	}
	var out jidList
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return fmt.Errorf("got %s in the list", describe(it))
		}
		j, err := jid.Parse(s)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			return fmt.Errorf("got %q in the list", s)
		}
		out = append(out, s)
	}
	*l = out
	return nil
}

func (d *duration) UnmarshalTOML(v any) error {
	if _, isInt := v.(int64); isInt {
		return fmt.Errorf("got %s (a duration is a string with a unit)", describe(v))
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("got %s", describe(v))
	}
	t, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("got %q", s)
	}
	if t <= 0 {
		return fmt.Errorf("got %q (not positive)", s)
	}
	*d = duration(t)
	return nil
}

func (duration) want(tag reflect.StructTag) string {
	return fmt.Sprintf("a positive duration such as %q", cmp.Or(tag.Get("default"), "5s"))
}

func (n *whole) UnmarshalTOML(v any) error {
	i, ok := v.(int64)
	if !ok {
		return fmt.Errorf("got %s", describe(v))
	}
	if int64(int(i)) != i {
		return fmt.Errorf("got %d", i)
	}
	*n = whole(i)
	return nil
}

func (whole) want(tag reflect.StructTag) string {
	w := "a whole number"
	if unit := tag.Get("unit"); unit != "" {
		w += " of " + unit
	}
	w += " from " + tag.Get("min")
	if zero := tag.Get("zero"); zero != "" {
		w += " (" + zero + ")"
	}
	return w + " to " + tag.Get("max")
}

func (n whole) check(tag reflect.StructTag) error {
	lo, errLo := strconv.Atoi(tag.Get("min"))
	hi, errHi := strconv.Atoi(tag.Get("max"))
	if err := cmp.Or(errLo, errHi); err != nil {
		return fmt.Errorf("fileConfig: bad range: %v", err) // a mistake in the struct
	}
	if int(n) < lo || int(n) > hi {
		return fmt.Errorf("got %d", n)
	}
	return nil
}

func (choice) want(tag reflect.StructTag) string {
	opts := strings.Fields(tag.Get("oneof"))
	if len(opts) < 2 {
		return strings.Join(opts, "")
	}
	return strings.Join(opts[:len(opts)-1], ", ") + " or " + opts[len(opts)-1]
}

func (c choice) check(tag reflect.StructTag) error {
	if !slices.Contains(strings.Fields(tag.Get("oneof")), string(c)) {
		return fmt.Errorf("got %q", string(c))
	}
	return nil
}

func (clientCode) want(tag reflect.StructTag) string {
	return fmt.Sprintf("16 hex digits, e.g. %q", tag.Get("default"))
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

func checkDBPath(s string) error {
	if s == ":memory:" || strings.HasPrefix(s, "file:") {
		return fmt.Errorf("got %q (an SQLite URI, not a file path)", s)
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
