package store

import (
	"context"
	"fmt"
)

// Heartbeat writes the current time into the database and commits it: it
// fails when the file no longer takes writes (a full disk, a file system
// gone read-only, a lock held too long). A read would not tell: SQLite
// serves reads from its cache and the WAL without touching the disk.
//
// It also fails, matching ErrFileGone, when the file was deleted or
// replaced (CheckFile).
func (s *Store) Heartbeat(ctx context.Context) error {
	if err := s.CheckFile(); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE heartbeat SET at = ? WHERE id = 1`), nanos(s.now()))
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: heartbeat in %s: %w", s.name, err)
	}
	return nil
}
