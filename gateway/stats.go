package gateway

// What the administrators' commands read of the sessions: a copy of each
// session's state. A session's state is touched only by its own work
// items, so it publishes a copy after each for others to read. The totals
// the stats command shows are the Metrics' own (metrics.go).

import "time"

// sessionView is what others may read of a session.
type sessionView struct {
	state    loginState
	clients  int // available resources
	lastPoll time.Time
}

// publish makes the session's state readable by others; called after each
// of its work items.
func (s *session) publish() {
	v := sessionView{state: s.link.state, clients: s.res.count(), lastPoll: s.link.lastPoll}
	if old := s.view.Load(); old == nil || *old != v {
		s.view.Store(&v)
	}
}

// viewOf is the state of bare's session; the zero view if it has none.
func (g *Gateway) viewOf(bare string) sessionView {
	g.mu.Lock()
	s := g.sessions[bare]
	g.mu.Unlock()
	if s == nil {
		return sessionView{}
	}
	if v := s.view.Load(); v != nil {
		return *v
	}
	return sessionView{}
}
