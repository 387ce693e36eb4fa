package gateway

// XEP-0050 ad-hoc commands on the domain: the commands the user may run
// are the items of the node http://jabber.org/protocol/commands, each node
// answers disco#info, and <command/> runs them. A step that asks fields
// answers with a data form (status executing, with a session id); next or
// complete hands the filled form to the next step; cancel ends it.

import (
	"context"
	"encoding/xml"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/stanza"
)

const flowAdhoc = "xep-0050"

// adhocRun is an XEP-0050 session waiting for the form it sent.
type adhocRun struct {
	cmd     *command
	from    string // the requester's full JID: only it may go on
	asked   reply
	expires time.Time
}

// commandQuery is the <command/> of a request.
type commandQuery struct {
	Command struct {
		Node   string     `xml:"node,attr"`
		Action string     `xml:"action,attr"`
		ID     string     `xml:"sessionid,attr"`
		Form   *form.Data `xml:"jabber:x:data x"`
	} `xml:"http://jabber.org/protocol/commands command"`
}

// commandAnswer is the <command/> of a result.
type commandAnswer struct {
	XMLName xml.Name          `xml:"http://jabber.org/protocol/commands command"`
	Node    string            `xml:"node,attr"`
	ID      string            `xml:"sessionid,attr"`
	Status  string            `xml:"status,attr"`
	Actions *commands.Actions `xml:",omitempty"`
	Notes   []commands.Note
	Form    any `xml:",omitempty"`
}

// commandIQ serves a <command/>: execute starts a command, next and
// complete (or no action) hand a filled form to the waiting step, cancel
// ends the session.
func (s *session) commandIQ(ctx context.Context, in inbound) (any, error) {
	var q commandQuery
	if err := xml.Unmarshal(in.st.Raw, &q); err != nil {
		return nil, errMalformed
	}
	c := q.Command
	switch c.Action {
	case "", "execute", "next", "complete", "cancel":
	case "prev":
		return nil, newCommandError(stanza.BadRequest, "bad-action", "These commands cannot go back a step; cancel and run the command again.")
	default:
		return nil, newCommandError(stanza.BadRequest, "malformed-action", "Unknown action: want execute, next, complete or cancel.")
	}
	if c.ID == "" {
		if c.Action != "" && c.Action != "execute" {
			return nil, errBadSessionID
		}
		return s.startAdhoc(ctx, in, c.Node)
	}
	run, err := s.adhocRun(in, c.ID, c.Node)
	if err != nil {
		return nil, err
	}
	delete(s.runs.adhoc, c.ID) // ended, unless the next reply asks more
	if c.Action == "cancel" {
		s.logCommand(run.cmd.name, flowAdhoc, "cancelled", nil)
		return commandAnswer{Node: c.Node, ID: c.ID, Status: "canceled"}, nil
	}
	a, err := formAnswers(run.asked.ask, c.Form)
	if err != nil {
		s.logCommand(run.cmd.name, flowAdhoc, "failed", err)
		return nil, err
	}
	rep, err := run.asked.next(s, ctx, a)
	return s.adhocReply(run.cmd, c.ID, in, rep, err)
}

// startAdhoc runs a command's first step.
func (s *session) startAdhoc(ctx context.Context, in inbound, node string) (any, error) {
	c := s.commandNamed(node)
	if c == nil {
		return nil, newUserError(stanza.ItemNotFound, "No such command.")
	}
	if err := s.mayRun(c); err != nil {
		return nil, err
	}
	s.logCommand(c.name, flowAdhoc, "started", nil)
	rep, err := c.start(s, ctx, nil)
	return s.adhocReply(c, newRunID(), in, rep, err)
}

// adhocRun finds the session id of the requester, running node.
func (s *session) adhocRun(in inbound, id, node string) (*adhocRun, error) {
	run := s.runs.adhoc[id]
	switch {
	case run == nil || run.from != in.st.From.String() || run.cmd.name != node:
		return nil, errBadSessionID
	case !s.g.clock.Now().Before(run.expires):
		delete(s.runs.adhoc, id)
		s.logCommand(run.cmd.name, flowAdhoc, "expired", nil)
		return nil, errSessionExpired
	}
	return run, nil
}

// adhocReply turns a step's reply into the result: a form to fill, kept
// under the session id, or the outcome.
func (s *session) adhocReply(c *command, id string, in inbound, rep reply, err error) (any, error) {
	if err != nil {
		s.logCommand(c.name, flowAdhoc, "failed", err)
		return nil, err
	}
	out := commandAnswer{Node: c.name, ID: id, Status: "completed"}
	if len(rep.ask) == 0 {
		s.logCommand(c.name, flowAdhoc, "completed", nil)
		if rep.text != "" {
			out.Notes = []commands.Note{{Type: commands.NoteInfo, Value: rep.text}}
		}
		if f := resultForm(rep); f != nil {
			out.Form = f
		}
		return out, nil
	}
	s.keepAdhoc(id, &adhocRun{cmd: c, from: in.st.From.String(), asked: rep, expires: s.expiresAt()})
	act := commands.Next | commands.Next<<3
	if rep.last {
		act = commands.Complete | commands.Complete<<3
	}
	out.Status, out.Actions, out.Form = "executing", &act, askForm(rep)
	return out, nil
}

// keepAdhoc keeps run under id, forgetting the oldest run past
// maxAdhocRuns.
func (s *session) keepAdhoc(id string, run *adhocRun) {
	if s.runs.adhoc == nil {
		s.runs.adhoc = map[string]*adhocRun{}
	}
	if len(s.runs.adhoc) >= maxAdhocRuns {
		oldest := ""
		for k, r := range s.runs.adhoc {
			if oldest == "" || r.expires.Before(s.runs.adhoc[oldest].expires) {
				oldest = k
			}
		}
		delete(s.runs.adhoc, oldest)
	}
	s.runs.adhoc[id] = run
}

