//go:build e2e

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp/xmpptest"
)

const (
	xmppHost  = "localhost"
	transport = "qq.localhost"
	qqPass    = "chaos"
)

// stack is the running chain: Prosody, qqsim and the gateway, each of
// which the driver may kill and restart.
type stack struct {
	t       *testing.T
	dir     string
	bins    binaries
	srv     *xmpptest.Server
	sim     *proc
	simURL  string
	gw      *proc
	gwCfg   string
	metrics string // host:port of the gateway's /metrics and /readyz
	disk    *disk  // nil when the database is not on a disk of its own
	led     *ledger
	starts  int // gateway starts so far
	t0      time.Time
}

// userUIN and buddyUIN number the QQ world: user i (from 0) is 30001+i,
// and has buddies 40001+2i and 40002+2i.
func userUIN(i int) qqproto.UIN     { return qqproto.UIN(30001 + i) }
func buddyUIN(i, b int) qqproto.UIN { return qqproto.UIN(40001 + 2*i + b) }

const buddiesPerUser = 2

// worldTOML is qqsim's world: each user's account with its buddies, and
// the buddies, online, listing the user back.
func worldTOML(users int) string {
	var b strings.Builder
	for i := range users {
		fmt.Fprintf(&b, "[[account]]\nuin = %d\npassword = %q\nnick = \"user %d\"\nbuddies = [", userUIN(i), qqPass, i)
		for k := range buddiesPerUser {
			if k > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%d", buddyUIN(i, k))
		}
		b.WriteString("]\n\n")
		for k := range buddiesPerUser {
			fmt.Fprintf(&b, "[[account]]\nuin = %d\npassword = \"x\"\nnick = \"buddy %d.%d\"\nstate = 10\nbuddies = [%d]\n\n",
				buddyUIN(i, k), i, k, userUIN(i))
		}
	}
	return b.String()
}

