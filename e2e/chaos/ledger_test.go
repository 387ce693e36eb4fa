//go:build e2e

package chaos

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"qqxmpp/qqproto"
)

// direction of a message.
type direction int

const (
	toQQ   direction = iota // an XMPP user's message to a QQ buddy
	toXMPP                  // a QQ buddy's message to the user, injected through qqsim
)

func (d direction) String() string {
	if d == toQQ {
		return "XMPP→QQ"
	}
	return "QQ→XMPP"
}

// record is one message with a unique id, which is also its body.
type record struct {
	id    string
	dir   direction
	phase string // the fault kind active when it was sent
	user  int
	buddy qqproto.UIN
	at    time.Time // when it was sent, to find it in the logs

	unsent   bool           // the client's write (or qqsim's /_sim/send) failed: never handed over
	errored  int            // error stanzas the sender got for it
	errText  string         // the first one's condition and text
	got      int            // copies delivered
	copyKeys map[string]int // QQ→XMPP: copies by the id a client could deduplicate them by (copyKey)
	// inSocket names the killed process whose socket still held the
	// message unread (see killReading): XEP-0114's unclosable case.
	inSocket string
}

// ledger holds every message of the run by id.
type ledger struct {
	mu   sync.Mutex
	recs map[string]*record
	// strays are deliveries of ids the ledger never sent.
	strays []string
	dead   []deadWindow // not yet applied
}

func newLedger() *ledger { return &ledger{recs: map[string]*record{}} }

func (l *ledger) add(r *record) {
	l.mu.Lock()
	l.recs[r.id] = r
	l.mu.Unlock()
}

func (l *ledger) setUnsent(id string) {
	l.mu.Lock()
	l.recs[id].unsent = true
	l.mu.Unlock()
}

// errored notes an error stanza about the message id.
func (l *ledger) errored(id, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.recs[id]
	if !ok || r.dir != toQQ {
		l.strays = append(l.strays, "error for "+id)
		return
	}
	if r.errored == 0 {
		r.errText = text
	}
	r.errored++
}

// unread notes that ids were unread in a socket of what when it was
// killed.
func (l *ledger) unread(ids []string, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if r, ok := l.recs[id]; ok && r.inSocket == "" {
			r.inSocket = what
		}
	}
}

// deadBetween notes that messages to QQ sent from from to to went into a
// socket of a stopped or killed process (what): no server could read
// them. Only those that end neither delivered nor refused are excused.
func (l *ledger) deadBetween(from, to time.Time, what string) {
	l.mu.Lock()
	l.dead = append(l.dead, deadWindow{from, to, what})
	l.mu.Unlock()
}

type deadWindow struct {
	from, to time.Time
	what     string
}

// applyDead marks the messages sent in a dead window; l.mu is held.
func (l *ledger) applyDead() {
	for _, w := range l.dead {
		for _, r := range l.recs {
			if r.dir == toQQ && r.inSocket == "" && !r.at.Before(w.from) && !r.at.After(w.to) {
				r.inSocket = w.what
			}
		}
	}
	l.dead = nil
}

// deliveredXMPP notes a copy of message id reaching the user, with the id
// a client could deduplicate it by.
func (l *ledger) deliveredXMPP(id, key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.recs[id]
	if !ok || r.dir != toXMPP {
		l.strays = append(l.strays, "to XMPP: "+id)
		return
	}
	r.got++
	if r.copyKeys == nil {
		r.copyKeys = map[string]int{}
	}
	r.copyKeys[key]++
}

// setQQCounts replaces the XMPP→QQ copies by what the QQ inboxes hold now.
func (l *ledger) setQQCounts(counts map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.dir == toQQ {
			r.got = counts[r.id]
		}
	}
	for id := range counts {
		if r, ok := l.recs[id]; !ok || r.dir != toQQ {
			l.strays = append(l.strays, "to QQ: "+id)
		}
	}
}

// outcome of one message, as the table counts it.
type outcome int

const (
	oUnsent    outcome = iota // never handed over, and not delivered
	oDelivered                // exactly once, no error
	oDoubled                  // more than once
	oErrored                  // an error, not delivered: the sender knows
	oFalseErr                 // an error, yet delivered: reported as failed although QQ took it
	oInSocket                 // neither, but proved unread in a killed process's socket
	oLost                     // neither delivered nor refused
)

func (r *record) outcome() outcome {
	switch {
	case r.got > 1:
		return oDoubled
	case r.got == 1 && r.errored > 0:
		return oFalseErr
	case r.got == 1:
		return oDelivered
	case r.errored > 0:
		return oErrored
	case r.unsent:
		return oUnsent
	case r.inSocket != "":
		return oInSocket
	}
	return oLost
}

// route names the message's sender and recipient.
func (r *record) route() string {
	if r.dir == toQQ {
		return fmt.Sprintf("QQ %d → %d", userUIN(r.user), r.buddy)
	}
	return fmt.Sprintf("QQ %d → %d", r.buddy, userUIN(r.user))
}

// sameID reports whether every copy carried the same id.
func (r *record) sameID() bool { return len(r.copyKeys) == 1 }

// dedupable reports whether every copy carried the same XEP-0359 id, by
// which clients and archives show it once.
func (r *record) dedupable() bool {
	for k := range r.copyKeys {
		return len(r.copyKeys) == 1 && !strings.HasPrefix(k, "id=")
	}
	return false
}

