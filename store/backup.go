package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Backup writes a consistent copy of the database to a new file at path,
// mode 0600 like the database. Other connections, other processes
// included, may read and write meanwhile: the copy is the database as of
// one moment (VACUUM INTO reads in one transaction, and in WAL mode a
// reader blocks no writer). An existing path is never overwritten: the
// error then matches fs.ErrExist.
//
// On PostgreSQL it fails with an *UnsupportedError (errors.Is
// ErrUnsupported): the server's own tool, pg_dump, takes a consistent
// copy, and where the server runs, not where the gateway does.
func (s *Store) Backup(ctx context.Context, path string) (err error) {
	if s.pg {
		return &UnsupportedError{Op: "backup", DB: s.name, Instead: "pg_dump"}
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return invalid("store: backup to %q: want a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("store: backup to %s: %w", path, err)
	}
	// Created here, exclusively: VACUUM INTO would create it with the
	// umask's permissions, and write into an empty file that exists.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: backup to %s: %w", abs, err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(abs)
		}
	}()
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, abs); err != nil {
		return fmt.Errorf("store: backup of %s to %s: %w", s.name, abs, err)
	}
	return syncFile(abs)
}

// BackupFile is Backup of the database at db, which this process has not
// open: typically the running gateway's, from `qqgateway -backup`. It
// neither creates nor migrates db, so that the gateway's file is not
// changed under it by a newer program, and a backup taken before an
// upgrade holds the schema the old program can open. A missing db is an
// error matching fs.ErrNotExist.
func BackupFile(ctx context.Context, db, path string) error {
	s, err := open(ctx, db, openOptions{fsys: migrationFiles, conns: 1, asIs: true})
	if err != nil {
		return err
	}
	err = s.Backup(ctx, path)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncFile flushes path to disk: VACUUM INTO does not, and a backup that
// a power cut can empty is no backup.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("store: backup to %s: %w", path, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: backup to %s: sync: %w", path, err)
	}
	return nil
}
