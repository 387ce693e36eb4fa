//go:build integration

package main

// The built binary against a real Prosody and qqsim: what an operator and a
// user observe of signals and exit codes.

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp/xmpptest"
)

func TestMain(m *testing.M) {
	code := xmpptest.Main(m)
	if err := pgServer.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// binary builds qqgateway once per test binary.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "qqgateway-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "qqgateway")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

const (
	dTransport = "qq.localhost"
	dSecret    = "daemon-test-secret-5f2c"
)

// process is a running qqgateway binary.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	done chan struct{}
	code int
}

func startBinary(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, secretEnv+"=") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill() // only the process this test started
			<-p.done
		}
		if t.Failed() || os.Getenv("QQGW_DUMP") != "" {
			t.Logf("qqgateway output:\n%s", p.out.String())
		}
	})
	return p
}

// wait returns the exit code, failing the test if the process has not
// exited within timeout.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("qqgateway did not exit within %v", timeout)
		return -1
	}
}

func (p *process) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// stack is Prosody, qqsim and a configuration for the binary.
type stack struct {
	srv    *xmpptest.Server
	sim    *qqsim.Server
	block  atomic.Bool // qqsim requests hang while set
	dir    string
	config string
	db     string
	user   string
}

func newStack(t *testing.T, secret string) *stack {
	t.Helper()
	s := &stack{dir: t.TempDir()}
	s.srv = xmpptest.SharedProsody(t, xmpptest.Options{ComponentDomain: dTransport, Secret: dSecret})
	s.sim = qqsim.New(qqsim.Options{})
	for _, a := range []qqsim.Account{
		{UIN: 10001, Password: "qq-password", Nick: "Alice", Buddies: []qqproto.UIN{20001}},
		{UIN: 20001, Password: "b", Nick: "Bob", State: qqproto.StatusOnline, Buddies: []qqproto.UIN{10001}},
	} {
		if err := s.sim.AddAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.block.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			http.Error(w, "blocked by the test", http.StatusServiceUnavailable)
			return
		}
		s.sim.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	t.Cleanup(func() { close(release) }) // before hs.Close, which waits for handlers
	s.db = filepath.Join(s.dir, "gateway.db")
	s.config = filepath.Join(s.dir, "gateway.toml")
	text := fmt.Sprintf(`[component]
jid = %q
server = %q
secret = %q
[qq]
server = %q
poll_active = "200ms"
poll_idle = "1s"
[store]
path = %q
[log]
level = "debug"
format = "json"
`, dTransport, s.srv.ComponentAddr, secret, hs.URL+"/", s.db)
	if err := os.WriteFile(s.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s.user = xmpptest.UserName(t.Name())
	return s
}

func (s *stack) bare() string { return s.user + "@" + s.srv.Domain }

// online starts the binary and brings the user online in QQ through it:
// registration, subscriptions approved, Bob seen available.
func (s *stack) online(t *testing.T, ctx context.Context) (*process, *xmpptest.Client) {
	t.Helper()
	p := startBinary(t, "-config", s.config)
	waitForLog(t, p.out, `"msg":"xmppcomp: connected"`, 20*time.Second)

	s.srv.CreateUser(t, s.user, "pw")
	c := s.srv.Login(t, ctx, s.user, "pw")
	if ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(`<iq type="get" id="r1"><query xmlns="jabber:iq:roster"/></iq>`))); err != nil || ans.Type != "result" {
		t.Fatalf("roster get: %s %v", ans, err)
	}
	if err := c.SendPresence(ctx); err != nil {
		t.Fatal(err)
	}
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(fmt.Sprintf(`<iq type="set" id="reg" to=%q>`+
		`<query xmlns="jabber:iq:register"><x xmlns="jabber:x:data" type="submit">`+
		`<field var="FORM_TYPE"><value>jabber:iq:register</value></field>`+
		`<field var="username"><value>10001</value></field><field var="password"><value>qq-password</value></field>`+
		`</x></query></iq>`, dTransport))))
	if err != nil || ans.Type != "result" {
		t.Fatalf("registration: %s %v", ans, err)
	}
	c.Expect(t, ctx, "subscribe from the gateway", xmpptest.PresenceFrom(dTransport, "subscribe"))
	c.SendXML(t, ctx, `<presence to=%q type="subscribed"/>`, dTransport)
	c.SendXML(t, ctx, `<presence to=%q type="subscribe"/>`, dTransport)
	bob := "20001@" + dTransport
	c.Expect(t, ctx, "subscribe from Bob", xmpptest.PresenceFrom(bob, "subscribe"))
	c.SendXML(t, ctx, `<presence to=%q type="subscribed"/>`, bob)
	c.SendXML(t, ctx, `<presence to=%q type="subscribe"/>`, bob)
	c.Expect(t, ctx, "Bob available", xmpptest.PresenceFrom(bob, ""))
	if !s.sim.Session(10001).LoggedIn {
		t.Fatal("the user is not logged in to QQ")
	}
	return p, c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// SIGTERM: every user sees the transport and their buddies go offline,
