package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/gateway"
	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

const (
	domain   = "qq.load.example"
	userHost = "load.example"
	baseUIN  = 100000
	password = "load-password"
	bodyMark = "load-" // prefix of the bodies of measured messages
)

type options struct {
	Users, Buddies, MaxInFlight    int
	Duration, PollIdle, PollActive time.Duration
	LoginTimeout, Settle, Grace    time.Duration
	ChatRate                       float64
}

// report holds the figures of one run.
type report struct {
	o                                     options
	loggedIn                              int
	loginTime                             time.Duration
	window                                time.Duration
	cpu, simCPU                           time.Duration // process CPU, qqsim handler time, in the window
	heapBase, heapEnd                     uint64        // HeapInuse after GC: before the gateway, after the window
	goroutines                            int
	requests                              int64 // QQ HTTP requests in the window
	stanzas, pres, msgs, iqs              int64 // stanzas out in the window
	sent, delivered, lost, dups, sendErrs int
	p50, p99, max                         time.Duration
}

func (r *report) problems() []string {
	var p []string
	if r.loggedIn != r.o.Users {
		p = append(p, fmt.Sprintf("%d of %d users logged in within %v", r.loggedIn, r.o.Users, r.o.LoginTimeout))
	}
	if r.lost > 0 || r.dups > 0 || r.sendErrs > 0 {
		p = append(p, fmt.Sprintf("messages: %d sent, %d lost, %d delivered more than once, %d not accepted by qqsim", r.sent, r.lost, r.dups, r.sendErrs))
	}
	return p
}

func (r *report) write(w io.Writer) {
	secs := r.window.Seconds()
	perSec := func(n int64) float64 { return float64(n) / secs }
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(w, "users: %d, buddies each: %d, poll idle/active: %v/%v, max in flight: %d\n",
		r.o.Users, r.o.Buddies, r.o.PollIdle, r.o.PollActive, r.o.MaxInFlight)
	fmt.Fprintf(w, "logged in: %d/%d in %.1fs\n", r.loggedIn, r.o.Users, r.loginTime.Seconds())
	fmt.Fprintf(w, "window: %.1fs (qqsim runs in this process: CPU and heap include it)\n", secs)
	fmt.Fprintf(w, "cpu total: %.3f cores (%.1f%% of one core)\n", r.cpu.Seconds()/secs, 100*r.cpu.Seconds()/secs)
	fmt.Fprintf(w, "cpu in qqsim handlers: %.3f cores (wall time summed over requests, an upper bound)\n", r.simCPU.Seconds()/secs)
	fmt.Fprintf(w, "heap in use: %.1f MiB (%.1f MiB before the gateway started: qqsim world and store)\n",
		mib(r.heapEnd), mib(r.heapBase))
	fmt.Fprintf(w, "heap per user: %.1f KiB (growth since the gateway started / users; includes qqsim sessions)\n",
		float64(int64(r.heapEnd)-int64(r.heapBase))/1024/float64(r.o.Users))
	fmt.Fprintf(w, "goroutines: %d\n", r.goroutines)
	fmt.Fprintf(w, "qq requests/s: %.1f\n", perSec(r.requests))
	fmt.Fprintf(w, "stanzas out/s: %.1f (presence %.1f, message %.1f, iq %.1f)\n",
		perSec(r.stanzas), perSec(r.pres), perSec(r.msgs), perSec(r.iqs))
	if r.o.ChatRate > 0 {
		fmt.Fprintf(w, "messages: %d sent, %d delivered, %d lost, %d duplicated, %d refused by qqsim\n",
			r.sent, r.delivered, r.lost, r.dups, r.sendErrs)
		fmt.Fprintf(w, "delivery latency: p50 %v, p99 %v, max %v\n",
			r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func uinOf(i int) qqproto.UIN { return qqproto.UIN(baseUIN + i) }

// buddiesOf are the k load accounts after i, wrapping around.
func buddiesOf(i, n, k int) []qqproto.UIN {
	out := make([]qqproto.UIN, 0, k)
	for j := 1; j <= k; j++ {
		out = append(out, uinOf((i+j)%n))
	}
	return out
}

// run sets up qqsim, the store and the gateway, and measures; progress goes
// to logw.
func run(ctx context.Context, o options, logw io.Writer) (*report, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Grace == 0 {
		o.Grace = 2*o.PollIdle + 5*time.Second
	}
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "qqload: "+format+"\n", args...) }

	sim, h, addr, closeSim, err := startSim(o)
	if err != nil {
		return nil, err
	}
	defer closeSim()
	dir, err := os.MkdirTemp("", "qqload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := openStore(ctx, o, filepath.Join(dir, "load.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rep := &report{o: o}
	rep.heapBase = heapInuse()

	cfg := gateway.DefaultConfig(domain)
	cfg.QQ = qqproto.Options{Server: "http://" + addr + "/"}
	cfg.PollIdle, cfg.PollActive, cfg.MaxInFlight = o.PollIdle, o.PollActive, o.MaxInFlight
	g, err := gateway.New(cfg, st)
	if err != nil {
		return nil, err
	}
	out := &countingSender{sent: map[int]time.Time{}, seen: map[int]int{}}
	gctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); g.Run(gctx, out) }()
	defer func() { stop(); <-done }()

	if err := logInAll(ctx, o, g, sim, rep, logf); err != nil || rep.loggedIn < o.Users {
		return rep, err
	}
	if err := sleep(ctx, o.Settle); err != nil {
		return nil, err
	}
	if err := measure(ctx, o, sim, h, out, rep, logf); err != nil {
		return nil, err
	}
	return rep, nil
}

