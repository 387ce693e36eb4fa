package qqproto_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
)

// The two benchmarks below send the same CLTMSG line to the same emulator
// over loopback HTTP, one through Client and one as a bare POST, so that
// their ratio within one run is what Client adds to a round trip.

// benchSim serves an emulator with the sender 10001 and the recipient
// 10002, whose queue grows by one item per iteration in both benchmarks.
func benchSim(b *testing.B) *simWorld {
	b.Helper()
	return newSim(b, qqsim.Account{UIN: 10001, Password: "a"}, qqsim.Account{UIN: 10002, Password: "b"})
}

const benchText = "你好, how are you & what's new?"

func BenchmarkClientSendMessage(b *testing.B) {
	w := benchSim(b)
	c := w.login(b, 10001, "a", qqproto.Options{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.SendMessage(ctx, 10002, benchText); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawPost(b *testing.B) {
	w := benchSim(b)
	w.login(b, 10001, "a", qqproto.Options{})
	seq := 1 << 20
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq++
		line := "VER=1.1&CMD=CLTMSG&SEQ=" + strconv.Itoa(seq) + "&UIN=10001&UN=10002&MG=" + qqproto.Escape(benchText)
		resp, err := w.hc.Post(w.srv.URL, "text/plain; charset=UTF-8", strings.NewReader(line))
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "&RES=0") {
			b.Fatalf("raw post: %v %s %q", err, resp.Status, body)
		}
	}
}
