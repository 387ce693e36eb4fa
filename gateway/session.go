package gateway

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/sirupsen/logrus"
	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
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

// session is one Jabber user (bare JID) of the gateway. Everything but
// the fields set by newSession is touched only by the session's own work
// items, which the scheduler runs one at a time: no lock needed.
type session struct {
	g    *Gateway
	jid  jid.JID // bare
	key  string  // jid as text: the store's key
	task *task
	log  logrus.FieldLogger

	loaded  bool
	reg     *store.Registration // nil while not registered
	pending *registerResult     // a registration stored, its iq not yet answered

	resources map[string]resource // available resources by resourcepart
	resSeq    uint64

	qq        QQ
	qqUIN     qqproto.UIN // the number qq speaks for
	state     loginState
	hi, li    time.Duration  // the server's poll interval and idle timeout
	status    qqproto.Status // the user's state as QQ shows it
	statusErr bool           // the last Change_Stat failed; try again

	buddies     map[qqproto.UIN]*buddy
	needImport  bool // the buddy list could not be imported yet
	domainShown bool // the domain JID was last sent as available

	lastActive     time.Time // last message either way
	nextMsg        time.Time // next GetMsgEx
	nextStat       time.Time // next Query_Stat
	loginFailures  int
	outageReported bool      // the user was told QQ is unreachable
	failingSince   time.Time // first failed poll of a run of failures
	relogins       []time.Time

	flow sessionFlow // message and contact flows (message.go)
}

// resource is one available resource of the user.
type resource struct {
	show  string // "", away, chat, dnd, xa
	prio  int
	seq   uint64 // order of arrival, to break priority ties: latest wins
	epoch uint64 // connection epoch in which the server last confirmed it
	// viaDomain: the domain JID receives its presence, so the domain hears
	// when it goes. Otherwise buddies holds the buddy JIDs it is available
	// to, and it is gone when none is left.
	viaDomain bool
	buddies   map[qqproto.UIN]bool
}

// buddy is one QQ contact as the session knows it.
type buddy struct {
	uin    qqproto.UIN
	nick   string
	face   int
	status qqproto.Status // StatusOffline when not online
	listed bool           // on the user's QQ buddy list
	sent   shownPresence  // what the buddy's JID last showed the user
}

// shownPresence is a presence as the user sees it; the zero value is
// unavailable, which is what a contact shows before anything was sent.
type shownPresence struct {
	available    bool
	show, status string
	nick         string
	picture      int // of the avatar whose XEP-0153 hash the presence carries
}

func newSession(g *Gateway, bare jid.JID) *session {
	s := &session{
		g:         g,
		jid:       bare,
		key:       bare.String(),
		log:       g.log.WithField("jid", bare.String()),
		resources: make(map[string]resource),
		buddies:   make(map[qqproto.UIN]*buddy),
		status:    qqproto.StatusOffline,
	}
	s.task = newTask(s.poll)
	return s
}

// handle serves one inbound stanza of the user.
func (s *session) handle(ctx context.Context, st xmppcomp.Stanza) {
	defer s.g.maybeDrop(s)
	if err := s.load(ctx); err != nil {
		s.log.WithError(err).Error("gateway: cannot read registration")
		// A message is dropped here (and leaves the outbox afterwards), so
		// its sender must hear of it, as must an iq's.
		if st.Name != "presence" {
			s.replyError(ctx, st, err, forRequest)
		}
		return
	}
	switch st.Name {
	case "iq":
		s.handleIQ(ctx, st)
	case "presence":
		s.handlePresence(ctx, st)
	case "message":
		s.handleMessage(ctx, st)
	}
}

// load reads the user's registration once.
func (s *session) load(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	r, err := s.g.st.Registration(ctx, s.key)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	default:
		s.setRegistration(&r)
	}
	s.loaded = true
	return nil
}

func (s *session) setRegistration(r *store.Registration) {
	s.reg = r
	if r == nil {
		s.log = s.g.log.WithField("jid", s.key)
		return
	}
	s.log = s.g.log.WithFields(logrus.Fields{"jid": s.key, "uin": r.UIN})
}

