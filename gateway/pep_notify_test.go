package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp"
)

// movimLike wants vCard4 notifications (XEP-0292 by XEP-0163), not
// avatar ones.
var movimLike = newTestClient("https://movim.example", nsDiscoInfo, nsCaps, nsVCard4, nsVCard4+"+notify")

// eventVCard4 is a vCard4 notification as a client reads it.
type eventVCard4 struct {
	Items struct {
		Node string `xml:"node,attr"`
		Item []struct {
			ID    string `xml:"id,attr"`
			VCard *struct {
				Nickname []string `xml:"nickname>text"`
				Photo    []string `xml:"photo>uri"`
				Title    []string `xml:"title>text"`
			} `xml:"urn:ietf:params:xml:ns:vcard-4.0 vcard"`
		} `xml:"item"`
	} `xml:"http://jabber.org/protocol/pubsub#event event>items"`
}

// vcardEventNick is the nickname of a vCard4 notification's card, and
// whether st is one: a headline with one item "current" of urn:xmpp:vcard4.
func vcardEventNick(st xmppcomp.Stanza) (string, bool) {
	var ev eventVCard4
	if st.Name != "message" || st.Type != "headline" || st.Decode(&ev) != nil || ev.Items.Node != nsVCard4 ||
		len(ev.Items.Item) != 1 || ev.Items.Item[0].ID != vcard4CurrentItem || ev.Items.Item[0].VCard == nil {
		return "", false
	}
	return strings.Join(ev.Items.Item[0].VCard.Nickname, "|"), true
}

// vcardEvent matches a vCard4 notification from a buddy's bare JID to to.
func vcardEvent(from, to string) func(xmppcomp.Stanza) bool {
	return func(st xmppcomp.Stanza) bool {
		_, ok := vcardEventNick(st)
		return ok && st.From.String() == from && st.To.String() == to
	}
}

// vcardEventsTo are the vCard4 notifications to to from the cursor on.
func (h *harness) vcardEventsTo(to string) []xmppcomp.Stanza {
	return h.sent(func(st xmppcomp.Stanza) bool {
		_, ok := vcardEventNick(st)
		return ok && st.To.String() == to
	})
}

// A client whose caps ask for vCard4 notifications gets each buddy's
// vCard4 pushed from the buddy's JID, the same card its items answer,
// once per resource; a client whose caps do not, or ask for avatars only,
// gets none.
func TestNotifyingResourceGetsBuddyVCard4(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.answerDisco(movimLike, gajimLike, plainClient)
	h.register("10001", "secret")
	mark := h.cursor
	h.presence(aliceFull, testDomain, "", movimLike.caps())
	bobHash := photoHash(t, h.waitFor("Bob available", presenceMatch(buddyAddr(20001), "")))
	for _, b := range []qqsim.Account{bob, carol, dave} {
		h.cursor = mark
		st := h.waitFor(fmt.Sprintf("the vCard4 of %d", b.UIN), vcardEvent(buddyAddr(int(b.UIN)), aliceFull))
		if nick, _ := vcardEventNick(st); nick != b.Nick {
			t.Errorf("the vCard4 of %d names %q, want %q", b.UIN, nick, b.Nick)
		}
		if b.UIN != bob.UIN {
			continue
		}
		var ev eventVCard4
		if err := st.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		photo := ev.Items.Item[0].VCard.Photo
		png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.Join(photo, ""), "data:image/png;base64,"))
		if err != nil || sha1Hex(png) != bobHash {
			t.Errorf("Bob's card has a photo other than his presence's avatar %s (%v)", bobHash, err)
		}
		// The notification is what the node answers.
		_, r := getItems(t, h, buddyAddr(20001), nsVCard4, "")
		if got := r.Items.Item[0].VCard4; got == nil || strings.Join(got.Nickname, "|") != bob.Nick {
			t.Errorf("the node answers %+v", r)
		}
	}
	if avatars := h.sent(avatarEvent(buddyAddr(20001), aliceFull)); len(avatars) != 0 {
		t.Errorf("a client without avatar +notify got %v", avatars)
	}

	laptop, tablet := aliceBare+"/laptop", aliceBare+"/tablet"
	mark = h.cursor
	h.presence(laptop, testDomain, "", gajimLike.caps())
	h.presence(tablet, testDomain, "", plainClient.caps())
	h.presence(aliceFull, testDomain, "", "<show>away</show>"+movimLike.caps())
	h.waitAvatars(mark, laptop)
	h.advance(3 * h.cfg.StatusInterval)
	h.cursor = mark
	for _, to := range []string{laptop, tablet, aliceFull} {
		if got := h.vcardEventsTo(to); len(got) != 0 {
			t.Errorf("%s was sent %d vCard4 notifications after the first ones, want none: %v", to, len(got), got)
		}
	}
}

