package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"qqxmpp/qqproto"
	"qqxmpp/store"
)

// BenchmarkIdleSessions measures what 10,000 logged-in, idle users cost
// the gateway in memory: a session with 20 buddies each, its poll
// scheduled, and the same with 60 buddies. B/session is the heap per user
// with 20 buddies; B/buddy is what each further buddy adds. Each buddy has
// a nickname of its own, as an import from QQ gives it.
func BenchmarkIdleSessions(b *testing.B) {
	const sessions = 10000
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var with20, with60 uint64
	for i := 0; i < b.N; i++ {
		with20 += idleSessionsHeap(b, st, sessions, 20)
		with60 += idleSessionsHeap(b, st, sessions, 60)
	}
	b.ReportMetric(float64(with20)/float64(b.N)/sessions, "B/session")
	b.ReportMetric((float64(with60)-float64(with20))/float64(b.N)/sessions/40, "B/buddy")
}

// idleSessionsHeap is the live heap of n idle sessions with the given
// number of buddies, each listed, online and shown.
func idleSessionsHeap(b *testing.B, st *store.Store, n, buddies int) uint64 {
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cfg := DefaultConfig(testDomain)
	cfg.Logger = quietLogger()
	g, err := New(cfg, st)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.sched.start(ctx)
	now := time.Now()
	for j := 0; j < n; j++ {
		bare := jid.MustParse(fmt.Sprintf("user%d@example.org", j))
		s := newSession(g, bare)
		s.loaded = true
		s.setRegistration(&store.Registration{JID: s.key, UIN: int64(100000 + j)})
		s.res.set("phone", 0, true, &presenceIn{}, 1)
		s.link.state = stateOnline
		s.link.status = qqproto.StatusOnline
		s.buddies.reserve(buddies)
		for k := 0; k < buddies; k++ {
			bd := s.buddy(qqproto.UIN(200000 + k))
			s.buddies.setProfile(bd, fmt.Sprintf("好友%d", j*buddies+k), k)
			bd.setListed(true)
			bd.setState(qqproto.StatusOnline)
			bd.record(s.buddies.presence(bd))
		}
		s.buddies.fit()
		g.sessions[s.key] = s
		s.link.nextMsg = now.Add(time.Hour)
		s.link.nextStat = now.Add(time.Hour)
		s.reschedule()
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	cancel()
	g.sched.wait()
	runtime.KeepAlive(g)
	return ms1.HeapAlloc - ms0.HeapAlloc
}
