package xmpptest

import (
	"context"
	crand "crypto/rand"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"qqxmpp/xmppcomp"
)

// Expect is Next for a test: it returns the first received stanza matching
// match, oldest first, waiting for it until ctx ends, and otherwise fails
// the test with what (a description of the awaited stanza, such as "Bob's
// subscribe") and the stanzas that were received instead. Like t.Fatal,
// call it from the test's goroutine.
func (c *Client) Expect(t testing.TB, ctx context.Context, what string, match func(xmppcomp.Stanza) bool) xmppcomp.Stanza {
	t.Helper()
	st, err := c.Next(ctx, match)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return st
}

// SendXML sends the stanza fmt.Sprintf(format, args...) and fails the test
// if it cannot be sent. The arguments are not escaped: %q quotes a JID
// well enough for an attribute.
//
//	alice.SendXML(t, ctx, `<presence to=%q type="subscribed"/>`, buddy)
func (c *Client) SendXML(t testing.TB, ctx context.Context, format string, args ...any) {
	t.Helper()
	text := fmt.Sprintf(format, args...)
	if err := c.Send(ctx, xml.NewDecoder(strings.NewReader(text))); err != nil {
		t.Fatalf("sending %s: %v", text, err)
	}
}

// PresenceFrom matches a presence of type typ ("" for available) from the
// address from: a full JID matches only itself, a bare JID or a domain
// matches any resource of it.
func PresenceFrom(from, typ string) func(xmppcomp.Stanza) bool {
	is := sender(from)
	return func(st xmppcomp.Stanza) bool { return st.Name == "presence" && st.Type == typ && is(st.From) }
}

// MessageFrom matches a message of any type from the address from, which
// is matched as by PresenceFrom.
func MessageFrom(from string) func(xmppcomp.Stanza) bool {
	is := sender(from)
	return func(st xmppcomp.Stanza) bool { return st.Name == "message" && is(st.From) }
}

// IQResult matches the result answering the iq with this id. An error
// answer does not match; Expect's failure then shows it.
func IQResult(id string) func(xmppcomp.Stanza) bool {
	return func(st xmppcomp.Stanza) bool { return st.Name == "iq" && st.Type == "result" && st.ID == id }
}

// sender returns whether a stanza's from is the address from. An address
// that is not a JID is a mistake in the test, not a stanza that never comes.
func sender(from string) func(jid.JID) bool {
	want, err := jid.Parse(from)
	if err != nil {
		panic(fmt.Sprintf("xmpptest: %q is not a JID: %v", from, err))
	}
	if want.Resourcepart() != "" {
		return want.Equal
	}
	return func(j jid.JID) bool { return j.Bare().Equal(want) }
}

// UserName returns a user name for CreateUser that no other test and no
// earlier run has used: name (say t.Name()), lower-cased, with what is not
// a letter, digit, '.' or '-' turned into '-', and a random suffix. Users
// of a shared server outlive the test (go test -count=2), and a reused
// name would bring its roster and registrations along.
func UserName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		b.WriteString("user")
	}
	return b.String() + "-" + strings.ToLower(crand.Text()[:8])
}
