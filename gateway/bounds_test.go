package gateway

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"qqxmpp/qqproto"
)

// hugeProfileQQ answers GetInfo with every field far longer than any
// stanza the XMPP server takes.
type hugeProfileQQ struct{ *fakeQQ }

func (q hugeProfileQQ) Profile(ctx context.Context, uin qqproto.UIN) (qqproto.Profile, error) {
	if _, err := q.fakeQQ.Profile(ctx, uin); err != nil {
		return qqproto.Profile{}, err
	}
	long := strings.Repeat("长", 100<<10) // 300 KB each
	return qqproto.Profile{UIN: uin, Nick: long, RealName: long, Email: long, Homepage: long, Job: long, Phone: long,
		Mobile: long, Address: long, Postcode: long, Province: long, City: long, Country: long, School: long,
		About: strings.Repeat("x", 4<<20)}, nil
}

// A QQ nickname or profile that would make a stanza over the XMPP server's
// bound is cut, and the cut marked, before it goes out: one such stanza
// would make the server close the stream, at every reconnect again.
func TestHugeNickAndProfileAreCut(t *testing.T) {
	longNick := strings.Repeat("尼", 1<<20/3)
	qq := newFakeQQ("secret", qqproto.Buddy{UIN: 20001, Nick: longNick, Status: qqproto.StatusOnline})
	h := &harness{t: t, dbPath: filepath.Join(t.TempDir(), "gw.db")}
	h.cfg = testConfig("http://127.0.0.1:1/")
	h.cfg.NewQQ = func(qqproto.UIN) QQ { return hugeProfileQQ{qq} }
	h.openStore()
	h.start()
	h.register("10001", "secret")
	h.goOnline("")
	avail := h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	if n := nickOf(t, avail); len(n) > maxNickBytes || !strings.HasSuffix(n, cutMark) || !utf8.ValidString(n) {
		t.Errorf("Bob's nick has %d bytes, ends %q; want at most %d, cut and marked", len(n), n[max(0, len(n)-6):], maxNickBytes)
	}

	ans := h.iq("get", buddyAddr(20001), `<vCard xmlns="vcard-temp"/>`)
	if ans.Type != "result" || len(ans.Raw) > 64<<10 {
		t.Fatalf("vCard answer: type %s, %d bytes; want a result under 64 KiB", ans.Type, len(ans.Raw))
	}
	var v struct {
		VCard VCard `xml:"vcard-temp vCard"`
	}
	if err := ans.Decode(&v); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]string{"NICKNAME": v.VCard.Nickname, "FN": v.VCard.FN, "DESC": v.VCard.Desc, "TITLE": v.VCard.Title} {
		if !strings.HasSuffix(f, cutMark) || !utf8.ValidString(f) {
			t.Errorf("vCard %s (%d bytes) is not cut and marked", name, len(f))
		}
	}
}

func TestCutKeepsWholeCharacters(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg" + cutMark},
		{"长长长长", 10, "长长" + cutMark}, // 12 bytes; 7 would split the third
		{"长长长长", 3, cutMark},
	} {
		if got := cut(c.in, c.max); got != c.want || len(got) > c.max {
			t.Errorf("cut(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
