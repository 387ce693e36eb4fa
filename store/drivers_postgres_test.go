//go:build integration

package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"qqxmpp/store/storetest"
)

// pgServer is the PostgreSQL server of this test binary, started by the
// first test that needs it and stopped by TestMain.
var pgServer storetest.Shared

var postgresDriver = testDriver{
	name:  "postgres",
	newDB: pgServer.Database,
	open: func(ctx context.Context, dsn string, o openOptions) (*Store, error) {
		return openPostgres(ctx, dsn, o)
	},
	opts: openOptions{fsys: migrationFiles, conns: pgMaxConns},
}

// testDrivers: with the integration tag, SQLite and PostgreSQL.
func testDrivers() []testDriver { return []testDriver{sqliteDriver, postgresDriver} }

func stopServers() error { return errors.Join(pgServer.Close(), pgDurable.Close()) }

// dumpPostgres lists the tables of the database, their columns and rows.
func dumpPostgres(t testing.TB, dsn string) []byte {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	rows, err := db.QueryContext(ctx, `SELECT table_name, string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_schema = 'public' GROUP BY table_name ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name, cols string
		if err := rows.Scan(&name, &cols); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
		fmt.Fprintf(&out, "%s (%s)\n", name, cols)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range tables {
		var text sql.NullString
		q := fmt.Sprintf(`SELECT string_agg(x::text, E'\n' ORDER BY x::text) FROM %q x`, name)
		if err := db.QueryRowContext(ctx, q).Scan(&text); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s:\n%s\n", name, text.String)
	}
	return out.Bytes()
}
