//go:build integration

package xmppcomp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// Throughput of stanzas from the component to a logged-in client, beside
// the same traffic from one client to another on the same server, in the
// same run: the ratio says what the component path costs relative to the
// server's own c2s routing. Sender and receiver run concurrently (the
// server queues); a stanza counts when the client has read it.
//
//	go test ./xmppcomp -run '^$' -bench . -benchtime 5000x
func BenchmarkComponentToClient(b *testing.B) {
	benchKinds(b, func(b *testing.B, srv *xmpptest.Server) {
		comp := startComponent(b, srv, xmppcomp.HandlerFunc(func(context.Context, xmppcomp.Stanza) {}), nil)
		to := login(b, srv, "bench-to")
		from := "10000@" + compDomain
		run(b, to, from, func(ctx context.Context, i int) error {
			return comp.Encode(ctx, chatMessage{From: from, To: to.JID.String(), Type: "chat", Body: fmt.Sprint("message number ", i)})
		})
	})
}

func BenchmarkClientToClient(b *testing.B) {
	benchKinds(b, func(b *testing.B, srv *xmpptest.Server) {
		to := login(b, srv, "bench-to")
		sender := login(b, srv, "bench-from")
		run(b, to, sender.JID.String(), func(ctx context.Context, i int) error {
			return sender.Encode(ctx, chatMessage{To: to.JID.String(), Type: "chat", Body: fmt.Sprint("message number ", i)})
		})
	})
}

func benchKinds(b *testing.B, f func(*testing.B, *xmpptest.Server)) {
	xmpptest.EachKind(b, func(b *testing.B, kind string) { f(b, xmpptest.Shared(b, kind, sharedOpts)) })
}

func login(b *testing.B, srv *xmpptest.Server, user string) *xmpptest.Client {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := srv.NewClient(b, ctx, user)
	if err := c.SendPresence(ctx); err != nil {
		b.Fatal(err)
	}
	return c
}

func run(b *testing.B, to *xmpptest.Client, from string, send func(context.Context, int) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	match := func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.From.String() == from }
	b.ResetTimer()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		for i := range b.N {
			if err := send(ctx, i); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range b.N {
		if _, err := to.Next(ctx, match); err != nil {
			b.Fatalf("message %d of %d: %v", i, b.N, err)
		}
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "stanzas/s")
}
