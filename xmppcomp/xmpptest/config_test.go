package xmpptest

import (
	"strings"
	"testing"
)

func TestRenderConfig(t *testing.T) {
	ok := ConfigValues{Domain: "localhost", ComponentDomain: "qq.localhost", Secret: `a"b`, ClientPort: 1, ComponentPort: 2, APIPort: 3, Dir: "/d"}
	p, err := RenderConfig(Prosody, ok)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`component_secret = "a\"b"`, `info = "/d/prosody.log"`, `data_path = "/d/data"`} {
		if !strings.Contains(string(p), want) {
			t.Errorf("Prosody configuration lacks %s:\n%s", want, p)
		}
	}
	if strings.Contains(string(p), `"tls"`) || strings.Contains(string(p), "ssl =") {
		t.Errorf("TLS configured without a certificate:\n%s", p)
	}
	e, err := RenderConfig(Ejabberd, ok)
	if err != nil || !strings.Contains(string(e), `password: "a\"b"`) || !strings.Contains(string(e), "port: 3\n") {
		t.Errorf("ejabberd configuration (%v):\n%s", err, e)
	}
	for _, tc := range []struct {
		kind string
		edit func(*ConfigValues)
		want string
	}{
		{"openfire", func(*ConfigValues) {}, "unknown server kind"},
		{Prosody, func(v *ConfigValues) { v.Secret = "" }, "needs Secret"},
		{Ejabberd, func(v *ConfigValues) { v.APIPort = 0 }, "ports"},
		{Prosody, func(v *ConfigValues) { v.Domain = `a"b` }, "not a plain domain"},
		{Prosody, func(v *ConfigValues) { v.CertFile = "/c" }, "go together"},
		{Ejabberd, func(v *ConfigValues) { v.CertFile, v.KeyFile = "/c", "/k" }, "no TLS"},
		{Prosody, func(v *ConfigValues) { v.LogLevel = "warning" }, "log level"},
		{Prosody, func(v *ConfigValues) { v.ComponentNumber = 2 }, "only ejabberd balances"},
		{Ejabberd, func(v *ConfigValues) { v.ComponentNumber = 1 }, "2 to 1000"},
	} {
		v := ok
		tc.edit(&v)
		if _, err := RenderConfig(tc.kind, v); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: err = %v, want one with %q", tc.kind, v, err, tc.want)
		}
	}
	if _, err := RenderConfig(Prosody, ConfigValues{Secret: "do-not-show", Domain: "a", ComponentDomain: "b"}); err == nil || strings.Contains(err.Error(), "do-not-show") {
		t.Errorf("error shows the secret: %v", err)
	}
}

func TestRenderConfigRosterPrivilege(t *testing.T) {
	v := ConfigValues{Domain: "localhost", ComponentDomain: "qq.localhost", Secret: "s", ClientPort: 1, ComponentPort: 2, APIPort: 3, Dir: "/d"}
	want := map[string][]string{
		Prosody:  {`privileged_entities = { ["qq.localhost"] = { roster = "both" } }`, "\tmodules_enabled = { \"privilege\" }\n"},
		Ejabberd: {"  mod_privilege:\n    roster:\n      both:\n        allow:\n          - server: \"qq.localhost\"\n"},
	}
	for _, kind := range []string{Prosody, Ejabberd} {
		for _, granted := range []bool{false, true} {
			v.RosterPrivilege = granted
			text, err := RenderConfig(kind, v)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range want[kind] {
				if strings.Contains(string(text), w) != granted {
					t.Errorf("%s, privilege %v: configuration has %q = %v:\n%s", kind, granted, w, !granted, text)
				}
			}
		}
	}
}

// The balancing entry appears only when asked for, with both keys that
// ejabberd 23.01 needs.
func TestRenderConfigDomainBalancing(t *testing.T) {
	v := ConfigValues{Domain: "localhost", ComponentDomain: "qq.localhost", Secret: "s", ClientPort: 1, ComponentPort: 2, APIPort: 3, Dir: "/d"}
	want := "domain_balancing:\n  \"qq.localhost\":\n    type: bare_source\n    component_number: 3\n"
	for _, n := range []int{0, 3} {
		v.ComponentNumber = n
		text, err := RenderConfig(Ejabberd, v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(text), want) != (n != 0) || (n == 0 && strings.Contains(string(text), "domain_balancing")) {
			t.Errorf("ComponentNumber %d: configuration:\n%s", n, text)
		}
	}
}
