package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit: the writes of every relayed message (the SEQ noted before
// each GetMsgEx, what it fetched, the rows removed once delivered) come
// from many sessions at once, each a small transaction of its own. One
// committer goroutine runs the writes waiting together in one
// transaction instead, so that their commits cost one: SQLite's commits
// were most of the gateway's CPU while relaying. Each caller still waits
// for the commit of its own write and sees its own error, so a write is
// durable when its call returns, as before.

const (
	// groupMax bounds the writes of one transaction (a caller handing
	// several at once may take it past that).
	groupMax = 128
	// groupLinger is how long the committer waits for more writes once it
	// found a second one waiting: only under concurrent writes, so that a
	// lone write is never delayed.
	groupLinger = time.Millisecond
	// groupTimeout bounds one group's transaction on PostgreSQL. It runs
	// apart from its callers' contexts, so that one caller giving up
	// cannot roll back the others' writes.
	groupTimeout = 30 * time.Second
)

// writeFunc is one caller's part of a group's transaction. It may be run
// a second time in a transaction of its own (when another write of the
// group failed), so it must not accumulate across runs.
type writeFunc func(ctx context.Context, tx *sql.Tx) error

type writeReq struct {
	ctx   context.Context // the caller's: a write whose caller gave up before it ran is left out
	fn    writeFunc
	hurry bool       // its group is committed without lingering for more
	res   chan error // buffered; always answered once
}

// committer runs the group commits of one Store.
type committer struct {
	start sync.Once
	reqs  chan []*writeReq // unbuffered: sent requests are in the committer's hands
	quit  chan struct{}    // closed by Close
	done  chan struct{}    // closed when the loop has ended
	stop  sync.Once

	// For tests: writes handed over or waiting to be, and the groups
	// committed with how many writes in all.
	waiting        atomic.Int32
	groups, writes atomic.Int64
}

func newCommitter() *committer {
	return &committer{reqs: make(chan []*writeReq), quit: make(chan struct{}), done: make(chan struct{})}
}

// write runs fn in a transaction shared with other writes waiting at the
// same time and returns once that transaction committed or failed. A
// caller whose ctx ends before its write was taken gets ctx's error and
// nothing is written; once taken, it waits for the outcome.
func (s *Store) write(ctx context.Context, fn writeFunc) error {
	return s.submit(&writeReq{ctx: ctx, fn: fn, res: make(chan error, 1)})
}

func (s *Store) submit(r *writeReq) error {
	errs := s.submitAll(r.ctx, []*writeReq{r})
	return errs[0]
}

// submitAll hands rs to the committer at once, so that they share a group
// (unless more than groupMax wait), and returns each one's outcome.
func (s *Store) submitAll(ctx context.Context, rs []*writeReq) []error {
	c := s.group
	c.start.Do(func() { go s.commitLoop() })
	c.waiting.Add(int32(len(rs)))
	defer c.waiting.Add(-int32(len(rs)))
	errs := make([]error, len(rs))
	var failed error
	select {
	case c.reqs <- rs:
	case <-c.quit:
		failed = errClosed
	case <-ctx.Done():
		failed = ctx.Err()
	}
	for i, r := range rs {
		if failed != nil {
			errs[i] = failed
		} else {
			errs[i] = <-r.res
		}
	}
	return errs
}

// commitLoop takes waiting writes and commits them in groups until Close.
func (s *Store) commitLoop() {
	c := s.group
	defer close(c.done)
	batch := make([]*writeReq, 0, groupMax)
	for {
		select {
		case rs := <-c.reqs:
			batch = c.collect(append(batch[:0], rs...))
		case <-c.quit:
			return
		}
		c.groups.Add(1)
		c.writes.Add(int64(len(batch)))
		s.commitGroup(batch)
		clear(batch)
	}
}

// collect adds the writes already waiting to batch and, if there were
// any and none is in a hurry, lingers briefly for more, up to groupMax.
func (c *committer) collect(batch []*writeReq) []*writeReq {
	batch, hurry := c.drain(batch)
	if hurry || len(batch) == 1 || len(batch) >= groupMax {
		return batch
	}
	t := time.NewTimer(groupLinger)
	defer t.Stop()
	for len(batch) < groupMax {
		select {
		case rs := <-c.reqs:
			batch = append(batch, rs...)
			if hurried(rs) {
				return batch
			}
		case <-t.C:
			return batch
		}
	}
	return batch
}

// drain adds the writes waiting now, without blocking, and reports
// whether one in batch is in a hurry.
func (c *committer) drain(batch []*writeReq) ([]*writeReq, bool) {
	hurry := hurried(batch)
	for len(batch) < groupMax {
		select {
		case rs := <-c.reqs:
			batch = append(batch, rs...)
			hurry = hurry || hurried(rs)
		default:
			return batch, hurry
		}
	}
	return batch, hurry
}

// Commits reports how many group transactions the store has committed (or
// tried to), and how many writes they held: the writes per commit say how
// well the group commit works.
func (s *Store) Commits() (groups, writes int64) {
	return s.group.groups.Load(), s.group.writes.Load()
}

// hurried reports whether one of rs is in a hurry.
func hurried(rs []*writeReq) bool {
	for _, r := range rs {
		if r.hurry {
			return true
		}
	}
	return false
}

// commitGroup runs batch in one transaction and answers each write. If a
// write fails, the transaction is rolled back and each write is run again
// alone, so that every caller sees its own outcome; a failure of BEGIN or
// COMMIT is every write's.
func (s *Store) commitGroup(batch []*writeReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.res <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := s.groupContext()
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		answerAll(live, err)
		return
	}
	for _, r := range live {
		if err := r.fn(ctx, tx); err != nil {
			tx.Rollback()
			if len(live) == 1 {
				r.res <- err
				return
			}
			for _, r := range live {
				r.res <- s.inTx(ctx, func(tx *sql.Tx) error { return r.fn(ctx, tx) })
			}
			return
		}
	}
	answerAll(live, tx.Commit())
}

// groupContext is the context of a group's transaction: on PostgreSQL
// bounded by groupTimeout against a server that stopped answering; on
// SQLite one that cannot end, since the busy timeout bounds the waits
// there, and mattn/go-sqlite3 runs every statement on a goroutine of its
// own when the context can end.
func (s *Store) groupContext() (context.Context, context.CancelFunc) {
	if s.pg {
		return context.WithTimeout(context.Background(), groupTimeout)
	}
	return context.Background(), func() {}
}

func answerAll(batch []*writeReq, err error) {
	for _, r := range batch {
		r.res <- err
	}
}

// stopCommitter ends the commit loop once the group it runs, if any, is
// answered; writes after it fail.
func (s *Store) stopCommitter() {
	c := s.group
	c.stop.Do(func() { close(c.quit) })
	c.start.Do(func() { close(c.done) }) // never started: nothing to wait for
	<-c.done
}
