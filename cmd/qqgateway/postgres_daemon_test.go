//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"qqxmpp/store"
	"qqxmpp/store/storetest"
)

// pgServer is the PostgreSQL server of this test binary, started by the
// first test that needs it and stopped by TestMain.
var pgServer storetest.Shared

// With [store] driver = "postgres" the gateway keeps its users in that
// database: a registration made through the running binary is there after
// it shut down, and no SQLite file was made. The password comes from
// PGPASSWORD and shows nowhere in the log, which names the database.
func TestPostgresStore(t *testing.T) {
	srv := pgServer.Server(t)
	ctx := testCtx(t)
	name, err := srv.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, dSecret)
	text, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	sqlite := fmt.Sprintf("path = %q", s.db)
	if !strings.Contains(string(text), sqlite) {
		t.Fatalf("the test's configuration has no %s", sqlite)
	}
	pg := fmt.Sprintf("driver = \"postgres\"\ndsn = %q", srv.DSN(name))
	if err := os.WriteFile(s.config, []byte(strings.Replace(string(text), sqlite, pg, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", srv.Password())

	p, _ := s.online(t, ctx)
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 8*time.Second); code != exitOK {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	checkPostgresRegistration(t, ctx, srv.DSNWithPassword(name), s.bare())
	if _, err := os.Stat(s.db); !os.IsNotExist(err) {
		t.Errorf("an SQLite file was made at %s (%v)", s.db, err)
	}
	log := p.out.String()
	if strings.Contains(log, srv.Password()) {
		t.Error("the database password is in the log")
	}
	if want := fmt.Sprintf(`"store":"postgres:host=%s port=5432 dbname=%s user=%s"`, srv.SocketDir(), name, storetest.User); !strings.Contains(log, want) {
		t.Errorf("the log does not name the database as %s", want)
	}
}

func checkPostgresRegistration(t *testing.T, ctx context.Context, dsn, jid string) {
	t.Helper()
	st, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if r, err := st.Registration(ctx, jid); err != nil || r.UIN != 10001 {
		t.Errorf("registration in PostgreSQL after the shutdown: %+v, %v", r, err)
	}
}
