package gateway

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"strconv"
	"strings"
	"sync"
	"time"

	"qqxmpp/qqproto"
)

// NSVCard is the namespace of vcard-temp (XEP-0054).
const NSVCard = "vcard-temp"

// VCard is a vcard-temp element as the gateway sends it: the subset of
// XEP-0054 a QQ profile fills, in the order of its DTD.
type VCard struct {
	XMLName  xml.Name     `xml:"vcard-temp vCard"`
	FN       string       `xml:"FN,omitempty"`
	Nickname string       `xml:"NICKNAME,omitempty"`
	Photo    *VCardPhoto  `xml:"PHOTO,omitempty"`
	Adr      []VCardAdr   `xml:"ADR"`
	Tel      []VCardTel   `xml:"TEL"`
	Email    []VCardEmail `xml:"EMAIL"`
	Title    string       `xml:"TITLE,omitempty"`
	Note     string       `xml:"NOTE,omitempty"`
	URL      string       `xml:"URL,omitempty"`
	Desc     string       `xml:"DESC,omitempty"`
}

// VCardPhoto is an embedded picture.
type VCardPhoto struct {
	Type   string `xml:"TYPE"`
	BinVal string `xml:"BINVAL"` // base64
}

// VCardAdr is a postal address.
type VCardAdr struct {
	Street   string `xml:"STREET,omitempty"`
	Locality string `xml:"LOCALITY,omitempty"`
	Region   string `xml:"REGION,omitempty"`
	PCode    string `xml:"PCODE,omitempty"`
	Country  string `xml:"CTRY,omitempty"`
}

// VCardTel is a telephone number; Cell marks a mobile.
type VCardTel struct {
	Voice  *struct{} `xml:"VOICE"`
	Cell   *struct{} `xml:"CELL"`
	Number string    `xml:"NUMBER"`
}

// VCardEmail is an Internet mail address.
type VCardEmail struct {
	Internet *struct{} `xml:"INTERNET"`
	UserID   string    `xml:"USERID"`
}

// BuddyVCard turns a QQ profile into a vCard. Where vcard-temp has a field
// for a profile value it goes there: real name → FN (the nickname when there
// is none), nickname → NICKNAME, job → TITLE, homepage → URL, e-mail →
// EMAIL, phone and mobile → TEL, address/city/province/postcode/country →
// ADR, the profile text → DESC exactly as decoded.
//
// vcard-temp has no field for sex, age or school (BDAY wants a date, QQ
// gives only an age), so those go into NOTE as "label: value" lines with
// Chinese and English labels, e.g. "性别/Sex: 男/male". An age of 0 is
// what QQ reports when none was given and is left out. A non-nil photo
// becomes PHOTO.
func BuddyVCard(p qqproto.Profile, photo *Avatar) VCard {
	v := VCard{
		FN:       firstNonEmpty(p.RealName, p.Nick),
		Nickname: p.Nick,
		Title:    p.Job,
		URL:      p.Homepage,
		Desc:     p.About,
		Note:     profileNote(p),
	}
	if photo != nil {
		v.Photo = &VCardPhoto{Type: AvatarType, BinVal: base64.StdEncoding.EncodeToString(photo.PNG)}
	}
	adr := VCardAdr{Street: p.Address, Locality: p.City, Region: p.Province, PCode: p.Postcode, Country: p.Country}
	if adr != (VCardAdr{}) {
		v.Adr = append(v.Adr, adr)
	}
	if p.Phone != "" {
		v.Tel = append(v.Tel, VCardTel{Voice: &struct{}{}, Number: p.Phone})
	}
	if p.Mobile != "" {
		v.Tel = append(v.Tel, VCardTel{Cell: &struct{}{}, Number: p.Mobile})
	}
	if p.Email != "" {
		v.Email = append(v.Email, VCardEmail{Internet: &struct{}{}, UserID: p.Email})
	}
	return v
}

// profileNote writes the profile values vcard-temp has no field for.
func profileNote(p qqproto.Profile) string { return joinLines(profileLines(p, true)) }

