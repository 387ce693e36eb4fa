package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
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
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgconn's error shows the DSN with its password masked.
		return nil, invalid("store: postgres: %v", err)
	}
	migs, err := loadMigrations(o.fsys, postgresMigrations)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(o.conns)
	db.SetMaxIdleConns(o.conns)
	s := newStore(db, true, describe(cfg), o)
	if err := s.migrate(ctx, migs, o.target); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// RedactDSN says which PostgreSQL database dsn connects to, for logs and
// messages: host, port, database and user as libpq would take them (the
// environment filling in what dsn leaves out), never a password. A DSN
// that does not parse yields a placeholder, not the DSN.
func RedactDSN(dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "postgres:(unparsable DSN)"
	}
	return describe(cfg)
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
