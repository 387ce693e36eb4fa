package gateway

// Several gateway processes on one database, behind an XMPP server that
// balances the transport's domain over their component connections by the
// sender's bare JID (ejabberd's domain_balancing, component_number slots).
//
// Who serves a user is decided twice, and both must agree: the server
// routes the user's stanzas to the connection holding the slot of their
// JID, and a lease in the shared store names the one process that may log
// in to QQ for them (QQ takes one login per number). A process takes a
// user's lease when the user's stanzas reach it, renews its leases while
// it serves them, and gives them up when it stops serving them.
//
// Slots move with the processes: each process holds about its share of
// the slots (Slots divided among the live processes), one component
// connection per slot, and claims a slot in the store before it connects,
// so that a new connection always finds one free. When a process dies its
// connections close at once, its heartbeat row expires within a second or
// two, and the survivors claim the freed slots and connect: the dead
// process's users' stanzas reach them again; their leases expire
// (LeaseTTL) and the survivors take them and log in. When a process
// (re)joins, those holding more than their share let one connection go,
// with its users' sessions and leases, and the newcomer takes the slot.

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/jid"

	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// Defaults of ClusterConfig.
const (
	DefaultLeaseTTL = 10 * time.Second
	// DefaultBeat makes a dead process's slots free within 0.6 s: while
	// a slot has no connection, ejabberd drops its users' stanzas. A
	// beat is one small write; a live process taken for dead by a pause
	// only costs a connection that finds no slot.
	DefaultBeat = 100 * time.Millisecond
)

// ClusterConfig makes the gateway one of several processes sharing the
// store. The zero value (no Owner) is a gateway alone: no leases, one
// connection.
type ClusterConfig struct {
	// Owner names this process among those sharing the store; unique and
	// stable across restarts (a host name, a systemd instance name).
	Owner string
	// Slots is the number of component connections the XMPP server
	// balances the domain over: ejabberd's component_number.
	Slots int
	// LeaseTTL is how long a user's lease outlives the last renewal: how
	// long a dead process's users wait before another logs them in.
	LeaseTTL time.Duration
	// Beat is how often the process says it is alive; it counts as dead
	// after 6 beats without one. Its slots are free again then.
	Beat time.Duration
}

