package gateway

import (
	"context"
	"encoding/xml"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"qqxmpp/qqproto"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// fakeRosters answers the gateway's roster requests as a server that
// granted it roster access does (Prosody's mod_privilege): one item per
// set, remove of a missing item is item-not-found.
type fakeRosters struct {
	mu     sync.Mutex
	items  map[string]map[string]rosterItem // by user, then item JID
	sets   int
	gets   int
	refuse bool // answer every set with internal-server-error, as ejabberd 23.01 does
	// keepSub keeps the subscription an item had (none for a new one), as
	// ejabberd does from 23.04 on.
	keepSub bool
}

func (f *fakeRosters) answer(req xmppcomp.Stanza) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	user := req.To.Bare().String()
	head := fmt.Sprintf(`<iq from=%q to=%q id=%q`, user, req.From, req.ID)
	fail := func(typ, cond string) string {
		return head + fmt.Sprintf(` type="error"><error type=%q><%s xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`, typ, cond)
	}
	var v struct {
		Query *rosterQuery `xml:"jabber:iq:roster query"`
	}
	if req.Decode(&v) != nil || v.Query == nil {
		return fail("cancel", "service-unavailable")
	}
	if f.items[user] == nil {
		f.items[user] = map[string]rosterItem{}
	}
	roster := f.items[user]
	if req.Type == "get" {
		f.gets++
		var b strings.Builder
		for _, it := range roster {
			// Names are escaped as a server does: QQ nicknames hold & and <.
			fmt.Fprintf(&b, `<item jid=%q name="%s" subscription=%q>`, it.JID, attrEscape(it.Name), it.Subscription)
			for _, g := range it.Groups {
				fmt.Fprintf(&b, `<group>%s</group>`, g)
			}
			b.WriteString(`</item>`)
		}
		return head + ` type="result"><query xmlns="jabber:iq:roster">` + b.String() + `</query></iq>`
	}
	f.sets++
	switch {
	case f.refuse:
		return fail("wait", "internal-server-error")
	case len(v.Query.Items) != 1:
		return fail("modify", "bad-request")
	}
	it := v.Query.Items[0]
	if it.Subscription == subRemove {
		if _, ok := roster[it.JID]; !ok {
			return fail("modify", "item-not-found")
		}
		delete(roster, it.JID)
	} else {
		if f.keepSub {
			it.Subscription = "none"
			if old, ok := roster[it.JID]; ok {
				it.Subscription = old.Subscription
			}
		}
		roster[it.JID] = it
	}
	return head + ` type="result"/>`
}

func attrEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// of returns alice's items, sorted by JID.
func (f *fakeRosters) of(user string) []rosterItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rosterItem
	for _, it := range f.items[user] {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].JID < out[j].JID })
	return out
}

func (f *fakeRosters) put(user string, it rosterItem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items[user][it.JID] = it
}

func (f *fakeRosters) counts() (gets, sets int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.sets
}

// grantRoster makes the recorder answer roster requests from rosters that
// behave as the options say, and has example.org announce roster access of
// type typ in namespace ns.
func (h *harness) grantRoster(ns, typ string, opts ...func(*fakeRosters)) *fakeRosters {
	h.t.Helper()
	f := &fakeRosters{items: map[string]map[string]rosterItem{}}
	for _, o := range opts {
		o(f)
	}
	h.out.mu.Lock()
	h.out.server = f.answer
	h.out.mu.Unlock()
	h.in(`<message xmlns="jabber:component:accept" from="example.org" to=%q><privilege xmlns=%q><perm access="roster" type=%q/><perm access="message" type="none"/></privilege></message>`, testDomain, ns, typ)
	return f
}

// subscribeRequests are the subscribes sent from any JID of the
// transport: each is a prompt at the user's client.
func subscribeRequests(st xmppcomp.Stanza) bool {
	return st.Name == "presence" && st.Type == "subscribe" && st.From.Domainpart() == testDomain
}

func privilegedWorld() *fakeQQ {
	return newFakeQQ("secret",
		qqproto.Buddy{UIN: 20001, Nick: "Bob", Status: qqproto.StatusOnline},
		qqproto.Buddy{UIN: 20002, Nick: "Carol", Status: qqproto.StatusBusy},
		qqproto.Buddy{UIN: 20003, Nick: "Dave", Status: qqproto.StatusOffline})
}

