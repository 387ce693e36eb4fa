package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/store"
)

// After a connect the gateway probes every registered user, and the
// answers bring thousands of logins at once (a restart). Each login's
// buddy list then sends the user about twenty presences through the XMPP
// server, which handles the component's stream in order: imported while
// answers are still due, those presences delay the answers queued behind
// them, and a list imported before the buddies' own sessions are back
// shows those buddies offline until the next Query_Stat, a minute later.
// So while the probes of a connect are being answered, a login does only
// the login, and the rest of it (session.settle) waits in the storm's hold
// until every answer came, none came for stormQuiet, or stormMax passed.
const (
	stormQuiet = 2 * time.Second
	stormMax   = 30 * time.Second
	stormCheck = 250 * time.Millisecond
)

// storm is the hold of one connect's probes. on is whether one is under
// way: set and cleared under mu, read without it by every presence's
// fast path; the rest is guarded by mu.
type storm struct {
	on       atomic.Bool
	mu       sync.Mutex
	awaiting map[string]struct{} // bare JIDs probed and not answered yet
	held     []*session          // logged in, waiting to settle
	last     time.Time           // when the last answer came
	until    time.Time           // the hold ends by then in any case
}

// beginStorm starts holding settles until the probes of the registered
// users regs are answered.
func (g *Gateway) beginStorm(regs []store.Registration) {
	if len(regs) == 0 {
		return
	}
	now := g.clock.Now()
	st := &g.storm
	st.mu.Lock()
	st.awaiting = make(map[string]struct{}, len(regs))
	for _, r := range regs {
		st.awaiting[r.JID] = struct{}{}
	}
	started := !st.on.Load()
	st.last, st.until = now, now.Add(stormMax)
	st.on.Store(true)
	st.mu.Unlock()
	if started {
		g.clock.AfterFunc(stormCheck, g.checkStorm)
	}
}

// answered notes that the session of bare served a presence from its
// user: the answer to its probe, if it was probed, and the login it
// brought is done.
func (g *Gateway) answered(bare string) {
	st := &g.storm
	if !st.on.Load() {
		return
	}
	st.mu.Lock()
	if !st.on.Load() {
		st.mu.Unlock()
		return
	}
	if _, ok := st.awaiting[bare]; ok {
		delete(st.awaiting, bare)
		st.last = g.clock.Now()
	}
	var held []*session
	if len(st.awaiting) == 0 {
		held = st.endLocked()
	}
	st.mu.Unlock()
	g.settleHeld(held, "every probe answered", 0)
}

// hold keeps s's settle for the end of the storm; it reports false when
// there is no storm, and s settles now.
func (g *Gateway) hold(s *session) bool {
	st := &g.storm
	if !st.on.Load() {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	on := st.on.Load()
	if on {
		st.held = append(st.held, s)
	}
	return on
}

// checkStorm ends the storm once the answers stopped coming or it lasted
// stormMax: a user's server may never answer.
func (g *Gateway) checkStorm() {
	now := g.clock.Now()
	st := &g.storm
	st.mu.Lock()
	if !st.on.Load() {
		st.mu.Unlock()
		return
	}
	if now.Sub(st.last) < stormQuiet && now.Before(st.until) {
		st.mu.Unlock()
		g.clock.AfterFunc(stormCheck, g.checkStorm)
		return
	}
	why, unanswered := "no answer for "+stormQuiet.String(), len(st.awaiting)
	if !now.Before(st.until) {
		why = "the hold lasted " + stormMax.String()
	}
	held := st.endLocked()
	st.mu.Unlock()
	g.settleHeld(held, why, unanswered)
}

func (st *storm) endLocked() []*session {
	held := st.held
	st.awaiting, st.held = nil, nil
	st.on.Store(false)
	return held
}

// settleHeld queues the settles the storm held, in the order of the
// logins; why the hold ended and the probes still unanswered go to the
// log.
func (g *Gateway) settleHeld(held []*session, why string, unanswered int) {
	if len(held) > 0 {
		g.log.WithFields(logrus.Fields{"sessions": len(held), "ended": why, "unanswered": unanswered}).
			Info("gateway: restart hold over; importing the buddy lists of the sessions logged in meanwhile")
	}
	for _, s := range held {
		g.submitTo(s, func(ctx context.Context, s *session) { s.settle(ctx) })
	}
}
