package xmppcomp

import (
	"strings"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	ok := Config{Domain: "qq.example.org", Server: "127.0.0.1:5347", Secret: "s"}
	h := HandlerFunc(nil)
	for _, tc := range []struct {
		edit func(*Config)
		want string // must appear in the error
	}{
		{func(c *Config) { c.Domain = "" }, "Config.Domain"},
		{func(c *Config) { c.Domain = "user@qq.example.org" }, "Config.Domain"},
		{func(c *Config) { c.Domain = "qq.example.org/res" }, "Config.Domain"},
		{func(c *Config) { c.Domain = "bad domain" }, "Config.Domain"},
		{func(c *Config) { c.Server = "" }, "Config.Server"},
		{func(c *Config) { c.Server = "localhost" }, "Config.Server"},
		{func(c *Config) { c.Secret = "" }, "Config.Secret"},
		{func(c *Config) { c.MinBackoff = -time.Second }, "Config.MinBackoff"},
		{func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Minute, time.Second }, "Config.MinBackoff"},
		{func(c *Config) { c.PingTimeout = -1 }, "Config.PingTimeout"},
		{func(c *Config) { c.QueueSize = -1 }, "Config.QueueSize"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := New(cfg, h)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", cfg, err, tc.want)
		}
	}
	if _, err := New(ok, nil); err == nil {
		t.Error("New with a nil Handler: no error")
	}
	c, err := New(ok, h)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.MinBackoff != DefaultMinBackoff || c.cfg.MaxBackoff != DefaultMaxBackoff ||
		c.cfg.PingInterval != DefaultPingInterval || c.cfg.PingTimeout != DefaultPingTimeout || c.cfg.QueueSize != DefaultQueueSize {
		t.Errorf("defaults not applied: %+v", c.cfg)
	}
}

func TestBackoff(t *testing.T) {
	min, max := 500*time.Millisecond, 30*time.Second
	for n := range 20 {
		want := min << n
		if n > 10 || want > max {
			want = max
		}
		for range 50 {
			if d := backoff(min, max, n); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}
