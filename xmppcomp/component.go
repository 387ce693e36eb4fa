package xmppcomp

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/sirupsen/logrus"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"qqxmpp/xmppcomp/internal/wire"
)

const nsPing = "urn:xmpp:ping"

// Component is a resilient XEP-0114 connection: Run keeps it connected,
// the send methods may be called from any goroutine at any time.
type Component struct {
	cfg    Config
	domain jid.JID
	h      Handler
	log    logrus.FieldLogger

	running atomic.Bool
	cur     atomic.Pointer[conn]

	mu      sync.Mutex
	pending map[string]*pendingIQ // outstanding IQs by id: SendIQ and pings
}

type pendingIQ struct {
	ch   chan Stanza // buffered, receives the answer once
	ping bool        // our own liveness ping: its arrival is the answer
	on   *conn       // for a ping: it counts only when read on this connection
}

// New checks cfg, fills in defaults and returns a Component that is not yet
// connected; call Run. The error names the offending Config field.
func New(cfg Config, h Handler) (*Component, error) {
	dom, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("xmppcomp: New: Handler is nil")
	}
	return &Component{
		cfg:     cfg,
		domain:  dom,
		h:       h,
		log:     cfg.Logger.WithFields(logrus.Fields{"component": dom.String(), "server": cfg.Server}),
		pending: map[string]*pendingIQ{},
	}, nil
}

// Domain returns the component's domain as a JID.
func (c *Component) Domain() jid.JID { return c.domain }

// Connected reports whether a connection is established right now.
func (c *Component) Connected() bool { return c.cur.Load() != nil }

// Run connects, serves and reconnects with backoff until ctx ends, then
// closes the stream and returns nil. It returns at once with a
// *HandshakeError when retrying cannot help: the server refused the secret
// (errors.Is(err, ErrNotAuthorized)) or does not know the domain
// (ErrHostUnknown). Everything else (refused dial, dropped connection,
// conflict, ping timeout) is logged and retried.
//
// Stanzas are read by Run's goroutine and handed through a queue of
// Config.QueueSize to one dispatch goroutine that calls the Handler in
// arrival order with Run's ctx. Run returns only after the Handler call in
// progress has returned.
func (c *Component) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer c.running.Store(false)
	return c.run(ctx, c.h, true, c.cfg.OnConnect)
}

// Extra keeps one more connection for the domain beside Run's, with its
// own reconnect loop, until ctx ends; its stanzas go to h and onConnect
// (if not nil) is called after each of its handshakes, as OnConnect is for
// Run's. It is for a server that balances the domain over several
// connections by the sender of each stanza (Config.Balanced): an extra
// connection takes a free slot, such as the one a dead process left. What
// the Component sends, and SendIQ's and Barrier's answers (whichever
// connection they arrive on), keep going through Run's connection.
func (c *Component) Extra(ctx context.Context, h Handler, onConnect func(context.Context)) error {
	if h == nil {
		return errors.New("xmppcomp: Extra: Handler is nil")
	}
	return c.run(ctx, h, false, onConnect)
}

// run connects, serves and reconnects one connection until ctx ends; the
// primary one (Run's) is the one the send methods write on.
func (c *Component) run(ctx context.Context, h Handler, primary bool, onConnect func(context.Context)) error {
	queue := make(chan Stanza, c.cfg.QueueSize)
	dctx, stopDispatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.dispatch(dctx, h, queue)
	}()
	defer func() {
		stopDispatch()
		wg.Wait()
	}()

	bo := newBackOff(c.cfg.MinBackoff, c.cfg.MaxBackoff)
	for {
		if ctx.Err() != nil {
			return nil
		}
		cn, err := c.dial(ctx, h, primary)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var he *HandshakeError
			if errors.As(err, &he) && he.permanent() {
				c.log.WithError(err).Error("xmppcomp: giving up")
				return err
			}
			wait := bo.next()
			c.log.WithError(err).WithField("retry_in", wait.Round(time.Millisecond)).Warn("xmppcomp: connect failed")
			if !sleep(ctx, wait) {
				return nil
			}
			continue
		}
		connected := time.Now()
		err = c.serve(ctx, cn, queue, onConnect)
		if ctx.Err() != nil {
			if primary && c.cfg.OnDisconnect != nil {
				c.cfg.OnDisconnect(nil)
			}
			return nil
		}
		c.log.WithError(err).Warn("xmppcomp: connection lost")
		if primary && c.cfg.OnDisconnect != nil {
			c.cfg.OnDisconnect(err)
		}
		// Back off afresh only after a connection that held for a while: a
		// server that accepts and drops at once must not be hammered.
		// No slot yet is no fault of the server's: the slot a dead
		// connection held frees within moments, so try again soon.
		if time.Since(connected) >= c.cfg.MaxBackoff || errors.Is(err, ErrNoSlot) {
			bo.Reset()
		}
		if !sleep(ctx, bo.next()) {
			return nil
		}
	}
}

