package gateway

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
)

// seedGetInfo is the GetInfo reply of the protocol article, its line breaks
// (an artefact of the article's layout) removed.
const seedGetInfo = "VER=1.1&CMD=GETINFO&SEQ=12707&UIN=415103947&RES=0&AD=云南昆明&AG=0&EM=Microprogramer@hotmail" +
	".com&FC=270&HP=msger.org(建设中...)&JB=程序员&LV=2&PC=650000&PH=0871-6466529&PR=网络为媒%252" +
	"c关系为本%252c信息为财%252c客户为主.%0d%0a&PV=云南省&RN=刘X&SC=社会大学&SX=0&UN=24259132&NK=" +
	"微程"

// readVCard is what a client sees: the vCard parsed back from the wire
// with a struct of its own, not the one that produced it.
type readVCard struct {
	XMLName  xml.Name `xml:"vcard-temp vCard"`
	FN       string   `xml:"FN"`
	Nickname string   `xml:"NICKNAME"`
	Photo    struct {
		Type   string `xml:"TYPE"`
		BinVal string `xml:"BINVAL"`
	} `xml:"PHOTO"`
	Tel []struct {
		Voice  *struct{} `xml:"VOICE"`
		Cell   *struct{} `xml:"CELL"`
		Number string    `xml:"NUMBER"`
	} `xml:"TEL"`
	Email []struct {
		Internet *struct{} `xml:"INTERNET"`
		UserID   string    `xml:"USERID"`
	} `xml:"EMAIL"`
	Title string `xml:"TITLE"`
	Note  string `xml:"NOTE"`
	URL   string `xml:"URL"`
	Desc  string `xml:"DESC"`
}

func roundTripVCard(t *testing.T, v VCard) (string, readVCard) {
	t.Helper()
	out, err := xml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var r readVCard
	if err := xml.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	return string(out), r
}

