package gateway

import (
	"container/heap"
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/sirupsen/logrus"
)

// task is what the scheduler runs: one per session (and one for the
// gateway itself). Its queued work items and its due poll run on a worker
// one at a time, in order, so that a session's state needs no lock of its
// own; between runs an idle task costs a heap slot, not a goroutine.
//
// All fields are guarded by scheduler.mu.
type task struct {
	poll    func(ctx context.Context) // run when due; reschedules itself
	due     time.Time                 // next poll; meaningful while idx >= 0
	idx     int                       // index in the heap, -1 when not in it
	work    []func(context.Context)
	urgent  []func(context.Context) // before work and poll: refusals must not wait behind what they refuse
	pollDue bool                    // the poll is due and waits for a worker
	yield   bool                    // the run ends after the item running now (scheduler.yield)
	queued  bool                    // in the ready queue
	running bool                    // a worker is running it
}

func newTask(poll func(context.Context)) *task {
	return &task{poll: poll, idx: -1}
}

// timerQuantum coalesces wake-ups: the timer fires on multiples of it, and
// every poll due by then runs. So the timer wakes at most 1/timerQuantum
// times a second however many sessions there are, and a poll is late by
// less than timerQuantum.
const timerQuantum = 50 * time.Millisecond

// taskBatch is how many items a worker runs for one task before it lets
// the next ready task have its turn.
const taskBatch = 8

// scheduler runs tasks with at most max workers: one timer goroutine keeps
// a min-heap of due times; workers are started on demand for ready tasks
// and exit when none is left, so idle sessions hold no goroutine.
type scheduler struct {
	max   int
	clock clockwork.Clock
	log   logrus.FieldLogger

	mu      sync.Mutex
	heap    taskHeap
	ready   []*task // FIFO from readyAt
	readyAt int
	workers int
	ctx     context.Context // nil until start
	timerAt time.Time       // when the timer loop will look at the heap next
	wake    chan struct{}
	wg      sync.WaitGroup

	wakeups atomic.Int64 // timer loop iterations, for tests
}

func newScheduler(max int, clock clockwork.Clock, log logrus.FieldLogger) *scheduler {
	return &scheduler{max: max, clock: clock, log: log, wake: make(chan struct{}, 1)}
}

// start runs the timer loop and the work queued so far; everything stops
// when ctx ends. wait then waits for it.
func (sc *scheduler) start(ctx context.Context) {
	sc.mu.Lock()
	sc.ctx = ctx
	sc.wg.Add(1)
	go sc.loop(ctx)
	for sc.workers < sc.max && sc.readyAt < len(sc.ready) {
		sc.spawnLocked()
	}
	sc.mu.Unlock()
}

// wait returns once the timer loop and every worker have exited after
// start's ctx ended. Work left in the queues is dropped.
func (sc *scheduler) wait() { sc.wg.Wait() }

// submit queues fn to run on t's worker after the work queued before it.
func (sc *scheduler) submit(t *task, fn func(context.Context)) {
	sc.mu.Lock()
	t.work = append(t.work, fn)
	sc.markReadyLocked(t)
	sc.mu.Unlock()
}

// yield queues fn to run on t before its queued work, but only after
// every task ready now has had its turn: t's current run ends with the
// item that calls it. A login hands the rest of its work (the buddy list,
// the outbox) to yield, so that the logins waiting at that moment go
// before the twenty-odd presences a buddy list sends.
func (sc *scheduler) yield(t *task, fn func(context.Context)) {
	sc.mu.Lock()
	t.work = append([]func(context.Context){fn}, t.work...)
	t.yield = t.running
	sc.markReadyLocked(t)
	sc.mu.Unlock()
}

// queued is how many work items of t wait. The door bounds it per user
// (Gateway.admit): one user's flood holds bounded memory and, served in
// turn with the others, delays nobody else by more than a few items.
func (sc *scheduler) queued(t *task) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(t.work)
}

// submitUrgent queues fn to run on t before its work, unless max urgent
// items wait already; it reports whether it queued fn.
func (sc *scheduler) submitUrgent(t *task, fn func(context.Context), max int) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(t.urgent) >= max {
		return false
	}
	t.urgent = append(t.urgent, fn)
	sc.markReadyLocked(t)
	return true
}

// schedule sets t's next poll to at, replacing any earlier setting.
func (sc *scheduler) schedule(t *task, at time.Time) {
	sc.mu.Lock()
	t.due = at
	if t.idx >= 0 {
		heap.Fix(&sc.heap, t.idx)
	} else {
		heap.Push(&sc.heap, t)
	}
	nudge := sc.timerAt.IsZero() || quantumCeil(at).Before(sc.timerAt)
	sc.mu.Unlock()
	if nudge {
		sc.nudge()
	}
}

// nudge makes the timer loop look at the heap now. Tests call it after
// moving a fake clock, whose timers the loop may not have set yet.
func (sc *scheduler) nudge() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// scheduleEarlier is schedule unless t's poll is already due before at.
func (sc *scheduler) scheduleEarlier(t *task, at time.Time) {
	sc.mu.Lock()
	keep := t.pollDue || (t.idx >= 0 && !t.due.After(at))
	sc.mu.Unlock()
	if !keep {
		sc.schedule(t, at)
	}
}

// cancel removes t's next poll, including one already due.
func (sc *scheduler) cancel(t *task) {
	sc.mu.Lock()
	if t.idx >= 0 {
		heap.Remove(&sc.heap, t.idx)
	}
	t.pollDue = false
	sc.mu.Unlock()
}