func (c *ClusterConfig) validate() error {
	if c.Owner == "" {
		return nil
	}
	if c.Slots < 2 || c.Slots > 1000 {
		return fmt.Errorf("gateway: Cluster.Slots %d: want the server's component_number, 2 to 1000", c.Slots)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Beat == 0 {
		c.Beat = DefaultBeat
	}
	if c.LeaseTTL < 3*c.Beat {
		return fmt.Errorf("gateway: Cluster.LeaseTTL %v is shorter than 3 beats (%v)", c.LeaseTTL, c.Beat)
	}
	return nil
}

// processTTL is how long a process counts as alive after its last beat.
func (c *ClusterConfig) processTTL() time.Duration { return 6 * c.Beat }

// SlotTaker is what the gateway needs of the component in a cluster: one
// more connection, as xmppcomp.Component.Extra keeps.
type SlotTaker interface {
	Extra(ctx context.Context, h xmppcomp.Handler, onConnect func(context.Context)) error
}

// cluster is the gateway's part in a cluster.
type cluster struct {
	g   *Gateway
	cfg ClusterConfig
	log logrus.FieldLogger

	mu      sync.Mutex
	extras  []*extra        // connections beyond the primary, newest last
	via     map[string]int  // the connection a user's last stanza came by (0: primary), by bare JID
	held    map[string]bool // the users whose lease this process's sessions hold, by bare JID
	nextID  int
	renewed time.Time // the last successful renewal of the leases
	checked time.Time // leases that expired up to here were looked at
}

// extra is one connection beyond the primary.
type extra struct {
	id     int
	cancel context.CancelFunc
	done   chan struct{}
}

func newCluster(g *Gateway, cfg ClusterConfig) *cluster {
	return &cluster{g: g, cfg: cfg, via: map[string]int{}, held: map[string]bool{}, log: g.log.WithField("process", cfg.Owner)}
}

// JoinCluster waits until this process holds a slot of the domain, so
// that its component connection will get one: call it before connecting
// the component. A gateway alone returns at once.
func (g *Gateway) JoinCluster(ctx context.Context) error {
	cl := g.cl
	if cl == nil {
		return nil
	}
	// A process starting holds nothing, whatever its row says: a crash
	// left its slots counted and its leases standing.
	if err := g.st.LeaveCluster(ctx, cl.cfg.Owner, g.clock.Now()); err != nil {
		cl.log.WithError(err).Warn("gateway: cannot clear what this process held before it started")
	}
	for {
		now := g.clock.Now()
		ok, err := g.st.ClaimSlot(ctx, cl.cfg.Owner, cl.cfg.Slots, now, now.Add(cl.cfg.processTTL()))
		if err != nil {
			cl.log.WithError(err).Warn("gateway: cannot claim a slot of the domain; trying again")
		}
		if ok {
			cl.log.Info("gateway: joined the cluster")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.clock.After(cl.cfg.Beat):
		}
	}
}

// run is the cluster's heartbeat until ctx ends: it says the process is
// alive, renews the leases, balances the slots and looks for users whose
// process is gone.
func (cl *cluster) run(ctx context.Context, out Sender) {
	taker, _ := out.(SlotTaker)
	if taker == nil {
		cl.log.Error("gateway: the component cannot open more connections; this process will not take over others' slots")
	}
	cl.renewed = cl.g.clock.Now()
	cl.checked = cl.renewed
	tick := cl.g.clock.NewTicker(cl.cfg.Beat)
	defer tick.Stop()
	beats := 0
	for {
		select {
		case <-ctx.Done():
			cl.stopExtras()
			return
		case <-tick.Chan():
		}
		beats++
		now := cl.g.clock.Now()
		if err := cl.g.st.BeatProcess(ctx, cl.cfg.Owner, now.Add(cl.cfg.processTTL())); err != nil && ctx.Err() == nil {
			cl.log.WithError(err).Warn("gateway: cannot record that this process is alive")
		}
		if beats%leaseEvery(cl.cfg) == 0 {
			cl.renew(ctx, now)
		}
		cl.balance(ctx, now, taker)
		cl.lookForOrphans(ctx, now)
	}
}

// leaseEvery is how many beats apart the leases are renewed: three times
// per LeaseTTL.
func leaseEvery(cfg ClusterConfig) int { return max(1, int(cfg.LeaseTTL/(3*cfg.Beat))) }

// renew extends this process's leases. A session whose lease another
// process holds now stops serving; if renewals have failed for half a
// LeaseTTL, every session stops, since another process may soon take
// their users.
func (cl *cluster) renew(ctx context.Context, now time.Time) {
	// Only leases held before the renewal can be missing from it: one a
	// session takes meanwhile is not lost.
	before := cl.holders()
	held, err := cl.g.st.RenewLeases(ctx, cl.cfg.Owner, now, now.Add(cl.cfg.LeaseTTL))
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		cl.log.WithError(err).Warn("gateway: cannot renew the leases of this process's users")
		if now.Sub(cl.renewed) >= cl.cfg.LeaseTTL/2 {
			cl.log.Error("gateway: leases not renewed for half their lifetime; logging every user out of QQ until the store answers")
			cl.drop(before)
		}
		return
	}
	cl.renewed = now
	mine := make(map[string]bool, len(held))
	for _, j := range held {
		mine[j] = true
	}
	var lost []string
	for _, j := range before {
		if !mine[j] {
			lost = append(lost, j)
		}
	}
	if len(lost) > 0 {
		cl.log.WithField("users", len(lost)).Warn("gateway: leases lapsed or taken by another process; stopping those users here")
		cl.drop(lost)
	}
}