// reconnectBackOff is the wait before each connection attempt: it doubles
// from MinBackoff up to MaxBackoff (max), and each wait is drawn between half and all of that
// nominal value, so that it never exceeds max.
type reconnectBackOff struct {
	*backoff.ExponentialBackOff
	max time.Duration
}

// newBackOff centres the library's randomised interval (centre ± a third)
// on three quarters of the nominal wait d, which spans exactly [d/2, d].
func newBackOff(lo, hi time.Duration) reconnectBackOff {
	return reconnectBackOff{
		ExponentialBackOff: backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(lo*3/4),
			backoff.WithMaxInterval(hi*3/4),
			backoff.WithMultiplier(2),
			backoff.WithRandomizationFactor(1.0/3),
			backoff.WithMaxElapsedTime(0), // never give up
		),
		max: hi,
	}
}

// next returns the next wait; rounding must not take it past max.
func (b reconnectBackOff) next() time.Duration {
	return min(b.NextBackOff(), b.max)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Component) dispatch(ctx context.Context, h Handler, queue <-chan Stanza) {
	for {
		select {
		case <-ctx.Done():
			return
		case st := <-queue:
			c.handle(ctx, h, st)
		}
	}
}

// handle calls the Handler, turning a panic into a log line so that one bad
// stanza cannot take the gateway down.
func (c *Component) handle(ctx context.Context, h Handler, st Stanza) {
	// Not the stanza's text: it may hold a message or a password.
	c.guard(func() logrus.Fields { return logrus.Fields{"stanza": st.Name, "id": st.ID, "from": st.From.String()} },
		func() { h.HandleStanza(ctx, st) })
}

// guard runs the Handler's fn and logs a panic of it with what fields
// says, so that one bad stanza does not end the connection.
func (c *Component) guard(fields func() logrus.Fields, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			f := fields()
			f["panic"], f["stack"] = r, string(debug.Stack())
			c.log.WithFields(f).Error("xmppcomp: handler panicked")
		}
	}()
	fn()
}

// conn is one established component stream.
type conn struct {
	c    *Component
	nc   net.Conn
	rw   net.Conn // nc as the session reads it (framed with Config.Inline)
	sess *xmpp.Session
	wsem chan struct{} // one writer at a time, acquirable with a context
	// wbuf holds stanzas written by writers that left them for the one
	// waiting behind (guarded by wsem); waiting counts those waiting.
	wbuf    []byte
	waiting atomic.Int32

	done      chan struct{} // closed by kill
	closeOnce sync.Once
	cause     error // why kill was called; valid after done is closed

	lastRead atomic.Int64 // unix nanos of the last element read
	stalled  atomic.Bool  // the reader waits for room in the handler queue, or for an inline Handler

	replies chan []byte // what the reader answers itself, for replier to write

	h       Handler // where its stanzas go
	primary bool    // Run's connection, the one the send methods use
	// echo is, with Config.Balanced, a JID of the domain whose stanzas the
	// server routes to this connection's slot: the pinger sends from it.
	echo atomic.Pointer[jid.JID]
}

// replyQueue bounds the answers the reader gives itself (pings to the
// domain, refusals of hostile stanzas): one goroutine per connection
// writes them, so that a flood of pings costs a bounded queue rather than
// a goroutine each and never holds the reader. Beyond it they are
// dropped, as a server under a flood would.
const replyQueue = 256

