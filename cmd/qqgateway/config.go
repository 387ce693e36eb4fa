package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/jid"

	"qqxmpp/gateway"
)

// fileConfig is gateway.toml. Durations are Go duration strings ("1s").
type fileConfig struct {
	Component struct {
		JID    string `toml:"jid"`
		Server string `toml:"server"`
		Secret string `toml:"secret"`
	} `toml:"component"`
	QQ struct {
		Server     string   `toml:"server"`
		ClientCode string   `toml:"client_code"`
		PollActive duration `toml:"poll_active"`
		PollIdle   duration `toml:"poll_idle"`
		Timeout    duration `toml:"timeout"`
	} `toml:"qq"`
	Store struct {
		Path string `toml:"path"`
	} `toml:"store"`
	Log struct {
		Level  string `toml:"level"`
		Format string `toml:"format"`
	} `toml:"log"`
}

// duration reads a TOML string like "1s" or "500ms".
type duration struct {
	time.Duration
	set bool
}

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as \"1s\" or \"500ms\", got %q", b)
	}
	if v <= 0 {
		return fmt.Errorf("want a positive duration, got %q", b)
	}
	d.Duration, d.set = v, true
	return nil
}

// secretEnv overrides [component] secret, so the secret need not be in
// the file.
const secretEnv = "QQGW_COMPONENT_SECRET"

// loadConfig reads and checks the file; every error names the file and
// the key, and says what is expected.
func loadConfig(path string, getenv func(string) string) (fileConfig, error) {
	var c fileConfig
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return c, fmt.Errorf("%s: %s", path, perr.ErrorWithPosition())
		}
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("%s: unknown key %s (see the commented gateway.toml for the keys)", path, strings.Join(keys, ", "))
	}
	if s := getenv(secretEnv); s != "" {
		c.Component.Secret = s
	}
	bad := func(key, want string) error { return fmt.Errorf("%s: [%s: %s", path, key, want) }
	if c.Component.JID == "" {
		return c, bad("component] jid", "missing; want the component's domain, e.g. \"qq.example.org\"")
	}
	if j, err := jid.Parse(c.Component.JID); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return c, bad("component] jid", fmt.Sprintf("%q is not a bare domain like \"qq.example.org\"", c.Component.JID))
	}
	if c.Component.Server == "" {
		return c, bad("component] server", "missing; want host:port of the XMPP server's component port, e.g. \"127.0.0.1:5347\"")
	}
	if c.Component.Secret == "" {
		return c, bad("component] secret", "missing; set it in the file or in "+secretEnv)
	}
	if c.QQ.Server == "" {
		return c, bad("qq] server", "missing; want the QQ HTTP URL, e.g. \"http://127.0.0.1:8000/\"")
	}
	if c.QQ.PollActive.set && c.QQ.PollIdle.set && c.QQ.PollActive.Duration > c.QQ.PollIdle.Duration {
		return c, bad("qq] poll_active", fmt.Sprintf("%v is longer than poll_idle (%v)", c.QQ.PollActive.Duration, c.QQ.PollIdle.Duration))
	}
	if c.Store.Path == "" {
		return c, bad("store] path", "missing; want the SQLite file, e.g. \"qqgateway.db\"")
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if _, err := logrus.ParseLevel(c.Log.Level); err != nil {
		return c, bad("log] level", fmt.Sprintf("%q; want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		return c, bad("log] format", fmt.Sprintf("%q; want text or json", c.Log.Format))
	}
	return c, nil
}

// gatewayConfig turns the file into gateway.Config.
func (c fileConfig) gatewayConfig(log logrus.FieldLogger) gateway.Config {
	g := gateway.Config{Domain: c.Component.JID, Logger: log}
	g.QQ.Server = c.QQ.Server
	g.QQ.ClientCode = c.QQ.ClientCode
	g.QQ.Timeout = c.QQ.Timeout.Duration
	g.PollActive = c.QQ.PollActive.Duration
	g.PollIdle = c.QQ.PollIdle.Duration
	return g
}

// logger builds the logger the file asks for.
func (c fileConfig) logger() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(os.Stderr)
	lvl, _ := logrus.ParseLevel(c.Log.Level)
	l.SetLevel(lvl)
	if c.Log.Format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return l
}