func TestBuddyVCardFromSeedProfile(t *testing.T) {
	f, err := qqproto.Parse(seedGetInfo)
	if err != nil {
		t.Fatal(err)
	}
	p, err := qqproto.ReadProfile(f)
	if err != nil {
		t.Fatal(err)
	}
	var avs Avatars
	av, err := avs.ForFace(p.Face)
	if err != nil {
		t.Fatal(err)
	}
	raw, v := roundTripVCard(t, BuddyVCard(p, &av))
	if !strings.HasPrefix(raw, `<vCard xmlns="vcard-temp">`) {
		t.Errorf("not a vcard-temp element: %.60s", raw)
	}
	for _, c := range []struct{ field, got, want string }{
		{"FN", v.FN, "刘X"},
		{"NICKNAME", v.Nickname, "微程"},
		{"TITLE", v.Title, "程序员"},
		{"URL", v.URL, "msger.org(建设中...)"},
		{"DESC", v.Desc, "网络为媒,关系为本,信息为财,客户为主.\r\n"},
		{"NOTE", v.Note, "性别/Sex: 男/male\n毕业院校/School: 社会大学"},
		{"PHOTO/TYPE", v.Photo.Type, "image/png"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if len(v.Email) != 1 || v.Email[0].UserID != "Microprogramer@hotmail.com" || v.Email[0].Internet == nil {
		t.Errorf("EMAIL = %+v, want one INTERNET Microprogramer@hotmail.com", v.Email)
	}
	if len(v.Tel) != 1 || v.Tel[0].Number != "0871-6466529" || v.Tel[0].Voice == nil {
		t.Errorf("TEL = %+v, want one VOICE 0871-6466529", v.Tel)
	}
	if !strings.Contains(raw, "<ADR><STREET>云南昆明</STREET><REGION>云南省</REGION><PCODE>650000</PCODE></ADR>") {
		t.Errorf("ADR missing or wrong in %s", raw)
	}
	png, err := base64.StdEncoding.DecodeString(v.Photo.BinVal)
	if err != nil || string(png) != string(av.PNG) {
		t.Errorf("PHOTO/BINVAL is not the avatar (err %v)", err)
	}
}

func TestBuddyVCardSparseProfile(t *testing.T) {
	raw, v := roundTripVCard(t, BuddyVCard(qqproto.Profile{UIN: 10001, Nick: "a&b<c>", Sex: qqproto.SexUnknown, Age: 0}, nil))
	if v.FN != "a&b<c>" || v.Nickname != "a&b<c>" {
		t.Errorf("FN %q NICKNAME %q: want the nickname in both", v.FN, v.Nickname)
	}
	for _, absent := range []string{"<PHOTO", "<ADR", "<TEL", "<EMAIL", "<NOTE", "<DESC", "<TITLE", "<URL"} {
		if strings.Contains(raw, absent) {
			t.Errorf("empty profile produced %s: %s", absent, raw)
		}
	}
}

func TestBuddyVCardLevel3(t *testing.T) {
	p := qqproto.Profile{Nick: "n", Sex: qqproto.SexFemale, Age: 31, Mobile: "13800000000",
		City: "昆明", Country: "中国"}
	raw, v := roundTripVCard(t, BuddyVCard(p, nil))
	if v.Note != "性别/Sex: 女/female\n年龄/Age: 31" {
		t.Errorf("NOTE = %q", v.Note)
	}
	if len(v.Tel) != 1 || v.Tel[0].Cell == nil || v.Tel[0].Number != "13800000000" {
		t.Errorf("TEL = %+v, want one CELL", v.Tel)
	}
	if !strings.Contains(raw, "<ADR><LOCALITY>昆明</LOCALITY><CTRY>中国</CTRY></ADR>") {
		t.Errorf("ADR missing or wrong in %s", raw)
	}
}

func TestTransportVCard(t *testing.T) {
	_, v := roundTripVCard(t, TransportVCard("qq.example.org"))
	if v.FN == "" || !strings.Contains(v.Desc, "qq.example.org") {
		t.Errorf("transport vCard lacks a name or its domain: %+v", v)
	}
}

// seedProfileAccount is the person of the article's GetInfo reply, online,
// on alice's list.
var seedProfileAccount = qqsim.Account{UIN: 24259132, Password: "p", Nick: "微程", Face: 270, State: qqproto.StatusOnline,
	Buddies: []qqproto.UIN{10001}, Profile: map[string]string{
		"AD": "云南昆明", "AG": "0", "EM": "Microprogramer@hotmail.com", "HP": "msger.org(建设中...)", "JB": "程序员",
		"PC": "650000", "PH": "0871-6466529", "PR": "网络为媒,关系为本,信息为财,客户为主.\r\n", "PV": "云南省",
		"RN": "刘X", "SC": "社会大学", "SX": "0",
	}}

func vcardWorld() []qqsim.Account {
	a := alice
	a.Buddies = append(append([]qqproto.UIN{}, a.Buddies...), seedProfileAccount.UIN)
	return []qqsim.Account{a, bob, carol, dave, seedProfileAccount}
}

func getInfoCount(h *harness) int {
	n := 0
	for _, r := range h.sim.Requests(10001) {
		if r.Cmd == "GETINFO" {
			n++
		}
	}
	return n
}

func TestVCardOfABuddyIsItsProfileWithTheAdvertisedAvatar(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, vcardWorld()...)
	h.register("10001", "secret")
	h.goOnline("")
	pres := h.waitFor("the buddy's presence", presenceMatch(buddyAddr(24259132), ""))
	var x struct {
		Photo *string `xml:"vcard-temp:x:update x>photo"`
	}
	if err := pres.Decode(&x); err != nil || x.Photo == nil || len(*x.Photo) != 40 {
		t.Fatalf("presence has no XEP-0153 photo hash: %s", pres)
	}

	ans := h.iq("get", buddyAddr(24259132), `<vCard xmlns="vcard-temp"/>`)
	if ans.Type != "result" {
		t.Fatalf("vCard get: %s", ans)
	}
	var r struct {
		V readVCard `xml:"vCard"`
	}
	if err := ans.Decode(&r); err != nil {
		t.Fatal(err)
	}
	v := r.V
	if v.FN != "刘X" || v.Nickname != "微程" || v.Title != "程序员" || v.URL != "msger.org(建设中...)" ||
		v.Desc != "网络为媒,关系为本,信息为财,客户为主.\r\n" || len(v.Email) != 1 || v.Email[0].UserID != "Microprogramer@hotmail.com" ||
		len(v.Tel) != 1 || v.Tel[0].Number != "0871-6466529" || !strings.Contains(ans.String(), "<PCODE>650000</PCODE>") {
		t.Errorf("vCard fields wrong: %+v\n%s", v, ans)
	}
	png, err := base64.StdEncoding.DecodeString(v.Photo.BinVal)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha1.Sum(png); hex.EncodeToString(sum[:]) != *x.Photo || v.Photo.Type != "image/png" {
		t.Errorf("PHOTO does not match the hash advertised in presence")
	}

	// Asked again, the profile comes from the cache.
	before := getInfoCount(h)
	if ans := h.iq("get", buddyAddr(24259132), `<vCard xmlns="vcard-temp"/>`); ans.Type != "result" {
		t.Fatalf("second vCard get: %s", ans)
	}
	if after := getInfoCount(h); after != before {
		t.Errorf("second vCard get sent %d GetInfo", after-before)
	}
}

func TestVCardErrorsAndFallbacks(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.online("")
	ans := h.iq("get", buddyAddr(99999), `<vCard xmlns="vcard-temp"/>`)
	if cond, _, _ := stanzaErr(t, ans); ans.Type != "error" || cond != "item-not-found" {
		t.Errorf("vCard of an unknown number: %s", ans)
	}
	ans = h.iq("get", testDomain, `<vCard xmlns="vcard-temp"/>`)
	if ans.Type != "result" || !strings.Contains(ans.String(), "QQ Transport") {
		t.Errorf("vCard of the domain: %s", ans)
	}
	// Logged out: a card from what is known, without asking QQ.
	h.presence(aliceFull, testDomain, "unavailable", "")
	h.eventually("QQ logout", func() bool { return !h.sim.Session(10001).LoggedIn })
	before := getInfoCount(h)
	ans = h.iq("get", buddyAddr(20003), `<vCard xmlns="vcard-temp"/>`)
	if ans.Type != "result" || !strings.Contains(ans.String(), "<NICKNAME>Dave</NICKNAME>") {
		t.Errorf("vCard while logged out: %s", ans)
	}
	if getInfoCount(h) != before {
		t.Error("GetInfo sent while logged out")
	}
}

func TestProfileCacheExpiresAndStaysBounded(t *testing.T) {
	var c profileCache
	t0 := time.Unix(1000, 0)
	c.put(1, qqproto.Profile{Nick: "a"}, t0)
	if p, ok := c.get(1, t0.Add(profileCacheTTL-time.Second)); !ok || p.Nick != "a" {
		t.Error("fresh entry missing")
	}
	if _, ok := c.get(1, t0.Add(profileCacheTTL)); ok {
		t.Error("expired entry served")
	}
	for i := 0; i < profileCacheMax+10; i++ {
		c.put(qqproto.UIN(100000+i), qqproto.Profile{}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if len(c.m) > profileCacheMax {
		t.Errorf("cache holds %d entries, max %d", len(c.m), profileCacheMax)
	}
	if _, ok := c.get(100000+profileCacheMax+9, t0.Add(time.Minute)); !ok {
		t.Error("newest entry evicted")
	}
}