func (c *Component) dial(ctx context.Context, h Handler, primary bool) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", c.cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("xmppcomp: dial %s: %w", c.cfg.Server, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok && c.cfg.SendBuffer > 0 {
		if err := tc.SetWriteBuffer(c.cfg.SendBuffer); err != nil {
			c.log.WithError(err).Warn("xmppcomp: cannot bound the send buffer; one user's burst may delay others'")
		}
	}
	rw := nc
	if c.cfg.Inline {
		// What the Handler has not made durable stays in the socket.
		rw = framed(nc, c.cfg.MaxStanzaBytes)
	}
	sess, err := component.NewSession(dctx, c.domain, []byte(c.cfg.Secret), rw)
	if err != nil {
		nc.Close()
		return nil, c.handshakeError(err)
	}
	// The negotiation's context deadline must not outlive it.
	_ = nc.SetDeadline(time.Time{})
	cn := &conn{c: c, nc: nc, rw: rw, sess: sess, wsem: make(chan struct{}, 1), done: make(chan struct{}),
		replies: make(chan []byte, replyQueue), h: h, primary: primary}
	cn.lastRead.Store(time.Now().UnixNano())
	return cn, nil
}

func (c *Component) handshakeError(err error) error {
	var se stream.Error
	if errors.As(err, &se) {
		he := &HandshakeError{Domain: c.domain.String(), Server: c.cfg.Server, Condition: se.Err}
		for _, t := range se.Text {
			if t.Value != "" {
				he.Text = t.Value
				break
			}
		}
		return he
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("xmppcomp: %s closed the connection during the handshake for %q without saying why: %w", c.cfg.Server, c.domain, err)
	}
	return fmt.Errorf("xmppcomp: handshake with %s for %q: %w", c.cfg.Server, c.domain, err)
}

// serve runs one established connection until it ends.
func (c *Component) serve(ctx context.Context, cn *conn, queue chan<- Stanza, onConnect func(context.Context)) error {
	if cn.primary {
		c.cur.Store(cn)
	}
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cn.closeStream)
	defer stop()

	go c.replier(cn)
	go func() {
		// With balancing, the connection serves nobody until the server
		// gave it a slot: find out first (the reader must run meanwhile).
		if c.cfg.Balanced {
			if err := c.findSlot(connCtx, cn); err != nil {
				cn.kill(err)
				return
			}
		}
		c.log.WithField("primary", cn.primary).Info("xmppcomp: connected")
		if onConnect != nil {
			go onConnect(connCtx)
		}
		if c.cfg.PingInterval > 0 {
			c.pinger(cn)
		}
	}()
	err := c.read(ctx, cn, queue)
	cn.kill(err)
	return cn.cause
}

// read is the reader loop. It never waits for the Handler except when the
// queue is full, or when the Handler runs inline (Config.Inline).
func (c *Component) read(ctx context.Context, cn *conn, queue chan<- Stanza) error {
	r := cn.sess.TokenReader()
	defer r.Close()
	var b batch
	if bh, ok := cn.h.(BatchHandler); ok && c.cfg.Inline {
		b.h = bh
		if f, ok := cn.rw.(interface{ buffered() bool }); ok {
			b.buf = f.buffered
		}
	}
	for {
		if b.due() {
			c.handleBatch(ctx, cn, &b)
		}
		el, err := wire.ReadElementLimit(r, c.cfg.MaxStanzaBytes)
		if errors.Is(err, wire.ErrTooDeep) || errors.Is(err, wire.ErrTooLarge) {
			cn.lastRead.Store(time.Now().UnixNano())
			c.handleBatch(ctx, cn, &b)
			c.refuseHostile(cn, el, err)
			continue
		}
		if err != nil {
			c.handleBatch(ctx, cn, &b) // handled stanzas before an end
			return c.readError(err)
		}
		cn.lastRead.Store(time.Now().UnixNano())
		if !wire.IsStanzaName(el.Start.Name.Local) {
			c.log.WithField("element", el.Start.Name.Local).Warn("xmppcomp: ignoring non-stanza element from server")
			continue
		}
		st := fromElement(el)
		if st.Name == "iq" {
			// An iq may be one the reader answers itself: the
			// stanzas ahead of it are handled first.
			c.handleBatch(ctx, cn, &b)
			if c.answered(cn, st, el.FirstChild) {
				continue
			}
		}
		if c.cfg.Inline {
			if b.h != nil {
				b.sts = append(b.sts, st)
				continue
			}
			cn.stalled.Store(true) // busy, not silent: no ping timeout meanwhile
			c.handle(ctx, cn.h, st)
			cn.stalled.Store(false)
			continue
		}
		select {
		case queue <- st:
			continue
		default:
		}
		cn.stalled.Store(true)
		c.log.Debug("xmppcomp: handler queue full; reading paused")
		select {
		case queue <- st:
			cn.stalled.Store(false)
		case <-cn.done:
			return cn.cause
		}
	}
}

