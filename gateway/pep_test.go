package gateway

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp"
)

// readItems is a pubsub items result as a client parses it.
type readItems struct {
	Items struct {
		Node string `xml:"node,attr"`
		Item []struct {
			ID     string `xml:"id,attr"`
			VCard4 *struct {
				FN       []string `xml:"fn>text"`
				Nickname []string `xml:"nickname>text"`
				Sex      []string `xml:"gender>sex"`
				Photo    []string `xml:"photo>uri"`
				Adr      []struct {
					Street   string `xml:"street"`
					Locality string `xml:"locality"`
					Region   string `xml:"region"`
					Code     string `xml:"code"`
					Country  string `xml:"country"`
				} `xml:"adr"`
				Tel []struct {
					Type string `xml:"parameters>type>text"`
					URI  string `xml:"uri"`
				} `xml:"tel"`
				Email []string `xml:"email>text"`
				Title []string `xml:"title>text"`
				URL   []string `xml:"url>uri"`
				Note  []string `xml:"note>text"`
			} `xml:"urn:ietf:params:xml:ns:vcard-4.0 vcard"`
			Metadata *struct {
				Info []struct {
					Bytes  int    `xml:"bytes,attr"`
					ID     string `xml:"id,attr"`
					Type   string `xml:"type,attr"`
					Width  int    `xml:"width,attr"`
					Height int    `xml:"height,attr"`
				} `xml:"info"`
			} `xml:"urn:xmpp:avatar:metadata metadata"`
			Data *string `xml:"urn:xmpp:avatar:data data"`
		} `xml:"item"`
	} `xml:"http://jabber.org/protocol/pubsub pubsub>items"`
}

func pubsubItemsQuery(node, inner string) string {
	return `<pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` + node + `">` + inner + `</items></pubsub>`
}

// getItems asks to for node's items and wants exactly one.
func getItems(t *testing.T, h *harness, to, node, inner string) (string, readItems) {
	t.Helper()
	ans := h.iq("get", to, pubsubItemsQuery(node, inner))
	if ans.Type != "result" {
		t.Fatalf("items of %s from %s: %s", node, to, ans)
	}
	var r readItems
	if err := ans.Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Items.Node != node || len(r.Items.Item) != 1 {
		t.Fatalf("items of %s: want node %s with one item: %s", node, node, ans)
	}
	return r.Items.Item[0].ID, r
}

func photoHash(t *testing.T, pres xmppcomp.Stanza) string {
	t.Helper()
	var x struct {
		Photo *string `xml:"vcard-temp:x:update x>photo"`
	}
	if err := pres.Decode(&x); err != nil || x.Photo == nil || len(*x.Photo) != 40 {
		t.Fatalf("presence has no XEP-0153 photo hash: %s", pres)
	}
	return *x.Photo
}

func sha1Hex(b []byte) string {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}

func TestVCard4OfABuddyIsItsProfile(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, vcardWorld()...)
	h.register("10001", "secret")
	h.goOnline("")
	hash := photoHash(t, h.waitFor("the buddy's presence", presenceMatch(buddyAddr(24259132), "")))

	id, r := getItems(t, h, buddyAddr(24259132), "urn:xmpp:vcard4", "")
	v := r.Items.Item[0].VCard4
	if id != "current" || v == nil {
		t.Fatalf("want item current with a vcard, got %q %+v", id, r)
	}
	eq := func(field string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	eq("fn", v.FN, "刘X")
	eq("nickname", v.Nickname, "微程")
	eq("gender", v.Sex, "M")
	eq("email", v.Email, "Microprogramer@hotmail.com")
	eq("title", v.Title, "程序员")
	eq("url", v.URL, "msger.org(建设中...)")
	eq("note", v.Note, "网络为媒,关系为本,信息为财,客户为主.\r\n", "毕业院校/School: 社会大学")
	if len(v.Tel) != 1 || v.Tel[0].URI != "tel:0871-6466529" || v.Tel[0].Type != "voice" {
		t.Errorf("tel = %+v, want one voice tel:0871-6466529", v.Tel)
	}
	if len(v.Adr) != 1 || v.Adr[0].Street != "云南昆明" || v.Adr[0].Region != "云南省" || v.Adr[0].Code != "650000" ||
		v.Adr[0].Locality != "" || v.Adr[0].Country != "" {
		t.Errorf("adr = %+v", v.Adr)
	}
	const prefix = "data:image/png;base64,"
	if len(v.Photo) != 1 || !strings.HasPrefix(v.Photo[0], prefix) {
		t.Fatalf("photo = %.60q, want a PNG data URI", v.Photo)
	}
	png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v.Photo[0], prefix))
	if err != nil || sha1Hex(png) != hash {
		t.Errorf("photo is not the avatar advertised in presence (err %v)", err)
	}

	// vcard-temp and vCard4 share one GetInfo.
	before := getInfoCount(h)
	if ans := h.iq("get", buddyAddr(24259132), `<vCard xmlns="vcard-temp"/>`); ans.Type != "result" ||
		!strings.Contains(ans.String(), "<FN>刘X</FN>") {
		t.Fatalf("vCard get: %s", ans)
	}
	getItems(t, h, buddyAddr(24259132), "urn:xmpp:vcard4", `<item id="current"/>`)
	if after := getInfoCount(h); after != before {
		t.Errorf("vcard-temp and vCard4 of one buddy sent %d more GetInfo", after-before)
	}
}

