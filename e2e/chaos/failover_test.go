//go:build e2e

package chaos

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store/storetest"
	"qqxmpp/xmppcomp/xmpptest"
)

var (
	flagFailUsers  = flag.Int("failover.users", 20, "XMPP users of the failover test")
	flagFailN      = flag.Int("failover.n", 200, "messages each way in the failover test")
	flagFailWindow = flag.Duration("failover.window", 40*time.Second, "how long the failover test's messages are spread over")
)

// takeoverBound is the bound: a dead process's users are served
// by another within it.
const takeoverBound = 15 * time.Second

// gwProc is one gateway process of the cluster.
type gwProc struct {
	name    string // its cluster.owner
	node    int    // the ejabberd node it connects to
	qqAddr  string // the address of qqsim it uses, which tells its requests apart
	cfg     string
	metrics string
	log     string
	p       *proc
}

// cluster is the failover test's chain: a two-node ejabberd cluster that
// balances the transport over two slots, PostgreSQL, qqsim, and two
// gateway processes, one per node. It embeds the chaos suite's stack for
// qqsim and the ledger; its srv is node 1.
type failover struct {
	*stack
	cl   *xmpptest.Cluster
	gws  [2]*gwProc
	reqs *requestLog
}

func TestFailover(t *testing.T) {
	if _, err := storetest.BinDir(); err != nil {
		t.Fatal(err) // no silent skip: PostgreSQL is part of what is tested
	}
	bins := build(t, false)
	led := newLedger()
	f := newFailover(t, bins, led, *flagFailUsers)
	users := f.registerUsers(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readers sync.WaitGroup
	for _, u := range users {
		readers.Go(func() { u.run(ctx) })
	}
	defer readers.Wait()
	defer cancel()
	go f.reqs.collect(ctx, f.stack, users)
	waitLoggedIn(t, f.stack, users, 60*time.Second)
	f.reqs.snapshot(f.stack, users)
	before := f.servedBy(users)
	t.Logf("served by: %s", describeServed(before))
	if n := countServed(before); n[0] == 0 || n[1] == 0 {
		t.Fatalf("users by process %v: want both processes to serve some", n)
	}

	// Traffic both ways; the process serving the first user dies mid-way.
	phase := &phaseNow{}
	phase.set("before the kill")
	tr := &traffic{hurry: newHurry(), st: f.stack, led: led, users: users, phase: phase, n: *flagFailN, window: *flagFailWindow}
	f.t0 = time.Now()
	sent := make(chan struct{})
	go func() { defer close(sent); tr.run(ctx) }()
	time.Sleep(*flagFailWindow / 4)

	victim := before[0]
	survivor := 1 - victim
	phase.set("kill -9 of " + f.gws[victim].name)
	// Bursts from every user through the kill, the empty slot and the
	// leases' expiry, on top of the paced messages.
	go func() {
		for _, d := range []time.Duration{0, 300, 300, 300, 300, 500, 1000, 2000, 3000} {
			time.Sleep(d * time.Millisecond)
			tr.hurry.now()
		}
	}()
	killed, slotTaken := f.kill(t, victim, survivor)
	phase.set("after the takeover")
	takeover := f.waitTakeover(t, users, before, victim, survivor, killed)
	t.Logf("%s killed (kill -9): its slot had no connection for %v; its %d users were logged in to QQ by %s after %v (the slowest)",
		f.gws[victim].name, slotTaken.Sub(killed).Round(time.Millisecond), countServed(before)[victim], f.gws[survivor].name, takeover.Round(time.Millisecond))
	<-sent
	drained := drainQueues(t, f.stack, tr, 60*time.Second)

	// The killed process comes back and takes its share again.
	restarted := time.Now()
	f.startGateway(t, victim)
	rejoined := f.waitShare(t, users, victim, restarted)
	t.Logf("%s restarted: it served %d users again after %v", f.gws[victim].name, countServed(f.servedBy(users))[victim], rejoined.Round(time.Millisecond))

	// Both processes serve; a last round of messages reaches everyone.
	phase.set("after the rejoin")
	last := &traffic{hurry: newHurry(), st: f.stack, led: led, users: users, phase: phase, n: 2 * len(users), window: 5 * time.Second}
	last.nextQQ.Store(tr.nextQQ.Load())
	last.nextXMPP.Store(tr.nextXMPP.Load())
	last.run(ctx)
	drained = drainQueues(t, f.stack, last, 60*time.Second) && drained

	f.reqs.snapshot(f.stack, users)
	overlaps := f.reqs.overlaps()
	sum := led.summarize()
	f.report(t, sum, drained, overlaps, takeover)
}

func newFailover(t *testing.T, bins binaries, led *ledger, users int) *failover {
	t.Helper()
	f := &failover{stack: &stack{t: t, bins: bins, led: led, dir: runDir(t)}, reqs: newRequestLog()}
	opts := xmpptest.Options{Domain: xmppHost, ComponentDomain: transport, Secret: "failover secret", Dir: filepath.Join(f.dir, "ejabberd")}
	f.cl = xmpptest.StartEjabberdCluster(t, xmpptest.ClusterOptions{Options: opts, ComponentNumber: 2})
	f.srv = f.cl.Nodes[0]

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, err := storetest.Start(ctx, storetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Stop() })
	db, err := pg.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", pg.Password()) // the gateways' environment

	// qqsim on every loopback address: each gateway uses its own, and
	// qqsim's request log tells them apart by it.
	world := filepath.Join(f.dir, "world.toml")
	if err := os.WriteFile(world, []byte(worldTOML(users)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	f.simURL = "http://127.0.0.1:" + port
	f.sim = start(t, "qqsim", filepath.Join(f.dir, "qqsim.log"), bins.qqsim, "-listen", "0.0.0.0:"+port, "-world", world)
	if err := waitUntil(f.sim, 20*time.Second, httpOK(f.simURL+"/_sim/stats")); err != nil {
		t.Fatalf("%v\n%s", err, tail(f.sim.log, 20))
	}

	for i, name := range []string{"gw-a", "gw-b"} {
		g := &gwProc{name: name, node: i, qqAddr: fmt.Sprintf("127.0.0.%d:%s", i+1, port), metrics: freeAddr(t),
			cfg: filepath.Join(f.dir, name+".toml"), log: filepath.Join(f.dir, name+".log")}
		text := clusterGatewayConfig(f.cl.Nodes[i], g, pg.DSN(db))
		if err := os.WriteFile(g.cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		f.gws[i] = g
		f.startGateway(t, i)
	}
	return f
}

func clusterGatewayConfig(node *xmpptest.Server, g *gwProc, dsn string) string {
	return fastGatewayConfig(node, "http://"+g.qqAddr+"/",
		fmt.Sprintf("[store]\ndriver = \"postgres\"\ndsn = %q\n[cluster]\nowner = %q\nslots = 2\n", dsn, g.name), g.metrics)
}

// startGateway starts gateway i and waits until it is connected.
func (f *failover) startGateway(t *testing.T, i int) {
	t.Helper()
	g := f.gws[i]
	g.p = start(t, g.name, g.log, f.bins.gateway, "-config", g.cfg)
	if err := waitUntil(g.p, 60*time.Second, httpOK("http://"+g.metrics+"/readyz")); err != nil {
		t.Fatalf("%v\n%s", err, tail(g.log, 30))
	}
}

// registerUsers creates the users, half of them on each node, and
// registers each with the transport (whichever process their slot is
// routed to).
func (f *failover) registerUsers(t *testing.T) []*user {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	users := make([]*user, *flagFailUsers)
	for i := range users {
		u := &user{n: i, name: xmpptest.UserName(fmt.Sprintf("failover%d", i)), password: "xmpp password",
			srv: f.cl.Nodes[i%2], led: f.led, ready: make(chan struct{})}
		u.srv.CreateUser(t, u.name, u.password) // on the node the user logs in to
		if err := u.register(ctx); err != nil {
			t.Fatalf("%v\n--- gw-a:\n%s\n--- gw-b:\n%s", err, tail(f.gws[0].log, 20), tail(f.gws[1].log, 20))
		}
		users[i] = u
		t.Cleanup(func() {
			if c, err := u.client(context.Background()); err == nil && c != nil {
				c.Close()
			}
		})
	}
	return users
}

// servedBy is the process each user's QQ number was last logged in by,
// from qqsim's request log: the address of its last LOGIN.
func (f *failover) servedBy(users []*user) map[int]int {
	out := map[int]int{}
	for _, u := range users {
		out[u.n] = -1
		for _, r := range f.reqs.of(userUIN(u.n)) {
			if r.Cmd == "LOGIN" && r.Res == 0 {
				out[u.n] = f.processOf(r.Via)
			}
		}
	}
	return out
}

func (f *failover) processOf(via string) int {
	for i, g := range f.gws {
		if g.qqAddr == via {
			return i
		}
	}
	return -1
}

func countServed(by map[int]int) map[int]int {
	n := map[int]int{}
	for _, p := range by {
		n[p]++
	}
	return n
}

func describeServed(by map[int]int) string {
	n := countServed(by)
	return fmt.Sprintf("gw-a %d users, gw-b %d users, none %d", n[0], n[1], n[-1])
}

// kill is kill -9 of gateway victim. It notes the messages its component
// socket held unread and, as lost to ejabberd rather than to the gateway,
// those the users sent until the survivor's new connection held the freed
// slot: ejabberd 23.01 drops a stanza for a slot without a connection,
// without an error. It returns when the kill began and when the slot was
// held again.
func (f *failover) kill(t *testing.T, victim, survivor int) (killed, slotTaken time.Time) {
	t.Helper()
	g, s := f.gws[victim], f.gws[survivor]
	mark := logSize(s.log)
	k, err := killReading(g.p.cmd.Process.Pid, portOf(f.cl.Nodes[g.node].ComponentAddr), g.p.kill)
	if err != nil {
		t.Logf("kill -9 of %s: reading its socket: %v", g.name, err)
	}
	f.led.unread(idsIn(k.unread), g.name+": unread in its socket")
	slotTaken = waitLogLine(t, s.log, mark, "primary=false", 30*time.Second)
	f.led.deadBetween(k.stopped, slotTaken, "ejabberd: the slot had no connection")
	return k.stopped, slotTaken
}

// waitTakeover waits until every user the victim served is logged in to
// QQ by the survivor, and returns how long the slowest took from the kill.
func (f *failover) waitTakeover(t *testing.T, users []*user, before map[int]int, victim, survivor int, killed time.Time) time.Duration {
	t.Helper()
	var slowest time.Duration
	deadline := killed.Add(2 * takeoverBound)
	for _, u := range users {
		if before[u.n] != victim {
			continue
		}
		for {
			f.reqs.snapshotOne(f.stack, userUIN(u.n))
			if at, ok := f.reqs.loginAfter(userUIN(u.n), f.gws[survivor].qqAddr, killed); ok {
				slowest = max(slowest, at.Sub(killed))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("QQ %d not logged in by %s within %v of the kill\n--- %s:\n%s", userUIN(u.n), f.gws[survivor].name,
					2*takeoverBound, f.gws[survivor].name, tail(f.gws[survivor].log, 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return slowest
}

// waitShare waits until the restarted process serves some users again.
func (f *failover) waitShare(t *testing.T, users []*user, i int, since time.Time) time.Duration {
	t.Helper()
	deadline := since.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, u := range users {
			f.reqs.snapshotOne(f.stack, userUIN(u.n))
			if at, ok := f.reqs.loginAfter(userUIN(u.n), f.gws[i].qqAddr, since); ok {
				return at.Sub(since)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s, restarted, served no user within 60s\n--- its log:\n%s\n--- the other's:\n%s", f.gws[i].name,
		tail(f.gws[i].log, 30), tail(f.gws[1-i].log, 30))
	return 0
}

func (f *failover) report(t *testing.T, sum summary, drained bool, overlaps []string, takeover time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== failover: %d users, %d messages each way, %v\n", len(f.reqs.byUIN), *flagFailN, time.Since(f.t0).Round(time.Second))
	if !drained {
		fmt.Fprintf(&b, "the queues did not drain within the bound: the lost below may still have been on their way\n")
	}
	sum.print(&b)
	fmt.Fprintf(&b, "QQ numbers used by two processes at once: %d\n", len(overlaps))
	for _, o := range overlaps {
		fmt.Fprintf(&b, "  %s\n", o)
	}
	for _, g := range f.gws {
		text, _ := os.ReadFile(g.log)
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if strings.Contains(string(text), bad) {
				t.Errorf("%s's output contains %q", g.name, bad)
			}
		}
	}
	fmt.Print(b.String())
	if n := sum.failures(true); n > 0 {
		t.Errorf("failover: %d lost, %d doubled, %d reported as failed although delivered", sum.total.lost, sum.total.doubled, sum.total.falseErr)
	}
	if len(overlaps) > 0 {
		t.Errorf("failover: %d QQ numbers were used by two processes at once", len(overlaps))
	}
	if takeover > takeoverBound {
		t.Errorf("failover: the dead process's users waited up to %v for the other, want at most %v", takeover, takeoverBound)
	}
}

// ---- qqsim's request log, kept whole ----

// requestLog keeps every request qqsim recorded for the users' numbers:
// qqsim keeps the newest 256 per number, so it is read often.
type requestLog struct {
	mu    sync.Mutex
	byUIN map[qqproto.UIN]map[string]qqsim.RequestRecord // by a key of each record
}

func newRequestLog() *requestLog {
	return &requestLog{byUIN: map[qqproto.UIN]map[string]qqsim.RequestRecord{}}
}

func (l *requestLog) collect(ctx context.Context, st *stack, users []*user) {
	for ctx.Err() == nil {
		l.snapshot(st, users)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (l *requestLog) snapshot(st *stack, users []*user) {
	for _, u := range users {
		l.snapshotOne(st, userUIN(u.n))
	}
}

func (l *requestLog) snapshotOne(st *stack, uin qqproto.UIN) {
	var recs []qqsim.RequestRecord
	if err := st.getSim(fmt.Sprintf("/_sim/requests/%d", uin), &recs); err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.byUIN[uin]
	if m == nil {
		m = map[string]qqsim.RequestRecord{}
		l.byUIN[uin] = m
	}
	for _, r := range recs {
		m[fmt.Sprintf("%s %s %s %s %d", r.At.Format(time.RFC3339Nano), r.Via, r.Cmd, r.Seq, r.Res)] = r
	}
}

// of returns uin's requests in time order.
func (l *requestLog) of(uin qqproto.UIN) []qqsim.RequestRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]qqsim.RequestRecord, 0, len(l.byUIN[uin]))
	for _, r := range l.byUIN[uin] {
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// loginAfter reports the first successful LOGIN of uin via addr after t.
func (l *requestLog) loginAfter(uin qqproto.UIN, via string, t time.Time) (time.Time, bool) {
	for _, r := range l.of(uin) {
		if r.Cmd == "LOGIN" && r.Res == 0 && r.Via == via && r.At.After(t) {
			return r.At, true
		}
	}
	return time.Time{}, false
}

// overlaps lists the numbers some process kept using after another had
// logged them in: once a LOGIN came via one address, a request via another
// before that one logs in again means two processes served the number at
// once (QQ takes one login per number, so they would throw each other
// out).
func (l *requestLog) overlaps() []string {
	l.mu.Lock()
	uins := make([]qqproto.UIN, 0, len(l.byUIN))
	for u := range l.byUIN {
		uins = append(uins, u)
	}
	l.mu.Unlock()
	sort.Slice(uins, func(i, j int) bool { return uins[i] < uins[j] })
	var out []string
	for _, uin := range uins {
		owner := ""
		for _, r := range l.of(uin) {
			switch {
			case r.Cmd == "LOGIN":
				owner = r.Via
			case owner != "" && r.Via != owner:
				out = append(out, fmt.Sprintf("QQ %d: %s %s via %s after a LOGIN via %s", uin, r.At.Format("15:04:05.000"), r.Cmd, r.Via, owner))
			}
		}
	}
	return out
}

// ---- logs ----

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitLogLine waits until path has a line containing want after offset
// from, and returns when it was first seen (checked every 5ms).
func waitLogLine(t *testing.T, path string, from int64, want string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		data, _ := os.ReadFile(path)
		if int64(len(data)) > from && strings.Contains(string(data[from:]), want) {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s has no line with %q after %v\n%s", path, want, timeout, tail(path, 30))
	return time.Time{}
}
