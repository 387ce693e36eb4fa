package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/sirupsen/logrus"

	"qqxmpp/qqproto"
)

// loginState is where a session stands with QQ.
type loginState int

const (
	stateOffline  loginState = iota // not logged in, nothing pending
	stateOnline                     // logged in; polls scheduled
	stateRetrying                   // the QQ server could not be reached; a retry is scheduled
	stateRefused                    // QQ refused the stored password; no retry until something changes
)

func (s loginState) String() string {
	switch s {
	case stateOnline:
		return "online"
	case stateRetrying:
		return "retrying"
	case stateRefused:
		return "refused"
	}
	return "offline"
}

// qqLink is a session's QQ side: the client, the login state, the poll
// timetable and the bookkeeping of failures. It sends nothing to XMPP.
type qqLink struct {
	cfg       *Config
	qq        QQ
	uin       qqproto.UIN // the number qq speaks for
	state     loginState
	hi, li    time.Duration  // the server's poll interval and idle timeout
	status    qqproto.Status // the user's state as QQ shows it
	statusErr bool           // the last Change_Stat failed; try again

	lastActive  time.Time // last message either way
	lastPoll    time.Time // last GetMsgEx that QQ answered
	nextMsg     time.Time // next GetMsgEx
	nextStat    time.Time // next Query_Stat
	outboxRetry time.Time // next retry of messages QQ may have taken; zero: none

	// fetchSeq is the SEQ of the GetMsgEx whose items are not yet queued
	// (a lost reply, or one read from the store at the first poll), 0 when
	// the next fetch takes a fresh one.
	fetchSeq   int64
	fetchKnown bool // fetchSeq was read from the store

	retry          *backoff.ExponentialBackOff // while logins fail; nil before the first failure
	outageReported bool                        // the user was told QQ is unreachable
	failingSince   time.Time                   // first failed poll of a run of failures
	relogins       []time.Time
}

func (l *qqLink) init(cfg *Config) {
	l.cfg = cfg
	l.status = qqproto.StatusOffline
}

// client returns the QQ client for uin, making one if needed.
func (l *qqLink) client(uin qqproto.UIN) QQ {
	if l.qq == nil || l.uin != uin {
		l.qq, l.uin = l.cfg.NewQQ(uin), uin
	}
	return l.qq
}

// loggedIn records a successful Login.
func (l *qqLink) loggedIn(res qqproto.LoginResult, now time.Time) {
	l.state = stateOnline
	l.hi, l.li = res.PollInterval, res.IdleTimeout
	l.status = qqproto.StatusOnline // what Login leaves
	l.outageReported = false
	l.failingSince = time.Time{}
	if l.retry != nil {
		l.retry.Reset()
	}
	l.nextMsg = now
	l.nextStat = now.Add(l.statInterval())
}

// nextRetry is the wait before the next login attempt after a failure.
func (l *qqLink) nextRetry() time.Duration {
	if l.retry == nil {
		l.retry = backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(l.cfg.LoginBackoffMin),
			backoff.WithMaxInterval(l.cfg.LoginBackoffMax),
			backoff.WithMultiplier(2),
			backoff.WithMaxElapsedTime(0), // never give up: the user wants QQ
		)
	}
	return l.retry.NextBackOff()
}

// reloginBurst bounds quiet re-logins: more than this many within a
// minute means the server keeps dropping the session, and the session
// backs off like an unreachable server instead of looping.
const reloginBurst = 3

// mayRelogin notes a quiet re-login at now and reports whether it is
// within the burst allowed.
func (l *qqLink) mayRelogin(now time.Time) bool {
	kept := l.relogins[:0]
	for _, t := range l.relogins {
		if now.Sub(t) < time.Minute {
			kept = append(kept, t)
		}
	}
	l.relogins = append(kept, now)
	if len(l.relogins) > reloginBurst {
		l.relogins = nil
		return false
	}
	return true
}

// failedTooLong notes a failed request at now and reports whether the
// failures have lasted past the server's idle timeout: then QQ has
// certainly ended the session.
func (l *qqLink) failedTooLong(now time.Time) bool {
	if l.failingSince.IsZero() {
		l.failingSince = now
	}
	limit := l.li
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	return now.Sub(l.failingSince) >= limit
}