// batch is what an inline BatchHandler has been given to handle next.
type batch struct {
	h   BatchHandler // nil: stanzas are handled one by one
	buf func() bool  // whether another whole stanza waits unread
	sts []Stanza
}

// due reports whether the batch must be handled before reading on: it is
// full, or reading the next stanza might wait for the network (the
// stanzas it holds would wait with it).
func (b *batch) due() bool {
	return len(b.sts) > 0 && (len(b.sts) >= MaxBatch || b.buf == nil || !b.buf())
}

// handleBatch hands b's stanzas to its Handler, if any wait.
func (c *Component) handleBatch(ctx context.Context, cn *conn, b *batch) {
	if len(b.sts) == 0 {
		return
	}
	cn.stalled.Store(true)
	c.guard(func() logrus.Fields { return logrus.Fields{"stanzas": len(b.sts)} }, func() { b.h.HandleStanzas(ctx, b.sts) })
	cn.stalled.Store(false)
	clear(b.sts)
	b.sts = b.sts[:0]
}

// refuseHostile answers a stanza nested deeper or larger than the reader
// takes (why) with policy-violation, instead of ending the stream: one
// user's hostile stanza must not take the transport offline for everyone.
func (c *Component) refuseHostile(cn *conn, el wire.Element, why error) {
	st := fromElement(el)
	text := fmt.Sprintf("The stanza is nested deeper than %d elements.", wire.MaxDepth)
	if errors.Is(why, wire.ErrTooLarge) {
		text = fmt.Sprintf("The stanza is larger than %d bytes.", c.cfg.MaxStanzaBytes)
	}
	c.log.WithError(why).WithField("from", st.From.String()).Warn("xmppcomp: refused a stanza")
	if !wire.IsStanzaName(st.Name) || st.Type == "error" || (st.Name == "iq" && st.Type == "result") {
		return
	}
	e := stanza.Error{Type: stanza.Modify, Condition: stanza.PolicyViolation, Text: map[string]string{"": text}}
	c.reply(cn, errorReply(st, e), "refusal")
}

// reply queues r for replier to write on cn, or drops it if replyQueue
// answers wait already.
func (c *Component) reply(cn *conn, r xml.TokenReader, what string) {
	var buf bytes.Buffer
	if _, err := wire.EncodeStanza(&buf, r, wire.NSAccept); err != nil {
		c.log.WithError(err).WithField("reply", what).Error("xmppcomp: cannot encode an answer")
		return
	}
	select {
	case cn.replies <- buf.Bytes():
	default:
		c.log.WithField("reply", what).Debug("xmppcomp: too many answers waiting; one dropped")
	}
}

// replier writes the reader's own answers until cn ends.
func (c *Component) replier(cn *conn) {
	for {
		select {
		case <-cn.done:
			return
		case b := <-cn.replies:
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
			if err := cn.write(ctx, b); err != nil {
				c.log.WithError(err).Debug("xmppcomp: answer not sent")
			}
			cancel()
		}
	}
}

// answered routes IQ answers to SendIQ/pinger and answers pings addressed to
// the bare domain. It reports whether st was consumed.
func (c *Component) answered(cn *conn, st Stanza, child xml.Name) bool {
	switch st.Type {
	case "result", "error":
		c.mu.Lock()
		p, ok := c.pending[st.ID]
		if ok && !p.ping {
			delete(c.pending, st.ID)
		}
		c.mu.Unlock()
		if ok {
			select {
			case p.ch <- st:
			default:
			}
			return true
		}
	case "get":
		if child.Space != nsPing || child.Local != "ping" {
			return false
		}
		// Our own liveness ping, routed back to us by the server.
		c.mu.Lock()
		p, ok := c.pending[st.ID]
		c.mu.Unlock()
		if ok && p.ping && st.From.Domainpart() == c.domain.Domainpart() {
			if p.on != cn {
				return true // balanced to another of our connections
			}
			select {
			case p.ch <- st:
			default:
			}
			return true
		}
		if c.cfg.Balanced && st.From.Localpart() != "" && st.From.Domainpart() == c.domain.Domainpart() {
			return true // another connection's slot probe, balanced here: not ours to answer
		}
		if !c.cfg.HandlePings && st.To.Equal(c.domain) {
			c.reply(cn, stanza.IQ{ID: st.ID, Type: stanza.ResultIQ, From: c.domain, To: st.From}.Wrap(nil), "ping")
			return true
		}
	}
	return false
}

