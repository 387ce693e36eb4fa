package qqsim

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

// outcome posts body and classifies what came back: "ok", "500",
// "garbage" (200 but not a QQ line), or "drop" (no reply at all).
func (m *sim) outcome(body string) (string, qqproto.Fields) {
	m.t.Helper()
	resp, err := http.Post(m.srv.URL+"/", "text/plain; charset=UTF-8", strings.NewReader(body))
	if err != nil {
		return "drop", nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "drop", nil
	}
	if resp.StatusCode == http.StatusInternalServerError {
		return "500", nil
	}
	if resp.StatusCode != http.StatusOK {
		m.t.Fatalf("%s: HTTP %d %s", body, resp.StatusCode, b)
	}
	f, err := qqproto.Parse(string(b))
	if err != nil {
		return "garbage", nil
	}
	if _, err := qqproto.ReadHeader(f); err != nil {
		return "garbage", nil
	}
	return "ok", f
}

// faultRun sends 300 distinct messages once each under the given faults
// and returns the outcome sequence.
func faultRun(t *testing.T, f Faults) []string {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(alice)
	if err := m.s.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range 300 {
		o, _ := m.outcome(fmt.Sprintf("VER=1.1&CMD=CLTMSG&SEQ=%d&UIN=10001&UN=10002&MG=m%d", 5000+i, i))
		out = append(out, o)
	}
	return out
}

func TestFaultsDeterministic(t *testing.T) {
	f := Faults{ErrorRate: 0.1, GarbageRate: 0.1, DropRate: 0.1, Seed: 42}
	a, b := faultRun(t, f), faultRun(t, f)
	if strings.Join(a, " ") != strings.Join(b, " ") {
		t.Fatal("the same seed gave different faults")
	}
	f.Seed = 43
	if c := faultRun(t, f); strings.Join(a, " ") == strings.Join(c, " ") {
		t.Error("another seed gave the same faults")
	}
	counts := map[string]int{}
	for _, o := range a {
		counts[o]++
	}
	for _, k := range []string{"500", "garbage", "drop"} {
		if counts[k] < 12 || counts[k] > 60 { // expected 30 of 300
			t.Errorf("%s: %d of 300 at rate 0.1 (%v)", k, counts[k], counts)
		}
	}
}

func TestFaultKinds(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(alice)
	set := func(f Faults) {
		t.Helper()
		if err := m.s.SetFaults(f); err != nil {
			t.Fatal(err)
		}
	}

	// HTTP 500: not executed.
	set(Faults{ErrorRate: 1})
	if o, _ := m.outcome("VER=1.1&CMD=CLTMSG&SEQ=1&UIN=10001&UN=10002&MG=lost"); o != "500" {
		t.Fatalf("ErrorRate=1: %s", o)
	}
	if n := len(m.s.Inbox(bob)); n != 0 {
		t.Fatalf("a 500 executed the command: bob has %d", n)
	}

	// Dropped connection: executed, reply remembered; the retry with the
	// same SEQ gets it and the message is not sent twice.
	set(Faults{DropRate: 1})
	req := "VER=1.1&CMD=CLTMSG&SEQ=2&UIN=10001&UN=10002&MG=once"
	if o, _ := m.outcome(req); o != "drop" {
		t.Fatalf("DropRate=1: %s", o)
	}
	set(Faults{})
	o, f := m.outcome(req)
	if o != "ok" || res(f) != 0 {
		t.Fatalf("retry after drop: %s %v", o, f)
	}
	if in := m.s.Inbox(bob); len(in) != 1 || in[0].Text != "once" {
		t.Fatalf("after drop and retry bob has %+v", in)
	}
	recs := m.s.Requests(alice)
	if r := recs[len(recs)-1]; !r.Replayed {
		t.Errorf("retry was not answered from memory: %+v", r)
	}
	if r := recs[len(recs)-2]; !r.Executed || r.Fault != "drop" {
		t.Errorf("dropped request record: %+v", r)
	}

	// Garbage: executed; both kinds of garbage fail the codec.
	set(Faults{GarbageRate: 1})
	kinds := map[string]bool{}
	for i := range 40 {
		_, body := m.raw("text/plain", fmt.Sprintf("VER=1.1&CMD=CLTMSG&SEQ=%d&UIN=10001&UN=10002&MG=g", 100+i))
		if _, err := qqproto.Parse(body); !errors.Is(err, qqproto.ErrMalformed) {
			t.Fatalf("garbage %q parses", body)
		}
		kinds[body[:5]] = true
	}
	if len(kinds) != 2 {
		t.Errorf("garbage kinds seen: %v", kinds)
	}
	if n := len(m.s.Inbox(bob)); n != 41 {
		t.Errorf("garbage replies: bob has %d, want 41", n)
	}
	st := m.s.Stats()
	if st.Errors != 1 || st.Drops != 1 || st.Garbage != 40 || st.Replayed != 1 {
		t.Errorf("stats %+v", st)
	}

	// Latency.
	set(Faults{LatencyMS: 60})
	start := time.Now()
	m.msgs(alice)
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("LatencyMS=60 answered in %v", d)
	}
	// Control API calls are never faulted.
	set(Faults{ErrorRate: 1})
	if err := m.s.Send(carol, bob, "x"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(m.srv.URL + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("control API under faults: HTTP %d", resp.StatusCode)
	}
}

