package xmpptest

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

// ClusterOptions describe an ejabberd cluster to start. Zero fields take
// defaults.
type ClusterOptions struct {
	// Options are every node's: the same domains, secret and log level.
	// Options.Dir, when set, holds one directory per node (node1, node2...).
	Options
	Nodes int // how many ejabberd nodes; default 2
	// ComponentNumber is how many component connections share
	// ComponentDomain (domain_balancing, type bare_source, on every node);
	// default 2.
	ComponentNumber int
}

// Cluster is several ejabberd nodes on loopback that form one ejabberd
// cluster (one Mnesia database, one routing table): a user logged in on any
// node reaches a component connected to any node. Every node has its own
// directory, ports and HTTP API; they share an Erlang cookie and a private
// epmd on a free loopback port, so nothing is registered with the host's
// epmd or left running afterwards.
type Cluster struct {
	// Nodes are the cluster's ejabberd servers, "ejabberd1@localhost"
	// first, each with its own ClientAddr and ComponentAddr. Stop, Kill and
	// Start act on one node; a node started again rejoins by itself.
	Nodes []*Server
	Dir   string

	dist *distribution
	epmd *exec.Cmd
	// epmdExited is closed when epmd has been waited for.
	epmdExited chan struct{}
}

// distribution is what the nodes of a cluster share for Erlang
// distribution: the cookie and the port of their own epmd.
type distribution struct {
	cookie   string
	epmdPort int
}

// args are erl's flags for a node called node. The cookie is on the
// command line, visible to local users: good enough for a test cluster on
// loopback.
func (d *distribution) args(node string) []string {
	return []string{"-sname", node, "-setcookie", d.cookie, "-start_epmd", "false",
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}"}
}

func (d *distribution) env() string { return "ERL_EPMD_PORT=" + strconv.Itoa(d.epmdPort) }