func (c *Component) readError(err error) error {
	var se stream.Error
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("xmppcomp: server closed the stream")
	case errors.As(err, &se):
		text := ""
		for _, t := range se.Text {
			if t.Value != "" {
				text = ": " + t.Value
				break
			}
		}
		if se.Err == "conflict" {
			return fmt.Errorf("xmppcomp: server sent stream error conflict%s: %w", text, ErrConflict)
		}
		return fmt.Errorf("xmppcomp: server sent stream error %s%s", se.Err, text)
	}
	return fmt.Errorf("xmppcomp: read: %w", err)
}

// pinger proves the connection alive by sending a XEP-0199 ping from the
// component domain to itself: the server must route it back to us, so an
// answer proves the whole path (any server, no guess of its own domain).
// If nothing at all was read for PingTimeout after a ping, and the reader is
// not merely paused by a full handler queue, the connection is dead.
func (c *Component) pinger(cn *conn) {
	t := time.NewTicker(c.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-cn.done:
			return
		case <-t.C:
		}
		if cn.stalled.Load() {
			continue
		}
		id := crand.Text()
		p := &pendingIQ{ch: make(chan Stanza, 1), ping: true, on: cn}
		c.mu.Lock()
		c.pending[id] = p
		c.mu.Unlock()
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.PingTimeout)
		err := c.sendOn(ctx, cn, c.pingFrom(id, cn.from(c.domain), c.domain))
		if err == nil {
			select {
			case <-p.ch:
			case <-cn.done:
			case <-ctx.Done():
				if cn.lastRead.Load() < sent.UnixNano() && !cn.stalled.Load() {
					cn.kill(fmt.Errorf("%w (%v, nothing read since the ping)", ErrPingTimeout, c.cfg.PingTimeout))
				}
			}
		}
		cancel()
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		// A ping that could not be sent because other writes held the
		// stream for PingTimeout proves nothing either way: try again next
		// tick rather than leave the connection unwatched for good. A dead
		// connection closes cn.done.
		if err != nil {
			c.log.WithError(err).Debug("xmppcomp: ping not sent")
		}
	}
}

// kill closes the connection once, remembering why.
func (cn *conn) kill(cause error) {
	cn.closeOnce.Do(func() {
		if cause == nil {
			cause = errors.New("xmppcomp: connection closed")
		}
		cn.cause = cause
		cn.c.cur.CompareAndSwap(cn, nil)
		close(cn.done)
		cn.nc.Close()
	})
}

// closeStream ends the stream politely (Run's context ended).
func (cn *conn) closeStream() {
	cn.c.cur.CompareAndSwap(cn, nil)
	select {
	case cn.wsem <- struct{}{}:
		_ = cn.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = cn.nc.Write(append(cn.wbuf, "</stream:stream>"...)) // what waits first
		cn.wbuf = nil
		<-cn.wsem
	case <-time.After(time.Second):
	case <-cn.done:
	}
	cn.kill(context.Canceled)
}

// write puts one encoded stanza on the wire. Writers that come while one
// writes share a system call: a writer that sees another waiting behind it
// leaves its stanza in wbuf, and the last one writes them all (so a login
// burst of presences, or many sessions relaying, costs the kernel and the
// server's event loop one write for many stanzas, not one each). A writer
// that gives up waiting makes sure what was left for it is written. A
// failed or timed out write closes the connection, since the stream may
// now hold half a stanza.
func (cn *conn) write(ctx context.Context, b []byte) error {
	cn.waiting.Add(1)
	select {
	case cn.wsem <- struct{}{}:
	case <-cn.done:
		cn.gaveUp()
		return ErrNotConnected
	case <-ctx.Done():
		cn.gaveUp()
		return fmt.Errorf("xmppcomp: send: %w", ctx.Err())
	}
	cn.waiting.Add(-1)
	defer func() { <-cn.wsem }()
	select {
	case <-cn.done:
		return ErrNotConnected
	default:
	}
	cn.wbuf = append(cn.wbuf, b...)
	if cn.waiting.Load() > 0 && len(cn.wbuf) < maxPendingWrite {
		return nil // the writer waiting behind writes it with its own
	}
	return cn.flushLocked(ctx)
}

