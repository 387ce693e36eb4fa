package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// yardstick measures Prosody alone: pairs of plain users (not registered
// with the gateway) send each other the chat phase's messages, c2s to c2s.
func (b *bench) yardstick(ctx context.Context) error { return b.yardstickInto(ctx, &b.rep.Yardstick) }

// yardstickEmpty is the yardstick before any user is online: Prosody with
// a small heap, as the first figures were measured.
func (b *bench) yardstickEmpty(ctx context.Context) error {
	return b.yardstickInto(ctx, &b.rep.YardstickEmpty)
}

func (b *bench) yardstickInto(ctx context.Context, into *phaseResult) error {
	n := 2 * b.o.pairs
	plain, closeAll, err := b.plainClients(ctx, n)
	if err != nil {
		return err
	}
	defer closeAll()
	prefix := fmt.Sprintf("y%d-", b.col.received.Load()) // ids unique across both runs
	*into, err = b.plainRun(n, prefix, func(from int) string { return b.w.plainUser(from^1) + "@" + domain }, plain)
	return err
}

// plainClients logs in the first n plain users (not registered with the
// gateway), available; closeAll logs them out.
func (b *bench) plainClients(ctx context.Context, n int) (plain []*client, closeAll func(), err error) {
	closeAll = func() {
		for _, p := range plain {
			p.close()
		}
	}
	for i := range n {
		c, err := dial(ctx, b.st.clientAddr, b.w.plainUser(i), domain, b.w.plainPassword(i))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		plain = append(plain, c)
		c.run(func(_ *client, st *stanza, at time.Time) {
			if st.XMLName.Local == "message" {
				b.col.arrived(st.Body, at)
			}
		})
		if err := c.presence("", ""); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	return plain, closeAll, nil
}

// plainRun has the plain clients send yardMessages each to the address to
// gives (their partner's), all at once, and measures it like a message
// phase; ids carry prefix.
func (b *bench) plainRun(n int, prefix string, to func(from int) string, plain []*client) (phaseResult, error) {
	base, err := b.idleRates(2 * time.Second)
	if err != nil {
		return phaseResult{}, err
	}
	senders := make([]int, n)
	for i := range senders {
		senders[i] = i
	}
	want := b.col.received.Load() + int64(n*b.o.yardMessages)
	a, err := b.sample()
	if err != nil {
		return phaseResult{}, err
	}
	err = b.sendAll(senders, b.o.yardMessages, prefix, func(from, _ int, id string) error {
		return plain[from].message(to(from), b.col.sent(id, -1))
	})
	if err != nil {
		return phaseResult{}, err
	}
	b.col.waitReceived(want, b.o.stall)
	z, err := b.sample()
	if err != nil {
		return phaseResult{}, err
	}
	t := b.col.tally(prefix)
	r := b.throughput(t, a, z, base)
	if t.Lost > 0 {
		return r, fmt.Errorf("%d of %d plain messages (%s) lost: the yardstick is void", t.Lost, t.Sent, prefix)
	}
	return r, nil
}

// idleRates measures each process's CPU per second of wall time over d.
func (b *bench) idleRates(d time.Duration) (map[string]float64, error) {
	a, err := b.sample()
	if err != nil {
		return nil, err
	}
	time.Sleep(d)
	z, err := b.sample()
	if err != nil {
		return nil, err
	}
	return rates(a, z), nil
}

func rates(a, z sample) map[string]float64 {
	r := map[string]float64{}
	wall := z.at.Sub(a.at).Seconds()
	for k, d := range cpuDelta(a, z) {
		r[k] = d.Seconds() / wall
	}
	return r
}

// throughput is a message phase's figures: rate from the first send to
// the last arrival, CPU per delivered message with each process's idle
// rate over the sampled interval subtracted.
func (b *bench) throughput(t tally, a, z sample, idle map[string]float64) phaseResult {
	r := phaseResult{Sent: t.Sent, Delivered: t.Sent - t.Lost, Lost: t.Lost, Doubled: t.Doubled,
		Latency: summarise(t.latency), CPUPerMsg: map[string]time.Duration{}}
	r.Wall = t.lastArrived.Sub(t.firstSent)
	if r.Wall > 0 {
		r.Rate = float64(r.Delivered) / r.Wall.Seconds()
	}
	interval := z.at.Sub(a.at).Seconds()
	for k, d := range cpuDelta(a, z) {
		busy := d.Seconds() - idle[k]*interval
		if r.Delivered > 0 {
			r.CPUPerMsg[k] = time.Duration(max(busy, 0) / float64(r.Delivered) * float64(time.Second))
		}
	}
	return r
}

// online brings every user online and measures what they cost at rest.
func (b *bench) online(ctx context.Context) error {
	a, err := b.sample()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := b.connectAll(ctx); err != nil {
		return err
	}
	subscribed := time.Since(start)
	if err := b.waitSessions(b.o.stall); err != nil {
		return err
	}
	b.rep.Online = onlineResult{Users: b.w.Users, Buddies: b.w.Buddies, Ready: subscribed,
		AllLoggedIn: time.Since(start), RSSPerUser: map[string]int64{}, RSS: map[string]int64{}, RSSBefore: map[string]int64{}}
	time.Sleep(b.o.settle) // roster imports and profile fetches finish
	z, err := b.sample()
	if err != nil {
		return err
	}
	for k, u := range z.u {
		b.rep.Online.RSS[k] = u.RSS
		b.rep.Online.RSSBefore[k] = a.u[k].RSS
		b.rep.Online.RSSPerUser[k] = (u.RSS - a.u[k].RSS) / int64(b.w.Users)
	}
	if b.o.pprof {
		// What the memory per user is made of, every user online.
		if err := b.st.pprofCall("heap"); err != nil {
			return err
		}
		b.rep.Heap = b.pprofTop(filepath.Join(b.st.dir, "relay.pprof.heap"), "-sample_index=inuse_space")
	}
	return nil
}

// waitSessions waits until the gateway says every user is logged in to
// QQ (qqgateway_sessions_online), or it stopped growing for stall.
func (b *bench) waitSessions(stall time.Duration) error {
	last, lastAt := -1, time.Now()
	for {
		n, err := b.gatewayGauge("qqgateway_sessions_online")
		if err == nil && n >= b.w.Users {
			return nil
		}
		if n != last {
			last, lastAt = n, time.Now()
		}
		if time.Since(lastAt) > stall {
			return fmt.Errorf("%d of %d sessions logged in to QQ (stalled for %v; last error %v)", n, b.w.Users, stall, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gatewayGauge reads one unlabelled metric from the gateway's /metrics.
func (b *bench) gatewayGauge(name string) (int, error) {
	m, err := b.gatewayMetrics()
	if err != nil {
		return 0, err
	}
	v, ok := m[name]
	if !ok {
		return 0, fmt.Errorf("/metrics has no %s", name)
	}
	return int(v), nil
}

// gatewayMetrics reads the gateway's /metrics once: each sample by its
// name with its labels as /metrics writes them.
func (b *bench) gatewayMetrics() (map[string]float64, error) {
	resp, err := httpc.Get("http://" + b.st.metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, " "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				m[k] = f
			}
		}
	}
	return m, sc.Err()
}

// simStats are the counters of qqsim's GET /_sim/stats used here.
type simStats struct {
	Sessions int   `json:"sessions"`
	Requests int64 `json:"requests"`
}

// idlePhase measures every user online and quiet: CPU per second of each
// process (subtracted from the message phases) and QQ requests per user
// per minute.
func (b *bench) idlePhase(ctx context.Context) error {
	var s0, s1 simStats
	if err := b.st.sim(ctx, "stats", nil, &s0); err != nil {
		return err
	}
	a, err := b.sample()
	if err != nil {
		return err
	}
	time.Sleep(b.o.idle)
	z, err := b.sample()
	if err != nil {
		return err
	}
	if err := b.st.sim(ctx, "stats", nil, &s1); err != nil {
		return err
	}
	wall := z.at.Sub(a.at)
	b.rep.Idle = idleResult{Window: wall, CPU: rates(a, z),
		QQRequestsPerUserMinute: float64(s1.Requests-s0.Requests) / float64(b.w.Users) / wall.Minutes(), RSSPerUser: map[string]int64{}}
	for k, u := range z.u {
		b.rep.Idle.RSSPerUser[k] = (u.RSS - b.rep.Online.RSSBefore[k]) / int64(b.w.Users)
	}
	return nil
}

// chat: the chat pairs send each other M messages at once, both ways,
// XMPP → gateway → CLTMSG → qqsim → GetMsgEx → gateway → XMPP.
func (b *bench) chat(ctx context.Context) error {
	senders := make([]int, 2*b.o.pairs)
	for i := range senders {
		senders[i] = i
	}
	want := b.col.received.Load() + int64(len(senders)*b.o.messages)
	s0 := b.stanzaCounts()
	a, err := b.sample()
	if err != nil {
		return err
	}
	if b.o.pprof {
		if err := b.st.pprofCall("start"); err != nil {
			return err
		}
	}
	err = b.sendAll(senders, b.o.messages, "c-", func(from, _ int, id string) error {
		to := b.w.partner(from)
		return b.users[from].c.message(b.buddyJID(to), b.col.sent(id, to))
	})
	if err != nil {
		return err
	}
	b.col.waitReceived(want, b.o.stall)
	z, err := b.sample()
	if err != nil {
		return err
	}
	if b.o.pprof {
		if err := b.st.pprofCall("stop"); err != nil {
			return err
		}
		b.rep.Profile = b.pprofTop(filepath.Join(b.st.dir, "relay.pprof"))
	}
	b.rep.Chat = b.throughput(b.col.tally("c-"), a, z, b.rep.Idle.CPU)
	b.rep.ChatStanzas = b.stanzaCounts().minus(s0)
	return nil
}

// settledCounts is stanzaCounts once the gateway stopped sending (a
// session counts as logged in before it has announced its buddies), and
// when its count of stanzas sent last grew, to the half second. Stopped
// means unchanged for quietFor: Prosody pauses for a second at times (its
// collector), and the gateway's writes wait for it.
func (b *bench) settledCounts() (stanzaCounts, time.Time) {
	const quietFor, atMost = 3 * time.Second, 5 * time.Minute
	c, at := b.stanzaCounts(), time.Now()
	for start := at; time.Since(at) < quietFor && time.Since(start) < atMost; {
		time.Sleep(500 * time.Millisecond)
		if n := b.stanzaCounts(); n.Out != c.Out {
			c, at = n, time.Now()
		}
	}
	return c, at
}

// stanzaCounts reads the gateway's counts of the stanzas it exchanged
// with the XMPP server; a counter it cannot read stays 0.
func (b *bench) stanzaCounts() stanzaCounts {
	m, _ := b.gatewayMetrics()
	c := stanzaCounts{
		In: int(m["qqgateway_stanzas_received_total"]), Out: int(m["qqgateway_stanzas_sent_total"]),
		Barriers: int(m["qqgateway_delivery_barriers_total"]),
		Commits:  int(m["qqgateway_store_commits_total"]), Writes: int(m["qqgateway_store_writes_total"]),
	}
	for i, d := range []string{"to_qq", "to_xmpp"} {
		c.LatencySum[i] = m[`qqgateway_relay_latency_seconds_sum{direction="`+d+`"}`]
		c.LatencyN[i] = m[`qqgateway_relay_latency_seconds_count{direction="`+d+`"}`]
	}
	return c
}

// pprofTop is the top of one of qqgateway's profiles: flat, where the CPU
// (or memory) goes, and cumulative, which of the gateway's paths spend it.
func (b *bench) pprofTop(prof string, opts ...string) string {
	text := "profile: " + prof + "\n"
	for _, order := range []string{"-top", "-cum"} {
		args := append([]string{"tool", "pprof", "-top", "-nodecount=30"}, opts...)
		if order == "-cum" {
			args = append(args, "-cum")
		}
		out, err := exec.Command(goTool(), append(args, filepath.Join(b.st.bin, "qqgateway"), prof)...).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
		}
		text += string(out)
	}
	return text
}

// latencyPhase: every chat pair converses, one message every latencyGap,
// alternating direction. qqsim's inbox tells when each reached QQ.
func (b *bench) latencyPhase(ctx context.Context) error {
	want := b.col.received.Load()
	tick := time.NewTicker(b.o.latencyGap)
	defer tick.Stop()
	end := time.Now().Add(b.o.latency)
	for k := 0; time.Now().Before(end); k++ {
		for p := range b.o.pairs {
			from := 2*p + k%2
			to := b.w.partner(from)
			if err := b.users[from].c.message(b.buddyJID(to), b.col.sent(fmt.Sprintf("l-%d-%d", from, k), to)); err != nil {
				return err
			}
			want++
		}
		<-tick.C
	}
	b.col.waitReceived(want, b.o.stall)
	toQQ, toXMPP, err := b.splitLatency(ctx)
	if err != nil {
		return err
	}
	t := b.col.tally("l-")
	b.rep.Latency = latencyResult{Sent: t.Sent, Lost: t.Lost, Doubled: t.Doubled, Gap: b.o.latencyGap,
		EndToEnd: summarise(t.latency), ToQQ: summarise(toQQ), ToXMPP: summarise(toXMPP)}
	return nil
}

// splitLatency splits each conversation message's delivery at the moment
// qqsim queued it (its inbox's time): XMPP → QQ before, QQ → XMPP after.
func (b *bench) splitLatency(ctx context.Context) (toQQ, toXMPP []time.Duration, err error) {
	for i := range 2 * b.o.pairs {
		var inbox []struct {
			Text string    `json:"text"`
			At   time.Time `json:"at"`
		}
		if err := b.st.sim(ctx, "inbox/"+b.w.uin(i).String(), nil, &inbox); err != nil {
			return nil, nil, err
		}
		for _, it := range inbox {
			id, sentAt, ok := parseBody(it.Text)
			if !ok || !strings.HasPrefix(id, "l-") {
				continue
			}
			toQQ = append(toQQ, it.At.Sub(sentAt))
			if _, first := b.col.arrivedOf(id); !first.IsZero() {
				toXMPP = append(toXMPP, first.Sub(it.At))
			}
		}
	}
	return toQQ, toXMPP, nil
}

// burstPhase queues messages on QQ for one user through qqsim's control
// API, as fast as it takes them, and times their delivery.
func (b *bench) burstPhase(ctx context.Context) error {
	to, from := 0, b.w.partner(0)
	want := b.col.received.Load() + int64(b.o.burst)
	work := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				text := b.col.sent(fmt.Sprintf("b-%d", k), to)
				if err := b.st.sim(ctx, "send", map[string]any{"from": b.w.uin(from), "to": b.w.uin(to), "text": text}, nil); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	for k := range b.o.burst {
		work <- k
	}
	close(work)
	wg.Wait()
	queued := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	b.col.waitReceived(want, b.o.stall)
	t := b.col.tally("b-")
	b.rep.Burst = burstResult{Messages: b.o.burst, Lost: t.Lost, Doubled: t.Doubled, Queueing: queued,
		AllDelivered: t.lastArrived.Sub(start), AfterQueued: t.lastArrived.Sub(start.Add(queued))}
	return nil
}

// restartPhase stops the gateway (SIGTERM: it logs every session out)
// and starts it again, and times until every user is logged in to QQ,
// until the gateway is quiet, and until every client shows every buddy
// online again.
func (b *bench) restartPhase(context.Context) error {
	if err := b.st.gateway.stop(30 * time.Second); err != nil {
		return err
	}
	// The old gateway is gone: the new one's CPU counts from its start.
	a, err := b.sampleOf(b.st.prosody, b.st.qqsim)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := b.st.startGateway(); err != nil {
		return err
	}
	stopProgress := b.restartProgress(start)
	defer stopProgress()
	profiling := b.o.pprof && b.startProfile("restart")
	if err := b.waitSessions(b.o.stall); err != nil {
		return err
	}
	b.rep.Restart = time.Since(start)
	var quiet time.Time
	b.rep.RestartStanzas, quiet = b.settledCounts()
	b.rep.RestartAnnounced = quiet.Sub(start)
	b.rep.RestartShownAtQuiet = float64(b.on.shown.Load()) / float64(b.w.Users)
	z, err := b.sample()
	if err != nil {
		return err
	}
	b.rep.RestartCPU = cpuDelta(a, z)
	// What the users see: every buddy online again in every client. A
	// buddy the gateway found offline when it imported a user's list shows
	// up only with that user's next Query_Stat.
	want := int64(b.w.Users * b.w.Buddies)
	for b.on.shown.Load() < want && time.Since(quiet) < b.o.stall {
		time.Sleep(100 * time.Millisecond)
	}
	if at := time.Unix(0, b.on.allShownAt.Load()); b.on.shown.Load() >= want && at.After(start) {
		b.rep.RestartAllShown = at.Sub(start)
	}
	if profiling {
		if err := b.st.pprofCall("stop"); err != nil {
			return err
		}
		b.rep.RestartProfile = b.pprofTop(filepath.Join(b.st.dir, "relay.pprof.restart"))
	}
	return nil
}

// restartProgress logs, every second until it is stopped, how far the
// restart has come: sessions logged in to QQ, stanzas the gateway sent,
// and buddies the clients show online.
func (b *bench) restartProgress(start time.Time) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			m, _ := b.gatewayMetrics()
			b.logf("restart +%4.1fs: %5d logged in, %7d stanzas sent, %5.2f buddies shown per user",
				time.Since(start).Seconds(), int(m["qqgateway_sessions_online"]), int(m["qqgateway_stanzas_sent_total"]),
				float64(b.on.shown.Load())/float64(b.w.Users))
		}
	}()
	return func() { close(done); <-finished }
}

// startProfile starts a CPU profile of a gateway just started, once its
// profiling hook listens; it reports whether it did.
func (b *bench) startProfile(suffix string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := b.st.pprofCall("start?suffix=" + suffix)
		if err == nil {
			return true
		}
		if time.Now().After(deadline) {
			b.logf("no %s profile: %v", suffix, err)
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finalTally counts every message of the run once the phases are over, so
// that a copy that came late is still counted.
func (b *bench) finalTally() {
	t := b.col.tally("")
	b.col.mu.Lock()
	defer b.col.mu.Unlock()
	b.rep.Total = totals{Sent: t.Sent, Lost: t.Lost, Doubled: t.Doubled, Unknown: b.col.unknown,
		Errors: b.col.errors, FirstError: b.col.lastErr, UsersFailed: int(b.on.failed.Load())}
}
