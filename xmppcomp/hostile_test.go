package xmppcomp_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/internal/wire"
)

// A stanza nested deeper than the reader takes is refused with
// policy-violation and the stream goes on: the next stanza reaches the
// handler on the same connection. Before, the reader failed and the
// component reconnected, taking the transport offline for every user.
func TestTooDeepStanzaIsRefusedAndTheStreamGoesOn(t *testing.T) {
	fs := newFakeServer(t)
	in := newInbox()
	comp, _ := runComponent(t, fs.config(), in)
	sc := fs.accept(t)
	waitConnected(t, comp, 10*time.Second)

	deep := strings.Repeat("<x>", wire.MaxDepth+10) + strings.Repeat("</x>", wire.MaxDepth+10)
	sc.send(t, `<message id="deep1" type="chat" from="mallory@example.org/x" to="10002@`+compDomain+`">`+deep+`</message>`)
	sc.send(t, `<message id="after" type="chat" from="alice@example.org/phone" to="10002@`+compDomain+`"><body>still here</body></message>`)

	got := in.next(t, 10*time.Second, func(st xmppcomp.Stanza) bool { return st.ID == "after" })
	if !strings.Contains(string(got.Raw), "still here") {
		t.Errorf("the stanza after the deep one: %s", got.Raw)
	}
	refusal := sc.next(t)
	if refusal.ID != "deep1" || refusal.Type != "error" || refusal.To.String() != "mallory@example.org/x" ||
		!strings.Contains(string(refusal.Raw), "policy-violation") {
		t.Errorf("refusal of the deep stanza: %s", refusal.Raw)
	}
	if !comp.Connected() {
		t.Error("the component disconnected")
	}
	select {
	case sc2 := <-fs.conns:
		t.Errorf("the component reconnected: %v", sc2.conn.RemoteAddr())
	default:
	}
}

// A stanza larger than Config.MaxStanzaBytes is refused with
// policy-violation and the stream goes on, like a too-deep one: a poison
// stanza must not end the stream for everyone.
func TestTooLargeStanzaIsRefusedAndTheStreamGoesOn(t *testing.T) {
	fs := newFakeServer(t)
	in := newInbox()
	cfg := fs.config()
	cfg.MaxStanzaBytes = 64 << 10
	comp, _ := runComponent(t, cfg, in)
	sc := fs.accept(t)
	waitConnected(t, comp, 10*time.Second)

	sc.send(t, `<message id="big1" type="chat" from="mallory@example.org/x" to="10002@`+compDomain+`"><body>`+
		strings.Repeat("x", 100<<10)+`</body></message>`)
	sc.send(t, `<iq id="big2" type="set" from="mallory@example.org/x" to="`+compDomain+`"><query xmlns="jabber:iq:private">`+
		strings.Repeat("<x>xxxxxxxxxxxxxxxxxxxxxxxxxxxxx</x>", 3000)+`</query></iq>`)
	sc.send(t, `<message id="after" type="chat" from="alice@example.org/phone" to="10002@`+compDomain+`"><body>still here</body></message>`)

	got := in.next(t, 10*time.Second, func(st xmppcomp.Stanza) bool { return st.ID == "after" })
	if !strings.Contains(string(got.Raw), "still here") {
		t.Errorf("the stanza after the large ones: %s", got.Raw)
	}
	for _, id := range []string{"big1", "big2"} {
		refusal := sc.next(t)
		if refusal.ID != id || refusal.Type != "error" || refusal.To.String() != "mallory@example.org/x" ||
			!strings.Contains(string(refusal.Raw), "policy-violation") {
			t.Errorf("refusal of %s: %s", id, refusal.Raw)
		}
	}
	if !comp.Connected() {
		t.Error("the component disconnected")
	}
	select {
	case sc2 := <-fs.conns:
		t.Errorf("the component reconnected: %v", sc2.conn.RemoteAddr())
	default:
	}
}

// A flood of pings to the domain, which the component answers itself,
// while the server reads nothing: the answers wait in a bounded queue,
// not in a goroutine each, the reader goes on, and once the server reads
// again the connection still answers. Before, 5,000 pings left some
// 4,000 goroutines blocked on the stream.
func TestPingFloodHoldsBoundedMemory(t *testing.T) {
	fs := newFakeServer(t)
	in := newInbox()
	comp, _ := runComponent(t, fs.config(), in)
	sc := fs.accept(t)
	waitConnected(t, comp, 10*time.Second)
	base := runtime.NumGoroutine()

	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, `<iq type="get" id="p%d" from="mallory@example.org/x" to="%s"><ping xmlns="urn:xmpp:ping"/></iq>`, i, compDomain)
	}
	// The server reads nothing of the answers meanwhile: the test does
	// not take them from sc.
	b.WriteString(`<message id="after" type="chat" from="alice@example.org/phone" to="10002@` + compDomain + `"><body>x</body></message>`)
	sc.send(t, b.String())
	in.next(t, 10*time.Second, func(st xmppcomp.Stanza) bool { return st.ID == "after" })
	if n := runtime.NumGoroutine() - base; n > 50 {
		t.Errorf("%d more goroutines after a flood of pings", n)
	}

	// The server reads again: a ping is answered once the flood's answers
	// that were kept have gone out (those dropped, dropped for good).
	answered := make(chan string, 1)
	go func() {
		for st := range sc.in {
			if strings.HasPrefix(st.ID, "last") && st.Type == "result" {
				answered <- st.ID
				return
			}
		}
	}()
	for i := 0; ; i++ {
		sc.send(t, fmt.Sprintf(`<iq type="get" id="last%d" from="alice@example.org/phone" to="%s"><ping xmlns="urn:xmpp:ping"/></iq>`, i, compDomain))
		select {
		case <-answered:
			return
		case <-time.After(time.Second):
		}
		if i == 10 {
			t.Fatal("no ping answered after the flood")
		}
	}
}
