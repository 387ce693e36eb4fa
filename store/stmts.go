package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// stmtKey names one of the hot queries the store keeps prepared.
type stmtKey int

const (
	stmtInsertItem stmtKey = iota
	stmtPending
	stmtRemove
	stmtFetchSeq
	stmtSetFetchSeq
	stmtClearFetchSeq
	numStmts
)

// hotQueries are the queries of every relayed message, in SQLite's dialect
// (insertItem gets its RETURNING on PostgreSQL from Store.insertItem).
var hotQueries = [numStmts]string{
	stmtInsertItem: insertItem,
	stmtPending:    `SELECT ` + readColumns + ` FROM queue WHERE jid = ? AND dir = ? ORDER BY id`,
	stmtRemove:     `DELETE FROM queue WHERE id = ?`,
	stmtFetchSeq:   `SELECT seq FROM qq_fetch WHERE jid = ?`,
	stmtSetFetchSeq: `INSERT INTO qq_fetch (jid, seq) VALUES (?, ?)
		ON CONFLICT (jid) DO UPDATE SET seq = excluded.seq`,
	stmtClearFetchSeq: `DELETE FROM qq_fetch WHERE jid = ? AND seq = ?`,
}

// stmtCache holds the hot queries prepared. database/sql prepares a
// *sql.Stmt again on each pooled connection the first time it runs there
// and keeps it, so a query is parsed once per connection instead of at
// every call: with mattn/go-sqlite3, which keeps nothing by itself,
// preparing was ≈ 9 % of the gateway's CPU while relaying. pgx caches
// statements by text already; the same code serves both drivers.
//
// They are prepared at first use, not at Open: a store opened at an older
// schema version (tests, BackupFile) may lack their columns.
type stmtCache struct {
	mu     sync.Mutex
	stmts  [numStmts]*sql.Stmt
	closed bool
}

// errClosed is what a hot query returns after Close.
var errClosed = errors.New("store: closed")

// stmt returns the prepared statement k, preparing it on first use.
func (s *Store) stmt(ctx context.Context, k stmtKey) (*sql.Stmt, error) {
	c := &s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if st := c.stmts[k]; st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.hotQuery(k))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	c.stmts[k] = st
	return st, nil
}

// hotQuery is query k in the store's dialect.
func (s *Store) hotQuery(k stmtKey) string {
	if k == stmtInsertItem {
		return s.insertItem()
	}
	return s.q(hotQueries[k])
}

// prepareAll prepares every hot query once the schema is complete, so
// that a transaction never prepares one on a second connection while it
// holds its own (SQLite's pool is small, and writers wait for each other).
func (s *Store) prepareAll(ctx context.Context) error {
	for k := range numStmts {
		if _, err := s.stmt(ctx, k); err != nil {
			return fmt.Errorf("store: open %s: %w", s.name, err)
		}
	}
	return nil
}

// txStmt is the prepared statement k within tx: database/sql reuses what
// is prepared on tx's connection. One not prepared yet is prepared on
// tx's connection for tx alone rather than on another connection.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, k stmtKey) (*sql.Stmt, error) {
	c := &s.stmts
	c.mu.Lock()
	st, closed := c.stmts[k], c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return nil, errClosed
	case st != nil:
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, s.hotQuery(k))
}

// closeStmts releases the prepared statements; later calls fail.
func (s *Store) closeStmts() {
	c := &s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for i, st := range c.stmts {
		if st != nil {
			st.Close()
			c.stmts[i] = nil
		}
	}
}
