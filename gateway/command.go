package gateway

// Commands. One definition serves two flows, as slidge's and biboumi's
// do: XEP-0050 ad-hoc commands with data forms (adhoc.go), for clients
// with a command UI (Gajim, Psi, Profanity), and a dialogue in chat
// messages to the domain JID (chatcmd.go), for those without one
// (Conversations, Dino, Monal). A command is a chain of steps: each takes
// the answers to the fields the reply before it asked, and returns the
// next reply; a reply that asks nothing ends the command. The commands
// themselves are in usercmds.go and admincmds.go.

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
)

// commandTimeout is how long a command waits for the user's next answer,
// by the gateway's clock; then its state is forgotten.
const commandTimeout = 5 * time.Minute

// access says who may see and run a command.
type access int

const (
	forGuests access = iota // users not registered yet
	forUsers                // registered users
	forAdmins               // the JIDs of Config.Admins
)

// command is one command of the gateway.
type command struct {
	name  string // its XEP-0050 node and its word in chat
	title string // its name in disco#items and in help
	args  string // what may follow the word in chat: fills the first field
	who   access
	start step
}

// step is one step of a command: it takes the answers to what the reply
// before it asked (none for the first) and returns the next reply.
type step func(s *session, ctx context.Context, a answers) (reply, error)

// reply is what a step answers: a form asking for fields, with the step
// that takes them, or, asking nothing, the command's outcome.
type reply struct {
	title string // a form's title; chat shows it as the first line
	text  string // a form's instructions, or the outcome
	facts []fact // labelled values to show
	table *table // rows to show (an outcome only)
	ask   []field
	next  step
	last  bool // submitting ask ends the command: XEP-0050 offers complete, not next
}

// done is an outcome of text alone.
func done(format string, args ...any) reply {
	return reply{text: fmt.Sprintf(format, args...)}
}

// fact is a labelled value shown to the user.
type fact struct{ label, value string }

// table is an outcome of rows, such as the registered users.
type table struct {
	cols []column
	rows [][]string
}

type column struct {
	name, label string
	jid         bool // a JID: XEP-0004 jid-single, so clients can link it
}

// fieldKind is what a field takes.
type fieldKind int

const (
	textField   fieldKind = iota // one line
	secretField                  // a password: private in forms, never echoed nor logged
	yesNoField                   // yes or no; absent is no
	jidField                     // a JID
	longField                    // free text, possibly several lines
)

// field is one thing a form asks.
type field struct {
	name, label string
	kind        fieldKind
	hint        string             // a longer explanation
	check       func(string) error // nil: anything not empty; never echoes the value
}

// answers are the values of a form's fields, by field name. A yes/no
// field's value is "true" or "false".
type answers map[string]string

func (a answers) yes(name string) bool { return a[name] == "true" }

// uin is the QQ number a field's check accepted.
func (a answers) uin(name string) qqproto.UIN {
	u, _ := qqproto.ParseUIN(strings.TrimSpace(a[name]))
	return u
}

// bareJID is the JID a jidField's check accepted, without a resource.
func (a answers) bareJID(name string) string {
	j, err := jid.Parse(strings.TrimSpace(a[name]))
	if err != nil {
		return ""
	}
	return j.Bare().String()
}

// accept checks v as an answer to f and returns it as the step reads it.
func (f field) accept(v string) (string, error) {
	if f.kind != secretField && f.kind != longField {
		v = strings.TrimSpace(v)
	}
	if f.kind == yesNoField {
		return yesNo(v)
	}
	if v == "" {
		return "", newCommandError(stanza.BadRequest, "bad-payload", "%s: an answer is required.", f.label)
	}
	if f.check != nil {
		if err := f.check(v); err != nil {
			return "", err
		}
	}
	return v, nil
}

// yesNo reads a yes/no answer: a data form's boolean or a word in chat.
func yesNo(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "n", "否", "不":
		return "false", nil
	case "1", "true", "yes", "y", "是", "好":
		return "true", nil
	}
	return "", badRequest("Answer yes or no.")
}

