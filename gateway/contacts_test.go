package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
)

// Strangers of alice's list, one per way QQ answers AddToList.
var (
	openAcct    = qqsim.Account{UIN: 30000, Password: "o", Nick: "Open", State: qqproto.StatusOnline}       // CD=0
	askAcct     = qqsim.Account{UIN: 30001, Password: "a", Nick: "Asks", Auth: 1}                           // CD=1, answered by the test
	yesAcct     = qqsim.Account{UIN: 30002, Password: "y", Nick: "Yes", Auth: 1, OnAdd: qqsim.OnAddApprove} // CD=1, approves
	noAcct      = qqsim.Account{UIN: 30003, Password: "n", Nick: "No", Auth: 1, OnAdd: qqsim.OnAddReject}   // CD=1, rejects
	closedAcct  = qqsim.Account{UIN: 30004, Password: "c", Nick: "Closed", Auth: 3}                         // CD=3
	contactsAll = []qqsim.Account{alice, bob, carol, dave, openAcct, askAcct, yesAcct, noAcct, closedAcct}
)

func (h *harness) subscribeTo(uin int, status string) {
	h.t.Helper()
	inner := ""
	if status != "" {
		inner = "<status>" + xmlEscape(status) + "</status>"
	}
	h.presence(aliceFull, buddyAddr(uin), "subscribe", inner)
}

// contact reads what the store holds of alice's contact uin once the work
// alice's session has in hand is done: the store is written right after
// the stanzas a test waits for, in the same work item.
func (h *harness) contact(uin int) (store.Contact, error) {
	h.t.Helper()
	h.settle()
	return h.st.Contact(context.Background(), aliceBare, int64(uin))
}

// settle waits until alice's session has run everything queued before it:
// a ping goes through the same ordered queue. The cursor stays put.
func (h *harness) settle() {
	h.t.Helper()
	cursor := h.cursor
	h.iq("get", testDomain, `<ping xmlns="urn:xmpp:ping"/>`)
	h.cursor = cursor
}

func TestSubscribeToAnOpenBuddyAddsAtOnce(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	h.online("")
	h.subscribeTo(30000, "")
	h.waitFor("subscribed", presenceMatch(buddyAddr(30000), "subscribed"))
	h.waitFor("presence of the new buddy", presenceMatch(buddyAddr(30000), ""))
	if !slices.Contains(h.sim.Session(10001).Buddies, 30000) {
		t.Error("30000 is not on alice's QQ list")
	}
	if c, err := h.contact(30000); err != nil || c.Sub != store.Both {
		t.Errorf("contact: %+v %v", c, err)
	}
}

func TestSubscribeNeedingAuthorisation(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	h.online("")

	// Accepted by the test acting as 30001.
	h.subscribeTo(30001, "我是Alice, 请加我")
	h.eventually("the request reaches 30001", func() bool {
		for _, it := range h.sim.Inbox(30001) {
			if it.Type == qqproto.MsgAddRequest && it.From == 10001 {
				if it.Text != "我是Alice, 请加我" {
					t.Errorf("request reason %q", it.Text)
				}
				return true
			}
		}
		return false
	})
	if c, err := h.contact(30001); err != nil || c.Sub != store.PendingOut {
		t.Errorf("contact while waiting: %+v %v", c, err)
	}
	if got := h.sent(presenceMatch(buddyAddr(30001), "subscribed")); len(got) != 0 {
		t.Fatalf("subscribed before the answer: %v", got)
	}
	if err := h.sim.Ack(30001, 10001, qqproto.AckApprove, ""); err != nil {
		t.Fatal(err)
	}
	h.waitFor("subscribed after MT=3", presenceMatch(buddyAddr(30001), "subscribed"))
	if c, err := h.contact(30001); err != nil || c.Sub != store.Both {
		t.Errorf("contact after acceptance: %+v %v", c, err)
	}

	// Approved by the emulator at once.
	h.subscribeTo(30002, "hi")
	h.waitFor("subscribed from 30002", presenceMatch(buddyAddr(30002), "subscribed"))

	// Refused with a reason.
	h.subscribeTo(30003, "hi")
	st := h.waitFor("unsubscribed from 30003", presenceMatch(buddyAddr(30003), "unsubscribed"))
	if _, status := showOf(t, st); status != "对不起，我不加陌生人" {
		t.Errorf("refusal status %q, want the buddy's reason", status)
	}
	if _, err := h.contact(30003); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused contact still stored: %v", err)
	}
}

