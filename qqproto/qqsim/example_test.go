package qqsim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
)

func post(url, line string) string {
	resp, err := http.Post(url, "text/plain; charset=UTF-8", strings.NewReader(line))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A world of two accounts on a loopback server: one logs in and gets the
// other's message.
func Example() {
	sim := qqsim.New(qqsim.Options{})
	sim.AddAccount(qqsim.Account{UIN: 10001, Password: "demo", Nick: "演示用户", Buddies: []qqproto.UIN{10002}})
	sim.AddAccount(qqsim.Account{UIN: 10002, Password: "secret", Nick: "微程", State: qqproto.StatusOnline})
	srv := httptest.NewServer(sim)
	defer srv.Close()

	fmt.Println(post(srv.URL, "VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS="+qqproto.PasswordMD5("demo")+"&M5=1"))
	sim.Send(10002, 10001, "你好, demo")
	fmt.Println(post(srv.URL, "VER=1.1&CMD=GetMsgEx&SEQ=2&UIN=10001"))
	// Output:
	// VER=1.1&CMD=Login&SEQ=1&UIN=10001&RES=0&RS=0&HI=60&LI=300
	// VER=1.1&CMD=GETMSGEX&SEQ=2&UIN=10001&RES=0&MN=1&MT=9,&UN=10002,&MG=你好%2c demo,&
}
