//go:build integration

package xmpptest_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/internal/wire"
	"qqxmpp/xmppcomp/xmpptest"
)

// The component domain every connection of these tests serves, and the
// address the users write to on it.
const (
	clusterComponent = "qq.localhost"
	clusterBot       = "bot@" + clusterComponent
	clusterUsers     = 20
)

// A two-node cluster with domain_balancing: both nodes see each other; a
// component connection to each node, and every user's messages land on one
// of them by bare JID, whichever node the user is logged in on. When a
// connection drops, its users' messages are lost until another connection
// takes its slot; then they all reach the survivors, and the rest of the
// users stay where they were.
func TestClusterBalancesComponentByBareJID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := xmpptest.StartEjabberdCluster(t, xmpptest.ClusterOptions{Options: xmpptest.Options{ComponentDomain: clusterComponent}})
	for i := range c.Nodes {
		if got, want := c.RunningNodes(t, i), []string{"ejabberd1@localhost", "ejabberd2@localhost"}; !slices.Equal(got, want) {
			t.Errorf("%s sees %v running, want %v", c.Nodes[i].Node, got, want)
		}
	}
	col := newCollector()
	a := mustDialComponent(t, ctx, c.Nodes[0], "A", col)
	b := startChildComponent(t, ctx, c.Nodes[1], "B", col)
	users := loginUsers(t, ctx, c, func(i int) int { return i % 2 })

	holder := sendRound(t, ctx, users, col, "round1")
	if again := sendRound(t, ctx, users, col, "round2"); !mapsEqual(holder, again) {
		t.Fatalf("a user's messages moved between connections: round 1 %v, round 2 %v", holder, again)
	}
	byConn := usersBy(holder)
	t.Logf("split by bare JID: A (node 1) %d users, B (node 2) %d users; slots: %s",
		len(byConn["A"]), len(byConn["B"]), c.RPC(t, 0, "mnesia", "dirty_read", "route", `<<"qq.localhost">>`))
	if len(byConn["A"]) == 0 || len(byConn["B"]) == 0 {
		t.Fatalf("all %d users on one connection: %v", clusterUsers, holder)
	}

	// A component can see which slots its connections hold: what it sends
	// to its own domain is balanced by the sender too, and comes back to
	// the connection holding that sender's slot.
	probes := map[string]int{}
	for k := range clusterUsers {
		a.send(t, `<message from="probe-%d@%s" to=%q><body>self %d</body></message>`, k, clusterComponent, clusterBot, k)
	}
	for k := range clusterUsers {
		ar, err := col.wait(ctx, fmt.Sprintf("self %d", k))
		if err != nil {
			t.Fatalf("A's message from its own domain: %v", err)
		}
		probes[ar.conn]++
	}
	if probes["A"] == 0 || probes["B"] == 0 {
		t.Errorf("A's %d messages from its own domain came back to %v, want both connections", clusterUsers, probes)
	}
	t.Logf("A's messages from probe-0..%d@%s came back to %v", clusterUsers-1, clusterComponent, probes)

	// The process holding B dies (SIGKILL): the kernel closes its socket.
	// The survivor opens one more connection, which takes B's slot as soon
	// as ejabberd has freed it.
	victim := users[byConn["B"][0]]
	killed := time.Now()
	b.kill()
	cc, attempts := takeOver(t, ctx, c.Nodes[0], "C", victim, col)
	t.Logf("B killed: %s's messages reached the new connection C after %v (%d connection attempts)",
		victim.JID.Bare(), time.Since(killed).Round(time.Millisecond), attempts)
	after := sendRound(t, ctx, users, col, "round3")
	for i, conn := range holder {
		if want := map[string]string{"A": "A", "B": "C"}[conn]; after[i] != want {
			t.Errorf("after B died, %s went to %s, want %s", users[i].JID.Bare(), after[i], want)
		}
	}

	// A connection made while every slot is taken gets none, and does not get
	// one when a slot frees: the slot of C, dropped now, stays empty and its
	// users' messages vanish without an error to the sender.
	d := mustDialComponent(t, ctx, c.Nodes[1], "D", col)
	cc.kill()
	waitFreeSlot(t, ctx, c)
	victim.SendXML(t, ctx, `<message to=%q type="chat"><body>lost</body></message>`, clusterBot)
	// The victim's c2s process handles its stanzas in order: once its
	// server answered a ping sent after "lost", "lost" met the empty slot.
	// Without this, E could take the slot while "lost" was still on its way.
	victim.SendXML(t, ctx, `<iq type="get" id="after-lost" to=%q><ping xmlns="urn:xmpp:ping"/></iq>`, victim.JID.Domainpart())
	victim.Expect(t, ctx, "the server's answer to the ping after the lost message", func(st xmppcomp.Stanza) bool {
		return st.Name == "iq" && st.ID == "after-lost"
	})
	e, _ := takeOver(t, ctx, c.Nodes[1], "E", victim, col)
	final := sendRound(t, ctx, users, col, "round4")
	for i, conn := range after {
		if want := map[string]string{"A": "A", "C": "E"}[conn]; final[i] != want {
			t.Errorf("after C died, %s went to %s, want %s", users[i].JID.Bare(), final[i], want)
		}
	}
	// Causally after "lost": E has the victim's later messages.
	if n := col.count("lost"); n != 0 {
		t.Errorf("the message sent while its slot was empty arrived %d times; ejabberd 23.01 drops it", n)
	}
	if got := col.from("D"); len(got) != 0 {
		t.Errorf("D, connected while no slot was free, received %d messages", len(got))
	}
	a.kill()
	d.kill()
	e.kill()
}

