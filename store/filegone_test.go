package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A database file deleted, or replaced by another, under the open store is
// noticed: CheckFile and Heartbeat fail with ErrFileGone, although SQLite
// itself would go on writing to the unlinked file.
func TestDeletedOrReplacedFileIsNoticed(t *testing.T) {
	for _, replace := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "gw.db")
		ctx := context.Background()
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckFile(); err != nil {
			t.Fatalf("fresh file: %v", err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if replace {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CheckFile(); !errors.Is(err, ErrFileGone) {
			t.Errorf("replaced %v: CheckFile = %v, want ErrFileGone", replace, err)
		}
		if err := s.Heartbeat(ctx); !errors.Is(err, ErrFileGone) {
			t.Errorf("replaced %v: Heartbeat = %v, want ErrFileGone", replace, err)
		}
		s.Close()
	}
}
