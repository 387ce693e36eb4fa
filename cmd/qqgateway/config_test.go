package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"qqxmpp/gateway"
	"qqxmpp/qqproto"
)

func noEnv(string) string { return "" }

func envWith(k, v string) func(string) string {
	return func(key string) string {
		if key == k {
			return v
		}
		return ""
	}
}

// The example at the root is a working config that sets every key of
// fileConfig, each with a default to that default: a key added to the
// struct but not to gateway.toml fails here. Its values are also the
// gateway's and qqproto's defaults, so that the default tags stay in step
// with the constants of those packages.
func TestExampleConfigHasEveryKeyWithItsDefault(t *testing.T) {
	path := filepath.Join("..", "..", "gateway.toml")
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := loadConfig(path, noEnv) // the checkout's file mode is the umask's business
	if err != nil {
		t.Fatal(err)
	}
	// The keys the e2e suite and scripts/demo.sh write, by name, so that
	// renaming one in the struct cannot pass unnoticed.
	names := map[string]bool{}
	for _, k := range keysOf(c) {
		names[k.String()] = true
	}
	for _, key := range []string{"component.jid", "component.server", "component.secret",
		"qq.server", "qq.client_code", "qq.poll_active", "qq.poll_idle", "qq.timeout",
		"store.path", "log.level", "log.format"} {
		if !names[key] {
			t.Errorf("fileConfig lacks %s", key)
		}
	}
	defaults := &fileConfig{}
	inFile := keysOf(c)
	for i, k := range keysOf(defaults) {
		if !md.IsDefined(k.table, k.name) {
			t.Errorf("gateway.toml lacks %s", k)
		} else if k.setDefault() && !reflect.DeepEqual(inFile[i].v.Interface(), k.v.Interface()) {
			t.Errorf("gateway.toml sets %s to %v; want its default %v", k, inFile[i].v.Interface(), k.v.Interface())
		}
	}

	g := c.gatewayConfig(nil)
	want := gateway.DefaultConfig("qq.localhost")
	want.Version = versionString()
	want.QQ = qqproto.Options{Server: "http://127.0.0.1:8000/", ClientCode: qqproto.DefaultClientCode,
		Timeout: qqproto.DefaultTimeout, MaxAttempts: qqproto.DefaultMaxAttempts,
		RetryBackoff: qqproto.DefaultRetryBackoff, Version: qqproto.DefaultVersion}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("gateway.toml gives\n%+v\nwant the defaults\n%+v", g, want)
	}
	if c.Log.Level != "info" || c.Log.Format != "text" || c.Store.Path != "qqgateway.db" {
		t.Errorf("log and store: %+v %+v", c.Log, c.Store)
	}
}

// Every key says what it wants, and its tags are what its type reads: a
// default it accepts, a range, the choices.
func TestEveryKeyIsDescribed(t *testing.T) {
	for _, k := range keysOf(&fileConfig{}) {
		if k.name == "" || k.want() == "" {
			t.Errorf("%s: no name or no want (%q)", k, k.want())
		}
		// setDefault panics on a default the type refuses.
		if k.setDefault() {
			if err := k.check(); err != nil {
				t.Errorf("%s: default %q: %v", k, k.tag.Get("default"), err)
			}
		}
	}
}

const minimal = `[component]
jid = "qq.example.org"
server = "127.0.0.1:5347"
secret = "s"
[qq]
server = "http://127.0.0.1:8000/"
[store]
path = "x.db"
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.toml")
	// The store beside the file, so that its directory check passes.
	text = strings.Replace(text, `path = "x.db"`, "path = "+quote(filepath.Join(dir, "x.db")), 1)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }

func TestMinimalConfigTakesDefaults(t *testing.T) {
	path := writeConfig(t, minimal)
	c, warnings, err := loadConfig(path, noEnv)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("%v, warnings %q", err, warnings)
	}
	// Absent keys take the defaults here, not zero: the gateway is told
	// every value.
	g := c.gatewayConfig(nil)
	if g.PollActive != gateway.DefaultPollActive || g.PollIdle != gateway.DefaultPollIdle ||
		g.MaxInFlight != gateway.DefaultMaxInFlight || g.ProfileFetches != gateway.DefaultProfileFetches ||
		g.Name != gateway.DefaultName || g.ShutdownTimeout != gateway.DefaultShutdownTimeout ||
		g.QQ.ClientCode != qqproto.DefaultClientCode || g.QQ.MaxAttempts != qqproto.DefaultMaxAttempts {
		t.Errorf("absent keys must take the defaults: %+v", g)
	}
	if c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("log %+v", c.Log)
	}
	if c.Metrics.Listen != "" {
		t.Errorf("metrics are on by default, on %q", c.Metrics.Listen)
	}
}

func TestConfigMapsEveryKey(t *testing.T) {
	path := writeConfig(t, `[component]
