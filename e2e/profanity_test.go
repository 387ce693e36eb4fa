//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"qqxmpp/xmppcomp/xmpptest"
)

// screenWait bounds every wait for text on Profanity's screen.
const screenWait = 20 * time.Second

// requireProgram fails the test when CI is set and a program is missing,
// and skips it loudly otherwise, like requirePython.
func requireProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is missing (%v); on Debian: apt-get install -y %s", name, err, pkg)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return path
}

// TestProfanity drives Profanity, an unmodified client from Debian, through
// the user's first steps with the built gateway on Prosody: connect,
// register by chat with the transport, see the buddies online under their
// QQ nicknames, chat with the echo bot, run a command. It types into a tmux
// pane and reads the screen, as a user would.
func TestProfanity(t *testing.T) {
	profanity := requireProgram(t, "profanity", "profanity")
	requireProgram(t, "tmux", "tmux")
	bins := build(t)
	opts := serverOptions(t, "profanity e2e secret")
	opts.RosterPrivilege = true // the roster gets the QQ nicknames at once
	srv := xmpptest.StartProsody(t, opts)
	user := xmpptest.UserName("prof")
	srv.CreateUser(t, user, xmppPass)
	simProc, simURL := startQQSim(t, bins.qqsim, srv.Dir, worldFile)
	gwLog := filepath.Join(srv.Dir, "qqgateway.log")
	cfg := filepath.Join(srv.Dir, "gateway.toml")
	if err := os.WriteFile(cfg, []byte(gatewayConfig(srv.ComponentAddr, srv.Secret, simURL, filepath.Join(srv.Dir, "gateway.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := start(t, "qqgateway", gwLog, nil, bins.gateway, "-config", cfg)

	s := startScreen(t, profanity)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- Profanity's screen:\n%s", s.capture())
			t.Logf("--- the gateway's log:\n%s", tail(gwLog, 60))
			t.Logf("--- %s:\n%s", srv.LogFile, tail(srv.LogFile, 30))
			t.Logf("--- qqsim:\n%s", tail(simProc.log, 20))
		}
	})
	s.waitFor("Profanity's console", "Profanity")

	s.typeLine(fmt.Sprintf("/connect %s@%s server 127.0.0.1 port %s tls disable", user, srv.Domain, port(t, srv.ClientAddr)))
	s.waitFor("the password prompt", "Enter password")
	s.typeLine(xmppPass)
	s.waitFor("the login", "logged in successfully")

	// Registration by chat: the transport asks for the number, then the
	// password.
	s.typeLine("/msg " + transport + " register")
	s.waitFor("the question for the QQ number", "QQ number?")
	s.typeLine(qqUser)
	s.waitFor("the question for the password", "QQ password?")
	s.typeLine(qqPassword)
	s.waitFor("the registration's confirmation", "Registered with QQ number "+qqUser)

	// The console reports the buddies online under their QQ nicknames, and
	// its roster panel files them by presence.
	s.typeLine("/win 1")
	for _, nick := range []string{"小明,小红&朋友们=好", "Alice", "回声机器人"} {
		s.waitFor(nick+" reported online", "++ "+nick+" (qq) is online")
	}
	s.waitFor("the busy buddy reported away", "++ 忙碌的老王 (qq) is away")
	s.waitUntil("the roster panel", func(screen string) error {
		return checkRoster(screen, map[string][]string{
			"Online":  {"小明,小红&朋友们=好", "Alice", "回声机器人"},
			"Away":    {"忙碌的老王"},
			"Offline": {"隐身的小李", "离线的老赵"},
		})
	})

	// The echo bot answers in the chat window, under its nickname.
	s.typeLine("/msg 20010@" + transport + " hello from Profanity 你好")
	s.waitFor("the echo bot's reply", "回声机器人: hello from Profanity 你好")

	// A chat command of the transport: help lists the commands.
	s.typeLine("/msg " + transport + " help")
	s.waitFor("the command list", "sync — Sync QQ contacts")

	// The same command as an ad-hoc command (XEP-0050): listed, then run;
	// Profanity shows its result form.
	s.typeLine("/cmd list " + transport)
	s.waitForMatch("the ad-hoc command list", regexp.MustCompile(`Ad hoc commands:(?s:.*)! +sync *\n`))
	s.typeLine("/cmd exec sync " + transport)
	s.waitFor("the sync command's result", "Form title: QQ contacts synced")
	s.waitFor("the size of the buddy list", "On your QQ buddy list: 6")

	if !gw.running() {
		t.Errorf("the gateway exited: %v", gw.err)
	}
	logText, _ := os.ReadFile(gwLog)
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:", qqPassword} {
		if strings.Contains(string(logText), bad) {
			t.Errorf("the gateway's output contains %q", bad)
		}
	}
}

