//go:build integration

package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"qqxmpp/store/storetest"
)

// pgDurable is a PostgreSQL server with fsync on, started only when a
// benchmark asks for it: pgServer's fsync is off, which would flatter
// every commit.
var pgDurable = storetest.Shared{Options: storetest.Options{Durable: true}}

func openPostgresBench(b *testing.B, conns int) *Store {
	b.Helper()
	s, err := openPostgres(context.Background(), pgDurable.Database(b),
		openOptions{fsys: migrationFiles, conns: conns})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkPostgresEnqueueRemove is BenchmarkEnqueueRemove on PostgreSQL
// over a unix socket, with fsync and synchronous_commit on: each commit
// waits for the WAL on disk.
func BenchmarkPostgresEnqueueRemove(b *testing.B) {
	enqueueRemove(b, openPostgresBench(b, pgMaxConns))
}

// BenchmarkPostgresEnqueueRemoveParallel is BenchmarkEnqueueRemoveParallel
// on PostgreSQL, to choose pgMaxConns: its writers do not share one lock,
// so concurrent commits share the WAL flushes.
func BenchmarkPostgresEnqueueRemoveParallel(b *testing.B) {
	for _, conns := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			ctx := context.Background()
			s := openPostgresBench(b, conns)
			const users = 64
			for u := 0; u < users; u++ {
				mustRegister(b, s, fmt.Sprintf("u%d@example.org", u), int64(1000+u))
			}
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				jid := fmt.Sprintf("u%d@example.org", next.Add(1)%users)
				it := Item{Dir: ToXMPP, JID: jid, Peer: 20002, Text: "hello"}
				for pb.Next() {
					id, err := s.Enqueue(ctx, it)
					if err != nil {
						b.Error(err)
						return
					}
					if err := s.Remove(ctx, id); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
