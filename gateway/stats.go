package gateway

// What the administrators' commands read: running totals since the
// gateway started, and a copy of each session's state. A session's state
// is touched only by its own work items, so it publishes a copy after
// each for others to read.

import (
	"context"
	"sync/atomic"
	"time"

	"qqxmpp/qqproto"
)

// counters are the gateway's totals since it started.
type counters struct {
	toQQ       atomic.Int64 // users' messages QQ took
	fromQQ     atomic.Int64 // messages from QQ sent to users (chats and notices)
	qqRequests atomic.Int64 // requests of the QQ seam (a retried HTTP request counts once)
	qqErrors   atomic.Int64 // those that failed, for whatever reason
}

// note counts one QQ request and its outcome.
func (c *counters) note(err error) error {
	c.qqRequests.Add(1)
	if err != nil {
		c.qqErrors.Add(1)
	}
	return err
}

// counted counts a QQ request that returns a value.
func counted[T any](c *counters) func(T, error) (T, error) {
	return func(v T, err error) (T, error) { return v, c.note(err) }
}

// countQQ makes every client newQQ makes count its requests in c.
func (c *counters) countQQ(newQQ func(qqproto.UIN) QQ) func(qqproto.UIN) QQ {
	return func(uin qqproto.UIN) QQ { return countingQQ{newQQ(uin), c} }
}

// countingQQ is a QQ client that counts its requests.
type countingQQ struct {
	qq QQ
	c  *counters
}

func (q countingQQ) Login(ctx context.Context, md5 string) (qqproto.LoginResult, error) {
	return counted[qqproto.LoginResult](q.c)(q.qq.Login(ctx, md5))
}

func (q countingQQ) Buddies(ctx context.Context) ([]qqproto.UIN, error) {
	return counted[[]qqproto.UIN](q.c)(q.qq.Buddies(ctx))
}

func (q countingQQ) OnlineBuddies(ctx context.Context) ([]qqproto.Buddy, error) {
	return counted[[]qqproto.Buddy](q.c)(q.qq.OnlineBuddies(ctx))
}

func (q countingQQ) Profile(ctx context.Context, uin qqproto.UIN) (qqproto.Profile, error) {
	return counted[qqproto.Profile](q.c)(q.qq.Profile(ctx, uin))
}

func (q countingQQ) AddBuddy(ctx context.Context, uin qqproto.UIN) (qqproto.AddResult, error) {
	return counted[qqproto.AddResult](q.c)(q.qq.AddBuddy(ctx, uin))
}

func (q countingQQ) AnswerAdd(ctx context.Context, uin qqproto.UIN, code qqproto.AckCode, reason string) error {
	return q.c.note(q.qq.AnswerAdd(ctx, uin, code, reason))
}

func (q countingQQ) RemoveBuddy(ctx context.Context, uin qqproto.UIN) error {
	return q.c.note(q.qq.RemoveBuddy(ctx, uin))
}

func (q countingQQ) SetStatus(ctx context.Context, st qqproto.Status) error {
	return q.c.note(q.qq.SetStatus(ctx, st))
}

func (q countingQQ) Logout(ctx context.Context) error { return q.c.note(q.qq.Logout(ctx)) }

func (q countingQQ) Messages(ctx context.Context) ([]qqproto.Message, error) {
	return counted[[]qqproto.Message](q.c)(q.qq.Messages(ctx))
}

func (q countingQQ) SendMessage(ctx context.Context, to qqproto.UIN, text string) error {
	return q.c.note(q.qq.SendMessage(ctx, to, text))
}

// sessionView is what others may read of a session.
type sessionView struct {
	state    loginState
	clients  int // available resources
	lastPoll time.Time
}

// publish makes the session's state readable by others; called after each
// of its work items.
func (s *session) publish() {
	v := sessionView{state: s.link.state, clients: len(s.res.m), lastPoll: s.link.lastPoll}
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

// sessionCounts are the sessions in memory and those logged in to QQ.
func (g *Gateway) sessionCounts() (all, online int) {
	for _, s := range g.snapshot() {
		all++
		if v := s.view.Load(); v != nil && v.state == stateOnline {
			online++
		}
	}
	return all, online
}
