package xmpptest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"mellium.im/xmpp/jid"
)

// Server kinds.
const (
	Prosody  = "prosody"
	Ejabberd = "ejabberd"
)

const startTimeout = 30 * time.Second

// Options describe the server to start. Zero fields take defaults.
type Options struct {
	ComponentDomain string // default "component." + Domain
	Secret          string // default: random
	Domain          string // the server's own virtual host; default "localhost"
	LogLevel        string // the server's log level: "info" (default) or "debug"
	// Dir holds the configuration, data and logs, and is left in place
	// afterwards (for reading the logs); default a temporary directory that
	// is removed.
	Dir string
	// RosterPrivilege grants the component XEP-0356 roster access (get
	// and set) to the users of Domain; Prosody needs prosody-modules.
	RosterPrivilege bool
}

func (o Options) withDefaults() (Options, error) {
	if o.Domain == "" {
		o.Domain = "localhost"
	}
	if o.ComponentDomain == "" {
		o.ComponentDomain = "component." + o.Domain
	}
	if o.Secret == "" {
		o.Secret = crand.Text()
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	return o, checkDomains(o.Domain, o.ComponentDomain)
}

// checkDomains rejects what the templates could not quote or the servers
// could not serve.
func checkDomains(domain, component string) error {
	for _, d := range []string{domain, component} {
		j, err := jid.Parse(d)
		if err != nil || j.Localpart() != "" || j.Resourcepart() != "" || strings.ContainsAny(d, " \"'\\\n") {
			return fmt.Errorf("xmpptest: %q is not a plain domain", d)
		}
	}
	if domain == component {
		return fmt.Errorf("xmpptest: Domain and ComponentDomain are both %q", domain)
	}
	return nil
}

// Server is a real Prosody or ejabberd running on loopback in a temporary
// directory, on free ports, with one component entry. Only the processes it
// started are ever signalled (by process group).
type Server struct {
	Kind            string // Prosody or Ejabberd
	Domain          string // the server's virtual host, where users live
	ComponentDomain string
	Secret          string
	ComponentAddr   string // host:port for xmppcomp.Config.Server
	ClientAddr      string // host:port of the c2s listener
	Dir             string // config, data and logs
	ConfigFile      string
	LogFile         string // the server's own log
	// Node is the Erlang node name of an ejabberd in a Cluster
	// ("ejabberd1@localhost"); empty for a lone server, which runs without
	// Erlang distribution.
	Node string

	apiAddr    string // ejabberd's HTTP API, used to create users
	erlLibs    string // ejabberd: ERL_LIBS
	logLevel   string
	privileged bool // Options.RosterPrivilege
	balance    int  // ejabberd: domain_balancing's component_number, 0 for none
	dist       *distribution

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	paused bool
}

// StartProsody starts a Prosody for the test and stops it at cleanup.
// Without the prosody binary the test is skipped loudly, or fails when the
// CI environment variable is set.
func StartProsody(t testing.TB, opts Options) *Server {
	t.Helper()
	return start(t, Prosody, opts, dirFor(t, opts), true)
}

// StartEjabberd is StartProsody for ejabberd. The server is started with
// erl directly (no epmd, no Erlang distribution, no system directories), so
// it needs no root and leaves nothing behind.
func StartEjabberd(t testing.TB, opts Options) *Server {
	t.Helper()
	return start(t, Ejabberd, opts, dirFor(t, opts), true)
}

// Start is StartProsody or StartEjabberd, by kind.
func Start(t testing.TB, kind string, opts Options) *Server {
	t.Helper()
	return start(t, kind, opts, dirFor(t, opts), true)
}

// EachKind runs f as a subtest of t, a *testing.T or *testing.B, once per
// server kind: Prosody, then Ejabberd.
func EachKind[T interface{ Run(string, func(T)) bool }](t T, f func(t T, kind string)) {
	for _, k := range []string{Prosody, Ejabberd} {
		t.Run(k, func(t T) { f(t, k) })
	}
}

func dirFor(t testing.TB, opts Options) string {
	if opts.Dir != "" {
		return opts.Dir
	}
	return t.TempDir()
}

func start(t testing.TB, kind string, opts Options, dir string, cleanup bool) *Server {
	t.Helper()
	s, err := newServer(kind, opts, dir)
	if err != nil {
		failSetup(t, err)
	}
	return launch(t, s, cleanup)
}

// failSetup fails the test, or skips it loudly when a server is not
// installed and CI is not set.
func failSetup(t testing.TB, err error) {
	t.Helper()
	var missing *missingError
	if errors.As(err, &missing) {
		if os.Getenv("CI") != "" {
			t.Fatalf("xmpptest: %v", err)
		}
		t.Skipf("SKIPPING (set CI=1 to make this a failure): %v", err)
	}
	t.Fatal(err)
}

// launch starts s, retrying on fresh ports, and stops it at cleanup if
// asked to.
func launch(t testing.TB, s *Server, cleanup bool) *Server {
	t.Helper()
	if cleanup {
		t.Cleanup(func() { s.stop() })
	}
	// Free ports can be taken by someone else between probing and binding;
	// try a few fresh sets before giving up.
	for attempt := 0; ; attempt++ {
		err := s.start()
		if err == nil {
			return s
		}
		if attempt == 2 {
			t.Fatalf("xmpptest: starting %s: %v", s.Kind, err)
		}
		t.Logf("xmpptest: starting %s failed, retrying on other ports: %v", s.Kind, err)
		if err := s.allocate(); err != nil {
			t.Fatal(err)
		}
	}
}

type missingError struct{ what, install string }

func (e *missingError) Error() string {
	return fmt.Sprintf("%s not found; install it with: %s", e.what, e.install)
}

// prosodyPrivilegeModule is where Debian's prosody-modules puts
// mod_privilege (XEP-0356).
const prosodyPrivilegeModule = "/usr/lib/prosody/modules/mod_privilege/mod_privilege.lua"

func newServer(kind string, opts Options, dir string) (*Server, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("xmpptest: %w", err)
	}
	s := &Server{Kind: kind, Domain: opts.Domain, ComponentDomain: opts.ComponentDomain, Secret: opts.Secret,
		Dir: dir, LogFile: filepath.Join(dir, kind+".log"), logLevel: opts.LogLevel, privileged: opts.RosterPrivilege}
	switch kind {
	case Prosody:
		if _, err := exec.LookPath("prosody"); err != nil {
			return nil, &missingError{"prosody (the XMPP server binary)", "apt-get install -y prosody"}
		}
		if _, err := exec.LookPath("prosodyctl"); err != nil {
			return nil, &missingError{"prosodyctl", "apt-get install -y prosody"}
		}
		if opts.RosterPrivilege {
			if _, err := os.Stat(prosodyPrivilegeModule); err != nil {
				return nil, &missingError{"Prosody's mod_privilege (" + prosodyPrivilegeModule + ")", "apt-get install -y prosody-modules"}
			}
		}
		s.ConfigFile = filepath.Join(dir, "prosody.cfg.lua")
		for _, d := range []string{"data", "certs"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
				return nil, err
			}
		}
	case Ejabberd:
		if _, err := exec.LookPath("erl"); err != nil {
			return nil, &missingError{"erl (Erlang, needed by ejabberd)", "apt-get install -y ejabberd"}
		}
		s.erlLibs = findEjabberdLibs()
		if s.erlLibs == "" {
			return nil, &missingError{"ejabberd (its ebin/ejabberd.app)", "apt-get install -y ejabberd"}
		}
		s.ConfigFile = filepath.Join(dir, "ejabberd.yml")
		if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("xmpptest: unknown server kind %q", kind)
	}
	return s, s.allocate()
}

