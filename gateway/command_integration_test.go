//go:build integration

package gateway

// The commands against real XMPP servers (issue 11, items 4 and 5): a
// client discovers them, runs a multi-step one as XEP-0050 ad-hoc
// commands, and registers in a chat with the transport, as clients with
// no command UI must.

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"qqxmpp/qqproto/qqsim"
	"qqxmpp/xmppcomp"
	"qqxmpp/xmppcomp/xmpptest"
)

// adhocIQ sends a <command/> to the transport and returns its answer.
func (e *itEnv) adhocIQ(ctx context.Context, c *xmpptest.Client, node, action, sid string, values map[string]string) xmppcomp.Stanza {
	t := e.t
	t.Helper()
	attrs := fmt.Sprintf(`node=%q action=%q`, node, action)
	if sid != "" {
		attrs += fmt.Sprintf(` sessionid=%q`, sid)
	}
	inner := ""
	if values != nil {
		inner = submitted(values)
	}
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(fmt.Sprintf(
		`<iq type="set" id=%q to=%q><command xmlns="http://jabber.org/protocol/commands" %s>%s</command></iq>`,
		e.id("cmd"), itDomain, attrs, inner))))
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

// commands lists the commands of the transport as the client sees them.
func (e *itEnv) commands(ctx context.Context, c *xmpptest.Client) []string {
	t := e.t
	t.Helper()
	ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(fmt.Sprintf(
		`<iq type="get" id=%q to=%q><query xmlns="http://jabber.org/protocol/disco#items" node="http://jabber.org/protocol/commands"/></iq>`,
		e.id("items"), itDomain))))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Items []struct {
			Node string `xml:"node,attr"`
		} `xml:"http://jabber.org/protocol/disco#items query>item"`
	}
	if err := ans.Decode(&v); err != nil || ans.Type != "result" {
		t.Fatalf("disco#items of the commands: %s (%v)", ans, err)
	}
	var out []string
	for _, it := range v.Items {
		out = append(out, it.Node)
	}
	return out
}

// approveTransport accepts the transport's subscription, and asks for
// its presence, as a client does after registering.
func approveTransport(t *testing.T, ctx context.Context, c *xmpptest.Client) {
	t.Helper()
	c.Expect(t, ctx, "subscribe from the gateway", xmpptest.PresenceFrom(itDomain, "subscribe"))
	approve(t, ctx, c, itDomain)
}

func TestIntegrationAdhocCommands(t *testing.T) {
	onEachGrant(t, func(t *testing.T, srv *xmpptest.Server, granted, writes bool) {
		e := newEnv(t, srv, nil, contactsAll...)
		ctx := itCtx(t, time.Minute)
		c := e.loginAnnouncing(ctx, granted)
		ans, err := c.SendIQ(ctx, xml.NewDecoder(strings.NewReader(fmt.Sprintf(
			`<iq type="get" id=%q to=%q><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, e.id("info"), itDomain))))
		var d discoResult
		if err != nil || ans.Decode(&d) != nil || !slices.Contains(d.features(), nsCommands) {
			t.Fatalf("disco#info of the transport: %s %v", ans, err)
		}
		if got := e.commands(ctx, c); !slices.Equal(got, guestCommands) {
			t.Errorf("commands before registering: %v", got)
		}

		// Register with the command's one form.
		a := decodeAdhoc(t, e.adhocIQ(ctx, c, "register", "execute", "", nil))
		done := decodeAdhoc(t, e.adhocIQ(ctx, c, "register", "complete", a.ID, map[string]string{"username": "10001", "password": "secret"}))
		if done.Status != "completed" {
			t.Fatalf("register: %+v", done)
		}
		e.transportJoins(ctx, c, writes, done.note())
		e.waitQQ("QQ login", func(s qqsim.SessionInfo) bool { return s.LoggedIn })
		if got := e.commands(ctx, c); !slices.Equal(got, userCmds) {
			t.Errorf("commands once registered: %v", got)
		}

		// Look up a number (page 1), see its profile and add it (page 2).
		a = decodeAdhoc(t, e.adhocIQ(ctx, c, "lookup", "execute", "", nil))
		p := decodeAdhoc(t, e.adhocIQ(ctx, c, "lookup", "next", a.ID, map[string]string{"uin": "30000"}))
		if _, ok := p.Form.field("add"); !ok || !strings.Contains(p.Form.text(), "Open") {
			t.Fatalf("profile page: %+v", p.Form)
		}
		done = decodeAdhoc(t, e.adhocIQ(ctx, c, "lookup", "complete", p.ID, map[string]string{"add": "true"}))
		if done.Status != "completed" {
			t.Fatalf("add: %+v", done)
		}
		if writes {
			// Into the roster as the import's buddies, nothing to accept.
			wantSaid(t, done.note(), "in your roster")
			c.Expect(t, ctx, "30000 in the roster", rosterPush(itBuddy(30000), "Open"))
			noPrompts(t, ctx, c)
		} else {
			wantSaid(t, done.note(), "Accept the contact request")
			st := c.Expect(t, ctx, "30000 offered", xmpptest.PresenceFrom(itBuddy(30000), "subscribe"))
			if nickOf(t, st) != "Open" {
				t.Errorf("offer of 30000: %s", st)
			}
		}
		wantCond(t, e.adhocIQ(ctx, c, "lookup", "next", p.ID, map[string]string{"add": "true"}), "bad-request", "bad-sessionid")
	})
}

func TestIntegrationRegisterByChat(t *testing.T) {
	onEachGrant(t, func(t *testing.T, srv *xmpptest.Server, granted, writes bool) {
		e := newEnv(t, srv, nil, world()...)
		ctx := itCtx(t, time.Minute)
		c := e.loginAnnouncing(ctx, granted)
		say := func(line string) string {
			t.Helper()
			c.SendXML(t, ctx, `<message to=%q type="chat"><body>%s</body></message>`, itDomain, xmlText(line))
			st := c.Expect(t, ctx, "the transport's answer to "+line, xmpptest.MessageFrom(itDomain))
			if st.Type != "chat" {
				t.Errorf("answer of type %q: %s", st.Type, st)
			}
			return decodeChat(t, st).Body
		}
		wantSaid(t, say("help"), "register [QQ number]")
		wantSaid(t, say("register"), "QQ number?")
		wantSaid(t, say("10001"), "QQ password?", "message archive")
		done := say("secret")
		wantSaid(t, done, "Registered with QQ number 10001")
		if strings.Contains(done, "secret") {
			t.Errorf("the answer repeats the password: %q", done)
		}
		e.transportJoins(ctx, c, writes, done)
		reg, err := e.st.Registration(ctx, e.bare())
		if err != nil || reg.UIN != 10001 {
			t.Fatalf("stored %+v %v", reg, err)
		}
		e.waitQQ("QQ login", func(s qqsim.SessionInfo) bool { return s.LoggedIn })
		if writes {
			c.Expect(t, ctx, "Bob in the roster", rosterPush(itBuddy(20001), bob.Nick))
			noPrompts(t, ctx, c)
		} else {
			st := c.Expect(t, ctx, "Bob offered", xmpptest.PresenceFrom(itBuddy(20001), "subscribe"))
			if nickOf(t, st) != bob.Nick {
				t.Errorf("offer of Bob: %s", st)
			}
		}
		wantSaid(t, say("login"), "Logged in to QQ as 10001 already")
	})
}
