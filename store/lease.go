package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Lease says which gateway process serves a user, and until when.
type Lease struct {
	JID, Owner string
	Expires    time.Time
}

// AcquireLease gives owner jid's lease until `until` when the lease is
// free, expired at now (expires <= now), or owner's already (then it is
// renewed). held reports whether owner holds it now; when not, cur is the
// lease that stands in the way. ErrNotFound if jid is not registered;
// ErrInvalid if until is not after now.
//
// The take is one statement, so that of two processes racing for a lease
// only one gets it: SQLite serialises writers, and PostgreSQL makes the
// loser of the insert wait for the winner's row and test it.
func (s *Store) AcquireLease(ctx context.Context, jid, owner string, now, until time.Time) (cur Lease, held bool, err error) {
	if err := checkLease(jid, owner, now, until); err != nil {
		return Lease{}, false, err
	}
	cur = Lease{JID: jid}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var exp int64
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO lease (jid, owner, expires) VALUES (?, ?, ?)
			ON CONFLICT (jid) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
			WHERE lease.owner = excluded.owner OR lease.expires <= ?
			RETURNING owner, expires`), jid, owner, nanos(until), nanos(now)).Scan(&cur.Owner, &exp)
		if errors.Is(err, sql.ErrNoRows) {
			// Another's live lease. Read in the same transaction, which
			// holds the row locked, so cur is the lease that refused.
			err = tx.QueryRowContext(ctx, s.q(`SELECT owner, expires FROM lease WHERE jid = ?`), jid).Scan(&cur.Owner, &exp)
		}
		cur.Expires = fromNanos(exp)
		return err
	})
	if err != nil {
		return Lease{}, false, fmt.Errorf("store: acquire the lease of %s for %s: %w", jid, owner, noUser(unwritable(err)))
	}
	return cur, cur.Owner == owner, nil
}

// RenewLeases extends every lease owner holds and that is still live at
// now to until, and returns their JIDs, sorted. A lease that lapsed (the
// process stalled past its expiry) or that owner released is not taken
// back: another process may be taking it over, and the session that had
// it must stop.
func (s *Store) RenewLeases(ctx context.Context, owner string, now, until time.Time) ([]string, error) {
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`UPDATE lease SET expires = ? WHERE owner = ? AND expires > ? RETURNING jid`), nanos(until), owner, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("store: renew the leases of %s: %w", owner, unwritable(err))
	}
	defer rows.Close()
	var jids []string
	for rows.Next() {
		var jid string
		if err := rows.Scan(&jid); err != nil {
			return nil, fmt.Errorf("store: renew the leases of %s: %w", owner, err)
		}
		jids = append(jids, jid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: renew the leases of %s: %w", owner, unwritable(err))
	}
	// RETURNING has no order; compare as bytes, as ORDER BY jid does.
	slices.Sort(jids)
	return jids, nil
}

// ReleaseLease ends owner's lease on jid at now: the row stays, with
// expires = now, so that LeasesExpired reports it to the other processes.
// No error if owner does not hold it. A lease already expired keeps its
// expiry, so that it is not reported a second time.
func (s *Store) ReleaseLease(ctx context.Context, jid, owner string, now time.Time) error {
	if err := checkJID(jid); err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE lease SET expires = ? WHERE jid = ? AND owner = ? AND expires > ?`),
		nanos(now), jid, owner, nanos(now))
	if err != nil {
		return fmt.Errorf("store: release the lease of %s by %s: %w", jid, owner, unwritable(err))
	}
	return nil
}

// releaseLeases ends every live lease of an owner (LeaveCluster).
const releaseLeases = `UPDATE lease SET expires = ? WHERE owner = ? AND expires > ?`

// LeasesExpired returns the leases whose expiry is in (after, upTo], by
// expiry (then JID): the users whose process died or let go in that
// interval. Successive calls with adjoining intervals see each expiry once.
func (s *Store) LeasesExpired(ctx context.Context, after, upTo time.Time) ([]Lease, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT jid, owner, expires FROM lease
		WHERE expires > ? AND expires <= ? ORDER BY expires, jid`), nanos(after), nanos(upTo))
	if err != nil {
		return nil, fmt.Errorf("store: expired leases: %w", err)
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		var l Lease
		var exp int64
		if err := rows.Scan(&l.JID, &l.Owner, &exp); err != nil {
			return nil, fmt.Errorf("store: expired leases: %w", err)
		}
		l.Expires = fromNanos(exp)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: expired leases: %w", err)
	}
	return out, nil
}

// Lease returns jid's lease, expired or not; ErrNotFound if it has none.
func (s *Store) Lease(ctx context.Context, jid string) (Lease, error) {
	l := Lease{JID: jid}
	var exp int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT owner, expires FROM lease WHERE jid = ?`), jid).Scan(&l.Owner, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Lease{}, fmt.Errorf("store: lease of %s: %w", jid, err)
	}
	l.Expires = fromNanos(exp)
	return l, nil
}

