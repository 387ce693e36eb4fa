package main

import (
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
	"syscall"
	"time"

	"qqxmpp/xmppcomp/xmpptest"
)

const (
	domain          = "localhost"
	componentDomain = "qq.localhost"
)

// proc is a process the benchmark started, in its own process group so
// that stopping it signals exactly what was started.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

func startProc(name, dir string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".out")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) usage() (usage, error) { return readUsage(p.pid()) }

// stop sends SIGTERM to the group and waits, SIGKILL after grace.
func (p *proc) stop(grace time.Duration) error {
	pg := p.pid()
	_ = syscall.Kill(-pg, syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-pg, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("%s ignored SIGTERM for %v; killed", p.name, grace)
	}
}

// tail returns the last lines of the process's output, for errors.
func (p *proc) tail() string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "--- " + p.log + ":\n" + strings.Join(lines, "\n")
}

// stack is Prosody, qqsim and qqgateway, started from dir.
type stack struct {
	dir                       string
	bin                       string // the built binaries
	prosody, qqsim, gateway   *proc
	clientAddr, componentAddr string
	simURL                    string
	metricsAddr, pprofAddr    string
	secret                    string
	accounts                  accountWriter
	prosodyGC                 string // "" for Prosody's default
	gcPercent                 int    // the gateway's [gateway] gc_percent; 0 for Go's default
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// pprofHook is added to cmd/qqgateway at build time with go build
// -overlay when -pprof is given, so that the benchmark can profile the
// relay phase: cmd/qqgateway has no profiling endpoint of its own, and its
// source is not the benchmark's to change. QQBENCH_PPROF names a loopback
// address; POST /start and /stop bracket a CPU profile written to the
// file QQBENCH_PPROF_FILE (with "."+suffix added when the query has
// one); POST /heap writes the heap in use, after a
// collection, to that name with ".heap" added; GET /goroutine answers with
// every goroutine's stack, grouped (what the gateway waits on, for a look
// by hand during a run).
const pprofHook = `package main

import (
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
)

func init() {
	addr := os.Getenv("QQBENCH_PPROF")
	if addr == "" {
		return
	}
	var f *os.File
	mux := http.NewServeMux()
	mux.HandleFunc("POST /start", func(w http.ResponseWriter, r *http.Request) {
		var err error
		name := os.Getenv("QQBENCH_PPROF_FILE")
		if q := r.URL.Query().Get("suffix"); q != "" {
			name += "." + q
		}
		if f, err = os.Create(name); err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		pprof.StopCPUProfile()
		if f != nil {
			f.Close()
		}
	})
	mux.HandleFunc("POST /heap", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		h, err := os.Create(os.Getenv("QQBENCH_PPROF_FILE") + ".heap")
		if err == nil {
			err = pprof.WriteHeapProfile(h)
			h.Close()
		}
		if err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("GET /goroutine", func(w http.ResponseWriter, r *http.Request) {
		pprof.Lookup("goroutine").WriteTo(w, 1)
	})
	go http.ListenAndServe(addr, mux)
}
`

// build compiles qqgateway and qqsim into dir/bin from the module at root.
func build(ctx context.Context, root, dir string, withPprof bool) (string, error) {
	bin := filepath.Join(dir, "bin")
	args := []string{"build", "-o", bin + "/"}
	if withPprof {
		hook := filepath.Join(dir, "qqbench_pprof.go")
		overlay := filepath.Join(dir, "overlay.json")
		ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{
			filepath.Join(root, "cmd", "qqgateway", "zz_qqbench_pprof.go"): hook}})
		if err := os.WriteFile(hook, []byte(pprofHook), 0o600); err != nil {
			return "", err
		}
		if err := os.WriteFile(overlay, ov, 0o600); err != nil {
			return "", err
		}
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "./cmd/qqgateway", "./cmd/qqsim")
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// moduleRoot is the directory of the go.mod qqbench runs in.
func moduleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run qqbench inside the qqxmpp module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

// gcConfig is the global line that sets Prosody's garbage collector
// (Prosody 0.12's gc option, util/gc.lua), or nothing for its default.
// Lua 5.4's generational mode only traverses what is young at most
// collections; the incremental default (threshold 105) goes over the whole
// heap, every session's state included, each time it grew by 5 %.
func gcConfig(mode string) []byte {
	switch mode {
	case "generational":
		return []byte("gc = { mode = \"generational\" }\n")
	case "incremental":
		return []byte("gc = { mode = \"incremental\", threshold = 200, speed = 200 }\n")
	}
	return nil
}