// maxPendingWrite bounds what waits in wbuf for the next writer.
const maxPendingWrite = 64 << 10

// gaveUp is a waiting writer leaving without writing: a writer before it
// may have left its stanza for it, so one is written in the background.
func (cn *conn) gaveUp() {
	cn.waiting.Add(-1)
	go func() {
		select {
		case cn.wsem <- struct{}{}:
		case <-cn.done:
			return
		}
		defer func() { <-cn.wsem }()
		if len(cn.wbuf) > 0 && cn.waiting.Load() == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), cn.c.cfg.WriteTimeout)
			defer cancel()
			_ = cn.flushLocked(ctx)
		}
	}()
}

// flushLocked writes wbuf; the caller holds wsem.
func (cn *conn) flushLocked(ctx context.Context) error {
	deadline := time.Now().Add(cn.c.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = cn.nc.SetWriteDeadline(deadline)
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetWriteDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	_, err := cn.nc.Write(cn.wbuf)
	if cap(cn.wbuf) > maxPendingWrite {
		cn.wbuf = nil // a burst's buffer is not kept
	} else {
		cn.wbuf = cn.wbuf[:0]
	}
	if err != nil {
		err = fmt.Errorf("xmppcomp: write: %w", err)
		cn.kill(err)
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return nil
}

// Send writes the first element of r, which must be a message, presence or
// iq, as one stanza. The element is read whole before anything is written.
// It may be in no namespace or in jabber:client: it is put in the component
// namespace, with payloads in their own namespaces left as they are. A
// stanza without an id gets a random one. From may be any JID of the
// component's domain; without it the server uses the domain.
//
// Send is safe for concurrent use; stanzas from one goroutine keep their
// order. While disconnected it fails at once with ErrNotConnected; an error
// matching ErrNotConnected means the stanza was not handed to the server.
func (c *Component) Send(ctx context.Context, r xml.TokenReader) error {
	cn := c.cur.Load()
	if cn == nil {
		return ErrNotConnected
	}
	return c.sendOn(ctx, cn, r)
}

func (c *Component) sendOn(ctx context.Context, cn *conn, r xml.TokenReader) error {
	var buf bytes.Buffer
	if _, err := wire.EncodeStanza(&buf, r, wire.NSAccept); err != nil {
		return fmt.Errorf("xmppcomp: send: %w", err)
	}
	return cn.write(ctx, buf.Bytes())
}

// Encode is Send for a value encoding/xml can marshal, typically a struct
// with XMLName "message", "presence" or "iq", or a mellium type that is an
// xml.TokenReader or xmlstream.Marshaler.
func (c *Component) Encode(ctx context.Context, v any) error {
	r, err := tokenReader(v)
	if err != nil {
		return fmt.Errorf("xmppcomp: encode %T: %w", v, err)
	}
	return c.Send(ctx, r)
}

func tokenReader(v any) (xml.TokenReader, error) {
	switch t := v.(type) {
	case xml.TokenReader:
		return t, nil
	case xmlstream.Marshaler:
		return t.TokenReader(), nil
	}
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return xml.NewDecoder(bytes.NewReader(b)), nil
}

// SendIQ sends an iq of type get or set and waits for its result or error,
// which is returned (check Type) instead of going to the Handler. Do not
// call it synchronously from the Handler: while the Handler waits, the
// dispatch of further stanzas waits too.
func (c *Component) SendIQ(ctx context.Context, r xml.TokenReader) (Stanza, error) {
	cn := c.cur.Load()
	if cn == nil {
		return Stanza{}, ErrNotConnected
	}
	var buf bytes.Buffer
	top, err := wire.EncodeStanza(&buf, r, wire.NSAccept)
	if err != nil {
		return Stanza{}, fmt.Errorf("xmppcomp: send iq: %w", err)
	}
	typ := wire.Attr(top, "type")
	if top.Name.Local != "iq" || (typ != "get" && typ != "set") {
		return Stanza{}, fmt.Errorf("xmppcomp: send iq: want <iq type=\"get\"> or \"set\", got <%s type=%q>", top.Name.Local, typ)
	}
	return c.await(ctx, cn, wire.Attr(top, "id"), buf.Bytes())
}

// Barrier returns nil once the XMPP server has processed every stanza this
// component sent on the current connection before the call: a server
// handles one stream's stanzas in order, so Barrier sends a XEP-0199 ping
// from the component's domain to to's domain (the server of the user the
// stanzas were for) and waits for its answer, a result or an error alike.
// Use it before forgetting what was sent, e.g. before deleting delivered
// messages from a queue.
//
// Stanzas sent on an earlier connection are not covered: one that the
// server had not read when that connection dropped is lost even though
// Barrier succeeds afterwards. If there is no connection, or it ends before
// the answer, the error matches ErrNotConnected; ctx bounds the wait. Do
// not call Barrier synchronously from the Handler: the answer could only
// arrive after the Handler returns (as with SendIQ).
//
// With Config.Balanced the ping goes to to's bare JID instead: its server
// answers for the account, and the answer, coming from the user, is
// routed to the connection of the user's slot, which is this process's
// when it serves the user.
func (c *Component) Barrier(ctx context.Context, to jid.JID) error {
	dom := to.Domain()
	if dom.String() == "" {
		return errors.New("xmppcomp: barrier: the JID has no domain")
	}
	if c.cfg.Balanced && to.Localpart() != "" {
		dom = to.Bare()
	}
	cn := c.cur.Load()
	if cn == nil {
		return fmt.Errorf("%w: cannot confirm delivery to %s", ErrNotConnected, dom)
	}
	id := "barrier-" + crand.Text()
	var buf bytes.Buffer
	if _, err := wire.EncodeStanza(&buf, c.ping(id, dom), wire.NSAccept); err != nil {
		return fmt.Errorf("xmppcomp: barrier: %w", err)
	}
	if _, err := c.await(ctx, cn, id, buf.Bytes()); err != nil {
		return fmt.Errorf("xmppcomp: barrier toward %s: %w", dom, err)
	}
	return nil
}

// ping is a XEP-0199 ping from the component's domain.
func (c *Component) ping(id string, to jid.JID) xml.TokenReader {
	return c.pingFrom(id, c.domain, to)
}

func (c *Component) pingFrom(id string, from, to jid.JID) xml.TokenReader {
	return stanza.IQ{ID: id, Type: stanza.GetIQ, From: from, To: to}.Wrap(
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsPing, Local: "ping"}}))
}

