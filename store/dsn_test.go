package store

import (
	"errors"
	"strings"
	"testing"
)

// CheckDSN tells a DSN that holds a password from one that leaves it to
// the environment, in both forms libpq takes.
func TestCheckDSN(t *testing.T) {
	for dsn, want := range map[string]bool{
		"host=/run/postgresql dbname=qq user=gw":                false,
		"host=db dbname=qq user=gw password=s3cret":             true,
		"host=db  password = 's3 cret'  dbname=qq":              true,
		`host=db dbname='pass word=x' user=gw`:                  false,
		`host=db dbname=a\ password=x user=gw`:                  false,
		"postgres://gw@db/qq":                                   false,
		"postgres://gw:s3cret@db/qq":                            true,
		"postgresql://gw@db/qq?password=s3cret&sslmode=disable": true,
	} {
		got, err := CheckDSN(dsn)
		if err != nil || got != want {
			t.Errorf("CheckDSN(%q) = %v, %v; want %v", dsn, got, err, want)
		}
	}
	for _, bad := range []string{"host=db port=notaport password=s3cret", "postgres://gw:s3cret@db:99999999/qq", "password"} {
		_, err := CheckDSN(bad)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckDSN(%q) = %v, want ErrInvalid", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// RedactDSN names the database without the password.
func TestRedactDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"host=/run/postgresql dbname=qq user=gw password=s3cret": "postgres:host=/run/postgresql port=5432 dbname=qq user=gw",
		"postgres://gw:s3cret@db:6543/qq":                        "postgres:host=db port=6543 dbname=qq user=gw",
		"host=db port=x password=s3cret":                         "postgres:(unparsable DSN)",
	} {
		if got := RedactDSN(dsn); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
}
