package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"qqxmpp/store"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCommand runs qqgateway in process with args and returns its exit
// code, stdout and stderr.
func runCommand(t *testing.T, env func(string) string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	if env == nil {
		env = noEnv
	}
	code := command{args: args, stdout: &stdout, stderr: &stderr, getenv: env, signals: make(chan os.Signal)}.run()
	return code, stdout.String(), stderr.String()
}

func TestVersion(t *testing.T) {
	code, out, errOut := runCommand(t, nil, "-version")
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	f := strings.Fields(out)
	if len(f) != 4 || f[0] != "qqgateway" || f[1] == "" || f[2] != runtime.Version() || f[3] != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("-version printed %q, want qqgateway VERSION GOVERSION OS/ARCH", out)
	}
	version = "1.2.3-test" // what -ldflags "-X main.version=..." sets
	defer func() { version = "" }()
	if _, out, _ := runCommand(t, nil, "-version"); !strings.HasPrefix(out, "qqgateway 1.2.3-test go") {
		t.Errorf("with the version set at build time: %q", out)
	}
}

func TestHelpDocumentsFlagsAndExitCodes(t *testing.T) {
	code, out, _ := runCommand(t, nil, "-help")
	if code != exitOK {
		t.Errorf("-help exits %d", code)
	}
	for _, want := range []string{"-config FILE", "-check-config", "-backup FILE", "-version", secretEnv, "SIGTERM", "SIGHUP",
		"Exit status", "  0  clean shutdown", "  1  runtime failure", "  2  usage or configuration error", "  3  shutdown cut short"} {
		if !strings.Contains(out, want) {
			t.Errorf("-help output lacks %q:\n%s", want, out)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"-confgi", "x.toml"}, {"gateway.toml"}, {"-version=maybe"}} {
		code, out, errOut := runCommand(t, nil, args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, "qqgateway -help") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and a pointer to -help", args, code, out, errOut)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	path := writeConfig(t, minimal)
	code, out, errOut := runCommand(t, nil, "-config", path, "-check-config")
	if code != exitOK || out != path+": config OK\n" || errOut != "" {
		t.Errorf("good config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "x.db")); !os.IsNotExist(err) {
		t.Errorf("-check-config created the database (%v); it should only check that it could", err)
	}

	// Others may read the secret: still OK, with a warning.
	os.Chmod(path, 0o644)
	code, out, errOut = runCommand(t, nil, "-config", path, "-check-config")
	if code != exitOK || !strings.Contains(out, "config OK") || !strings.Contains(errOut, "warning: ") || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("readable secret: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	bad := writeConfig(t, strings.Replace(minimal, "[qq]\n", "[qq]\npoll_idel = \"5s\"\n", 1))
	code, out, errOut = runCommand(t, nil, "-config", bad, "-check-config")
	want := "qqgateway: " + bad + `:6: unknown key "qq.poll_idel" (did you mean "poll_idle"?)` + "\n"
	if code != exitUsage || out != "" || errOut != want {
		t.Errorf("bad config: exit %d, stdout %q, stderr %q; want 2 and %q", code, out, errOut, want)
	}

	unwritable := writeConfig(t, strings.Replace(minimal, `path = "x.db"`, `path = "/nonexistent-qqgw/x.db"`, 1))
	code, _, errOut = runCommand(t, nil, "-config", unwritable, "-check-config")
	if code != exitUsage || !strings.Contains(errOut, `key "store.path"`) || !strings.Contains(errOut, "is not writable") {
		t.Errorf("store directory not writable: exit %d, stderr %q", code, errOut)
	}

	code, _, errOut = runCommand(t, nil, "-config", filepath.Join(t.TempDir(), "missing.toml"), "-check-config")
	if code != exitUsage || !strings.Contains(errOut, "missing.toml: cannot read the configuration") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
}

// A database that cannot be opened is a runtime failure (1), reported in
// the log.
func TestStoreThatCannotOpenExits1(t *testing.T) {
	path := writeConfig(t, minimal)
	db := filepath.Join(filepath.Dir(path), "x.db")
	if err := os.WriteFile(db, bytes.Repeat([]byte("not a database "), 100), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCommand(t, nil, "-config", path)
	if code != exitFailure || !strings.Contains(errOut, "cannot open the database") {
		t.Errorf("exit %d, stderr %q; want 1 and the reason", code, errOut)
	}
}

// qqServerLine is the server line of [qq] in a test configuration.
var qqServerLine = regexp.MustCompile(`(?m)^server = "http[^"]*"$`)

// Without an XMPP server to talk to, the gateway keeps trying; a signal
// still stops it at once and cleanly, and nothing logged at debug level
// shows the secret.
func TestSignalWhileUnconnectedExits0(t *testing.T) {
	const secret = "do-not-log-me-6a1f"
	text := strings.Replace(minimal, `secret = "s"`, `secret = "`+secret+`"`, 1)
	// A port nothing listens on: the dial fails and is retried.
	text = strings.Replace(text, `server = "127.0.0.1:5347"`, `server = "127.0.0.1:1"`, 1)
	// And a password in the QQ server's URL, which must not be logged either.
	const urlPassword = "url-pass-9c2e"
	text = qqServerLine.ReplaceAllString(text, `server = "http://gw:`+urlPassword+`@127.0.0.1:8000/"`)
	path := writeConfig(t, text+"[log]\nlevel = \"debug\"\nformat = \"json\"\n")
	var stdout, stderr syncBuffer
	sigs := make(chan os.Signal, 2)
	done := make(chan int, 1)
	go func() {
		done <- command{args: []string{"-config", path}, stdout: &stdout, stderr: &stderr, getenv: noEnv, signals: sigs}.run()
	}()
	waitForLog(t, &stderr, "xmppcomp: connect failed", 10*time.Second)
	start := time.Now()
	sigs <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d, want 0; log:\n%s", code, stderr.String())
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("shutdown took %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10s after SIGTERM; log:\n%s", stderr.String())
	}
	log := stderr.String()
	if strings.Contains(log, secret) {
		t.Errorf("the secret is in the log:\n%s", log)
	}
	if strings.Contains(log, urlPassword) || !strings.Contains(log, "http://gw:xxxxx@127.0.0.1:8000/") {
		t.Errorf("the QQ server's URL is not logged with its password masked:\n%s", log)
	}
	for _, want := range []string{`"msg":"qqgateway: starting"`, `"signal":"terminated"`, `"msg":"qqgateway: stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "x.db")); err != nil {
		t.Errorf("the database was not created: %v", err)
	}
}

// waitForLog waits until the log holds want.
func waitForLog(t *testing.T, log interface{ String() string }, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log has no %q after %v:\n%s", want, timeout, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A database written by a newer version is refused untouched with exit
// code 2, like a configuration error: restarting cannot help.
func TestNewerDatabaseExits2(t *testing.T) {
	path := writeConfig(t, minimal)
	db := filepath.Join(filepath.Dir(path), "x.db")
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	raw, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	code, _, errOut := runCommand(t, nil, "-config", path)
	if code != exitUsage || !strings.Contains(errOut, "schema version 999") || !strings.Contains(errOut, "upgrade the program") {
		t.Errorf("exit %d, stderr %q; want 2 and what to do", code, errOut)
	}
}
