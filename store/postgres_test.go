//go:build integration

package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// On PostgreSQL, Backup says to use pg_dump, and writes nothing.
func TestPostgresBackupIsUnsupported(t *testing.T) {
	s, _ := openTest(t, postgresDriver)
	p := filepath.Join(t.TempDir(), "backup.db")
	err := s.Backup(context.Background(), p)
	var ue *UnsupportedError
	if !errors.Is(err, ErrUnsupported) || !errors.As(err, &ue) || ue.Instead != "pg_dump" {
		t.Errorf("Backup = %v, want an *UnsupportedError naming pg_dump", err)
	}
	if err != nil && !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("error %q does not say to use pg_dump", err)
	}
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Backup on PostgreSQL left %s", p)
	}
}

// There is no file to lose on PostgreSQL: CheckFile has nothing to report,
// and Heartbeat's answer is the server's.
func TestPostgresCheckFile(t *testing.T) {
	s, _ := openTest(t, postgresDriver)
	if err := s.CheckFile(); err != nil {
		t.Errorf("CheckFile = %v, want nil", err)
	}
	if err := s.Heartbeat(context.Background()); err != nil {
		t.Errorf("Heartbeat = %v", err)
	}
}

// The password never shows: not in what the store calls the database,
// not in the error of a failed open.
func TestPostgresPasswordNotShown(t *testing.T) {
	srv := pgServer.Server(t)
	ctx := context.Background()
	name, err := srv.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dsn := srv.DSNWithPassword(name)
	s, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, got := range []string{s.name, RedactDSN(dsn)} {
		if strings.Contains(got, srv.Password()) || !strings.Contains(got, name) {
			t.Errorf("the database is named %q: want its name %s and no password", got, name)
		}
	}
	const wrong = "not-the-Password-123"
	for _, bad := range []string{
		srv.DSN(name) + " password=" + wrong,                              // refused by the server
		"postgres://qqtest:" + wrong + "@/" + name + "?host=/nonexistent", // no server there
		"host=/tmp password=" + wrong + " port=notaport",                  // does not parse
	} {
		s, err := OpenPostgres(ctx, bad)
		if err == nil {
			s.Close()
			t.Errorf("OpenPostgres(%q) succeeded", RedactDSN(bad))
			continue
		}
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// The password may come from PGPASSWORD, as for libpq, psql and pg_dump.
func TestPostgresPasswordFromEnvironment(t *testing.T) {
	srv := pgServer.Server(t)
	ctx := context.Background()
	name, err := srv.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSWORD", "wrong")
	if s, err := OpenPostgres(ctx, srv.DSN(name)); err == nil {
		s.Close()
		t.Fatal("OpenPostgres with a wrong PGPASSWORD succeeded")
	}
	t.Setenv("PGPASSWORD", srv.Password())
	s, err := OpenPostgres(ctx, srv.DSN(name))
	if err != nil {
		t.Fatalf("OpenPostgres with PGPASSWORD: %v", err)
	}
	s.Close()
}
