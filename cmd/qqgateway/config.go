package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"qqxmpp/store"
)

// secretEnv overrides [component] secret, so the secret need not be in
// the file.
const secretEnv = "QQGW_COMPONENT_SECRET"

// fileConfig is gateway.toml, decoded and checked: each key is one field of
// a table below, and all there is to know about it in the code is on that
// field. Its tags: toml, the key's name; default, the value of an absent
// key (a key without one is required); want, what a good value is, for
// errors, where its type does not say so itself (duration, whole, choice
// and clientCode build it from default, min, max, unit, zero and oneof). Each
// type checks its values (config_types.go). gateway.toml explains every
// key at length; a test keeps it in step with this struct.
type fileConfig struct {
	Component struct {
		JID    domain   `toml:"jid" want:"the component's bare domain, e.g. \"qq.example.org\""`
		Server hostPort `toml:"server" want:"host:port of the XMPP server's component listener, e.g. \"127.0.0.1:5347\""`
		// Secret may be empty in the file when the environment supplies it.
		Secret secret `toml:"secret" want:"the component secret configured on the XMPP server (or set QQGW_COMPONENT_SECRET)"`
	} `toml:"component"`
	Gateway struct {
		Name            label    `toml:"name" default:"QQ" want:"the name shown in service discovery, e.g. \"QQ\""`
		ShutdownTimeout duration `toml:"shutdown_timeout" default:"5s"`
		// The default is an empty list: no administrators.
		Admins jidList `toml:"admins" default:"" want:"a list of bare JIDs, e.g. [\"admin@example.org\"]"`
		// The Go collector's settings (applyMemory); 0 leaves the
		// runtime's own (GOGC, GOMEMLIMIT).
		GCPercent   whole `toml:"gc_percent" default:"0" min:"0" max:"1000" zero:"GOGC, else 100"`
		MemoryLimit whole `toml:"memory_limit" default:"0" min:"0" max:"1048576" unit:"MiB" zero:"none, or GOMEMLIMIT"`
	} `toml:"gateway"`
	QQ struct {
		Server          httpURL    `toml:"server" want:"the http:// or https:// URL of the QQ HTTP service, e.g. \"http://127.0.0.1:8000/\""`
		ClientCode      clientCode `toml:"client_code" default:"9326B87B234E7235"`
		PollActive      duration   `toml:"poll_active" default:"500ms"`
		PollIdle        duration   `toml:"poll_idle" default:"12s"`
		ActiveFor       duration   `toml:"active_for" default:"2m"`
		Timeout         duration   `toml:"timeout" default:"10s"`
		MaxAttempts     whole      `toml:"max_attempts" default:"3" min:"1" max:"10"`
		LoginBackoffMin duration   `toml:"login_backoff_min" default:"5s"`
		LoginBackoffMax duration   `toml:"login_backoff_max" default:"5m"`
		MaxInFlight     whole      `toml:"max_in_flight" default:"64" min:"1" max:"100000"`
		// At least utf8.UTFMax, so that every character fits in one part.
		MaxMessageBytes whole `toml:"max_message_bytes" default:"2000" min:"4" max:"1000000" unit:"bytes"`
		ProfileFetches  whole `toml:"profile_fetches" default:"200" min:"0" max:"100000" zero:"none"`
	} `toml:"qq"`
	Store struct {
		Driver choice `toml:"driver" default:"sqlite" oneof:"sqlite postgres"`
		// Path is required with driver sqlite only, DSN with postgres
		// only (checkStoreKeys).
		Path dbPath `toml:"path" want:"the SQLite database file, e.g. \"qqgateway.db\""`
		DSN  pgDSN  `toml:"dsn" default:"" want:"a PostgreSQL connection string without the password, e.g. \"host=/run/postgresql dbname=qqgateway user=qqgateway\", or \"\" with driver = \"sqlite\""`
	} `toml:"store"`
	Log struct {
		Level  choice `toml:"level" default:"info" oneof:"debug info warn error"`
		Format choice `toml:"format" default:"text" oneof:"text json"`
	} `toml:"log"`
	Cluster struct {
		Owner    optLabel `toml:"owner" default:"" want:"this process's name among the processes sharing the store, unique and stable (e.g. the host name), or \"\" for a gateway alone"`
		Slots    whole    `toml:"slots" default:"0" min:"0" max:"1000" zero:"alone"`
		LeaseTTL duration `toml:"lease_ttl" default:"10s"`
	} `toml:"cluster"`
	Metrics struct {
		Listen listenAddr `toml:"listen" default:"" want:"host:port to serve /metrics, /healthz and /readyz on, e.g. \"127.0.0.1:9464\", or \"\" for none"`
	} `toml:"metrics"`

	// secretInFile: the secret in use comes from the file, so who may
	// read the file matters.
	secretInFile bool
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
		if fi, err := os.Stat(path); err == nil && othersMayRead(fi, os.Getegid()) {
			warnings = append(warnings, fmt.Sprintf("%s holds the component secret but others may read it (mode %#o): chmod 600 %s (or 640 with the gateway's group), or move the secret to %s",
				path, fi.Mode().Perm(), path, secretEnv))
		}
	}
	return c, warnings, nil
}

