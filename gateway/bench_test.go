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
// scheduled. Run with -benchmem; B/session is the heap per user.
func BenchmarkIdleSessions(b *testing.B) {
	const (
		sessions = 10000
		buddies  = 20
	)
	st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	var total uint64
	for i := 0; i < b.N; i++ {
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
		for j := 0; j < sessions; j++ {
			bare := jid.MustParse(fmt.Sprintf("user%d@example.org", j))
			s := newSession(g, bare)
			s.loaded = true
			s.setRegistration(&store.Registration{JID: s.key, UIN: int64(100000 + j)})
			s.res.set("phone", 0, true, &presenceIn{}, 1)
			s.link.state = stateOnline
			s.link.status = qqproto.StatusOnline
			for k := 0; k < buddies; k++ {
				bd := s.buddy(qqproto.UIN(200000 + k))
				bd.nick, bd.listed, bd.status = "好友昵称", true, qqproto.StatusOnline
				bd.record(presenceFor(bd))
			}
			g.sessions[s.key] = s
			s.link.nextMsg = now.Add(time.Hour)
			s.link.nextStat = now.Add(time.Hour)
			s.reschedule()
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		total += ms1.HeapAlloc - ms0.HeapAlloc
		cancel()
		g.sched.wait()
		runtime.KeepAlive(g)
	}
	b.ReportMetric(float64(total)/float64(b.N)/sessions, "B/session")
}