// QQ is logged out, the database is closed, and the exit code is 0, within
// a few seconds. The log is JSON, its session lines carry the user's JID
// and QQ number, and the secret is nowhere in it even at debug level.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	s := newStack(t, dSecret)
	ctx := testCtx(t)
	p, c := s.online(t, ctx)

	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.wait(t, 8*time.Second)
	took := time.Since(start)
	if code != exitOK {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if took > 3*time.Second {
		t.Errorf("shutdown took %v, want a few seconds at most", took)
	}
	c.Expect(t, ctx, "Bob unavailable", xmpptest.PresenceFrom("20001@"+dTransport, "unavailable"))
	c.Expect(t, ctx, "the transport unavailable", xmpptest.PresenceFrom(dTransport, "unavailable"))
	if s.sim.Session(10001).LoggedIn {
		t.Error("the QQ session survived the shutdown")
	}
	// Closed cleanly: SQLite removes the write-ahead log when the last
	// connection closes; and the registration is there for the next start.
	if _, err := os.Stat(s.db + "-wal"); !os.IsNotExist(err) {
		t.Errorf("%s-wal remains (%v): the database was not closed", s.db, err)
	}
	st, err := store.Open(ctx, s.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if r, err := st.Registration(ctx, s.bare()); err != nil || r.UIN != 10001 {
		t.Errorf("registration after restart: %+v, %v", r, err)
	}

	log := p.out.String()
	if strings.Contains(log, dSecret) {
		t.Error("the component secret is in the log")
	}
	if strings.Contains(log, "qq-password") {
		t.Error("the QQ password is in the log")
	}
	sessionLines := 0
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if _, ok := e["uin"]; ok {
			sessionLines++
			if e["jid"] != s.bare() || e["uin"] != float64(10001) {
				t.Errorf("session line without the user's JID and QQ number: %q", line)
			}
		}
	}
	if sessionLines == 0 {
		t.Error("no log line carries the user's QQ number")
	}
	for _, want := range []string{`"signal":"terminated"`, `"msg":"qqgateway: stopped"`, `"exit_code":0`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// A second signal ends a shutdown that hangs (here: QQ does not answer the
// logout) at once, with exit code 3.
func TestSecondSignalForcesExit(t *testing.T) {
	s := newStack(t, dSecret)
	ctx := testCtx(t)
	p, c := s.online(t, ctx)

	s.block.Store(true)
	p.signal(t, syscall.SIGTERM)
	// The user is told first; the logout then hangs.
	c.Expect(t, ctx, "Bob unavailable", xmpptest.PresenceFrom("20001@"+dTransport, "unavailable"))
	select {
	case <-p.done:
		t.Fatalf("exited (code %d) although the QQ logout hangs", p.code)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 2*time.Second); code != exitUnclean {
		t.Errorf("exit code %d after a second signal, want %d", code, exitUnclean)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the second signal took %v to end the process", d)
	}
	if !strings.Contains(p.out.String(), "second signal") {
		t.Error("the log does not say why the shutdown was cut short")
	}
}

// The XMPP server refusing the secret is a runtime failure: exit 1, with a
// message that says which setting to look at, and without the secret.
func TestWrongSecretExits1(t *testing.T) {
	const wrong = "not-the-secret-91c4"
	s := newStack(t, wrong)
	p := startBinary(t, "-config", s.config)
	if code := p.wait(t, 15*time.Second); code != exitFailure {
		t.Errorf("exit code %d, want 1", code)
	}
	out := p.out.String()
	if !strings.Contains(out, "refused the component secret ([component] secret or "+secretEnv+")") {
		t.Errorf("output does not say the secret was refused:\n%s", out)
	}
	if strings.Contains(out, wrong) {
		t.Error("the secret is in the output")
	}
}

// A configuration error is exit code 2, and stderr names the file, line
// and key.
func TestConfigErrorExits2(t *testing.T) {
	path := writeConfig(t, strings.Replace(minimal, "[qq]\n", "[qq]\npoll_idle = \"soon\"\n", 1))
	p := startBinary(t, "-config", path)
	if code := p.wait(t, 5*time.Second); code != exitUsage {
		t.Errorf("exit code %d, want 2", code)
	}
	want := "qqgateway: " + path + `:6: key "qq.poll_idle": want a positive duration such as "12s"; got "soon"` + "\n"
	if got := p.out.String(); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// SIGHUP applies the file's new [log] level and drops nothing: the user
// stays logged in to QQ and chatting, the component stays connected. A
// file with errors changes nothing and the log says why.
func TestSIGHUPReloadsLogLevel(t *testing.T) {
	s := newStack(t, dSecret)
	ctx := testCtx(t)
	p, c := s.online(t, ctx)
	logins := s.sim.Session(10001).Logins
	bob := "20001@" + dTransport

	quietFrom := s.reload(t, p, `level = "warn"`, `"log_level":"warn"`)
	// Logged at debug ("gateway: QQ state changed") and at info by
	// nothing: the message after it is served after it, in order.
	c.SendXML(t, ctx, `<presence><show>away</show></presence>`)
	c.SendXML(t, ctx, `<message to=%q type="chat"><body>quiet now</body></message>`, bob)
	waitFor(t, "the message in QQ", func() bool { return inboxHas(s.sim.Inbox(20001), "quiet now") })
	quietTo := s.reload(t, p, `level = "loud"`, `"msg":"qqgateway: SIGHUP: the configuration has errors; nothing reloaded, the log level and the admins stay"`)
	for _, line := range strings.Split(strings.TrimSpace(p.out.String()[quietFrom:quietTo]), "\n") {
		if strings.Contains(line, `"level":"debug"`) || strings.Contains(line, `"level":"info"`) {
			t.Errorf("logged at level warn: %s", line)
		}
	}
	if want := `gateway.toml:12: key \"log.level\": want debug, info, warn or error; got \"loud\"`; !strings.Contains(p.out.String()[quietFrom:quietTo], want) {
		t.Errorf("the log does not say what is wrong with the file (%s)", want)
	}

	loudFrom := s.reload(t, p, `level = "debug"`, `"log_level":"debug"`)
	c.SendXML(t, ctx, `<presence/>`)
	waitForLog(t, tail{p.out, loudFrom}, `"msg":"gateway: QQ state changed"`, 10*time.Second)

	s.sim.Send(20001, 10001, "still here")
	c.Expect(t, ctx, "Bob's message after the reloads", xmpptest.MessageFrom(bob))
	if got := s.sim.Session(10001); !got.LoggedIn || got.Logins != logins {
		t.Errorf("QQ session after the reloads: logged in %v, %d logins; want still logged in, %d", got.LoggedIn, got.Logins, logins)
	}
	if n := strings.Count(p.out.String(), `"msg":"xmppcomp: connected"`); n != 1 {
		t.Errorf("the component connected %d times; want once", n)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 8*time.Second); code != exitOK {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// reload puts line in place of the [log] level line of the stack's
// configuration, sends SIGHUP and waits for the log to show want; it
// returns where the log ends after that line.
func (s *stack) reload(t *testing.T, p *process, line, want string) int {
	t.Helper()
	return s.reloadEdited(t, p, func(text string) string {
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "level = ") {
				lines[i] = line
			}
		}
		return strings.Join(lines, "\n")
	}, want)
}

// reloadEdited is reload with the configuration changed by edit.
func (s *stack) reloadEdited(t *testing.T, p *process, edit func(string) string, want string) int {
	t.Helper()
	text, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.config, []byte(edit(string(text))), 0o600); err != nil {
		t.Fatal(err)
	}
	from := len(p.out.String())
	p.signal(t, syscall.SIGHUP)
	waitForLog(t, tail{p.out, from}, want, 10*time.Second)
	out := p.out.String()
	i := from + strings.Index(out[from:], want)
	return i + strings.Index(out[i:], "\n") + 1
}

// SIGHUP applies the file's new [gateway] admins: the user may run the
// stats command once listed and no longer once taken off the list; a file
// with errors leaves the list as it was.
func TestSIGHUPReloadsAdmins(t *testing.T) {
	s := newStack(t, dSecret)
	ctx := testCtx(t)
	p, c := s.online(t, ctx)
	admins := func(list string) func(string) string {
		return func(text string) string {
			if i := strings.Index(text, "[gateway]\n"); i >= 0 {
				text = text[:i] // the section is the file's last
			}
			return text + "[gateway]\nadmins = " + list + "\n"
		}
	}
	refused := "Only the gateway's administrators may run this command."
	if got := s.say(t, ctx, c, "stats"); !strings.Contains(got, refused) {
		t.Fatalf("stats before the reload: %q, want %q", got, refused)
	}
	s.reloadEdited(t, p, admins(fmt.Sprintf("[%q]", s.bare())), `"admins":1`)
	if got := s.say(t, ctx, c, "stats"); !strings.Contains(got, "Gateway statistics") || !strings.Contains(got, "Logged in to QQ: 1") {
		t.Fatalf("stats once an admin: %q", got)
	}
	s.reloadEdited(t, p, admins(`"not a list"`), `"msg":"qqgateway: SIGHUP: the configuration has errors`)
	if got := s.say(t, ctx, c, "stats"); !strings.Contains(got, "Gateway statistics") {
		t.Errorf("stats after a bad file: %q; want the admins kept", got)
	}
	s.reloadEdited(t, p, admins("[]"), `"admins":0`)
	if got := s.say(t, ctx, c, "stats"); !strings.Contains(got, refused) {
		t.Errorf("stats once off the list: %q, want %q", got, refused)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 8*time.Second); code != exitOK {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// say sends line to the transport in a chat and returns the body of its
// answer.
func (s *stack) say(t *testing.T, ctx context.Context, c *xmpptest.Client, line string) string {
	t.Helper()
	c.SendXML(t, ctx, `<message to=%q type="chat"><body>%s</body></message>`, dTransport, line)
	st := c.Expect(t, ctx, "the transport's answer to "+line, xmpptest.MessageFrom(dTransport))
	var m struct {
		Body string `xml:"body"`
	}
	if err := st.Decode(&m); err != nil {
		t.Fatalf("answer to %s: %s: %v", line, st, err)
	}
	return m.Body
}

// tail is the log from an offset on.
type tail struct {
	log  *syncBuffer
	from int
}

func (t tail) String() string { return t.log.String()[t.from:] }

func inboxHas(in []qqsim.InboxItem, text string) bool {
	for _, it := range in {
		if it.Text == text {
			return true
		}
	}
	return false
}

// waitFor waits until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
