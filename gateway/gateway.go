package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// Gateway is the transport: it implements xmppcomp.Handler, keeps the
// sessions and runs their scheduler. Create it with New, hand it to
// xmppcomp.New as Handler and its OnConnect as Config.OnConnect, and call
// Run with the component as Sender.
type Gateway struct {
	cfg    Config
	clock  clockwork.Clock
	domain jid.JID
	st     *store.Store
	log    logrus.FieldLogger
	sched  *scheduler
	self   *task // the gateway's own work: probes after a connect
	emit   *emitter
	iqs    iqRoutes
	vcards profileCache
	privs  privileges // what each user server lets the gateway do (XEP-0356)

	clientCaps userCaps // what the users' clients can take, by caps (usercaps.go)

	commands []*command                      // command.go
	admins   atomic.Pointer[map[string]bool] // bare JIDs; SetAdmins
	started  time.Time

	running     atomic.Bool
	epoch       atomic.Uint64 // component connections so far
	floodLogged atomic.Int64  // unix nanos of the last warning of a dropped flood

	mu       sync.Mutex
	sessions map[string]*session // by bare JID

	cl *cluster // nil for a gateway alone (cluster.go)

	outbox outbox // queued messages to QQ with work waiting (toqq.go)
	// removals are the outbox rows of handled messages being removed
	// (doneOutgoing); a stop waits for them.
	removals sync.WaitGroup
	storm    storm         // the settles held while a connect's probes are answered (storm.go)
	seqs     *qqproto.Seqs // the SEQs of every CLTMSG and GetMsgEx the gateway stores
}

// New checks cfg and returns a Gateway that serves nothing until Run.
// Stanzas handed to it before Run wait in their sessions' queues.
func New(cfg Config, st *store.Store) (*Gateway, error) {
	dom, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("gateway: New: store is nil")
	}
	g := &Gateway{
		cfg:      cfg,
		clock:    cfg.Clock,
		domain:   dom,
		st:       st,
		log:      cfg.Logger.WithField("component", dom.String()),
		sessions: make(map[string]*session),
		emit:     &emitter{dom: dom.String(), domJID: dom, caps: newEntityCaps(cfg.Name), m: cfg.Metrics},
		iqs:      newIQRoutes(),
		commands: commandList(),
		started:  cfg.Clock.Now(),
		seqs:     qqproto.NewSeqs(),
	}
	if cfg.Cluster.Owner != "" {
		g.cl = newCluster(g, cfg.Cluster)
	}
	g.SetAdmins(cfg.Admins)
	g.sched = newScheduler(cfg.MaxInFlight, g.clock, g.log)
	g.self = newTask(func(context.Context) {})
	cfg.Metrics.attach(g)
	return g, nil
}

// Domain is the gateway's domain.
func (g *Gateway) Domain() jid.JID { return g.domain }

// Run serves until ctx ends: it starts the scheduler, and sends with out.
// Then it shuts down within Config.ShutdownTimeout: every user gets
// unavailable from every JID of the transport they saw available, and
// every QQ session is logged out. Keep out connected until Run returned.
func (g *Gateway) Run(ctx context.Context, out Sender) error {
	if out == nil {
		return errors.New("gateway: Run: Sender is nil")
	}
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("gateway: Run is already active")
	}
	g.emit.out.Store(&out)
	g.sched.start(ctx)
	g.log.Info("gateway: running")
	var wg sync.WaitGroup
	if g.cl != nil {
		wg.Add(1)
		go func() { defer wg.Done(); g.cl.run(ctx, out) }()
	}
	<-ctx.Done()
	wg.Wait()
	g.sched.wait()
	g.shutdown()
	return nil
}

// OnConnect is for xmppcomp.Config.OnConnect: after each handshake it
// probes every registered user, so that their server tells which of them
// are online and their sessions come back after a restart, and it
// re-announces what live sessions show, since stanzas sent while the
// connection was down were lost.
func (g *Gateway) OnConnect(ctx context.Context) {
	epoch := g.epoch.Add(1)
	g.cfg.Metrics.connected(ctx, epoch)
	g.sched.submit(g.self, func(ctx context.Context) { g.connected(ctx, epoch) })
}