jid = "qq.example.org"
server = "xmpp.example.org:5347"
secret = "s"
[gateway]
name = "QQ here"
shutdown_timeout = "2s"
admins = ["admin@example.org", "boss@example.org"]
[qq]
server = "https://qq.example.org/"
client_code = "0123456789abcdef"
poll_active = "300ms"
poll_idle = "3s"
active_for = "1m"
timeout = "4s"
max_attempts = 2
login_backoff_min = "1s"
login_backoff_max = "1m"
max_in_flight = 8
max_message_bytes = 100
profile_fetches = 0
[store]
path = "x.db"
[log]
level = "debug"
format = "json"
[metrics]
listen = "[::1]:9464"
`)
	c, _, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Listen != "[::1]:9464" {
		t.Errorf("metrics.listen = %q", c.Metrics.Listen)
	}
	g := c.gatewayConfig(nil)
	if g.Name != "QQ here" || g.ShutdownTimeout != 2*time.Second || g.PollActive != 300*time.Millisecond ||
		g.PollIdle != 3*time.Second || g.ActiveFor != time.Minute || g.QQ.Timeout != 4*time.Second ||
		g.QQ.MaxAttempts != 2 || g.LoginBackoffMin != time.Second || g.LoginBackoffMax != time.Minute ||
		g.MaxInFlight != 8 || g.MaxMessageBytes != 100 || g.QQ.ClientCode != "0123456789abcdef" ||
		g.QQ.Server != "https://qq.example.org/" {
		t.Errorf("gateway config %+v", g)
	}
	if g.ProfileFetches != 0 {
		t.Errorf("profile_fetches = 0 must mean none, got %d", g.ProfileFetches)
	}
	if !reflect.DeepEqual(g.Admins, []string{"admin@example.org", "boss@example.org"}) {
		t.Errorf("admins %q", g.Admins)
	}
	if c.Component.Server != "xmpp.example.org:5347" || c.Log.Level != "debug" || c.Log.Format != "json" {
		t.Errorf("%+v %+v", c.Component, c.Log)
	}
}

func TestConfigSecretFromEnvironment(t *testing.T) {
	path := writeConfig(t, strings.Replace(minimal, `secret = "s"`, "", 1))
	_, _, err := loadConfig(path, noEnv)
	if err == nil || !strings.Contains(err.Error(), `key "component.secret" is missing`) || !strings.Contains(err.Error(), secretEnv) {
		t.Errorf("no secret: %v", err)
	}
	c, _, err := loadConfig(path, envWith(secretEnv, "from-env"))
	if err != nil || c.Component.Secret != "from-env" {
		t.Errorf("secret from %s: %q, %v", secretEnv, string(c.Component.Secret), err)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, "from-env") {
		t.Errorf("printing the configuration shows the secret: %s", s)
	}
	// The environment wins over the file.
	path = writeConfig(t, minimal)
	c, _, err = loadConfig(path, envWith(secretEnv, "from-env"))
	if err != nil || c.Component.Secret != "from-env" {
		t.Errorf("secret in both: %q, %v", string(c.Component.Secret), err)
	}
	// An empty one in the file is fine when the environment has it, and an
	// error naming the line when not.
	path = writeConfig(t, strings.Replace(minimal, `secret = "s"`, `secret = ""`, 1))
	if c, _, err = loadConfig(path, envWith(secretEnv, "from-env")); err != nil || c.Component.Secret != "from-env" {
		t.Errorf("empty in the file, set in the environment: %v", err)
	}
	_, _, err = loadConfig(path, noEnv)
	assertConfigError(t, "empty secret", err, path, 4, "component.secret", "is empty")
}

// assertConfigError checks that err reports key at file:line (line 0: no
// line) with a message containing want.
func assertConfigError(t *testing.T, name string, err error, file string, line int, key, want string) {
	t.Helper()
	var errs configErrors
	if !errors.As(err, &errs) {
		var one *configError
		if !errors.As(err, &one) {
			t.Errorf("%s: error %v (%T), want a configuration error", name, err, err)
			return
		}
		errs = configErrors{one}
	}
	for _, e := range errs {
		if e.Key == key {
			if e.File != file || e.Line != line || !strings.Contains(e.Error(), want) || !strings.Contains(e.Error(), key) {
				t.Errorf("%s: got %q (line %d), want %s:%d naming %q and saying %q", name, e.Error(), e.Line, file, line, key, want)
			}
			return
		}
	}
	t.Errorf("%s: error %q does not name %q", name, err, key)
}

func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	// minimal's lines: 1 [component], 2 jid, 3 server, 4 secret, 5 [qq],
	// 6 server, 7 [store], 8 path.
	set := func(old, new string) string {
		if !strings.Contains(minimal, old) {
			panic(old)
		}
		return strings.Replace(minimal, old, new, 1)
	}
	cases := []struct {
		name, text string
		line       int
		key, want  string
	}{
		{"typo", set("[qq]\n", "[qq]\npol_idle = \"5s\"\n"), 6, "qq.pol_idle", `unknown key "qq.pol_idle" (did you mean "poll_idle"?)`},
		{"wrong case", set("[qq]\n", "[qq]\nPoll_Idle = \"5s\"\n"), 6, "qq.Poll_Idle", `(did you mean "poll_idle"?)`},
		{"key in the wrong table", set("secret = \"s\"\n", "secret = \"s\"\ntimeout = \"5s\"\n"), 5, "component.timeout", `(did you mean "qq.timeout"? it belongs in [qq])`},
		{"key outside any table", "secret = \"s\"\n" + minimal, 1, "secret", `(did you mean "component.secret"? it belongs in [component])`},
		{"unknown table", minimal + "[logs]\nlevel = \"debug\"\n", 9, "logs", `unknown key "logs" (did you mean [log]?)`},
		{"table that is a value", "log = 5\n" + minimal, 1, "log", `want the table [log]; got a number`},
		{"integer duration", set("[qq]\n", "[qq]\npoll_idle = 10\n"), 6, "qq.poll_idle", `want a positive duration such as "12s"; got the number 10 (a duration is a string with a unit)`},
		{"bad duration", set("[qq]\n", "[qq]\npoll_idle = \"often\"\n"), 6, "qq.poll_idle", `got "often"`},
		{"negative duration", set("[qq]\n", "[qq]\ntimeout = \"-1s\"\n"), 6, "qq.timeout", `got "-1s" (not positive)`},
		{"empty jid", set(`jid = "qq.example.org"`, `jid = ""`), 2, "component.jid", `got "" (empty)`},
		{"jid with a user", set(`jid = "qq.example.org"`, `jid = "a@qq.example.org"`), 2, "component.jid", `bare domain`},
		{"server without port", set(`server = "127.0.0.1:5347"`, `server = "localhost"`), 3, "component.server", `want host:port of the XMPP server's component listener, e.g. "127.0.0.1:5347"; got "localhost" (no port)`},
		{"server with a bad port", set(`server = "127.0.0.1:5347"`, `server = "localhost:http"`), 3, "component.server", `not a number from 1 to 65535`},
		{"URL not http", set(`server = "http://127.0.0.1:8000/"`, `server = "ftp://127.0.0.1/"`), 6, "qq.server", `(not http or https)`},
		{"URL without host", set(`server = "http://127.0.0.1:8000/"`, `server = "127.0.0.1:8000"`), 6, "qq.server", `the http:// or https:// URL`},
		{"value that is a table", set("[store]", "[qq.timeout]\nx = 1\n[store]"), 7, "qq.timeout", `got a table`},
		{"value that is a dotted table", set("[qq]\n", "[qq]\ntimeout.x = 1\n"), 6, "qq.timeout", `got a table`},
		{"unknown dotted key", "a.b = 1\n" + minimal, 1, "a", `unknown key "a"`},
		{"count as string", set("[qq]\n", "[qq]\nmax_in_flight = \"64\"\n"), 6, "qq.max_in_flight", `want a whole number from 1 to 100000; got "64"`},
		{"count out of range", set("[qq]\n", "[qq]\nmax_message_bytes = 2\n"), 6, "qq.max_message_bytes", `got 2`},
		{"gc percent out of range", minimal + "[gateway]\ngc_percent = 5000\n", 10, "gateway.gc_percent", `want a whole number from 0 (GOGC, else 100) to 1000; got 5000`},
		{"negative memory limit", minimal + "[gateway]\nmemory_limit = -1\n", 10, "gateway.memory_limit", `want a whole number of MiB from 0 (none, or GOMEMLIMIT) to 1048576; got -1`},
		{"client code", set("[qq]\n", "[qq]\nclient_code = \"XYZ\"\n"), 6, "qq.client_code", `want 16 hex digits`},
		{"log level", minimal + "[log]\nlevel = \"loud\"\n", 10, "log.level", `want debug, info, warn or error; got "loud"`},
		{"log format", minimal + "[log]\nformat = \"xml\"\n", 10, "log.format", `want text or json; got "xml"`},
		{"metrics without host", minimal + "[metrics]\nlisten = \":9464\"\n", 10, "metrics.listen", `e.g. "127.0.0.1:9464", or "" for none; got ":9464" (no host)`},
		{"metrics as number", minimal + "[metrics]\nlisten = 9464\n", 10, "metrics.listen", `got the number 9464`},
		{"active longer than idle", set("[qq]\n", "[qq]\npoll_active = \"20s\"\n"), 6, "qq.poll_active", `is longer than qq.poll_idle (12s)`},
		{"backoff range", set("[qq]\n", "[qq]\nlogin_backoff_min = \"10m\"\n"), 6, "qq.login_backoff_min", `longer than qq.login_backoff_max`},
		{"missing server", set("server = \"127.0.0.1:5347\"\n", ""), 0, "component.server", `key "component.server" is missing: want host:port`},
		{"missing table", set("[store]\npath = \"x.db\"\n", ""), 0, "store.path", `key "store.path" is missing`},
		{"store in a missing directory", set(`path = "x.db"`, `path = "/nonexistent-qqgw/dir/x.db"`), 8, "store.path", `its directory /nonexistent-qqgw/dir is not writable`},
		{"store is a directory", set(`path = "x.db"`, `path = "/"`), 8, "store.path", `which is a directory`},
		{"store URI", set(`path = "x.db"`, `path = ":memory:"`), 8, "store.path", `an SQLite URI`},
		{"store driver", set(`path = "x.db"`, `driver = "mysql"`), 8, "store.driver", `want sqlite or postgres; got "mysql"`},
		{"postgres without dsn", set(`path = "x.db"`, `driver = "postgres"`), 0, "store.dsn", `key "store.dsn" is missing or empty: driver = "postgres" wants a PostgreSQL connection string`},
		{"postgres with a path", set(`path = "x.db"`, "driver = \"postgres\"\ndsn = \"host=/run/postgresql dbname=qq\"\npath = \"x.db\""), 10, "store.path", `key "store.path" is for driver = "sqlite"; with driver = "postgres" remove it`},
		{"sqlite with a dsn", set(`path = "x.db"`, "path = \"x.db\"\ndsn = \"dbname=qq\""), 9, "store.dsn", `key "store.dsn" is for driver = "postgres"`},
		{"dsn with a password", set(`path = "x.db"`, "driver = \"postgres\"\ndsn = \"dbname=qq password=hunter2\""), 9, "store.dsn", `got a DSN with a password in it; set PGPASSWORD`},
		{"dsn URL with a password", set(`path = "x.db"`, "driver = \"postgres\"\ndsn = \"postgres://gw:hunter2@db/qq\""), 9, "store.dsn", `got a DSN with a password in it`},
		{"dsn that does not parse", set(`path = "x.db"`, "driver = \"postgres\"\ndsn = \"port=notaport password=hunter2\""), 9, "store.dsn", `got a DSN that does not parse: `},
		{"dsn not a string", set(`path = "x.db"`, "driver = \"postgres\"\ndsn = 5"), 9, "store.dsn", `got the number 5`},
		{"admins not a list", minimal + "[gateway]\nadmins = \"admin@example.org\"\n", 10, "gateway.admins", `want a list of bare JIDs, e.g. ["admin@example.org"]; got "admin@example.org"`},
		{"admin not a user JID", minimal + "[gateway]\nadmins = [\"a@example.org\", \"example.org\"]\n", 10, "gateway.admins", `got "example.org" in the list`},
		{"admin not a string", minimal + "[gateway]\nadmins = [1]\n", 10, "gateway.admins", `got the number 1 in the list`},
		{"cluster without slots", minimal + "[cluster]\nowner = \"gw1\"\n", 0, "cluster.slots", `key "cluster.slots" is 0: with cluster.owner set, want the XMPP server's component_number`},
		{"cluster slots without owner", minimal + "[cluster]\nslots = 2\n", 0, "cluster.owner", `key "cluster.owner" is missing or empty: cluster.slots is set`},
		{"cluster slots out of range", minimal + "[cluster]\nowner = \"gw1\"\nslots = 5000\n", 11, "cluster.slots", `got 5000`},
	}
	for _, c := range cases {
		path := writeConfig(t, c.text)
		_, _, err := loadConfig(path, noEnv)
		assertConfigError(t, c.name, err, path, c.line, c.key, c.want)
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}
}

