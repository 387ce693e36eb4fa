package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// SQLSTATE codes the store tells apart.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

// pgMaxConns bounds the connection pool on PostgreSQL. Unlike SQLite's,
// its writers do not queue for one lock, so more connections let the
// gateway's concurrent sessions write at once; the server's default
// max_connections (100) is shared by every gateway process.
const pgMaxConns = 16

// migrateLockKey is the advisory lock that serialises migrations of one
// database by several processes: "qqxp".
const migrateLockKey = 0x71717870

// OpenPostgres opens the PostgreSQL database dsn names and brings its
// schema up to date, as Open does for an SQLite file; the database must
// exist. dsn is a libpq connection string, keyword=value pairs
// ("host=/run/postgresql dbname=qqgateway user=qqgateway") or a
// postgres:// URL. As with libpq, a password not in dsn comes from the
// PGPASSWORD environment variable or the password file (~/.pgpass, or
// PGPASSFILE), and so do other unset parameters (PGHOST, PGUSER, ...).
//
// Errors and the store's messages name the database by RedactDSN(dsn),
// never with its password. A database written by a newer version of the
// program is refused with ErrNewerSchema and left unmodified.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	return openPostgres(ctx, dsn, openOptions{fsys: migrationFiles, conns: pgMaxConns})
}

func openPostgres(ctx context.Context, dsn string, o openOptions) (*Store, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	migs, err := loadMigrations(o.fsys, postgresMigrations)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(o.conns)
	db.SetMaxIdleConns(o.conns)
	s := newStore(db, true, describe(cfg), o)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", s.name, err)
	}
	if err := s.migrate(ctx, migs, o.target); err != nil {
		db.Close()
		return nil, err
	}
	if o.target == 0 {
		if err := s.prepareAll(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// RedactDSN says which PostgreSQL database dsn connects to, for logs and
// messages: host, port, database and user as libpq would take them (the
// environment filling in what dsn leaves out), never a password. A DSN
// that does not parse yields a placeholder, not the DSN.
func RedactDSN(dsn string) string {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return "postgres:(unparsable DSN)"
	}
	return describe(cfg)
}

// CheckDSN reports whether OpenPostgres takes dsn, and whether dsn holds
// a password itself rather than leaving it to PGPASSWORD or the password
// file. Its error never shows dsn.
func CheckDSN(dsn string) (hasPassword bool, err error) {
	if _, err := parseDSN(dsn); err != nil {
		return false, err
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return false, invalid("store: postgres DSN: not a valid URL")
		}
		_, inUser := u.User.Password()
		return inUser || u.Query().Has("password"), nil
	}
	return slices.Contains(dsnKeywords(dsn), "password"), nil
}

// parseDSN is pgx.ParseConfig with an error that never shows the DSN:
// pgconn masks a password in its own error on a best-effort basis only.
func parseDSN(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		msg := pe.Error()
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			msg = msg[i+3:]
		}
		return nil, invalid("store: postgres DSN: %s", msg)
	}
	if err != nil {
		return nil, invalid("store: postgres DSN: cannot parse it")
	}
	return cfg, nil
}

// dsnKeywords lists the keywords of a keyword=value connection string, as
// libpq splits it: values are single-quoted or end at white space, and a
// backslash escapes the next character.
func dsnKeywords(dsn string) []string {
	var keys []string
	for s := strings.TrimLeft(dsn, spaces); s != ""; s = strings.TrimLeft(s, spaces) {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		keys = append(keys, strings.TrimSpace(key))
		s = skipValue(strings.TrimLeft(rest, spaces))
	}
	return keys
}

// spaces separate the pairs of a keyword=value connection string.
const spaces = " \t\n\r\f\v"

// skipValue returns what follows the value at the start of s.
func skipValue(s string) string {
	quoted := strings.HasPrefix(s, "'")
	if quoted {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case quoted && c == '\'':
			return s[i+1:]
		case !quoted && strings.IndexByte(spaces, c) >= 0:
			return s[i:]
		}
	}
	return ""
}

func describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("postgres:host=%s port=%d dbname=%s user=%s", cfg.Host, cfg.Port, cfg.Database, cfg.User)
}

// pgLockVersion takes the migration lock for the rest of tx and reads the
// schema version, 0 in a database the store never opened. The table
// holding it is the store's bookkeeping, as PRAGMA user_version is in
// SQLite, and so is created here rather than by a migration.
func pgLockVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	for _, q := range []string{
		`SELECT pg_advisory_xact_lock(` + strconv.Itoa(migrateLockKey) + `)`,
		`CREATE TABLE IF NOT EXISTS schema_version (
			id      INTEGER PRIMARY KEY CHECK (id = 1),
			version INTEGER NOT NULL)`,
		`INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, err
		}
	}
	var v int
	err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&v)
	return v, err
}
