package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"qqxmpp/qqproto"
	"qqxmpp/qqproto/qqsim"
	"qqxmpp/store"
	"qqxmpp/xmppcomp"
)

// sayFrom sends a chat line from a full JID to the domain and returns the
// text of the one answer.
func (h *harness) sayFrom(from, line string) string {
	h.t.Helper()
	id := h.id()
	h.in(`<message xmlns="jabber:component:accept" type="chat" id=%q from=%q to=%q><body>%s</body></message>`, id, from, testDomain, xmlText(line))
	st := h.waitFor("the answer to a chat line", func(st xmppcomp.Stanza) bool {
		return st.Name == "message" && st.From.String() == testDomain && st.To.String() == from
	})
	if st.Type != "chat" {
		h.t.Errorf("chat line answered with a %q message: %s", st.Type, st)
	}
	return decodeChat(h.t, st).Body
}

// say is sayFrom alice's phone.
func (h *harness) say(line string) string {
	h.t.Helper()
	return h.sayFrom(aliceFull, line)
}

// wantSaid fails unless the answer holds every part.
func wantSaid(t testing.TB, answer string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(answer, p) {
			t.Errorf("answer %q lacks %q", answer, p)
		}
	}
}

func TestChatHelpListsTheCommandsTheUserMayRun(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	help := h.say("help")
	wantSaid(t, help, "register [QQ number] — Register with QQ", "cancel")
	if strings.Contains(help, "unregister") || strings.Contains(help, "users") {
		t.Errorf("an unregistered user's help lists more: %q", help)
	}
	h.register("10001", "secret")
	help = h.say("HELP")
	wantSaid(t, help, "login —", "sync —", "lookup [QQ number] —", "add [QQ number] —", "password —", "unregister —")
	if strings.Contains(help, "register [") || strings.Contains(help, "stats") {
		t.Errorf("a user's help: %q", help)
	}
	h.g.SetAdmins([]string{aliceBare})
	wantSaid(t, h.say("帮助"), "users —", "user [JID] —", "stats —", "announce [text] —", "remove [JID] —")
}

// The guided registration: the number, then the password with a warning;
// nothing the user typed is repeated, logged or stored but the digest.
func TestChatRegistrationDialogue(t *testing.T) {
	const password = "pa55-w0rd"
	h := newHarness(t, qqsim.Options{}, append(world(), qqsim.Account{UIN: 10009, Password: password, Nick: "Zed"})...)
	hook := h.captureLog()

	wantSaid(t, h.say("register"), "QQ number?", "cancel")
	ask := h.say("10009")
	wantSaid(t, ask, "QQ password?", "XMPP server", "message archive")
	done := h.say(password)
	wantSaid(t, done, "Registered with QQ number 10009")
	h.waitFor("subscribe from the domain", presenceMatch(testDomain, "subscribe"))

	reg, err := h.st.Registration(context.Background(), aliceBare)
	if err != nil || reg.UIN != 10009 || reg.PasswordMD5 != qqproto.PasswordMD5(password) {
		t.Fatalf("stored %+v %v", reg, err)
	}
	if items, _ := h.st.Pending(context.Background(), aliceBare, store.ToQQ); len(items) != 0 {
		t.Errorf("a chat line went to the outbox: %+v", items)
	}
	for _, st := range h.out.all() {
		if strings.Contains(st.String(), password) {
			t.Errorf("a stanza repeats the password: %s", st)
		}
	}
	assertLogClean(t, hook, password)
	assertCommandLogged(t, hook, "register", logrus.Fields{"jid": aliceBare, "flow": "chat"})

	// The number may come with the command.
	h2 := newHarness(t, qqsim.Options{}, world()...)
	wantSaid(t, h2.say("register 10001"), "QQ password?")
	wantSaid(t, h2.say("secret"), "Registered with QQ number 10001")
}

// A bad answer is refused without repeating it and asked again; cancel
// ends the dialogue, and what follows is a command line again.
func TestChatDialogueAnswersAndCancel(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	h.say("register")
	bad := h.say("my-password")
	wantSaid(t, bad, "⚠", "not a QQ number")
	if strings.Contains(bad, "my-password") {
		t.Errorf("the refusal repeats the answer: %q", bad)
	}
	wantSaid(t, h.say("10001"), "QQ password?")
	wantSaid(t, h.say("cancel"), "Cancelled register")
	unknown := h.say("secret")
	wantSaid(t, unknown, "Unknown command", "help")
	wantNotRegistered(t, h, unknown, "secret")
	wantSaid(t, h.say("cancel"), "No command is waiting")

	// A wrong password ends the dialogue with QQ's reason.
	h.say("register 10001")
	wantSaid(t, h.say("wrong"), "⚠ "+wantFormRefused)
	wantSaid(t, h.say("secret"), "Unknown command")
}