func port(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("no port in %q", addr)
	}
	return addr[i+1:]
}

// screen is Profanity running in a tmux server of its own, with a fresh
// HOME, on a wide pane so that the roster panel shows whole nicknames.
type screen struct {
	t    *testing.T
	sock string
	env  []string
}

func startScreen(t *testing.T, profanity string) *screen {
	t.Helper()
	home := t.TempDir()
	s := &screen{t: t, sock: filepath.Join(home, "tmux.sock"),
		env: []string{"HOME=" + home, "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TERM=xterm-256color",
			"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_DATA_HOME=" + filepath.Join(home, ".local", "share")}}
	s.tmux("-f", "/dev/null", "new-session", "-d", "-s", "e2e", "-x", "200", "-y", "70", profanity)
	t.Cleanup(func() { _, _ = s.run("kill-server") })
	return s
}

func (s *screen) run(args ...string) (string, error) {
	cmd := exec.Command("tmux", append([]string{"-u", "-S", s.sock}, args...)...)
	cmd.Env = append(os.Environ(), s.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (s *screen) tmux(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// typeLine types text literally, then Enter.
func (s *screen) typeLine(text string) {
	s.t.Helper()
	s.tmux("send-keys", "-t", "e2e", "-l", text)
	s.tmux("send-keys", "-t", "e2e", "Enter")
}

func (s *screen) capture() string {
	out, err := s.run("capture-pane", "-p", "-J", "-t", "e2e")
	if err != nil {
		return err.Error()
	}
	return out
}

// waitUntil polls the screen until ok accepts it, for screenWait at most.
func (s *screen) waitUntil(what string, ok func(screen string) error) {
	s.t.Helper()
	deadline := time.Now().Add(screenWait)
	for {
		err := ok(s.capture())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not on Profanity's screen within %v: %v", what, screenWait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForMatch polls the screen until re matches it.
func (s *screen) waitForMatch(what string, re *regexp.Regexp) {
	s.t.Helper()
	s.waitUntil(what, func(screen string) error {
		if !re.MatchString(screen) {
			return fmt.Errorf("wanted %q", re)
		}
		return nil
	})
}

func (s *screen) waitFor(what, text string) {
	s.t.Helper()
	s.waitForMatch(what, regexp.MustCompile(regexp.QuoteMeta(text)))
}

// panelItem is the last column of a screen line: what the roster panel
// shows there, right of the last run of three blanks or more.
var panelItem = regexp.MustCompile(`^.* {3,}(\S.*?) *$`)

// panelHeader is a section of Profanity's roster panel: "Online (0)".
var panelHeader = regexp.MustCompile(`^(.+) \(\d+\)$`)

// checkRoster checks that each section of the roster panel lists the
// given names. The panel is the right column of the console; a line of
// console text with wide gaps could add a stray item to a section, but not
// move a name out of it.
func checkRoster(screen string, want map[string][]string) error {
	got := map[string]map[string]bool{}
	section := ""
	for _, line := range strings.Split(screen, "\n") {
		m := panelItem.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if h := panelHeader.FindStringSubmatch(m[1]); h != nil {
			section = h[1]
			continue
		}
		if got[section] == nil {
			got[section] = map[string]bool{}
		}
		got[section][m[1]] = true
	}
	for sec, names := range want {
		for _, name := range names {
			if !got[sec][name] {
				return fmt.Errorf("%q is not under %q in the roster panel (it shows %v)", name, sec, got)
			}
		}
	}
	return nil
}
