package gateway

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"strconv"
	"time"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
)

// Namespaces of the profile and avatar a buddy JID serves as if it were a
// PEP service (XEP-0163): vCard4 (XEP-0292) and User Avatar (XEP-0084).
const (
	nsPubSub          = "http://jabber.org/protocol/pubsub"
	nsPubSubRetrieve  = nsPubSub + "#retrieve-items"
	nsVCard4          = "urn:xmpp:vcard4"
	nsVCard4Element   = "urn:ietf:params:xml:ns:vcard-4.0"
	nsAvatarMetadata  = "urn:xmpp:avatar:metadata"
	nsAvatarData      = "urn:xmpp:avatar:data"
	vcard4CurrentItem = "current" // the item id XEP-0292 publishes under
)

// pubsubQuery is a pubsub get as clients send it: the items of a node,
// optionally only some ids.
type pubsubQuery struct {
	Items *struct {
		Node string `xml:"node,attr"`
		Item []struct {
			ID string `xml:"id,attr"`
		} `xml:"item"`
	} `xml:"http://jabber.org/protocol/pubsub pubsub>items"`
}

// pubsubResult is the answer to an items request.
type pubsubResult struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/pubsub pubsub"`
	Items   struct {
		Node string       `xml:"node,attr"`
		Item []pubsubItem `xml:"item"`
	} `xml:"items"`
}

type pubsubItem struct {
	ID      string `xml:"id,attr"`
	Payload any
}

// pubsubGet answers the items of a buddy's vCard4 and avatar nodes. There
// is one item per node, made from what vcard-temp serves: the profile
// cached by vcardOf's fetch, the avatar drawn from the buddy's face.
func (s *session) pubsubGet(ctx context.Context, in inbound) (any, error) {
	var q pubsubQuery
	if err := xml.Unmarshal(in.st.Raw, &q); err != nil {
		return nil, errMalformed
	}
	if q.Items == nil {
		return nil, newUserError(stanza.FeatureNotImplemented, "QQ contacts only answer requests for items.")
	}
	node := q.Items.Node
	var item pubsubItem
	switch node {
	case nsVCard4:
		v, err := s.buddyVCard4(ctx, in.uin)
		if err != nil {
			return nil, err
		}
		item = pubsubItem{ID: vcard4CurrentItem, Payload: v}
	case nsAvatarMetadata, nsAvatarData:
		av, err := s.buddyAvatar(ctx, in.uin)
		if err != nil {
			return nil, err
		}
		item = avatarItem(node, av)
	default:
		return nil, newUserError(stanza.ItemNotFound, "QQ contacts have no node %q.", node)
	}
	if !wantsItem(q, item.ID) {
		return nil, newUserError(stanza.ItemNotFound, "No such item in node %q.", node)
	}
	var r pubsubResult
	r.Items.Node = node
	r.Items.Item = []pubsubItem{item}
	return r, nil
}

// wantsItem tells whether the query asked for all items or for id.
func wantsItem(q pubsubQuery, id string) bool {
	if len(q.Items.Item) == 0 {
		return true
	}
	for _, it := range q.Items.Item {
		if it.ID == id {
			return true
		}
	}
	return false
}

// buddyAvatar is the avatar a buddy's presence advertises: drawn from the
// face its list entry has, else from its profile's.
func (s *session) buddyAvatar(ctx context.Context, uin qqproto.UIN) (Avatar, error) {
	face := 0
	if b := s.buddies.get(uin); b != nil {
		face = int(b.face)
	} else {
		p, err := s.profileOrKnown(ctx, uin)
		if err != nil {
			return Avatar{}, err
		}
		face = p.Face
	}
	av, err := s.e.avatars.ForFace(face)
	if err != nil {
		s.log.WithError(err).Warn("gateway: no avatar")
		return Avatar{}, newUserError(stanza.InternalServerError, "The avatar could not be drawn.")
	}
	return av, nil
}

// avatarMetadata is XEP-0084's metadata payload with one PNG.
type avatarMetadata struct {
	XMLName xml.Name `xml:"urn:xmpp:avatar:metadata metadata"`
	Info    struct {
		Bytes  int    `xml:"bytes,attr"`
		ID     string `xml:"id,attr"`
		Type   string `xml:"type,attr"`
		Width  int    `xml:"width,attr"`
		Height int    `xml:"height,attr"`
	} `xml:"info"`
}