func TestSubscribeToSomeoneWhoAcceptsNobody(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	h.online("")
	h.subscribeTo(30004, "please")
	st := h.waitFor("unsubscribed", presenceMatch(buddyAddr(30004), "unsubscribed"))
	if _, status := showOf(t, st); !strings.Contains(status, "accepts nobody") {
		t.Errorf("status %q does not say 30004 accepts nobody", status)
	}
	h.subscribeTo(99999, "")
	st = h.waitFor("unsubscribed from an unknown number", presenceMatch(buddyAddr(99999), "unsubscribed"))
	if _, status := showOf(t, st); !strings.Contains(status, "does not know") {
		t.Errorf("status %q", status)
	}
}

func TestUnsubscribeRemovesTheQQBuddy(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	h.online("")
	h.presence(aliceFull, buddyAddr(20003), "unsubscribe", "")
	h.waitFor("unsubscribed", presenceMatch(buddyAddr(20003), "unsubscribed"))
	h.eventually("20003 off alice's QQ list", func() bool { return !slices.Contains(h.sim.Session(10001).Buddies, 20003) })
	if _, err := h.contact(20003); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("contact still stored: %v", err)
	}
}

func TestIncomingAddRequest(t *testing.T) {
	shy := alice
	shy.Auth = 1 // alice must authorise, so requests reach her
	h := newHarness(t, qqsim.Options{}, shy, bob, carol, dave, openAcct, askAcct)

	h.online("")
	if err := h.sim.Ack(30000, 10001, qqproto.AckRequest, "我们见过, we met"); err != nil {
		t.Fatal(err)
	}
	st := h.waitFor("subscribe from 30000", presenceMatch(buddyAddr(30000), "subscribe"))
	if _, status := showOf(t, st); status != "我们见过, we met" {
		t.Errorf("request status %q", status)
	}
	// The request is stored as pending right after the subscribe went out.
	h.eventually("30000 stored as pending-in", func() bool {
		c, err := h.contact(30000)
		return err == nil && c.Sub == store.PendingIn
	})
	h.presence(aliceFull, buddyAddr(30000), "subscribed", "")
	h.eventually("30000 told of the approval", func() bool {
		return slices.Contains(h.sim.Session(30000).Buddies, 10001) && hasItem(h.sim.Inbox(30000), qqproto.MsgAddAccepted)
	})
	// A second subscribed (a client repeating itself) answers nothing more.
	h.presence(aliceFull, buddyAddr(30000), "subscribed", "")
	h.quiesce()
	acks := 0
	for _, r := range h.sim.Requests(10001) {
		if r.Cmd == "ACK_ADDTOLIST" {
			acks++
		}
	}
	if acks != 1 {
		t.Errorf("%d Ack_AddToList sent, want 1", acks)
	}

	if err := h.sim.Ack(30001, 10001, qqproto.AckRequest, "let me in"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("subscribe from 30001", presenceMatch(buddyAddr(30001), "subscribe"))
	h.presence(aliceFull, buddyAddr(30001), "unsubscribed", "")
	h.eventually("30001 told of the refusal", func() bool { return hasItem(h.sim.Inbox(30001), qqproto.MsgAddRefused) })
	if slices.Contains(h.sim.Session(30001).Buddies, 10001) {
		t.Error("refused requester got alice on its list")
	}
	if _, err := h.contact(30001); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused requester still stored: %v", err)
	}
}

