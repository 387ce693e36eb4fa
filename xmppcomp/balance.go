package xmppcomp

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// ErrNoSlot means the server balances the domain over a fixed number of
// connections (Config.Balanced) and gave this one none: every slot was
// held when it connected. The connection is closed and dialled again
// after the backoff.
var ErrNoSlot = errors.New("xmppcomp: the server gave this connection no slot of the balanced domain")

// slotProbes is how many JIDs findSlot tries per slot: the chance that a
// slot gets none of them is about e^-16.
const slotProbes = 16

// maxSlotWait bounds findSlot's wait for its probes: they make one round
// trip through the server, and a connection without a slot should try
// again soon, since the slot a dead process left frees within moments.
const maxSlotWait = 3 * time.Second

// findSlot learns whether the server routes anything to cn. A server that
// balances the domain by sender (ejabberd's domain_balancing) sends each
// stanza for the domain to the connection holding the slot of the
// sender's bare JID, its own answers from its domain included, so the
// usual ping to the domain is answered on whichever connection holds the
// domain's slot. findSlot sends pings to the domain from many random JIDs
// of the domain: those that come back to cn are in cn's slot, and the
// first becomes cn's echo, the sender of its liveness pings. None coming
// back within PingTimeout (at most maxSlotWait) means cn holds no slot:
// ErrNoSlot.
func (c *Component) findSlot(ctx context.Context, cn *conn) error {
	n := slotProbes * max(c.cfg.Slots, 2)
	found := make(chan jid.JID, n)
	ids := make([]string, 0, n)
	defer func() {
		c.mu.Lock()
		for _, id := range ids {
			delete(c.pending, id)
		}
		c.mu.Unlock()
	}()
	wait := min(c.cfg.PingTimeout, maxSlotWait)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for range n {
		from, err := jid.New("slot-"+strings.ToLower(crand.Text()[:12]), c.domain.Domainpart(), "")
		if err != nil {
			return fmt.Errorf("xmppcomp: slot probe: %w", err)
		}
		id := "slot-" + crand.Text()
		p := &pendingIQ{ch: make(chan Stanza, 1), ping: true, on: cn}
		c.mu.Lock()
		c.pending[id] = p
		c.mu.Unlock()
		ids = append(ids, id)
		go func() {
			select {
			case st := <-p.ch:
				found <- st.From.Bare()
			case <-wctx.Done():
			}
		}()
		if err := c.sendOn(wctx, cn, c.pingFrom(id, from, c.domain)); err != nil {
			return fmt.Errorf("xmppcomp: slot probe: %w", err)
		}
	}
	select {
	case e := <-found:
		cn.echo.Store(&e)
		c.log.WithField("echo", e.String()).Debug("xmppcomp: the server routes this connection a slot of the domain")
		return nil
	case <-wctx.Done():
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (none of %d probes came back within %v)", ErrNoSlot, n, wait.Round(time.Millisecond))
	}
}