// profileLines are "label: value" lines for sex (if withSex), age and
// school.
func profileLines(p qqproto.Profile, withSex bool) []string {
	var lines []string
	switch {
	case !withSex:
	case p.Sex == qqproto.SexMale:
		lines = append(lines, "性别/Sex: 男/male")
	case p.Sex == qqproto.SexFemale:
		lines = append(lines, "性别/Sex: 女/female")
	}
	if p.Age > 0 {
		lines = append(lines, "年龄/Age: "+strconv.Itoa(p.Age))
	}
	if p.School != "" {
		lines = append(lines, "毕业院校/School: "+p.School)
	}
	return lines
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") }

// TransportVCard is the vCard of the gateway's own domain JID.
func TransportVCard(domain string) VCard {
	return VCard{
		FN:       "QQ Transport",
		Nickname: "QQ",
		Desc: "A gateway between XMPP and QQ (" + domain + "). Register your QQ number and password with " +
			"this service; your QQ buddies then appear in your roster as 12345@" + domain +
			", with their presence, and messages flow both ways.",
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// Profiles fetched with GetInfo are kept this long: a roster client asks
// for every contact's vCard, and profiles rarely change.
const (
	profileCacheTTL = 10 * time.Minute
	profileCacheMax = 4096 // entries; past it expired ones go, then the oldest
)

// profileCache keeps GetInfo answers by QQ number. The zero value is ready
// to use and safe for concurrent use.
type profileCache struct {
	mu sync.Mutex
	m  map[qqproto.UIN]cachedProfile
}

type cachedProfile struct {
	p  qqproto.Profile
	at time.Time
}

func (c *profileCache) get(uin qqproto.UIN, now time.Time) (qqproto.Profile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[uin]
	if !ok || now.Sub(e.at) >= profileCacheTTL {
		return qqproto.Profile{}, false
	}
	return e.p, true
}

func (c *profileCache) put(uin qqproto.UIN, p qqproto.Profile, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[qqproto.UIN]cachedProfile)
	}
	if _, ok := c.m[uin]; !ok && len(c.m) >= profileCacheMax {
		c.evictLocked(now)
	}
	c.m[uin] = cachedProfile{p: p, at: now}
}

// evictLocked makes room: expired entries go, and if none had expired, the
// oldest.
func (c *profileCache) evictLocked(now time.Time) {
	var oldest qqproto.UIN
	var oldestAt time.Time
	freed := false
	for u, e := range c.m {
		if now.Sub(e.at) >= profileCacheTTL {
			delete(c.m, u)
			freed = true
			continue
		}
		if oldestAt.IsZero() || e.at.Before(oldestAt) {
			oldest, oldestAt = u, e.at
		}
	}
	if !freed {
		delete(c.m, oldest)
	}
}

// vcardOf answers a vcard-temp get of the domain (uin 0) or of a buddy:
// the buddy's profile (see profileOrKnown) with its avatar.
func (s *session) vcardOf(ctx context.Context, uin qqproto.UIN) (any, error) {
	if uin == 0 {
		return TransportVCard(s.e.dom), nil
	}
	p, err := s.profileOrKnown(ctx, uin)
	if err != nil {
		return nil, err
	}
	return BuddyVCard(p, s.avatarOrNil(p.Face)), nil
}

// profileOrKnown is uin's GetInfo profile (cached for profileCacheTTL);
// while the session is not logged in, what is known of the buddy.
func (s *session) profileOrKnown(ctx context.Context, uin qqproto.UIN) (qqproto.Profile, error) {
	if p, ok := s.g.vcards.get(uin, s.g.clock.Now()); ok {
		return p, nil
	}
	if s.online() {
		return s.profile(ctx, uin)
	}
	// Not logged in: a card from what the session knows.
	return s.knownProfile(uin), nil
}

// knownProfile is what the session knows of uin without asking QQ: the
// nickname and face of its buddy list.
func (s *session) knownProfile(uin qqproto.UIN) qqproto.Profile {
	p := qqproto.Profile{UIN: uin, Sex: qqproto.SexUnknown}
	if b := s.buddies.get(uin); b != nil {
		p.Nick, p.Face = s.nick(b), int(b.face)
	}
	p.Nick = firstNonEmpty(p.Nick, uin.String())
	return p
}

// avatarOrNil is the avatar of a face, or nil (logged) if it could not be
// drawn: a card without a photo beats no card.
func (s *session) avatarOrNil(face int) *Avatar {
	av, err := s.e.avatars.ForFace(face)
	if err != nil {
		s.log.WithError(err).Warn("gateway: no avatar")
		return nil
	}
	return &av
}

// profile is uin's QQ profile: from the cache, else GetInfo (cached for
// profileCacheTTL). The session must be logged in.
func (s *session) profile(ctx context.Context, uin qqproto.UIN) (qqproto.Profile, error) {
	cache := &s.g.vcards
	if p, ok := cache.get(uin, s.g.clock.Now()); ok {
		return p, nil
	}
	var p qqproto.Profile
	err := s.withRelogin(ctx, func(qq QQ) (err error) {
		p, err = qq.Profile(ctx, uin)
		return err
	})
	if err != nil {
		s.log.WithError(err).WithField("buddy", int64(uin)).Warn("gateway: GetInfo failed")
		return p, err
	}
	cache.put(uin, p, s.g.clock.Now())
	return p, nil
}