func (o options) check() error {
	switch {
	case o.Users < 2:
		return fmt.Errorf("-users is %d; want at least 2", o.Users)
	case o.Buddies < 0 || o.Buddies >= o.Users:
		return fmt.Errorf("-buddies is %d; want 0 to %d (fewer than the users)", o.Buddies, o.Users-1)
	case o.Duration <= 0 || o.ChatRate < 0:
		return errors.New("-duration must be positive and -chat-rate not negative")
	}
	return nil
}

// startSim serves qqsim with the load accounts on a loopback port.
func startSim(o options) (*qqsim.Server, *timedHandler, string, func(), error) {
	sim := qqsim.New(qqsim.Options{})
	for i := 0; i < o.Users; i++ {
		a := qqsim.Account{UIN: uinOf(i), Password: password, Nick: fmt.Sprintf("load%d", i), Buddies: buddiesOf(i, o.Users, o.Buddies)}
		if err := sim.AddAccount(a); err != nil {
			return nil, nil, "", nil, fmt.Errorf("qqsim: %w", err)
		}
	}
	h := &timedHandler{next: sim}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, "", nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return sim, h, ln.Addr().String(), func() { srv.Close() }, nil
}

// openStore opens the store with every load user registered.
func openStore(ctx context.Context, o options, path string) (*store.Store, error) {
	st, err := store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	pwMD5 := qqproto.PasswordMD5(password)
	for i := 0; i < o.Users; i++ {
		r := store.Registration{JID: userJID(i), UIN: int64(uinOf(i)), PasswordMD5: pwMD5}
		if err := st.PutRegistration(ctx, r); err != nil {
			st.Close()
			return nil, fmt.Errorf("register user %d: %w", i, err)
		}
	}
	return st, nil
}

