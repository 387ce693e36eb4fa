//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"qqxmpp/xmppcomp/xmpptest"
)

// python is Debian's interpreter, which has python3-slixmpp; a pyenv or
// virtualenv python3 earlier in PATH would not.
const python = "/usr/bin/python3"

// requirePython fails the test when CI is set and slixmpp is missing, and
// skips it loudly otherwise: never a silent pass. xmpptest does the same
// for the servers.
func requirePython(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		msg := fmt.Sprintf("%s with slixmpp is missing (%v); on Debian: apt-get install -y python3-slixmpp", python, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
}

// binaries are the built programs under test.
type binaries struct{ gateway, qqsim string }

var (
	buildOnce sync.Once
	buildDir  string // removed by TestMain
	built     binaries
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// build compiles cmd/qqgateway and cmd/qqsim once per test binary, with the
// race detector unless E2E_RACE=0: a data race in the real chain fails the
// suite.
func build(t *testing.T) binaries {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "qqxmpp-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		args := []string{"build", "-o", dir + string(filepath.Separator)}
		if os.Getenv("E2E_RACE") != "0" {
			args = append(args, "-race")
		}
		args = append(args, "qqxmpp/cmd/qqgateway", "qqxmpp/cmd/qqsim")
		cmd := exec.Command(goBin, args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		built = binaries{gateway: filepath.Join(dir, "qqgateway"), qqsim: filepath.Join(dir, "qqsim")}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// proc is a started program: its own process group (so that stopping it
// reaches its helpers too, like ejabberd's erl_child_setup) and a
// parent-death signal (so that a crashed test leaves nothing behind).
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string // where its stdout and stderr go
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

func start(t *testing.T, name, logFile string, env []string, bin string, args ...string) *proc {
	t.Helper()
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(logFile)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logFile, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(5 * time.Second) })
	return p
}

// stop sends SIGTERM to the group, waits up to grace, then kills the
// group. It returns the program's exit error and whether it had to kill.
func (p *proc) stop(grace time.Duration) (error, bool) {
	pgid := p.cmd.Process.Pid
	select {
	case <-p.exited:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return p.err, false
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	killed := false
	select {
	case <-p.exited:
	case <-time.After(grace):
		killed = true
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // helpers left in the group
	return p.err, killed
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// tail returns the last n lines of a log file, for failure messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitUntil polls ready until it returns nil, p exits, or timeout passes.
func waitUntil(p *proc, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	err := errors.New("not tried")
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		}
		if err = ready(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", p.name, timeout, err)
}

// serverOptions are the options of the suite's XMPP server: the journey's
// domains, the given secret, the log level info or E2E_SERVER_LOG (debug
// shows Prosody's and ejabberd's view of every stanza), and with E2E_KEEP
// set a directory that stays afterwards, logged for reading the logs.
func serverOptions(t *testing.T, secret string) xmpptest.Options {
	t.Helper()
	o := xmpptest.Options{Domain: xmppHost, ComponentDomain: transport, Secret: secret, LogLevel: os.Getenv("E2E_SERVER_LOG")}
	if os.Getenv("E2E_KEEP") != "" {
		dir, err := os.MkdirTemp("", "qqxmpp-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("E2E_KEEP: configurations and logs stay in %s", dir)
		o.Dir = dir
	}
	return o
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startQQSim runs the emulator with a world file and waits for its control
// API; it returns the base URL.
func startQQSim(t *testing.T, bin, dir, world string) (*proc, string) {
	t.Helper()
	world, err := filepath.Abs(world)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := start(t, "qqsim", filepath.Join(dir, "qqsim.log"), nil, bin, "-listen", addr, "-world", world)
	base := "http://" + addr
	err = waitUntil(p, 20*time.Second, func() error {
		resp, err := http.Get(base + "/_sim/stats")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /_sim/stats: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(p.log, 20))
	}
	return p, base
}
