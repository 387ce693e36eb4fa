package qqsim

import (
	"strconv"
	"strings"
	"time"

	"qqxmpp/qqproto"
)

// call is one command being executed under Server.mu: the reply's fields
// after RES go to out.
type call struct {
	s   *Server
	a   *account
	req qqproto.Fields
	now time.Time
	out qqproto.Fields
}

// commands by upper-cased name. Every one but LOGIN needs a live session.
var commands = map[string]func(*call) int{
	"LOGIN":         cmdLogin,
	"LIST":          cmdList,
	"QUERY_STAT":    cmdQueryStat,
	"GETINFO":       cmdGetInfo,
	"ADDTOLIST":     cmdAddToList,
	"ACK_ADDTOLIST": cmdAckAddToList,
	"DELFROMLIST":   cmdDelFromList,
	"CHANGE_STAT":   cmdChangeStat,
	"LOGOUT":        cmdLogout,
	"GETMSGEX":      cmdGetMsgEx,
	"CLTMSG":        cmdCLTMSG,
}

// wrongPassword is the RA of a refused Login, as historic servers wrote it.
const wrongPassword = "密码错误"

// num reads an optional number field: def when absent or empty.
func (c *call) num(key string, def int64) (int64, bool) {
	if strings.TrimSpace(c.req.Get(key)) == "" {
		return def, true
	}
	n, err := c.req.Int(key)
	return n, err == nil
}

// target is the account named by UN; nil when UN is not an account.
func (c *call) target() *account {
	u, ok := qqproto.ParseUIN(strings.TrimSpace(c.req.Get("UN")))
	if !ok {
		return nil
	}
	return c.s.accounts[u]
}

// page reads TN (page size, capped) and UN (start index).
func (c *call) page(limit int) (start, size int, ok bool) {
	tn, ok1 := c.num("TN", int64(limit))
	un, ok2 := c.num("UN", 0)
	if !ok1 || !ok2 || un < 0 || tn < 0 {
		return 0, 0, false
	}
	if tn == 0 || tn > int64(limit) {
		tn = int64(limit)
	}
	return int(min(un, 1<<31)), int(tn), true
}