// findEjabberdLibs returns the directory to put in ERL_LIBS so that erl finds
// the ejabberd application and its dependencies.
func findEjabberdLibs() string {
	if d := os.Getenv("XMPPTEST_EJABBERD_LIBS"); d != "" {
		return d
	}
	for _, pattern := range []string{
		"/usr/lib/*/ejabberd-*/ebin/ejabberd.app", // Debian, Ubuntu
		"/usr/lib/ejabberd*/ebin/ejabberd.app",
		"/usr/lib/erlang/lib/ejabberd-*/ebin/ejabberd.app",
		"/usr/lib64/erlang/lib/ejabberd-*/ebin/ejabberd.app",
		"/opt/ejabberd*/lib/ejabberd-*/ebin/ejabberd.app",
	} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return filepath.Dir(filepath.Dir(filepath.Dir(m[0])))
		}
	}
	return ""
}

// allocate picks free loopback ports and writes the configuration.
func (s *Server) allocate() error {
	n := 2
	if s.Kind == Ejabberd {
		n = 3
	}
	ports, err := freePorts(n)
	if err != nil {
		return err
	}
	s.ClientAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	s.ComponentAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	v := ConfigValues{Domain: s.Domain, ComponentDomain: s.ComponentDomain, Secret: s.Secret,
		ClientPort: ports[0], ComponentPort: ports[1], Dir: s.Dir, LogLevel: s.logLevel, RosterPrivilege: s.privileged,
		ComponentNumber: s.balance}
	if s.Kind == Ejabberd {
		s.apiAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2]))
		v.APIPort = ports[2]
	}
	text, err := RenderConfig(s.Kind, v)
	if err != nil {
		return err
	}
	return os.WriteFile(s.ConfigFile, text, 0o600)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("xmpptest: finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start starts the server again after Stop, on the same ports and data.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 5s). Data is kept.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Logf("xmpptest: stopping %s: %v", s.Kind, err)
	}
}

// Restart is Stop then Start: same ports, same data; connections drop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

// Kill kills the server's processes (SIGKILL), as a crash or a lost
// machine would: connections drop without a word, and an ejabberd node's
// cluster peers see it go down. Data is kept; Start brings it back.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatalf("xmpptest: %s is not running", s.Kind)
	}
	s.kill()
}

