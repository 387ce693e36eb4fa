//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// python is Debian's interpreter, which has python3-slixmpp; a pyenv or
// virtualenv python3 earlier in PATH would not.
const python = "/usr/bin/python3"

const installHint = "apt-get install -y prosody ejabberd python3-slixmpp"

// require fails the test when CI is set and what is missing, and skips it
// loudly otherwise: never a silent pass.
func require(t *testing.T, what, why string) {
	t.Helper()
	msg := fmt.Sprintf("%s is missing (%s); on Debian: %s", what, why, installHint)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED: " + msg)
}

func requirePython(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import slixmpp").Run(); err != nil {
		require(t, python+" with slixmpp", err.Error())
	}
}

func requireProsody(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"prosody", "prosodyctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			require(t, bin, err.Error())
		}
	}
}

// ejabberdLibs is the ERL_LIBS directory holding ejabberd and its
// dependencies, "" if ejabberd is not installed.
func ejabberdLibs() string {
	for _, pattern := range []string{
		"/usr/lib/*/ejabberd-*/ebin/ejabberd.app", // Debian, Ubuntu
		"/usr/lib/erlang/lib/ejabberd-*/ebin/ejabberd.app",
		"/usr/lib64/erlang/lib/ejabberd-*/ebin/ejabberd.app",
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return filepath.Dir(filepath.Dir(filepath.Dir(m[0])))
		}
	}
	return ""
}

func requireEjabberd(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("erl"); err != nil {
		require(t, "erl (Erlang, for ejabberd)", err.Error())
	}
	libs := ejabberdLibs()
	if libs == "" {
		require(t, "ejabberd", "no ejabberd-*/ebin/ejabberd.app under /usr/lib")
	}
	return libs
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

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// writeCert writes a self-signed certificate for the names into dir/tls.crt
// and dir/tls.key, as scripts/demo.sh does with openssl.
func writeCert(t *testing.T, dir string, names ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
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

func listening(addrs ...string) func() error {
	return func() error {
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	}
}

// serverLogLevel is the servers' log level: info, or E2E_SERVER_LOG (debug
// shows Prosody's and ejabberd's view of every stanza).
func serverLogLevel() string {
	if l := os.Getenv("E2E_SERVER_LOG"); l != "" {
		return l
	}
	return "info"
}

// workDir is a scratch directory for one server's run: removed afterwards,
// unless E2E_KEEP is set, when its path is logged for reading the logs.
func workDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("E2E_KEEP") == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "qqxmpp-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("E2E_KEEP: configurations and logs stay in %s", dir)
	return dir
}

// xmppServer is a running Prosody or ejabberd with the component configured.
type xmppServer struct {
	kind          string
	dir           string
	host          string
	clientAddr    string
	componentAddr string
	logFile       string // the server's own log
	proc          *proc
	createUser    func(user, password string) error
}

// serverVars are the placeholder values common to both templates.
func serverVars(dir, host, component, secret string, c2s, comp int) map[string]string {
	return map[string]string{
		"DIR": dir, "LOG_LEVEL": serverLogLevel(), "HOST": host,
		"C2S_PORT": strconv.Itoa(c2s), "COMPONENT_PORT": strconv.Itoa(comp),
		"COMPONENT_DOMAIN": component, "COMPONENT_SECRET": secret,
	}
}

func startProsody(t *testing.T, dir, host, component, secret string) *xmppServer {
	t.Helper()
	ports := freePorts(t, 2)
	s := &xmppServer{
		kind: "prosody", dir: dir, host: host,
		clientAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		componentAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		logFile:       filepath.Join(dir, "prosody.log"),
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeCert(t, dir, host, component)
	cfg := filepath.Join(dir, "prosody.cfg.lua")
	if err := renderFile("testdata/prosody.cfg.lua", cfg, serverVars(dir, host, component, secret, ports[0], ports[1])); err != nil {
		t.Fatal(err)
	}
	s.createUser = func(user, password string) error {
		out, err := exec.Command("prosodyctl", "--config", cfg, "register", user, host, password).CombinedOutput()
		if err != nil {
			return fmt.Errorf("prosodyctl register %s@%s: %v\n%s", user, host, err, out)
		}
		return nil
	}
	s.proc = start(t, "prosody", filepath.Join(dir, "prosody.out"), nil, "prosody", "--config", cfg, "-F")
	if err := waitUntil(s.proc, 20*time.Second, listening(s.clientAddr, s.componentAddr)); err != nil {
		t.Fatalf("%v\n%s\n%s", err, tail(s.proc.log, 20), tail(s.logFile, 20))
	}
	return s
}

func startEjabberd(t *testing.T, libs, dir, host, component, secret string) *xmppServer {
	t.Helper()
	ports := freePorts(t, 3)
	s := &xmppServer{
		kind: "ejabberd", dir: dir, host: host,
		clientAddr:    net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		componentAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		logFile:       filepath.Join(dir, "ejabberd.log"),
	}
	api := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2])) + "/api/"
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	vars := serverVars(dir, host, component, secret, ports[0], ports[1])
	delete(vars, "DIR")
	vars["API_PORT"] = strconv.Itoa(ports[2])
	cfg := filepath.Join(dir, "ejabberd.yml")
	if err := renderFile("testdata/ejabberd.yml", cfg, vars); err != nil {
		t.Fatal(err)
	}
	call := func(command string, args any) (string, error) {
		body, _ := json.Marshal(args)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api+command, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("ejabberd api %s: %s: %s", command, resp.Status, data)
		}
		return string(data), nil
	}
	s.createUser = func(user, password string) error {
		_, err := call("register", map[string]string{"user": user, "host": host, "password": password})
		return err
	}
	// What ejabberdctl foreground does, without the system directories, a
	// node name or epmd: nothing outside dir is touched.
	s.proc = start(t, "ejabberd", filepath.Join(dir, "ejabberd.out"), []string{
		"ERL_LIBS=" + libs,
		"EJABBERD_CONFIG_PATH=" + cfg,
		"EJABBERD_LOG_PATH=" + s.logFile,
		"ERL_CRASH_DUMP=" + filepath.Join(dir, "erl_crash.dump"),
	}, "erl", "-noinput", "-noshell", "+K", "true",
		"-mnesia", "dir", strconv.Quote(filepath.Join(dir, "db")), "-s", "ejabberd")
	ready := listening(s.clientAddr, s.componentAddr)
	err := waitUntil(s.proc, 60*time.Second, func() error {
		if err := ready(); err != nil {
			return err
		}
		st, err := call("status", struct{}{})
		if err == nil && !strings.Contains(st, "started") {
			err = fmt.Errorf("status %s", st)
		}
		return err
	})
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, tail(s.proc.log, 20), tail(s.logFile, 20))
	}
	return s
}

// startQQSim runs the emulator with a world file and waits for its control
// API; it returns the base URL.
func startQQSim(t *testing.T, bin, dir, world string) (*proc, string) {
	t.Helper()
	world, err := filepath.Abs(world)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0]))
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
