package qqproto

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The seed article's example replies, joined where the article wrapped them.
const (
	seedLoginOK   = "VER=1.1&CMD=Login&SEQ=11281&UIN=&RES=0&RS=0&HI=60&LI=300"
	seedLoginFail = "VER=1.1&CMD=Login&SEQ=11422&UIN=315103947&RES=0&RS=1&RA=登录失败"
	seedList      = "VER=1.1&CMD=LIST&SEQ=43661&UIN=29501213&RES=0&FN=1&SN=24&UN=561256,1943497,"
	seedQueryStat = "VER=1.1&CMD=QUERY_STAT&SEQ=-1&UIN=29501213&RES=0&FC=141,270,270,&FN=1&SN=3&ST=10,10,10,&UN=12327207,24259132,29501213,&NK= □,微程,鶹鸑,&"
	seedGetInfo   = "VER=1.1&CMD=GETINFO&SEQ=12707&UIN=415103947&RES=0&AD=云南昆明&AG=0&EM=Microprogramer@hotmail.com&FC=270&HP=msger.org(建设中...)&JB=程序员&LV=2&PC=650000&PH=0871-6466529&PR=网络为媒%252c关系为本%252c信息为财%252c客户为主.%0d%0a&PV=云南省&RN=刘X&SC=社会大学&SX=0&UN=24259132&NK=微程"
	seedAdd       = "VER=1.1&CMD=AddToList&SEQ=13666&UIN=415103947&RES=0&CD=0&UN=24259132"
	seedAck       = "VER=1.1&CMD=Ack_AddToList&SEQ=1130&UIN=415103947&RES=0&"
	seedDel       = "VER=1.1&CMD=DelFromList&SEQ=24514&UIN=415103947&RES=0&"
	seedChange    = "VER=1.1&CMD=Change_Stat&SEQ=17512&UIN=415103947&RES=0&"
	seedLogout    = "VER=1.1&CMD=LOGOUT&SEQ=15803&UIN=415103947&RES=0"
	seedGetMsgEx  = "VER=1.1&CMD=GETMSGEX&SEQ=56661&UIN=29501213&RES=0&MN=3&MT=99,9,9,&UN=24259132,24259132,24259132,&MG=30 ,asdfasdfasdfasdf ,asdfasdfasdf ,&"
	seedCLTMSG    = "VER=1.1&CMD=CLTMSG&SEQ=15803&UIN=415103947&RES=0"
)

func mustParse(t *testing.T, line string) Fields {
	t.Helper()
	f, err := Parse(line)
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	return f
}

func mustHeader(t *testing.T, f Fields, cmd string, seq int64, uin UIN) {
	t.Helper()
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatalf("ReadHeader: %v", err)
	}
	if !strings.EqualFold(h.Cmd, cmd) || h.Seq != seq || h.UIN != uin || h.Res != 0 || h.Version != "1.1" {
		t.Fatalf("header = %+v, want CMD %s SEQ %d UIN %d RES 0 VER 1.1", h, cmd, seq, uin)
	}
	if err := h.Err(); err != nil {
		t.Fatalf("Err() = %v for RES=0", err)
	}
}

