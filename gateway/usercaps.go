package gateway

// What the user's clients can take: the entity capabilities (XEP-0115) in
// their presence, looked up by disco#info once per ver and kept, so that a
// resource that asks for avatar or vCard4 notifications (+notify,
// XEP-0163) gets them (pep.go). A lookup never holds the user's session:
// it runs as a work item of its own, and the session hears the answer
// afterwards.

import (
	"context"
	"sync"
	"time"

	"mellium.im/xmpp/crypto"
	"mellium.im/xmpp/disco"
)

const (
	nsCaps = "http://jabber.org/protocol/caps"
	// nsAvatarNotify is the feature of a client that wants User Avatar
	// metadata pushed (XEP-0084 4.2, by XEP-0163's filtered notifications).
	nsAvatarNotify = nsAvatarMetadata + "+notify"
	// nsVCard4Notify is that of a client that wants vCard4 pushed
	// (XEP-0292 3, likewise).
	nsVCard4Notify = nsVCard4 + "+notify"
	// capsTimeout bounds one disco#info request to a user's client.
	capsTimeout = 10 * time.Second
	// capsLookups bounds the requests in flight, each a worker waiting:
	// clients share a few vers, so more at once means someone makes them up.
	capsLookups = 4
	// capsKept bounds what is kept; past it an arbitrary entry goes.
	capsKept = 1024
)

// capsRef is the <c/> of a presence, and the key its answer is kept by.
type capsRef struct {
	node, ver string
	hash      crypto.Hash
	key       string // "" for no usable caps
	verify    bool   // the answer can be checked against ver: kept for everyone
}

// wireCaps is the <c/> of a presence (XEP-0115), read at the door.
type wireCaps struct {
	Hash string `xml:"hash,attr"`
	Node string `xml:"node,attr"`
	Ver  string `xml:"ver,attr"`
}

// capsOf is the entity capabilities of a user's presence from resource
// from. Caps with a hash are kept by ver (XEP-0115 5.4); legacy ones, or
// ones hashed with a function the gateway lacks, only for from.
func capsOf(w *wireCaps, from string) capsRef {
	if w == nil || w.Node == "" || w.Ver == "" {
		return capsRef{}
	}
	c := capsRef{node: w.Node, ver: w.Ver}
	if h, err := crypto.Parse(w.Hash); err == nil && h.Available() {
		c.hash, c.verify, c.key = h, true, w.Hash+" "+w.Ver
		return c
	}
	c.key = from + " " + c.node + "#" + c.ver
	return c
}

// capsWaiter is a resource waiting for a lookup's answer.
type capsWaiter struct {
	s   *session
	res string
}

// clientWants is what a client's caps ask to be notified of.
type clientWants struct {
	avatars bool // XEP-0084 metadata
	vcards  bool // XEP-0292 vCard4
}

// userCaps keeps, by caps key, what the client wants notifications of,
// and the lookups in flight with who waits for them. The zero value is
// ready to use and safe for concurrent use.
type userCaps struct {
	mu     sync.Mutex
	known  map[string]clientWants
	asking map[string][]capsWaiter
}

// lookup returns what is known of key.
func (u *userCaps) lookup(key string) (wants clientWants, known bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	wants, known = u.known[key]
	return wants, known
}

// wait adds w to the waiters for key. It reports whether the caller is to
// ask (nobody is yet); false also when too many lookups are in flight,
// and then w is not added.
func (u *userCaps) wait(key string, w capsWaiter) (ask, waiting bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ws, ok := u.asking[key]; ok {
		u.asking[key] = append(ws, w)
		return false, true
	}
	if len(u.asking) >= capsLookups {
		return false, false
	}
	if u.asking == nil {
		u.asking = map[string][]capsWaiter{}
	}
	u.asking[key] = []capsWaiter{w}
	return true, true
}

// done ends key's lookup, keeps its answer if keep, and returns who
// waited, the asker first.
func (u *userCaps) done(key string, wants clientWants, keep bool) []capsWaiter {
	u.mu.Lock()
	defer u.mu.Unlock()
	ws := u.asking[key]
	delete(u.asking, key)
	if keep {
		if u.known == nil {
			u.known = map[string]clientWants{}
		}
		if _, ok := u.known[key]; !ok && len(u.known) >= capsKept {
			for k := range u.known {
				delete(u.known, k)
				break
			}
		}
		u.known[key] = wants
	}
	return ws
}