// msgInterval is the GetMsgEx period: short while a conversation is
// active, long when idle, never longer than the server's HI nor near its
// idle timeout.
func (l *qqLink) msgInterval(now time.Time) time.Duration {
	d := l.cfg.PollIdle
	if !l.lastActive.IsZero() && now.Sub(l.lastActive) < l.cfg.ActiveFor {
		d = l.cfg.PollActive
	}
	if l.hi > 0 && d > l.hi {
		d = l.hi
	}
	if l.li > 0 && d > l.li/2 {
		d = l.li / 2
	}
	return d
}

// defaultHI stands in for a server that sent no HI.
const defaultHI = 60 * time.Second

// statInterval is the Query_Stat period.
func (l *qqLink) statInterval() time.Duration {
	d := l.cfg.StatusInterval
	if d == 0 {
		d = l.hi
	}
	if d <= 0 {
		d = defaultHI
	}
	if l.li > 0 && d > l.li/2 {
		d = l.li / 2
	}
	return d
}

// nextPoll is when the session's next scheduled step is due.
func (l *qqLink) nextPoll() time.Time {
	next := l.nextMsg
	if l.nextStat.Before(next) {
		next = l.nextStat
	}
	if !l.outboxRetry.IsZero() && l.outboxRetry.Before(next) {
		next = l.outboxRetry
	}
	return next
}

// retryOutboxAt asks for a retry of the kept messages at t, or earlier.
func (l *qqLink) retryOutboxAt(t time.Time) {
	if l.outboxRetry.IsZero() || t.Before(l.outboxRetry) {
		l.outboxRetry = t
	}
}

// logout ends the QQ session; a failure is only logged, since the server
// ends it anyway after its idle timeout.
func (l *qqLink) logout(ctx context.Context, log logrus.FieldLogger) {
	if err := l.end(ctx); err != nil {
		log.WithError(err).Warn("gateway: QQ logout failed")
	}
}

// end is logout for a caller that reports failures itself.
func (l *qqLink) end(ctx context.Context) error {
	var err error
	if l.qq != nil && l.state == stateOnline {
		err = l.qq.Logout(ctx)
	}
	l.state = stateOffline
	l.status = qqproto.StatusOffline
	return err
}

// ---- the session's life with QQ ----

// update brings the QQ side in line with what the user wants now: logged
// in while registered with an available resource, in the state of the
// resource that counts.
func (s *session) update(ctx context.Context) {
	want := s.reg != nil && s.res.any()
	switch st := s.link.state; {
	case want && st == stateOffline:
		s.login(ctx)
	case want && st == stateOnline:
		s.syncStatus(ctx)
	case !want && st == stateOnline:
		s.logout(ctx)
	case !want && (st == stateRetrying || st == stateRefused):
		// Nobody is waiting for QQ any more: stop retrying. A refused
		// login is tried once more when a resource comes back.
		s.link.state = stateOffline
		s.leaseWait = false
		s.g.sched.cancel(s.task)
	}
}

// login logs in to QQ with the stored password. A failure is handled
// (told, retried) here; it is returned for a caller that reports it too.
func (s *session) login(ctx context.Context) error {
	if s.reg == nil {
		return errNotRegistered
	}
	if !s.holdLease(ctx) {
		return errServedElsewhere
	}
	s.log.Debug("gateway: logging in to QQ")
	res, err := s.link.client(s.uin()).Login(ctx, s.reg.PasswordMD5)
	if err != nil {
		s.loginFailed(ctx, err)
		return err
	}
	s.loggedIn(ctx, res)
	return nil
}

// loggedIn takes a successful Login: the session is online, the domain JID
// shows it and the user's state is set; then the session settles (buddy
// list, outbox, polls) once the other sessions ready to log in have had
// their turn (scheduler.yield), or, while a connect's probes are being
// answered, once they all are (storm.go).
func (s *session) loggedIn(ctx context.Context, res qqproto.LoginResult) {
	if s.link.state != stateOnline {
		s.log.Info("gateway: logged in to QQ")
	}
	s.link.loggedIn(res, s.g.clock.Now())
	s.presenceAsked = time.Time{}
	s.showDomain(ctx, true, "")
	s.syncStatus(ctx)
	s.importDue, s.importAfter = true, time.Time{}
	if !s.g.hold(s) {
		s.g.sched.yield(s.task, func(ctx context.Context) { s.settle(ctx); s.publish() })
	}
}