// A buddy who takes another nickname is pushed again, to every resource
// that asked for vCard4 notifications, with the new nickname, once; the
// other buddies are not, and the node answers the new card.
func TestNewNickIsPushedAsVCard4(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.answerDisco(movimLike)
	h.register("10001", "secret")
	laptop := aliceBare + "/laptop"
	mark := h.cursor
	h.presence(aliceFull, testDomain, "", movimLike.caps())
	h.presence(laptop, testDomain, "", movimLike.caps())
	for _, to := range []string{aliceFull, laptop} {
		h.cursor = mark
		h.waitFor("Dave's vCard4 at "+to, vcardEvent(buddyAddr(20003), to))
	}
	h.quiesce()
	h.skipAll()

	s := h.session()
	const nick = "Bobby"
	h.onSession(s, func() { s.link.qq = nickSetter(s.link.qq, 20001, nick) })
	mark = h.cursor
	for _, to := range []string{aliceFull, laptop} {
		h.cursor = mark
		st := h.waitFor("Bob's new card at "+to, vcardEvent(buddyAddr(20001), to))
		if got, _ := vcardEventNick(st); got != nick {
			t.Errorf("Bob's new card at %s names %q, want %q", to, got, nick)
		}
	}
	h.advance(3 * h.cfg.StatusInterval)
	h.cursor = mark
	for _, to := range []string{aliceFull, laptop} {
		if got := h.vcardEventsTo(to); len(got) != 1 {
			t.Errorf("%s was sent %d vCard4 notifications after Bob's new nick, want 1: %v", to, len(got), got)
		}
	}
	_, r := getItems(t, h, buddyAddr(20001), nsVCard4, "")
	if got := r.Items.Item[0].VCard4; got == nil || strings.Join(got.Nickname, "|") != nick {
		t.Errorf("the node answers %+v, want nickname %q", r, nick)
	}
}

// When QQ fails a GetInfo for a notification, the cards go out made of
// what the gateway knows, and QQ is not asked again for the next buddy:
// with QQ timing out, each request would hold the session for the whole
// list.
func TestVCard4NotificationsWhenGetInfoFails(t *testing.T) {
	qq := privilegedWorld()
	h := newFakeHarness(t, qq)
	d := h.answerDisco(movimLike)
	release := make(chan struct{})
	d.hold = release
	h.register("10001", "secret")
	mark := h.cursor
	h.presence(aliceFull, testDomain, "", movimLike.caps())
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.eventually("the disco#info request", func() bool { return d.count() == 1 })
	before := qq.count("GetInfo")
	qq.failNext("GetInfo", errors.New("timeout"), errors.New("timeout"), errors.New("timeout"))
	close(release)
	for u, nick := range map[int]string{20001: "Bob", 20002: "Carol", 20003: "20003"} {
		h.cursor = mark
		st := h.waitFor(fmt.Sprintf("the vCard4 of %d", u), vcardEvent(buddyAddr(u), aliceFull))
		if got, _ := vcardEventNick(st); got != nick {
			t.Errorf("the vCard4 of %d names %q, want %q", u, got, nick)
		}
	}
	if n := qq.count("GetInfo") - before; n != 1 {
		t.Errorf("%d GetInfo for the notifications while QQ fails them, want 1", n)
	}
}

// After the component reconnects, what a resource was sent may be lost:
// once it is heard from again, it gets every card again.
func TestVCard4AgainAfterAReconnect(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.answerDisco(movimLike)
	h.register("10001", "secret")
	mark := h.cursor
	h.presence(aliceFull, testDomain, "", movimLike.caps())
	h.waitFor("Dave's vCard4", vcardEvent(buddyAddr(20003), aliceFull))
	h.quiesce()
	h.cursor = mark
	if n := len(h.vcardEventsTo(aliceFull)); n != 3 {
		t.Fatalf("%d vCard4 notifications at first, want 3", n)
	}
	h.skipAll()
	h.g.OnConnect(context.Background())
	h.presence(aliceFull, testDomain, "", movimLike.caps()) // the server answers the probe
	mark = h.cursor
	for _, u := range []int{20001, 20002, 20003} {
		h.cursor = mark
		h.waitFor(fmt.Sprintf("the vCard4 of %d again", u), vcardEvent(buddyAddr(u), aliceFull))
	}
}