// With driver = "postgres" the database is store.dsn's: no path is
// wanted or checked, and what the log shows of it has no password, even
// one PGPASSWORD supplies.
func TestConfigPostgres(t *testing.T) {
	text := strings.Replace(minimal, `path = "x.db"`, "driver = \"postgres\"\ndsn = \"host=/run/postgresql dbname=qq user=gw\"", 1)
	c, err := parseConfig("gw.toml", []byte(text), noEnv, func(string) error {
		t.Error("the SQLite path was checked with driver = postgres")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Driver != driverPostgres || c.Store.DSN != "host=/run/postgresql dbname=qq user=gw" || c.Store.Path != "" {
		t.Errorf("store: %+v", c.Store)
	}
	if got, want := c.storeName(), "postgres:host=/run/postgresql port=5432 dbname=qq user=gw"; got != want {
		t.Errorf("storeName = %q, want %q", got, want)
	}
	// The default is SQLite, as before the key existed.
	c, err = parseConfig("gw.toml", []byte(minimal), noEnv, nil)
	if err != nil || c.Store.Driver != driverSQLite || c.storeName() != "x.db" {
		t.Errorf("without store.driver: %+v, %v", c.Store, err)
	}
}

func TestConfigSyntaxErrorNamesLine(t *testing.T) {
	path := writeConfig(t, "[component]\njid = \"qq.example.org\"\nserver = 127.0.0.1:5347\n")
	_, _, err := loadConfig(path, noEnv)
	var ce *configError
	if !errors.As(err, &ce) || ce.Line != 3 || !strings.HasPrefix(err.Error(), path+":3: not valid TOML") {
		t.Errorf("error %v, want one at %s:3", err, path)
	}
}

func TestConfigReportsEveryErrorInFileOrder(t *testing.T) {
	path := writeConfig(t, strings.Replace(minimal, "[qq]\n", "[qq]\npol_idle = \"1s\"\ntimeout = 5\n", 1)+"[log]\nlevel = \"loud\"\n")
	_, _, err := loadConfig(path, noEnv)
	var errs configErrors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Key)
	}
	if strings.Join(got, " ") != "qq.pol_idle qq.timeout log.level" {
		t.Errorf("errors for %q, want qq.pol_idle qq.timeout log.level in that order:\n%v", got, err)
	}
}

