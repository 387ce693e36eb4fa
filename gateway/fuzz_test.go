package gateway

// FuzzHandleStanza feeds hostile stanzas (deep, large, odd names, invalid
// UTF-8, odd JIDs) through the real door, HandleStanza, of a gateway on
// the fake QQ seam with alice registered and online (issue 13, "Bounded
// everything"). Whatever comes in, nothing panics, everything the gateway
// sends is well-formed XML, and a message with text from alice to a buddy
// is kept for QQ, sent to it, or answered with an error: never dropped.

import (
	"context"
	"encoding/xml"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// panicHook counts the work items that panicked (the scheduler logs and
// survives them; the fuzz test must not).
type panicHook struct{ n atomic.Int64 }

func (h *panicHook) Levels() []logrus.Level { return []logrus.Level{logrus.ErrorLevel} }
func (h *panicHook) Fire(e *logrus.Entry) error {
	if _, ok := e.Data["panic"]; ok {
		h.n.Add(1)
	}
	return nil
}

// fuzzGateway is a gateway set up once per fuzzing process.
type fuzzGateway struct {
	g      *Gateway
	out    *recorder
	qq     *fakeQQ
	st     *store.Store
	panics *panicHook
}

func newFuzzGateway(f *testing.F) *fuzzGateway {
	qq := newFakeQQ("secret", qqproto.Buddy{UIN: 20001, Nick: "Bob", Status: qqproto.StatusOnline})
	st, err := store.Open(context.Background(), filepath.Join(f.TempDir(), "gw.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	cfg := testConfig("http://127.0.0.1:1/")
	cfg.NewQQ = func(qqproto.UIN) QQ { return qq }
	hook := &panicHook{}
	l := logrus.New()
	l.SetOutput(discard{})
	l.AddHook(hook)
	cfg.Logger = l
	g, err := New(cfg, st)
	if err != nil {
		f.Fatal(err)
	}
	fg := &fuzzGateway{g: g, out: &recorder{t: f}, qq: qq, st: st, panics: hook}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(ctx, fg.out) }()
	f.Cleanup(func() { cancel(); <-done })
	fg.in(f, `<iq type="set" id="reg" from="`+aliceFull+`" to="`+testDomain+`">`+registerForm("10001", "secret")+`</iq>`)
	fg.in(f, `<presence from="`+aliceFull+`" to="`+testDomain+`"/>`)
	fg.quiesce(f)
	if reg, err := st.Registration(context.Background(), aliceBare); err != nil || reg.UIN != 10001 {
		f.Fatalf("alice not registered: %+v %v", reg, err)
	}
	return fg
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (fg *fuzzGateway) in(t testing.TB, raw string) {
	st, err := xmppcomp.ParseStanza([]byte(raw))
	if err != nil {
		t.Fatalf("seed stanza %s: %v", raw, err)
	}
	fg.g.HandleStanza(context.Background(), st)
}

// quiesce waits until the gateway has nothing left to do by its clock.
func (fg *fuzzGateway) quiesce(t testing.TB) {
	deadline := time.Now().Add(waitTimeout)
	for !fg.g.sched.quiet() {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway is still busy after %v", waitTimeout)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// hasText reports whether a message stanza carries a body with text.
func hasText(st xmppcomp.Stanza) bool {
	var m struct {
		Bodies []string `xml:"body"`
	}
	if xml.Unmarshal(st.Raw, &m) != nil {
		return false
	}
	for _, b := range m.Bodies {
		if b != "" {
			return true
		}
	}
	return false
}

func FuzzHandleStanza(f *testing.F) {
	buddy, alice := buddyAddr(20001), aliceFull
	for _, seed := range []string{
		`<message type="chat" id="m1" from="` + alice + `" to="` + buddy + `"><body>hi</body></message>`,
		`<message id="m2" from="` + alice + `" to="` + buddy + `"><body xml:lang="de">a</body><body>b</body></message>`,
		`<message type="chat" id="m3" from="` + alice + `" to="` + buddy + `"><body>` + strings.Repeat("长", 70000) + `</body></message>`,
		`<message type="chat" id="m4" from="` + alice + `" to="` + buddy + `"><body>` + strings.Repeat("<x>", 200) + strings.Repeat("</x>", 200) + `</body></message>`,
		`<message type="groupchat" id="m5" from="` + alice + `" to="` + buddy + `"><body>g</body></message>`,
		`<message type="chat" id="m6" from="` + alice + `" to="notanumber@` + testDomain + `"><body>x</body></message>`,
		`<message type="chat" id="m7" from="` + alice + `" to="` + testDomain + `"><body>help</body></message>`,
		`<message type="chat" id="m8" from="` + alice + `" to="99999999999999999999@` + testDomain + `"><body>x</body></message>`,
		`<message type="chat" id="m9" from="` + alice + `" to="` + buddy + `/res"><body>&#xFFFD;&#x10FFFF;</body></message>`,
		`<iq type="get" id="i1" from="` + alice + `" to="` + buddy + `"><vCard xmlns="vcard-temp"/></iq>`,
		`<iq type="set" id="i2" from="` + alice + `" to="` + testDomain + `"><query xmlns="jabber:iq:register"><remove/></query></iq>`,
		`<iq type="get" id="i3" from="` + alice + `" to="` + testDomain + `"><a:b xmlns:a="urn:odd"/></iq>`,
		`<iq type="set" id="i4" from="` + alice + `" to="` + testDomain + `"><command xmlns="http://jabber.org/protocol/commands" node="sync" action="execute"/></iq>`,
		`<iq type="result" id="i5" from="` + alice + `" to="` + testDomain + `"/>`,
		`<presence from="` + alice + `" to="` + buddy + `" type="subscribe"/>`,
		`<presence from="` + alice + `" to="` + testDomain + `"><show>dnd</show><priority>99999</priority></presence>`,
		`<presence from="mallory@example.org/x" to="` + testDomain + `" type="probe"/>`,
	} {
		f.Add(seed)
	}
	fg := newFuzzGateway(f)
	f.Fuzz(func(t *testing.T, raw string) {
		st, err := xmppcomp.ParseStanza([]byte(raw))
		if err != nil {
			return // the component's reader refuses what does not parse
		}
		fg.out.mu.Lock()
		fg.out.t = t
		before := len(fg.out.got)
		fg.out.mu.Unlock()
		sent := fg.qq.count("CLTMSG")
		queued, err := fg.st.Pending(context.Background(), aliceBare, store.ToQQ)
		if err != nil {
			t.Fatal(err)
		}

		fg.g.HandleStanza(context.Background(), st)
		fg.quiesce(t)

		if n := fg.panics.n.Load(); n > 0 {
			t.Fatalf("%d work items panicked on %s", n, raw)
		}
		if st.Name != "message" || st.From.String() != aliceFull || st.To.Domainpart() != testDomain || st.Type == "error" || st.Type == "headline" ||
			st.To.Localpart() == "" || !hasText(st) {
			return
		}
		for _, out := range fg.out.all()[before:] {
			if out.Name == "message" && out.Type == "error" && out.ID == st.ID {
				return
			}
		}
		now, err := fg.st.Pending(context.Background(), aliceBare, store.ToQQ)
		if err != nil {
			t.Fatal(err)
		}
		if fg.qq.count("CLTMSG") == sent && len(now) == len(queued) {
			t.Fatalf("a message of a registered user was neither sent, kept nor refused: %s", raw)
		}
	})
}
