package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// The SQLite migrations are in migrations/, those for PostgreSQL in
// migrations/postgres/: the same versions with the same names, each the
// same schema change in the other dialect.
//
//go:embed migrations/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

const (
	sqliteMigrations   = "migrations"
	postgresMigrations = "migrations/postgres"
)

// Store is an open database. Its methods are safe for concurrent use.
type Store struct {
	db *sql.DB
	pg bool // PostgreSQL (OpenPostgres), not SQLite
	// name is the database in messages: the SQLite file's absolute path,
	// or RedactDSN of the PostgreSQL DSN.
	name string
	file os.FileInfo      // SQLite: the file as opened, to notice it deleted or replaced
	now  func() time.Time // replaced in tests for predictable timestamps

	stmts stmtCache  // the hot queries, prepared once
	group *committer // the group commit of the hot writes (group.go)
}

// maxConns bounds the connection pool. SQLite serialises writers anyway; in
// WAL mode readers do not block the writer, so a few connections let reads
// (Pending, Contacts) proceed beside a write, while many would only add
// writers sleeping in the busy handler. BenchmarkEnqueueRemoveParallel found
// no write throughput difference between 1, 4 and 16 beyond noise.
const maxConns = 4

// dsnParams configures every pooled connection.
//
// Durability: Enqueue must survive SIGKILL of the process, not power loss.
// In WAL mode a commit appends the transaction to the -wal file with write(2)
// before returning; with synchronous=NORMAL it is not fsynced until the next
// checkpoint. Once write(2) returned the data is in the kernel's page cache,
// which outlives the process, and the next Open replays the WAL. So
// WAL+NORMAL makes every acknowledged commit survive a process crash at a
// fraction of FULL's cost (one fsync per commit); after a power cut the last
// few commits may be lost, but the file is never corrupted.
//
// _txlock=immediate makes every transaction take the write lock at BEGIN, so
// two transactions that read and then write can never deadlock on the lock
// upgrade (SQLite answers that with SQLITE_BUSY without waiting).
// mode=rw: Open creates the file itself with 0600; SQLite must never create
// it with umask permissions.
const dsnParams = "mode=rw&_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_txlock=immediate&_synchronous="

// Open opens the database at path, creating it with mode 0600 if it does not
// exist, and brings its schema up to date. SQLite creates the -wal and -shm
// files with the database file's permissions. An existing file's permissions
// are left as they are.
//
// A file written by a newer version of the program is refused with an error
// matching ErrNewerSchema and left unmodified.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, openOptions{fsys: migrationFiles, conns: maxConns})
}

// openOptions lets tests and benchmarks vary what Open fixes.
type openOptions struct {
	fsys        fs.FS // migrations/NNNN_name.sql
	target      int   // apply migrations up to this version; 0 means all
	conns       int
	synchronous string // "" means NORMAL; benchmarks compare FULL
	nowFunc     func() time.Time
	// asIs opens an existing file without creating or migrating it.
	asIs bool
}

func open(ctx context.Context, path string, o openOptions) (*Store, error) {
	if path == "" {
		return nil, invalid("store: empty database path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, invalid("store: %q: want a file path, not an SQLite URI", path)
	}
	migs, err := loadMigrations(o.fsys, sqliteMigrations)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	if o.asIs {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	} else if err := createPrivate(abs); err != nil {
		return nil, err
	}

	sync := o.synchronous
	if sync == "" {
		sync = "NORMAL"
	}
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + dsnParams + sync
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	db.SetMaxOpenConns(o.conns)
	db.SetMaxIdleConns(o.conns)
	db.SetConnMaxLifetime(0)

	s := newStore(db, false, abs, o)
	err = retryBusy(ctx, func() error {
		if err := s.check(ctx); err != nil || o.asIs {
			return err
		}
		if err := s.migrate(ctx, migs, o.target); err != nil || o.target != 0 {
			return err
		}
		return s.prepareAll(ctx)
	})
	if err != nil {
		s.closeStmts()
		db.Close()
		return nil, err
	}
	if s.file, err = os.Stat(abs); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return s, nil
}

func newStore(db *sql.DB, pg bool, name string, o openOptions) *Store {
	s := &Store{db: db, pg: pg, name: name, now: time.Now, group: newCommitter()}
	if o.nowFunc != nil {
		s.now = o.nowFunc
	}
	return s
}

// CheckFile reports, with an error matching ErrFileGone, a database file
// deleted or replaced under the open store: SQLite goes on writing to the
// unlinked file, so registrations would seem to succeed and be gone after
// a restart. On PostgreSQL there is no file of the store's to check (the
// server owns its files, and a connection to a dropped database fails):
// it returns nil.
func (s *Store) CheckFile() error {
	if s.pg {
		return nil
	}
	fi, err := os.Stat(s.name)
	switch {
	case err != nil:
		return fmt.Errorf("store: %s: %w: %v", s.name, ErrFileGone, err)
	case !os.SameFile(fi, s.file):
		return fmt.Errorf("store: %s: %w: another file is there now", s.name, ErrFileGone)
	}
	return nil
}

// openBusyLimit bounds how long Open retries a database that is locked.
const openBusyLimit = 10 * time.Second

// retryBusy runs fn again while it fails with SQLITE_BUSY. When several
// processes open a new file at once, switching it to WAL needs an exclusive
// lock, and SQLite reports that contention as BUSY at once instead of
// waiting in the busy handler; a short pause and a retry settles it.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(openBusyLimit)
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		err := fn()
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// createPrivate creates the database file with mode 0600 unless it exists.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	// The umask may only remove bits, but be explicit rather than rely on it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("store: chmod %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	return nil
}

