package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// options are the command line's.
type options struct {
	users, buddies, pairs, messages int
	yardMessages                    int
	idle, latency, latencyGap       time.Duration
	burst                           int
	settle, stall, stepTimeout      time.Duration
	loginWorkers                    int
	pprof, restart, rosterFiles     bool
	prosodyGC                       string // "", incremental or generational
	gcPercent                       int    // the gateway's gc_percent
	keep                            bool
	dir                             string
}

// bench is one run: the stack, the users, what arrived, the report.
type bench struct {
	o     options
	w     world
	st    *stack
	users []*user
	col   *collector
	on    online
	rep   report
	log   io.Writer
}

// procs are the processes measured, in report order.
func (b *bench) procs() []*proc { return []*proc{b.st.gateway, b.st.prosody, b.st.qqsim} }

// sample is every measured process's usage at one moment, with the
// benchmark's own (its clients) last.
type sample struct {
	at time.Time
	u  map[string]usage
}

func (b *bench) sample() (sample, error) { return b.sampleOf(b.procs()...) }

// sampleOf is sample for some of the processes only.
func (b *bench) sampleOf(procs ...*proc) (sample, error) {
	s := sample{at: time.Now(), u: map[string]usage{}}
	for _, p := range procs {
		u, err := p.usage()
		if err != nil {
			return s, err
		}
		s.u[p.name] = u
	}
	self, err := readUsage(os.Getpid())
	s.u["qqbench"] = self
	return s, err
}

// cpuDelta is each process's CPU between two samples.
func cpuDelta(a, z sample) map[string]time.Duration {
	d := map[string]time.Duration{}
	for k, u := range z.u {
		d[k] = u.CPU - a.u[k].CPU
	}
	return d
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "qqbench: "+format+"\n", args...)
}

// run is the whole benchmark.
func (b *bench) run(ctx context.Context) error {
	if err := b.setup(ctx); err != nil {
		return err
	}
	defer b.st.stop()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"yardstick-empty", b.yardstickEmpty}, {"echo-empty", b.echoEmpty}, {"online", b.online}, {"idle", b.idlePhase},
		{"yardstick", b.yardstick}, {"echo", b.echoPhase}, {"chat", b.chat}, {"latency", b.latencyPhase}, {"burst", b.burstPhase},
	}
	if b.o.restart {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"restart", b.restartPhase})
	}
	for _, s := range steps {
		b.logf("phase %s", s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	b.finalTally()
	return nil
}

// setup writes the accounts and the world, builds and starts everything.
func (b *bench) setup(ctx context.Context) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	b.st = &stack{dir: b.o.dir, secret: randomSecret(), prosodyGC: b.o.prosodyGC, gcPercent: b.o.gcPercent}
	b.rep.ProsodyGC, b.rep.GCPercent = b.o.prosodyGC, b.o.gcPercent
	b.logf("building qqgateway and qqsim into %s", b.o.dir)
	if b.st.bin, err = build(ctx, root, b.o.dir, b.o.pprof); err != nil {
		return err
	}
	if err := b.writeAccounts(); err != nil {
		return err
	}
	world := filepath.Join(b.o.dir, "world.toml")
	f, err := os.Create(world)
	if err != nil {
		return err
	}
	if err := b.w.writeTOML(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := b.st.startProsody(); err != nil {
		return err
	}
	if err := b.st.startQQSim(world); err != nil {
		b.st.stop()
		return err
	}
	if err := b.st.startGateway(); err != nil {
		b.st.stop()
		return err
	}
	return nil
}

func (b *bench) writeAccounts() error {
	aw, err := newAccountWriter(filepath.Join(b.o.dir, "data"), domain)
	if err != nil {
		return err
	}
	start := time.Now()
	for i := range b.w.Users {
		if err := aw.write(b.w.xmppUser(i), b.w.xmppPassword(i)); err != nil {
			return err
		}
		if b.o.rosterFiles {
			if err := aw.writeRoster(b.w.xmppUser(i), b.w.rosterFile(i)); err != nil {
				return err
			}
		}
	}
	for i := range 2 * b.o.pairs {
		if err := aw.write(b.w.plainUser(i), b.w.plainPassword(i)); err != nil {
			return err
		}
	}
	b.logf("wrote %d Prosody accounts in %v", b.w.Users+2*b.o.pairs, time.Since(start).Round(time.Millisecond))
	return nil
}

// sendAll has each sender send n messages (ids prefix-sender-k) to its
// partner as fast as it can, all senders at once.
func (b *bench) sendAll(senders []int, n int, prefix string, send func(from, k int, id string) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(senders))
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range n {
				if err := send(s, k, fmt.Sprintf("%s%d-%d", prefix, s, k)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