func TestAvatarNodesOfABuddyServeThePresenceAvatar(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, vcardWorld()...)
	h.register("10001", "secret")
	h.goOnline("")
	hash := photoHash(t, h.waitFor("the buddy's presence", presenceMatch(buddyAddr(24259132), "")))

	id, r := getItems(t, h, buddyAddr(24259132), "urn:xmpp:avatar:metadata", "")
	m := r.Items.Item[0].Metadata
	if id != hash || m == nil || len(m.Info) != 1 {
		t.Fatalf("metadata item %q, want id %s and one info: %+v", id, hash, r)
	}
	info := m.Info[0]
	if info.ID != hash || info.Type != "image/png" || info.Width != 64 || info.Height != 64 {
		t.Errorf("info = %+v, want id %s image/png 64×64", info, hash)
	}

	id, r = getItems(t, h, buddyAddr(24259132), "urn:xmpp:avatar:data", `<item id="`+hash+`"/>`)
	d := r.Items.Item[0].Data
	if id != hash || d == nil {
		t.Fatalf("data item %q, want id %s with data: %+v", id, hash, r)
	}
	png, err := base64.StdEncoding.DecodeString(*d)
	if err != nil || sha1Hex(png) != hash || len(png) != info.Bytes {
		t.Errorf("data: %d bytes hashing to %s, want %d bytes hashing to %s (err %v)", len(png), sha1Hex(png), info.Bytes, hash, err)
	}
	// A stale hash is not there.
	ans := h.iq("get", buddyAddr(24259132), pubsubItemsQuery("urn:xmpp:avatar:data", `<item id="`+strings.Repeat("0", 40)+`"/>`))
	if cond, _, _ := stanzaErr(t, ans); ans.Type != "error" || cond != "item-not-found" {
		t.Errorf("data of another hash: %s", ans)
	}
}

func TestPubSubErrorsAndNonBuddies(t *testing.T) {
	stranger := qqsim.Account{UIN: 30001, Password: "s", Nick: "Stranger", Face: 33}
	h := newHarness(t, qqsim.Options{}, append(world(), stranger)...)
	h.online("")
	wantErr := func(what, to, payload, want string) {
		t.Helper()
		ans := h.iq("get", to, payload)
		if cond, _, _ := stanzaErr(t, ans); ans.Type != "error" || cond != want {
			t.Errorf("%s: want %s, got %s", what, want, ans)
		}
	}
	wantErr("an unknown node", buddyAddr(20001), pubsubItemsQuery("urn:xmpp:microblog:0", ""), "item-not-found")
	wantErr("vCard4 of an unknown number", buddyAddr(99999), pubsubItemsQuery("urn:xmpp:vcard4", ""), "item-not-found")
	wantErr("avatar of an unknown number", buddyAddr(99999), pubsubItemsQuery("urn:xmpp:avatar:metadata", ""), "item-not-found")
	wantErr("pubsub of the gateway", testDomain, pubsubItemsQuery("urn:xmpp:vcard4", ""), "service-unavailable")
	wantErr("subscriptions", buddyAddr(20001), `<pubsub xmlns="http://jabber.org/protocol/pubsub"><subscriptions/></pubsub>`,
		"feature-not-implemented")

	// Not on the list: like its vcard-temp, from its profile.
	_, r := getItems(t, h, buddyAddr(30001), "urn:xmpp:vcard4", "")
	if v := r.Items.Item[0].VCard4; v == nil || strings.Join(v.Nickname, "|") != "Stranger" {
		t.Errorf("vCard4 of a non-buddy: %+v", r)
	}
	var avs Avatars
	want, err := avs.ForFace(stranger.Face)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := getItems(t, h, buddyAddr(30001), "urn:xmpp:avatar:metadata", ""); id != want.Hash {
		t.Errorf("avatar of a non-buddy has id %s, want its face's %s", id, want.Hash)
	}
}

func TestBuddyDiscoAdvertisesPEPProfile(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	ans := h.iq("get", buddyAddr(20001), `<query xmlns="http://jabber.org/protocol/disco#info"/>`)
	var d discoResult
	if err := ans.Decode(&d); err != nil || ans.Type != "result" {
		t.Fatalf("disco#info of a buddy: %v %s", err, ans)
	}
	all := " " + strings.Join(d.features(), " ") + " "
	for _, want := range []string{"urn:xmpp:vcard4", "http://jabber.org/protocol/pubsub", "http://jabber.org/protocol/pubsub#retrieve-items", "vcard-temp"} {
		if !strings.Contains(all, " "+want+" ") {
			t.Errorf("buddy disco#info lacks %s: %v", want, d.features())
		}
	}
}