// startProsody writes the configuration (xmpptest's template, the one the
// tests and the demo run with) and starts Prosody; the accounts are
// written beforehand by the caller through s.accounts.
func (s *stack) startProsody() error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	s.clientAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	s.componentAddr = "127.0.0.1:" + strconv.Itoa(ports[1])
	cfg, err := xmpptest.RenderConfig(xmpptest.Prosody, xmpptest.ConfigValues{Domain: domain,
		ComponentDomain: componentDomain, Secret: s.secret, ClientPort: ports[0], ComponentPort: ports[1], Dir: s.dir})
	if err != nil {
		return err
	}
	for _, d := range []string{"data", "certs"} {
		if err := os.MkdirAll(filepath.Join(s.dir, d), 0o700); err != nil {
			return err
		}
	}
	cfg = append(append(gcConfig(s.prosodyGC), cfg...), echoConfig(s.secret)...)
	conf := filepath.Join(s.dir, "prosody.cfg.lua")
	if err := os.WriteFile(conf, cfg, 0o600); err != nil {
		return err
	}
	if s.prosody, err = startProc("prosody", s.dir, nil, "prosody", "--config", conf, "-F"); err != nil {
		return err
	}
	return waitFor(30*time.Second, s.prosody, func() bool { return dialable(s.clientAddr) && dialable(s.componentAddr) })
}

func (s *stack) startQQSim(world string) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	s.simURL = "http://" + addr + "/"
	s.qqsim, err = startProc("qqsim", s.dir, nil, filepath.Join(s.bin, "qqsim"), "-listen", addr, "-world", world, "-log-level", "warn")
	if err != nil {
		return err
	}
	return waitFor(60*time.Second, s.qqsim, func() bool { return dialable(addr) })
}

// gatewayConfig is the gateway's configuration: the example's defaults
// but for the addresses, and logging at warn (info logs every
// registration, which is not what is measured).
func (s *stack) gatewayConfig() string {
	return fmt.Sprintf(`[component]
jid = %q
server = %q
[gateway]
gc_percent = %d
[qq]
server = %q
[store]
path = %q
[log]
level = "warn"
[metrics]
listen = %q
`, componentDomain, s.componentAddr, s.gcPercent, s.simURL, filepath.Join(s.dir, "gateway.db"), s.metricsAddr)
}

func (s *stack) startGateway() error {
	if s.metricsAddr == "" {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		s.metricsAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
		s.pprofAddr = "127.0.0.1:" + strconv.Itoa(ports[1])
	}
	conf := filepath.Join(s.dir, "gateway.toml")
	if err := os.WriteFile(conf, []byte(s.gatewayConfig()), 0o600); err != nil {
		return err
	}
	env := []string{"QQGW_COMPONENT_SECRET=" + s.secret, "QQBENCH_PPROF=" + s.pprofAddr,
		"QQBENCH_PPROF_FILE=" + filepath.Join(s.dir, "relay.pprof")}
	var err error
	if s.gateway, err = startProc("qqgateway", s.dir, env, filepath.Join(s.bin, "qqgateway"), "-config", conf); err != nil {
		return err
	}
	return waitFor(30*time.Second, s.gateway, func() bool { return httpOK("http://" + s.metricsAddr + "/readyz") })
}

func (s *stack) stop() {
	for _, p := range []*proc{s.gateway, s.qqsim, s.prosody} {
		if p != nil {
			_ = p.stop(10 * time.Second)
		}
	}
}

func waitFor(d time.Duration, p *proc, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited while starting\n%s", p.name, p.tail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v\n%s", p.name, d, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

var httpc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func httpOK(url string) bool {
	resp, err := httpc.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// sim calls qqsim's control API: body nil is a GET.
func (s *stack) sim(ctx context.Context, path string, body, out any) error {
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		method, rd = http.MethodPost, strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, s.simURL+"_sim/"+path, rd)
	if err != nil {
		return err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return fmt.Errorf("qqsim %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("qqsim %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("qqsim %s: %s: %s", path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// pprofCall starts or stops the gateway's CPU profile (the -pprof hook).
func (s *stack) pprofCall(what string) error {
	resp, err := httpc.Post("http://"+s.pprofAddr+"/"+strings.TrimPrefix(what, "/"), "text/plain", nil)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", what, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s", what, resp.Status)
	}
	return nil
}

func randomSecret() string { return crand.Text() }
