package qqsim

import (
	"fmt"
	"net/http"
	"testing"

	"qqxmpp/qqproto"
)

// seedWorld holds the people of the seed article's examples.
func seedWorld() []Account {
	return []Account{
		{UIN: 29501213, Password: "pw", Nick: "鶹鸑", Face: 270, Buddies: []qqproto.UIN{12327207, 24259132}},
		{UIN: 415103947, Password: "pw", Nick: "me", Face: 0, Buddies: []qqproto.UIN{12327207}},
		{UIN: 315103947, Password: "right", Nick: "other"},
		{UIN: 12327207, Password: "pw", Nick: " □", Face: 141, State: 10},
		{UIN: 24259132, Password: "pw", Nick: "微程", Face: 270, State: 10, Profile: map[string]string{
			"AD": "云南昆明", "AG": "0", "EM": "Microprogramer@hotmail.com", "HP": "msger.org(建设中...)",
			"JB": "程序员", "PC": "650000", "PH": "0871-6466529", "PR": "网络为媒,关系为本,信息为财,客户为主.\r\n",
			"PV": "云南省", "RN": "刘X", "SC": "社会大学", "SX": "0",
		}},
	}
}

// TestSeedTranscript replays the article's requests and checks each reply
// byte for byte against the article's reply (with this world's numbers,
// and the SEQ echoed: the seed's one "SEQ=-1" is not reproduced).
func TestSeedTranscript(t *testing.T) {
	m := newSim(t, Options{}, seedWorld()...)
	pw := qqproto.PasswordMD5("pw")
	steps := []struct{ req, want string }{
		{"VER=1.1&CMD=Login&SEQ=11422&UIN=315103947&PS=" + pw + "&M5=1&LC=9326B87B234E7235",
			"VER=1.1&CMD=Login&SEQ=11422&UIN=315103947&RES=0&RS=1&RA=密码错误"},
		{"VER=1.1&CMD=Login&SEQ=11281&UIN=29501213&PS=" + pw + "&M5=1&LC=9326B87B234E7235",
			"VER=1.1&CMD=Login&SEQ=11281&UIN=29501213&RES=0&RS=0&HI=60&LI=300"},
		{"VER=1.1&CMD=List&SEQ=43661&UIN=29501213&TN=160&UN=0",
			"VER=1.1&CMD=LIST&SEQ=43661&UIN=29501213&RES=0&FN=1&SN=2&UN=12327207,24259132,"},
		// The C# example of the article, verbatim.
		{"VER=1.0&CMD=Query_Stat&SEQ=12321&UIN=29501213&TN=50&UN=0",
			"VER=1.0&CMD=QUERY_STAT&SEQ=12321&UIN=29501213&RES=0&FC=141,270,270,&FN=1&SN=3&ST=10,10,10,&UN=12327207,24259132,29501213,&NK= □,微程,鶹鸑,&"},
		{"VER=1.1&CMD=Login&SEQ=1&UIN=415103947&PS=" + pw + "&M5=1&LC=9326B87B234E7235",
			"VER=1.1&CMD=Login&SEQ=1&UIN=415103947&RES=0&RS=0&HI=60&LI=300"},
		{"VER=1.1&CMD=GetInfo&SEQ=12707&UIN=415103947&LV=2&UN=24259132",
			"VER=1.1&CMD=GETINFO&SEQ=12707&UIN=415103947&RES=0&AD=云南昆明&AG=0&EM=Microprogramer@hotmail.com&FC=270&HP=msger.org(建设中...)&JB=程序员&LV=2&PC=650000&PH=0871-6466529&PR=网络为媒%252c关系为本%252c信息为财%252c客户为主.%0d%0a&PV=云南省&RN=刘X&SC=社会大学&SX=0&UN=24259132&NK=微程"},
		{"VER=1.1&CMD=AddToList&SEQ=13666&UIN=415103947&UN=24259132",
			"VER=1.1&CMD=AddToList&SEQ=13666&UIN=415103947&RES=0&CD=0&UN=24259132"},
		{"VER=1.1&CMD=Ack_AddToList&SEQ=1130&UIN=415103947&UN=24259132&CD=0&RS=",
			"VER=1.1&CMD=Ack_AddToList&SEQ=1130&UIN=415103947&RES=0&"},
		{"VER=1.1&CMD=DelFromList&SEQ=24514&UIN=415103947&UN=24259132",
			"VER=1.1&CMD=DelFromList&SEQ=24514&UIN=415103947&RES=0&"},
		{"VER=1.1&CMD=Change_Stat&SEQ=17512&UIN=415103947&ST=30",
			"VER=1.1&CMD=Change_Stat&SEQ=17512&UIN=415103947&RES=0&"},
		{"VER=1.1&CMD=CLTMSG&SEQ=15803&UIN=415103947&UN=24259132&MG=hello",
			"VER=1.1&CMD=CLTMSG&SEQ=15803&UIN=415103947&RES=0"},
		{"VER=1.1&CMD=Logout&SEQ=15804&UIN=415103947",
			"VER=1.1&CMD=LOGOUT&SEQ=15804&UIN=415103947&RES=0"},
	}
	for _, st := range steps {
		if got := m.line(st.req); got != st.want {
			t.Errorf("request %s\n got %s\nwant %s", st.req, got, st.want)
		}
	}

	// The GetMsgEx line: a state notice and two messages whose text ends
	// in a space, exactly as the article shows them.
	if err := m.s.SetState(24259132, qqproto.StatusBusy); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"asdfasdfasdfasdf ", "asdfasdfasdf "} {
		if err := m.s.Send(24259132, 29501213, text); err != nil {
			t.Fatal(err)
		}
	}
	got := m.line("VER=1.1&CMD=GetMsgEx&SEQ=56661&UIN=29501213")
	want := "VER=1.1&CMD=GETMSGEX&SEQ=56661&UIN=29501213&RES=0&MN=3&MT=99,9,9,&UN=24259132,24259132,24259132,&MG=30 ,asdfasdfasdfasdf ,asdfasdfasdf ,&"
	if got != want {
		t.Errorf("GetMsgEx\n got %s\nwant %s", got, want)
	}
}