func (s *session) uin() qqproto.UIN {
	if s.reg == nil {
		return 0
	}
	return qqproto.UIN(s.reg.UIN)
}

// send encodes a stanza, logging a failure: stanzas to the user are best
// effort, since what they show is re-sent on the next connect.
func (s *session) send(ctx context.Context, v any) error {
	err := s.g.send(ctx, v)
	if err != nil && ctx.Err() == nil {
		s.log.WithError(err).Debug("gateway: stanza not sent")
	}
	return err
}

// ---- resources and the login life cycle ----

// wantOnline reports whether the session should be logged in to QQ: the
// user is registered and has an available resource.
func (s *session) wantOnline() bool {
	return s.reg != nil && len(s.resources) > 0
}

// setResource records a presence of resource res sent to target: the
// domain (uin 0) or a buddy JID.
//
// A server broadcasts a user's presence to every contact with a
// subscription to it, so each change may arrive once per buddy and once
// for the domain. An unavailable to one buddy JID alone is no departure:
// servers send that when the user removes the contact from the roster
// (RFC 6121 3.3.2). So a resource the domain sees goes only when the
// domain hears it, and one seen only by buddy JIDs when the last of them
// does. An unavailable from the bare JID is ignored too: servers send one
// to acknowledge a subscribe (Prosody) or to answer a probe; resources gone
// unseen are swept after a reconnect (sweepResources).
func (s *session) setResource(res string, target qqproto.UIN, available bool, show string, prio int) {
	r, known := s.resources[res]
	if !available {
		switch {
		case !known:
		case target == 0:
			delete(s.resources, res)
		case r.viaDomain:
		default:
			delete(r.buddies, target)
			if len(r.buddies) == 0 {
				delete(s.resources, res)
			}
		}
		return
	}
	s.resSeq++
	r.show, r.prio, r.seq, r.epoch = normalShow(show), prio, s.resSeq, s.g.epoch.Load()
	if target == 0 {
		r.viaDomain, r.buddies = true, nil
	} else if !r.viaDomain {
		if r.buddies == nil {
			r.buddies = make(map[qqproto.UIN]bool)
		}
		r.buddies[target] = true
	}
	s.resources[res] = r
}

func normalShow(show string) string {
	switch show {
	case "away", "chat", "dnd", "xa":
		return show
	}
	return ""
}

// wantedStatus is the QQ state for the user's presence: that of the
// available resource with the highest priority (the latest of equals).
func (s *session) wantedStatus() qqproto.Status {
	var best resource
	found := false
	for _, r := range s.resources {
		if !found || r.prio > best.prio || (r.prio == best.prio && r.seq > best.seq) {
			best, found = r, true
		}
	}
	if !found {
		return qqproto.StatusOffline
	}
	return statusForShow(best.show)
}

// statusForShow maps an XMPP <show/> to a QQ state (spec: state mapping).
func statusForShow(show string) qqproto.Status {
	switch show {
	case "away", "xa", "dnd":
		return qqproto.StatusBusy
	}
	return qqproto.StatusOnline
}

// update brings the QQ side in line with what the user wants now.
func (s *session) update(ctx context.Context) {
	want := s.wantOnline()
	switch {
	case want && s.state == stateOffline:
		s.login(ctx)
	case want && s.state == stateOnline:
		s.syncStatus(ctx)
	case !want && s.state == stateOnline:
		s.logout(ctx)
	case !want && (s.state == stateRetrying || s.state == stateRefused):
		// Nobody is waiting for QQ any more: stop retrying. A refused
		// login is tried once more when a resource comes back.
		s.state = stateOffline
		s.g.sched.cancel(s.task)
	}
}

// login logs in to QQ with the stored password.
func (s *session) login(ctx context.Context) {
	if s.reg == nil {
		return
	}
	s.ensureClient()
	s.log.Debug("gateway: logging in to QQ")
	res, err := s.qq.Login(ctx, s.reg.PasswordMD5)
	if err != nil {
		s.loginFailed(ctx, err)
		return
	}
	s.loggedIn(ctx, res)
}

