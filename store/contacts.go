package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Subscription is the state of presence subscription between a user and one
// of their QQ contacts, from the user's point of view.
type Subscription int

const (
	None       Subscription = iota // neither side subscribed
	PendingOut                     // the user asked the contact; no answer yet
	PendingIn                      // the contact asked the user; no answer yet
	Both                           // mutual
)

func (s Subscription) String() string {
	switch s {
	case None:
		return "none"
	case PendingOut:
		return "pending-out"
	case PendingIn:
		return "pending-in"
	case Both:
		return "both"
	}
	return "Subscription(" + strconv.Itoa(int(s)) + ")"
}

func (s Subscription) valid() bool { return None <= s && s <= Both }

// Contact is one QQ buddy in a user's list.
type Contact struct {
	UIN     int64
	Nick    string
	Face    int // QQ avatar index
	Sub     Subscription
	Updated time.Time // set by the store on every put
}

func checkContact(c Contact) error {
	if err := checkUIN("contact", c.UIN); err != nil {
		return err
	}
	if !c.Sub.valid() {
		return invalid("store: contact %d: unknown subscription %v", c.UIN, c.Sub)
	}
	return nil
}

const upsertContact = `
	INSERT INTO contacts (jid, uin, nick, face, sub, updated) VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (jid, uin) DO UPDATE SET nick = excluded.nick, face = excluded.face, sub = excluded.sub, updated = excluded.updated`

// PutContact inserts or replaces contact c of jid. ErrNotFound if jid is not
// registered.
func (s *Store) PutContact(ctx context.Context, jid string, c Contact) error {
	if err := checkJID(jid); err != nil {
		return err
	}
	if err := checkContact(c); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(upsertContact), jid, c.UIN, s.str(c.Nick), c.Face, int(c.Sub), nanos(s.now()))
	if err != nil {
		return fmt.Errorf("store: put contact %d of %s: %w", c.UIN, jid, noUser(err))
	}
	return nil
}

// PutContacts inserts or replaces all of cs for jid in one transaction:
// either all are written or none. Contacts not in cs are kept. ErrNotFound if
// jid is not registered.
func (s *Store) PutContacts(ctx context.Context, jid string, cs []Contact) error {
	if err := checkJID(jid); err != nil {
		return err
	}
	for _, c := range cs {
		if err := checkContact(c); err != nil {
			return err
		}
	}
	if len(cs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.q(upsertContact))
		if err != nil {
			return err
		}
		defer stmt.Close()
		now := nanos(s.now())
		for _, c := range cs {
			if _, err := stmt.ExecContext(ctx, jid, c.UIN, s.str(c.Nick), c.Face, int(c.Sub), now); err != nil {
				return fmt.Errorf("contact %d: %w", c.UIN, noUser(err))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put %d contacts of %s: %w", len(cs), jid, err)
	}
	return nil
}

const contactColumns = `uin, nick, face, sub, updated`

func scanContact(row interface{ Scan(...any) error }) (Contact, error) {
	var c Contact
	var sub int
	var updated int64
	if err := row.Scan(&c.UIN, &c.Nick, &c.Face, &sub, &updated); err != nil {
		return Contact{}, err
	}
	c.Sub, c.Updated = Subscription(sub), fromNanos(updated)
	return c, nil
}

// Contacts returns the contacts of jid ordered by UIN; none (and no error)
// for a JID that is not registered.
func (s *Store) Contacts(ctx context.Context, jid string) ([]Contact, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+contactColumns+` FROM contacts WHERE jid = ? ORDER BY uin`), jid)
	if err != nil {
		return nil, fmt.Errorf("store: contacts of %s: %w", jid, err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, fmt.Errorf("store: contacts of %s: %w", jid, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: contacts of %s: %w", jid, err)
	}
	return out, nil
}

// Contact returns contact uin of jid, or ErrNotFound.
func (s *Store) Contact(ctx context.Context, jid string, uin int64) (Contact, error) {
	c, err := scanContact(s.db.QueryRowContext(ctx,
		s.q(`SELECT `+contactColumns+` FROM contacts WHERE jid = ? AND uin = ?`), jid, uin))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Contact{}, fmt.Errorf("store: contact %d of %s: %w", uin, jid, err)
	}
	return c, nil
}

// DeleteContact removes contact uin of jid; ErrNotFound if there is none.
func (s *Store) DeleteContact(ctx context.Context, jid string, uin int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM contacts WHERE jid = ? AND uin = ?`), jid, uin)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("store: delete contact %d of %s: %w", uin, jid, err)
	}
	return nil
}

// noUser turns a foreign key violation (the JID is not registered) into
// ErrNotFound.
func noUser(err error) error {
	if isForeignKey(err) {
		return fmt.Errorf("user is not registered: %w", ErrNotFound)
	}
	return err
}
