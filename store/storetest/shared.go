package storetest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// Shared is one server for a whole test binary, started on first use so
// that a run of tests needing none does not pay for it. TestMain calls
// Close after m.Run.
type Shared struct {
	Options Options // for Start; set before first use

	once sync.Once
	srv  *Server
	err  error
}

// startTimeout bounds initdb and the server's start.
const startTimeout = 2 * time.Minute

// Server returns the shared server, starting it on first use. Without
// PostgreSQL on the machine it fails the test when CI=true, and skips it,
// saying why, otherwise; any other failure to start fails the test.
func (sh *Shared) Server(t testing.TB) *Server {
	t.Helper()
	sh.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		sh.srv, sh.err = Start(ctx, sh.Options)
	})
	switch {
	case errors.Is(sh.err, ErrNoPostgres) && os.Getenv("CI") != "true":
		t.Skipf("%v (the test fails instead when CI=true)", sh.err)
	case sh.err != nil:
		t.Fatal(sh.err)
	}
	return sh.srv
}

// Database creates a new database on the shared server for this test
// alone and returns its DSN, password included.
func (sh *Shared) Database(t testing.TB) string {
	t.Helper()
	srv := sh.Server(t)
	name, err := srv.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv.DSNWithPassword(name)
}

// Close stops the server if it was started.
func (sh *Shared) Close() error {
	if sh.srv == nil {
		return nil
	}
	return sh.srv.Stop()
}
