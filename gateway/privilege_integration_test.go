//go:build integration

package gateway

// Roster without prompts (issue 11) against the real servers: with
// XEP-0356 roster access granted, registration puts every buddy in the
// roster without one subscription request, and unregistration takes every
// item of the transport out. Each server runs with and without the grant.

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// rosterBuddies is the length of the buddy list of the user.
const rosterBuddies = 174

func TestIntegrationRosterPrivilege(t *testing.T) {
	for _, kind := range []string{xmpptest.Prosody, xmpptest.Ejabberd} {
		for _, granted := range []bool{true, false} {
			name := kind + "/without-privilege"
			if granted {
				name = kind + "/with-privilege"
			}
			t.Run(name, func(t *testing.T) {
				opts := itServerOpts
				opts.RosterPrivilege = granted
				srv := xmpptest.Shared(t, kind, opts)
				// ejabberd 23.01 grants roster access but fails every roster
				// set (ejabberd issue 3942, fixed in 23.04): the gateway
				// falls back to subscriptions there.
				rosterScenario(t, srv, granted, granted && kind == xmpptest.Prosody)
			})
		}
	}
}

func rosterScenario(t *testing.T, srv *xmpptest.Server, granted, writes bool) {
	accounts, want := longBuddyList(rosterBuddies)
	e := newEnv(t, srv, nil, accounts...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	if granted {
		e.waitGrant()
	}
	c := e.login(ctx)
	prompts := 0
	if writes {
		if ans := e.registerIQ(ctx, c, "10001", "secret"); ans.Type != "result" {
			t.Fatalf("registration: %s", ans)
		}
	} else {
		e.register(ctx, c, copyNicks(want))
		prompts = 1 + len(want) // the domain's and each buddy's, each answered above
	}
	c.Expect(t, ctx, "Bob available", xmpptest.PresenceFrom(itBuddy(20001), ""))
	gatewayBarrier(t, ctx, c)
	prompts += countReceived(c, func(st xmppcomp.Stanza) bool {
		return st.Name == "presence" && st.Type == "subscribe" && st.From.Domainpart() == itDomain
	})
	items := transportItems(t, ctx, c)
	t.Logf("%s, privilege granted %v: %d subscription prompts for %d buddies; %d transport items in the roster",
		srv.Kind, granted, prompts, len(want), len(items))
	if writes {
		if prompts != 0 {
			t.Errorf("%d subscription prompts with roster access, want 0", prompts)
		}
		checkImported(t, items, want)
	} else {
		if prompts != 1+len(want) {
			t.Errorf("%d subscription prompts, want one per buddy and the domain's (%d)", prompts, 1+len(want))
		}
		if granted && !e.gw.privs.roster(srv.Domain).refused {
			t.Errorf("%s: the gateway did not note that the server refused roster sets", srv.Kind)
		}
	}

	unregister(t, ctx, c)
	gatewayBarrier(t, ctx, c)
	left := transportItems(t, ctx, c)
	t.Logf("%s, privilege granted %v: %d transport items left in the roster after unregistration", srv.Kind, granted, len(left))
	for _, it := range left {
		if writes || it.Subscription != "none" {
			t.Errorf("left in the roster after unregistration: %+v", it)
		}
	}
}

// longBuddyList is alice's world with n buddies, and their nicks.
func longBuddyList(n int) ([]qqsim.Account, map[qqproto.UIN]string) {
	accounts := world()
	a := accounts[0]
	a.Buddies = append([]qqproto.UIN(nil), a.Buddies...)
	want := smallWorldNicks()
	for i := 0; len(a.Buddies) < n; i++ {
		u := qqproto.UIN(40000 + i)
		nick := fmt.Sprintf("好友 %d, &<>", i)
		a.Buddies = append(a.Buddies, u)
		accounts = append(accounts, qqsim.Account{UIN: u, Password: "p", Nick: nick, State: qqproto.Status(10 + 10*(i%2))})
		want[u] = nick
	}
	accounts[0] = a
	return accounts, want
}

func copyNicks(m map[qqproto.UIN]string) map[qqproto.UIN]string {
	out := make(map[qqproto.UIN]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// waitGrant waits until the gateway learnt the server's grant, which the
// server sends right after the component's handshake; a user registering
// before would be asked to approve the transport.
func (e *itEnv) waitGrant() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !e.gw.privs.roster(e.srv.Domain).set {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s announced no roster access to the gateway within 20s", e.srv.Kind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gatewayBarrier asks the gateway something and waits for the answer: it
// is served after all the user's earlier stanzas, so whatever the gateway
// did for them has reached the server, and the client, by then.
func gatewayBarrier(t *testing.T, ctx context.Context, c *xmpptest.Client) {
	t.Helper()
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(
		fmt.Sprintf(`<iq type="get" id="barrier-%d" to=%q><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, time.Now().UnixNano(), itDomain))))
	if err != nil || ans.Type != "result" {
		t.Fatalf("disco#info of the gateway: %s %v", ans, err)
	}
}

// countReceived removes what the client received that matches, without waiting,
// and returns how many.
func countReceived(c *xmpptest.Client, match func(xmppcomp.Stanza) bool) int {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	for {
		if _, err := c.Next(done, match); err != nil {
			return n
		}
		n++
	}
}

// transportItems is the transport's part of the client's roster, as the
// server answers the client's roster get.
func transportItems(t *testing.T, ctx context.Context, c *xmpptest.Client) []rosterItem {
	t.Helper()
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(
		fmt.Sprintf(`<iq type="get" id="roster-%d"><query xmlns="jabber:iq:roster"/></iq>`, time.Now().UnixNano()))))
	if err != nil || ans.Type != "result" {
		t.Fatalf("roster get: %s %v", ans, err)
	}
	var v struct {
		Query rosterQuery `xml:"jabber:iq:roster query"`
	}
	if err := ans.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var out []rosterItem
	for _, it := range v.Query.Items {
		if it.JID == itDomain || strings.HasSuffix(it.JID, "@"+itDomain) {
			out = append(out, it)
		}
	}
	return out
}

// checkImported checks that the roster holds the transport and every
// buddy, named by QQ, in the QQ group, mutual.
func checkImported(t *testing.T, items []rosterItem, want map[qqproto.UIN]string) {
	t.Helper()
	if len(items) != len(want)+1 {
		t.Errorf("%d transport items in the roster, want %d buddies and the transport", len(items), len(want))
	}
	for _, it := range items {
		name := "QQ"
		if it.JID != itDomain {
			u, _ := qqproto.ParseUIN(strings.TrimSuffix(it.JID, "@"+itDomain))
			name = want[u]
		}
		if it.Name != name || it.Subscription != subBoth || fmt.Sprint(it.Groups) != "[QQ]" {
			t.Errorf("roster item %+v, want name %q, group QQ, subscription both", it, name)
		}
	}
}

func unregister(t *testing.T, ctx context.Context, c *xmpptest.Client) {
	t.Helper()
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(
		fmt.Sprintf(`<iq type="set" id="unreg-%d" to=%q><query xmlns="jabber:iq:register"><remove/></query></iq>`, time.Now().UnixNano(), itDomain))))
	if err != nil || ans.Type != "result" {
		t.Fatalf("remove: %s %v", ans, err)
	}
}
