package qqsim

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

// Two clients of one listener, told apart by the address they came to,
// as the cluster test tells gateway processes apart.
func TestRequestRecordsTheAddressUsed(t *testing.T) {
	s := New(Options{})
	s.AddAccount(Account{UIN: alice, Password: "pw"})
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	for _, host := range []string{"127.0.0.1", "127.0.0.2"} {
		resp, err := http.Post("http://"+host+":"+port+"/", "text/plain", strings.NewReader("VER=1.1&CMD=Query_Stat&SEQ=1&UIN=10001"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	recs := s.Requests(alice)
	if len(recs) != 2 || recs[0].Via != "127.0.0.1:"+port || recs[1].Via != "127.0.0.2:"+port {
		t.Fatalf("requests recorded %+v; want one via 127.0.0.1:%s, then one via 127.0.0.2:%s", recs, port, port)
	}
}