// subscriptionFlow registers alice and brings her online, and waits for
// the subscription requests of the flow without roster access: the
// domain's (if it asks) and each buddy's.
func (h *harness) subscriptionFlow(domainAsks bool) {
	h.t.Helper()
	h.register("10001", "secret")
	if domainAsks {
		h.waitFor("subscribe from the domain", presenceMatch(testDomain, "subscribe"))
	}
	h.goOnline("")
	for _, u := range []int{20001, 20002, 20003} {
		h.waitFor("subscribe from a buddy", presenceMatch(buddyAddr(u), "subscribe"))
	}
	h.quiesce()
}

// unregisterAlice removes alice's registration and waits for the answer.
func (h *harness) unregisterAlice() {
	h.t.Helper()
	if ans := h.iq("set", testDomain, `<query xmlns="jabber:iq:register"><remove/></query>`); ans.Type != "result" {
		h.t.Fatalf("remove: %s", ans)
	}
	h.quiesce()
}

// privilegedAlice is alice registered and online where example.org grants
// roster access in namespace ns, once her buddies show.
func privilegedAlice(t *testing.T, ns string) (*harness, *fakeQQ, *fakeRosters) {
	t.Helper()
	qq := privilegedWorld()
	h := newFakeHarness(t, qq)
	rosters := h.grantRoster(ns, "both")
	h.register("10001", "secret")
	h.waitFor("probe of the user", func(st xmppcomp.Stanza) bool {
		return st.Name == "presence" && st.Type == "probe" && st.To.String() == aliceBare
	})
	h.goOnline("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.quiesce()
	return h, qq, rosters
}

func item(uin int, name string, groups ...string) rosterItem {
	return rosterItem{JID: buddyAddr(uin), Name: name, Subscription: subBoth, Groups: groups}
}

func sameItems(t *testing.T, what string, got, want []rosterItem) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: roster\n  %v\nwant\n  %v", what, got, want)
	}
}

// With roster access, registering and logging in put the transport and
// every buddy in the roster, named, grouped and mutual, without a single
// subscription request; the presences follow as without.
func TestPrivilegedImportSetsRosterItems(t *testing.T) {
	for _, ns := range []string{nsPrivilege2, nsPrivilege1} {
		t.Run(ns, func(t *testing.T) {
			h, _, rosters := privilegedAlice(t, ns)

			sameItems(t, "after the import", rosters.of(aliceBare), []rosterItem{
				item(20001, "Bob", "QQ"), item(20002, "Carol", "QQ"), item(20003, "20003", "QQ"), // Dave is offline: his nick is GetInfo's
				{JID: testDomain, Name: "QQ", Subscription: subBoth, Groups: []string{"QQ"}},
			})
			h.cursor = 0
			if got := h.sent(subscribeRequests); len(got) != 0 {
				t.Errorf("%d subscription requests: %v", len(got), got)
			}
			cs, err := h.st.Contacts(context.Background(), aliceBare)
			if err != nil || len(cs) != 3 {
				t.Fatalf("contacts %v %v", cs, err)
			}
			for _, c := range cs {
				if c.Sub != store.Both {
					t.Errorf("contact %d stored as %v, want both", c.UIN, c.Sub)
				}
			}
		})
	}
}

// A later import writes only what changed on QQ: a renamed buddy, a
// removed one, a new one. Items the user regrouped keep their groups, and
// items of the transport QQ does not list go.
func TestPrivilegedReimportWritesOnlyChanges(t *testing.T) {
	h, qq, rosters := privilegedAlice(t, nsPrivilege2)
	h.presence(aliceFull, testDomain, "unavailable", "")
	h.eventually("QQ logout", func() bool { return qq.count("Logout") == 2 })
	h.quiesce()

	rosters.put(aliceBare, item(20003, "Dave", "Friends"))
	rosters.put(aliceBare, item(29999, "left over", "QQ"))
	qq.mu.Lock()
	qq.buddies = []qqproto.Buddy{
		{UIN: 20001, Nick: "Bobby", Status: qqproto.StatusOnline},
		{UIN: 20003, Nick: "Dave", Status: qqproto.StatusOffline},
		{UIN: 20004, Nick: "Erin", Status: qqproto.StatusOnline},
	}
	qq.mu.Unlock()
	_, sets := rosters.counts()
	h.goOnline("")
	h.waitFor("Erin available", presenceMatch(buddyAddr(20004), ""))
	h.quiesce()

	sameItems(t, "after the second import", rosters.of(aliceBare), []rosterItem{
		item(20001, "Bobby", "QQ"), item(20003, "Dave", "Friends"), item(20004, "Erin", "QQ"),
		{JID: testDomain, Name: "QQ", Subscription: subBoth, Groups: []string{"QQ"}},
	})
	if _, now := rosters.counts(); now-sets != 4 { // Bobby, Carol gone, Erin, the left-over gone
		t.Errorf("%d roster sets in the second import, want 4", now-sets)
	}
	h.cursor = 0
	if got := h.sent(subscribeRequests); len(got) != 0 {
		t.Errorf("subscription requests: %v", got)
	}
}

