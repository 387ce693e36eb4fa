package gateway

import (
	"context"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/sirupsen/logrus"
)

func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func startScheduler(t testing.TB, max int) *scheduler {
	t.Helper()
	sc := newScheduler(max, clockwork.NewRealClock(), quietLogger())
	runScheduler(t, sc)
	return sc
}

// runScheduler starts sc, and stops it when the test ends: for a test
// that queues its work before the workers start.
func runScheduler(t testing.TB, sc *scheduler) {
	ctx, cancel := context.WithCancel(context.Background())
	sc.start(ctx)
	t.Cleanup(func() {
		cancel()
		sc.wait()
	})
}

// waitDone fails the test unless done is closed within 10 s.
func waitDone(t testing.TB, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// A task's work runs in submission order, never two items at once, and
// work submitted before start runs once started.
func TestSchedulerRunsTaskWorkInOrder(t *testing.T) {
	sc := newScheduler(4, clockwork.NewRealClock(), quietLogger())
	tk := newTask(func(context.Context) {})
	var (
		mu      sync.Mutex
		got     []int
		running atomic.Int32
		overlap atomic.Bool
	)
	done := make(chan struct{})
	const n = 200
	for i := 0; i < n; i++ {
		sc.submit(tk, func(context.Context) {
			if running.Add(1) > 1 {
				overlap.Store(true)
			}
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
			running.Add(-1)
			if i == n-1 {
				close(done)
			}
		})
	}
	runScheduler(t, sc)
	waitDone(t, done, "work did not run")
	if overlap.Load() {
		t.Error("two items of one task ran at the same time")
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("item %d ran as number %d: order lost", v, i)
		}
	}
}