// TestFaultsRetryLosesNothing: a client that retries with the same SEQ until
// it has a reply delivers every message exactly once, in order, under 30 %
// faults of every kind.
func TestFaultsRetryLosesNothing(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(alice)
	m.login(bob)
	if err := m.s.SetFaults(Faults{ErrorRate: 0.1, GarbageRate: 0.1, DropRate: 0.1, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	retry := func(body string) qqproto.Fields {
		for range 50 {
			if o, f := m.outcome(body); o == "ok" {
				return f
			}
		}
		t.Fatalf("no reply after 50 attempts: %s", body)
		return nil
	}
	const n = 100
	var got []string
	for i := range n {
		retry(fmt.Sprintf("VER=1.1&CMD=CLTMSG&SEQ=%d&UIN=10001&UN=10002&MG=msg%d", 10+i, i))
		if i%7 == 0 {
			f := retry(fmt.Sprintf("VER=1.1&CMD=GetMsgEx&SEQ=%d&UIN=10002", 500+i))
			ms, err := qqproto.ReadMessages(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range ms {
				got = append(got, x.Text)
			}
		}
	}
	for i := 0; len(got) < n && i < 20; i++ {
		ms, _ := qqproto.ReadMessages(retry(fmt.Sprintf("VER=1.1&CMD=GetMsgEx&SEQ=%d&UIN=10002", 900+i)))
		for _, x := range ms {
			got = append(got, x.Text)
		}
	}
	if len(got) != n {
		t.Fatalf("bob fetched %d messages, want %d", len(got), n)
	}
	for i, g := range got {
		if g != fmt.Sprintf("msg%d", i) {
			t.Fatalf("message %d is %q", i, g)
		}
	}
	if st := m.s.Stats(); st.Errors == 0 || st.Drops == 0 || st.Garbage == 0 || st.Replayed == 0 {
		t.Errorf("faults did not all happen: %+v", st)
	}
}

func TestFaultsValidation(t *testing.T) {
	s := New(Options{})
	for _, c := range []struct {
		f     Faults
		field string
	}{
		{Faults{ErrorRate: -0.1}, "error_rate"},
		{Faults{GarbageRate: 1.5}, "garbage_rate"},
		{Faults{DropRate: 0.6, ErrorRate: 0.6}, "drop_rate"},
		{Faults{LatencyMS: -1}, "latency_ms"},
	} {
		err := s.SetFaults(c.f)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want an error naming %s", c.f, err, c.field)
		}
	}
}