// ensureClient makes the QQ client for the registered number.
func (s *session) ensureClient() {
	if s.qq == nil || s.qqUIN != s.uin() {
		s.qq = s.g.cfg.NewQQ(s.uin())
		s.qqUIN = s.uin()
	}
}

// loggedIn takes a successful Login: the session is online, the domain JID
// shows it, the user's state is set, the buddy list imported and the
// polls scheduled. Safe to call again on an online session.
func (s *session) loggedIn(ctx context.Context, res qqproto.LoginResult) {
	if s.state != stateOnline {
		s.log.Info("gateway: logged in to QQ")
	}
	s.state = stateOnline
	s.hi, s.li = res.PollInterval, res.IdleTimeout
	s.loginFailures = 0
	s.outageReported = false
	s.failingSince = time.Time{}
	s.status = qqproto.StatusOnline // what Login leaves
	s.showDomain(ctx, true, "")
	s.syncStatus(ctx)
	s.importRoster(ctx)
	if s.state != stateOnline {
		return // the import found the session gone and handled it
	}
	s.replayOutbox(ctx)
	now := time.Now()
	s.nextMsg = now
	s.nextStat = now.Add(s.statInterval())
	s.reschedule()
}

// loginFailed handles a failed Login: a refusal is final until the user
// changes something; anything else is retried with backoff.
func (s *session) loginFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // shutting down
	}
	var le *qqproto.LoginError
	var re *qqproto.ResultError
	if errors.As(err, &le) || (errors.As(err, &re) && re.Code == qqproto.ResInvalidUIN) {
		s.log.WithError(err).Warn("gateway: QQ refused the login")
		s.hideAll(ctx, "QQ refused the login")
		s.state = stateRefused
		s.g.sched.cancel(s.task)
		s.tellUser(ctx, err)
		return
	}
	s.loginFailures++
	wait := backoff(s.g.cfg.LoginBackoffMin, s.g.cfg.LoginBackoffMax, s.loginFailures-1)
	s.log.WithError(err).WithField("retry_in", wait.Round(time.Millisecond)).Warn("gateway: QQ login failed")
	s.hideAll(ctx, "QQ server unreachable")
	s.state = stateRetrying
	s.g.sched.schedule(s.task, time.Now().Add(wait))
	if !s.outageReported {
		s.outageReported = true
		s.tellUser(ctx, err)
	}
}

// backoff is min doubled n times, capped at max, with jitter so that
// sessions that failed together do not retry together.
func backoff(min, max time.Duration, n int) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// tellUser sends a presence error from the domain JID to every available
// resource of the user, saying why the session is not online.
func (s *session) tellUser(ctx context.Context, err error) {
	se := toStanzaError(err, forLogin)
	for res := range s.resources {
		to := s.key
		if res != "" {
			to += "/" + res
		}
		s.send(ctx, presence{From: s.g.dom, To: to, Type: presError, Error: &se})
	}
}

// logout ends the QQ session: the user's last resource went away.
func (s *session) logout(ctx context.Context) {
	s.hideAll(ctx, "")
	if s.qq != nil {
		if err := s.qq.Logout(ctx); err != nil {
			s.log.WithError(err).Warn("gateway: QQ logout failed")
		}
	}
	s.state = stateOffline
	s.status = qqproto.StatusOffline
	s.g.sched.cancel(s.task)
	s.log.Info("gateway: logged out of QQ")
}

// syncStatus sends Change_Stat when the user's presence asks for another
// QQ state than QQ shows.
func (s *session) syncStatus(ctx context.Context) {
	want := s.wantedStatus()
	if s.state != stateOnline || want == qqproto.StatusOffline || (want == s.status && !s.statusErr) {
		return
	}
	if err := s.qq.SetStatus(ctx, want); err != nil {
		s.statusErr = true
		s.qqFailed(ctx, err)
		return
	}
	s.statusErr = false
	s.status = want
	s.log.WithField("status", want).Debug("gateway: QQ state changed")
}