// No more than max work items run at once, however many tasks are ready.
func TestSchedulerBoundsWorkers(t *testing.T) {
	const max = 5
	sc := startScheduler(t, max)
	var cur, peak atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		sc.submit(newTask(nil), func(context.Context) {
			defer wg.Done()
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			cur.Add(-1)
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for peak.Load() < max && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p != max {
		t.Errorf("peak concurrency %d, want exactly %d", p, max)
	}
}

// A panicking item is logged and the task goes on with its next item.
func TestSchedulerSurvivesPanic(t *testing.T) {
	sc := startScheduler(t, 2)
	tk := newTask(nil)
	done := make(chan struct{})
	sc.submit(tk, func(context.Context) { panic("boom") })
	sc.submit(tk, func(context.Context) { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the item after a panic never ran")
	}
}

// Polls run when due and cancel stops them.
func TestSchedulerPollAndCancel(t *testing.T) {
	clock := clockwork.NewFakeClock()
	sc := newScheduler(2, clock, quietLogger())
	runScheduler(t, sc)
	var polls atomic.Int32
	var tk *task
	tk = newTask(func(context.Context) {
		polls.Add(1)
		sc.schedule(tk, clock.Now().Add(100*time.Millisecond))
	})
	sc.schedule(tk, clock.Now())
	// step moves the clock one quantum and waits until the scheduler has
	// done all that became due.
	step := func() {
		clock.Advance(timerQuantum)
		sc.nudge()
		deadline := time.Now().Add(5 * time.Second)
		for !sc.quiet() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	for i := 0; i < 6; i++ { // 300 ms of the scheduler's time
		step()
	}
	if n := polls.Load(); n < 3 || n > 4 {
		t.Fatalf("%d polls in 300 ms at one per 100 ms, want 3 or 4", n)
	}
	// Cancel from the task's own turn, so no poll is running meanwhile.
	cancelled := make(chan struct{})
	sc.submit(tk, func(context.Context) { sc.cancel(tk); close(cancelled) })
	<-cancelled
	n := polls.Load()
	for i := 0; i < 20; i++ { // a second of the scheduler's time
		step()
	}
	if got := polls.Load(); got != n {
		t.Errorf("%d polls after cancel", got-n)
	}
}

// Ten thousand idle sessions polling on their own period need neither a
// goroutine each nor a wake-up each: the goroutine count stays at the
// worker bound, and the timer wakes at most once per quantum.
func TestSchedulerManyIdleSessionsStayCheap(t *testing.T) {
	const (
		sessions = 10000
		period   = time.Second
		run      = 2500 * time.Millisecond
		max      = 16
	)
	base := runtime.NumGoroutine()
	sc := startScheduler(t, max)
	var polls atomic.Int64
	start := time.Now()
	for i := 0; i < sessions; i++ {
		var tk *task
		tk = newTask(func(context.Context) {
			polls.Add(1)
			sc.schedule(tk, time.Now().Add(period))
		})
		// Spread the first polls over one period, as logins would be.
		sc.schedule(tk, start.Add(time.Duration(i)*period/sessions))
	}
	peak := 0
	for time.Since(start) < run {
		if n := runtime.NumGoroutine(); n > peak {
			peak = n
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	wakeups := sc.wakeups.Load()
	p := polls.Load()

	// Workers and the timer, plus slack for goroutines of earlier tests
	// winding down: far from one per session either way.
	if limit := base + max + 1 + 10; peak > limit {
		t.Errorf("peak %d goroutines for %d idle sessions, want at most %d (workers %d + timer)", peak, sessions, limit, max)
	}
	maxWakeups := int64(elapsed/timerQuantum) + 10
	if wakeups > maxWakeups {
		t.Errorf("%d timer wake-ups in %v, want at most %d (one per %v)", wakeups, elapsed, maxWakeups, timerQuantum)
	}
	// Every session polled about once per period (allowing for a slow,
	// shared machine under -race).
	if want := int64(sessions) * int64(run/period) * 7 / 10; p < want {
		t.Errorf("%d polls in %v, want at least %d", p, elapsed, want)
	}
	t.Logf("%d sessions: %d polls, %d wake-ups, peak %d goroutines (base %d) in %v", sessions, p, wakeups, peak, base, elapsed)
}

// BenchmarkSchedulerIdleSessions measures what 10,000 idle sessions cost
// the scheduler: run with -benchmem; B/session is the heap per task.
func BenchmarkSchedulerIdleSessions(b *testing.B) {
	const sessions = 10000
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	var total uint64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		sc := newScheduler(DefaultMaxInFlight, clockwork.NewRealClock(), quietLogger())
		ctx, cancel := context.WithCancel(context.Background())
		sc.start(ctx)
		now := time.Now()
		tasks := make([]*task, sessions)
		for j := range tasks {
			var tk *task
			tk = newTask(func(context.Context) { sc.schedule(tk, time.Now().Add(time.Hour)) })
			tasks[j] = tk
			sc.schedule(tk, now.Add(time.Hour+time.Duration(j)*time.Millisecond))
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		total += ms1.HeapAlloc - ms0.HeapAlloc
		cancel()
		sc.wait()
		runtime.KeepAlive(tasks)
	}
	b.ReportMetric(float64(total)/float64(b.N)/sessions, "B/session")
}

// A poll that falls due while a task has a long backlog of work runs before
// the rest of the backlog: a burst of outgoing messages must not hold back
// fetching incoming ones.
func TestSchedulerDuePollOvertakesBacklog(t *testing.T) {
	sc := startScheduler(t, 2)
	var (
		mu     sync.Mutex
		ran    int  // work items run so far
		polled = -1 // how many items had run when the poll ran
	)
	polledCh := make(chan struct{})
	tk := newTask(func(context.Context) {
		mu.Lock()
		polled = ran
		mu.Unlock()
		close(polledCh)
	})
	const n = 400
	for i := 0; i < n; i++ {
		sc.submit(tk, func(context.Context) {
			time.Sleep(time.Millisecond) // a CLTMSG round trip, roughly
			mu.Lock()
			ran++
			mu.Unlock()
		})
	}
	sc.schedule(tk, time.Now())
	waitDone(t, polledCh, "the due poll never ran")
	mu.Lock()
	defer mu.Unlock()
	if polled >= n/2 {
		t.Fatalf("the due poll waited for %d of %d queued items", polled, n)
	}
}

// What a task yields runs after every task that was ready when it
// yielded, and before the task's own work queued earlier: a restart's
// logins all come before the buddy lists that follow them.
func TestSchedulerYieldLetsTheOthersGoFirst(t *testing.T) {
	sc := newScheduler(1, clockwork.NewRealClock(), quietLogger())
	var (
		mu  sync.Mutex
		got []string
	)
	note := func(s string) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}
	done := make(chan struct{})
	tasks := make([]*task, 3)
	for i := range tasks {
		tasks[i] = newTask(nil)
	}
	for i, tk := range tasks {
		name := string(rune('a' + i))
		sc.submit(tk, func(context.Context) {
			note(name + " login")
			sc.yield(tk, func(context.Context) {
				note(name + " buddies")
				if name == "c" {
					close(done)
				}
			})
		})
		sc.submit(tk, func(context.Context) { note(name + " message") })
	}
	runScheduler(t, sc)
	waitDone(t, done, "the yielded work did not run")
	// Let the last task's message run too.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 9 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"a login", "b login", "c login",
		"a buddies", "a message", "b buddies", "b message", "c buddies", "c message"}
	if !slices.Equal(got, want) {
		t.Errorf("ran\n%q\nwant\n%q", got, want)
	}
}

// quantumCeil rounds up to the quantum and keeps the monotonic clock
// reading, so that the timer's wait does not move with the wall clock.
func TestQuantumCeilKeepsTheMonotonicClock(t *testing.T) {
	now := time.Now()
	for _, in := range []time.Time{now, now.Add(time.Nanosecond), now.Round(0).Truncate(timerQuantum)} {
		got := quantumCeil(in)
		if got.Before(in) || !got.Before(in.Add(timerQuantum)) || got.UnixNano()%int64(timerQuantum) != 0 {
			t.Errorf("quantumCeil(%v) = %v: not the next multiple of %v", in, got, timerQuantum)
		}
	}
	if s := quantumCeil(now).String(); !strings.Contains(s, " m=") {
		t.Errorf("quantumCeil dropped the monotonic reading: %s", s)
	}
}