// A buddy's new nickname, seen while online, renames its item.
func TestPrivilegedNickChangeRenamesItem(t *testing.T) {
	h, qq, rosters := privilegedAlice(t, nsPrivilege2)
	qq.mu.Lock()
	qq.buddies[0].Nick = "Robert"
	qq.mu.Unlock()
	h.eventually("Bob renamed", func() bool {
		for _, it := range rosters.of(aliceBare) {
			if it.JID == buddyAddr(20001) {
				return it.Name == "Robert" && fmt.Sprint(it.Groups) == "[QQ]" && it.Subscription == subBoth
			}
		}
		return false
	})
}

// Unregistering removes every item of the transport from the roster, left
// overs included, instead of leaving them without subscription.
func TestPrivilegedUnregistrationRemovesEveryItem(t *testing.T) {
	h, _, rosters := privilegedAlice(t, nsPrivilege2)
	rosters.put(aliceBare, item(29999, "left over"))
	rosters.put(aliceBare, rosterItem{JID: "someone@example.org", Subscription: subBoth})
	h.skipAll()

	h.unregisterAlice()
	sameItems(t, "after unregistration", rosters.of(aliceBare), []rosterItem{{JID: "someone@example.org", Subscription: subBoth}})
	if got := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "presence" && st.Type == "unsubscribe" }); len(got) != 0 {
		t.Errorf("unsubscribes though the items were removed: %v", got)
	}
}

// Servers that grant roster access but do not honour it are noticed at
// the first item the gateway writes: ejabberd 23.01 fails every roster
// set, later ejabberd keeps the subscription an item had. The user is
// asked to approve subscriptions as without the grant, no further set is
// tried, and unregistration ends the subscriptions (and removes the items
// the server did write).
func TestGrantNotHonouredFallsBackToSubscriptions(t *testing.T) {
	for _, tc := range []struct {
		name            string
		refuse, keepSub bool
		unsubscribed    []string
	}{
		{"sets fail", true, false, []string{buddyAddr(20001), buddyAddr(20002), buddyAddr(20003), testDomain}},
		{"subscriptions kept", false, true, []string{buddyAddr(20001), buddyAddr(20002), buddyAddr(20003)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHarness(t, privilegedWorld())
			rosters := h.grantRoster(nsPrivilege1, "both", func(f *fakeRosters) { f.refuse, f.keepSub = tc.refuse, tc.keepSub })
			h.subscriptionFlow(true)
			if _, sets := rosters.counts(); sets != 1 {
				t.Errorf("%d roster sets, want 1 (the transport's item): the first must stop them", sets)
			}
			h.skipAll()
			h.unregisterAlice()
			sameItems(t, "after unregistration", rosters.of(aliceBare), nil)
			for _, from := range tc.unsubscribed {
				h.waitFor("unsubscribed from "+from, presenceMatch(from, "unsubscribed"))
			}
		})
	}
}

// Without a grant the gateway asks the server nothing; a grant announced
// later sets right what the subscription flow left, at once.
func TestGrantAfterLoginImportsIntoRoster(t *testing.T) {
	h := newFakeHarness(t, privilegedWorld())
	h.subscriptionFlow(true)
	h.cursor = 0
	if got := h.sent(func(st xmppcomp.Stanza) bool { return st.Name == "iq" && st.To.String() == aliceBare }); len(got) != 0 {
		t.Errorf("requests to the user's roster without a grant: %v", got)
	}
	h.skipAll()

	rosters := h.grantRoster(nsPrivilege2, "both")
	h.eventually("buddies in the roster", func() bool { return len(rosters.of(aliceBare)) == 3 })
	h.quiesce()
	sameItems(t, "after the grant", rosters.of(aliceBare), []rosterItem{item(20001, "Bob", "QQ"), item(20002, "Carol", "QQ"), item(20003, "20003", "QQ")})
	if got := h.sent(func(st xmppcomp.Stanza) bool { return st.Name != "iq" && st.To.Bare().String() != aliceBare }); len(got) != 0 {
		t.Errorf("the grant message was answered: %v", got)
	}
}