// ---- polling ----

// poll is the session's scheduled step: a login retry, or GetMsgEx and
// Query_Stat when due.
func (s *session) poll(ctx context.Context) {
	switch s.state {
	case stateRetrying:
		if s.wantOnline() {
			s.login(ctx)
		} else {
			s.state = stateOffline
		}
		return
	case stateOnline:
	default:
		return
	}
	now := time.Now()
	if s.needImport {
		s.importRoster(ctx)
	}
	// The next times are set before the requests, so that a re-login
	// within them can ask for an early repeat.
	if s.state == stateOnline && !now.Before(s.nextMsg) {
		s.nextMsg = now.Add(s.msgInterval())
		s.pollMessages(ctx)
	}
	if s.state == stateOnline && !now.Before(s.nextStat) {
		s.nextStat = now.Add(s.statInterval())
		s.refreshStates(ctx)
	}
	if s.state == stateOnline && s.statusErr {
		s.syncStatus(ctx)
	}
	if s.state == stateOnline {
		s.reschedule()
	}
}

// reschedule sets the next poll to the earlier of the next GetMsgEx and
// the next Query_Stat.
func (s *session) reschedule() {
	at := s.nextMsg
	if s.nextStat.Before(at) {
		at = s.nextStat
	}
	s.g.sched.schedule(s.task, at)
}

// msgInterval is the GetMsgEx period: short while a conversation is
// active, long when idle, never longer than the server's HI nor near its
// idle timeout.
func (s *session) msgInterval() time.Duration {
	d := s.g.cfg.PollIdle
	if !s.lastActive.IsZero() && time.Since(s.lastActive) < s.g.cfg.ActiveFor {
		d = s.g.cfg.PollActive
	}
	if s.hi > 0 && d > s.hi {
		d = s.hi
	}
	if s.li > 0 && d > s.li/2 {
		d = s.li / 2
	}
	return d
}

// defaultHI stands in for a server that sent no HI.
const defaultHI = 60 * time.Second

// statInterval is the Query_Stat period.
func (s *session) statInterval() time.Duration {
	d := s.g.cfg.StatusInterval
	if d == 0 {
		d = s.hi
	}
	if d <= 0 {
		d = defaultHI
	}
	if s.li > 0 && d > s.li/2 {
		d = s.li / 2
	}
	return d
}

// markActive notes a message either way: the session polls often for a
// while, starting now.
func (s *session) markActive() {
	s.lastActive = time.Now()
	if s.state != stateOnline {
		return
	}
	next := s.lastActive.Add(s.g.cfg.PollActive)
	if s.nextMsg.After(next) {
		s.nextMsg = next
		s.g.sched.scheduleEarlier(s.task, next)
	}
}

// pollMessages fetches and dispatches what QQ holds for the user.
func (s *session) pollMessages(ctx context.Context) {
	msgs, err := s.qq.Messages(ctx)
	if err != nil {
		s.qqFailed(ctx, err)
		return
	}
	s.failingSince = time.Time{}
	s.deliverQQ(ctx, msgs) // even none: it retries what waits in the queue
}

// handleQQMessage dispatches one GetMsgEx item: state notices here, the
// rest to the message and contact flows (message.go, contacts.go).
func (s *session) handleQQMessage(ctx context.Context, m qqproto.Message) {
	if st, ok := m.State(); ok {
		s.onBuddyState(ctx, m.From, st)
		return
	}
	switch m.Type {
	case qqproto.MsgBuddy:
		s.onBuddyMessage(ctx, m)
	case qqproto.MsgAddRequest:
		s.onAddRequest(ctx, m)
	case qqproto.MsgAddAccepted:
		s.onAddAccepted(ctx, m)
	case qqproto.MsgAddRefused:
		s.onAddRefused(ctx, m)
	default:
		s.onSystemNotice(ctx, m)
	}
}

// onBuddyState takes an MT=99 state notice.
func (s *session) onBuddyState(ctx context.Context, uin qqproto.UIN, st qqproto.Status) {
	if uin == s.uin() {
		return
	}
	b := s.buddy(uin)
	b.status = st
	s.announce(ctx, b)
}

