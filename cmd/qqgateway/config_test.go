package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func noEnv(string) string { return "" }

// The example at the root documents every key and is a working config.
func TestExampleConfigHasEveryKey(t *testing.T) {
	path := filepath.Join("..", "..", "gateway.toml")
	var raw map[string]any
	md, err := toml.DecodeFile(path, &raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range [][]string{
		{"component", "jid"}, {"component", "server"}, {"component", "secret"},
		{"qq", "server"}, {"qq", "client_code"}, {"qq", "poll_active"}, {"qq", "poll_idle"}, {"qq", "timeout"},
		{"store", "path"}, {"log", "level"}, {"log", "format"},
	} {
		if !md.IsDefined(key...) {
			t.Errorf("gateway.toml lacks %s", strings.Join(key, "."))
		}
	}
	c, err := loadConfig(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	g := c.gatewayConfig(nil)
	if g.Domain != "qq.localhost" || g.PollActive != time.Second || g.PollIdle != 10*time.Second || g.QQ.Timeout != 10*time.Second {
		t.Errorf("gateway config %+v", g)
	}
}

func TestConfigSecretFromEnvironment(t *testing.T) {
	path := writeConfig(t, strings.Replace(minimal, `secret = "s"`, "", 1))
	if _, err := loadConfig(path, noEnv); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("no secret: %v", err)
	}
	c, err := loadConfig(path, func(k string) string {
		if k == secretEnv {
			return "from-env"
		}
		return ""
	})
	if err != nil || c.Component.Secret != "from-env" {
		t.Errorf("secret from %s: %q, %v", secretEnv, c.Component.Secret, err)
	}
}

const minimal = `
[component]
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
	path := filepath.Join(t.TempDir(), "gw.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigErrorsNameFileAndKey(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"unknown key", minimal + "\n[qq2]\nx = 1\n", "qq2"},
		{"bad duration", strings.Replace(minimal, "[qq]", "[qq]\npoll_idle = \"often\"", 1), "poll_idle"},
		{"jid with a user", strings.Replace(minimal, `jid = "qq.example.org"`, `jid = "a@qq.example.org"`, 1), "jid"},
		{"no server", strings.Replace(minimal, `server = "127.0.0.1:5347"`, "", 1), "[component] server"},
		{"no store", strings.Replace(minimal, `path = "x.db"`, "", 1), "[store] path"},
		{"bad level", minimal + "[log]\nlevel = \"loud\"\n", "[log] level"},
		{"active longer than idle", strings.Replace(minimal, "[qq]", "[qq]\npoll_active = \"20s\"\npoll_idle = \"10s\"", 1), "poll_active"},
		{"not toml", "[component\n", "line"},
	}
	for _, c := range cases {
		path := writeConfig(t, c.text)
		_, err := loadConfig(path, noEnv)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %q and the file", c.name, err, c.want)
		}
	}
}