// StartEjabberdCluster starts the nodes one by one, joins every node after
// the first to it (ejabberd_admin:join_cluster, which restarts ejabberd on
// the joining node), checks that the first node sees them all running, and
// stops everything at cleanup. It takes about five seconds a node. Without
// ejabberd the test is skipped loudly, or fails with CI set.
func StartEjabberdCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	c, err := newCluster(opts, dirFor(t, opts.Options))
	if err != nil {
		failSetup(t, err)
	}
	t.Cleanup(c.stop)
	if err := c.startEPMD(); err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	for i, s := range c.Nodes {
		launch(t, s, false)
		if i > 0 {
			c.join(t, s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c.WaitRunning(t, ctx, 0, c.NodeNames()...)
	return c
}

func newCluster(opts ClusterOptions, dir string) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.ComponentNumber == 0 {
		opts.ComponentNumber = 2
	}
	if opts.Nodes < 1 {
		return nil, fmt.Errorf("xmpptest: a cluster of %d nodes", opts.Nodes)
	}
	// The defaults (a random secret) must be drawn once for all nodes.
	o, err := opts.Options.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("epmd"); err != nil {
		return nil, &missingError{"epmd (Erlang's port mapper, needed by an ejabberd cluster)", "apt-get install -y ejabberd"}
	}
	c := &Cluster{Dir: dir, dist: &distribution{cookie: strings.ToLower(crand.Text())}}
	for i := range opts.Nodes {
		s, err := newServer(Ejabberd, o, filepath.Join(dir, fmt.Sprintf("node%d", i+1)))
		if err != nil {
			return nil, err
		}
		s.Node = fmt.Sprintf("ejabberd%d@localhost", i+1)
		s.dist, s.balance = c.dist, opts.ComponentNumber
		if err := s.allocate(); err != nil { // again, with the balancing
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	return c, nil
}

// startEPMD starts the cluster's own epmd on a free loopback port.
func (c *Cluster) startEPMD() error {
	var err error
	for range 3 {
		if err = c.tryEPMD(); err == nil {
			return nil
		}
	}
	return fmt.Errorf("starting epmd: %w", err)
}

func (c *Cluster) tryEPMD() error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(filepath.Join(c.Dir, "epmd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command("epmd", "-port", strconv.Itoa(ports[0]), "-address", "127.0.0.1")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("epmd on %s exited: %v", addr, cmd.ProcessState)
		default:
		}
		if nc, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			nc.Close()
			c.epmd, c.epmdExited, c.dist.epmdPort = cmd, exited, ports[0]
			return nil
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	return fmt.Errorf("epmd not listening on %s", addr)
}

// join makes s join the first node's cluster and waits for ejabberd, which
// join_cluster restarts on s, to serve again.
func (c *Cluster) join(t testing.TB, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	defer cancel()
	res, err := c.rpc(ctx, s.Node, "ejabberd_admin", "join_cluster", "<<"+strconv.Quote(c.Nodes[0].Node)+">>")
	if err == nil && res != "ok" {
		err = fmt.Errorf("join_cluster returned %s", res)
	}
	if err == nil {
		err = s.ready()
	}
	if err != nil {
		t.Fatalf("xmpptest: %s joining %s: %v\n%s", s.Node, c.Nodes[0].Node, err, s.logTail())
	}
}

// RPC calls module:function(args...) on node i through Erlang distribution,
// from a hidden node of its own (about a second), and returns the result
// as io:format's ~p prints it. Each arg is an Erlang term in source form; a
// Go string quoted with %q, such as "qq.localhost", becomes the list of its
// characters. For example, the routes of the component domain with the
// pid of the connection holding each slot (pid undefined: a free slot):
//
//	c.RPC(t, 0, "mnesia", "dirty_read", "route", `<<"qq.localhost">>`)
func (c *Cluster) RPC(t testing.TB, i int, module, function string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	res, err := c.rpc(ctx, c.Nodes[i].Node, module, function, args...)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	return res
}

func (c *Cluster) rpc(ctx context.Context, node, module, function string, args ...string) (string, error) {
	call := fmt.Sprintf("rpc:call('%s', '%s', '%s', [%s], 60000)", node, module, function, strings.Join(args, ", "))
	eval := "io:format(\"~p~n\", [" + call + "]), halt()."
	self := "xmpptest-ctl-" + strings.ToLower(crand.Text()[:10]) + "@localhost"
	cmd := exec.CommandContext(ctx, "erl", append(append([]string{"-noinput", "-noshell", "-hidden"},
		c.dist.args(self)...), "-eval", eval)...)
	cmd.Env = append(os.Environ(), c.dist.env())
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	res := strings.TrimSpace(string(out))
	if err != nil {
		return "", fmt.Errorf("rpc %s:%s on %s: %w\n%s%s", module, function, node, err, res, stderr.String())
	}
	if strings.HasPrefix(res, "{badrpc,") {
		return "", fmt.Errorf("rpc %s:%s on %s: %s", module, function, node, res)
	}
	return res, nil
}

// NodeNames returns the Erlang names of the nodes, in order.
func (c *Cluster) NodeNames() []string {
	var names []string
	for _, s := range c.Nodes {
		names = append(names, s.Node)
	}
	return names
}

// RunningNodes returns the cluster's nodes that node i sees running
// (ejabberd's list_cluster: Mnesia's running database nodes), sorted.
func (c *Cluster) RunningNodes(t testing.TB, i int) []string {
	t.Helper()
	nodes, err := c.runningNodes(context.Background(), i)
	if err != nil {
		t.Fatalf("xmpptest: %v", err)
	}
	return nodes
}

func (c *Cluster) runningNodes(ctx context.Context, i int) ([]string, error) {
	var nodes []string
	if err := c.Nodes[i].api(ctx, "list_cluster", struct{}{}, &nodes); err != nil {
		return nil, fmt.Errorf("list_cluster on %s: %w", c.Nodes[i].Node, err)
	}
	slices.Sort(nodes)
	return nodes, nil
}

// WaitRunning waits until node i sees exactly the nodes want running (a
// node killed or stopped drops out, one started again comes back), and
// fails the test when ctx ends first.
func (c *Cluster) WaitRunning(t testing.TB, ctx context.Context, i int, want ...string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	var got []string
	var err error
	for {
		got, err = c.runningNodes(ctx, i)
		if err == nil && slices.Equal(got, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("xmpptest: %s sees %v running (%v), want %v", c.Nodes[i].Node, got, err, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CreateUser registers user on the cluster (through the first node that
// runs), waits until every running node accepts the password, and returns
// the bare JID. The wait matters: Mnesia commits on the node that
// registered and tells the others afterwards, so a login on another node
// right after registering can fail.
func (c *Cluster) CreateUser(t testing.TB, user, password string) jid.JID {
	t.Helper()
	var j jid.JID
	for _, s := range c.Nodes {
		if s.running() {
			j = s.CreateUser(t, user, password)
			break
		}
	}
	if j.Equal(jid.JID{}) {
		t.Fatal("xmpptest: no node of the cluster is running")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		if err := s.waitPassword(ctx, j, password); err != nil {
			t.Fatalf("xmpptest: %s on %s: %v", j, s.Node, err)
		}
	}
	return j
}

// waitPassword waits until ejabberd accepts password for j.
func (s *Server) waitPassword(ctx context.Context, j jid.JID, password string) error {
	req := map[string]string{"user": j.Localpart(), "host": j.Domain().String(), "password": password}
	for {
		var res int
		err := s.api(ctx, "check_password", req, &res)
		if err == nil && res == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("password not accepted (%d, %v): %w", res, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop stops the nodes, the last first, then epmd.
func (c *Cluster) stop() {
	for i := len(c.Nodes) - 1; i >= 0; i-- {
		_ = c.Nodes[i].stop()
	}
	if c.epmd != nil {
		_ = syscall.Kill(-c.epmd.Process.Pid, syscall.SIGKILL)
		<-c.epmdExited
		c.epmd = nil
	}
}

// ready waits for a running server to serve, as start does.
func (s *Server) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("not running")
	}
	return s.waitReady(s.exited)
}

func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}