func checkLease(jid, owner string, now, until time.Time) error {
	if err := checkJID(jid); err != nil {
		return err
	}
	if err := checkOwner(owner); err != nil {
		return err
	}
	if !until.After(now) {
		return invalid("store: lease of %s until %v: not after now (%v)", jid, until, now)
	}
	return nil
}

// checkOwner: an empty owner would be one every process shares.
func checkOwner(owner string) error {
	if owner == "" {
		return invalid("store: empty lease owner")
	}
	return nil
}

// Process is one gateway process sharing the database.
type Process struct {
	Owner   string
	Expires time.Time
	Slots   int // balanced component connections it holds (ClaimSlot)
}

// BeatProcess records that owner is alive until `until`: a new row with
// no slots, or the existing one's expiry, its slots unchanged.
func (s *Store) BeatProcess(ctx context.Context, owner string, until time.Time) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.q(beatProcess), owner, nanos(until)); err != nil {
		return fmt.Errorf("store: beat process %s: %w", owner, unwritable(err))
	}
	return nil
}

const beatProcess = `INSERT INTO gateway_process (owner, expires) VALUES (?, ?)
	ON CONFLICT (owner) DO UPDATE SET expires = excluded.expires`

// Processes returns the processes alive at now (expires > now), sorted by
// owner.
func (s *Store) Processes(ctx context.Context, now time.Time) ([]Process, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT owner, expires, slots FROM gateway_process
		WHERE expires > ? ORDER BY owner`), nanos(now))
	if err != nil {
		return nil, fmt.Errorf("store: processes: %w", err)
	}
	defer rows.Close()
	var out []Process
	for rows.Next() {
		var p Process
		var exp int64
		if err := rows.Scan(&p.Owner, &exp, &p.Slots); err != nil {
			return nil, fmt.Errorf("store: processes: %w", err)
		}
		p.Expires = fromNanos(exp)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: processes: %w", err)
	}
	return out, nil
}

// ClaimSlot gives owner one more of total slots when the live processes
// (expires > now, owner's own row counted whatever its expiry) hold fewer
// than total together, and reports whether it did. Either way it beats
// owner until `until`. The slots of a process that expired are free: a
// process that outlived its row's expiry must count its own as lost.
//
// Counting and claiming are one transaction that no other ClaimSlot runs
// beside: on SQLite the write lock taken at BEGIN (_txlock=immediate), on
// PostgreSQL a table lock that conflicts with itself, since row locks
// cannot keep out a row not yet inserted.
func (s *Store) ClaimSlot(ctx context.Context, owner string, total int, now, until time.Time) (bool, error) {
	if err := checkOwner(owner); err != nil {
		return false, err
	}
	if total < 0 {
		return false, invalid("store: claim one of %d slots: a negative total", total)
	}
	var claimed bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		claimed, err = s.claimSlot(ctx, tx, owner, total, now, until)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: claim a slot for %s: %w", owner, unwritable(err))
	}
	return claimed, nil
}

func (s *Store) claimSlot(ctx context.Context, tx *sql.Tx, owner string, total int, now, until time.Time) (bool, error) {
	if s.pg {
		if _, err := tx.ExecContext(ctx, `LOCK TABLE gateway_process IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return false, err
		}
	}
	var held int
	err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(slots), 0) FROM gateway_process
		WHERE expires > ? OR owner = ?`), nanos(now), owner).Scan(&held)
	if err != nil {
		return false, err
	}
	if held >= total {
		_, err := tx.ExecContext(ctx, s.q(beatProcess), owner, nanos(until))
		return false, err
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO gateway_process (owner, expires, slots) VALUES (?, ?, 1)
		ON CONFLICT (owner) DO UPDATE SET expires = excluded.expires, slots = gateway_process.slots + 1`),
		owner, nanos(until))
	return err == nil, err
}

// ReleaseSlot gives one of owner's slots back; none is left as none.
func (s *Store) ReleaseSlot(ctx context.Context, owner string) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE gateway_process SET slots = slots - 1 WHERE owner = ? AND slots > 0`), owner)
	if err != nil {
		return fmt.Errorf("store: release a slot of %s: %w", owner, unwritable(err))
	}
	return nil
}

// LeaveCluster removes owner's process row, its slots with it, and
// releases its leases at now, in one transaction: a clean stop.
func (s *Store) LeaveCluster(ctx context.Context, owner string, now time.Time) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM gateway_process WHERE owner = ?`), owner); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(releaseLeases), nanos(now), owner, nanos(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %s leaving the cluster: %w", owner, unwritable(err))
	}
	return nil
}
