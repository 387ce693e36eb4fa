package xmpptest

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// The configuration templates, filled by RenderConfig. Every server
// xmpptest starts runs with them (for the tests of xmppcomp, gateway and
// the daemon, and the end-to-end suite), and so does make demo; README.md
// quotes the parts between "snippet:" markers, which is what a deployment
// needs.
var (
	//go:embed prosody.cfg.lua.tmpl
	ProsodyConfigTemplate string
	//go:embed ejabberd.yml.tmpl
	EjabberdConfigTemplate string
)

var templates = map[string]*template.Template{
	Prosody:  parse(Prosody, ProsodyConfigTemplate),
	Ejabberd: parse(Ejabberd, EjabberdConfigTemplate),
}

func parse(name, text string) *template.Template {
	return template.Must(template.New(name).Option("missingkey=error").
		Funcs(template.FuncMap{"lua": LuaQuote, "yaml": strconv.Quote}).Parse(text))
}

// ConfigValues fill a configuration template.
type ConfigValues struct {
	Domain          string // the server's virtual host
	ComponentDomain string
	Secret          string // the component's secret
	ClientPort      int    // c2s, on 127.0.0.1
	ComponentPort   int    // where the component connects, on 127.0.0.1
	APIPort         int    // ejabberd: the HTTP API xmpptest creates users with
	// Dir holds the pid file, the data and the log (Prosody: data/, certs/
	// and prosody.log; ejabberd takes its directories from the command
	// line).
	Dir      string
	LogLevel string // "info" (default) or "debug"
	// CertFile and KeyFile (PEM), when set, make Prosody offer STARTTLS
	// with that certificate (make demo, for desktop clients that insist).
	CertFile, KeyFile string
	// RosterPrivilege grants the component read and write access to the
	// rosters of Domain's users (XEP-0356): Prosody's mod_privilege from
	// prosody-modules, ejabberd's own.
	RosterPrivilege bool
	// ComponentNumber, when not 0, makes ejabberd spread ComponentDomain's
	// stanzas over that many component connections by the sender's bare
	// JID (domain_balancing, type bare_source); 2 to 1000.
	ComponentNumber int
}

// RenderConfig returns the configuration of a server of kind (Prosody or
// Ejabberd) filled with v.
func RenderConfig(kind string, v ConfigValues) ([]byte, error) {
	tmpl, ok := templates[kind]
	if !ok {
		return nil, fmt.Errorf("xmpptest: unknown server kind %q", kind)
	}
	if err := v.check(kind); err != nil {
		return nil, err
	}
	if v.LogLevel == "" {
		v.LogLevel = "info"
	}
	data := struct {
		ConfigValues
		PidFile, DataDir, CertDir, LogFile string
	}{v, filepath.Join(v.Dir, "prosody.pid"), filepath.Join(v.Dir, "data"), filepath.Join(v.Dir, "certs"), filepath.Join(v.Dir, kind+".log")}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("xmpptest: %s configuration: %w", kind, err)
	}
	return buf.Bytes(), nil
}

func (v ConfigValues) check(kind string) error {
	if err := checkDomains(v.Domain, v.ComponentDomain); err != nil {
		return err
	}
	if v.Secret == "" || v.Dir == "" || v.ClientPort <= 0 || v.ComponentPort <= 0 || (kind == Ejabberd && v.APIPort <= 0) {
		return fmt.Errorf("xmpptest: %s configuration needs Secret, Dir and the ports: %+v", kind, v.redacted())
	}
	if (v.CertFile == "") != (v.KeyFile == "") {
		return errors.New("xmpptest: CertFile and KeyFile go together")
	}
	if v.CertFile != "" && kind != Prosody {
		return fmt.Errorf("xmpptest: the %s template has no TLS", kind)
	}
	if v.ComponentNumber != 0 && (kind != Ejabberd || v.ComponentNumber < 2 || v.ComponentNumber > 1000) {
		return fmt.Errorf("xmpptest: ComponentNumber %d: only ejabberd balances components, over 2 to 1000 connections", v.ComponentNumber)
	}
	switch v.LogLevel {
	case "", "info", "debug":
		return nil
	}
	return fmt.Errorf("xmpptest: log level %q: want info or debug, which both servers know", v.LogLevel)
}

func (v ConfigValues) redacted() ConfigValues {
	if v.Secret != "" {
		v.Secret = "(set)"
	}
	return v
}

// LuaQuote returns s as a Lua string literal, as Prosody's configuration
// and data files read it.
func LuaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