// holders lists the users whose lease a session here holds.
func (cl *cluster) holders() []string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	out := make([]string, 0, len(cl.held))
	for j := range cl.held {
		out = append(out, j)
	}
	return out
}

// drop stops the sessions of users whose lease is no longer this
// process's.
func (cl *cluster) drop(users []string) {
	for _, u := range users {
		if !cl.g.submitToUser(u, func(ctx context.Context, s *session) {
			if s.leased {
				s.letGo(ctx, false)
			}
		}) {
			cl.setHeld(u, false)
		}
	}
}

func (cl *cluster) isHeld(jid string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.held[jid]
}

func (cl *cluster) setHeld(jid string, held bool) {
	cl.mu.Lock()
	if held {
		cl.held[jid] = true
	} else {
		delete(cl.held, jid)
	}
	cl.mu.Unlock()
}

// share is how many slots this process should hold among the live ones:
// the slots divided evenly, the first processes by name taking one more
// when they do not divide.
func share(slots int, live []store.Process, owner string) int {
	names := []string{owner}
	for _, p := range live {
		if p.Owner != owner {
			names = append(names, p.Owner)
		}
	}
	sort.Strings(names)
	i := sort.SearchStrings(names, owner)
	n := slots / len(names)
	if i < slots%len(names) {
		n++
	}
	return n
}

// balance claims a slot and connects when this process holds fewer than
// its share and one is free, and lets a connection go when it holds more
// while another process waits for one.
func (cl *cluster) balance(ctx context.Context, now time.Time, taker SlotTaker) {
	live, err := cl.g.st.Processes(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			cl.log.WithError(err).Warn("gateway: cannot read the cluster's processes")
		}
		return
	}
	want := share(cl.cfg.Slots, live, cl.cfg.Owner)
	held, used := 1+cl.extraCount(), 0
	for _, p := range live {
		used += p.Slots
	}
	switch {
	case held < want && taker != nil:
		ok, err := cl.g.st.ClaimSlot(ctx, cl.cfg.Owner, cl.cfg.Slots, now, now.Add(cl.cfg.processTTL()))
		if err != nil || !ok {
			return
		}
		cl.startExtra(ctx, taker)
	case held > want && used >= cl.cfg.Slots && cl.extraCount() > 0:
		// Someone waits for a slot (all are held, and we hold more than
		// our share): give the newest back.
		cl.releaseExtra(ctx)
	}
}

func (cl *cluster) extraCount() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.extras)
}

// startExtra opens one more connection; its users are noted as coming by
// it, and when it connects every registered user whose lease is not ours
// is probed, so that those of its slot answer here.
func (cl *cluster) startExtra(ctx context.Context, taker SlotTaker) {
	cl.mu.Lock()
	cl.nextID++
	x := &extra{id: cl.nextID, done: make(chan struct{})}
	xctx, cancel := context.WithCancel(ctx)
	x.cancel = cancel
	cl.extras = append(cl.extras, x)
	cl.mu.Unlock()
	cl.log.WithField("connection", x.id).Info("gateway: taking over a free slot of the domain")
	go func() {
		defer close(x.done)
		h := viaHandler{g: cl.g, via: x.id}
		if err := taker.Extra(xctx, h, func(ctx context.Context) { cl.probeOthers(ctx) }); err != nil {
			cl.log.WithError(err).Error("gateway: extra connection ended")
		}
	}()
}