// The same server noticed at an import: buddies already asked for are not
// asked again.
func TestServerKeepingSubscriptionsNoticedAtImport(t *testing.T) {
	h := newFakeHarness(t, privilegedWorld())
	h.subscriptionFlow(true)
	h.skipAll()
	rosters := h.grantRoster(nsPrivilege1, "both", func(f *fakeRosters) { f.keepSub = true })
	h.eventually("buddies written", func() bool { return len(rosters.of(aliceBare)) == 3 })
	h.quiesce()
	if got := h.sent(subscribeRequests); len(got) != 0 {
		t.Errorf("asked again: %v", got)
	}
	cs, _ := h.st.Contacts(context.Background(), aliceBare)
	for _, c := range cs {
		if c.Sub != store.PendingIn {
			t.Errorf("contact %d stored as %v, want still pending-in", c.UIN, c.Sub)
		}
	}
	if !h.g.privs.roster("example.org").keepsSub {
		t.Error("the server keeping subscriptions was not noted")
	}
}

// Registering by chat where the server grants roster access says what
// happens there: the contacts are written into the roster, no requests.
func TestChatRegistrationSaysTheRosterIsWritten(t *testing.T) {
	h := newFakeHarness(t, privilegedWorld())
	h.grantRoster(nsPrivilege2, "both")
	wantSaid(t, h.say("register 10001"), "QQ password?")
	answer := h.say("secret")
	wantSaid(t, answer, "Registered with QQ number 10001", "added to your roster")
	if strings.Contains(answer, "contact requests") {
		t.Errorf("the answer promises contact requests that will not come: %q", answer)
	}
}

// A server that grants roster access but fails the transport's item
// (ejabberd 23.01) is found out before the registration is answered: the
// answer says contact requests follow, and they do.
func TestRegistrationAnswerWhereTheGrantIsNotHonoured(t *testing.T) {
	h := newFakeHarness(t, privilegedWorld())
	h.grantRoster(nsPrivilege1, "both", func(f *fakeRosters) { f.refuse = true })
	wantSaid(t, h.say("register 10001"), "QQ password?")
	answer := h.say("secret")
	wantSaid(t, answer, "Registered with QQ number 10001", "contact requests")
	if strings.Contains(answer, "added to your roster") {
		t.Errorf("the answer promises roster items the server refuses: %q", answer)
	}
	h.waitFor("subscribe from the domain", presenceMatch(testDomain, "subscribe"))
}

// A number added with the lookup command goes into the roster as the
// import's buddies do where the server lets the gateway write it: named,
// mutual, and nobody asked to accept a request; the answer says so.
func TestLookupAddWritesTheRosterItem(t *testing.T) {
	h, _, rosters := privilegedAlice(t, nsPrivilege2)
	mark := h.cursor
	a := h.execute("lookup")
	p := decodeAdhoc(t, h.next(a, map[string]string{"uin": "30000"}))
	done := decodeAdhoc(t, h.command(aliceFull, "lookup", "complete", p.ID, map[string]string{"add": "1"}))
	if done.Status != "completed" || !strings.Contains(done.note(), "in your roster") || strings.Contains(done.note(), "Accept") {
		t.Errorf("add: %+v", done)
	}
	h.quiesce()
	var got []rosterItem
	for _, it := range rosters.of(aliceBare) {
		if it.JID == buddyAddr(30000) {
			got = append(got, it)
		}
	}
	sameItems(t, "30000 added", got, []rosterItem{item(30000, "30000", "QQ")})
	h.cursor = mark
	if got := h.sent(subscribeRequests); len(got) != 0 {
		t.Errorf("%d subscription requests: %v", len(got), got)
	}
	if c, err := h.st.Contact(context.Background(), aliceBare, 30000); err != nil || c.Sub != store.Both {
		t.Errorf("30000 stored as %+v (%v), want both", c, err)
	}
}
