package qqproto_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
)

// A process that stored the SEQ of a CLTMSG and of a GetMsgEx, lost their
// replies, died, and logged in again with a new Client repeats them with
// the stored SEQs: the message is delivered once and the batch the server
// handed out is received (issue 13, findings 3 and 5).
func TestClientSimStoredSeqsAcrossRestart(t *testing.T) {
	w := newSim(t, qqsim.Account{UIN: 10001, Password: "a"}, qqsim.Account{UIN: 10002, Password: "b"})
	ctx := context.Background()
	a := w.login(t, 10001, "a", qqproto.Options{})
	if err := w.sim.Send(10002, 10001, "fetched before the crash"); err != nil {
		t.Fatal(err)
	}
	seqs := qqproto.NewSeqs() // the gateway's, its values kept on disk
	sendSeq, fetchSeq := seqs.Next(), seqs.Next()
	setFaults(t, w, `{"drop_rate": 1}`)
	var te *qqproto.TransportError
	if err := a.SendMessageSeq(ctx, sendSeq, 10002, "once"); !errors.As(err, &te) {
		t.Fatalf("SendMessageSeq with every reply lost: %v, want a TransportError", err)
	}
	if _, err := a.MessagesSeq(ctx, fetchSeq); !errors.As(err, &te) {
		t.Fatalf("MessagesSeq with every reply lost: %v, want a TransportError", err)
	}
	setFaults(t, w, `{}`)

	b := w.login(t, 10001, "a", qqproto.Options{}) // the restarted process
	if err := b.SendMessageSeq(ctx, sendSeq, 10002, "once"); err != nil {
		t.Fatal(err)
	}
	if in := w.sim.Inbox(10002); len(in) != 1 || in[0].Text != "once" {
		t.Errorf("10002's inbox %+v, want the message exactly once", in)
	}
	got, err := b.MessagesSeq(ctx, fetchSeq)
	if err != nil || len(got) != 1 || got[0].Text != "fetched before the crash" {
		t.Errorf("MessagesSeq with the stored SEQ after re-login = %+v, %v; want the lost batch", got, err)
	}
	if again, err := b.MessagesSeq(ctx, seqs.Next()); err != nil || len(again) != 0 {
		t.Errorf("a fresh GetMsgEx = %+v, %v; want nothing", again, err)
	}
}

// A reply longer than MaxReplyBytes is refused at once, not fetched again
// and again with the same SEQ.
func TestClientReplyTooLargeIsNotRetried(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		calls++
		rw.Write([]byte("VER=1.1&CMD=GETMSGEX&RES=0&MN=1&MT=9,&UN=10002,&MG=" + strings.Repeat("x", qqproto.MaxReplyBytes) + ",&"))
	}))
	defer srv.Close()
	c := qqproto.NewClient(10001, qqproto.Options{Server: srv.URL})
	_, err := c.Messages(context.Background())
	if !errors.Is(err, qqproto.ErrReplyTooLarge) || calls != 1 {
		t.Errorf("Messages of a %d-byte reply: %v after %d requests; want ErrReplyTooLarge after 1", qqproto.MaxReplyBytes, err, calls)
	}
}

// SEQs of a block are consecutive, never 0, never past 31 bits, and never
// handed out twice.
func TestSeqsReserve(t *testing.T) {
	s := qqproto.NewSeqs()
	seen := map[int64]bool{}
	for i := 0; i < 5000; i++ {
		n := 1 + i%7
		first := s.Reserve(n)
		for j := int64(0); j < int64(n); j++ {
			v := first + j
			if v <= 0 || v > 1<<31-1 || seen[v] {
				t.Fatalf("Reserve(%d) gave %d..%d; %d is out of range or repeated", n, first, first+int64(n)-1, v)
			}
			seen[v] = true
		}
	}
}
