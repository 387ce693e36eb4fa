package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// statusEvery is how often health is checked, for systemd's STATUS, when
// the unit has no watchdog.
const statusEvery = 30 * time.Second

// health keeps systemd told how the gateway is: READY=1 the first time it
// is healthy, WATCHDOG=1 at every healthy check, STATUS= when that
// changes. Unhealthy, it stops feeding the watchdog, so that systemd
// restarts a process that is wedged.
type health struct {
	n     *notifier
	log   logrus.FieldLogger
	check func(context.Context) error // nil: healthy
	ok    string                      // STATUS while healthy
	every time.Duration
	wake  chan struct{} // a check now: the connection came or went
	done  chan struct{} // closed when run returned
}

func newHealth(n *notifier, log logrus.FieldLogger, ok string, check func(context.Context) error) *health {
	every := statusEvery
	if n.watchdog > 0 {
		// A third: one failed or slow check does not kill the process,
		// two in a row do.
		every = n.watchdog / 3
	}
	return &health{n: n, log: log, check: check, ok: ok, every: every,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// poke asks for a check now; it never blocks. A nil h does nothing.
func (h *health) poke() {
	if h == nil {
		return
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run checks at once, then every h.every and when poked, until ctx ends.
func (h *health) run(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(h.every)
	defer t.Stop()
	var st healthState
	for {
		cctx, cancel := context.WithTimeout(ctx, h.every)
		err := h.check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		h.report(&st, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.wake:
		}
	}
}

// healthState is what systemd was told.
type healthState struct {
	ready, healthy bool
	status         string
}

// report tells systemd the outcome of one check, err, and logs the
// changes between healthy and unhealthy.
func (h *health) report(st *healthState, err error) {
	var msgs []string
	status := h.ok
	switch {
	case err == nil && !st.ready:
		st.ready = true
		msgs = append(msgs, "READY=1")
	case err == nil && !st.healthy:
		h.log.Info("qqgateway: healthy again")
	case err != nil && !st.ready:
		status = "starting: " + oneLine(err.Error())
	case err != nil:
		status = "unhealthy: " + oneLine(err.Error())
		if st.healthy {
			h.log.WithError(err).WithField("watchdog", h.n.watchdog.String()).Warn("qqgateway: unhealthy; systemd's watchdog is not fed until this passes")
		}
	}
	st.healthy = err == nil
	if status != st.status {
		st.status = status
		msgs = append(msgs, "STATUS="+status)
	}
	if st.healthy && h.n.watchdog > 0 {
		msgs = append(msgs, "WATCHDOG=1")
	}
	if len(msgs) > 0 {
		h.notify(msgs...)
	}
}

func (h *health) notify(state ...string) {
	if err := h.n.send(state...); err != nil {
		h.log.WithError(err).Warn("qqgateway: cannot notify systemd")
	}
}

// oneLine keeps a STATUS= value on its line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

// startHealth starts telling systemd how the gateway is, if systemd
// listens. Call it before the component runs: its callbacks poke h.
func (d *daemon) startHealth() {
	n, err := newNotifier(d.cmd.getenv)
	if err != nil {
		d.log.WithError(err).Warn("qqgateway: systemd's environment")
	}
	d.sd = n
	if !n.enabled() {
		return
	}
	ok := fmt.Sprintf("connected to %s as %s", d.cfg.Component.Server, d.cfg.Component.JID)
	d.health = newHealth(n, d.log, ok, d.healthy)
	ctx, cancel := context.WithCancel(context.Background())
	d.stopHealth = cancel
	go d.health.run(ctx)
}

// healthy: the component is connected and the database takes writes.
func (d *daemon) healthy(ctx context.Context) error {
	if !d.comp.Connected() {
		return fmt.Errorf("not connected to the XMPP server at %s", d.cfg.Component.Server)
	}
	if err := d.st.Heartbeat(ctx); err != nil {
		return fmt.Errorf("the database does not take writes: %w", err)
	}
	return nil
}

// stopping ends the health checks and tells systemd that the gateway is
// shutting down, so that the watchdog is not expected meanwhile.
func (d *daemon) stopping() {
	if d.health == nil {
		return
	}
	d.stopHealth()
	<-d.health.done
	if err := d.sd.send("STOPPING=1", "STATUS=shutting down"); err != nil {
		d.log.WithError(err).Warn("qqgateway: cannot notify systemd")
	}
}

// onConnect and onDisconnect are the component's callbacks.
func (d *daemon) onConnect(ctx context.Context) {
	d.health.poke()
	d.g.OnConnect(ctx)
}

func (d *daemon) onDisconnect(error) { d.health.poke() }