// A dialogue left alone expires; the late answer is not taken, and not
// repeated.
func TestChatDialogueExpires(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, world()...)
	// While it waits, the session of an unregistered JID is kept; once
	// the cleanup ran, nothing is left.
	h.say("register")
	if n := sessionCount(h.g); n != 1 {
		t.Errorf("%d sessions while a dialogue waits, want 1", n)
	}
	h.jump(2 * commandTimeout)
	h.eventually("session dropped", func() bool { return sessionCount(h.g) == 0 })

	h.say("register 10001")
	h.jump(commandTimeout)
	late := h.say("secret")
	wantSaid(t, late, "register command waited more than 5m0s", "send register")
	wantNotRegistered(t, h, late, "secret")
}

// Every user command in chat: lookup and add, add with authorisation,
// login, sync, password, unregister.
func TestChatUserCommands(t *testing.T) {
	h := newHarness(t, qqsim.Options{}, contactsAll...)
	wantSaid(t, h.say("lookup 30000"), "⚠", "Register")
	h.online("")

	wantSaid(t, h.say("lookup 30000"), "QQ 30000", "Nickname: Open", "Add 30000 to your QQ contacts? (yes or no)")
	mark := h.cursor
	wantSaid(t, h.say("yes"), "30000 is on your QQ buddy list now")
	h.cursor = mark
	h.waitFor("30000 offered", presenceMatch(buddyAddr(30000), "subscribe"))
	wantSaid(t, h.say("lookup 20001"), "On your QQ buddy list.")
	wantSaid(t, h.say("lookup 12"), "⚠", "not a QQ number")

	wantSaid(t, h.say("add 30001"), "must accept you first")
	if err := h.sim.Ack(30001, 10001, qqproto.AckApprove, ""); err != nil {
		t.Fatal(err)
	}
	st := h.waitFor("30001 offered once it accepted", presenceMatch(buddyAddr(30001), "subscribe"))
	if nickOf(t, st) != "Asks" {
		t.Errorf("offer of 30001: %s", st)
	}
	wantSaid(t, h.say("add 30004"), "⚠", "accepts nobody")

	wantSaid(t, h.say("login"), "Logged in to QQ as 10001 already")
	wantSaid(t, h.say("login now"), "⚠ login takes nothing after its name")
	wantSaid(t, h.say("sync"), "On your QQ buddy list: 5")

	wantSaid(t, h.say("password"), "New QQ password?", "message archive")
	wantSaid(t, h.say("secret"), "The stored password of QQ 10001 is changed")

	wantSaid(t, h.say("unregister"), "Unregister from the QQ gateway? (yes or no)")
	wantSaid(t, h.say("maybe"), "⚠ Answer yes or no")
	wantSaid(t, h.say("no"), "Nothing was changed")
	h.say("unregister")
	wantSaid(t, h.say("yes"), "Unregistered")
	h.waitFor("the domain leaves the roster", presenceMatch(testDomain, "unsubscribed"))
	if _, err := h.st.Registration(context.Background(), aliceBare); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("still registered: %v", err)
	}
}

// wantNotRegistered fails if alice is registered, or if answer repeats
// the password the line that got it held.
func wantNotRegistered(t testing.TB, h *harness, answer, password string) {
	t.Helper()
	if strings.Contains(answer, password) {
		t.Errorf("the answer repeats the password: %q", answer)
	}
	if _, err := h.st.Registration(context.Background(), aliceBare); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice is registered: %v", err)
	}
}

// captureLog restarts the gateway with a logger whose entries the test
// reads.
func (h *harness) captureLog() *logtest.Hook {
	h.t.Helper()
	h.stop()
	l, hook := logtest.NewNullLogger()
	l.SetLevel(logrus.DebugLevel)
	h.cfg.Logger = l
	h.start()
	return hook
}

// assertLogClean fails if any log entry holds the password or its MD5.
func assertLogClean(t testing.TB, hook *logtest.Hook, password string) {
	t.Helper()
	for _, e := range hook.AllEntries() {
		line := e.Message + fmt.Sprint(e.Data)
		for _, secret := range []string{password, qqproto.PasswordMD5(password)} {
			if strings.Contains(line, secret) {
				t.Errorf("the log holds a secret: %s", line)
			}
		}
	}
}

// assertCommandLogged fails unless a command's start and end were logged
// at info with the fields.
func assertCommandLogged(t testing.TB, hook *logtest.Hook, command string, fields logrus.Fields) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range hook.AllEntries() {
		if e.Level != logrus.InfoLevel || e.Data["command"] != command {
			continue
		}
		match := true
		for k, v := range fields {
			match = match && e.Data[k] == v
		}
		if match {
			seen[e.Message] = true
		}
	}
	if !seen["gateway: command started"] || !seen["gateway: command completed"] {
		t.Errorf("%s not logged at info with %v: %v", command, fields, seen)
	}
}