// newStack starts Prosody, qqsim and the gateway. With diskFault the
// gateway's database lives on a small tmpfs of its own (root only).
func newStack(t *testing.T, bins binaries, led *ledger, users int, diskFault bool) *stack {
	t.Helper()
	s := &stack{t: t, bins: bins, led: led, dir: runDir(t)}
	opts := xmpptest.Options{Domain: xmppHost, ComponentDomain: transport, Secret: "chaos secret"}
	opts.Dir = filepath.Join(s.dir, "prosody")
	s.srv = xmpptest.StartProsody(t, opts)

	world := filepath.Join(s.dir, "world.toml")
	if err := os.WriteFile(world, []byte(worldTOML(users)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s.simURL = "http://" + addr
	s.sim = start(t, "qqsim", filepath.Join(s.dir, "qqsim.log"), bins.qqsim, "-listen", addr, "-world", world)
	if err := waitUntil(s.sim, 20*time.Second, httpOK(s.simURL+"/_sim/stats")); err != nil {
		t.Fatalf("%v\n%s", err, tail(s.sim.log, 20))
	}

	dbDir := filepath.Join(s.dir, "db")
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if diskFault {
		s.disk = mountDisk(t, dbDir)
	}
	s.metrics = freeAddr(t)
	s.gwCfg = filepath.Join(s.dir, "gateway.toml")
	if err := os.WriteFile(s.gwCfg, []byte(s.gatewayConfig(filepath.Join(dbDir, "gateway.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	s.startGateway()
	return s
}

// runDir is the run's directory: configurations, logs, the database. It
// is removed after a passing run, unless CHAOS_KEEP is set, and kept after
// a failing one, for reading the logs.
func runDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "qqxmpp-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CHAOS_KEEP") != "" {
			fmt.Printf("chaos: the run's logs and database stay in %s\n", d)
			return
		}
		os.RemoveAll(d)
	})
	return d
}

// gatewayConfig polls fast and backs off little, so that a fault's effect
// shows within the run.
func (s *stack) gatewayConfig(db string) string {
	return fastGatewayConfig(s.srv, s.simURL+"/", fmt.Sprintf("[store]\npath = %q\n", db), s.metrics)
}

// fastGatewayConfig is the chaos tests' gateway configuration for the
// component of srv, QQ at qqURL, metrics on metrics, with store (and any
// other sections) as given.
func fastGatewayConfig(srv *xmpptest.Server, qqURL, store, metrics string) string {
	return fmt.Sprintf(`[component]
jid = %q
server = %q
secret = %q
[gateway]
shutdown_timeout = "2s"
[qq]
server = %q
poll_active = "200ms"
poll_idle = "500ms"
timeout = "3s"
login_backoff_min = "1s"
login_backoff_max = "3s"
%s[log]
level = "info"
format = "text"
[metrics]
listen = %q
`, transport, srv.ComponentAddr, srv.Secret, qqURL, store, metrics)
}

// startGateway starts the gateway and waits until it is ready (component
// connected, database writable).
func (s *stack) startGateway() {
	s.t.Helper()
	s.starts++
	s.gw = start(s.t, "qqgateway", filepath.Join(s.dir, "qqgateway.log"), s.bins.gateway, "-config", s.gwCfg)
	s.waitGateway()
}

func (s *stack) waitGateway() {
	s.t.Helper()
	if err := waitUntil(s.gw, 30*time.Second, httpOK("http://"+s.metrics+"/readyz")); err != nil {
		s.t.Fatalf("%v\n%s", err, tail(s.gw.log, 30))
	}
}

// killGateway is kill -9 of the gateway. It notes the messages the kernel
// still held unread in its component socket, and the time from its stop
// to its socket's end, in which whatever Prosody wrote to it was lost; an
// error says why it could not tell (the kill happened all the same).
func (s *stack) killGateway() (unread []string, err error) {
	k, err := killReading(s.gw.cmd.Process.Pid, portOf(s.srv.ComponentAddr), s.gw.kill)
	s.led.unread(idsIn(k.unread), "gateway: unread in its socket")
	s.led.deadBetween(k.stopped, k.closed, "gateway: sent while it was stopped")
	return idsIn(k.unread), err
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// restartProsody stops Prosody with SIGTERM, or with SIGKILL when hard,
// and starts it again on the same ports and data. After a SIGKILL it notes
// the messages its clients' sockets still held unread, and those sent
// from its stop to its restart, which went into sockets of a dead
// process, and returns the former.
func (s *stack) restartProsody(hard bool) (unread []string, err error) {
	s.t.Helper()
	if hard {
		pid, err := os.ReadFile(filepath.Join(s.srv.Dir, "prosody.pid"))
		if err != nil {
			s.t.Fatalf("Prosody's pid file: %v", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
		if err != nil || n <= 1 {
			s.t.Fatalf("Prosody's pid file holds %q", pid)
		}
		var k killed
		k, err = killReading(n, portOf(s.srv.ClientAddr), func() { _ = syscall.Kill(-n, syscall.SIGKILL) })
		unread = idsIn(k.unread)
		s.led.unread(unread, "prosody: unread in a client's socket")
		defer func() { s.led.deadBetween(k.stopped, time.Now(), "prosody: sent while it was stopped or down") }()
	}
	s.srv.Restart(s.t) // after a SIGKILL, Stop only reaps
	return unread, err
}

// setFaults sets qqsim's faults; the zero Faults turns them off.
func (s *stack) setFaults(f qqsim.Faults) {
	s.t.Helper()
	if err := s.postSim("/_sim/faults", f); err != nil {
		s.t.Fatal(err)
	}
}

// inject makes buddy send text to uin in QQ.
func (s *stack) inject(from, to qqproto.UIN, text string) error {
	return s.postSim("/_sim/send", map[string]any{"from": from, "to": to, "text": text})
}

func (s *stack) postSim(path string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, err := httpClient.Post(s.simURL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, msg)
	}
	return nil
}

func (s *stack) getSim(path string, v any) error {
	resp, err := httpClient.Get(s.simURL + path)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// inbox is what qqsim delivered to uin.
func (s *stack) inbox(uin qqproto.UIN) ([]qqsim.InboxItem, error) {
	var in []qqsim.InboxItem
	return in, s.getSim(fmt.Sprintf("/_sim/inbox/%d", uin), &in)
}

func (s *stack) session(uin qqproto.UIN) (qqsim.SessionInfo, error) {
	var si qqsim.SessionInfo
	return si, s.getSim(fmt.Sprintf("/_sim/session/%d", uin), &si)
}

// kick logs uin in to QQ from elsewhere, then out, which ends the session
// the gateway uses: its next request gets RES=20 and it logs in again. A
// user logged in on a second device does the same to a real session.
func (s *stack) kick(ctx context.Context, uin qqproto.UIN) error {
	c := qqproto.NewClient(uin, qqproto.Options{Server: s.simURL + "/", MaxAttempts: 10, RetryBackoff: 20 * time.Millisecond, Timeout: 3 * time.Second})
	if _, err := c.Login(ctx, qqproto.PasswordMD5(qqPass)); err != nil {
		return fmt.Errorf("kick %d: login: %w", uin, err)
	}
	if err := c.Logout(ctx); err != nil {
		return fmt.Errorf("kick %d: logout: %w", uin, err)
	}
	return nil
}

// reconnects reads the gateway's qqgateway_component_reconnects_total.
func (s *stack) reconnects() (int, error) {
	resp, err := httpClient.Get("http://" + s.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "qqgateway_component_reconnects_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int(f), err
		}
	}
	return 0, errors.New("no qqgateway_component_reconnects_total in /metrics")
}

// disk is a small tmpfs under the gateway's database, which fill makes
// full and free empties again.
type disk struct {
	dir    string
	filler string
}

// diskSize is the tmpfs's size: room for the run's database many times
// over, small enough to fill in a moment.
const diskSize = "64m"

func mountDisk(t *testing.T, dir string) *disk {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+diskSize+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s for the full disk: %v\n%s(-chaos.disk=false, or make chaos CHAOS_DISK=false, leaves that fault out)", dir, err, out)
	}
	// Registered before the gateway starts, so it runs after the gateway's
	// cleanup has stopped it.
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CHAOS_KEEP") != "" {
			saveDB(t, dir, dir+"-saved")
		}
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return &disk{dir: dir, filler: filepath.Join(dir, "filler")}
}

// saveDB copies the gateway's database files out of the tmpfs before it
// goes, for reading after a failed run.
func saveDB(t *testing.T, from, to string) {
	files, _ := filepath.Glob(filepath.Join(from, "gateway.db*"))
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Log(err)
		return
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(filepath.Join(to, filepath.Base(f)), data, 0o600)
		}
		if err != nil {
			t.Logf("saving the database: %v", err)
		}
	}
}

// fill writes the filler file until the disk is full.
func (d *disk) fill() error {
	f, err := os.OpenFile(d.filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	// Big writes, then page-sized ones for the last pages.
	for _, size := range []int{1 << 20, 4 << 10} {
		buf := make([]byte, size)
		for {
			_, err := f.Write(buf)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				return fmt.Errorf("filling %s: %w", d.dir, err)
			}
		}
	}
	return nil
}

func (d *disk) free() error { return os.Remove(d.filler) }
