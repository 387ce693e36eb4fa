//go:build integration

package gateway

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"qqxmpp/xmppcomp/xmpptest"
)

// A client that reads profiles and avatars the modern way gets them through
// the real servers: vCard4 (XEP-0292) and the avatar's metadata and data
// (XEP-0084) as pubsub items of the buddy's JID, the avatar the same as the
// hash its presence carries (XEP-0153).
func TestIntegrationVCard4AndPEPAvatar(t *testing.T) {
	onServers(t, func(t *testing.T, srv *xmpptest.Server) {
		ctx, c := registeredInVCardWorld(t, srv)
		bob := itBuddy(20001)
		pres := c.Expect(t, ctx, "Bob available", xmpptest.PresenceFrom(bob, ""))
		var p struct {
			X struct {
				Photo string `xml:"photo"`
			} `xml:"vcard-temp:x:update x"`
		}
		if err := pres.Decode(&p); err != nil || p.X.Photo == "" {
			t.Fatalf("Bob's presence has no avatar hash: %s", pres)
		}

		c.SendXML(t, ctx, `<iq type="get" id="v4" to=%q><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:vcard4"/></pubsub></iq>`,
			itBuddy(seedProfileAccount.UIN))
		ans := c.Expect(t, ctx, "the vCard4", xmpptest.IQResult("v4"))
		for _, s := range []string{`urn:ietf:params:xml:ns:vcard-4.0`, `<text>微程</text>`, `<text>刘X</text>`} {
			if !strings.Contains(ans.String(), s) {
				t.Errorf("vCard4 lacks %s: %s", s, ans)
			}
		}

		c.SendXML(t, ctx, `<iq type="get" id="am" to=%q><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:avatar:metadata"/></pubsub></iq>`, bob)
		meta := c.Expect(t, ctx, "the avatar metadata", xmpptest.IQResult("am"))
		if !strings.Contains(meta.String(), `id="`+p.X.Photo+`"`) {
			t.Fatalf("the metadata does not name the presence's hash %s: %s", p.X.Photo, meta)
		}
		c.SendXML(t, ctx, `<iq type="get" id="ad" to=%q><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:avatar:data"><item id=%q/></items></pubsub></iq>`, bob, p.X.Photo)
		data := c.Expect(t, ctx, "the avatar data", xmpptest.IQResult("ad"))
		var d struct {
			Data string `xml:"pubsub>items>item>data"`
		}
		if err := data.Decode(&d); err != nil {
			t.Fatal(err)
		}
		png, err := base64.StdEncoding.DecodeString(strings.TrimSpace(d.Data))
		sum := sha1.Sum(png)
		if err != nil || hex.EncodeToString(sum[:]) != p.X.Photo {
			t.Errorf("the avatar data's SHA-1 is not the presence's hash %s (%v)", p.X.Photo, err)
		}
	})
}
