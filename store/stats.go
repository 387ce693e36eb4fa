package store

import (
	"context"
	"fmt"
	"time"
)

// QueueStats reports, for each direction with something queued, how many
// items wait and when the oldest of them was received; a direction with
// nothing queued is in neither map. It reads the whole queue table, which
// is meant to be short: it is for metrics, once per scrape.
func (s *Store) QueueStats(ctx context.Context) (byDir map[Direction]int, oldest map[Direction]time.Time, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT dir, COUNT(*), MIN(received) FROM queue GROUP BY dir`)
	if err != nil {
		return nil, nil, fmt.Errorf("store: queue stats: %w", err)
	}
	defer rows.Close()
	byDir, oldest = map[Direction]int{}, map[Direction]time.Time{}
	for rows.Next() {
		var d, n int
		var first int64
		if err := rows.Scan(&d, &n, &first); err != nil {
			return nil, nil, fmt.Errorf("store: queue stats: %w", err)
		}
		byDir[Direction(d)], oldest[Direction(d)] = n, fromNanos(first)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: queue stats: %w", err)
	}
	return byDir, oldest, nil
}

// RegistrationCount is the number of registered users.
func (s *Store) RegistrationCount(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM registrations`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count registrations: %w", err)
	}
	return n, nil
}
