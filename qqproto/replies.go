package qqproto

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is what every reply echoes (VER, CMD, SEQ, UIN) plus its RES.
type Header struct {
	Version string
	Cmd     string
	Seq     int64
	UIN     UIN
	Res     int
}

// ReadHeader reads the common fields of a reply. A missing RES or CMD is
// malformed; an empty UIN (seen in the seed's Login reply) is 0.
func ReadHeader(f Fields) (Header, error) {
	h := Header{Version: f.Get("VER"), Cmd: f.Get("CMD")}
	if h.Cmd == "" {
		return h, fmt.Errorf("%w: reply has no CMD", ErrMalformed)
	}
	res, err := f.Int("RES")
	if err != nil {
		return h, err
	}
	h.Res = int(res)
	if s := strings.TrimSpace(f.Get("SEQ")); s != "" {
		if h.Seq, err = strconv.ParseInt(s, 10, 64); err != nil {
			return h, fmt.Errorf("%w: SEQ=%q", ErrMalformed, truncate(s, 20))
		}
	}
	if s := strings.TrimSpace(f.Get("UIN")); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return h, fmt.Errorf("%w: UIN=%q", ErrMalformed, truncate(s, 20))
		}
		h.UIN = UIN(n)
	}
	return h, nil
}

// Err turns a reply's RES into the error a caller branches on, nil for 0.
func (h Header) Err() error {
	switch h.Res {
	case ResOK:
		return nil
	case ResNotLoggedIn:
		return fmt.Errorf("%s: %w", h.Cmd, ErrNotLoggedIn)
	}
	return &ResultError{Cmd: h.Cmd, Code: h.Res}
}

// ReadLogin reads a Login reply that had RES=0: RS=0 gives the session
// timing, anything else a *LoginError with the RA text.
func ReadLogin(f Fields, uin UIN) (LoginResult, error) {
	rs, err := f.Int("RS")
	if err != nil {
		return LoginResult{}, err
	}
	if rs != 0 {
		return LoginResult{}, &LoginError{UIN: uin, Code: int(rs), Reason: f.Get("RA")}
	}
	var r LoginResult
	if f.Has("HI") {
		hi, err := f.Int("HI")
		if err != nil {
			return r, err
		}
		r.PollInterval = time.Duration(hi) * time.Second
	}
	if f.Has("LI") {
		li, err := f.Int("LI")
		if err != nil {
			return r, err
		}
		r.IdleTimeout = time.Duration(li) * time.Second
	}
	return r, nil
}

// Page is the paging part of a List or Query_Stat reply.
type Page struct {
	Last  bool // FN=1
	Count int  // SN: entries in this reply
}

func readPage(f Fields) (Page, error) {
	fn, err := f.Int("FN")
	if err != nil {
		return Page{}, err
	}
	p := Page{Last: fn == 1}
	if f.Has("SN") {
		sn, err := f.Int("SN")
		if err != nil {
			return p, err
		}
		p.Count = int(sn)
	}
	return p, nil
}

// ReadList reads one page of a List reply.
func ReadList(f Fields) ([]UIN, Page, error) {
	p, err := readPage(f)
	if err != nil {
		return nil, p, err
	}
	ns, err := f.Ints("UN")
	if err != nil {
		return nil, p, err
	}
	out := make([]UIN, len(ns))
	for i, n := range ns {
		out[i] = UIN(n)
	}
	if !f.Has("SN") {
		p.Count = len(out)
	}
	return out, p, nil
}

// ReadOnline reads one page of a Query_Stat reply: the parallel lists UN,
// ST, NK and FC line up by index. Entries are returned as the server sent
// them, the user's own number included.
func ReadOnline(f Fields) ([]Buddy, Page, error) {
	p, err := readPage(f)
	if err != nil {
		return nil, p, err
	}
	uns, err := f.Ints("UN")
	if err != nil {
		return nil, p, err
	}
	sts, err := f.Ints("ST")
	if err != nil {
		return nil, p, err
	}
	fcs, err := f.Ints("FC")
	if err != nil {
		return nil, p, err
	}
	nks := f.List("NK")
	if len(sts) != len(uns) || len(fcs) != len(uns) || len(nks) != len(uns) {
		return nil, p, fmt.Errorf("%w: Query_Stat lists differ in length (UN %d, ST %d, FC %d, NK %d)",
			ErrMalformed, len(uns), len(sts), len(fcs), len(nks))
	}
	out := make([]Buddy, len(uns))
	for i := range uns {
		out[i] = Buddy{UIN: UIN(uns[i]), Status: Status(sts[i]), Face: int(fcs[i]), Nick: nks[i]}
	}
	if !f.Has("SN") {
		p.Count = len(out)
	}
	return out, p, nil
}

// ReadProfile reads a GetInfo reply. Numbers that are absent or empty are
// 0 (Sex: SexUnknown); PR is unescaped a second time.
func ReadProfile(f Fields) (Profile, error) {
	num := func(key string, def int) (int, error) {
		if strings.TrimSpace(f.Get(key)) == "" {
			return def, nil
		}
		n, err := f.Int(key)
		return int(n), err
	}
	p := Profile{
		Nick: f.Get("NK"), RealName: f.Get("RN"), Email: f.Get("EM"), Homepage: f.Get("HP"),
		Job: f.Get("JB"), Phone: f.Get("PH"), Mobile: f.Get("MO"), Address: f.Get("AD"),
		Postcode: f.Get("PC"), Province: f.Get("PV"), City: f.Get("CT"), Country: f.Get("CY"),
		School: f.Get("SC"), About: Unescape(f.Get("PR")),
	}
	var err error
	var uin, sex int
	if uin, err = num("UN", 0); err != nil {
		return p, err
	}
	p.UIN = UIN(uin)
	if p.Face, err = num("FC", 0); err != nil {
		return p, err
	}
	if p.Level, err = num("LV", 0); err != nil {
		return p, err
	}
	if p.Age, err = num("AG", 0); err != nil {
		return p, err
	}
	if sex, err = num("SX", int(SexUnknown)); err != nil {
		return p, err
	}
	p.Sex = Sex(sex)
	return p, nil
}

// ReadAdd reads an AddToList reply's CD.
func ReadAdd(f Fields) (AddResult, error) {
	cd, err := f.Int("CD")
	return AddResult(cd), err
}

// ReadMessages reads a GetMsgEx reply: MN items in the parallel lists MT,
// UN and MG. Text is kept exactly as it came, padding included.
func ReadMessages(f Fields) ([]Message, error) {
	mn, err := f.Int("MN")
	if err != nil {
		return nil, err
	}
	if mn == 0 {
		return nil, nil
	}
	mts, err := f.Ints("MT")
	if err != nil {
		return nil, err
	}
	uns, err := f.Ints("UN")
	if err != nil {
		return nil, err
	}
	mgs := f.List("MG")
	if len(mts) != int(mn) || len(uns) != int(mn) || len(mgs) != int(mn) {
		return nil, fmt.Errorf("%w: GetMsgEx MN=%d but MT %d, UN %d, MG %d items",
			ErrMalformed, mn, len(mts), len(uns), len(mgs))
	}
	out := make([]Message, mn)
	for i := range out {
		out[i] = Message{Type: MessageType(mts[i]), From: UIN(uns[i]), Text: mgs[i]}
	}
	return out, nil
}