// When an ejabberd node dies (SIGKILL), the other node drops it from the
// cluster, frees the slot of the component connection it held, and a new
// connection to the survivor takes that slot. The node started again
// rejoins by itself, and a user logging in there reaches the connection
// holding their slot.
func TestClusterSurvivesNodeKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := xmpptest.StartEjabberdCluster(t, xmpptest.ClusterOptions{Options: xmpptest.Options{ComponentDomain: clusterComponent}})
	col := newCollector()
	mustDialComponent(t, ctx, c.Nodes[0], "A", col)
	b := mustDialComponent(t, ctx, c.Nodes[1], "B", col)
	// Every user on node 1, which survives; B's users reach it across nodes.
	users := loginUsers(t, ctx, c, func(int) int { return 0 })
	holder := sendRound(t, ctx, users, col, "before")
	byConn := usersBy(holder)
	if len(byConn["B"]) == 0 {
		t.Fatalf("no user on B: %v", holder)
	}

	killed := time.Now()
	c.Nodes[1].Kill(t)
	c.WaitRunning(t, ctx, 0, c.Nodes[0].Node)
	dropped := time.Since(killed)
	_, attempts := takeOver(t, ctx, c.Nodes[0], "C", users[byConn["B"][0]], col)
	t.Logf("node 2 killed: node 1 saw it gone after %v; B's users reached the new connection C on node 1 after %v (%d connection attempts)",
		dropped.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), attempts)
	b.kill()
	after := sendRound(t, ctx, users, col, "after")
	for i, conn := range holder {
		if want := map[string]string{"A": "A", "B": "C"}[conn]; after[i] != want {
			t.Errorf("after node 2 died, %s went to %s, want %s", users[i].JID.Bare(), after[i], want)
		}
	}

	restarted := time.Now()
	c.Nodes[1].Start(t)
	for i := range c.Nodes {
		c.WaitRunning(t, ctx, i, c.NodeNames()...)
	}
	t.Logf("node 2 started again and rejoined in %v", time.Since(restarted).Round(time.Millisecond))
	for _, i := range []int{byConn["A"][0], byConn["B"][0]} {
		again := c.Nodes[1].Login(t, ctx, users[i].JID.Localpart(), password(i))
		body := fmt.Sprintf("rejoined %d", i)
		again.SendXML(t, ctx, `<message to=%q type="chat"><body>%s</body></message>`, clusterBot, body)
		if ar, err := col.wait(ctx, body); err != nil || ar.conn != after[i] {
			t.Errorf("%s logged in on the restarted node: message reached %q (%v), want %s", users[i].JID.Bare(), ar.conn, err, after[i])
		}
	}
}

// loginUsers creates clusterUsers users and logs user i in on node
// node(i); user i's password is password(i).
func loginUsers(t *testing.T, ctx context.Context, c *xmpptest.Cluster, node func(int) int) []*xmpptest.Client {
	t.Helper()
	var users []*xmpptest.Client
	for i := range clusterUsers {
		name := xmpptest.UserName(fmt.Sprintf("%s-%02d", t.Name(), i))
		c.CreateUser(t, name, password(i))
		users = append(users, c.Nodes[node(i)].Login(t, ctx, name, password(i)))
	}
	return users
}

func password(i int) string { return fmt.Sprintf("password-%d", i) }