// A file that is not a gateway.toml at all gets the first few problems, not
// one line for each of its keys.
func TestConfigReportIsBounded(t *testing.T) {
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "key%d = %d\n", i, i)
	}
	_, err := parseConfig("big.toml", []byte(b.String()), noEnv, nil)
	var errs configErrors
	if !errors.As(err, &errs) || len(errs) != maxConfigErrors || errs[0].Key != "key0" || errs[0].Line != 1 {
		t.Errorf("got %d errors, want the first %d from big.toml:1:\n%v", len(errs), maxConfigErrors, err)
	}
}

func TestConfigUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, _, err := loadConfig(path, noEnv)
	if err == nil || !strings.HasPrefix(err.Error(), path+": cannot read the configuration: ") {
		t.Errorf("error %v", err)
	}
}

func TestConfigWarnsWhenOthersMayReadTheSecret(t *testing.T) {
	for _, c := range []struct {
		name     string
		mode     os.FileMode
		inFile   bool
		wantWarn bool
	}{
		{"0600 with secret", 0o600, true, false},
		{"0644 with secret", 0o644, true, true},
		// The file's group is this process's: the unit's Group=.
		{"0640 with secret", 0o640, true, false},
		{"0660 with secret", 0o660, true, false},
		{"0604 with secret", 0o604, true, true},
		{"0644 without secret", 0o644, false, false},
		// The environment's secret is the one in use; the file's is not.
		{"0644 with secret overridden", 0o644, true, false},
	} {
		text := minimal
		env := noEnv
		if !c.inFile {
			text = strings.Replace(text, `secret = "s"`, "", 1)
		}
		if !c.inFile || strings.HasSuffix(c.name, "overridden") {
			env = envWith(secretEnv, "from-env")
		}
		path := writeConfig(t, text)
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		_, warnings, err := loadConfig(path, env)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := len(warnings) > 0; got != c.wantWarn {
			t.Errorf("%s: warnings %q, want a warning: %v", c.name, warnings, c.wantWarn)
		}
		if c.wantWarn && !strings.Contains(warnings[0], "chmod 600") {
			t.Errorf("%s: warning %q does not say what to do", c.name, warnings[0])
		}
	}
	// Readable by another group than the gateway's.
	path := writeConfig(t, minimal)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !othersMayRead(fi, os.Getegid()+1) {
		t.Error("0640 of another group than the gateway's: no warning")
	}
}