// avatarData is XEP-0084's data payload.
type avatarData struct {
	XMLName xml.Name `xml:"urn:xmpp:avatar:data data"`
	Base64  string   `xml:",chardata"`
}

// avatarItem is the item of an avatar node: both are published under the
// hash of the PNG (XEP-0084 4.1).
func avatarItem(node string, av Avatar) pubsubItem {
	if node == nsAvatarData {
		return pubsubItem{ID: av.Hash, Payload: avatarData{Base64: base64.StdEncoding.EncodeToString(av.PNG)}}
	}
	var m avatarMetadata
	m.Info.Bytes, m.Info.ID, m.Info.Type = len(av.PNG), av.Hash, AvatarType
	m.Info.Width, m.Info.Height = avatarSize, avatarSize
	return pubsubItem{ID: av.Hash, Payload: m}
}

// buddyVCard4 is a buddy's vCard4 as its node serves it and notifications
// carry it: its profile (profileOrKnown) with the nickname and face of the
// buddy list, which is polled and so fresher than a cached GetInfo; the
// photo is then the avatar its presence advertises.
func (s *session) buddyVCard4(ctx context.Context, uin qqproto.UIN) (VCard4, error) {
	p, err := s.profileOrKnown(ctx, uin)
	if err != nil {
		return VCard4{}, err
	}
	return s.listedVCard4(uin, p), nil
}

// listedVCard4 is the vCard4 of uin's profile p with the nickname and
// face of the buddy list.
func (s *session) listedVCard4(uin qqproto.UIN, p qqproto.Profile) VCard4 {
	if b := s.buddies.get(uin); b != nil && b.listed() {
		p.Nick, p.Face = firstNonEmpty(s.nick(b), p.Nick), int(b.face)
	}
	return BuddyVCard4(p, s.avatarOrNil(p.Face))
}

// VCard4 is an RFC 6351 vCard in XML as XEP-0292 carries it: the fields a
// QQ profile fills.
type VCard4 struct {
	XMLName  xml.Name    `xml:"urn:ietf:params:xml:ns:vcard-4.0 vcard"`
	FN       []v4Text    `xml:"fn"`
	Nickname []v4Text    `xml:"nickname"`
	Gender   []v4Gender  `xml:"gender"`
	Photo    []v4URI     `xml:"photo"`
	Adr      []VCard4Adr `xml:"adr"`
	Tel      []v4Tel     `xml:"tel"`
	Email    []v4Text    `xml:"email"`
	Title    []v4Text    `xml:"title"`
	URL      []v4URI     `xml:"url"`
	Note     []v4Text    `xml:"note"`
}

type v4Text struct {
	Text string `xml:"text"`
}

type v4URI struct {
	URI string `xml:"uri"`
}

type v4Gender struct {
	Sex string `xml:"sex"`
}

// v4Tel is a telephone number with its type (voice or cell).
type v4Tel struct {
	Type v4Text `xml:"parameters>type"`
	URI  string `xml:"uri"`
}

// VCard4Adr is a postal address; RFC 6351 wants all seven parts present.
type VCard4Adr struct {
	POBox    string `xml:"pobox"`
	Ext      string `xml:"ext"`
	Street   string `xml:"street"`
	Locality string `xml:"locality"`
	Region   string `xml:"region"`
	Code     string `xml:"code"`
	Country  string `xml:"country"`
}

