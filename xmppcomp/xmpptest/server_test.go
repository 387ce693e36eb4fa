package xmpptest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records Fatal and Skip instead of acting.
type recorder struct {
	testing.TB
	mu          sync.Mutex
	fatal, skip string
}

func (r *recorder) Helper()          {}
func (r *recorder) TempDir() string  { return r.TB.TempDir() }
func (r *recorder) Cleanup(f func()) { r.TB.Cleanup(f) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skip = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// Without the server binaries a test is skipped loudly with the command
// that installs them, or fails when CI is set: never a silent pass.
func TestMissingServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("XMPPTEST_EJABBERD_LIBS", "")
	for _, tc := range []struct {
		start func(testing.TB, Options) *Server
		pkg   string
	}{{StartProsody, "prosody"}, {StartEjabberd, "ejabberd"}, {startCluster, "ejabberd"}} {
		for _, ci := range []string{"", "true"} {
			t.Setenv("CI", ci)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				tc.start(r, Options{})
				t.Errorf("start returned without a server")
			}()
			<-done
			got := r.skip
			if ci != "" {
				got = r.fatal
				if r.skip != "" {
					t.Errorf("CI=%s: skipped (%s), want a failure", ci, r.skip)
				}
			}
			if want := "apt-get install -y " + tc.pkg; !strings.Contains(got, want) {
				t.Errorf("CI=%q, %s missing: got fatal %q skip %q, want a message with %q", ci, tc.pkg, r.fatal, r.skip, want)
			}
		}
	}
}

func startCluster(t testing.TB, o Options) *Server {
	return StartEjabberdCluster(t, ClusterOptions{Options: o}).Nodes[0]
}

func TestLuaQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:          `"plain"`,
		`a"b\c'd`:        `"a\"b\\c'd"`,
		"new\nline\x00x": `"new\010line\000x"`,
		"ünï":            `"ünï"`,
	} {
		if got := LuaQuote(in); got != want {
			t.Errorf("LuaQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestOptionsRejectOddDomains(t *testing.T) {
	for _, o := range []Options{{Domain: "a b"}, {Domain: "x@y"}, {ComponentDomain: `c"d`}, {Domain: "same", ComponentDomain: "same"}} {
		if _, err := o.withDefaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o, err := Options{}.withDefaults()
	if err != nil || o.Domain != "localhost" || o.ComponentDomain != "component.localhost" || o.Secret == "" {
		t.Errorf("defaults: %+v %v", o, err)
	}
}