func TestSuggestions(t *testing.T) {
	for _, c := range []struct {
		key  toml.Key
		want string
	}{
		{toml.Key{"qq", "pol_idle"}, `"poll_idle"`},
		{toml.Key{"qq", "serve"}, `"server"`},
		{toml.Key{"qq", "zzzzzz"}, ``},
		{toml.Key{"component", "path"}, `"store.path"`},
		{toml.Key{"q"}, `[qq]`},
		{toml.Key{"compnent", "jid"}, `[component]`},
	} {
		got := suggest(c.key)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("suggest(%s) = %q, want one naming %s", c.key, got, c.want)
		}
	}
}

// No input makes the parser panic; whatever it accepts, it accepts
// completely (every required key set).
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{minimal, "", "[qq]\npoll_idle = 5\n", "a.b.c = 1", "[[qq]]\n[[qq]]\n",
		"component = {jid = \"x\"}", "[qq.server]\nx = [1, {a = 2}]", "\"\" = 1\n[\"\"]\n"} {
		f.Add(seed)
	}
	gw, err := os.ReadFile(filepath.Join("..", "..", "gateway.toml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(gw))
	f.Fuzz(func(t *testing.T, text string) {
		c, err := parseConfig("fuzz.toml", []byte(text), noEnv, nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.toml") {
				t.Errorf("error without the file name: %v", err)
			}
			return
		}
		if c.Component.JID == "" || c.Component.Server == "" || c.Component.Secret == "" || c.QQ.Server == "" || c.Store.Path == "" {
			t.Errorf("accepted without a required key: %+v", c)
		}
	})
}
