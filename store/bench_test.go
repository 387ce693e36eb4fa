package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
)

func openBench(b *testing.B, conns int, synchronous string) *Store {
	b.Helper()
	s, err := open(context.Background(), filepath.Join(b.TempDir(), "bench.db"),
		openOptions{fsys: migrationFiles, conns: conns, synchronous: synchronous})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// enqueueRemove runs b.N messages through s's queue, one at a time: a
// durable Enqueue, then its Remove once delivered.
func enqueueRemove(b *testing.B, s *Store) {
	ctx := context.Background()
	mustRegister(b, s, alice, 10001)
	it := Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "hello, a message of typical length", MsgType: 9}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id, err := s.Enqueue(ctx, it)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Remove(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkEnqueueRemove measures one message through the queue: a durable
// Enqueue, then its Remove once delivered. Sub-benchmarks compare the
// chosen synchronous=NORMAL with FULL (one fsync per commit).
func BenchmarkEnqueueRemove(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("sync="+sync, func(b *testing.B) {
			enqueueRemove(b, openBench(b, maxConns, sync))
		})
	}
}

// BenchmarkEnqueueBatch measures EnqueueBatch of 10 items, the size of a
// busy GetMsgEx reply, written in one transaction.
func BenchmarkEnqueueBatch(b *testing.B) {
	const size = 10
	ctx := context.Background()
	s := openBench(b, maxConns, "")
	mustRegister(b, s, alice, 10001)
	batch := make([]Item, size)
	for i := range batch {
		batch[i] = Item{Dir: ToXMPP, JID: alice, Peer: 20002, Text: "message " + strconv.Itoa(i), MsgType: 9}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.EnqueueBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkEnqueueRemoveParallel runs Enqueue+Remove from many goroutines,
// one user each, to choose the connection pool size (maxConns).
func BenchmarkEnqueueRemoveParallel(b *testing.B) {
	for _, conns := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			ctx := context.Background()
			s := openBench(b, conns, "")
			const users = 64
			for u := 0; u < users; u++ {
				mustRegister(b, s, fmt.Sprintf("u%d@example.org", u), int64(1000+u))
			}
			var next atomic.Int64
			b.SetParallelism(8) // 8 goroutines per core: many sessions at once
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
