package gateway

// Commands in chat: a message to the domain JID is a command line, for
// clients with no command UI and no registration form (Conversations,
// Dino, Monal). "help" lists the commands; a command that asks fields asks
// them one message at a time ("register": the number, then the password),
// and the answers go to the same steps the XEP-0050 forms feed. Every line
// gets one answer message. Lines are never logged nor stored, and answers
// never repeat what the user typed: any of it may be a password.

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"mellium.im/xmpp/stanza"
)

const flowChat = "chat"

// dialogue is a command in chat waiting for the user's next line.
type dialogue struct {
	cmd     *command
	asked   reply   // the reply whose fields are being asked
	got     answers // the answers so far
	at      int     // the field asked now
	expires time.Time
}

// secretWarning goes with every question whose answer is a password.
const secretWarning = "Careful: this goes as a chat message, so your XMPP server passes it on and may keep it in " +
	"your message archive and on your other devices. The gateway neither logs nor stores it (only the MD5 digest QQ " +
	"logs in with). A client with a registration form or commands (Gajim, Psi) keeps it out of the archive."

// handleLine answers a message to the domain.
func (s *session) handleLine(ctx context.Context, in inbound) error {
	text, err := s.chatTurn(ctx, in.line.text)
	if err != nil {
		return err // answered as a chat message by serve
	}
	s.e.message(ctx, in.st.From.String(), qqMessage{typ: in.line.typ, text: text})
	s.afterReply(ctx)
	return nil
}

// chatTurn takes one line: the answer the dialogue waits for, or a
// command line. It returns the text to answer with.
func (s *session) chatTurn(ctx context.Context, line string) (string, error) {
	var timedOut *command
	if d := s.runs.chat; d != nil {
		if s.g.clock.Now().Before(d.expires) {
			return s.answerLine(ctx, d, line)
		}
		s.runs.chat, timedOut = nil, d.cmd
		s.logCommand(d.cmd.name, flowChat, "expired", nil)
	}
	word, rest := splitLine(line)
	switch word {
	case "help", "?", "帮助":
		s.logCommand("help", flowChat, "completed", nil)
		return s.help(), nil
	case "cancel", "abort":
		return "No command is waiting for an answer.", nil
	}
	c := s.commandNamed(word)
	switch {
	case c == nil && timedOut != nil:
		return "", newUserError(stanza.NotAcceptable, "The %s command waited more than %v for an answer and ended: send %s to start again.",
			timedOut.name, commandTimeout, timedOut.name)
	case c == nil:
		return "", newUserError(stanza.ItemNotFound, "Unknown command. Send help for the list.")
	}
	if err := s.mayRun(c); err != nil {
		return "", err
	}
	if rest != "" && c.args == "" {
		return "", badRequest("%s takes nothing after its name: send %s alone.", c.name, c.name)
	}
	s.logCommand(c.name, flowChat, "started", nil)
	rep, err := c.start(s, ctx, nil)
	if err != nil {
		s.logCommand(c.name, flowChat, "failed", err)
		return "", err
	}
	return s.chatReply(ctx, c, rep, rest)
}

// splitLine splits a command line into its first word, in lower case,
// and the rest.
func splitLine(line string) (word, rest string) {
	line = strings.TrimSpace(line)
	i := strings.IndexFunc(line, unicode.IsSpace)
	if i < 0 {
		return strings.ToLower(line), ""
	}
	return strings.ToLower(line[:i]), strings.TrimSpace(line[i:])
}

// answerLine takes the answer to the question the dialogue asked.
func (s *session) answerLine(ctx context.Context, d *dialogue, line string) (string, error) {
	if w := strings.ToLower(strings.TrimSpace(line)); w == "cancel" || w == "abort" {
		s.runs.chat = nil
		s.logCommand(d.cmd.name, flowChat, "cancelled", nil)
		return "Cancelled " + d.cmd.name + ".", nil
	}
	f := d.asked.ask[d.at]
	v, err := f.accept(line)
	if err != nil {
		return "", err // the question stands: the user may answer again
	}
	d.got[f.name] = v
	d.at++
	if d.at < len(d.asked.ask) {
		d.expires = s.expiresAt()
		return question(d.asked.ask[d.at]), nil
	}
	s.runs.chat = nil
	rep, err := d.asked.next(s, ctx, d.got)
	if err != nil {
		s.logCommand(d.cmd.name, flowChat, "failed", err)
		return "", err
	}
	return s.chatReply(ctx, d.cmd, rep, "")
}

// chatReply shows a step's reply. If it asks, arg (what followed the
// command's name) answers its first question, and the rest are asked one
// at a time; an outcome ends the command.
func (s *session) chatReply(ctx context.Context, c *command, rep reply, arg string) (string, error) {
	var b strings.Builder
	for {
		writeReply(&b, rep)
		if len(rep.ask) == 0 {
			s.logCommand(c.name, flowChat, "completed", nil)
			return strings.TrimSpace(b.String()), nil
		}
		d := &dialogue{cmd: c, asked: rep, got: answers{}}
		if arg != "" {
			v, err := rep.ask[0].accept(arg)
			if err != nil {
				s.logCommand(c.name, flowChat, "failed", err)
				return "", err
			}
			d.got[rep.ask[0].name], d.at, arg = v, 1, ""
		}
		if d.at < len(rep.ask) {
			d.expires = s.expiresAt()
			s.runs.chat = d
			b.WriteString(question(rep.ask[d.at]))
			return strings.TrimSpace(b.String()), nil
		}
		var err error
		if rep, err = rep.next(s, ctx, d.got); err != nil {
			s.logCommand(c.name, flowChat, "failed", err)
			return "", err
		}
	}
}

// writeReply writes what a reply shows: its title, text, facts and table.
func writeReply(b *strings.Builder, rep reply) {
	for _, p := range []string{rep.title, rep.text} {
		if p != "" {
			b.WriteString(p + "\n")
		}
	}
	for _, f := range rep.facts {
		fmt.Fprintf(b, "%s: %s\n", f.label, f.value)
	}
	if t := rep.table; t != nil {
		labels := make([]string, len(t.cols))
		for i, c := range t.cols {
			labels[i] = c.label
		}
		b.WriteString(strings.Join(labels, " · ") + "\n")
		for _, row := range t.rows {
			b.WriteString(strings.Join(row, " · ") + "\n")
		}
	}
	b.WriteString("\n")
}

// question asks for one field.
func question(f field) string {
	q := f.label + "?"
	if f.kind == yesNoField {
		q += " (yes or no)"
	}
	if f.hint != "" {
		q += "\n" + f.hint
	}
	if f.kind == secretField {
		q += "\n" + secretWarning
	}
	return q + "\n(Send cancel to stop.)"
}

// help lists the commands the user may run.
func (s *session) help() string {
	var b strings.Builder
	b.WriteString("Commands of the QQ gateway; send one as a message:\n")
	for _, c := range s.visibleCommands() {
		usage := c.name
		if c.args != "" {
			usage += " " + c.args
		}
		fmt.Fprintf(&b, "%s — %s\n", usage, c.title)
	}
	b.WriteString("help — this list\n")
	b.WriteString("While a command asks something, send cancel to stop it.")
	return b.String()
}
