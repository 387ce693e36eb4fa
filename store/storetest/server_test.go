//go:build integration

package storetest

import (
	"context"
	"database/sql"
	"testing"
)

// The server starts, takes the password, and gives each caller its own
// database.
func TestServer(t *testing.T) {
	var sh Shared
	defer sh.Close()
	ctx := context.Background()
	a, b := sh.Database(t), sh.Database(t)
	if a == b {
		t.Fatalf("two databases with one DSN %q", a)
	}
	db, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "SELECT * FROM t"); err == nil {
		t.Error("a table of one database is seen in another")
	}
	wrong, err := sql.Open("pgx", sh.Server(t).DSN("postgres")+" password=wrong")
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if err := wrong.PingContext(ctx); err == nil {
		t.Error("a wrong password is accepted")
	}
}