// logInAll makes every user available and waits for their QQ logins.
func logInAll(ctx context.Context, o options, g *gateway.Gateway, sim *qqsim.Server, rep *report, logf func(string, ...any)) error {
	start := time.Now()
	for i := 0; i < o.Users; i++ {
		raw := fmt.Sprintf(`<presence xmlns='jabber:component:accept' from='%s/r' to='%s'/>`, userJID(i), domain)
		p, err := xmppcomp.ParseStanza([]byte(raw))
		if err != nil {
			return fmt.Errorf("presence of user %d: %w", i, err)
		}
		g.HandleStanza(ctx, p)
	}
	logf("%d users made available; waiting for their QQ logins", o.Users)
	deadline := start.Add(o.LoginTimeout)
	for {
		rep.loggedIn = sim.Stats().Sessions
		if rep.loggedIn >= o.Users || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep.loginTime = time.Since(start)
	logf("%d/%d logged in after %.1fs", rep.loggedIn, o.Users, rep.loginTime.Seconds())
	return ctx.Err()
}

// measure runs the measured window (with chat traffic if asked) and waits
// for the messages.
func measure(ctx context.Context, o options, sim *qqsim.Server, h *timedHandler, out *countingSender, rep *report, logf func(string, ...any)) error {
	logf("measuring for %v", o.Duration)
	cpu0, sim0, req0, c0 := cpuTime(), h.nanos.Load(), h.requests.Load(), out.counts()
	t0 := time.Now()
	chatDone := make(chan struct{})
	wctx, endWindow := context.WithTimeout(ctx, o.Duration)
	defer endWindow()
	go func() { defer close(chatDone); chat(wctx, o, sim, out) }()
	<-wctx.Done()
	<-chatDone
	rep.window = time.Since(t0)
	rep.cpu = cpuTime() - cpu0
	rep.simCPU = time.Duration(h.nanos.Load() - sim0)
	rep.requests = h.requests.Load() - req0
	c1 := out.counts()
	rep.pres, rep.msgs, rep.iqs = c1[kindPresence]-c0[kindPresence], c1[kindMessage]-c0[kindMessage], c1[kindIQ]-c0[kindIQ]
	rep.stanzas = rep.pres + rep.msgs + rep.iqs + c1[kindOther] - c0[kindOther]
	rep.goroutines = runtime.NumGoroutine()
	rep.heapEnd = heapInuse()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if o.ChatRate > 0 {
		logf("waiting up to %v for the messages", o.Grace)
		graceEnd := time.Now().Add(o.Grace)
		for !out.allSeen() && time.Now().Before(graceEnd) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		out.summarise(rep)
	}
	return nil
}

func userJID(i int) string { return fmt.Sprintf("u%d@%s", i, userHost) }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// chat sends o.ChatRate messages a second from QQ, each from a buddy of a
// random user to that user, until ctx ends.
func chat(ctx context.Context, o options, sim *qqsim.Server, out *countingSender) {
	if o.ChatRate <= 0 {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.ChatRate))
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		to := rand.IntN(o.Users)
		from := uinOf((to + 1) % o.Users)
		out.expect(seq)
		if err := sim.Send(from, uinOf(to), bodyMark+strconv.Itoa(seq)); err != nil {
			out.refused(seq)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// timedHandler counts qqsim's requests and sums the time spent in them.
type timedHandler struct {
	next     http.Handler
	requests atomic.Int64
	nanos    atomic.Int64
}

func (h *timedHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := time.Now()
	h.next.ServeHTTP(w, r)
	h.nanos.Add(int64(time.Since(t)))
	h.requests.Add(1)
}

const (
	kindPresence = iota
	kindMessage
	kindIQ
	kindOther
	kinds
)

// countingSender stands in for the component connection: it marshals each
// stanza, as the component would, counts it by kind, and notes when the
// messages chat sent arrive.
type countingSender struct {
	n [kinds]atomic.Int64

	mu       sync.Mutex
	sent     map[int]time.Time // by sequence number
	seen     map[int]int
	refusals int
	lat      []time.Duration
}

func (c *countingSender) Send(_ context.Context, r xml.TokenReader) error {
	kind := -1
	for {
		tok, err := r.Token()
		if se, ok := tok.(xml.StartElement); ok && kind < 0 {
			kind = kindOf(se.Name.Local)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if kind < 0 {
		kind = kindOther
	}
	c.n[kind].Add(1)
	return nil
}

// ReplyError counts an error reply; load users send nothing wrong.
func (c *countingSender) ReplyError(context.Context, xmppcomp.Stanza, stanza.Error) error {
	c.n[kindOther].Add(1)
	return nil
}

// Barrier counts the ping a real component sends for it. Its round trip
// through a server is not measured here: the real-chain benchmark does.
func (c *countingSender) Barrier(context.Context, jid.JID) error {
	c.n[kindIQ].Add(1)
	return nil
}

// SendIQ is never called: no server grants the load run roster access
// (XEP-0356), and the gateway asks nothing else.
func (c *countingSender) SendIQ(context.Context, xml.TokenReader) (xmppcomp.Stanza, error) {
	return xmppcomp.Stanza{}, errors.New("qqload: no XMPP server to answer an iq")
}

func (c *countingSender) Encode(_ context.Context, v any) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	name := b[1:]
	if i := bytes.IndexAny(name, " />"); i >= 0 {
		name = name[:i]
	}
	kind := kindOf(string(name))
	c.n[kind].Add(1)
	if kind == kindMessage {
		c.noteBody(b)
	}
	return nil
}

func kindOf(name string) int {
	switch name {
	case "presence":
		return kindPresence
	case "message":
		return kindMessage
	case "iq":
		return kindIQ
	}
	return kindOther
}

// noteBody records the arrival of a message chat sent.
func (c *countingSender) noteBody(b []byte) {
	i := bytes.Index(b, []byte("<body>"+bodyMark))
	if i < 0 {
		return
	}
	rest := b[i+len("<body>"+bodyMark):]
	j := bytes.IndexByte(rest, '<')
	if j < 0 {
		return
	}
	seq, err := strconv.Atoi(string(rest[:j]))
	if err != nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[seq]++
	if t, ok := c.sent[seq]; ok && c.seen[seq] == 1 {
		c.lat = append(c.lat, now.Sub(t))
	}
}

func (c *countingSender) counts() [kinds]int64 {
	var out [kinds]int64
	for i := range out {
		out[i] = c.n[i].Load()
	}
	return out
}

func (c *countingSender) expect(seq int) {
	c.mu.Lock()
	c.sent[seq] = time.Now()
	c.mu.Unlock()
}

func (c *countingSender) refused(seq int) {
	c.mu.Lock()
	delete(c.sent, seq)
	c.refusals++
	c.mu.Unlock()
}

func (c *countingSender) allSeen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for seq := range c.sent {
		if c.seen[seq] == 0 {
			return false
		}
	}
	return true
}

func (c *countingSender) summarise(r *report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.sent, r.sendErrs = len(c.sent), c.refusals
	for seq := range c.sent {
		switch n := c.seen[seq]; {
		case n == 0:
			r.lost++
		case n > 1:
			r.dups++
		}
		if c.seen[seq] > 0 {
			r.delivered++
		}
	}
	for seq := range c.seen {
		if _, ok := c.sent[seq]; !ok {
			r.dups++ // seen but never sent: counts as a wrong delivery
		}
	}
	lat := slices.Clone(c.lat)
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
		r.max = lat[len(lat)-1]
	}
}