// sendRound has every user send one message to the component and returns
// the connection each arrived on, by user index.
func sendRound(t *testing.T, ctx context.Context, users []*xmpptest.Client, col *collector, round string) map[int]string {
	t.Helper()
	for i, u := range users {
		u.SendXML(t, ctx, `<message to=%q type="chat"><body>%s %d</body></message>`, clusterBot, round, i)
	}
	got := map[int]string{}
	for i, u := range users {
		ar, err := col.wait(ctx, fmt.Sprintf("%s %d", round, i))
		if err != nil {
			t.Fatalf("%s's message of %s: %v", u.JID.Bare(), round, err)
		}
		if !ar.from.Bare().Equal(u.JID.Bare()) {
			t.Errorf("%s's message of %s came from %s", u.JID.Bare(), round, ar.from)
		}
		got[i] = ar.conn
	}
	return got
}

// takeOver dials connections named name to srv until one receives victim's
// messages, and returns it with the number of dials: a connection made
// before ejabberd has freed a dead connection's slot gets no slot, and
// never will.
func takeOver(t *testing.T, ctx context.Context, srv *xmpptest.Server, name string, victim *xmpptest.Client, col *collector) (*rawComponent, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		rc := mustDialComponent(t, ctx, srv, name, col)
		body := fmt.Sprintf("probe %s %d", name, attempt)
		victim.SendXML(t, ctx, `<message to=%q type="chat"><body>%s</body></message>`, clusterBot, body)
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		ar, err := col.wait(wctx, body)
		cancel()
		switch {
		case err == nil && ar.conn == name:
			return rc, attempt
		case err == nil:
			t.Fatalf("%s's probe reached %s, not the new connection %s", victim.JID.Bare(), ar.conn, name)
		case ctx.Err() != nil:
			t.Fatalf("no connection took the free slot: %v", err)
		}
		rc.kill()
	}
}

// waitFreeSlot waits until the component domain's routing table shows a
// slot without a connection.
func waitFreeSlot(t *testing.T, ctx context.Context, c *xmpptest.Cluster) {
	t.Helper()
	for ctx.Err() == nil {
		if slots := c.RPC(t, 0, "mnesia", "dirty_read", "route", `<<"qq.localhost">>`); strings.Contains(slots, "undefined") {
			return
		}
	}
	t.Fatal("no slot of the component domain became free")
}

func usersBy(holder map[int]string) map[string][]int {
	by := map[string][]int{}
	for i := range clusterUsers {
		by[holder[i]] = append(by[holder[i]], i)
	}
	return by
}

func mapsEqual(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// arrival is one message received by a component connection.
type arrival struct {
	conn string // the connection's name
	from jid.JID
}

// collector records the messages every connection receives, by body.
type collector struct {
	mu     sync.Mutex
	got    map[string][]arrival
	notify chan struct{} // closed and replaced on every arrival
}

func newCollector() *collector {
	return &collector{got: map[string][]arrival{}, notify: make(chan struct{})}
}

func (c *collector) add(body string, a arrival) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got[body] = append(c.got[body], a)
	close(c.notify)
	c.notify = make(chan struct{})
}

// deliverTo returns what records the messages of the connection conn.
func (c *collector) deliverTo(conn string) func(string, jid.JID) {
	return func(body string, from jid.JID) { c.add(body, arrival{conn: conn, from: from}) }
}

// wait returns the first arrival of the message with this body.
func (c *collector) wait(ctx context.Context, body string) (arrival, error) {
	for {
		c.mu.Lock()
		got, ch := c.got[body], c.notify
		c.mu.Unlock()
		if len(got) > 0 {
			return got[0], nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return arrival{}, fmt.Errorf("message %q: %w", body, ctx.Err())
		}
	}
}

func (c *collector) count(body string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got[body])
}

// from returns the bodies received on the connection conn.
func (c *collector) from(conn string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var bodies []string
	for body, as := range c.got {
		for _, a := range as {
			if a.conn == conn {
				bodies = append(bodies, body)
			}
		}
	}
	return bodies
}

// rawComponent is one XEP-0114 connection that never reconnects, so that
// the test decides which connections exist; it hands every message it
// receives to a collector.
type rawComponent struct {
	nc       net.Conn
	done     chan struct{} // closed when the reader has returned
	killOnce sync.Once
}

func mustDialComponent(t *testing.T, ctx context.Context, srv *xmpptest.Server, name string, col *collector) *rawComponent {
	t.Helper()
	rc, err := dialComponent(ctx, srv.ComponentAddr, srv.ComponentDomain, srv.Secret, col.deliverTo(name))
	if err != nil {
		t.Fatalf("component connection %s to %s: %v", name, srv.Node, err)
	}
	t.Cleanup(rc.kill)
	return rc
}