// settle is the rest of a login: the buddy list, the outbox, the polls.
func (s *session) settle(ctx context.Context) {
	if !s.online() {
		return // logged out (or failed) since; the next login settles
	}
	if s.importDue {
		s.importRoster(ctx)
		if !s.online() {
			return // the import found the session gone and handled it
		}
	}
	s.replayOutbox(ctx)
	s.reschedule()
}

// loginFailed handles a failed Login: a refusal is final until the user
// changes something; anything else is retried with backoff.
func (s *session) loginFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // shutting down
	}
	if errors.As(err, new(*LoginRefusedError)) || errors.Is(err, ErrUnknownNumber) {
		s.log.WithError(err).Warn("gateway: QQ refused the login")
		s.hideAll(ctx, "QQ refused the login")
		s.link.state = stateRefused
		s.g.sched.cancel(s.task)
		s.tellUser(ctx, err)
		return
	}
	wait := s.link.nextRetry()
	s.log.WithError(err).WithField("retry_in", wait.Round(time.Millisecond)).Warn("gateway: QQ login failed")
	s.hideAll(ctx, "QQ server unreachable")
	s.link.state = stateRetrying
	s.g.sched.schedule(s.task, s.g.clock.Now().Add(wait))
	if !s.link.outageReported {
		s.link.outageReported = true
		s.tellUser(ctx, err)
	}
}

// tellUser sends a presence error from the domain JID to every available
// resource of the user, saying why the session is not online.
func (s *session) tellUser(ctx context.Context, err error) {
	se := stanzaError(err, forLogin)
	for _, res := range s.res.names() {
		to := s.key
		if res != "" {
			to += "/" + res
		}
		s.e.presenceError(ctx, 0, to, se)
	}
}

// logout ends the QQ session: the user's last resource went away.
func (s *session) logout(ctx context.Context) {
	s.hideAll(ctx, "")
	// No resource is left to have seen anything: a send of hideAll that
	// failed (the XMPP server going down) must not make the next login
	// think the user still sees the transport available.
	s.forgetShown()
	s.link.logout(ctx, s.log.entry())
	s.g.sched.cancel(s.task)
	s.releaseLease(ctx)
	s.log.Info("gateway: logged out of QQ")
}

// syncStatus sends Change_Stat when the user's presence asks for another
// QQ state than QQ shows.
func (s *session) syncStatus(ctx context.Context) {
	want := s.res.wantedStatus()
	l := &s.link
	if l.state != stateOnline || want == qqproto.StatusOffline || (want == l.status && !l.statusErr) {
		return
	}
	if err := l.qq.SetStatus(ctx, want); err != nil {
		l.statusErr = true
		s.qqFailed(ctx, err)
		return
	}
	l.statusErr = false
	l.status = want
	s.log.WithField("status", want).Debug("gateway: QQ state changed")
}

// poll is the session's scheduled step: a login retry, or GetMsgEx and
// Query_Stat when due.
func (s *session) poll(ctx context.Context) {
	l := &s.link
	switch l.state {
	case stateRetrying:
		if s.reg != nil && s.res.any() {
			s.login(ctx)
		} else {
			l.state = stateOffline
		}
		return
	case stateOnline:
	default:
		s.presenceLate(ctx)
		return
	}
	now := s.g.clock.Now()
	if s.importDue && !now.Before(s.importAfter) {
		s.importRoster(ctx)
	}
	// The next times are set before the requests, so that a re-login
	// within them can ask for an early repeat.
	if s.online() && !now.Before(l.nextMsg) {
		l.nextMsg = now.Add(l.msgInterval(now))
		s.pollMessages(ctx)
	}
	if s.online() && !now.Before(l.nextStat) {
		l.nextStat = now.Add(l.statInterval())
		s.refreshStates(ctx)
	}
	if s.online() && l.statusErr {
		s.syncStatus(ctx)
	}
	if s.online() && !l.outboxRetry.IsZero() && !now.Before(l.outboxRetry) {
		l.outboxRetry = time.Time{}
		s.replayOutbox(ctx)
	}
	if s.online() {
		s.reschedule()
	}
}

func (s *session) reschedule() { s.g.sched.schedule(s.task, s.link.nextPoll()) }

