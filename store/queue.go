package store

import (
	"context"
	"database/sql"
	"errors"
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
	JID      string // the registered user it belongs to
	Peer     int64  // the QQ number on the other side
	Text     string
	Received time.Time // when the gateway accepted it; Enqueue fills in now if zero
	Attempts int       // delivery attempts so far (MarkAttempt)
	Meta     string    // free-form for the caller, e.g. a stanza id
}

func checkItem(it Item) error {
	if !it.Dir.valid() {
		return invalid("store: queue item: unknown direction %v", it.Dir)
	}
	if err := checkJID(it.JID); err != nil {
		return err
	}
	if err := checkUIN("queue item peer", it.Peer); err != nil {
		return err
	}
	if it.Attempts < 0 {
		return invalid("store: queue item: negative attempts %d", it.Attempts)
	}
	return nil
}

const insertItem = `INSERT INTO queue (dir, jid, peer, text, received, attempts, meta) VALUES (?, ?, ?, ?, ?, ?, ?)`

func (s *Store) itemArgs(it Item, now time.Time) []any {
	received := it.Received
	if received.IsZero() {
		received = now
	}
	return []any{int(it.Dir), it.JID, it.Peer, it.Text, nanos(received), it.Attempts, it.Meta}
}

// Enqueue adds it to the queue (it.ID is ignored) and returns its ID. When
// Enqueue returns without error the item is durable: it survives a crash or
// SIGKILL of the process (see dsnParams). ErrNotFound if it.JID is not
// registered.
func (s *Store) Enqueue(ctx context.Context, it Item) (int64, error) {
	if err := checkItem(it); err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, insertItem, s.itemArgs(it, s.now())...)
	if err != nil {
		return 0, fmt.Errorf("store: enqueue %v for %s: %w", it.Dir, it.JID, noUser(err))
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("store: enqueue %v for %s: %w", it.Dir, it.JID, err)
	}
	return id, nil
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
	ids := make([]int64, 0, len(items))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, insertItem)
		if err != nil {
			return err
		}
		defer stmt.Close()
		now := s.now()
		for i, it := range items {
			res, err := stmt.ExecContext(ctx, s.itemArgs(it, now)...)
			if err != nil {
				return fmt.Errorf("item %d for %s: %w", i, it.JID, noUser(err))
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: enqueue %d items: %w", len(items), err)
	}
	return ids, nil
}

// Pending returns the queued items of jid bound in direction dir, oldest
// (lowest ID) first.
func (s *Store) Pending(ctx context.Context, jid string, dir Direction) ([]Item, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, dir, jid, peer, text, received, attempts, meta FROM queue
		WHERE jid = ? AND dir = ? ORDER BY id`, jid, int(dir))
	if err != nil {
		return nil, fmt.Errorf("store: pending %v for %s: %w", dir, jid, err)
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		var it Item
		var d int
		var received int64
		if err := rows.Scan(&it.ID, &d, &it.JID, &it.Peer, &it.Text, &received, &it.Attempts, &it.Meta); err != nil {
			return nil, fmt.Errorf("store: pending %v for %s: %w", dir, jid, err)
		}
		it.Dir, it.Received = Direction(d), fromNanos(received)
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending %v for %s: %w", dir, jid, err)
	}
	return out, nil
}

// PendingUsers returns, ordered, the JIDs that have queued items in either
// direction: after a restart these are the users whose messages still wait.
func (s *Store) PendingUsers(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT jid FROM queue ORDER BY jid`)
	if err != nil {
		return nil, fmt.Errorf("store: pending users: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var jid string
		if err := rows.Scan(&jid); err != nil {
			return nil, fmt.Errorf("store: pending users: %w", err)
		}
		out = append(out, jid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending users: %w", err)
	}
	return out, nil
}

// Remove deletes queue item id once it was delivered; ErrNotFound if there
// is no such item (already removed, or its user was deleted).
func (s *Store) Remove(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM queue WHERE id = ?`, id)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: remove queue item %d: %w", id, err)
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
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `DELETE FROM queue WHERE id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
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
		return 0, fmt.Errorf("store: remove %d queue items: %w", len(ids), err)
	}
	return removed, nil
}

// MarkAttempt counts one more delivery attempt of item id and returns the new
// count, so the caller can give up after a limit; ErrNotFound if there is no
// such item.
func (s *Store) MarkAttempt(ctx context.Context, id int64) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `UPDATE queue SET attempts = attempts + 1 WHERE id = ? RETURNING attempts`, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("store: mark attempt of queue item %d: %w", id, err)
	}
	return n, nil
}
