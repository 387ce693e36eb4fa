package xmpptest

import (
	"os"
	"sync"
	"testing"
)

// Servers shared by the tests of one test binary: starting ejabberd costs a
// second or two, Prosody a fraction of that; most tests only need a server
// to talk to, not one of their own.
var shared struct {
	sync.Mutex
	servers map[sharedKey]*Server
	dirs    []string
}

type sharedKey struct {
	kind string
	opts Options
}

// SharedProsody returns a Prosody started once per test binary for these
// Options and reused by every caller with equal Options. Tests using it
// must not Stop, Pause or Restart it (use StartProsody for that) and should
// use user names of their own (UserName). Run the tests with Main, which
// stops the shared servers afterwards; if that is forgotten they still die
// with the test binary.
func SharedProsody(t testing.TB, opts Options) *Server {
	t.Helper()
	return sharedServer(t, Prosody, opts)
}

// SharedEjabberd is SharedProsody for ejabberd.
func SharedEjabberd(t testing.TB, opts Options) *Server {
	t.Helper()
	return sharedServer(t, Ejabberd, opts)
}

func sharedServer(t testing.TB, kind string, opts Options) *Server {
	t.Helper()
	if opts.Secret == "" {
		// A random default would make every call a new key.
		opts.Secret = "xmpptest-shared-secret"
	}
	shared.Lock()
	defer shared.Unlock()
	key := sharedKey{kind, opts}
	if s := shared.servers[key]; s != nil {
		s.mu.Lock()
		running := s.cmd != nil
		s.mu.Unlock()
		if !running {
			s.Start(t)
		}
		return s
	}
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "xmpptest-"+kind+"-"); err != nil {
			t.Fatal(err)
		}
		shared.dirs = append(shared.dirs, dir)
	}
	s := start(t, kind, opts, dir, false)
	if shared.servers == nil {
		shared.servers = map[sharedKey]*Server{}
	}
	shared.servers[key] = s
	return s
}

// StopShared stops the servers started by SharedProsody and SharedEjabberd
// and removes their directories (not an Options.Dir). Main calls it.
func StopShared() {
	shared.Lock()
	defer shared.Unlock()
	for k, s := range shared.servers {
		_ = s.stop()
		delete(shared.servers, k)
	}
	for _, d := range shared.dirs {
		_ = os.RemoveAll(d)
	}
	shared.dirs = nil
}

// Shared is SharedProsody or SharedEjabberd, by kind.
func Shared(t testing.TB, kind string, opts Options) *Server {
	t.Helper()
	return sharedServer(t, kind, opts)
}

// Main runs the tests of a binary and then stops the shared servers; it
// returns the exit code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(xmpptest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	StopShared()
	return code
}