// from is the JID cn's own pings are sent from: the domain, or with
// balancing the JID found to come back to cn.
func (cn *conn) from(dom jid.JID) jid.JID {
	if e := cn.echo.Load(); e != nil {
		return *e
	}
	return dom
}

// await writes the encoded iq b with the given id on cn and waits for the
// answer that the reader routes to it.
func (c *Component) await(ctx context.Context, cn *conn, id string, b []byte) (Stanza, error) {
	p := &pendingIQ{ch: make(chan Stanza, 1)}
	c.mu.Lock()
	if _, dup := c.pending[id]; dup {
		c.mu.Unlock()
		return Stanza{}, fmt.Errorf("xmppcomp: send iq: id %q is already waiting for an answer", id)
	}
	c.pending[id] = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := cn.write(ctx, b); err != nil {
		return Stanza{}, err
	}
	select {
	case st := <-p.ch:
		return st, nil
	case <-cn.done:
		return Stanza{}, fmt.Errorf("%w: connection lost before the answer to iq %q", ErrNotConnected, id)
	case <-ctx.Done():
		return Stanza{}, fmt.Errorf("xmppcomp: iq %q: %w", id, ctx.Err())
	}
}

// ReplyError answers st with a stanza error: same name and id, type
// "error", from and to swapped.
func (c *Component) ReplyError(ctx context.Context, st Stanza, e stanza.Error) error {
	cn := c.cur.Load()
	if cn == nil {
		return ErrNotConnected
	}
	return c.sendOn(ctx, cn, errorReply(st, e))
}

// errorReply is the answer to st with the stanza error e: same name and
// id, type "error", from and to swapped.
func errorReply(st Stanza, e stanza.Error) xml.TokenReader {
	start := xml.StartElement{Name: xml.Name{Local: st.Name}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "error"},
	}}
	if st.ID != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "id"}, Value: st.ID})
	}
	if s := st.To.String(); s != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: s})
	}
	if s := st.From.String(); s != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "to"}, Value: s})
	}
	return xmlstream.Wrap(e.TokenReader(), start)
}