func (g *Gateway) connected(ctx context.Context, epoch uint64) {
	// Only the sessions that were there before this connection may have
	// lost what they sent: those the probes' answers start from now on
	// announce everything as they log in.
	before := g.snapshot()
	regs, err := g.st.Registrations(ctx)
	if err != nil {
		g.log.WithError(err).Error("gateway: cannot list registered users to ask for their presence")
		return
	}
	g.beginStorm(regs)
	for _, r := range regs {
		if err := g.emit.probe(ctx, r.JID); err != nil {
			g.log.WithError(err).WithField("jid", r.JID).Warn("gateway: presence probe not sent")
			break // the connection is gone again; the next OnConnect probes
		}
	}
	g.log.WithField("users", len(regs)).Info("gateway: connected; asked every registered user's server for their presence")
	for _, s := range before {
		g.submitTo(s, func(ctx context.Context, s *session) { s.reannounce(ctx) })
	}
	if epoch > 1 {
		g.clock.AfterFunc(g.cfg.ResourceGrace, func() {
			for _, s := range g.snapshot() {
				g.submitTo(s, func(ctx context.Context, s *session) { s.sweepResources(ctx, epoch) })
			}
		})
	}
}

// enqueue runs fn on bare's session, creating the session if needed.
// A stanza's door must ask admit first.
func (g *Gateway) enqueue(bare jid.JID, fn func(context.Context, *session)) {
	key := bare.String()
	g.mu.Lock()
	s := g.sessions[key]
	if s == nil {
		s = newSession(g, bare)
		g.sessions[key] = s
	}
	g.sched.submit(s.task, func(ctx context.Context) { fn(ctx, s); s.publish() })
	g.mu.Unlock()
}

// refusalsPerQueued is how many refusals may wait per queued stanza of a
// user: refusals are small, but they too wait for the user's share of the
// stream to the XMPP server. Beyond them a flood is dropped, and counted.
const refusalsPerQueued = 20

// errFlood answers a stanza of a user who has Config.MaxUserQueue waiting.
func errFlood(n int) stanza.Error {
	return stanza.Error{Type: stanza.Wait, Condition: stanza.ResourceConstraint, Text: map[string]string{
		"": fmt.Sprintf("You have %d stanzas waiting for the gateway; wait for its answers, then send this again.", n)}}
}

// admit reports whether st's sender has room for one more stanza in their
// session's queue. If not, st is refused from the session's urgent lane
// (resource-constraint, wait), or, if even that is full, dropped and
// counted. It is O(1): the door calls it for every stanza.
func (g *Gateway) admit(st xmppcomp.Stanza) bool {
	g.mu.Lock()
	s := g.sessions[st.From.Bare().String()]
	g.mu.Unlock()
	// One goroutine, the door's, adds a user's stanzas: until its enqueue
	// the queue grows by the gateway's own work at most.
	if s == nil || g.sched.queued(s.task) < g.cfg.MaxUserQueue {
		return true
	}
	st.Raw = nil // the refusal needs only the addresses
	n := g.cfg.MaxUserQueue
	answerable := st.Type != "error" && !(st.Name == "iq" && st.Type == "result")
	if answerable && g.sched.submitUrgent(s.task, func(ctx context.Context) {
		if err := g.emit.replyError(ctx, st, errFlood(n)); err != nil {
			s.log.WithError(err).Debug("gateway: refusal of a flood not sent")
		}
	}, n*refusalsPerQueued) {
		return false
	}
	g.cfg.Metrics.dropped("flood")
	if now := g.clock.Now().UnixNano(); now-g.floodLogged.Load() >= int64(time.Minute) {
		g.floodLogged.Store(now)
		g.log.WithField("jid", st.From.Bare().String()).WithField("stanza", st.Name).
			Warn("gateway: a user sends faster than the gateway can answer; dropping their stanzas unanswered")
	}
	return false
}