// Pause freezes the server's processes (SIGSTOP): connections stay open but
// nothing is answered, like a hung server. Resume undoes it.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGSTOP, true)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGCONT, false)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal, paused bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatalf("xmpptest: %s is not running", s.Kind)
	}
	if err := syscall.Kill(-s.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("xmpptest: signal %v to %s: %v", sig, s.Kind, err)
	}
	s.paused = paused
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("%s already running", s.Kind)
	}
	var cmd *exec.Cmd
	switch s.Kind {
	case Prosody:
		cmd = exec.Command("prosody", "--config", s.ConfigFile, "-F")
	case Ejabberd:
		// What ejabberdctl foreground does, minus the system directories,
		// and, outside a cluster, the node name and epmd.
		args := []string{"-noinput", "-noshell", "+K", "true"}
		if s.dist != nil {
			args = append(args, s.dist.args(s.Node)...)
		}
		args = append(args, "-mnesia", "dir", strconv.Quote(filepath.Join(s.Dir, "db")), "-s", "ejabberd")
		cmd = exec.Command("erl", args...)
		cmd.Env = append(os.Environ(),
			"ERL_LIBS="+s.erlLibs,
			"EJABBERD_CONFIG_PATH="+s.ConfigFile,
			"EJABBERD_LOG_PATH="+s.LogFile,
			"ERL_CRASH_DUMP="+filepath.Join(s.Dir, "erl_crash.dump"),
		)
		if s.dist != nil {
			cmd.Env = append(cmd.Env, s.dist.env())
		}
	}
	cmd.Dir = s.Dir
	out, err := os.OpenFile(filepath.Join(s.Dir, "output.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group so that stop signals exactly what we started;
	// Pdeathsig so that a crashed test binary does not leave servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.Kind, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.paused = cmd, exited, false

	if err := s.waitReady(exited); err != nil {
		s.kill()
		return fmt.Errorf("%s did not come up: %w\n%s", s.Kind, err, s.logTail())
	}
	return nil
}

func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	addrs := []string{s.ClientAddr, s.ComponentAddr}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("exited: %v", s.cmd.ProcessState)
		default:
		}
		ready := true
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err != nil {
				ready = false
				break
			}
			c.Close()
		}
		if ready && s.Kind == Ejabberd {
			var status string
			ready = s.api(context.Background(), "status", struct{}{}, &status) == nil && strings.Contains(status, "started")
		}
		if ready {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not listening on %v after %v", addrs, startTimeout)
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT) // a paused server must see the TERM
	var err error
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		err = errors.New("did not exit within 5s of SIGTERM; killed")
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	// Helpers of the server (ejabberd's erl_child_setup) share the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	s.cmd = nil
	return err
}

// kill is for a failed start; s.mu is held.
func (s *Server) kill() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

func (s *Server) logTail() string {
	var b strings.Builder
	for _, f := range []string{s.LogFile, filepath.Join(s.Dir, "output.log")} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Fprintf(&b, "--- last lines of %s:\n%s\n", f, strings.Join(lines, "\n"))
	}
	return b.String()
}

// CreateUser registers user with password on the server's Domain and
// returns the bare JID. An existing user gets the new password.
func (s *Server) CreateUser(t testing.TB, user, password string) jid.JID {
	t.Helper()
	j, err := s.createUser(user, password)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	return j
}

func (s *Server) createUser(user, password string) (jid.JID, error) {
	j, err := jid.New(user, s.Domain, "")
	if err != nil {
		return jid.JID{}, fmt.Errorf("create user %q: %w", user, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	switch s.Kind {
	case Prosody:
		cmd := exec.CommandContext(ctx, "prosodyctl", "--config", s.ConfigFile, "register", j.Localpart(), s.Domain, password)
		cmd.Dir = s.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return jid.JID{}, fmt.Errorf("prosodyctl register %s: %w\n%s", j, err, out)
		}
	case Ejabberd:
		req := map[string]string{"user": j.Localpart(), "host": s.Domain, "password": password}
		var res any
		if err := s.api(ctx, "register", req, &res); err != nil {
			if !strings.Contains(err.Error(), "already registered") {
				return jid.JID{}, fmt.Errorf("register %s: %w", j, err)
			}
			req["newpass"] = password
			delete(req, "password")
			if err := s.api(ctx, "change_password", req, &res); err != nil {
				return jid.JID{}, fmt.Errorf("change password of %s: %w", j, err)
			}
		}
	}
	return j, nil
}

// api calls ejabberd's HTTP API (mod_http_api).
func (s *Server) api(ctx context.Context, command string, args, result any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.apiAddr+"/api/"+command, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ejabberd api %s: %s: %s", command, resp.Status, data)
	}
	if err := json.Unmarshal(data, result); err != nil {
		return fmt.Errorf("ejabberd api %s: %w: %s", command, err, data)
	}
	return nil
}

// String describes the server for logs.
func (s *Server) String() string {
	return fmt.Sprintf("%s (c2s %s, component %s for %s, dir %s)", s.Kind, s.ClientAddr, s.ComponentAddr, s.ComponentDomain, s.Dir)
}
