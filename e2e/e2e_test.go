//go:build e2e

package e2e

import (
	"bufio"
	"context"
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

// The journey's world and the user who lives it (testdata/world.toml).
const (
	worldFile  = "testdata/world.toml"
	qqUser     = "20001"
	qqPassword = "correct horse"
	xmppHost   = "localhost"
	transport  = "qq.localhost"
	xmppUser   = "traveller" // with a random suffix (xmpptest.UserName)
	xmppPass   = "旅行 password"
)

// TestJourney runs the whole user journey (journey.py) once against Prosody
// and once against ejabberd, each with its own qqsim and gateway.
func TestJourney(t *testing.T) {
	requirePython(t)
	bins := build(t)
	t.Run("prosody", func(t *testing.T) {
		t.Parallel()
		srv := xmpptest.StartProsody(t, serverOptions(t, "prosody e2e secret"))
		journey(t, bins, srv, false)
	})
	t.Run("ejabberd", func(t *testing.T) {
		t.Parallel()
		srv := xmpptest.StartEjabberd(t, serverOptions(t, "ejabberd e2e secret"))
		// This run hands the gateway its secret through the environment
		// rather than the file, the way a deployment keeps it out of config.
		journey(t, bins, srv, true)
	})
}

var summary = regexp.MustCompile(`^(\d+) passed, (\d+) failed$`)

func journey(t *testing.T, bins binaries, srv *xmpptest.Server, secretInEnv bool) {
	user := xmpptest.UserName(xmppUser)
	srv.CreateUser(t, user, xmppPass)
	simProc, simURL := startQQSim(t, bins.qqsim, srv.Dir, worldFile)

	gwLog := filepath.Join(srv.Dir, "qqgateway.log")
	cfg := filepath.Join(srv.Dir, "gateway.toml")
	secret := srv.Secret
	fileSecret, env := secret, []string(nil)
	if secretInEnv {
		fileSecret, env = "", []string{"QQGW_COMPONENT_SECRET=" + secret}
	}
	if err := os.WriteFile(cfg, []byte(gatewayConfig(srv.ComponentAddr, fileSecret, simURL, filepath.Join(srv.Dir, "gateway.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := start(t, "qqgateway", gwLog, env, bins.gateway, "-config", cfg)

	dump := func() {
		t.Logf("--- %s: last lines of the gateway's log (%s):\n%s", srv.Kind, gwLog, tail(gwLog, 60))
		t.Logf("--- %s: last lines of %s:\n%s", srv.Kind, srv.LogFile, tail(srv.LogFile, 30))
		t.Logf("--- %s: last lines of qqsim's log:\n%s", srv.Kind, tail(simProc.log, 20))
	}

	abs, err := filepath.Abs(worldFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "journey.py",
		"--server", srv.ClientAddr,
		"--jid", user+"@"+srv.Domain, "--password", xmppPass,
		"--transport", transport, "--sim", simURL, "--world", abs,
		"--qq", qqUser, "--qq-password", qqPassword)
	if testing.Verbose() && os.Getenv("E2E_STANZAS") != "" {
		cmd.Args = append(cmd.Args, "--verbose")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var failed []string
	var sum string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		t.Logf("%s: %s", srv.Kind, line)
		if strings.HasPrefix(line, "FAIL ") {
			failed = append(failed, line)
		}
		if summary.MatchString(line) {
			sum = line
		}
	}
	runErr := cmd.Wait()

	if !gw.running() {
		t.Errorf("the gateway exited during the journey: %v", gw.err)
	}
	stopErr, killed := gw.stop(10 * time.Second)
	if killed {
		t.Errorf("the gateway did not stop within 10s of SIGTERM")
	} else if stopErr != nil {
		t.Errorf("the gateway's exit after SIGTERM: %v", stopErr)
	}
	logText, _ := os.ReadFile(gwLog)
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if strings.Contains(string(logText), bad) {
			t.Errorf("the gateway's output contains %q", bad)
		}
	}
	for _, s := range []string{secret, "correct horse"} {
		if strings.Contains(string(logText), s) {
			t.Errorf("a secret (%q) reached the gateway's log", s)
		}
	}

	switch {
	case sum == "":
		t.Errorf("%s: the journey ended without its summary line (%v)", srv.Kind, runErr)
	case runErr != nil || len(failed) > 0:
		t.Errorf("%s: %s (exit: %v):\n%s", srv.Kind, sum, runErr, strings.Join(failed, "\n"))
	}
	if t.Failed() {
		dump()
	}
}

// gatewayConfig is a gateway.toml for the suite: loopback everywhere, fast
// polling so that the journey's waits stay short.
func gatewayConfig(componentAddr, secret, simURL, db string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[component]\njid = %q\nserver = %q\n", transport, componentAddr)
	if secret != "" {
		fmt.Fprintf(&b, "secret = %q\n", secret)
	}
	fmt.Fprintf(&b, "\n[qq]\nserver = %q\npoll_active = \"200ms\"\npoll_idle = \"500ms\"\ntimeout = \"5s\"\n", simURL+"/")
	fmt.Fprintf(&b, "\n[store]\npath = %q\n", db)
	fmt.Fprintf(&b, "\n[log]\nlevel = \"debug\"\nformat = \"text\"\n")
	return b.String()
}