// submitTo runs fn on s unless s was dropped meanwhile.
func (g *Gateway) submitTo(s *session, fn func(context.Context, *session)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions[s.key] != s {
		return false
	}
	g.sched.submit(s.task, func(ctx context.Context) { fn(ctx, s); s.publish() })
	return true
}

// submitToUser is submitTo for the session of bare JID key, if there is
// one; it reports whether fn was queued.
func (g *Gateway) submitToUser(key string, fn func(context.Context, *session)) bool {
	g.mu.Lock()
	s := g.sessions[key]
	g.mu.Unlock()
	return s != nil && g.submitTo(s, fn)
}

// onlineSessions counts the sessions logged in to QQ, as each last
// published its state (stats.go).
func (g *Gateway) onlineSessions() int {
	n := 0
	for _, s := range g.snapshot() {
		if v := s.view.Load(); v != nil && v.state == stateOnline {
			n++
		}
	}
	return n
}

// snapshot returns the sessions now in memory.
func (g *Gateway) snapshot() []*session {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*session, 0, len(g.sessions))
	for _, s := range g.sessions {
		out = append(out, s)
	}
	return out
}

// maybeDrop forgets s if it holds nothing worth keeping: an unregistered
// JID with no available resource, no command waiting for answers and no
// work pending. So any JID may talk to the gateway without leaving a
// session behind. Called from s's own work item.
func (g *Gateway) maybeDrop(s *session) {
	if s.reg != nil || s.res.any() || s.link.state != stateOffline || s.link.qq != nil || s.runs.any() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sched.mu.Lock()
	defer g.sched.mu.Unlock()
	if !s.task.idleLocked() {
		return
	}
	if g.sessions[s.key] == s {
		delete(g.sessions, s.key)
	}
}

// shutdown runs after the scheduler stopped, so it may touch every
// session's state: nothing else does any more.
func (g *Gateway) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.ShutdownTimeout)
	defer cancel()
	sessions := g.snapshot()
	// Every user learns first that the transport is going (one presence
	// each), then which buddies went with it: with thousands of users the
	// buddies' presences may not all fit in ShutdownTimeout.
	const reason = "gateway shutting down"
	var served []*session // another process of a cluster serves the rest
	for _, s := range sessions {
		if g.serves(s) {
			served = append(served, s)
			s.showDomain(ctx, false, reason)
		}
	}
	// One barrier per user server, to confirm the presences reached it.
	servers := map[string]jid.JID{}
	for _, s := range served {
		s.hideAll(ctx, reason)
		servers[s.jid.Domainpart()] = s.jid
	}
	// The component closes its stream right after Run returns: without a
	// round trip, a server may drop what it had not routed yet.
	for _, to := range servers {
		if err := g.emit.barrier(ctx, to); err != nil {
			g.log.WithError(err).WithField("server", to.Domainpart()).Warn("gateway: unavailable presences at shutdown not confirmed")
		}
	}
	// One line for the logouts that failed, not one per user: with
	// thousands of users the presences above may take all of
	// ShutdownTimeout, and every logout then fails the same way.
	sem := make(chan struct{}, g.cfg.MaxInFlight)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Pointer[error]
	n := 0
	for _, s := range sessions {
		if s.link.state != stateOnline || s.link.qq == nil {
			continue
		}
		n++
		wg.Add(1)
		sem <- struct{}{}
		go func(s *session) {
			defer func() { <-sem; wg.Done() }()
			if err := s.link.end(ctx); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			}
		}(s)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		g.log.WithError(*firstErr.Load()).WithField("failed", f).WithField("logouts", n).
			Warn("gateway: QQ logouts failed at shutdown; the QQ server ends those sessions after its idle timeout")
	}
	g.removals.Wait()
	if g.cl != nil {
		// Even when the above took all of ShutdownTimeout: without it the
		// others wait for the leases to expire.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
		g.cl.leave(lctx)
		cancel()
	}
	g.log.WithField("logouts", n).Info("gateway: stopped")
}

// serves reports whether this process serves s's user: always when alone;
// in a cluster while it holds the user's lease. A process stopping says
// nothing to users another process serves.
func (g *Gateway) serves(s *session) bool { return g.cl == nil || g.cl.isHeld(s.key) }
