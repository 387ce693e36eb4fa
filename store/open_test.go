package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
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

func TestReopenKeepsData(t *testing.T) { eachDriver(t, testReopenKeepsData) }

func testReopenKeepsData(t *testing.T, d testDriver) {
	ctx := context.Background()
	path := d.newDB(t)
	s, err := d.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, alice, 10001)
	if err := s.PutContact(ctx, alice, Contact{UIN: 20002, Nick: "Bob", Face: 3, Sub: Both}); err != nil {
		t.Fatal(err)
	}
	id, err := s.Enqueue(ctx, Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "hi", MsgType: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Registration(ctx, alice); err == nil {
		t.Error("Registration after Close succeeded")
	}

	s, err = d.Open(ctx, path)
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
	if err != nil || len(items) != 1 || items[0].ID != id || items[0].Text != "hi" || items[0].MsgType != 3 {
		t.Errorf("pending after reopen = %+v, %v", items, err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != latestVersion {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, latestVersion)
	}
}

func TestNewerSchemaRefused(t *testing.T) { eachDriver(t, testNewerSchemaRefused) }

func testNewerSchemaRefused(t *testing.T, d testDriver) {
	ctx := context.Background()
	path := d.newDB(t)
	s, err := d.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, alice, 10001)
	// What a future version would do: migrate further.
	future := "CREATE TABLE future (x); PRAGMA user_version = 7"
	if d.name == "postgres" {
		future = "CREATE TABLE future (x int); UPDATE schema_version SET version = 7"
	}
	if _, err := s.db.ExecContext(ctx, future); err != nil {
		t.Fatal(err)
	}
	name := s.name
	s.Close()
	before := d.dump(t, path)

	s, err = d.Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("err = %v, want ErrNewerSchema", err)
	}
	var se *SchemaError
	if !errors.As(err, &se) || se.Found != 7 || se.Supported != latestVersion || se.Path != name {
		t.Errorf("SchemaError = %+v", se)
	}
	if !strings.Contains(err.Error(), "7") || !strings.Contains(err.Error(), name) {
		t.Errorf("error %q does not say the version and database", err)
	}
	if after := d.dump(t, path); !bytes.Equal(before, after) {
		t.Error("refusing a newer schema modified the database")
	}
}