// check verifies that the connection settings took effect: the durability
// argument above depends on WAL, and ON DELETE CASCADE on foreign keys.
func (s *Store) check(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("store: open %s: %w", s.name, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("store: open %s: journal mode is %q, WAL is required (does the file system support shared memory?)", s.name, mode)
	}
	var fk int
	if err := s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return fmt.Errorf("store: open %s: %w", s.name, err)
	}
	if fk != 1 {
		return fmt.Errorf("store: open %s: foreign keys are off", s.name)
	}
	return nil
}

// Close closes the database. Operations after Close fail.
func (s *Store) Close() error {
	s.stopCommitter()
	s.closeStmts()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.name, err)
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads dir/NNNN_name.sql and insists on versions 1..n
// without gaps, so a mistake in packaging fails every test at once.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var migs []migration
	for _, name := range names {
		base := filepath.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || len(num) != 4 {
			return nil, fmt.Errorf("store: migration %s: name must be NNNN_description.sql", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", base, err)
		}
		migs = append(migs, migration{version: v, name: base, sql: string(body)})
	}
	if len(migs) == 0 {
		return nil, errors.New("store: no migrations embedded")
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	for i, m := range migs {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migration %s: expected version %d (versions must run 1..n without gaps or duplicates)", m.name, i+1)
		}
	}
	return migs, nil
}

// migrate brings the schema from its recorded version to target (0: the
// newest) in one transaction: the database is either at its old version
// or at target, never in between. Reading the version inside the write
// transaction makes concurrent Opens of one database safe.
func (s *Store) migrate(ctx context.Context, migs []migration, target int) (err error) {
	if target == 0 {
		target = len(migs)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate %s: %w", s.name, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	current, err := s.lockVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("store: migrate %s: read schema version: %w", s.name, err)
	}
	if current > len(migs) {
		return &SchemaError{Path: s.name, Found: current, Supported: len(migs)}
	}
	if current >= target {
		return tx.Rollback()
	}
	for _, m := range migs[current:target] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("store: migrate %s to version %d (%s): %w", s.name, m.version, m.name, err)
		}
	}
	if err := s.setVersion(ctx, tx, target); err != nil {
		return fmt.Errorf("store: migrate %s: record version %d: %w", s.name, target, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate %s: commit: %w", s.name, err)
	}
	return nil
}

// lockVersion reads the schema version in tx, which then holds the lock
// that keeps other migrations out until it ends. SQLite: PRAGMA
// user_version, the transaction holding the write lock from BEGIN.
// PostgreSQL: the schema_version table, under an advisory lock.
func (s *Store) lockVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	if s.pg {
		return pgLockVersion(ctx, tx)
	}
	var v int
	err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func (s *Store) setVersion(ctx context.Context, tx *sql.Tx, v int) error {
	if s.pg {
		_, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = $1 WHERE id = 1`, v)
		return err
	}
	// PRAGMA takes no bound parameters; v is an int we computed.
	_, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(v))
	return err
}

// SchemaVersion reports the schema version recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	q := "PRAGMA user_version"
	if s.pg {
		q = "SELECT version FROM schema_version WHERE id = 1"
	}
	var v int
	if err := s.db.QueryRowContext(ctx, q).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// inTx runs fn in a write transaction and commits it if fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Times are stored as Unix nanoseconds and returned in UTC.
func nanos(t time.Time) int64     { return t.UnixNano() }
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// maxJIDLen is RFC 7622's limit for a whole JID (3 × 1023 octets + separators).
const maxJIDLen = 3071

func checkJID(jid string) error {
	switch {
	case jid == "":
		return invalid("store: empty jid")
	case len(jid) > maxJIDLen:
		return invalid("store: jid longer than %d bytes", maxJIDLen)
	case !utf8.ValidString(jid):
		return invalid("store: jid is not valid UTF-8")
	case strings.ContainsAny(jid, "/\x00"):
		return invalid("store: jid %q must be bare (no resource) and contain no NUL", jid)
	}
	return nil
}

func checkUIN(what string, uin int64) error {
	if uin <= 0 {
		return invalid("store: %s %d: qq numbers are positive", what, uin)
	}
	return nil
}

// isUnique reports whether err is a violation of a UNIQUE constraint.
func isUnique(err error) bool {
	return isConstraint(err, sqlite3.ErrConstraintUnique, pgUniqueViolation)
}

// isForeignKey reports whether err is a violation of a foreign key.
func isForeignKey(err error) bool {
	return isConstraint(err, sqlite3.ErrConstraintForeignKey, pgForeignKeyViolation)
}

// isConstraint reports whether err is the SQLite constraint violation ext
// or the PostgreSQL error with SQLSTATE code.
func isConstraint(err error, ext sqlite3.ErrNoExtended, code string) bool {
	var se sqlite3.Error
	var pe *pgconn.PgError
	return errors.As(err, &se) && se.ExtendedCode == ext || errors.As(err, &pe) && pe.Code == code
}

// q is query for the store's dialect: SQLite's ? placeholders become
// PostgreSQL's $1, $2, ... The store's queries have no ? inside a string
// literal; rebind skips those anyway.
func (s *Store) q(query string) string {
	if !s.pg {
		return query
	}
	return rebind(query)
}

func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// str is a string from QQ (a message, a nick) as a query argument: a
// PostgreSQL BYTEA column takes []byte, while SQLite stores a string as
// TEXT (and []byte as a BLOB).
func (s *Store) str(v string) any {
	if s.pg {
		return []byte(v)
	}
	return v
}