func pageBounds(start, size, total int) (lo, hi int, last bool) {
	lo = min(start, total)
	hi = min(lo+size, total)
	return lo, hi, hi >= total
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Login: PS is the MD5 of the password when M5=1. Without M5=1 the PS is
// taken as the password itself, as some early clients sent it.
func cmdLogin(c *call) int {
	ps := c.req.Get("PS")
	sum := strings.ToLower(strings.TrimSpace(ps))
	if strings.TrimSpace(c.req.Get("M5")) != "1" {
		sum = qqproto.PasswordMD5(ps)
	}
	if ps == "" || sum != c.a.pwMD5 {
		c.out.SetInt("RS", 1)
		c.out.Set("RA", wrongPassword)
		return qqproto.ResOK
	}
	c.s.login(c.a, c.req.Get("LC"), c.now)
	c.out.SetInt("RS", 0)
	c.out.SetInt("HI", seconds(c.s.opts.PollInterval))
	c.out.SetInt("LI", seconds(c.s.opts.IdleTimeout))
	return qqproto.ResOK
}

func seconds(d time.Duration) int64 { return max(int64(d/time.Second), 1) }

func cmdList(c *call) int {
	start, size, ok := c.page(160)
	if !ok {
		return ResBadRequest
	}
	lo, hi, last := pageBounds(start, size, len(c.a.buddies))
	uns := make([]string, 0, hi-lo)
	for _, b := range c.a.buddies[lo:hi] {
		uns = append(uns, b.String())
	}
	c.out.SetInt("FN", boolInt(last))
	c.out.SetInt("SN", int64(len(uns)))
	c.out.SetList("UN", uns)
	return qqproto.ResOK
}

// Query_Stat lists the buddies others can see online (10, 30), and, as in
// the seed, the user's own number in its place among them.
func cmdQueryStat(c *call) int {
	start, size, ok := c.page(50)
	if !ok {
		return ResBadRequest
	}
	var online []*account
	self := false
	for _, b := range c.a.buddies {
		if !self && b > c.a.UIN {
			online = append(online, c.a)
			self = true
		}
		if ba := c.s.accounts[b]; ba != nil && visible(ba.state) != qqproto.StatusOffline {
			online = append(online, ba)
		}
	}
	if !self {
		online = append(online, c.a)
	}
	lo, hi, last := pageBounds(start, size, len(online))
	n := hi - lo
	fc, st, un, nk := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	for _, b := range online[lo:hi] {
		fc = append(fc, strconv.Itoa(b.Face))
		st = append(st, strconv.Itoa(int(b.state)))
		un = append(un, b.UIN.String())
		nk = append(nk, b.Nick)
	}
	c.out.SetList("FC", fc)
	c.out.SetInt("FN", boolInt(last))
	c.out.SetInt("SN", int64(n))
	c.out.SetList("ST", st)
	c.out.SetList("UN", un)
	c.out.SetList("NK", nk)
	return qqproto.ResOK
}

// profileEscaper escapes profile text once before the codec escapes it
// again, reproducing the seed's PR: commas twice (%252c), line breaks once (%0d%0a).
var profileEscaper = strings.NewReplacer("%", "%25", "&", "%26", ",", "%2c", "=", "%3d")

// infoOrder is the order of the seed's GetInfo reply; CT, CY and MO only at LV=3.
var infoOrder = []string{"AD", "AG", "CT", "CY", "EM", "FC", "HP", "JB", "LV", "MO", "PC", "PH", "PR", "PV", "RN", "SC", "SX", "UN", "NK"}

func cmdGetInfo(c *call) int {
	lv, ok := c.num("LV", 2)
	if !ok || lv < 1 || lv > 3 {
		return ResBadRequest
	}
	t := c.a
	if strings.TrimSpace(c.req.Get("UN")) != "" {
		if t = c.target(); t == nil {
			return qqproto.ResInvalidUIN
		}
	}
	for _, k := range infoOrder {
		switch k {
		case "CT", "CY", "MO":
			if lv == 3 {
				c.out.Set(k, t.Profile[k])
			}
		case "FC":
			c.out.SetInt(k, int64(t.Face))
		case "LV":
			c.out.SetInt(k, lv)
		case "UN":
			c.out.Set(k, t.UIN.String())
		case "NK":
			c.out.Set(k, t.Nick)
		case "PR":
			c.out.Set(k, profileEscaper.Replace(t.Profile[k]))
		default:
			c.out.Set(k, t.Profile[k])
		}
	}
	return qqproto.ResOK
}

// AddToList answers with the target's auth mode; with 0 the target is
// added at once, one way (the target's own list does not change, as in QQ).
func cmdAddToList(c *call) int {
	t := c.target()
	if t == nil || t == c.a {
		return qqproto.ResInvalidUIN
	}
	cd := qqproto.AddResult(t.Auth)
	if c.a.hasBuddy(t.UIN) {
		cd = qqproto.AddAccepted
	}
	if cd == qqproto.AddAccepted {
		c.s.addBuddy(c.a, t.UIN)
	}
	c.out.SetInt("CD", int64(cd))
	c.out.Set("UN", t.UIN.String())
	return qqproto.ResOK
}

func cmdAckAddToList(c *call) int {
	t := c.target()
	if t == nil || t == c.a {
		return qqproto.ResInvalidUIN
	}
	cd, err := c.req.Int("CD")
	if err != nil {
		return ResBadRequest
	}
	return c.s.ack(c.a, t, qqproto.AckCode(cd), c.req.Get("RS"), c.now)
}

func cmdDelFromList(c *call) int {
	u, ok := qqproto.ParseUIN(strings.TrimSpace(c.req.Get("UN")))
	if !ok || (!c.a.hasBuddy(u) && c.s.accounts[u] == nil) {
		return qqproto.ResInvalidUIN
	}
	c.s.delBuddy(c.a, u)
	return qqproto.ResOK
}

func cmdChangeStat(c *call) int {
	st, err := c.req.Int("ST")
	if err != nil || !qqproto.Status(st).Valid() {
		return ResBadRequest
	}
	c.s.setState(c.a, qqproto.Status(st), c.now)
	return qqproto.ResOK
}

func cmdLogout(c *call) int {
	c.s.logout(c.a, c.now)
	return qqproto.ResOK
}

// GetMsgEx hands out the oldest queued items, at most MaxMessages; they
// leave the queue (a retry with the same SEQ gets them again from memory).
func cmdGetMsgEx(c *call) int {
	n := min(len(c.a.queue), c.s.opts.MaxMessages)
	items := c.a.queue[:n]
	mt, un, mg := make([]string, n), make([]string, n), make([]string, n)
	for i, it := range items {
		mt[i] = strconv.Itoa(int(it.Type))
		un[i] = it.From.String()
		mg[i] = it.Text
	}
	if n == len(c.a.queue) {
		c.a.queue = nil
	} else {
		c.a.queue = c.a.queue[n:] // the next append that grows it lets the head go
	}
	c.out.SetInt("MN", int64(n))
	if n > 0 {
		c.out.SetList("MT", mt)
		c.out.SetList("UN", un)
		c.out.SetList("MG", mg)
	}
	return qqproto.ResOK
}

// CLTMSG delivers to anyone, buddy or not (QQ let strangers write); an
// offline recipient finds it queued at its next GetMsgEx.
func cmdCLTMSG(c *call) int {
	t := c.target()
	if t == nil {
		return qqproto.ResInvalidUIN
	}
	text := c.req.Get("MG")
	if text == "" {
		return ResBadRequest
	}
	c.s.deliver(t, InboxItem{Type: qqproto.MsgBuddy, From: c.a.UIN, Text: text, At: c.now}, true)
	return qqproto.ResOK
}
