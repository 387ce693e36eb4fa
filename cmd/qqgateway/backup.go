package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"qqxmpp/store"
)

// backup copies the database the configuration names to file, which must
// not exist; the gateway may be running. SIGINT or SIGTERM interrupts it,
// and then no file is left.
func (cmd command) backup(cfg *fileConfig, file string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case sig := <-cmd.signals:
				if sig != syscall.SIGHUP {
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	if cfg.Store.Driver == driverPostgres {
		fmt.Fprintf(cmd.stderr, "qqgateway: -backup copies an SQLite database; the database is PostgreSQL's (%s): back it up with pg_dump\n", cfg.storeName())
		return exitFailure
	}
	db := string(cfg.Store.Path)
	if _, err := os.Stat(db); err != nil {
		fmt.Fprintf(cmd.stderr, "qqgateway: -backup: no database at %s ([store] path): %v\n", db, cause(err))
		return exitFailure
	}
	err := store.BackupFile(ctx, db, file)
	switch {
	case err == nil:
		fmt.Fprintf(cmd.stdout, "%s: backed up to %s\n", db, file)
		return exitOK
	case errors.Is(err, fs.ErrExist):
		fmt.Fprintf(cmd.stderr, "qqgateway: -backup: %s exists; give a new file name (a backup is never overwritten)\n", file)
	case ctx.Err() != nil:
		fmt.Fprintf(cmd.stderr, "qqgateway: -backup: interrupted; %s not written\n", file)
	default:
		fmt.Fprintf(cmd.stderr, "qqgateway: -backup: %v\n", err)
	}
	return exitFailure
}