func TestSeedLogin(t *testing.T) {
	f := mustParse(t, seedLoginOK)
	mustHeader(t, f, CmdLogin, 11281, 0) // the seed's UIN is empty
	r, err := ReadLogin(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.PollInterval != 60*time.Second || r.IdleTimeout != 300*time.Second {
		t.Fatalf("login result = %+v, want HI 60s LI 300s", r)
	}

	f = mustParse(t, seedLoginFail)
	mustHeader(t, f, CmdLogin, 11422, 315103947)
	_, err = ReadLogin(f, 315103947)
	var le *LoginError
	if !errors.As(err, &le) || le.Reason != "登录失败" || le.Code != 1 || le.UIN != 315103947 {
		t.Fatalf("ReadLogin(RS=1) = %v, want *LoginError with RA 登录失败", err)
	}
	if !strings.Contains(le.Error(), "登录失败") {
		t.Fatalf("error text %q lacks the server's reason", le.Error())
	}
}

func TestSeedList(t *testing.T) {
	f := mustParse(t, seedList)
	mustHeader(t, f, CmdList, 43661, 29501213)
	uins, page, err := ReadList(f)
	if err != nil {
		t.Fatal(err)
	}
	if want := []UIN{561256, 1943497}; !reflect.DeepEqual(uins, want) {
		t.Fatalf("UN = %v, want %v", uins, want)
	}
	// The article elides the list ("…") but states SN=24 and FN=1.
	if !page.Last || page.Count != 24 {
		t.Fatalf("page = %+v, want last page with SN 24", page)
	}
}

func TestSeedQueryStat(t *testing.T) {
	f := mustParse(t, seedQueryStat)
	mustHeader(t, f, CmdQueryStat, -1, 29501213)
	bs, page, err := ReadOnline(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []Buddy{
		{UIN: 12327207, Nick: " □", Face: 141, Status: StatusOnline},
		{UIN: 24259132, Nick: "微程", Face: 270, Status: StatusOnline},
		{UIN: 29501213, Nick: "鶹鸑", Face: 270, Status: StatusOnline}, // the user themself
	}
	if !reflect.DeepEqual(bs, want) {
		t.Fatalf("buddies = %+v\nwant %+v", bs, want)
	}
	if !page.Last || page.Count != 3 {
		t.Fatalf("page = %+v", page)
	}
	if FaceImage(270) != 91 {
		t.Fatalf("FaceImage(270) = %d, want 91 (91.bmp)", FaceImage(270))
	}
}

func TestSeedGetInfo(t *testing.T) {
	f := mustParse(t, seedGetInfo)
	mustHeader(t, f, CmdGetInfo, 12707, 415103947)
	p, err := ReadProfile(f)
	if err != nil {
		t.Fatal(err)
	}
	want := Profile{
		UIN: 24259132, Nick: "微程", Face: 270, Level: 2, RealName: "刘X", Age: 0, Sex: SexMale,
		Email: "Microprogramer@hotmail.com", Homepage: "msger.org(建设中...)", Job: "程序员",
		Phone: "0871-6466529", Address: "云南昆明", Postcode: "650000", Province: "云南省", School: "社会大学",
		About: "网络为媒,关系为本,信息为财,客户为主.\r\n",
	}
	if p != want {
		t.Fatalf("profile =\n%+v\nwant\n%+v", p, want)
	}
}

func TestSeedAddAndAcks(t *testing.T) {
	f := mustParse(t, seedAdd)
	mustHeader(t, f, CmdAddToList, 13666, 415103947)
	cd, err := ReadAdd(f)
	if err != nil || cd != AddAccepted {
		t.Fatalf("ReadAdd = %v, %v; want CD 0", cd, err)
	}
	if f.Get("UN") != "24259132" {
		t.Fatalf("UN = %q", f.Get("UN"))
	}
	for _, c := range []struct {
		line, cmd string
		seq       int64
	}{
		{seedAck, CmdAckAddToList, 1130}, {seedDel, CmdDelFromList, 24514}, {seedChange, CmdChangeStat, 17512},
		{seedLogout, CmdLogout, 15803}, {seedCLTMSG, CmdCLTMSG, 15803},
	} {
		mustHeader(t, mustParse(t, c.line), c.cmd, c.seq, 415103947)
	}
}

func TestSeedGetMsgEx(t *testing.T) {
	f := mustParse(t, seedGetMsgEx)
	mustHeader(t, f, CmdGetMsgEx, 56661, 29501213)
	ms, err := ReadMessages(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []Message{
		{Type: MsgSystem, From: 24259132, Text: "30 "},
		{Type: MsgBuddy, From: 24259132, Text: "asdfasdfasdfasdf "},
		{Type: MsgBuddy, From: 24259132, Text: "asdfasdfasdf "},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Fatalf("messages = %+v\nwant %+v", ms, want)
	}
	if st, ok := ms[0].State(); !ok || st != StatusBusy {
		t.Fatalf("State() of the MT=99 notice = %v, %v; want busy", st, ok)
	}
	if _, ok := ms[1].State(); ok {
		t.Fatal("a buddy message is not a state notice")
	}
}

func TestHeaderErrors(t *testing.T) {
	h, err := ReadHeader(mustParse(t, "VER=1.1&CMD=GETMSGEX&SEQ=5&UIN=1234567&RES=20"))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(h.Err(), ErrNotLoggedIn) {
		t.Fatalf("RES=20 → %v, want ErrNotLoggedIn", h.Err())
	}
	h, _ = ReadHeader(mustParse(t, "VER=1.1&CMD=CLTMSG&SEQ=5&UIN=1234567&RES=5"))
	var re *ResultError
	if !errors.As(h.Err(), &re) || re.Code != 5 {
		t.Fatalf("RES=5 → %v, want *ResultError 5", h.Err())
	}
	for _, bad := range []string{"", "\r\n", "garbage", "VER=1.1&CMD=X&SEQ=1", "VER=1.1&SEQ=1&RES=0", "CMD=X&RES=zero", "CMD=X&RES=0&=v"} {
		f, err := Parse(bad)
		if err == nil {
			_, err = ReadHeader(f)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestReadMessagesMismatch(t *testing.T) {
	f := mustParse(t, "VER=1.1&CMD=GETMSGEX&SEQ=1&UIN=1&RES=0&MN=2&MT=9,&UN=5,&MG=a,")
	if _, err := ReadMessages(f); !errors.Is(err, ErrMalformed) {
		t.Fatalf("MN=2 with one item: %v, want ErrMalformed", err)
	}
}

// Text a user typed must come back unchanged and must never add a field.
var hostile = []string{
	"", "plain", "中文，逗号, commas", "&UN=999&MG=x", "%2c", "%", "%%41", "%zz", "100%", "a=b", "line1\r\nline2\n",
	"trailing,", ",", "&", "=", "+plus+", " spaced ", "emoji 😀", "\x00nul", "%0d%0a",
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range hostile {
		var f Fields
		f.Set("VER", "1.1")
		f.Set("MG", s)
		f.SetList("NK", []string{s, "x", s})
		f.SetInt("UN", 42)
		line := f.String()
		g, err := Parse(line)
		if err != nil {
			t.Fatalf("%q: Parse(%q): %v", s, line, err)
		}
		if len(g) != 4 {
			t.Fatalf("%q added fields: %q", s, line)
		}
		if got := g.Get("MG"); got != s {
			t.Errorf("MG round trip: %q → %q → %q", s, line, got)
		}
		if got := g.List("NK"); !reflect.DeepEqual(got, []string{s, "x", s}) {
			t.Errorf("NK round trip: %q → %q", s, got)
		}
		if n, err := g.Int("UN"); err != nil || n != 42 {
			t.Errorf("%q disturbed UN: %d, %v", s, n, err)
		}
	}
}

func TestUnescapeLenient(t *testing.T) {
	for in, want := range map[string]string{
		"%": "%", "%4": "%4", "%zz": "%zz", "a%2Cb": "a,b", "%e4%b8%ad": "中", "x%": "x%", "%%2c": "%,",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseForm(t *testing.T) {
	f, err := ParseForm("VER=1.1&CMD=CLTMSG&MG=hello+world%2B1")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Get("MG"); got != "hello world+1" {
		t.Fatalf("form MG = %q, want %q", got, "hello world+1")
	}
	f = mustParse(t, "VER=1.1&CMD=CLTMSG&MG=1+1")
	if got := f.Get("MG"); got != "1+1" {
		t.Fatalf("text/plain MG = %q, want a literal plus", got)
	}
}

func TestParseUIN(t *testing.T) {
	for s, ok := range map[string]bool{
		"29501213": true, "10000": true, "12345678901": true, "1234": false, "0123456": false,
		"12a45": false, "": false, "-12345": false, "123456789012": false, " 12345": false,
	} {
		if _, got := ParseUIN(s); got != ok {
			t.Errorf("ParseUIN(%q) ok = %v, want %v", s, got, ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{seedLoginOK, seedLoginFail, seedList, seedQueryStat, seedGetInfo, seedGetMsgEx, seedAck, "&&", "a", "=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fs, err := Parse(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		// Every reader must answer without panicking.
		ReadHeader(fs)
		ReadLogin(fs, 1)
		ReadList(fs)
		ReadOnline(fs)
		ReadProfile(fs)
		ReadMessages(fs)
		// Re-encoding a parsed line and parsing it again is stable (but for
		// raw line breaks at its very end, which Parse trims as line ends).
		if last := fs[len(fs)-1].Raw; strings.TrimRight(last, "\r\n") != last {
			return
		}
		again, err := Parse(fs.String())
		if err != nil || !reflect.DeepEqual(again, fs) {
			t.Fatalf("re-parse of %q: %v, %v", fs.String(), again, err)
		}
	})
}

func FuzzValueRoundTrip(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, "second")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		var fs Fields
		fs.Set("CMD", "CLTMSG")
		fs.Set("MG", a)
		fs.SetList("NK", []string{a, b})
		line := fs.String()
		g, err := Parse(line)
		if err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		if len(g) != 3 || g.Get("CMD") != "CLTMSG" || g.Get("MG") != a {
			t.Fatalf("%q, %q → %q → %v", a, b, line, g)
		}
		if got := g.List("NK"); len(got) != 2 || got[0] != a || got[1] != b {
			t.Fatalf("list %q, %q → %q", a, b, got)
		}
		if utf8.ValidString(a) && !utf8.ValidString(Escape(a)) {
			t.Fatalf("Escape broke UTF-8 of %q", a)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		f, err := Parse(seedGetInfo)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ReadProfile(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	b.ReportAllocs()
	text := strings.Repeat("中文, & = 100% ", 20)
	for b.Loop() {
		var f Fields
		f.Set("VER", "1.1")
		f.Set("CMD", CmdCLTMSG)
		f.SetInt("SEQ", 12345)
		f.SetInt("UIN", 29501213)
		f.SetInt("UN", 24259132)
		f.Set("MG", text)
		_ = f.String()
	}
}
