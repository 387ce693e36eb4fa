package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Registration ties a bare JID to the QQ account it registered.
type Registration struct {
	JID         string
	UIN         int64
	PasswordMD5 string // 32 lowercase hex digits; never the password itself
	Created     time.Time
	Updated     time.Time // last change of UIN or password
}

// CheckPasswordMD5 reports whether s is an MD5 digest as the store keeps it:
// exactly 32 lowercase hexadecimal digits. The error never repeats s, since
// a caller's bug might have passed the plaintext password.
func CheckPasswordMD5(s string) error {
	if len(s) != 32 {
		return invalid("store: password must be stored as its MD5 digest (32 lowercase hex digits), got %d characters", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return invalid("store: password must be stored as its MD5 digest (32 lowercase hex digits)")
		}
	}
	return nil
}

// PutRegistration registers r.JID with r.UIN and r.PasswordMD5, or, if the
// JID is already registered, replaces its QQ number and password. Created
// and Updated are set by the store. Contacts and queued items of the JID are
// kept: when the QQ number changes, the caller diffs the new buddy list
// against Contacts.
//
// A QQ number registered by another JID yields a *ConflictError
// (errors.Is(err, ErrConflict)).
func (s *Store) PutRegistration(ctx context.Context, r Registration) error {
	if err := checkJID(r.JID); err != nil {
		return err
	}
	if err := checkUIN("registration", r.UIN); err != nil {
		return err
	}
	if err := CheckPasswordMD5(r.PasswordMD5); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// SQLite: the transaction holds the write lock from BEGIN
		// (_txlock=immediate), so the owner cannot change between this
		// check and the insert. PostgreSQL: it can, and the insert then
		// violates the UNIQUE uin, as below.
		var owner string
		err := tx.QueryRowContext(ctx, s.q(`SELECT jid FROM registrations WHERE uin = ?`), r.UIN).Scan(&owner)
		switch {
		case err == nil && owner != r.JID:
			return &ConflictError{UIN: r.UIN}
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		now := nanos(s.now())
		_, err = tx.ExecContext(ctx, s.q(`
			INSERT INTO registrations (jid, uin, password_md5, created, updated) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (jid) DO UPDATE SET uin = excluded.uin, password_md5 = excluded.password_md5, updated = excluded.updated`),
			r.JID, r.UIN, r.PasswordMD5, now, now)
		if isUnique(err) {
			return &ConflictError{UIN: r.UIN} // another process won a race
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: register %s as %d: %w", r.JID, r.UIN, err)
	}
	return nil
}

const registrationColumns = `jid, uin, password_md5, created, updated`

func scanRegistration(row interface{ Scan(...any) error }) (Registration, error) {
	var r Registration
	var created, updated int64
	if err := row.Scan(&r.JID, &r.UIN, &r.PasswordMD5, &created, &updated); err != nil {
		return Registration{}, err
	}
	r.Created, r.Updated = fromNanos(created), fromNanos(updated)
	return r, nil
}

// Registration returns the registration of jid, or ErrNotFound.
func (s *Store) Registration(ctx context.Context, jid string) (Registration, error) {
	r, err := scanRegistration(s.db.QueryRowContext(ctx,
		s.q(`SELECT `+registrationColumns+` FROM registrations WHERE jid = ?`), jid))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Registration{}, fmt.Errorf("store: registration of %s: %w", jid, err)
	}
	return r, nil
}

// RegistrationByUIN returns the registration holding QQ number uin, or
// ErrNotFound.
func (s *Store) RegistrationByUIN(ctx context.Context, uin int64) (Registration, error) {
	r, err := scanRegistration(s.db.QueryRowContext(ctx,
		s.q(`SELECT `+registrationColumns+` FROM registrations WHERE uin = ?`), uin))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Registration{}, fmt.Errorf("store: registration of qq number %d: %w", uin, err)
	}
	return r, nil
}

// Registrations returns every registration, ordered by JID.
func (s *Store) Registrations(ctx context.Context) ([]Registration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+registrationColumns+` FROM registrations ORDER BY jid`)
	if err != nil {
		return nil, fmt.Errorf("store: registrations: %w", err)
	}
	defer rows.Close()
	var out []Registration
	for rows.Next() {
		r, err := scanRegistration(rows)
		if err != nil {
			return nil, fmt.Errorf("store: registrations: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: registrations: %w", err)
	}
	return out, nil
}

// DeleteUser removes the registration of jid with all its contacts and
// queued items (ON DELETE CASCADE); ErrNotFound if jid is not registered.
func (s *Store) DeleteUser(ctx context.Context, jid string) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM registrations WHERE jid = ?`), jid)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: delete user %s: %w", jid, err)
	}
	return nil
}

// affectedOne turns "no row changed" into ErrNotFound.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
