package gateway

import (
	"context"
	"crypto/sha1"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"testing"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"

	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp"
)

// testClient is a client program as the gateway sees it: the entity
// capabilities (XEP-0115) its presence carries and the disco#info it
// answers for them.
type testClient struct {
	node, ver string
	info      disco.Info
}

func newTestClient(node string, features ...string) testClient {
	i := discoAnswer(info.Identity{Category: "client", Type: "pc", Name: node}, features...)
	return testClient{node: node, ver: i.Hash(sha1.New()), info: i}
}

// caps is the <c/> of the client's presence.
func (c testClient) caps() string {
	return fmt.Sprintf(`<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node=%q ver=%q/>`, c.node, c.ver)
}

// gajimLike wants avatar notifications; plainClient does not.
var (
	gajimLike   = newTestClient("https://gajim.org", nsDiscoInfo, nsCaps, nsAvatarMetadata, nsAvatarNotify)
	plainClient = newTestClient("https://plain.example", nsDiscoInfo, nsCaps)
)

// discoServer answers the gateway's disco#info requests to alice's
// resources as her clients would, and counts them. hold, if set, is
// waited on before each answer.
type discoServer struct {
	mu      sync.Mutex
	clients map[string]testClient // by node#ver
	asked   int
	hold    chan struct{}
	extra   string // put into every answer's query
}

func (h *harness) answerDisco(clients ...testClient) *discoServer {
	d := &discoServer{clients: map[string]testClient{}}
	for _, c := range clients {
		d.clients[c.node+"#"+c.ver] = c
	}
	h.out.mu.Lock()
	h.out.server = d.answer
	h.out.mu.Unlock()
	return d
}

func (d *discoServer) answer(req xmppcomp.Stanza) string {
	d.mu.Lock()
	d.asked++
	hold := d.hold
	d.mu.Unlock()
	if hold != nil {
		<-hold
	}
	var q struct {
		Query *disco.InfoQuery `xml:"http://jabber.org/protocol/disco#info query"`
	}
	head := fmt.Sprintf(`<iq from=%q to=%q id=%q`, req.To, req.From, req.ID)
	c, ok := d.clients[""]
	if req.Decode(&q) == nil && q.Query != nil {
		c, ok = d.clients[q.Query.Node]
	}
	if !ok {
		return head + ` type="error"><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`
	}
	b, err := xml.Marshal(withNode(c.info, q.Query.Node))
	if err != nil {
		panic(err)
	}
	return head + ` type="result">` + strings.Replace(string(b), "</query>", d.extra+"</query>", 1) + `</iq>`
}

func (d *discoServer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked
}

// avatarEvent matches a User Avatar metadata notification from a buddy's
// bare JID to to.
func avatarEvent(from, to string) func(xmppcomp.Stanza) bool {
	return func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && st.From.String() == from && st.To.String() == to && eventAvatarID(st) != ""
	}
}

// eventAvatarID is the avatar id a metadata notification names, or "".
func eventAvatarID(st xmppcomp.Stanza) string {
	var m struct {
		Items struct {
			Node string `xml:"node,attr"`
			Item []struct {
				ID   string `xml:"id,attr"`
				Info []struct {
					ID string `xml:"id,attr"`
				} `xml:"urn:xmpp:avatar:metadata metadata>info"`
			} `xml:"item"`
		} `xml:"http://jabber.org/protocol/pubsub#event event>items"`
	}
	if st.Decode(&m) != nil || m.Items.Node != nsAvatarMetadata || len(m.Items.Item) != 1 {
		return ""
	}
	it := m.Items.Item[0]
	if len(it.Info) != 1 || it.Info[0].ID != it.ID {
		return ""
	}
	return it.ID
}

// waitAvatars waits for a notification from each of alice's buddies to
// to, from mark on, and returns the avatar ids by buddy.
func (h *harness) waitAvatars(mark int, to string) map[int]string {
	h.t.Helper()
	ids := map[int]string{}
	for _, u := range []int{20001, 20002, 20003} {
		h.cursor = mark
		ids[u] = eventAvatarID(h.waitFor(fmt.Sprintf("avatar of %d at %s", u, to), avatarEvent(buddyAddr(u), to)))
	}
	return ids
}

// A client whose caps ask for avatar notifications (Conversations, Dino,
// Gajim) gets each buddy's avatar metadata pushed from the buddy's JID,
// naming the avatar the buddy's presence carries, once per resource; a
// client whose caps do not gets none. The disco#info behind a ver is
// asked once.
func TestNotifyingResourceGetsBuddyAvatars(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	d := h.answerDisco(gajimLike, plainClient)
	h.register("10001", "secret")
	mark := h.cursor
	h.presence(aliceFull, testDomain, "", gajimLike.caps())
	bobHash := photoHash(t, h.waitFor("Bob available", presenceMatch(buddyAddr(20001), "")))
	if ids := h.waitAvatars(mark, aliceFull); ids[20001] != bobHash {
		t.Errorf("Bob's notification names avatar %q, his presence %q", ids[20001], bobHash)
	}

	laptop, tablet := aliceBare+"/laptop", aliceBare+"/tablet"
	mark = h.cursor
	h.presence(laptop, testDomain, "", gajimLike.caps())
	h.presence(tablet, testDomain, "", plainClient.caps())
	h.waitAvatars(mark, laptop)
	h.quiesce()
	h.cursor = mark
	if got := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.To.String() == tablet }); len(got) != 0 {
		t.Errorf("a client without +notify got %v", got)
	}
	if n := len(h.sent(avatarEvent(buddyAddr(20001), aliceFull))); n != 0 {
		t.Errorf("the phone was told Bob's avatar again (%d) when the laptop came", n)
	}
	if n := d.count(); n != 2 {
		t.Errorf("%d disco#info requests for two client kinds, want 2 (one per ver)", n)
	}
}

