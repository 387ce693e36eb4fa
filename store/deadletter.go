package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DeadLetter is a queue row given up on: kept for an admin to see rather
// than retried for ever.
type DeadLetter struct {
	Item             // as it was queued; Item.ID is the queue row's id
	Failed time.Time // when it was given up on
	Reason string    // why, in words for an admin
}

// MoveToDeadLetter takes queue row id out of the queue and keeps it in the
// dead-letter table with reason, in one transaction. ErrNotFound if the
// row is gone.
func (s *Store) MoveToDeadLetter(ctx context.Context, id int64, reason string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO dead_letter
			(id, dir, jid, peer, text, received, msg_type, seq, attempts, failed, reason)
			SELECT id, dir, jid, peer, text, received, msg_type, seq, attempts, ?, ? FROM queue WHERE id = ?`),
			nanos(s.now()), reason, id)
		if err := affectedOne(res, err); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM queue WHERE id = ?`), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: move queue item %d to the dead letters: %w", id, unwritable(err))
	}
	return nil
}

// DeadLetters returns up to limit dead letters, newest first.
func (s *Store) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, dir, jid, peer, text, received, msg_type, seq, attempts,
		failed, reason FROM dead_letter ORDER BY id DESC LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var dir int
		var received, failed int64
		if err := rows.Scan(&d.ID, &dir, &d.JID, &d.Peer, &d.Text, &received, &d.MsgType, &d.Seq, &d.Attempts,
			&failed, &d.Reason); err != nil {
			return nil, fmt.Errorf("store: dead letters: %w", err)
		}
		d.Dir, d.Received, d.Failed = Direction(dir), fromNanos(received), fromNanos(failed)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	return out, nil
}

// DeadLetterCount returns how many dead letters there are.
func (s *Store) DeadLetterCount(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM dead_letter`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count dead letters: %w", err)
	}
	return n, nil
}
