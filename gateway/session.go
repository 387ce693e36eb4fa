package gateway

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// session is one Jabber user (bare JID) of the gateway: the only place
// that knows both the user's XMPP side (res) and QQ side (link). Its state
// is touched only by its own work items, which the scheduler runs one at
// a time: no lock needed.
type session struct {
	g    *Gateway
	e    *emitter
	jid  jid.JID // bare
	key  string  // jid as text: the store's key
	task *task
	log  sessionLog

	loaded    bool
	leased    bool // this process holds the user's lease (cluster.go)
	leaseWait bool // another process holds it; a login is tried when it expires
	// presenceAsked is when a probe went to a user whose message came
	// before any presence, in a cluster (cluster.go); zero: none pending.
	presenceAsked time.Time
	reg           *store.Registration // nil while not registered
	// afterResult is work an iq handler leaves for after its result went
	// out, such as the presences that follow a registration.
	afterResult func(context.Context)

	res     resources // the user's available resources
	link    qqLink    // the QQ session
	buddies buddyList // the QQ contacts as the user sees them
	shown   bool      // the domain JID was last sent as available
	drained bool      // every QQ → XMPP item in the store was delivered
	// unremoved holds QQ → XMPP rows the server confirmed but the store
	// could not remove (disk full): never sent again, removed later.
	unremoved map[int64]bool
	importDue bool // the buddy list could not be imported yet
	// importFailures counts imports failed in a row; the next is not
	// tried before importAfter.
	importFailures int
	importAfter    time.Time
	runs           commandRuns // commands waiting for the user's answers
	roster         rosterCopy  // the transport's items in the user's roster, where the gateway writes it
	// vcardNoFetchUntil: QQ failed a GetInfo for a vCard4 notification,
	// and is not asked for another before then (pep.go).
	vcardNoFetchUntil time.Time

	view atomic.Pointer[sessionView] // a copy of the state for others to read (stats.go)
}

// buddy is one QQ contact as the session knows it. A gateway holds one
// for each buddy of each user, so it is kept to 24 bytes with no pointer
// (TestBuddyRecordStaysSmall): its nickname is in its list's names
// (buddyList.nick), and what the user was last shown is the few facts of
// shownPresence that differ from the buddy's own (see shows).
type buddy struct {
	uin    qqproto.UIN
	nickAt uint32 // where its nickname starts in the list's names
	face   int32
	// sentPicture is the picture of the avatar the last presence the user
	// was shown carried; notified is 1 + the picture number of the
	// avatar every resource that wants avatar notifications was sent
	// (pep.go), 0 for none: an avatar is drawn from its picture number
	// alone, and those are at most maxAvatarPicture.
	sentPicture, notified int16
	nickLen               uint16
	status                uint8 // a qqproto.Status; StatusOffline when not online
	flags                 buddyFlags
}

// A picture number must fit buddy.sentPicture and buddy.notified: this
// does not compile if maxAvatarPicture + 1 does not fit an int16.
var _ [math.MaxInt16 - maxAvatarPicture - 1]struct{}

// buddyFlags are a buddy's yes-or-no facts.
type buddyFlags uint8

const (
	flagListed        buddyFlags = 1 << iota // on the user's QQ buddy list
	flagSentAvailable                        // the user was last shown it available,
	flagSentBusy                             // busy,
	flagSentNick                             // with its nickname as it is now
)

func (b *buddy) listed() bool { return b.flags&flagListed != 0 }

// setListed records whether the buddy is on the user's QQ list.
func (b *buddy) setListed(on bool) {
	if on {
		b.flags |= flagListed
	} else {
		b.flags &^= flagListed
	}
}

// setState records the buddy's QQ state; one QQ never sends (they are
// all below 256) counts as offline.
func (b *buddy) setState(st qqproto.Status) {
	if !st.Valid() {
		st = qqproto.StatusOffline
	}
	b.status = uint8(st)
}