// formAnswers reads the answers to ask from a submitted form.
func formAnswers(ask []field, f *form.Data) (answers, error) {
	a := answers{}
	for _, fl := range ask {
		raw, _ := f.Raw(fl.name) // a nil form has no values
		v, err := fl.accept(strings.Join(raw, "\n"))
		if err != nil {
			return nil, err
		}
		a[fl.name] = v
	}
	return a, nil
}

// askForm is the data form of a reply that asks: its facts as fixed
// fields, then what it asks.
func askForm(rep reply) *form.Data {
	fields := []form.Field{form.Title(rep.title), form.Instructions(rep.text)}
	for _, f := range rep.facts {
		fields = append(fields, form.Fixed(form.Value(f.label+": "+f.value)))
	}
	for _, f := range rep.ask {
		opts := []form.Option{form.Label(f.label)}
		if f.hint != "" {
			opts = append(opts, form.Desc(f.hint))
		}
		if f.kind != yesNoField {
			opts = append(opts, form.Required)
		}
		fields = append(fields, formField(f.kind)(f.name, opts...))
	}
	return form.New(fields...)
}

// formField is the XEP-0004 field type of a kind.
func formField(k fieldKind) func(string, ...form.Option) form.Field {
	switch k {
	case secretField:
		return form.TextPrivate
	case yesNoField:
		return form.Boolean
	case jidField:
		return form.JID
	case longField:
		return form.TextMulti
	}
	return form.Text
}

// resultForm shows an outcome's facts or table; nil if it has neither.
func resultForm(rep reply) any {
	if rep.table != nil {
		return newTableForm(rep.title, rep.table)
	}
	if len(rep.facts) == 0 {
		return nil
	}
	fields := []form.Field{form.Result, form.Title(rep.title)}
	for i, f := range rep.facts {
		opts := []form.Option{form.Label(f.label)}
		lines := strings.Split(f.value, "\n")
		for _, l := range lines {
			opts = append(opts, form.Value(l))
		}
		kind := form.Text
		if len(lines) > 1 {
			kind = form.TextMulti
		}
		fields = append(fields, kind(factVar(i, f.label), opts...))
	}
	return form.New(fields...)
}

// factVar names a fact's field: its label in lower case, made a token.
func factVar(i int, label string) string {
	v := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(label))
	if strings.Trim(v, "-") == "" {
		return "fact" + strconv.Itoa(i)
	}
	return v
}

// tableForm is an XEP-0004 result with a table: <reported/> names the
// columns, each <item/> is a row. mellium's form package has no tables.
type tableForm struct {
	XMLName  xml.Name   `xml:"jabber:x:data x"`
	Type     string     `xml:"type,attr"`
	Title    string     `xml:"title,omitempty"`
	Reported tableRow   `xml:"reported"`
	Items    []tableRow `xml:"item"`
}

type tableRow struct {
	Fields []tableField `xml:"field"`
}

type tableField struct {
	Var   string  `xml:"var,attr"`
	Label string  `xml:"label,attr,omitempty"`
	Type  string  `xml:"type,attr,omitempty"`
	Value *string `xml:"value"`
}

func newTableForm(title string, t *table) tableForm {
	out := tableForm{Type: "result", Title: title}
	for _, c := range t.cols {
		typ := string(form.TypeText)
		if c.jid {
			typ = string(form.TypeJID)
		}
		out.Reported.Fields = append(out.Reported.Fields, tableField{Var: c.name, Label: c.label, Type: typ})
	}
	for _, row := range t.rows {
		var item tableRow
		for i, c := range t.cols {
			item.Fields = append(item.Fields, tableField{Var: c.name, Value: &row[i]})
		}
		out.Items = append(out.Items, item)
	}
	return out
}

// ---- service discovery ----

// itemsQuery is a disco#items answer.
type itemsQuery struct {
	XMLName xml.Name    `xml:"http://jabber.org/protocol/disco#items query"`
	Node    string      `xml:"node,attr,omitempty"`
	Items   []discoItem `xml:"item"`
}

type discoItem struct {
	JID  string `xml:"jid,attr"`
	Node string `xml:"node,attr,omitempty"`
	Name string `xml:"name,attr,omitempty"`
}

// discoItems answers disco#items of the domain: on the commands node, the
// commands the user may run now; elsewhere nothing.
func (s *session) discoItems(_ context.Context, in inbound) (any, error) {
	node := queryNode(in)
	out := itemsQuery{Node: node}
	if node == nsCommands {
		for _, c := range s.visibleCommands() {
			out.Items = append(out.Items, discoItem{JID: s.e.dom, Node: c.name, Name: c.title})
		}
	}
	return out, nil
}

// commandNodeInfo is disco#info of the commands node or of a command the
// user may run (XEP-0050 2.3).
func (s *session) commandNodeInfo(node string) (disco.Info, bool) {
	if node == nsCommands {
		i := discoAnswer(info.Identity{Category: "automation", Type: "command-list", Name: "Commands"}, nsDiscoInfo, nsDiscoItems)
		return withNode(i, node), true
	}
	c := s.commandNamed(node)
	if c == nil || s.mayRun(c) != nil {
		return disco.Info{}, false
	}
	i := discoAnswer(info.Identity{Category: "automation", Type: "command-node", Name: c.title}, nsCommands, form.NS, nsDiscoInfo)
	return withNode(i, node), true
}