// dialComponent connects to addr as domain and hands every message
// received to deliver, from one goroutine.
func dialComponent(ctx context.Context, addr, domain, secret string, deliver func(body string, from jid.JID)) (*rawComponent, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	dec := xml.NewDecoder(nc)
	if err := handshake(nc, dec, domain, secret); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	rc := &rawComponent{nc: nc, done: make(chan struct{})}
	go rc.read(dec, deliver)
	return rc, nil
}

// handshake is XEP-0114's: the stream header, then the SHA-1 of the
// stream id and the secret.
func handshake(nc net.Conn, dec *xml.Decoder, domain, secret string) error {
	if _, err := fmt.Fprintf(nc, `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams" to=%q>`, domain); err != nil {
		return err
	}
	var id string
	for id == "" {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("reading the stream header: %w", err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			if id = wire.Attr(st, "id"); id == "" {
				return fmt.Errorf("stream header without id: %v", st)
			}
		}
	}
	if _, err := fmt.Fprintf(nc, "<handshake>%x</handshake>", sha1.Sum([]byte(id+secret))); err != nil {
		return err
	}
	el, err := wire.ReadElement(dec)
	if err != nil {
		return fmt.Errorf("reading the handshake answer: %w", err)
	}
	if el.Start.Name.Local != "handshake" {
		return fmt.Errorf("handshake refused: %s", el.Raw)
	}
	return nil
}

func (rc *rawComponent) read(dec *xml.Decoder, deliver func(string, jid.JID)) {
	defer close(rc.done)
	for {
		el, err := wire.ReadElement(dec)
		if err != nil {
			return
		}
		if el.Start.Name.Local != "message" {
			continue
		}
		var m struct {
			Body string `xml:"body"`
		}
		if xml.Unmarshal(el.Raw, &m) != nil {
			continue
		}
		from, _ := jid.Parse(wire.Attr(el.Start, "from"))
		deliver(m.Body, from)
	}
}

// send writes one stanza, fmt.Sprintf(format, args...).
func (rc *rawComponent) send(t *testing.T, format string, args ...any) {
	t.Helper()
	_ = rc.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(rc.nc, format, args...); err != nil {
		t.Fatalf("component send: %v", err)
	}
}

// kill closes the socket without closing the stream, as the death of the
// process holding it would.
func (rc *rawComponent) kill() {
	rc.killOnce.Do(func() {
		rc.nc.Close()
		<-rc.done
	})
}

// childEnv, set, makes the test binary hold one component connection
// instead of running tests (runChild), so that a test can SIGKILL the
// process holding a connection. Its value is the connection's JSON
// childSpec.
const childEnv = "XMPPTEST_CLUSTER_COMPONENT_CHILD"

type childSpec struct{ Addr, Domain, Secret string }

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(runChild(spec))
	}
	os.Exit(xmpptest.Main(m))
}

// runChild connects, prints "ready", then one line per message received
// (from, a tab, the body) until the connection ends.
func runChild(spec string) int {
	var cs childSpec
	if err := json.Unmarshal([]byte(spec), &cs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := dialComponent(ctx, cs.Addr, cs.Domain, cs.Secret, func(body string, from jid.JID) {
		fmt.Printf("%s\t%s\n", from, body) // one goroutine: lines never interleave
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	<-rc.done
	return 0
}

// childComponent is a component connection held by a process of its own.
type childComponent struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when its output has been read to the end
	killOnce sync.Once
}

// startChildComponent runs the test binary as a process holding one
// component connection, named name, to srv; kill ends it with SIGKILL.
func startChildComponent(t *testing.T, ctx context.Context, srv *xmpptest.Server, name string, col *collector) *childComponent {
	t.Helper()
	spec, err := json.Marshal(childSpec{srv.ComponentAddr, srv.ComponentDomain, srv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("component process %s: %v", name, err)
	}
	cc := &childComponent{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(cc.kill)
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("component process %s did not connect: %q %v", name, lines.Text(), lines.Err())
	}
	deliver := col.deliverTo(name)
	go func() {
		defer close(cc.done)
		for lines.Scan() {
			from, body, _ := strings.Cut(lines.Text(), "\t")
			j, _ := jid.Parse(from)
			deliver(body, j)
		}
	}()
	return cc
}

// kill sends SIGKILL and waits for the process and its output.
func (cc *childComponent) kill() {
	cc.killOnce.Do(func() {
		_ = cc.cmd.Process.Kill()
		<-cc.done
		_ = cc.cmd.Wait()
	})
}
