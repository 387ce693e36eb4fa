package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A backup taken while another connection keeps writing opens as a
// database and holds every row committed before the backup began, and
// the writer is not held up by it.
func TestBackupWhileAnotherConnectionWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const before = 200
	for i := range before {
		mustRegister(t, s, fmt.Sprintf("user%d@example.org", i), int64(10000+i))
	}

	// The writer: another Store on the same file, as the running gateway
	// is to a `qqgateway -backup` process.
	w, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stop := make(chan struct{})
	written := make(chan int, 1) // rows the writer committed, once it stopped
	started := make(chan struct{})
	go func() {
		n := 0
		defer func() { written <- n }()
		for {
			jid := fmt.Sprintf("late%d@example.org", n)
			if err := w.PutRegistration(ctx, Registration{JID: jid, UIN: int64(50000 + n), PasswordMD5: md5b}); err != nil {
				t.Errorf("write during the backup: %v", err)
				return
			}
			if n++; n == 10 {
				close(started)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-started
	copyPath := filepath.Join(dir, "backup.db")
	if err := s.Backup(ctx, copyPath); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	close(stop)
	late := <-written

	c, err := Open(ctx, copyPath)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer c.Close()
	regs, err := c.Registrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) < before+10 || len(regs) > before+late {
		t.Errorf("the backup holds %d registrations; want from %d (committed before it began) to %d", len(regs), before+10, before+late)
	}
	if r, err := c.Registration(ctx, "user7@example.org"); err != nil || r.UIN != 10007 || r.PasswordMD5 != md5a {
		t.Errorf("registration in the backup = %+v, %v", r, err)
	}
	if v, err := c.SchemaVersion(ctx); err != nil || v != latestVersion {
		t.Errorf("the backup's schema version = %d, %v; want %d", v, err, latestVersion)
	}
	var ok string
	if err := c.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check of the backup = %q, %v", ok, err)
	}
}

// An existing file, even an empty one, is left as it is.
func TestBackupRefusesToOverwrite(t *testing.T) {
	s, _ := openTest(t, sqliteDriver)
	mustRegister(t, s, alice, 10001)
	dir := t.TempDir()
	for name, content := range map[string]string{"full": "yesterday's backup", "empty": ""} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		err := s.Backup(context.Background(), p)
		if !errors.Is(err, fs.ErrExist) {
			t.Errorf("Backup over an existing %s file: %v, want fs.ErrExist", name, err)
		}
		if got, _ := os.ReadFile(p); string(got) != content {
			t.Errorf("Backup changed the existing %s file to %q", name, got)
		}
	}
}

// A backup that fails leaves no file behind to be taken for one.
func TestFailedBackupLeavesNoFile(t *testing.T) {
	s, _ := openTest(t, sqliteDriver)
	mustRegister(t, s, alice, 10001)
	s.Close()
	p := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(context.Background(), p); err == nil {
		t.Fatal("Backup of a closed store succeeded")
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed backup left %s behind (%v)", p, err)
	}
	if err := s.Backup(context.Background(), "file:x.db"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Backup to an SQLite URI: %v, want ErrInvalid", err)
	}
}

// Heartbeat commits a write. On SQLite, it fails while another connection
// holds the write lock for longer than the busy timeout, and succeeds
// again after.
func TestHeartbeat(t *testing.T) { eachDriver(t, testHeartbeat) }

func testHeartbeat(t *testing.T, d testDriver) {
	ctx := context.Background()
	s, clk := openTest(t, d)
	if err := s.Heartbeat(ctx); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	var at int64
	if err := s.db.QueryRowContext(ctx, `SELECT at FROM heartbeat`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if want := nanos(clk.now().Add(-time.Second)); at != want {
		t.Errorf("heartbeat at %v, want %v", fromNanos(at), fromNanos(want))
	}
	if d.name != "sqlite" {
		return // PostgreSQL has no database-wide write lock to hold
	}
	if testing.Short() {
		t.Skip("the locked case waits out SQLite's busy timeout (5s)")
	}
	other, err := Open(ctx, s.name)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	release, held := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- other.inTx(ctx, func(*sql.Tx) error { close(held); <-release; return nil })
	}()
	<-held
	err = s.Heartbeat(ctx)
	close(release)
	if err == nil {
		t.Error("Heartbeat succeeded while another connection held the write lock")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx); err != nil {
		t.Errorf("Heartbeat after the lock was released: %v", err)
	}
}

// BackupFile copies a database as it is: one written by the previous
// release keeps its schema, in the file and in the copy, so that a backup
// taken before an upgrade opens with the program it came from.
func TestBackupFileLeavesTheSchemaAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.db")
	old := openAt(t, path, latestVersion-1)
	mustRegister(t, old, alice, 10001)
	defer old.Close() // the running gateway

	copyPath := filepath.Join(dir, "backup.db")
	if err := BackupFile(ctx, path, copyPath); err != nil {
		t.Fatalf("BackupFile: %v", err)
	}
	if v, err := old.SchemaVersion(ctx); err != nil || v != latestVersion-1 {
		t.Errorf("the database's schema version after the backup = %d, %v; want %d (untouched)", v, err, latestVersion-1)
	}
	c := openAt(t, copyPath, latestVersion-1)
	defer c.Close()
	if r, err := c.Registration(ctx, alice); err != nil || r.UIN != 10001 {
		t.Errorf("registration in the backup = %+v, %v", r, err)
	}

	missing := filepath.Join(dir, "missing.db")
	if err := BackupFile(ctx, missing, filepath.Join(dir, "b2.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("BackupFile of a missing database: %v, want fs.ErrNotExist", err)
	}
	for _, p := range []string{missing, filepath.Join(dir, "b2.db")} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("BackupFile of a missing database created %s", p)
		}
	}
}
