package qqsim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"qqxmpp/qqproto"
)

// api calls the control API and decodes the JSON answer into out (if not nil).
func (m *sim) api(method, path, body string, out any) (int, map[string]any) {
	m.t.Helper()
	req, err := http.NewRequest(method, m.srv.URL+path, strings.NewReader(body))
	if err != nil {
		m.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e map[string]any
		if err := json.Unmarshal(b, &e); err != nil && resp.StatusCode != http.StatusMethodNotAllowed {
			m.t.Fatalf("%s %s: HTTP %d, body not JSON: %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			m.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode, nil
}

func TestControlAPI(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)

	code, e := m.api("POST", "/_sim/account",
		`{"uin": 20001, "password": "pw", "nick": "新朋友, 你好", "face": 3, "auth": 1, "buddies": [10001], "state": 30,
		  "bot": "echo", "on_add": "approve", "profile": {"RN": "新", "pr": "about"}}`, nil)
	if code != http.StatusOK {
		t.Fatalf("POST account: %d %v", code, e)
	}
	m.login(20001) // the JSON password works
	var info SessionInfo
	m.api("GET", "/_sim/session/20001", "", &info)
	if !info.Exists || !info.LoggedIn || info.Logins != 1 || len(info.Buddies) != 1 || info.Buddies[0] != alice {
		t.Errorf("session %+v", info)
	}
	p, _ := qqproto.ReadProfile(m.ok(20001, "GetInfo", ""))
	if p.Nick != "新朋友, 你好" || p.RealName != "新" || p.About != "about" || p.Face != 3 {
		t.Errorf("profile from the API %+v", p)
	}

	m.login(alice)
	if code, e := m.api("POST", "/_sim/send", `{"from": 10002, "to": 10001, "text": "来自 API, & more"}`, nil); code != 200 {
		t.Fatalf("send: %d %v", code, e)
	}
	if code, e := m.api("POST", "/_sim/state", `{"uin": 10002, "state": 30}`, nil); code != 200 {
		t.Fatalf("state: %d %v", code, e)
	}
	// Alice's auth is 0: dave's request adds her to his list at once.
	if code, e := m.api("POST", "/_sim/ack", `{"from": 10004, "to": 10001, "cd": 2, "reason": "加我"}`, nil); code != 200 {
		t.Fatalf("ack: %d %v", code, e)
	}
	wantMsgs(t, m.msgs(alice), msg(9, bob, "来自 API, & more"), msg(99, bob, "30 "))
	if b := m.s.Session(dave).Buddies; len(b) != 1 || b[0] != alice {
		t.Errorf("dave's list after his request to an auth-0 account: %v", b)
	}

	var inbox []InboxItem
	m.api("GET", "/_sim/inbox/10001", "", &inbox)
	if len(inbox) != 2 || inbox[0].Text != "来自 API, & more" || inbox[0].From != bob || inbox[0].At.IsZero() {
		t.Errorf("inbox %+v", inbox)
	}
	var recs []RequestRecord
	m.api("GET", "/_sim/requests/10001", "", &recs)
	if len(recs) != 2 || recs[0].Cmd != "LOGIN" || recs[1].Cmd != "GETMSGEX" {
		t.Errorf("requests %+v", recs)
	}
	var st Stats
	m.api("GET", "/_sim/stats", "", &st)
	if st.Accounts != 5 || st.Sessions != 2 {
		t.Errorf("stats %+v", st)
	}
	var f Faults
	if code, e := m.api("POST", "/_sim/faults", `{"latency_ms": 0, "error_rate": 0.5, "seed": 9}`, &f); code != 200 || f.ErrorRate != 0.5 {
		t.Errorf("faults: %d %v %+v", code, e, f)
	}
	if code, e := m.api("POST", "/_sim/faults", `{}`, nil); code != 200 {
		t.Errorf("faults off: %d %v", code, e)
	}

	// Bad input: 400 naming the field.
	for _, c := range []struct {
		method, path, body string
		code               int
		field              string
	}{
		{"POST", "/_sim/account", `{"uin": 20002, "password": "x", "nickname": "typo"}`, 400, "nickname"},
		{"POST", "/_sim/account", `{"uin": 20002, "password": "x", "auth": 2}`, 400, "auth"},
		{"POST", "/_sim/account", `{"uin": 20002, "password": "x", "state": 15}`, 400, "state"},
		{"POST", "/_sim/account", `{"uin": 20002, "password": "x", "bot": "chatty"}`, 400, "bot"},
		{"POST", "/_sim/account", `{"uin": 20002, "password": "x", "profile": {"XX": "1"}}`, 400, "profile.XX"},
		{"POST", "/_sim/account", `{"uin": 20002, "password": "x", "profile": {"AG": "old"}}`, 400, "profile.AG"},
		{"POST", "/_sim/account", `{"uin": 20002}`, 400, "password"},
		{"POST", "/_sim/account", `{"uin": 123, "password": "x"}`, 400, "uin"},
		{"POST", "/_sim/account", `{"uin": "20002", "password": "x"}`, 400, "uin"},
		{"POST", "/_sim/account", `{"uin": 10001, "password": "x"}`, 400, "uin"},
		{"POST", "/_sim/account", `{"uin": 20002, "password": "x", "buddies": [20002]}`, 400, "buddies[0]"},
		{"POST", "/_sim/account", `not json`, 400, ""},
		{"POST", "/_sim/send", `{"from": 10002, "to": 10001}`, 400, "text"},
		{"POST", "/_sim/state", `{"uin": 10002, "state": 11}`, 400, "state"},
		{"POST", "/_sim/ack", `{"from": 10002, "to": 10001, "cd": 5}`, 400, "cd"},
		{"POST", "/_sim/ack", `{"from": 10002, "to": 10002, "cd": 2}`, 400, "to"},
		{"POST", "/_sim/faults", `{"error_rate": 2}`, 400, "error_rate"},
		{"POST", "/_sim/faults", `{"drop": 0.1}`, 400, "drop"},
		{"GET", "/_sim/inbox/abc", ``, 400, "uin"},
		{"GET", "/_sim/session/0", ``, 400, "uin"},
	} {
		code, e := m.api(c.method, c.path, c.body, nil)
		if code != c.code || e["field"] != c.field || e["error"] == "" {
			t.Errorf("%s %s %s: %d %v, want %d naming %q", c.method, c.path, c.body, code, e, c.code, c.field)
		}
	}
	if code, _ := m.api("GET", "/_sim/send", "", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /_sim/send: %d", code)
	}
}

// Every call that names an account answers a number no account has with
// 404 and a short JSON body naming the field; the Go methods return an
// error that Is ErrUnknownAccount.
func TestControlAPIUnknownAccount(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	for _, c := range []struct {
		method, path, body string
		field              string
	}{
		{"POST", "/_sim/send", `{"from": 10002, "to": 99999, "text": "x"}`, "to"},
		{"POST", "/_sim/send", `{"from": 99999, "to": 10001, "text": "x"}`, "from"},
		{"POST", "/_sim/state", `{"uin": 99999, "state": 10}`, "uin"},
		{"POST", "/_sim/ack", `{"from": 99999, "to": 10001, "cd": 2}`, "from"},
		{"POST", "/_sim/ack", `{"from": 10001, "to": 99999, "cd": 0}`, "to"},
		{"POST", "/_sim/ack", `{"from": 99999, "to": 99999, "cd": 2}`, "from"},
		{"GET", "/_sim/inbox/99999", ``, "uin"},
		{"GET", "/_sim/session/99999", ``, "uin"},
		{"GET", "/_sim/requests/99999", ``, "uin"},
	} {
		code, e := m.api(c.method, c.path, c.body, nil)
		want := map[string]any{"error": c.field + ": 99999: no such QQ account", "field": c.field}
		if code != http.StatusNotFound || !reflect.DeepEqual(e, want) {
			t.Errorf("%s %s %s: %d %v, want 404 %v", c.method, c.path, c.body, code, e, want)
		}
	}
	for name, err := range map[string]error{
		"Send":     m.s.Send(alice, 99999, "x"),
		"SetState": m.s.SetState(99999, qqproto.StatusBusy),
		"Ack":      m.s.Ack(99999, alice, qqproto.AckRequest, ""),
	} {
		var fe *FieldError
		if !errors.Is(err, ErrUnknownAccount) || !errors.As(err, &fe) {
			t.Errorf("%s: err %v, want ErrUnknownAccount as a *FieldError", name, err)
		}
	}
	if in, info, rs := m.s.Inbox(99999), m.s.Session(99999), m.s.Requests(99999); in != nil || info.Exists || rs != nil {
		t.Errorf("unknown account: inbox %v, session %+v, requests %v", in, info, rs)
	}
}

// EndSession drops a session as the idle timeout would: RES=20 until the
// number logs in again.
func TestEndSession(t *testing.T) {
	m := newSim(t, Options{}, fourFriends()...)
	m.login(alice)
	if err := m.s.EndSession(alice); err != nil {
		t.Fatal(err)
	}
	if r := res(m.cmd(alice, "GetMsgEx", "")); r != 20 {
		t.Errorf("GetMsgEx after EndSession: RES=%d, want 20", r)
	}
	if m.s.Session(alice).LoggedIn {
		t.Error("session still logged in")
	}
	if err := m.s.EndSession(99999); err == nil {
		t.Error("EndSession of an unknown number succeeded")
	}
}
