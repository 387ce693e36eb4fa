package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// Direction says which network a queued message is bound for.
type Direction int

const (
	ToXMPP Direction = iota // received from QQ, to be delivered to the user's JID
	ToQQ                    // received from the user, to be sent to QQ
)

func (d Direction) String() string {
	switch d {
	case ToXMPP:
		return "to-xmpp"
	case ToQQ:
		return "to-qq"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

func (d Direction) valid() bool { return d == ToXMPP || d == ToQQ }

// Item is one message in the delivery queue.
type Item struct {
	ID       int64 // assigned by Enqueue; never reused
	Dir      Direction
	JID      string // the registered user (bare JID) it belongs to
	Peer     int64  // the QQ number on the other side
	Text     string
	Received time.Time // when the gateway accepted it; Enqueue fills in now if zero

	// ToXMPP: the QQ message type (the protocol's MT) the item came as.
	MsgType int

	// ToQQ: the user's <message/> as the gateway read it, for its receipt
	// or error reply.
	Resource     string // the sending resource (the part after '/'), may be ""
	StanzaID     string // the message's id attribute, may be ""
	StanzaType   string // "chat" or "normal"
	WantsReceipt bool   // it asked for an XEP-0184 receipt

	// RawStanza marks a ToQQ row written before schema version 3: Text then
	// holds the whole <message/> stanza as XML for the caller to decode,
	// and the typed ToQQ fields are empty.
	RawStanza bool

	// ToQQ: the SEQ of the row's first CLTMSG, chosen before the first
	// attempt and kept for every retry (0: none chosen yet).
	Seq int64

	// Read only, kept by MarkTried: how many deliveries failed in a way
	// that may have reached the other side, and when the first did.
	Attempts int
	Tried    time.Time
}

func checkItem(it Item) error {
	if !it.Dir.valid() {
		return invalid("store: queue item: unknown direction %v", it.Dir)
	}
	if err := checkJID(it.JID); err != nil {
		return err
	}
	return checkUIN("queue item peer", it.Peer)
}

// itemColumns are the queue columns an Item is written to and read from, in
// the order of itemArgs and scanItem. attempts and meta (schema version 2)
// are no longer used.
const itemColumns = `dir, jid, peer, text, received, msg_type, resource, stanza_id, stanza_type, receipt, raw_stanza, seq`

const insertItem = `INSERT INTO queue (` + itemColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// readColumns are what scanItem reads: the written columns and the
// retry bookkeeping.
const readColumns = `id, ` + itemColumns + `, attempts, tried`

// insertItem is the statement that adds one item, for the store's
// dialect. PostgreSQL's driver has no LastInsertId: the ID comes back by
// RETURNING. SQLite keeps LastInsertId, as it always had.
func (s *Store) insertItem() string {
	if s.pg {
		return s.q(insertItem) + ` RETURNING id`
	}
	return insertItem
}

// lastID is the ID of the row an SQLite INSERT added.
func lastID(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (s *Store) itemArgs(it Item, now time.Time) []any {
	received := it.Received
	if received.IsZero() {
		received = now
	}
	return []any{int(it.Dir), it.JID, it.Peer, s.str(it.Text), nanos(received),
		it.MsgType, it.Resource, it.StanzaID, it.StanzaType, it.WantsReceipt, it.RawStanza, it.Seq}
}

// scanItem reads one row of SELECT readColumns.
func scanItem(rows *sql.Rows) (Item, error) {
	var it Item
	var d int
	var received, tried int64
	err := rows.Scan(&it.ID, &d, &it.JID, &it.Peer, &it.Text, &received,
		&it.MsgType, &it.Resource, &it.StanzaID, &it.StanzaType, &it.WantsReceipt, &it.RawStanza, &it.Seq,
		&it.Attempts, &tried)
	it.Dir, it.Received = Direction(d), fromNanos(received)
	if tried != 0 {
		it.Tried = fromNanos(tried)
	}
	return it, err
}

// Enqueue adds it to the queue (it.ID is ignored) and returns its ID. When
// Enqueue returns without error the item is durable: it survives a crash or
// SIGKILL of the process (see dsnParams). ErrNotFound if it.JID is not
// registered.
func (s *Store) Enqueue(ctx context.Context, it Item) (int64, error) {
	ids, errs := s.EnqueueEach(ctx, []Item{it})
	return ids[0], errs[0]
}

// EnqueueEach adds items as Enqueue does, each with its own outcome, in
// one transaction when they all can be written: a caller with several
// items at once (the door, with the messages that arrived together) pays
// for one commit. It returns each item's ID, or its error.
func (s *Store) EnqueueEach(ctx context.Context, items []Item) ([]int64, []error) {
	ids := make([]int64, len(items))
	errs := make([]error, len(items))
	reqs := make([]*writeReq, 0, len(items))
	at := make([]int, 0, len(items))
	now := s.now()
	for i, it := range items {
		if err := checkItem(it); err != nil {
			errs[i] = err
			continue
		}
		reqs = append(reqs, &writeReq{ctx: ctx, hurry: true, res: make(chan error, 1),
			fn: func(ctx context.Context, tx *sql.Tx) error {
				stmt, err := s.txStmt(ctx, tx, stmtInsertItem)
				if err == nil {
					ids[i], err = s.execInsert(ctx, stmt, it, now)
				}
				return err
			}})
		at = append(at, i)
	}
	if len(reqs) == 0 {
		return ids, errs
	}
	for k, err := range s.submitAll(ctx, reqs) {
		if i := at[k]; err != nil {
			ids[i] = 0
			errs[i] = fmt.Errorf("store: enqueue %v for %s: %w", items[i].Dir, items[i].JID, noUser(unwritable(err)))
		}
	}
	return ids, errs
}

// EnqueueBatch adds all items in one transaction, so either all are durable
// or none, and returns their IDs in the same order. Items may belong to
// different users.
func (s *Store) EnqueueBatch(ctx context.Context, items []Item) ([]int64, error) {
	for i, it := range items {
		if err := checkItem(it); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	if len(items) == 0 {
		return nil, nil
	}
	var ids []int64
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		ids, err = s.insertItems(ctx, tx, items)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: enqueue %d items: %w", len(items), unwritable(err))
	}
	return ids, nil
}

// insertItems writes items within tx and returns their IDs in order.
func (s *Store) insertItems(ctx context.Context, tx *sql.Tx, items []Item) ([]int64, error) {
	stmt, err := s.txStmt(ctx, tx, stmtInsertItem)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(items))
	now := s.now()
	for i, it := range items {
		id, err := s.execInsert(ctx, stmt, it, now)
		if err != nil {
			return nil, fmt.Errorf("item %d for %s: %w", i, it.JID, noUser(err))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// execInsert writes one item with the prepared insert stmt and returns
// its ID.
func (s *Store) execInsert(ctx context.Context, stmt *sql.Stmt, it Item, now time.Time) (int64, error) {
	args := s.itemArgs(it, now)
	if s.pg {
		var id int64
		err := stmt.QueryRowContext(ctx, args...).Scan(&id)
		return id, err
	}
	return lastID(stmt.ExecContext(ctx, args...))
}

// Pending returns the queued items of jid bound in direction dir, oldest
// (lowest ID) first.
func (s *Store) Pending(ctx context.Context, jid string, dir Direction) ([]Item, error) {
	stmt, err := s.stmt(ctx, stmtPending)
	if err != nil {
		return nil, fmt.Errorf("store: pending %v for %s: %w", dir, jid, err)
	}
	rows, err := stmt.QueryContext(ctx, jid, int(dir))
	if err != nil {
		return nil, fmt.Errorf("store: pending %v for %s: %w", dir, jid, err)
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("store: pending %v for %s: %w", dir, jid, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending %v for %s: %w", dir, jid, err)
	}
	return out, nil
}

// Remove deletes queue item id once it was delivered; ErrNotFound if there
// is no such item (already removed, or its user was deleted).
func (s *Store) Remove(ctx context.Context, id int64) error {
	var res sql.Result
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		stmt, err := s.txStmt(ctx, tx, stmtRemove)
		if err == nil {
			res, err = stmt.ExecContext(ctx, id)
		}
		return err
	})
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: remove queue item %d: %w", id, unwritable(err))
	}
	return nil
}

// RemoveBatch removes the items ids in one transaction, as the gateway does
// once the server confirmed a whole batch: one commit instead of one per
// item. IDs that are already gone are skipped; it returns how many it
// removed.
func (s *Store) RemoveBatch(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	removed := 0
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		removed = 0
		stmt, err := s.txStmt(ctx, tx, stmtRemove)
		if err != nil {
			return err
		}
		for _, id := range ids {
			res, err := stmt.ExecContext(ctx, id)
			if err != nil {
				return fmt.Errorf("item %d: %w", id, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			removed += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: remove %d queue items: %w", len(ids), unwritable(err))
	}
	return removed, nil
}
