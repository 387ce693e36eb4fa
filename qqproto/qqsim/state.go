package qqsim

import (
	"container/heap"
	"sort"
	"strconv"
	"time"

	"qqxmpp/qqproto"
)

// account is one account of the world and everything the server keeps
// about it. Guarded by Server.mu.
type account struct {
	Account               // as configured; Password cleared
	pwMD5   string        // lowercase hex
	buddies []qqproto.UIN // sorted, no duplicates
	state   qqproto.Status
	sess    *session // nil: no client logged in
	logins  int
	queue   []InboxItem            // what the next GetMsgEx returns
	inbox   []InboxItem            // everything ever delivered (newest inboxLimit)
	asks    map[qqproto.UIN]string // pending requests to add this account: requester → reason

	replay  map[replayKey]replayEntry
	replayQ []replayed // insertion order, for pruning

	log     []RequestRecord // ring of the newest requestLimit
	logNext int
}

type session struct {
	gen      uint64
	started  time.Time
	lastSeen time.Time
	lc       string
}

// InboxItem is one message or notice delivered to an account.
type InboxItem struct {
	Type qqproto.MessageType `json:"type"`
	From qqproto.UIN         `json:"from"`
	Text string              `json:"text"`
	At   time.Time           `json:"at"`
}

// RequestRecord is one protocol request an account made.
type RequestRecord struct {
	// Via is the server address the request came to (host:port): clients
	// told apart by the address they use, such as gateway processes.
	Via      string    `json:"via,omitempty"`
	Cmd      string    `json:"cmd"` // upper-cased
	Seq      string    `json:"seq"`
	Res      int       `json:"res"`
	Executed bool      `json:"executed"` // false: answered from memory, or failed before
	Replayed bool      `json:"replayed"` // answered from the replay memory
	Fault    string    `json:"fault,omitempty"`
	At       time.Time `json:"at"`
}

func (a *account) note(r RequestRecord) {
	if len(a.log) < requestLimit {
		a.log = append(a.log, r)
		return
	}
	a.log[a.logNext] = r
	a.logNext = (a.logNext + 1) % requestLimit
}

func (a *account) requests() []RequestRecord {
	out := make([]RequestRecord, 0, len(a.log))
	out = append(out, a.log[a.logNext:]...)
	return append(out, a.log[:a.logNext]...)
}

func (a *account) remember(k replayKey, e replayEntry, window time.Duration) {
	if a.replay == nil {
		a.replay = make(map[replayKey]replayEntry)
	}
	// Forget what has aged out, oldest first.
	n := 0
	for _, q := range a.replayQ {
		if e.at.Sub(q.at) < window {
			break
		}
		if cur, ok := a.replay[q.key]; ok && !cur.at.After(q.at) {
			delete(a.replay, q.key)
		}
		n++
	}
	a.replayQ = append(a.replayQ[n:], replayed{k, e.at})
	a.replay[k] = e
}

func (a *account) hasBuddy(u qqproto.UIN) bool {
	i := sort.Search(len(a.buddies), func(i int) bool { return a.buddies[i] >= u })
	return i < len(a.buddies) && a.buddies[i] == u
}

func (a *account) dropStateNotices() {
	q := a.queue[:0]
	for _, it := range a.queue {
		if it.Type != qqproto.MsgSystem {
			q = append(q, it)
		}
	}
	if len(q) == 0 {
		q = nil
	}
	a.queue = q
}

// visible is the state others see: invisible looks offline.
func visible(st qqproto.Status) qqproto.Status {
	if st == qqproto.StatusOnline || st == qqproto.StatusBusy {
		return st
	}
	return qqproto.StatusOffline
}

// stateText is a state notice's MG: the code followed by a space, as every
// MG item of the seed's GetMsgEx line is.
func stateText(st qqproto.Status) string { return strconv.Itoa(int(st)) + " " }

// addBuddy puts b into a's list (one way, as in QQ).
func (s *Server) addBuddy(a *account, b qqproto.UIN) {
	i := sort.Search(len(a.buddies), func(i int) bool { return a.buddies[i] >= b })
	if i < len(a.buddies) && a.buddies[i] == b {
		return
	}
	a.buddies = append(a.buddies, 0)
	copy(a.buddies[i+1:], a.buddies[i:])
	a.buddies[i] = b
	w := s.watchers[b]
	if w == nil {
		w = make(map[qqproto.UIN]struct{})
		s.watchers[b] = w
	}
	w[a.UIN] = struct{}{}
}

func (s *Server) delBuddy(a *account, b qqproto.UIN) {
	i := sort.Search(len(a.buddies), func(i int) bool { return a.buddies[i] >= b })
	if i == len(a.buddies) || a.buddies[i] != b {
		return
	}
	a.buddies = append(a.buddies[:i], a.buddies[i+1:]...)
	delete(s.watchers[b], a.UIN)
}

