package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// testDriver is one kind of database the store's tests run on: SQLite
// always, PostgreSQL too with the integration build tag
// (drivers_postgres_test.go).
type testDriver struct {
	name string
	// newDB makes a new, empty database for this test alone and returns
	// what opens it: a file path or a DSN.
	newDB func(t testing.TB) string
	open  func(ctx context.Context, db string, o openOptions) (*Store, error)
	opts  openOptions // what Open or OpenPostgres would use
}

var sqliteDriver = testDriver{
	name:  "sqlite",
	newDB: func(t testing.TB) string { return filepath.Join(t.TempDir(), "gateway.db") },
	open:  open,
	opts:  openOptions{fsys: migrationFiles, conns: maxConns},
}

// Open opens db as the exported Open or OpenPostgres would.
func (d testDriver) Open(ctx context.Context, db string) (*Store, error) {
	return d.open(ctx, db, d.opts)
}

// migrations is the directory of the driver's migrations.
func (d testDriver) migrations() string {
	if d.name == "postgres" {
		return postgresMigrations
	}
	return sqliteMigrations
}

// dump is what the database holds, to see whether an operation changed
// it: the file's bytes, or the tables' rows.
func (d testDriver) dump(t testing.TB, db string) []byte {
	t.Helper()
	if d.name == "postgres" {
		return dumpPostgres(t, db)
	}
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eachDriver runs test as a subtest on each driver.
func eachDriver(t *testing.T, test func(t *testing.T, d testDriver)) {
	for _, d := range testDrivers() {
		t.Run(d.name, func(t *testing.T) { test(t, d) })
	}
}