// othersMayRead: someone other than the file's owner and the members of
// the group gid may read or change the file. A service's configuration is
// root:qqgateway 0640, and the unit runs the gateway with that group.
func othersMayRead(fi os.FileInfo, gid int) bool {
	perm := fi.Mode().Perm()
	if perm&0o007 != 0 {
		return true
	}
	fileGID, ok := fileGroup(fi)
	return perm&0o070 != 0 && (!ok || fileGID != gid)
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
	c := &fileConfig{}
	d := newDecoder(name, md, top, keysOf(c))
	d.decodeKeys()

	secretKey := toml.Key{"component", "secret"}
	c.secretInFile = c.Component.Secret != ""
	if s := getenv(secretEnv); s != "" {
		// The file's secret, if any, is not the one in use.
		c.Component.Secret, c.secretInFile = secret(s), false
		d.defined[secretKey.String()] = true
	} else if d.defined[secretKey.String()] && c.Component.Secret == "" {
		d.fail(secretKey, "key %q is empty: want %s", secretKey.String(), d.want(secretKey))
	}
	checkStoreKeys(d, c)
	checkClusterKeys(d, c)
	d.reportMissing()
	if checkStore != nil && c.Store.Path != "" && c.Store.Driver == driverSQLite {
		if err := checkStore(string(c.Store.Path)); err != nil {
			k := toml.Key{"store", "path"}
			d.fail(k, "key %q: want %s; %v", k.String(), d.want(k), err)
		}
	}
	checkOrder(d, toml.Key{"qq", "poll_active"}, c.QQ.PollActive, "poll_idle", c.QQ.PollIdle)
	checkOrder(d, toml.Key{"qq", "login_backoff_min"}, c.QQ.LoginBackoffMin, "login_backoff_max", c.QQ.LoginBackoffMax)

	if len(d.errs) == 0 {
		return c, nil
	}
	// In file order; errors of no single line (missing keys) last.
	slices.SortStableFunc(d.errs, func(a, b *configError) int {
		return cmp.Compare(lineOrLast(a.Line), lineOrLast(b.Line))
	})
	return nil, d.errs[:min(len(d.errs), maxConfigErrors)]
}

// The values of store.driver.
const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

// checkStoreKeys: store.path goes with driver sqlite, store.dsn with
// postgres. A key of the other driver is an error rather than ignored, so
// that nobody believes the data is where it is not.
func checkStoreKeys(d *decoder, c *fileConfig) {
	pathKey, dsnKey := toml.Key{"store", "path"}, toml.Key{"store", "dsn"}
	switch c.Store.Driver {
	case driverPostgres:
		if d.defined[pathKey.String()] {
			d.fail(pathKey, "key %q is for driver = %q; with driver = %q remove it (store.dsn names the database)",
				pathKey.String(), driverSQLite, driverPostgres)
		}
		d.defined[pathKey.String()] = true // not missing: not wanted
		if c.Store.DSN == "" && !d.failed(dsnKey) {
			d.fail(dsnKey, "key %q is missing or empty: driver = %q wants %s", dsnKey.String(), driverPostgres, d.want(dsnKey))
		}
	case driverSQLite:
		if c.Store.DSN != "" {
			d.fail(dsnKey, "key %q is for driver = %q; with driver = %q set it to \"\" or remove it",
				dsnKey.String(), driverPostgres, driverSQLite)
		}
	}
}

// checkClusterKeys: a process of a cluster names itself and the server's
// number of balanced connections; one alone sets neither.
func checkClusterKeys(d *decoder, c *fileConfig) {
	ownerKey, slotsKey := toml.Key{"cluster", "owner"}, toml.Key{"cluster", "slots"}
	switch {
	case c.Cluster.Owner != "" && c.Cluster.Slots < 2 && !d.failed(slotsKey):
		d.fail(slotsKey, "key %q is %d: with cluster.owner set, want the XMPP server's component_number for the domain (2 to 1000)",
			slotsKey.String(), c.Cluster.Slots)
	case c.Cluster.Owner == "" && c.Cluster.Slots != 0 && !d.failed(ownerKey):
		d.fail(ownerKey, "key %q is missing or empty: cluster.slots is set, so this process is one of several and needs a name", ownerKey.String())
	}
}

// openStore opens the database the configuration names.
func (c *fileConfig) openStore(ctx context.Context) (*store.Store, error) {
	if c.Store.Driver == driverPostgres {
		return store.OpenPostgres(ctx, string(c.Store.DSN))
	}
	return store.Open(ctx, string(c.Store.Path))
}

// storeName is the database for the log: the file, or the PostgreSQL
// database without its password.
func (c *fileConfig) storeName() string {
	if c.Store.Driver == driverPostgres {
		return store.RedactDSN(string(c.Store.DSN))
	}
	return string(c.Store.Path)
}

// checkOrder reports the key lo if it is longer than the key hi of the
// same table: the file's values, or the defaults of absent keys.
func checkOrder(d *decoder, lo toml.Key, loV duration, hi string, hiV duration) {
	if loV > hiV {
		d.fail(lo, "key %q (%v) is longer than %s.%s (%v); want at most %s",
			lo.String(), time.Duration(loV), lo[0], hi, time.Duration(hiV), hi)
	}
}

func lineOrLast(line int) int {
	if line == 0 {
		return math.MaxInt
	}
	return line
}