// TestSeedTemplates sends the article's request templates as written, with
// their empty SEQ and UIN: each gets a reply line, RES=5 for the empty UIN.
func TestSeedTemplates(t *testing.T) {
	m := newSim(t, Options{}, seedWorld()...)
	for _, req := range []string{
		"VER=1.1&CMD=Login&SEQ=&UIN=&PS=&M5=1&LC=9326B87B234E7235",
		"VER=1.1&CMD=List&SEQ=&UIN=&TN=160&UN=0",
		"VER=1.1&CMD=Query_Stat&SEQ=&UIN=&TN=50&UN=0",
		"VER=1.1&CMD=GetInfo&SEQ=&UIN=&LV=2&UN=",
		"VER=1.1&CMD=AddToList&SEQ=&UIN=&UN=",
		"VER=1.1&CMD=Ack_AddToList&SEQ=&UIN=&UN=&CD=&RS=",
		"VER=1.1&CMD=DelFromList&SEQ=&UIN=&UN=",
		"VER=1.1&CMD=Change_Stat&SEQ=&UIN=&ST=",
		"VER=1.1&CMD=Logout&SEQ=&UIN=",
		"VER=1.1&CMD=GetMsgEx&SEQ=&UIN=",
		"VER=1.1&CMD=CLTMSG&SEQ=&UIN=&UN=&MG=",
	} {
		f, err := qqproto.Parse(m.line(req))
		if err != nil {
			t.Fatalf("%s: reply does not parse: %v", req, err)
		}
		h, err := qqproto.ReadHeader(f)
		if err != nil {
			t.Fatalf("%s: %v", req, err)
		}
		if h.Res != qqproto.ResInvalidUIN || h.Version != "1.1" {
			t.Errorf("%s: header %+v, want VER 1.1, RES=5", req, h)
		}
	}
}

// TestSeedEncodings: the Delphi client posted form-encoded bodies, the C#
// one raw bytes with no content type; both are accepted.
func TestSeedEncodings(t *testing.T) {
	m := newSim(t, Options{}, seedWorld()...)
	m.login(29501213)
	for i, ct := range []string{"", "application/x-www-form-urlencoded", "text/plain; charset=UTF-8"} {
		code, body := m.raw(ct, fmt.Sprintf("VER=1.0&CMD=Query_Stat&SEQ=%d&UIN=29501213&TN=50&UN=0", 777+i))
		if code != http.StatusOK {
			t.Fatalf("content type %q: HTTP %d %s", ct, code, body)
		}
		f, _ := qqproto.Parse(body)
		online, page, err := qqproto.ReadOnline(f)
		if err != nil || !page.Last || len(online) != 3 {
			t.Errorf("content type %q: %v %+v %v", ct, online, page, err)
		}
	}
}