// shows reports whether p is what the buddy's JID last showed the user.
func (b *buddy) shows(p shownPresence) bool {
	return p.available == (b.flags&flagSentAvailable != 0) && p.busy == (b.flags&flagSentBusy != 0) &&
		p.picture == int32(b.sentPicture) && (!p.available || b.flags&flagSentNick != 0)
}

// record notes that the user was shown p, which buddyList.presence made.
func (b *buddy) record(p shownPresence) {
	b.flags &= flagListed
	if p.available {
		b.flags |= flagSentAvailable | flagSentNick
	}
	if p.busy {
		b.flags |= flagSentBusy
	}
	b.sentPicture = int16(p.picture)
}

func newSession(g *Gateway, bare jid.JID) *session {
	s := &session{
		g:   g,
		e:   g.emit,
		jid: bare,
		key: bare.String(),
	}
	s.log = sessionLog{s}
	s.link.init(&g.cfg)
	s.task = newTask(func(ctx context.Context) { s.poll(ctx); s.publish() })
	return s
}

// serve handles one inbound stanza of the user: the edge where every
// handler's error becomes the stanza error the user sees.
func (s *session) serve(ctx context.Context, in inbound) {
	defer s.g.maybeDrop(s)
	if in.msg != nil {
		defer s.doneOutgoing(ctx, in.msg)
	}
	err := in.bad
	if err == nil {
		if err = s.load(ctx); err != nil && in.pres != nil {
			return // a presence is not answered; the next one tries again
		}
	}
	if err == nil {
		switch {
		case in.msg != nil:
			err = s.sendOutgoing(ctx, in)
		case in.line != nil:
			err = s.handleLine(ctx, in)
		case in.pres != nil:
			err = s.handlePresence(ctx, in)
		case in.iq.Local != "":
			err = s.handleIQ(ctx, in)
		}
	}
	if err == nil {
		return
	}
	if in.msg != nil {
		s.g.cfg.Metrics.failedMsg(store.ToQQ, failReason(err), 1)
	}
	if ctx.Err() == nil || errors.As(err, new(*userError)) {
		s.log.WithError(err).WithField("stanza", in.st.Name).Debug("gateway: answering with an error")
	}
	if err := s.answerError(ctx, in, err); err != nil {
		s.log.WithError(err).Debug("gateway: error reply not sent")
	}
}

// answerError tells the user err: as a stanza error, or, answering a chat
// command line, as a chat message, which every client shows.
func (s *session) answerError(ctx context.Context, in inbound, err error) error {
	se := stanzaError(err, purposeOf(in))
	switch {
	case in.line != nil:
		return s.e.message(ctx, in.st.From.String(), qqMessage{typ: in.line.typ, text: "⚠ " + se.Text[""]})
	case appCondition(err) != "":
		return s.e.iqError(ctx, in.st, se, appCondition(err))
	}
	return s.e.replyError(ctx, in.st, se)
}

// purposeOf says how an error of in is to be read.
func purposeOf(in inbound) errPurpose {
	if in.iq.Space == nsRegister && in.st.Type == "set" {
		return forRegistration
	}
	return forRequest
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
		s.log.WithError(err).Error("gateway: cannot read the registration")
		return err
	default:
		s.setRegistration(&r)
	}
	s.loaded = true
	return nil
}

func (s *session) setRegistration(r *store.Registration) { s.reg = r }

func (s *session) uin() qqproto.UIN {
	if s.reg == nil {
		return 0
	}
	return qqproto.UIN(s.reg.UIN)
}

// online reports whether the QQ session is logged in.
func (s *session) online() bool { return s.link.state == stateOnline }

// buddy returns the session's record of uin, creating one.
func (s *session) buddy(uin qqproto.UIN) *buddy { return s.buddies.add(uin) }

// sortedBuddies is the buddies in order, to go through while the work
// done for each may add or remove buddies.
func (s *session) sortedBuddies() []*buddy { return s.buddies.snapshot() }

// nick is a buddy's nickname, "" if none is known.
func (s *session) nick(b *buddy) string { return s.buddies.nick(b) }
