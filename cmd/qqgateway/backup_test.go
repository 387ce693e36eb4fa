package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"qqxmpp/store"
)

// -backup FILE writes a copy that opens and holds the registrations; it
// refuses an existing FILE and a database that is not there.
func TestBackupFlag(t *testing.T) {
	ctx := context.Background()
	path := writeConfig(t, minimal)
	dir := filepath.Dir(path)
	db := filepath.Join(dir, "x.db")

	code, _, errOut := runCommand(t, nil, "-config", path, "-backup", filepath.Join(dir, "b0.db"))
	if code != exitFailure || !strings.Contains(errOut, "no database at "+db) {
		t.Errorf("without a database: exit %d, stderr %q; want 1 and why", code, errOut)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("-backup created the database it was to copy (%v)", err)
	}

	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close() // open, as the running gateway has it
	if err := st.PutRegistration(ctx, store.Registration{JID: "alice@example.org", UIN: 10001, PasswordMD5: strings.Repeat("ab", 16)}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "b1.db")
	code, out, errOut := runCommand(t, nil, "-config", path, "-backup", backup)
	if code != exitOK || out != db+": backed up to "+backup+"\n" || errOut != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	c, err := store.Open(ctx, backup)
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer c.Close()
	if r, err := c.Registration(ctx, "alice@example.org"); err != nil || r.UIN != 10001 {
		t.Errorf("registration in the backup: %+v, %v", r, err)
	}

	code, _, errOut = runCommand(t, nil, "-config", path, "-backup", backup)
	if code != exitFailure || !strings.Contains(errOut, backup+" exists") {
		t.Errorf("over an existing file: exit %d, stderr %q; want 1 and why", code, errOut)
	}
}

// With driver = "postgres", -backup says to use pg_dump and writes nothing.
func TestBackupFlagOnPostgres(t *testing.T) {
	path := writeConfig(t, strings.Replace(minimal, `path = "x.db"`, "driver = \"postgres\"\ndsn = \"host=/nonexistent dbname=qq user=gw\"", 1))
	backup := filepath.Join(filepath.Dir(path), "b.db")
	code, out, errOut := runCommand(t, nil, "-config", path, "-backup", backup)
	if code != exitFailure || out != "" || !strings.Contains(errOut, "pg_dump") || !strings.Contains(errOut, "dbname=qq") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and pg_dump named", code, out, errOut)
	}
	if _, err := os.Stat(backup); !os.IsNotExist(err) {
		t.Errorf("-backup wrote %s (%v)", backup, err)
	}
}