// setState changes a's state; if what others see changes, every logged-in
// account that lists a gets an MT=99 notice.
func (s *Server) setState(a *account, st qqproto.Status, now time.Time) {
	old := visible(a.state)
	a.state = st
	nv := visible(st)
	if nv == old {
		return
	}
	for w := range s.watchers[a.UIN] {
		if wa := s.accounts[w]; wa != nil && wa.sess != nil {
			s.deliver(wa, InboxItem{Type: qqproto.MsgSystem, From: a.UIN, Text: stateText(nv), At: now}, false)
		}
	}
}

// deliver hands an item to an account: its inbox, and its GetMsgEx queue
// unless a bot consumes it. An echo bot answers a buddy message with the
// same text; mayEcho stops two bots echoing each other forever.
func (s *Server) deliver(to *account, it InboxItem, mayEcho bool) {
	to.inbox = append(to.inbox, it)
	if len(to.inbox) >= 2*inboxLimit {
		to.inbox = append([]InboxItem(nil), to.inbox[len(to.inbox)-inboxLimit:]...)
	}
	if to.Bot == "" {
		to.queue = append(to.queue, it)
		return
	}
	if to.Bot == BotEcho && it.Type == qqproto.MsgBuddy && mayEcho {
		if from := s.accounts[it.From]; from != nil {
			s.deliver(from, InboxItem{Type: qqproto.MsgBuddy, From: to.UIN, Text: it.Text, At: it.At}, false)
		}
	}
}

// login starts (or replaces) a's session.
func (s *Server) login(a *account, lc string, now time.Time) {
	s.gen++
	a.sess = &session{gen: s.gen, started: now, lastSeen: now, lc: lc}
	a.logins++
	a.dropStateNotices()
	heap.Push(&s.expiry, expiryEntry{at: now.Add(s.opts.IdleTimeout), uin: a.UIN, gen: s.gen})
	s.setState(a, qqproto.StatusOnline, now)
}

// logout ends a's session; its buddies see it go offline. Its messages
// stay queued; its state notices go, being stale by the next Login, which
// the client follows with Query_Stat.
func (s *Server) logout(a *account, now time.Time) {
	a.sess = nil
	a.dropStateNotices()
	s.setState(a, qqproto.StatusOffline, now)
}

// ack is Ack_AddToList by a about b.
func (s *Server) ack(a, b *account, cd qqproto.AckCode, reason string, now time.Time) int {
	switch cd {
	case qqproto.AckRequest: // a asks b to let a add b
		switch b.Auth {
		case 3:
			return ResRefused
		case 0:
			s.addBuddy(a, b.UIN)
			return qqproto.ResOK
		}
		if b.asks == nil {
			b.asks = make(map[qqproto.UIN]string)
		}
		b.asks[a.UIN] = reason
		s.deliver(b, InboxItem{Type: qqproto.MsgAddRequest, From: a.UIN, Text: reason, At: now}, false)
		switch b.OnAdd {
		case OnAddApprove:
			s.ack(b, a, qqproto.AckApprove, "", now)
		case OnAddReject:
			s.ack(b, a, qqproto.AckReject, autoRejectText, now)
		}
		return qqproto.ResOK
	case qqproto.AckApprove, qqproto.AckReject: // a answers b's request
		if _, ok := a.asks[b.UIN]; !ok {
			// Nothing to answer (or answered already): harmless, so a
			// repeated answer is not an error.
			return qqproto.ResOK
		}
		delete(a.asks, b.UIN)
		if cd == qqproto.AckApprove {
			s.addBuddy(b, a.UIN)
			s.deliver(b, InboxItem{Type: qqproto.MsgAddAccepted, From: a.UIN, At: now}, false)
		} else {
			s.deliver(b, InboxItem{Type: qqproto.MsgAddRefused, From: a.UIN, Text: reason, At: now}, false)
		}
		return qqproto.ResOK
	}
	return ResBadRequest
}

// autoRejectText is the reason an on_add="reject" account gives.
const autoRejectText = "对不起，我不加陌生人"

// expireLocked ends every session silent for IdleTimeout. Each session has
// one entry in a deadline heap; an entry whose session was active since is
// pushed back with its new deadline, so the cost is O(log n) per session
// per IdleTimeout, not a sweep over all sessions.
func (s *Server) expireLocked(now time.Time) {
	for len(s.expiry) > 0 && !now.Before(s.expiry[0].at) {
		e := heap.Pop(&s.expiry).(expiryEntry)
		a := s.accounts[e.uin]
		if a == nil || a.sess == nil || a.sess.gen != e.gen {
			continue
		}
		if deadline := a.sess.lastSeen.Add(s.opts.IdleTimeout); now.Before(deadline) {
			heap.Push(&s.expiry, expiryEntry{at: deadline, uin: e.uin, gen: e.gen})
			continue
		}
		s.log.WithField("uin", a.UIN).Info("qqsim: session expired after LI seconds of silence")
		s.logout(a, now)
	}
}

type expiryEntry struct {
	at  time.Time
	uin qqproto.UIN
	gen uint64
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