// releaseExtra closes the newest extra connection, then lets its users'
// sessions go, and gives the slot back once they are gone, so that the
// process taking it starts from released leases.
func (cl *cluster) releaseExtra(ctx context.Context) {
	cl.mu.Lock()
	x := cl.extras[len(cl.extras)-1]
	cl.extras = cl.extras[:len(cl.extras)-1]
	var users []string
	for u, id := range cl.via {
		if id == x.id {
			users = append(users, u)
			delete(cl.via, u)
		}
	}
	cl.mu.Unlock()
	x.cancel()
	<-x.done
	cl.letGoOf(ctx, users)
	if err := cl.g.st.ReleaseSlot(ctx, cl.cfg.Owner); err != nil {
		cl.log.WithError(err).Error("gateway: cannot give a slot back")
	}
	cl.log.WithFields(logrus.Fields{"connection": x.id, "users": len(users)}).Info("gateway: gave a slot of the domain back to a process that joined")
}

// letGoOf stops serving users and waits until their sessions did, or
// ctx ends (the gateway stopping: its scheduler runs nothing more).
func (cl *cluster) letGoOf(ctx context.Context, users []string) {
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		if !cl.g.submitToUser(u, func(ctx context.Context, s *session) {
			defer wg.Done()
			s.letGo(ctx, true)
		}) {
			wg.Done() // no session: nothing to stop
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (cl *cluster) stopExtras() {
	cl.mu.Lock()
	xs := cl.extras
	cl.extras = nil
	cl.mu.Unlock()
	for _, x := range xs {
		x.cancel()
		<-x.done
	}
}

// lookForOrphans probes the users whose lease expired since the last
// look, unless it was ours: their process died or let them go, and their
// server's answer goes to whichever process now holds their slot.
func (cl *cluster) lookForOrphans(ctx context.Context, now time.Time) {
	expired, err := cl.g.st.LeasesExpired(ctx, cl.checked, now)
	if err != nil {
		return
	}
	cl.checked = now
	for _, l := range expired {
		if l.Owner == cl.cfg.Owner {
			continue
		}
		if err := cl.g.emit.probe(ctx, l.JID); err != nil {
			return
		}
	}
	if len(expired) > 0 {
		cl.log.WithField("users", len(expired)).Debug("gateway: asked for the presence of users whose lease expired")
	}
}

// probeOthers asks for the presence of every registered user this
// process does not serve: after taking a slot, its users answer here.
func (cl *cluster) probeOthers(ctx context.Context) {
	regs, err := cl.g.st.Registrations(ctx)
	if err != nil {
		cl.log.WithError(err).Warn("gateway: cannot list the users to probe")
		return
	}
	served := map[string]bool{}
	for _, j := range cl.holders() {
		served[j] = true
	}
	n := 0
	for _, r := range regs {
		if served[r.JID] {
			continue
		}
		if err := cl.g.emit.probe(ctx, r.JID); err != nil {
			return
		}
		n++
	}
	cl.log.WithField("users", n).Info("gateway: new slot connected; asked the users not served here for their presence")
}

// noteVia records the connection a user's stanza came by.
func (cl *cluster) noteVia(bare jid.JID, via int) {
	key := bare.String()
	cl.mu.Lock()
	if via == 0 {
		delete(cl.via, key)
	} else {
		cl.via[key] = via
	}
	cl.mu.Unlock()
}

// viaHandler hands an extra connection's stanzas to the gateway.
type viaHandler struct {
	g   *Gateway
	via int
}

func (h viaHandler) HandleStanza(ctx context.Context, st xmppcomp.Stanza) {
	h.g.handle([]xmppcomp.Stanza{st}, h.via)
}

func (h viaHandler) HandleStanzas(ctx context.Context, sts []xmppcomp.Stanza) { h.g.handle(sts, h.via) }

// leaveTimeout bounds leave, which a stopping process runs after the
// shutdown's own timeout if need be.
const leaveTimeout = 5 * time.Second

// leave gives every lease and slot back at the end of a clean stop, so
// that the other processes take the users over at once.
func (cl *cluster) leave(ctx context.Context) {
	if err := cl.g.st.LeaveCluster(ctx, cl.cfg.Owner, cl.g.clock.Now()); err != nil {
		cl.log.WithError(err).Warn("gateway: cannot leave the cluster cleanly; the others take over when the leases expire")
	}
}
