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
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

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
		cl.g.mu.Lock()
		s := cl.g.sessions[u]
		cl.g.mu.Unlock()
		if s == nil {
			cl.setHeld(u, false)
			continue
		}
		cl.g.submitTo(s, func(ctx context.Context, s *session) {
			if s.leased {
				s.letGo(ctx, false)
			}
		})
	}
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
	cl.letGoOf(users)
	if err := cl.g.st.ReleaseSlot(ctx, cl.cfg.Owner); err != nil {
		cl.log.WithError(err).Error("gateway: cannot give a slot back")
	}
	cl.log.WithFields(logrus.Fields{"connection": x.id, "users": len(users)}).Info("gateway: gave a slot of the domain back to a process that joined")
}

// letGoOf stops serving users and waits until their sessions did.
func (cl *cluster) letGoOf(users []string) {
	var wg sync.WaitGroup
	for _, u := range users {
		cl.g.mu.Lock()
		s := cl.g.sessions[u]
		cl.g.mu.Unlock()
		if s == nil {
			continue
		}
		wg.Add(1)
		cl.g.submitTo(s, func(ctx context.Context, s *session) {
			defer wg.Done()
			s.letGo(ctx, true)
		})
	}
	wg.Wait()
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
	n := 0
	for _, r := range regs {
		if l, err := cl.g.st.Lease(ctx, r.JID); err == nil && l.Owner == cl.cfg.Owner && l.Expires.After(cl.g.clock.Now()) {
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
	h.g.handle(st, h.via)
}

// leave gives every lease and slot back at the end of a clean stop, so
// that the other processes take the users over at once.
func (cl *cluster) leave(ctx context.Context) {
	if err := cl.g.st.LeaveCluster(ctx, cl.cfg.Owner, cl.g.clock.Now()); err != nil {
		cl.log.WithError(err).Warn("gateway: cannot leave the cluster cleanly; the others take over when the leases expire")
	}
}

// ---- the session's lease ----

// errServedElsewhere refuses a login while another process holds the
// user's lease; the login is tried again when it expires.
var errServedElsewhere = newUserError(stanza.ResourceConstraint,
	"Another process of this gateway serves you right now; the gateway logs you in here within seconds.")

// holdLease reports whether this process may log in to QQ for the user:
// always when alone; in a cluster once it holds the user's lease. When
// another process holds it, the login is tried again when it expires.
func (s *session) holdLease(ctx context.Context) bool {
	cl := s.g.cl
	if cl == nil || s.leased {
		return true
	}
	now := s.g.clock.Now()
	cur, held, err := s.g.st.AcquireLease(ctx, s.key, cl.cfg.Owner, now, now.Add(cl.cfg.LeaseTTL))
	switch {
	case err != nil:
		s.log.WithError(err).Warn("gateway: cannot take the user's lease; trying again")
		s.waitLease(now.Add(cl.cfg.Beat * 4))
		return false
	case !held:
		s.log.WithFields(logrus.Fields{"holder": cur.Owner, "until": cur.Expires}).Info("gateway: another process holds the user's lease; waiting")
		s.waitLease(cur.Expires.Add(cl.cfg.Beat))
		return false
	}
	s.leased, s.leaseWait = true, false
	cl.setHeld(s.key, true)
	return true
}

// waitLease tries the login again at t.
func (s *session) waitLease(t time.Time) {
	s.leaseWait = true
	s.link.state = stateRetrying
	s.g.sched.schedule(s.task, t)
}

// releaseLease gives the user's lease back when the session stops
// serving them here.
func (s *session) releaseLease(ctx context.Context) {
	cl := s.g.cl
	if cl == nil || !s.leased {
		return
	}
	s.leased = false
	cl.setHeld(s.key, false)
	if err := s.g.st.ReleaseLease(ctx, s.key, cl.cfg.Owner, s.g.clock.Now()); err != nil {
		s.log.WithError(err).Warn("gateway: cannot give the user's lease back; it expires by itself")
	}
}

// presenceWait is how long a message of a user this process does not
// know online waits for their presence before it is refused.
const presenceWait = 10 * time.Second

// takingOver reports whether a message of the user should wait for their
// presence: in a cluster, a registered user's message that comes before
// any presence is what a process sees first of the users of a slot it
// just took over, and their presence follows its probe. The first such
// message probes the user; presenceLate refuses what still waits after
// presenceWait.
func (s *session) takingOver(ctx context.Context, m *outgoing) bool {
	if s.g.cl == nil || s.reg == nil || s.res.any() || s.link.state != stateOffline {
		return false
	}
	if s.presenceAsked.IsZero() {
		s.presenceAsked = m.at
		if err := s.e.probe(ctx, s.key); err != nil {
			s.log.WithError(err).Debug("gateway: presence probe not sent")
		}
		s.g.sched.schedule(s.task, s.presenceAsked.Add(presenceWait))
	}
	return true
}

// presenceLate refuses the messages that waited for the user's presence
// in vain: the user is not online with the transport after all. Older
// rows (an earlier process's) wait for the next login, as they would
// have there.
func (s *session) presenceLate(ctx context.Context) {
	if s.presenceAsked.IsZero() || s.online() || s.g.clock.Now().Before(s.presenceAsked.Add(presenceWait)) {
		return
	}
	since := s.presenceAsked
	s.presenceAsked = time.Time{}
	items, err := s.g.st.Pending(ctx, s.key, store.ToQQ)
	if err != nil {
		s.log.WithError(err).Error("gateway: cannot read the queue of messages to QQ")
		return
	}
	for _, it := range items {
		if s.g.outbox.state(it.ID) != rowFree || it.Received.Before(since) {
			continue // a work item has it, or it is older: it waits for the next login
		}
		in, ok := s.queuedInbound(it)
		if !ok {
			continue
		}
		s.log.WithField("buddy", it.Peer).Info("gateway: refusing a message that waited for a presence that did not come")
		if err := s.answerError(ctx, in, errNotOnline(s.link.state, "the message was not sent.")); err != nil {
			s.log.WithError(err).Debug("gateway: error reply not sent")
		}
		if err := s.g.st.Remove(ctx, it.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.WithError(err).Error("gateway: cannot remove a refused message from the queue")
		}
	}
}

// letGo stops serving the user in this process without telling them: the
// process that now receives their stanzas serves them. The QQ session is
// logged out, what is queued stays in the store for the next owner, and
// the lease is given back when release is set (not when it was lost).
func (s *session) letGo(ctx context.Context, release bool) {
	if s.link.state == stateOnline {
		s.link.logout(ctx, s.log)
	}
	s.link.state = stateOffline
	s.g.sched.cancel(s.task)
	s.forgetShown()
	s.res = resources{}
	if release {
		s.releaseLease(ctx)
	}
	s.leased, s.leaseWait = false, false
	if s.g.cl != nil {
		s.g.cl.setHeld(s.key, false)
	}
	s.log.Info("gateway: stopped serving the user in this process")
}
