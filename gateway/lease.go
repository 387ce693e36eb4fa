package gateway

// The session's side of a cluster (cluster.go): the user's lease that
// gates every QQ login, and what happens to a user's messages while this
// process takes them over from another.

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/stanza"

	"qqxmpp/store"
)

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

// waitsForLogin reports whether m, a kept message of a user this session
// is not logged in for, should wait in the outbox for a login moments
// away instead of being refused: in a cluster, while another process
// lets the user go (the lease wait), or while this one takes them over
// (takingOver).
func (s *session) waitsForLogin(ctx context.Context, m *outgoing) bool {
	if s.g.cl == nil || m.queueID == 0 {
		return false
	}
	return s.leaseWait || s.takingOver(ctx, m)
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
	if s.reg == nil || s.res.any() || s.link.state != stateOffline {
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
		s.link.logout(ctx, s.log.entry())
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
