package store

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// Sentinel errors for errors.Is.
var (
	// ErrNotFound: no such registration, contact or queue item.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the QQ number is already registered by another JID.
	// The concrete error is a *ConflictError.
	ErrConflict = errors.New("qq number already registered")
	// ErrInvalid: an argument the store refuses to write, such as a
	// password that is not an MD5 digest.
	ErrInvalid = errors.New("invalid argument")
	// ErrNewerSchema: the database was written by a newer version of the
	// program; it is left untouched. The concrete error is a *SchemaError.
	ErrNewerSchema = errors.New("database schema is newer than this program")
	// ErrFileGone: the database file was deleted or replaced since Open;
	// what is written now goes to a file nobody will open again.
	ErrFileGone = errors.New("database file deleted or replaced while open")
	// ErrUnwritable: the database takes no writes now (disk full, read-only
	// file or file system, I/O error). Nothing was written; the same write
	// may succeed once the cause is gone.
	ErrUnwritable = errors.New("database cannot be written")
	// ErrUnsupported: the operation is not done by the store on this kind
	// of database. The concrete error is an *UnsupportedError.
	ErrUnsupported = errors.New("not supported on this database")
)

// UnsupportedError reports an operation the store leaves to another tool
// on this kind of database: Backup on PostgreSQL, which pg_dump does.
type UnsupportedError struct {
	Op      string // what was asked, e.g. "backup"
	DB      string // the database, as the store names it (no password)
	Instead string // the tool to use instead
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("store: %s of %s is not supported on PostgreSQL: use %s", e.Op, e.DB, e.Instead)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// ConflictError reports that UIN already belongs to another JID. The other
// owner is deliberately not named, so the message can be shown to the user
// who tried without revealing who holds the number.
type ConflictError struct {
	UIN int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("qq number %d is already registered by another user", e.UIN)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// SchemaError reports a database whose schema version is newer than the
// newest migration this program knows.
type SchemaError struct {
	Path      string
	Found     int // version recorded in the file
	Supported int // newest version this program knows
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("store: %s has schema version %d, this program knows up to %d: upgrade the program (the file was not modified)",
		e.Path, e.Found, e.Supported)
}

// Is makes errors.Is(err, ErrNewerSchema) true.
func (e *SchemaError) Is(target error) bool { return target == ErrNewerSchema }

// invalid wraps ErrInvalid with a reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// unwritable marks a write refused for want of a writable database with
// ErrUnwritable, keeping the driver's error for the message.
func unwritable(err error) error {
	if err != nil && (sqliteUnwritable(err) || pgUnwritable(err)) {
		return fmt.Errorf("%w: %w", ErrUnwritable, err)
	}
	return err
}

func sqliteUnwritable(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrFull, sqlite3.ErrReadonly, sqlite3.ErrIoErr, sqlite3.ErrCantOpen:
		return true
	}
	return false
}

// pgUnwritable: PostgreSQL's counterparts, by SQLSTATE: a full disk, a
// read-only transaction (a standby, or default_transaction_read_only), an
// I/O error, a server starting up or shutting down. A lost connection is
// not one: a commit it cut off may have been written.
func pgUnwritable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "53100", "25006", "58030", "57P03":
		return true
	}
	return false
}
