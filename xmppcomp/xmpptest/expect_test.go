package xmpptest

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"qqxmpp/xmppcomp"
)

func parseStanza(t *testing.T, raw string) xmppcomp.Stanza {
	t.Helper()
	st, err := xmppcomp.ParseStanza([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestMatchers(t *testing.T) {
	avail := parseStanza(t, `<presence from="10001@qq.localhost/qq"/>`)
	sub := parseStanza(t, `<presence from="qq.localhost" type="subscribe"/>`)
	msg := parseStanza(t, `<message from="alice@localhost/phone" type="chat"><body>hi</body></message>`)
	res := parseStanza(t, `<iq from="localhost" type="result" id="r1"/>`)
	iqErr := parseStanza(t, `<iq from="localhost" type="error" id="r2"/>`)
	for _, tc := range []struct {
		name  string
		match func(xmppcomp.Stanza) bool
		st    xmppcomp.Stanza
		want  bool
	}{
		{"bare JID, any resource", PresenceFrom("10001@qq.localhost", ""), avail, true},
		{"full JID", PresenceFrom("10001@qq.localhost/qq", ""), avail, true},
		{"other resource", PresenceFrom("10001@qq.localhost/other", ""), avail, false},
		{"a domain is not its users", PresenceFrom("qq.localhost", ""), avail, false},
		{"other type", PresenceFrom("10001@qq.localhost", "unavailable"), avail, false},
		{"domain", PresenceFrom("qq.localhost", "subscribe"), sub, true},
		{"presence is no message", MessageFrom("qq.localhost"), sub, false},
		{"message", MessageFrom("alice@localhost"), msg, true},
		{"message from someone else", MessageFrom("bob@localhost"), msg, false},
		{"result", IQResult("r1"), res, true},
		{"other id", IQResult("r2"), res, false},
		{"an error is no result", IQResult("r2"), iqErr, false},
	} {
		if got := tc.match(tc.st); got != tc.want {
			t.Errorf("%s: matched %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Expect's failure names what was awaited and shows what came instead.
func TestExpectFailure(t *testing.T) {
	c := &Client{notify: make(chan struct{}), done: make(chan struct{}), readErr: errors.New("server closed the stream")}
	c.buf = []xmppcomp.Stanza{parseStanza(t, `<message from="bob@localhost"><body>not this</body></message>`)}
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Expect(r, context.Background(), "Alice's hello", MessageFrom("alice@localhost"))
		t.Error("Expect returned without a matching stanza")
	}()
	<-done
	for _, want := range []string{"Alice's hello", "server closed the stream", "not this"} {
		if !strings.Contains(r.fatal, want) {
			t.Errorf("failure %q lacks %q", r.fatal, want)
		}
	}
	c.buf = append(c.buf, parseStanza(t, `<message from="alice@localhost/x"><body>hello</body></message>`))
	if st := c.Expect(t, context.Background(), "Alice's hello", MessageFrom("alice@localhost")); !strings.Contains(st.String(), "hello") {
		t.Errorf("Expect = %s", st)
	}
}

func TestUserName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9.-]+-[a-z2-7]{8}$`)
	a, b := UserName("TestFoo/sub_test #1"), UserName("TestFoo/sub_test #1")
	if a == b || !valid.MatchString(a) || !strings.HasPrefix(a, "testfoo-sub-test--1-") {
		t.Errorf("UserName = %q, %q; want distinct names testfoo-sub-test--1-XXXXXXXX", a, b)
	}
	if long := UserName(strings.Repeat("x", 500)); len(long) > 60 {
		t.Errorf("UserName of a long name has %d bytes", len(long))
	}
	if u := UserName("旅行"); !valid.MatchString(u) {
		t.Errorf("UserName(旅行) = %q", u)
	}
}