// markActive notes a message either way: the session polls often for a
// while, starting now.
func (s *session) markActive() {
	l := &s.link
	l.lastActive = s.g.clock.Now()
	if l.state != stateOnline {
		return
	}
	next := l.lastActive.Add(l.cfg.PollActive)
	if l.nextMsg.After(next) {
		l.nextMsg = next
		s.g.sched.scheduleEarlier(s.task, next)
	}
}

// pollMessages fetches and delivers what QQ holds for the user. The
// GetMsgEx goes with a SEQ stored first; a lost reply leaves it, and the
// next fetch asks again with it, so a batch QQ handed out is never lost.
func (s *session) pollMessages(ctx context.Context) {
	seq, err := s.fetchSeq(ctx)
	if err != nil {
		// QQ keeps the messages until the store can note the SEQ again.
		s.log.WithError(err).Error("gateway: cannot store the SEQ of a GetMsgEx; not fetching messages")
		return
	}
	s.g.cfg.Metrics.poll()
	msgs, err := s.link.qq.Messages(ctx, seq)
	if err != nil {
		if !errors.As(err, new(*UnreachableError)) {
			// Not carried out (a lost session, a refusal): a server may
			// remember the refusal under the SEQ, so take a fresh one.
			s.link.fetchSeq = 0
		}
		s.qqFailed(ctx, err)
		return
	}
	s.link.failingSince = time.Time{}
	s.link.lastPoll = s.g.clock.Now()
	s.link.fetchSeq = 0
	s.deliverQQ(ctx, seq, msgs) // even none: it retries what waits in the queue
}

// fetchSeq is the SEQ for the next GetMsgEx: the one a lost reply or a
// crash left, or a fresh one, written to the store before it is used.
func (s *session) fetchSeq(ctx context.Context) (int64, error) {
	l := &s.link
	if !l.fetchKnown {
		seq, err := s.g.st.FetchSeq(ctx, s.key)
		if err != nil {
			return 0, err
		}
		l.fetchSeq, l.fetchKnown = seq, true
		if seq != 0 {
			// The last GetMsgEx before a restart or a hand-over (an empty
			// reply leaves its SEQ stored): asked again, QQ answers it from
			// its memory, or anew once that has forgotten it.
			s.log.WithField("seq", seq).Debug("gateway: repeating the last GetMsgEx, whose batch may not have been queued")
		}
	}
	if l.fetchSeq != 0 {
		return l.fetchSeq, nil
	}
	seq := s.g.seqs.Next()
	if err := s.g.st.SetFetchSeq(ctx, s.key, seq); err != nil {
		return 0, err
	}
	l.fetchSeq = seq
	return seq, nil
}

// qqFailed handles an error of a command of a live session: a lost session
// is quietly logged in again; other failures are borne until the server
// must have dropped the session.
func (s *session) qqFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, ErrSessionLost) {
		s.relogin(ctx)
		return
	}
	s.log.WithError(err).Warn("gateway: QQ request failed")
	if s.link.failedTooLong(s.g.clock.Now()) {
		s.loginFailed(ctx, err) // start over
	}
}

// relogin logs in again after the server lost the session, without the
// user seeing anything but real changes.
func (s *session) relogin(ctx context.Context) {
	now := s.g.clock.Now()
	l := &s.link
	if !l.mayRelogin(now) {
		s.loginFailed(ctx, errors.New("the QQ server keeps dropping the session"))
		return
	}
	s.log.Info("gateway: QQ session lost; logging in again")
	res, err := l.qq.Login(ctx, s.reg.PasswordMD5)
	if err != nil {
		s.loginFailed(ctx, err)
		return
	}
	l.hi, l.li = res.PollInterval, res.IdleTimeout
	l.failingSince = time.Time{}
	l.status = qqproto.StatusOnline
	if s.res.wantedStatus() != l.status {
		l.statusErr = true // retried by the next poll, not from within this error path
	}
	l.nextMsg = now
	l.nextStat = now // the states may have changed while the session was gone
	s.reschedule()   // also when the re-login came from a message or a vCard, not a poll
}

// withRelogin runs a QQ request; if the server lost the session it logs
// in again and tries once more.
func (s *session) withRelogin(ctx context.Context, do func(QQ) error) error {
	err := do(s.link.qq)
	if errors.Is(err, ErrSessionLost) {
		s.relogin(ctx)
		if !s.online() {
			return err
		}
		err = do(s.link.qq)
	}
	return err
}