func hasItem(items []qqsim.InboxItem, t qqproto.MessageType) bool {
	for _, it := range items {
		if it.Type == t && it.From == 10001 {
			return true
		}
	}
	return false
}

func TestSubscribeWhileOfflineIsAnError(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	h.register("10001", "secret")
	h.skipAll()
	h.subscribeTo(30000, "")
	st := h.waitFor("presence error", presenceMatch(buddyAddr(30000), "error"))
	if cond, _, text := stanzaErr(t, st); cond == "" || !strings.Contains(text, "Not logged in") {
		t.Errorf("error %q %q", cond, text)
	}
}

// A buddy the user adds by number carries its QQ nickname like an imported
// one, also where the gateway cannot write the roster: QQ's acceptance is
// followed by a subscribe from the buddy's JID with the nickname (XEP-0172),
// which clients take as the contact's name, and the store keeps it.
func TestAddedBuddyCarriesItsNick(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	h.online("")
	for _, tc := range []struct {
		acct    qqsim.Account
		approve bool // the test answers as the buddy
	}{{openAcct, false}, {askAcct, true}} {
		u := int(tc.acct.UIN)
		mark := h.cursor
		h.subscribeTo(u, "")
		if tc.approve {
			h.eventually("the request", func() bool { return hasItem(h.sim.Inbox(tc.acct.UIN), qqproto.MsgAddRequest) })
			if err := h.sim.Ack(tc.acct.UIN, 10001, qqproto.AckApprove, ""); err != nil {
				t.Fatal(err)
			}
		}
		h.waitFor(fmt.Sprintf("subscribed from %d", u), presenceMatch(buddyAddr(u), "subscribed"))
		st := h.waitFor(fmt.Sprintf("subscribe from %d", u), presenceMatch(buddyAddr(u), "subscribe"))
		if got := nickOf(t, st); got != tc.acct.Nick {
			t.Errorf("subscribe from %d has nick %q, want %q", u, got, tc.acct.Nick)
		}
		if c, err := h.contact(u); err != nil || c.Nick != tc.acct.Nick || c.Sub != store.Both {
			t.Errorf("contact %d: %+v %v", u, c, err)
		}
		h.cursor = mark
	}
}

// Where the gateway writes the roster, a buddy the user adds gets its item
// named by QQ (unless the user named it) and mutual, without a prompt.
func TestPrivilegedAddedBuddyIsNamedInRoster(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	rosters := h.grantRoster(nsPrivilege2, "both")
	h.register("10001", "secret")
	h.goOnline("")
	h.waitFor("Bob available", presenceMatch(buddyAddr(20001), ""))
	h.quiesce()
	mark := h.cursor

	// The item the user's client made when asking, named by the user.
	rosters.put(aliceBare, rosterItem{JID: buddyAddr(30002), Name: "my friend"})
	h.subscribeTo(30000, "")
	h.subscribeTo(30002, "")
	h.subscribeTo(30001, "")
	h.eventually("the request", func() bool { return hasItem(h.sim.Inbox(30001), qqproto.MsgAddRequest) })
	if err := h.sim.Ack(30001, 10001, qqproto.AckApprove, ""); err != nil {
		t.Fatal(err)
	}
	h.waitFor("subscribed from 30001", presenceMatch(buddyAddr(30001), "subscribed"))
	h.quiesce()
	var got []rosterItem
	for _, it := range rosters.of(aliceBare) {
		if strings.HasPrefix(it.JID, "3000") {
			got = append(got, it)
		}
	}
	sameItems(t, "the added buddies", got, []rosterItem{item(30000, "Open", "QQ"), item(30001, "Asks", "QQ"), item(30002, "my friend", "QQ")})
	h.cursor = mark
	if got := h.sent(subscribeRequests); len(got) != 0 {
		t.Errorf("subscription requests though the roster is written: %v", got)
	}
}
