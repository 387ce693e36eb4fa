package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestOpenRefusesBadPaths(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if s, err := Open(ctx, path); !errors.Is(err, ErrInvalid) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalid", path, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")
	if s, err := Open(ctx, missing); err == nil {
		s.Close()
		t.Errorf("Open(%q) in a missing directory succeeded", missing)
	}
}

func TestOpenRefusesNonDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	junk := bytes.Repeat([]byte("this is not an sqlite database\n"), 200)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a text file succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, junk) {
		t.Error("Open modified a file that is not a database")
	}
}

// A path with characters that mean something in a URI still names a file.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c %20d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "g&w=1.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	mustRegister(t, s, alice, 10001)
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "g&w=1.db") {
			t.Errorf("stray file %q beside the database", e.Name())
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, alice, 10001)
	if err := s.PutContact(ctx, alice, Contact{UIN: 20002, Nick: "Bob", Face: 3, Sub: Both}); err != nil {
		t.Fatal(err)
	}
	id, err := s.Enqueue(ctx, Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "hi", Meta: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Registration(ctx, alice); err == nil {
		t.Error("Registration after Close succeeded")
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if r, err := s.Registration(ctx, alice); err != nil || r.UIN != 10001 || r.PasswordMD5 != md5a {
		t.Errorf("registration after reopen = %+v, %v", r, err)
	}
	if c, err := s.Contact(ctx, alice, 20002); err != nil || c.Nick != "Bob" || c.Face != 3 || c.Sub != Both {
		t.Errorf("contact after reopen = %+v, %v", c, err)
	}
	items, err := s.Pending(ctx, alice, ToXMPP)
	if err != nil || len(items) != 1 || items[0].ID != id || items[0].Text != "hi" || items[0].Meta != "m1" {
		t.Errorf("pending after reopen = %+v, %v", items, err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != 2 {
		t.Errorf("SchemaVersion = %d, %v; want 2", v, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, alice, 10001)
	// What a future version would do: migrate further.
	if _, err := s.db.ExecContext(ctx, "CREATE TABLE future (x); PRAGMA user_version = 7"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("err = %v, want ErrNewerSchema", err)
	}
	var se *SchemaError
	if !errors.As(err, &se) || se.Found != 7 || se.Supported != 2 || se.Path != path {
		t.Errorf("SchemaError = %+v", se)
	}
	if !strings.Contains(err.Error(), "7") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not say the version and file", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("refusing a newer schema modified the file")
	}
}

// A database created by the first release, holding data, is upgraded by
// Open without losing any of it.
func TestMigrateFromVersion1KeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := open(ctx, path, openOptions{fsys: migrationFiles, target: 1, conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersion(ctx); v != 1 {
		t.Fatalf("version = %d, want 1", v)
	}
	// Written as release 1 would have: its queue has no attempts or meta.
	_, err = s.db.ExecContext(ctx, `
		INSERT INTO registrations VALUES ('alice@example.org', 10001, '`+md5a+`', 1000, 2000);
		INSERT INTO contacts VALUES ('alice@example.org', 20002, 'Bob', 5, 3, 3000);
		INSERT INTO queue (dir, jid, peer, text, received) VALUES (0, 'alice@example.org', 20002, 'first', 4000);
		INSERT INTO queue (dir, jid, peer, text, received) VALUES (1, 'alice@example.org', 20002, 'second', 5000);`)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 1 file: %v", err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != 2 {
		t.Errorf("version after upgrade = %d, want 2", v)
	}
	r, err := s.Registration(ctx, alice)
	if err != nil || r.UIN != 10001 || r.PasswordMD5 != md5a || r.Created.UnixNano() != 1000 || r.Updated.UnixNano() != 2000 {
		t.Errorf("registration = %+v, %v", r, err)
	}
	c, err := s.Contact(ctx, alice, 20002)
	if err != nil || c.Nick != "Bob" || c.Face != 5 || c.Sub != Both || c.Updated.UnixNano() != 3000 {
		t.Errorf("contact = %+v, %v", c, err)
	}
	toX, err := s.Pending(ctx, alice, ToXMPP)
	if err != nil || len(toX) != 1 || toX[0].Text != "first" || toX[0].Attempts != 0 || toX[0].Meta != "" || toX[0].Received.UnixNano() != 4000 {
		t.Errorf("pending to XMPP = %+v, %v", toX, err)
	}
	toQ, err := s.Pending(ctx, alice, ToQQ)
	if err != nil || len(toQ) != 1 || toQ[0].Text != "second" {
		t.Errorf("pending to QQ = %+v, %v", toQ, err)
	}
	// The new columns work on the old rows.
	if n, err := s.MarkAttempt(ctx, toX[0].ID); err != nil || n != 1 {
		t.Errorf("MarkAttempt on a migrated row = %d, %v", n, err)
	}
	// New IDs continue after the old ones.
	id, err := s.Enqueue(ctx, Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "third"})
	if err != nil || id <= toQ[0].ID {
		t.Errorf("Enqueue after upgrade = %d, %v; want > %d", id, err, toQ[0].ID)
	}
}

// A migration that fails half way leaves the file at its previous version
// with nothing of the failed migration applied.
func TestFailedMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, alice, 10001)
	s.Close()

	bad := fstest.MapFS{}
	for _, name := range []string{"0001_initial.sql", "0002_queue_retry.sql"} {
		body, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			t.Fatal(err)
		}
		bad["migrations/"+name] = &fstest.MapFile{Data: body}
	}
	bad["migrations/0003_broken.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE half (x); THIS IS NOT SQL;")}
	if s, err := open(ctx, path, openOptions{fsys: bad, conns: 1}); err == nil {
		s.Close()
		t.Fatal("Open with a broken migration succeeded")
	} else if !strings.Contains(err.Error(), "0003_broken.sql") {
		t.Errorf("error %q does not name the migration", err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after the failed migration: %v", err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != 2 {
		t.Errorf("version = %d, want 2", v)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("table from the failed migration exists (count %d, %v)", n, err)
	}
	if _, err := s.Registration(ctx, alice); err != nil {
		t.Errorf("data lost: %v", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	migs, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
	if len(migs) < 2 {
		t.Errorf("%d embedded migrations, want at least 2", len(migs))
	}
	sql := []byte("SELECT 1;")
	for name, fsys := range map[string]fstest.MapFS{
		"none":      {},
		"gap":       {"migrations/0001_a.sql": {Data: sql}, "migrations/0003_c.sql": {Data: sql}},
		"duplicate": {"migrations/0001_a.sql": {Data: sql}, "migrations/0001_b.sql": {Data: sql}},
		"no number": {"migrations/initial.sql": {Data: sql}},
		"short":     {"migrations/1_a.sql": {Data: sql}},
		"zero":      {"migrations/0000_a.sql": {Data: sql}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: loadMigrations succeeded", name)
		}
	}
}

// Two stores opening one new file at once (as two processes might) both
// succeed and the schema is applied once.
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	const n = 4
	stores := make(chan *Store, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := Open(ctx, path)
			if err != nil {
				errs <- err
				return
			}
			stores <- s
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			t.Errorf("concurrent Open: %v", err)
		case s := <-stores:
			defer s.Close()
			if v, err := s.SchemaVersion(ctx); err != nil || v != 2 {
				t.Errorf("SchemaVersion = %d, %v", v, err)
			}
		}
	}
}

// A cancelled context stops an operation before it writes anything.
func TestCancelledContext(t *testing.T) {
	s, _ := openTest(t)
	mustRegister(t, s, alice, 10001)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Enqueue(ctx, Item{Dir: ToQQ, JID: alice, Peer: 1, Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Enqueue with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.EnqueueBatch(ctx, []Item{{Dir: ToQQ, JID: alice, Peer: 1, Text: "x"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("EnqueueBatch with a cancelled context = %v, want context.Canceled", err)
	}
	if users, _ := s.PendingUsers(context.Background()); len(users) != 0 {
		t.Errorf("a cancelled enqueue was written for %v", users)
	}
}