// idleLocked reports whether t has no work queued and no poll due or
// scheduled, and is not waiting for a worker; the caller must hold sc.mu.
func (t *task) idleLocked() bool {
	return len(t.work) == 0 && len(t.urgent) == 0 && !t.pollDue && t.idx < 0 && !t.queued
}

// quiet reports whether nothing runs, nothing waits for a worker and no
// poll is due by the clock: until the clock moves or work comes in, the
// scheduler will do nothing.
func (sc *scheduler) quiet() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.workers > 0 || sc.readyAt < len(sc.ready) {
		return false
	}
	return len(sc.heap) == 0 || sc.heap[0].due.After(sc.clock.Now())
}

func (sc *scheduler) markReadyLocked(t *task) {
	if t.running || t.queued {
		return
	}
	t.queued = true
	sc.ready = append(sc.ready, t)
	if sc.ctx != nil && sc.ctx.Err() == nil && sc.workers < sc.max {
		sc.spawnLocked()
	}
}

func (sc *scheduler) spawnLocked() {
	sc.workers++
	sc.wg.Add(1)
	go sc.worker(sc.ctx)
}

func (sc *scheduler) popReadyLocked() *task {
	if sc.readyAt >= len(sc.ready) {
		return nil
	}
	t := sc.ready[sc.readyAt]
	sc.ready[sc.readyAt] = nil
	sc.readyAt++
	if sc.readyAt == len(sc.ready) {
		sc.ready, sc.readyAt = sc.ready[:0], 0
	} else if sc.readyAt > 1024 && sc.readyAt*2 > len(sc.ready) {
		n := copy(sc.ready, sc.ready[sc.readyAt:])
		clear(sc.ready[n:])
		sc.ready, sc.readyAt = sc.ready[:n], 0
	}
	t.queued = false
	return t
}

// worker runs ready tasks until there are none, then exits.
func (sc *scheduler) worker(ctx context.Context) {
	defer sc.wg.Done()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for {
		t := sc.popReadyLocked()
		if t == nil || ctx.Err() != nil {
			sc.workers--
			return
		}
		t.running = true
		for n := 0; n < taskBatch && !t.yield && ctx.Err() == nil; n++ {
			fn := t.nextLocked()
			if fn == nil {
				break
			}
			sc.mu.Unlock()
			sc.run(ctx, fn)
			sc.mu.Lock()
		}
		t.running, t.yield = false, false
		if len(t.work) > 0 || len(t.urgent) > 0 || t.pollDue {
			sc.markReadyLocked(t) // its turn again after the others
		}
	}
}

// nextLocked takes what t runs next, or nil: its refusals first, then a
// due poll, so that a burst of outgoing messages does not hold back
// fetching the incoming ones, then its queued work.
func (t *task) nextLocked() func(context.Context) {
	switch {
	case len(t.urgent) > 0:
		return popFront(&t.urgent)
	case t.pollDue:
		t.pollDue = false
		return t.poll
	case len(t.work) > 0:
		return popFront(&t.work)
	}
	return nil
}

// popFront takes the first of a non-empty queue.
func popFront(q *[]func(context.Context)) func(context.Context) {
	fn := (*q)[0]
	(*q)[0] = nil
	*q = (*q)[1:]
	if len(*q) == 0 {
		*q = nil // let a long burst's array go
	}
	return fn
}

// run calls fn, turning a panic into a log line: one bad stanza must not
// take every user's session down.
func (sc *scheduler) run(ctx context.Context, fn func(context.Context)) {
	defer func() {
		if r := recover(); r != nil {
			sc.log.WithField("panic", r).WithField("stack", string(debug.Stack())).Error("gateway: work item panicked")
		}
	}()
	fn(ctx)
}

// loop wakes at the next due time (rounded up to timerQuantum), hands every
// due task to the workers, and sleeps again.
func (sc *scheduler) loop(ctx context.Context) {
	defer sc.wg.Done()
	timer := sc.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		sc.mu.Lock()
		now := sc.clock.Now()
		for len(sc.heap) > 0 && !sc.heap[0].due.After(now) {
			t := heap.Pop(&sc.heap).(*task)
			t.pollDue = true
			sc.markReadyLocked(t)
		}
		sc.timerAt = time.Time{}
		if len(sc.heap) > 0 {
			sc.timerAt = quantumCeil(sc.heap[0].due)
			timer.Reset(sc.timerAt.Sub(now))
		}
		sc.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-timer.Chan():
		case <-sc.wake:
		}
		sc.wakeups.Add(1)
	}
}

// quantumCeil rounds t up to a multiple of timerQuantum. It moves t with
// Add, which keeps t's monotonic clock reading (Truncate drops it): the
// timer's wait, timerAt minus now, is then measured on the monotonic clock,
// and a step of the wall clock cannot make the loop wake early and spin
// until the tasks it expected are due.
func quantumCeil(t time.Time) time.Time {
	if d := time.Duration(t.UnixNano() % int64(timerQuantum)); d != 0 {
		return t.Add(timerQuantum - d)
	}
	return t
}

// taskHeap orders tasks by due time.
type taskHeap []*task

func (h taskHeap) Len() int           { return len(h) }
func (h taskHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *taskHeap) Push(x any) {
	t := x.(*task)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *taskHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.idx = -1
	*h = old[:n-1]
	return t
}