// A database created by the first release, holding data, is upgraded by
// Open without losing any of it.
func TestMigrateFromVersion1KeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s := openAt(t, path, 1)
	// Written as release 1 would have: its queue has no attempts or meta.
	_, err := s.db.ExecContext(ctx, `
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
	if v, _ := s.SchemaVersion(ctx); v != latestVersion {
		t.Errorf("version after upgrade = %d, want %d", v, latestVersion)
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
	// No type was recorded: taken for a buddy message.
	if err != nil || len(toX) != 1 || toX[0].Text != "first" || toX[0].MsgType != 9 || toX[0].Received.UnixNano() != 4000 {
		t.Errorf("pending to XMPP = %+v, %v", toX, err)
	}
	toQ, err := s.Pending(ctx, alice, ToQQ)
	if err != nil || len(toQ) != 1 || toQ[0].Text != "second" || toQ[0].RawStanza {
		t.Errorf("pending to QQ = %+v, %v", toQ, err)
	}
	// New IDs continue after the old ones.
	id, err := s.Enqueue(ctx, Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "third"})
	if err != nil || id <= toQ[0].ID {
		t.Errorf("Enqueue after upgrade = %d, %v; want > %d", id, err, toQ[0].ID)
	}
}

// A version 2 database, whose queue kept the message type in meta ("mt=N")
// and to-QQ messages as whole stanzas, is upgraded without losing a row:
// each gets its type, and old to-QQ stanzas are marked raw for the caller.
func TestMigrateFromVersion2KeepsQueue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gateway.db")
	s := openAt(t, path, 2)
	const stanza = `<message from='alice@example.org/pc' to='20002@qq.example.org' type='chat' id='m1'><body>hi &amp; bye</body></message>`
	// Written as release 2's gateway did: meta "mt=N" to XMPP,
	// "xmpp-message" with the stanza as text to QQ.
	rows := []struct {
		dir  Direction
		peer int64
		text string
		meta string
		want Item // of the fields the migration derives
	}{
		{ToXMPP, 20002, "add me", "mt=2", Item{MsgType: 2}},
		{ToXMPP, 20002, "hello", "mt=9", Item{MsgType: 9}},
		{ToXMPP, 20002, "10", "mt=99", Item{MsgType: 99}},
		{ToXMPP, 30003, "odd type", "mt=-1", Item{MsgType: -1}},
		{ToQQ, 20002, stanza, "xmpp-message", Item{RawStanza: true}},
		{ToQQ, 30003, "not a stanza", "", Item{}},
		// Unreadable meta: a buddy message, so the text is not lost.
		{ToXMPP, 30003, "garbage", "seq=12", Item{MsgType: 9}},
		{ToXMPP, 30003, "no meta", "", Item{MsgType: 9}},
		{ToXMPP, 30003, "no digits", "mt=", Item{MsgType: 9}},
		{ToXMPP, 30003, "trailing junk", "mt=9x", Item{MsgType: 9}},
		{ToXMPP, 30003, "too long", "mt=123456789012345678901234", Item{MsgType: 9}},
		{ToXMPP, 30003, "stanza meta", "xmpp-message", Item{MsgType: 9}},
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO registrations VALUES (?, 10001, ?, 1000, 2000)`, alice, md5a); err != nil {
		t.Fatal(err)
	}
	var want []Item
	for i, r := range rows {
		received := int64(5000 + i)
		res, err := s.db.ExecContext(ctx, `INSERT INTO queue (dir, jid, peer, text, received, attempts, meta) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			int(r.dir), alice, r.peer, r.text, received, i%3, r.meta)
		if err != nil {
			t.Fatal(err)
		}
		it := r.want
		it.ID, _ = res.LastInsertId()
		it.Dir, it.JID, it.Peer, it.Text, it.Received = r.dir, alice, r.peer, r.text, fromNanos(received)
		want = append(want, it)
	}
	s.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 2 file: %v", err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != latestVersion {
		t.Errorf("version after upgrade = %d, want %d", v, latestVersion)
	}
	var got []Item
	for _, dir := range []Direction{ToXMPP, ToQQ} {
		items, err := s.Pending(ctx, alice, dir)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, items...)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	if len(got) != len(want) {
		t.Fatalf("%d rows after the upgrade, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d (meta %q) after the upgrade:\n got %+v\nwant %+v", i, rows[i].meta, got[i], want[i])
		}
	}

	// New rows go in beside the old ones, with new IDs.
	it := Item{Dir: ToQQ, JID: alice, Peer: 20002, Text: "new", Received: fromNanos(9000),
		Resource: "pc", StanzaID: "m2", StanzaType: "chat", WantsReceipt: true}
	id, err := s.Enqueue(ctx, it)
	if err != nil || id <= want[len(want)-1].ID {
		t.Fatalf("Enqueue after upgrade = %d, %v; want > %d", id, err, want[len(want)-1].ID)
	}
	it.ID = id
	toQQ, err := s.Pending(ctx, alice, ToQQ)
	if err != nil || len(toQQ) != 3 || !reflect.DeepEqual(toQQ[2], it) {
		t.Errorf("to QQ after a new Enqueue = %+v, %v; want the two old rows and %+v", toQQ, err, it)
	}
	// The flags are 0 or 1 in the file too.
	for _, col := range []string{"receipt", "raw_stanza"} {
		if _, err := s.db.ExecContext(ctx, `UPDATE queue SET `+col+` = 2`); err == nil {
			t.Errorf("the %s column accepted 2", col)
		}
	}
}

// openAt creates the database at path with the migrations up to version
// target only, as that release left it.
func openAt(t *testing.T, path string, target int) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := open(ctx, path, openOptions{fsys: migrationFiles, target: target, conns: 1})
	if err != nil {
		t.Fatalf("open at version %d: %v", target, err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != target {
		s.Close()
		t.Fatalf("version = %d, %v; want %d", v, err, target)
	}
	return s
}

// A migration that fails half way leaves the file at its previous version
// with nothing of the failed migration applied.
func TestFailedMigrationRollsBack(t *testing.T) { eachDriver(t, testFailedMigrationRollsBack) }

func testFailedMigrationRollsBack(t *testing.T, d testDriver) {
	ctx := context.Background()
	path := d.newDB(t)
	s, err := d.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, alice, 10001)
	s.Close()

	bad := fstest.MapFS{}
	dir := d.migrations()
	names, err := fs.Glob(migrationFiles, dir+"/*.sql")
	if err != nil || len(names) != latestVersion {
		t.Fatalf("embedded migrations %v, %v", names, err)
	}
	for _, name := range names {
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		bad[name] = &fstest.MapFile{Data: body}
	}
	broken := fmt.Sprintf("%04d_broken.sql", latestVersion+1)
	bad[dir+"/"+broken] = &fstest.MapFile{Data: []byte("CREATE TABLE half (x int); THIS IS NOT SQL;")}
	o := d.opts
	o.fsys = bad
	if s, err := d.open(ctx, path, o); err == nil {
		s.Close()
		t.Fatal("Open with a broken migration succeeded")
	} else if !strings.Contains(err.Error(), broken) {
		t.Errorf("error %q does not name the migration", err)
	}

	s, err = d.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after the failed migration: %v", err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != latestVersion {
		t.Errorf("version = %d, want %d", v, latestVersion)
	}
	if _, err := s.db.ExecContext(ctx, `SELECT * FROM half`); err == nil {
		t.Error("the table of the failed migration exists")
	}
	if _, err := s.Registration(ctx, alice); err != nil {
		t.Errorf("data lost: %v", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	migs, err := loadMigrations(migrationFiles, sqliteMigrations)
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
		if _, err := loadMigrations(fsys, "migrations"); err == nil {
			t.Errorf("%s: loadMigrations succeeded", name)
		}
	}
}

// The PostgreSQL migrations are those of SQLite in the other dialect:
// the same versions with the same names, so that a migration added to one
// set and not to the other fails here.
func TestMigrationsMatch(t *testing.T) {
	lite, err := loadMigrations(migrationFiles, sqliteMigrations)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations(migrationFiles, postgresMigrations)
	if err != nil {
		t.Fatal(err)
	}
	names := func(migs []migration) (out []string) {
		for _, m := range migs {
			out = append(out, m.name)
		}
		return out
	}
	if !reflect.DeepEqual(names(lite), names(pg)) {
		t.Errorf("SQLite migrations %v, PostgreSQL migrations %v: want the same", names(lite), names(pg))
	}
	if len(lite) != latestVersion {
		t.Errorf("%d migrations, latestVersion is %d", len(lite), latestVersion)
	}
}

// Two stores opening one new file at once (as two processes might) both
// succeed and the schema is applied once.
func TestConcurrentOpen(t *testing.T) { eachDriver(t, testConcurrentOpen) }

func testConcurrentOpen(t *testing.T, d testDriver) {
	ctx := context.Background()
	path := d.newDB(t)
	const n = 4
	stores := make(chan *Store, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := d.Open(ctx, path)
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
			if v, err := s.SchemaVersion(ctx); err != nil || v != latestVersion {
				t.Errorf("SchemaVersion = %d, %v", v, err)
			}
		}
	}
}

// A cancelled context stops an operation before it writes anything.
func TestCancelledContext(t *testing.T) { eachDriver(t, testCancelledContext) }

func testCancelledContext(t *testing.T, d testDriver) {
	s, _ := openTest(t, d)
	mustRegister(t, s, alice, 10001)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Enqueue(ctx, Item{Dir: ToQQ, JID: alice, Peer: 1, Text: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Enqueue with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.EnqueueBatch(ctx, []Item{{Dir: ToQQ, JID: alice, Peer: 1, Text: "x"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("EnqueueBatch with a cancelled context = %v, want context.Canceled", err)
	}
	if n := queueLen(t, s); n != 0 {
		t.Errorf("%d items of a cancelled enqueue were written", n)
	}
}
