//go:build !integration

package store

import "testing"

// testDrivers: without the integration tag, SQLite only.
func testDrivers() []testDriver { return []testDriver{sqliteDriver} }

func stopServers() error { return nil }

func dumpPostgres(t testing.TB, _ string) []byte {
	t.Fatal("PostgreSQL needs the integration build tag")
	return nil
}