// buddy returns the session's record of uin, creating one.
func (s *session) buddy(uin qqproto.UIN) *buddy {
	b := s.buddies[uin]
	if b == nil {
		b = &buddy{uin: uin, status: qqproto.StatusOffline}
		s.buddies[uin] = b
	}
	return b
}

// refreshStates asks Query_Stat who is online and sends what changed.
func (s *session) refreshStates(ctx context.Context) {
	online, err := s.qq.OnlineBuddies(ctx)
	if err != nil {
		s.qqFailed(ctx, err)
		return
	}
	s.applyOnline(ctx, online)
}

// applyOnline sets every buddy's state from an online list: those not in
// it are offline. Only changes are announced.
func (s *session) applyOnline(ctx context.Context, online []qqproto.Buddy) {
	seen := make(map[qqproto.UIN]bool, len(online))
	for _, ob := range online {
		if ob.UIN == s.uin() {
			continue
		}
		seen[ob.UIN] = true
		b := s.buddy(ob.UIN)
		b.status = ob.Status
		b.face = ob.Face
		if ob.Nick != "" && ob.Nick != b.nick {
			s.setNick(ctx, b, ob.Nick, ob.Face)
		}
	}
	for _, b := range s.sortedBuddies() {
		if !seen[b.uin] {
			b.status = qqproto.StatusOffline
		}
		s.announce(ctx, b)
	}
}

// setNick records a buddy's new nickname, in the store too if it is a
// contact there.
func (s *session) setNick(ctx context.Context, b *buddy, nick string, face int) {
	old := b.nick
	b.nick = nick
	if old == "" || s.reg == nil {
		return // first sight: the import stores it
	}
	c, err := s.g.st.Contact(ctx, s.key, int64(b.uin))
	if err != nil {
		return
	}
	c.Nick, c.Face = nick, face
	if err := s.g.st.PutContact(ctx, s.key, c); err != nil {
		s.log.WithError(err).Warn("gateway: cannot store a buddy's new nickname")
	}
}

func (s *session) sortedBuddies() []*buddy {
	out := make([]*buddy, 0, len(s.buddies))
	for _, b := range s.buddies {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].uin < out[j].uin })
	return out
}

// qqFailed handles an error of a command of a live session: RES=20 means
// the server dropped the session, which is quietly logged in again; other
// failures are borne until the server must have dropped the session.
func (s *session) qqFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if errors.Is(err, qqproto.ErrNotLoggedIn) {
		s.relogin(ctx)
		return
	}
	now := time.Now()
	if s.failingSince.IsZero() {
		s.failingSince = now
	}
	s.log.WithError(err).Warn("gateway: QQ request failed")
	limit := s.li
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	if now.Sub(s.failingSince) >= limit {
		// QQ has certainly ended the session by now: start over.
		s.loginFailed(ctx, err)
	}
}

// reloginBurst bounds quiet re-logins: more than this many within a
// minute means the server keeps dropping the session, and the session
// backs off like an unreachable server instead of looping.
const reloginBurst = 3

// relogin logs in again after RES=20 without the user seeing anything
// but real changes.
func (s *session) relogin(ctx context.Context) {
	now := time.Now()
	kept := s.relogins[:0]
	for _, t := range s.relogins {
		if now.Sub(t) < time.Minute {
			kept = append(kept, t)
		}
	}
	s.relogins = append(kept, now)
	if len(s.relogins) > reloginBurst {
		s.relogins = nil
		s.loginFailed(ctx, errors.New("the QQ server keeps dropping the session"))
		return
	}
	s.log.Info("gateway: QQ session lost (RES=20); logging in again")
	res, err := s.qq.Login(ctx, s.reg.PasswordMD5)
	if err != nil {
		s.loginFailed(ctx, err)
		return
	}
	s.hi, s.li = res.PollInterval, res.IdleTimeout
	s.failingSince = time.Time{}
	s.status = qqproto.StatusOnline
	if s.wantedStatus() != s.status {
		s.statusErr = true // retried by the next poll, not from within this error path
	}
	s.nextMsg = now
	s.nextStat = now // the states may have changed while the session was gone
	s.reschedule()   // also when the re-login came from a message or a vCard, not a poll
}

