package gateway

import (
	"crypto/sha1"
	"encoding/xml"
	"sort"
	"testing"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"

	"qqxmpp/qqproto/qqsim"
)

type discoResult struct {
	Query struct {
		Identities []struct {
			Category string `xml:"category,attr"`
			Type     string `xml:"type,attr"`
			Name     string `xml:"name,attr"`
		} `xml:"identity"`
		Features []struct {
			Var string `xml:"var,attr"`
		} `xml:"feature"`
	} `xml:"http://jabber.org/protocol/disco#info query"`
}

func (d discoResult) features() []string {
	var out []string
	for _, f := range d.Query.Features {
		out = append(out, f.Var)
	}
	sort.Strings(out)
	return out
}

func TestDiscoInfoOfTheDomain(t *testing.T) {
	h := newHarness(t, qqsim.Options{})
	ans := h.iq("get", testDomain, `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	if ans.Type != "result" {
		t.Fatalf("disco#info: %s", ans)
	}
	var d discoResult
	if err := ans.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if len(d.Query.Identities) != 1 || d.Query.Identities[0].Category != "gateway" || d.Query.Identities[0].Type != "qq" || d.Query.Identities[0].Name == "" {
		t.Errorf("identities %+v, want one gateway/qq with a name", d.Query.Identities)
	}
	have := map[string]bool{}
	for _, f := range d.features() {
		have[f] = true
	}
	for _, want := range []string{"jabber:iq:register", "jabber:iq:gateway", "vcard-temp", "urn:xmpp:ping", "jabber:iq:version", "http://jabber.org/protocol/disco#info"} {
		if !have[want] {
			t.Errorf("feature %s missing from %v", want, d.features())
		}
	}
	if ans.From.String() != testDomain || ans.To.String() != aliceFull {
		t.Errorf("answer from %s to %s", ans.From, ans.To)
	}
}

func TestDiscoInfoOfABuddyIsAContact(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, qqsim.Account{UIN: 10001, Password: "secret", Nick: "Alice"})
	// Unregistered: a buddy JID asks for registration first.
	ans := h.iq("get", buddyAddr(20001), `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	if cond, typ, _ := stanzaErr(t, ans); ans.Type != "error" || cond != "registration-required" || typ != "auth" {
		t.Fatalf("unregistered disco of a buddy: %s", ans)
	}
	h.register("10001", "secret")
	ans = h.iq("get", buddyAddr(20001), `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	var d discoResult
	if err := ans.Decode(&d); err != nil || ans.Type != "result" {
		t.Fatalf("disco#info of a buddy: %s (%v)", ans, err)
	}
	if len(d.Query.Identities) != 1 || d.Query.Identities[0].Category != "client" {
		t.Errorf("buddy identities %+v, want one client", d.Query.Identities)
	}
	for _, f := range d.features() {
		if f == "jabber:iq:register" || f == "jabber:iq:gateway" {
			t.Errorf("a buddy announces the gateway feature %s", f)
		}
	}
	// Not a QQ number at all.
	ans = h.iq("get", "someone@"+testDomain, `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	if cond, _, _ := stanzaErr(t, ans); cond != "item-not-found" {
		t.Errorf("disco of someone@: %s", ans)
	}
}

func TestVersionPingAndUnknown(t *testing.T) {
	h := newHarness(t, qqsim.Options{})
	ans := h.iq("get", testDomain, `<query xmlns="jabber:iq:version"/>`)
	var v struct {
		Name string `xml:"jabber:iq:version query>name"`
	}
	if err := ans.Decode(&v); err != nil || ans.Type != "result" || v.Name == "" {
		t.Errorf("version: %s", ans)
	}
	if ans := h.iq("get", testDomain, `<ping xmlns="urn:xmpp:ping"/>`); ans.Type != "result" {
		t.Errorf("ping: %s", ans)
	}
	ans = h.iq("get", testDomain, `<query xmlns="urn:example:nothing"/>`)
	if cond, typ, _ := stanzaErr(t, ans); cond != "service-unavailable" || typ != "cancel" {
		t.Errorf("unknown namespace: %s", ans)
	}
	ans = h.iq("get", testDomain, ``)
	if cond, _, _ := stanzaErr(t, ans); cond != "bad-request" {
		t.Errorf("iq without payload: %s", ans)
	}
	// Results and errors are never answered.
	h.in(`<iq xmlns="jabber:component:accept" type="error" id="e1" from=%q to=%q><error type="cancel"><bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`, aliceFull, testDomain)
	h.iq("get", testDomain, `<ping xmlns="urn:xmpp:ping"/>`) // a barrier: handled in order
	for _, st := range h.out.all() {
		if st.ID == "e1" {
			t.Errorf("an error was answered: %s", st)
		}
	}
}

func TestIQGateway(t *testing.T) {
	h := newHarness(t, qqsim.Options{})
	ans := h.iq("get", testDomain, `<query xmlns="jabber:iq:gateway"/>`)
	var q struct {
		Desc   string `xml:"jabber:iq:gateway query>desc"`
		Prompt string `xml:"jabber:iq:gateway query>prompt"`
		JID    string `xml:"jabber:iq:gateway query>jid"`
	}
	if err := ans.Decode(&q); err != nil || ans.Type != "result" || q.Desc == "" || q.Prompt == "" {
		t.Fatalf("gateway get: %s", ans)
	}
	ans = h.iq("set", testDomain, `<query xmlns="jabber:iq:gateway"><prompt> 123456 </prompt></query>`)
	q.JID = ""
	if err := ans.Decode(&q); err != nil || ans.Type != "result" || q.JID != "123456@"+testDomain {
		t.Fatalf("gateway set: %s", ans)
	}
	for _, bad := range []string{"alice", "0123456", "12", "", "12345678901234"} {
		ans = h.iq("set", testDomain, `<query xmlns="jabber:iq:gateway"><prompt>`+xmlText(bad)+`</prompt></query>`)
		cond, _, text := stanzaErr(t, ans)
		if ans.Type != "error" || cond != "bad-request" || text == "" {
			t.Errorf("gateway set %q: %s", bad, ans)
		}
	}
}

func xmlText(s string) string {
	var b []byte
	b, _ = xml.Marshal(struct {
		XMLName xml.Name `xml:"x"`
		S       string   `xml:",chardata"`
	}{S: s})
	return string(b[3 : len(b)-4])
}

// Available presence comes from a full JID with entity capabilities, and
// disco#info on the caps node answers what the hash was made of (XEP-0115).
func TestPresenceFromFullJIDWithCapsAnsweredByDisco(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	mark := h.cursor
	h.online("")
	for _, from := range []string{testDomain, buddyAddr(20001)} {
		h.cursor = mark
		st := h.waitFor("available from "+from, presenceMatch(from, ""))
		if st.From.Resourcepart() == "" {
			t.Errorf("available presence from the bare JID %s: clients such as Gajim drop it", st.From)
		}
		var p struct {
			C *struct {
				Hash string `xml:"hash,attr"`
				Node string `xml:"node,attr"`
				Ver  string `xml:"ver,attr"`
			} `xml:"http://jabber.org/protocol/caps c"`
		}
		if err := st.Decode(&p); err != nil || p.C == nil || p.C.Hash != "sha-1" || p.C.Ver == "" {
			t.Fatalf("presence from %s without caps: %s", from, st)
		}
		ans := h.iq("get", from, `<query xmlns="http://jabber.org/protocol/disco#info" node="`+p.C.Node+"#"+p.C.Ver+`"/>`)
		var q struct {
			Query struct {
				Node     string          `xml:"node,attr"`
				Identity []info.Identity `xml:"identity"`
				Features []info.Feature  `xml:"feature"`
			} `xml:"http://jabber.org/protocol/disco#info query"`
		}
		if err := ans.Decode(&q); err != nil || ans.Type != "result" {
			t.Fatalf("disco#info on the caps node of %s: %s", from, ans)
		}
		got := disco.Info{Identity: q.Query.Identity, Features: q.Query.Features}
		if q.Query.Node != p.C.Node+"#"+p.C.Ver || got.Hash(sha1.New()) != p.C.Ver {
			t.Errorf("%s: the caps node answers node %q with hash %s, want the presence's %s", from, q.Query.Node, got.Hash(sha1.New()), p.C.Ver)
		}
	}
	ans := h.iq("get", buddyAddr(20001), `<query xmlns="http://jabber.org/protocol/disco#info" node="`+capsNode+`#wrong"/>`)
	if cond, _, _ := stanzaErr(t, ans); cond != "item-not-found" {
		t.Errorf("an unknown caps node: %s", ans)
	}
}
