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

// Each wait lies between half and all of the nominal value, which doubles
// from MinBackoff up to MaxBackoff; Reset starts again at MinBackoff. The
// waits are spread (jitter), not all the same.
func TestBackoff(t *testing.T) {
	min, max := 500*time.Millisecond, 30*time.Second
	capped := map[time.Duration]bool{}
	for range 50 {
		b := newBackOff(min, max)
		check := func(n int) {
			t.Helper()
			want := max
			if n < 10 && min<<n < max {
				want = min << n
			}
			// The library works in float64: allow a nanosecond of rounding.
			if d := b.next(); d < want/2-time.Nanosecond || d > want {
				t.Fatalf("wait %d = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
		for n := range 20 {
			check(n)
		}
		capped[b.next()] = true
		b.Reset()
		check(0)
		check(1)
	}
	if len(capped) < 10 {
		t.Errorf("50 waits at MaxBackoff took only %d distinct values: no jitter", len(capped))
	}
}