// ---- what the user sees ----

// presenceFor is what a buddy's JID shows for its QQ state (spec: state
// mapping): online is available, busy is away, the rest unavailable.
func presenceFor(b *buddy) shownPresence {
	switch b.status {
	case qqproto.StatusOnline:
		return shownPresence{available: true, nick: b.nick, picture: avatarPicture(b.face)}
	case qqproto.StatusBusy:
		return shownPresence{available: true, show: "away", status: busyStatus, nick: b.nick, picture: avatarPicture(b.face)}
	}
	return shownPresence{}
}

// busyStatus is the status text of a busy buddy.
const busyStatus = "忙碌 / busy"

// buddyPresence is the stanza for a buddy's shown presence.
func (s *session) buddyPresence(b *buddy, sp shownPresence, to string) presence {
	p := presence{From: s.g.buddyJID(b.uin), To: to}
	if !sp.available {
		p.Type = presUnavailable
		return p
	}
	p.Show, p.Status, p.Nick = sp.show, sp.status, newNick(b.nick)
	p.Extra = s.buddyPresenceExtras(b)
	return p
}

// announce sends a buddy's presence if it differs from what the user
// last saw from that JID.
func (s *session) announce(ctx context.Context, b *buddy) {
	want := presenceFor(b)
	if want == b.sent {
		return
	}
	if s.send(ctx, s.buddyPresence(b, want, s.key)) == nil {
		b.sent = want
	}
}

// reshow sends a buddy's presence even if the user should already see it
// (a new roster item, a reconnect). What the user saw is only replaced
// once the send succeeded, so a failure leaves hideAll still knowing.
func (s *session) reshow(ctx context.Context, b *buddy) {
	want := presenceFor(b)
	if s.send(ctx, s.buddyPresence(b, want, s.key)) == nil {
		b.sent = want
	}
}

// showDomain sends the domain JID's presence if it changed: available
// while logged in to QQ, else unavailable with an optional reason.
func (s *session) showDomain(ctx context.Context, available bool, status string) {
	if available == s.domainShown {
		return
	}
	p := presence{From: s.g.dom, To: s.key}
	if !available {
		p.Type, p.Status = presUnavailable, status
	}
	if s.send(ctx, p) == nil {
		s.domainShown = available
	}
}

// hideAll makes every JID of the transport the user saw available show
// unavailable: each buddy, then the domain.
func (s *session) hideAll(ctx context.Context, reason string) {
	for _, b := range s.sortedBuddies() {
		if b.sent.available {
			if s.send(ctx, presence{From: s.g.buddyJID(b.uin), To: s.key, Type: presUnavailable}) == nil {
				b.sent = shownPresence{}
			}
		}
		b.status = qqproto.StatusOffline
	}
	s.showDomain(ctx, false, reason)
}

// reannounce re-sends, after a reconnect of the component, everything
// the user should see: stanzas sent while it was down were lost.
func (s *session) reannounce(ctx context.Context) {
	if s.state != stateOnline {
		return
	}
	s.domainShown = false
	s.showDomain(ctx, true, "")
	for _, b := range s.sortedBuddies() {
		if presenceFor(b).available {
			s.reshow(ctx, b) // may have been lost: send it again
			continue
		}
		s.announce(ctx, b)
	}
}

// sweepResources forgets resources the user's server did not confirm
// since the reconnect of the given epoch: they went away unseen.
func (s *session) sweepResources(ctx context.Context, epoch uint64) {
	changed := false
	for k, r := range s.resources {
		if r.epoch < epoch {
			delete(s.resources, k)
			changed = true
		}
	}
	if changed {
		s.log.Info("gateway: resources gone while disconnected")
		s.update(ctx)
	}
	s.g.maybeDrop(s)
}