// unresolved counts the messages handed over that are neither delivered
// nor refused yet: what the drain waits for.
func (l *ledger) unresolved() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applyDead()
	n := 0
	for _, r := range l.recs {
		if r.outcome() == oLost {
			n++
		}
	}
	return n
}

// row of the table: one fault kind and direction.
type row struct {
	phase                                           string
	dir                                             direction
	sent, delivered, lost, doubled, sameID, errored int
	dedupable                                       int
	falseErr, unsent, inSocket                      int
}

// summary is the run's result.
type summary struct {
	rows                             []*row
	total                            row
	lostIDs, doubledIDs, falseErrIDs []string
	socketIDs                        []string
	errTexts                         map[string]int
	strays                           []string
}

func (l *ledger) summarize() summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applyDead()
	byKey := map[string]*row{}
	sum := summary{errTexts: map[string]int{}, strays: slices.Clone(l.strays)}
	sum.total.phase = "all"
	for _, r := range l.recs {
		key := r.phase + "|" + r.dir.String()
		w := byKey[key]
		if w == nil {
			w = &row{phase: r.phase, dir: r.dir}
			byKey[key] = w
			sum.rows = append(sum.rows, w)
		}
		for _, x := range []*row{w, &sum.total} {
			x.count(r)
		}
		switch r.outcome() {
		case oLost:
			sum.lostIDs = append(sum.lostIDs, fmt.Sprintf("%s (%s; %s at %s)", r.id, r.phase, r.route(), r.at.UTC().Format("15:04:05.000")))
		case oDoubled:
			sum.doubledIDs = append(sum.doubledIDs, fmt.Sprintf("%s ×%d (%s; %s at %s%s)", r.id, r.got, r.phase, r.route(), r.at.UTC().Format("15:04:05.000"), keysNote(r)))
		case oFalseErr:
			sum.falseErrIDs = append(sum.falseErrIDs, fmt.Sprintf("%s (%s; %s at %s): %s", r.id, r.phase, r.route(), r.at.UTC().Format("15:04:05.000"), r.errText))
		case oInSocket:
			sum.socketIDs = append(sum.socketIDs, r.id+" ("+r.inSocket+")")
		}
		if r.errored > 0 {
			sum.errTexts[r.errText]++
		}
	}
	sort.Slice(sum.rows, func(i, j int) bool {
		a, b := sum.rows[i], sum.rows[j]
		if a.phase != b.phase {
			return a.phase < b.phase
		}
		return a.dir < b.dir
	})
	for _, ids := range [][]string{sum.lostIDs, sum.doubledIDs, sum.falseErrIDs, sum.socketIDs} {
		sort.Strings(ids)
	}
	return sum
}

func (w *row) count(r *record) {
	o := r.outcome()
	if o == oUnsent {
		w.unsent++
		return
	}
	w.sent++
	switch o {
	case oDelivered:
		w.delivered++
	case oDoubled:
		w.delivered++
		w.doubled++
		if r.sameID() {
			w.sameID++
		}
		if r.dedupable() {
			w.dedupable++
		}
	case oErrored:
		w.errored++
	case oFalseErr:
		w.delivered++
		w.falseErr++
	case oInSocket:
		w.inSocket++
	case oLost:
		w.lost++
	}
}

// keysNote lists the ids the copies of r carried.
func keysNote(r *record) string {
	if len(r.copyKeys) == 0 {
		return ""
	}
	keys := make([]string, 0, len(r.copyKeys))
	for k, n := range r.copyKeys {
		keys = append(keys, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(keys)
	return "; " + strings.Join(keys, " ")
}

// failures counts what fails the run: lost, doubled (but with dedupOK
// not the copies a XEP-0359 id makes one) and falsely failed messages.
func (s summary) failures(dedupOK bool) int {
	n := s.total.lost + s.total.doubled + s.total.falseErr
	if dedupOK {
		n -= s.total.dedupable
	}
	return n
}

// print writes the table and the ids behind every bad count.
func (s summary) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tdirection\tsent\tdelivered\tlost\tdoubled\t(same id)\terrored\tfalse error\tin socket\tunsent\t")
	for _, r := range append(s.rows, &s.total) {
		dir := r.dir.String()
		if r == &s.total {
			dir = "both"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t(%d)\t%d\t%d\t%d\t%d\t\n", r.phase, dir, r.sent, r.delivered, r.lost, r.doubled, r.sameID, r.errored, r.falseErr, r.inSocket, r.unsent)
	}
	tw.Flush()
	listIDs(w, "lost", s.lostIDs)
	listIDs(w, "doubled", s.doubledIDs)
	listIDs(w, "reported as failed although delivered", s.falseErrIDs)
	listIDs(w, "lost in a killed process's socket, where no server could read them (not failures)", s.socketIDs)
	if len(s.errTexts) > 0 {
		fmt.Fprintln(w, "errors the senders got:")
		texts := make([]string, 0, len(s.errTexts))
		for t := range s.errTexts {
			texts = append(texts, t)
		}
		sort.Strings(texts)
		for _, t := range texts {
			fmt.Fprintf(w, "  %4d × %s\n", s.errTexts[t], t)
		}
	}
	listIDs(w, "deliveries of ids never sent", s.strays)
}

func listIDs(w io.Writer, what string, ids []string) {
	if len(ids) == 0 {
		return
	}
	const show = 40
	fmt.Fprintf(w, "%s (%d): %s", what, len(ids), strings.Join(ids[:min(show, len(ids))], ", "))
	if len(ids) > show {
		fmt.Fprintf(w, ", … %d more", len(ids)-show)
	}
	fmt.Fprintln(w)
}
