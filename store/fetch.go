package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// FetchSeq returns the SEQ of jid's last GetMsgEx whose fetched items were
// not yet queued (see SetFetchSeq), 0 if there is none.
func (s *Store) FetchSeq(ctx context.Context, jid string) (int64, error) {
	stmt, err := s.stmt(ctx, stmtFetchSeq)
	if err != nil {
		return 0, fmt.Errorf("store: fetch SEQ of %s: %w", jid, err)
	}
	var seq int64
	err = stmt.QueryRowContext(ctx, jid).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: fetch SEQ of %s: %w", jid, err)
	}
	return seq, nil
}

// SetFetchSeq records, before a GetMsgEx is sent, the SEQ it is sent
// with. Until EnqueueFetched clears it, a crash or a lost reply leaves it
// here, and the next fetch asks again with it: the server answers a repeat
// from its memory, so a batch it handed out is never lost. ErrNotFound if
// jid is not registered.
func (s *Store) SetFetchSeq(ctx context.Context, jid string, seq int64) error {
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		stmt, err := s.txStmt(ctx, tx, stmtSetFetchSeq)
		if err != nil {
			return err
		}
		_, err = stmt.ExecContext(ctx, jid, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: set fetch SEQ of %s: %w", jid, noUser(unwritable(err)))
	}
	return nil
}

// EnqueueFetched queues the items a GetMsgEx with SEQ seq fetched for jid
// and forgets that SEQ, in one transaction: either the items are queued and
// the fetch is done, or neither, and the same SEQ is asked again. It
// returns the items' IDs in order.
func (s *Store) EnqueueFetched(ctx context.Context, jid string, seq int64, items []Item) ([]int64, error) {
	for i, it := range items {
		if err := checkItem(it); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	var ids []int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		ids = nil
		if len(items) > 0 {
			if ids, err = s.insertItems(ctx, tx, items); err != nil {
				return err
			}
		}
		stmt, err := s.txStmt(ctx, tx, stmtClearFetchSeq)
		if err != nil {
			return err
		}
		_, err = stmt.ExecContext(ctx, jid, seq)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: queue what SEQ %d fetched for %s: %w", seq, jid, unwritable(err))
	}
	return ids, nil
}

// SetSeq records the SEQ chosen for queue row id before its first attempt,
// for a row written without one. ErrNotFound if the row is gone.
func (s *Store) SetSeq(ctx context.Context, id, seq int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE queue SET seq = ? WHERE id = ?`), seq, id)
	if err := affectedOne(res, unwritable(err)); err != nil {
		return fmt.Errorf("store: set SEQ of queue item %d: %w", id, err)
	}
	return nil
}

// MarkTried records a failed delivery of queue row id that may have
// reached the other side, and returns when the first such failure was and
// how many there were so far, this one included.
func (s *Store) MarkTried(ctx context.Context, id int64, at time.Time) (first time.Time, attempts int, err error) {
	var tried int64
	err = s.db.QueryRowContext(ctx, s.q(`UPDATE queue SET attempts = attempts + 1,
		tried = CASE WHEN tried = 0 THEN ? ELSE tried END
		WHERE id = ? RETURNING tried, attempts`), nanos(at), id).Scan(&tried, &attempts)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("store: mark queue item %d tried: %w", id, unwritable(err))
	}
	return fromNanos(tried), attempts, nil
}