// BuddyVCard4 turns a QQ profile into a vCard4, field for field as
// BuddyVCard does; vCard4 has a gender, so sex is there rather than in a
// note. The profile text is the first note, age and school the second.
func BuddyVCard4(p qqproto.Profile, photo *Avatar) VCard4 {
	v := VCard4{}
	text := func(dst *[]v4Text, s string) {
		if s != "" {
			*dst = append(*dst, v4Text{Text: s})
		}
	}
	text(&v.FN, firstNonEmpty(p.RealName, p.Nick))
	text(&v.Nickname, p.Nick)
	text(&v.Email, p.Email)
	text(&v.Title, p.Job)
	text(&v.Note, p.About)
	text(&v.Note, joinLines(profileLines(p, false)))
	if sex := vcard4Sex(p.Sex); sex != "" {
		v.Gender = []v4Gender{{Sex: sex}}
	}
	if p.Homepage != "" {
		v.URL = []v4URI{{URI: p.Homepage}}
	}
	if photo != nil {
		v.Photo = []v4URI{{URI: "data:" + AvatarType + ";base64," + base64.StdEncoding.EncodeToString(photo.PNG)}}
	}
	adr := VCard4Adr{Street: p.Address, Locality: p.City, Region: p.Province, Code: p.Postcode, Country: p.Country}
	if adr != (VCard4Adr{}) {
		v.Adr = []VCard4Adr{adr}
	}
	if p.Phone != "" {
		v.Tel = append(v.Tel, v4Tel{Type: v4Text{Text: "voice"}, URI: "tel:" + p.Phone})
	}
	if p.Mobile != "" {
		v.Tel = append(v.Tel, v4Tel{Type: v4Text{Text: "cell"}, URI: "tel:" + p.Mobile})
	}
	return v
}

// vcard4Sex is RFC 6350's sex component: M, F, or none when unknown.
func vcard4Sex(s qqproto.Sex) string {
	switch s {
	case qqproto.SexMale:
		return "M"
	case qqproto.SexFemale:
		return "F"
	}
	return ""
}

// ---- notifications (XEP-0163) ----

// pubsubEvent is a PEP notification of one item of a node.
type pubsubEvent struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/pubsub#event event"`
	Items   struct {
		Node string       `xml:"node,attr"`
		Item []pubsubItem `xml:"item"`
	} `xml:"items"`
}

func newPubsubEvent(node string, it pubsubItem) pubsubEvent {
	var ev pubsubEvent
	ev.Items.Node, ev.Items.Item = node, []pubsubItem{it}
	return ev
}

// avatarWatchers are the full JIDs of the user's resources that asked for
// avatar notifications (usercaps.go).
func (s *session) avatarWatchers() []string {
	var out []string
	for _, r := range s.res.m {
		if r.avatars {
			out = append(out, s.key+"/"+r.name)
		}
	}
	return out
}

// currentAvatar is the avatar a listed buddy publishes, or false for none.
func (s *session) currentAvatar(b *buddy) (Avatar, bool) {
	if !b.listed() {
		return Avatar{}, false
	}
	av, err := s.e.avatars.ForFace(int(b.face))
	if err != nil {
		s.log.WithError(err).Warn("gateway: no avatar")
		return Avatar{}, false
	}
	return av, true
}

// notifiedMark is what buddy.notified holds once b's current avatar was
// sent.
func notifiedMark(b *buddy) int16 { return 1 + int16(avatarPicture(int(b.face))) }

// syncAvatar tells the resources that asked for avatar notifications a
// listed buddy's avatar metadata if it changed since they were last told,
// as the buddy's PEP service would on a publish. Only once all were told
// is it noted: a failed send is tried again at the next announce.
func (s *session) syncAvatar(ctx context.Context, b *buddy) {
	av, ok := s.currentAvatar(b)
	if !ok || notifiedMark(b) == b.notified {
		return
	}
	for _, to := range s.avatarWatchers() {
		if err := s.e.pepEvent(ctx, b.uin, to, newPubsubEvent(nsAvatarMetadata, avatarItem(nsAvatarMetadata, av))); err != nil {
			return
		}
	}
	b.notified = notifiedMark(b)
}

// avatarsTo sends a resource that just asked for avatar notifications
// every listed buddy's avatar metadata, as PEP sends the last item to a
// new subscriber (XEP-0163 4.3.3); changed avatars go to every resource.
func (s *session) avatarsTo(ctx context.Context, res string) {
	to := s.key + "/" + res
	for _, b := range s.sortedBuddies() {
		av, ok := s.currentAvatar(b)
		switch {
		case !ok:
		case notifiedMark(b) != b.notified:
			s.syncAvatar(ctx, b)
		default:
			if s.e.pepEvent(ctx, b.uin, to, newPubsubEvent(nsAvatarMetadata, avatarItem(nsAvatarMetadata, av))) != nil {
				return
			}
		}
	}
}