// noteCaps takes the caps of an available presence of resource res. What
// they say is applied at once if known, else after a lookup.
func (s *session) noteCaps(ctx context.Context, res string, c capsRef) {
	r, ok := s.res.get(res)
	if !ok || res == "" {
		return
	}
	if c.key == r.caps {
		s.vcardsAgain(ctx, res) // unchanged: known, or asked already
		return
	}
	r.caps, r.avatars, r.vcards = c.key, false, nil
	s.res.put(res, r)
	if c.key == "" {
		return
	}
	if wants, known := s.g.clientCaps.lookup(c.key); known {
		s.capsLearnt(ctx, res, c.key, wants, true)
		return
	}
	ask, waiting := s.g.clientCaps.wait(c.key, capsWaiter{s: s, res: res})
	if !waiting {
		r.caps = "" // not asked: the next presence tries again
		s.res.put(res, r)
		return
	}
	if ask {
		s.g.askCaps(s.key+"/"+res, c)
	}
}

// capsLearnt applies what the caps key of resource res say, if res still
// has them. Not known (the lookup failed): its next presence asks again.
func (s *session) capsLearnt(ctx context.Context, res, key string, wants clientWants, known bool) {
	r, ok := s.res.get(res)
	if !ok || r.caps != key {
		return
	}
	if !known {
		r.caps = ""
		s.res.put(res, r)
		return
	}
	if wants.vcards && r.vcards == nil {
		r.vcards = newVCardWatch(r.epoch)
		s.res.put(res, r)
		s.syncVCards(ctx)
	}
	if wants.avatars && !r.avatars {
		r.avatars = true
		s.res.put(res, r)
		s.avatarsTo(ctx, res)
	}
}

// askCaps asks the client at the full JID to what its caps stand for, in a
// work item of its own, and tells every resource waiting for the answer.
// An answer that does not hash to ver is believed for the asker only.
func (g *Gateway) askCaps(to string, c capsRef) {
	g.sched.submit(newTask(func(context.Context) {}), func(ctx context.Context) {
		var wants clientWants
		var ok, verified bool
		// Even if the lookup panics, its waiters hear, and the ver may be
		// asked again.
		defer func() {
			ws := g.clientCaps.done(c.key, wants, ok && (verified || !c.verify))
			for i, w := range ws {
				known := ok && (i == 0 || verified || !c.verify)
				g.submitTo(w.s, func(ctx context.Context, s *session) { s.capsLearnt(ctx, w.res, c.key, wants, known) })
			}
		}()
		wants, ok, verified = g.discoCaps(ctx, to, c)
	})
}

// discoCaps asks to for the disco#info of its caps node: what it wants
// notifications of, whether it answered, and whether the answer hashes
// to the caps' ver.
func (g *Gateway) discoCaps(ctx context.Context, to string, c capsRef) (wants clientWants, ok, verified bool) {
	ctx, cancel := context.WithTimeout(ctx, capsTimeout)
	defer cancel()
	ans, err := g.emit.ask(ctx, to, "get", disco.InfoQuery{Node: c.node + "#" + c.ver})
	if err != nil {
		g.log.WithError(err).WithField("to", to).Debug("gateway: no disco#info for a user's caps")
		return wants, false, false
	}
	var v struct {
		Info disco.Info `xml:"http://jabber.org/protocol/disco#info query"`
	}
	if err := ans.Decode(&v); err != nil {
		g.log.WithError(err).WithField("to", to).Debug("gateway: unreadable disco#info for a user's caps")
		return wants, false, false
	}
	for _, f := range v.Info.Features {
		wants.avatars = wants.avatars || f.Var == nsAvatarNotify
		wants.vcards = wants.vcards || f.Var == nsVCard4Notify
	}
	verified = c.verify && capsVer(v.Info, c.hash) == c.ver
	return wants, true, verified
}

// capsVer is the ver of an answer, or "" if mellium cannot hash it: it
// panics on a data form without fields, which a client may send.
func capsVer(i disco.Info, h crypto.Hash) (ver string) {
	defer func() {
		if recover() != nil {
			ver = ""
		}
	}()
	return i.Hash(h.New())
}
