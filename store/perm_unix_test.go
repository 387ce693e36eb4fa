//go:build unix

package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The database and its -wal and -shm files are readable by the owner only,
// whatever the umask: they hold password digests.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0) // the most permissive umask must not matter
	defer syscall.Umask(old)

	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustRegister(t, s, alice, 10001) // makes sure the WAL exists
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat %s: %v", p, err)
			continue
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), mode)
		}
	}
}

// A backup holds the same password digests: as private as the database.
func TestBackupIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	s, _ := openTest(t, sqliteDriver)
	mustRegister(t, s, alice, 10001)
	p := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("the backup has mode %#o, want 0600", mode)
	}
}