// A buddy who picks another picture is pushed to every resource that asked
// for notifications, and only to those.
func TestNewFaceIsPushedToNotifyingResources(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.answerDisco(gajimLike, plainClient)
	h.register("10001", "secret")
	tablet := aliceBare + "/tablet"
	mark := h.cursor
	h.presence(aliceFull, testDomain, "", gajimLike.caps())
	h.presence(tablet, testDomain, "", plainClient.caps())
	old := h.waitAvatars(mark, aliceFull)[20001]
	h.quiesce()

	s := h.session()
	const face = 30
	h.onSession(s, func() { s.link.qq = faceSetter(s.link.qq, 20001, face) })
	want, err := h.g.emit.avatars.ForFace(face)
	if err != nil || want.Hash == old {
		t.Fatalf("face %d draws %s (%v), the old one %s", face, want.Hash, err, old)
	}
	mark = h.cursor
	st := h.waitFor("Bob's new avatar", avatarEvent(buddyAddr(20001), aliceFull))
	if got := eventAvatarID(st); got != want.Hash {
		t.Errorf("notification names %s, want the new avatar %s", got, want.Hash)
	}
	h.quiesce()
	h.cursor = mark
	if got := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "message" && st.To.String() == tablet }); len(got) != 0 {
		t.Errorf("a client without +notify got %v", got)
	}
}

// An answer that does not hash to the caps' ver is believed for the
// resource that gave it, but not kept for others (XEP-0115 5.4): the next
// resource with the same caps is asked itself.
func TestUnverifiedCapsAreNotKept(t *testing.T) {
	liar := gajimLike
	liar.ver = "bm90IHRoZSBoYXNoIG9mIGFueXRoaW5nIT0=" // of nothing it answers
	askedByEach(t, liar, "", "an unverified answer is not kept")
}

// An answer mellium cannot hash (a data form without fields makes it
// panic) is believed for the resource that gave it and not kept; the
// gateway goes on.
func TestCapsAnswerThatCannotBeHashed(t *testing.T) {
	askedByEach(t, gajimLike, `<x xmlns="jabber:x:data" type="result"/>`, "an answer that cannot be checked is not kept")
}

// askedByEach has two resources of alice come online with caps c, whose
// disco#info answer carries extra, and fails unless each was asked: the
// first one's answer was not kept (why).
func askedByEach(t *testing.T, c testClient, extra, why string) {
	t.Helper()
	h := newHarness(t, qqsim.Options{}, world()...)
	d := h.answerDisco(c)
	d.extra = extra
	h.register("10001", "secret")
	mark := h.cursor
	h.presence(aliceFull, testDomain, "", c.caps())
	h.waitAvatars(mark, aliceFull)
	h.presence(aliceBare+"/laptop", testDomain, "", c.caps())
	h.waitAvatars(mark, aliceBare+"/laptop")
	if n := d.count(); n != 2 {
		t.Errorf("%d disco#info requests, want 2: %s", n, why)
	}
}

// The disco#info request does not hold the user's session: while the
// client has not answered, the session serves the user's stanzas; the
// notifications follow the answer.
func TestCapsLookupDoesNotHoldTheSession(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	d := h.answerDisco(gajimLike)
	release := make(chan struct{})
	d.hold = release
	h.register("10001", "secret")
	mark := h.cursor
	h.presence(aliceFull, testDomain, "", gajimLike.caps())
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.eventually("the disco#info request", func() bool { return d.count() == 1 })
	if ans := h.iq("get", buddyAddr(20001), `<ping xmlns="urn:xmpp:ping"/>`); ans.Type != "result" {
		t.Fatalf("ping while the client is asked: %s", ans)
	}
	if got := h.sent(avatarEvent(buddyAddr(20001), aliceFull)); len(got) != 0 {
		t.Fatalf("notified before the client answered: %v", got)
	}
	close(release)
	h.waitAvatars(mark, aliceFull)
}

// session returns alice's session.
func (h *harness) session() *session {
	h.t.Helper()
	h.g.mu.Lock()
	defer h.g.mu.Unlock()
	s := h.g.sessions[aliceBare]
	if s == nil {
		h.t.Fatal("alice has no session")
	}
	return s
}

// onSession runs f as a work item of s and waits for it.
func (h *harness) onSession(s *session, f func()) {
	done := make(chan struct{})
	h.g.sched.submit(s.task, func(context.Context) { f(); close(done) })
	<-done
}