// checkUIN accepts a QQ number. Its error does not repeat the text: in a
// chat dialogue that may be a password typed at the wrong prompt.
func checkUIN(v string) error {
	if _, ok := qqproto.ParseUIN(v); !ok {
		return badRequest("That is not a QQ number: a QQ number is 5 to 11 digits and does not start with 0.")
	}
	return nil
}

func checkJID(v string) error {
	if j, err := jid.Parse(v); err != nil || j.Localpart() == "" {
		return badRequest("That is not a user's JID, such as alice@example.org.")
	}
	return nil
}

// ---- the command table ----

// commandList is every command, in the order help and disco#items list
// them. Built once: the steps are methods, the table is data.
func commandList() []*command {
	return append(userCommands(), adminCommands()...)
}

// commandNamed returns the command called name, or nil.
func (s *session) commandNamed(name string) *command {
	for _, c := range s.g.commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// visibleCommands are the commands the session's user may run now.
func (s *session) visibleCommands() []*command {
	var out []*command
	for _, c := range s.g.commands {
		if s.mayRun(c) == nil {
			out = append(out, c)
		}
	}
	return out
}

// mayRun says why the user may not run c now, or nil.
func (s *session) mayRun(c *command) error {
	switch c.who {
	case forGuests:
		if s.reg != nil {
			return newUserError(stanza.NotAllowed, "You are registered already (QQ %d): change the password with the password command, or unregister first to use another QQ number.", s.reg.UIN)
		}
	case forUsers:
		if s.reg == nil {
			return errRegistrationRequired
		}
	case forAdmins:
		if !s.g.isAdmin(s.jid) {
			return newUserError(stanza.Forbidden, "Only the gateway's administrators may run this command.")
		}
	}
	return nil
}

// ---- state between steps ----

// commandRuns is a session's commands waiting for answers: XEP-0050
// sessions by id, and the chat dialogue. Touched only by the session's own
// work items, like the rest of it.
type commandRuns struct {
	adhoc map[string]*adhocRun
	chat  *dialogue
	// offerOnAccept are the numbers the add command asked to add: when
	// they accept, the gateway offers them to the roster.
	offerOnAccept map[qqproto.UIN]bool
}

// maxAdhocRuns bounds the XEP-0050 sessions one user may keep open; past
// it the oldest goes.
const maxAdhocRuns = 8

func (r *commandRuns) any() bool { return len(r.adhoc) > 0 || r.chat != nil }

// sweep forgets what expired a commandTimeout ago: until then it is kept
// to tell the user that it expired.
func (r *commandRuns) sweep(now time.Time) {
	for id, run := range r.adhoc {
		if !now.Before(run.expires.Add(commandTimeout)) {
			delete(r.adhoc, id)
		}
	}
	if r.chat != nil && !now.Before(r.chat.expires.Add(commandTimeout)) {
		r.chat = nil
	}
}

// expiresAt is the deadline of a command step begun now. A cleanup
// follows: a user who walks away leaves nothing behind, and an
// unregistered one's session can go.
func (s *session) expiresAt() time.Time {
	s.g.clock.AfterFunc(2*commandTimeout, func() {
		s.g.submitTo(s, func(_ context.Context, s *session) {
			s.runs.sweep(s.g.clock.Now())
			s.g.maybeDrop(s)
		})
	})
	return s.g.clock.Now().Add(commandTimeout)
}

// newRunID is an XEP-0050 session id: random, so that one cannot be guessed.
func newRunID() string { return strings.ToLower(rand.Text()[:16]) }

// logCommand notes a command's progress at info: the command, the flow
// and what happened; never an answer.
func (s *session) logCommand(name, flow, what string, err error) {
	l := s.log.WithField("command", name).WithField("flow", flow)
	if err != nil {
		l = l.WithError(err)
	}
	l.Info("gateway: command " + what)
}