// syncPEP tells the resources that asked for notifications what changed
// of a buddy: its avatar, its vCard4.
func (s *session) syncPEP(ctx context.Context, b *buddy) {
	s.syncAvatar(ctx, b)
	s.syncVCard(ctx, b)
}

// vcardWatch is what a resource that asked for vCard4 notifications was
// sent: by buddy, the key (vcardKey) of the card it got. A buddy's card
// changes with its nickname and face; the rest of a profile QQ only tells
// when asked for it.
type vcardWatch struct {
	sent  map[qqproto.UIN]string
	epoch uint64 // of the component connection the cards were sent in
}

// vcardFetchPause is how long notifications are made without asking QQ
// after it failed a GetInfo for one: with QQ timing out, asking for each
// buddy in turn would hold the session for the whole list.
const vcardFetchPause = time.Minute

func newVCardWatch(epoch uint64) *vcardWatch {
	return &vcardWatch{sent: map[qqproto.UIN]string{}, epoch: epoch}
}

func (s *session) vcardKey(b *buddy) string { return strconv.Itoa(int(b.face)) + " " + s.nick(b) }

// syncVCard sends a listed buddy's vCard4 to each resource that asked for
// vCard4 notifications and has not got the card of its present nickname
// and face, as the buddy's PEP service would on a publish (XEP-0163).
// Only while logged in: the card is the profile QQ answers (GetInfo,
// cached), the same as the node serves, made once for all resources.
func (s *session) syncVCard(ctx context.Context, b *buddy) {
	if !b.listed() || !s.online() {
		return
	}
	key := s.vcardKey(b)
	var to []*vcardWatch
	var names []string
	for _, r := range s.res.m {
		if r.vcards != nil && r.vcards.sent[b.uin] != key {
			to, names = append(to, r.vcards), append(names, r.name)
		}
	}
	if len(to) == 0 {
		return
	}
	ev := newPubsubEvent(nsVCard4, pubsubItem{ID: vcard4CurrentItem, Payload: s.notifiedVCard4(ctx, b)})
	for i, w := range to {
		if s.e.pepEvent(ctx, b.uin, s.key+"/"+names[i], ev) != nil {
			return // tried again at the next announce
		}
		w.sent[b.uin] = key
	}
}

// notifiedVCard4 is a buddy's vCard4, or if QQ fails to tell its profile,
// the card of what the gateway knows (the cached profile, else the buddy
// list): a notification of the new nickname beats none. After a failure
// QQ is not asked for vcardFetchPause.
func (s *session) notifiedVCard4(ctx context.Context, b *buddy) VCard4 {
	now := s.g.clock.Now()
	if !now.Before(s.vcardNoFetchUntil) {
		v, err := s.buddyVCard4(ctx, b.uin)
		if err == nil {
			return v
		}
		s.log.WithError(err).WithField("buddy", int64(b.uin)).Info("gateway: vCard4 notifications without GetInfo for a while")
		s.vcardNoFetchUntil = now.Add(vcardFetchPause)
	}
	p, ok := s.g.vcards.get(b.uin, now)
	if !ok {
		p = s.knownProfile(b.uin)
	}
	return s.listedVCard4(b.uin, p)
}

// syncVCards sends every listed buddy's vCard4 where it was not sent, as
// PEP sends the last item to a new subscriber (XEP-0163 4.3.3).
func (s *session) syncVCards(ctx context.Context) {
	for _, b := range s.sortedBuddies() {
		s.syncVCard(ctx, b)
	}
}

// vcardsAgain sends a resource that asked for vCard4 notifications every
// card again if it is heard from for the first time since the component
// reconnected: what it was sent before may be lost.
func (s *session) vcardsAgain(ctx context.Context, res string) {
	r, ok := s.res.get(res)
	if !ok || r.vcards == nil || r.vcards.epoch == r.epoch {
		return
	}
	r.vcards = newVCardWatch(r.epoch)
	s.res.put(res, r)
	s.syncVCards(ctx)
}
