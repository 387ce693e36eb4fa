//go:build integration

package xmppcomp_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// With Inline, nothing is read while the Handler handles a stanza: a
// stanza is handled (made durable, for the gateway) before the next one is
// read, so a crash cannot lose one the component had read. Seen from
// outside: a barrier sent while the Handler is busy completes only after
// it returns, since its answer is not read before. Without Inline the
// reader runs ahead, and the barrier completes at once.
func TestInlineReadsNothingWhileHandling(t *testing.T) {
	for _, inline := range []bool{true, false} {
		t.Run(map[bool]string{true: "inline", false: "queued"}[inline], func(t *testing.T) { inlineBarrier(t, inline) })
	}
}

func inlineBarrier(t *testing.T, inline bool) {
	srv := xmpptest.SharedProsody(t, sharedOpts)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var releasedAt atomic.Int64
	h := xmppcomp.HandlerFunc(func(ctx context.Context, st xmppcomp.Stanza) {
		if st.Name != "message" {
			return
		}
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
	})
	comp := startComponent(t, srv, h, func(cfg *xmppcomp.Config) { cfg.Inline = inline })
	ctx := ctxT(t, 20*time.Second)
	alice := srv.NewClient(t, ctx, "inline")
	if err := alice.Encode(ctx, chatMessage{To: "1@" + compDomain, Body: "held"}); err != nil {
		t.Fatal(err)
	}
	<-entered
	barrierAt := make(chan int64, 1)
	go func() {
		err := comp.Barrier(ctx, jid.MustParse(alice.JID.Domainpart()))
		if err != nil {
			t.Errorf("barrier: %v", err)
		}
		barrierAt <- time.Now().UnixNano()
	}()
	time.Sleep(300 * time.Millisecond) // time for the barrier's answer to arrive
	releasedAt.Store(time.Now().UnixNano())
	close(release)
	done := <-barrierAt
	if inline && done < releasedAt.Load() {
		t.Error("Inline: the barrier's answer was read while the Handler was busy")
	}
	if !inline && done > releasedAt.Load() {
		t.Error("queued: the barrier waited for the Handler; the test proves nothing")
	}
}
