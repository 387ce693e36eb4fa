package gateway

import (
	"path/filepath"
	"testing"
	"time"

	"qqxmpp/qqproto"
)

// An idle user on the default schedule costs at most 6 QQ requests a
// minute (issue 12), GetMsgEx and Query_Stat together, with the server's
// usual HI of 60 s.
func TestIdleUserOnDefaultScheduleCostsAtMostSixRequestsAMinute(t *testing.T) {
	qq := newFakeQQ("secret", qqproto.Buddy{UIN: 20001, Nick: "Bob", Status: qqproto.StatusOnline})
	h := &harness{t: t, dbPath: filepath.Join(t.TempDir(), "gw.db")}
	h.cfg = testConfig("http://127.0.0.1:1/")
	def := DefaultConfig(testDomain)
	h.cfg.PollActive, h.cfg.PollIdle, h.cfg.StatusInterval = def.PollActive, def.PollIdle, def.StatusInterval
	h.cfg.NewQQ = func(qqproto.UIN) QQ { return qq }
	h.openStore()
	h.start()
	h.register("10001", "secret")
	h.goOnline("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.quiesce()
	polls, stats := qq.count("GetMsgEx"), qq.count("Query_Stat")

	const minutes = 5
	h.advance(minutes * time.Minute)

	n := qq.count("GetMsgEx") - polls + qq.count("Query_Stat") - stats
	if n > 6*minutes || n < 5*minutes {
		t.Errorf("%d GetMsgEx and Query_Stat in %d idle minutes, want 6 a minute at most (and polling)", n, minutes)
	}
}
