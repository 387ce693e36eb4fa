package gateway

import (
	"context"
	"crypto/sha1"
	"encoding/xml"
	"fmt"
	"sort"
	"strings"

	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/crypto"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/receipts"
	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
)

// Namespaces the gateway serves.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsRegister   = "jabber:iq:register"
	nsGateway    = "jabber:iq:gateway"
	nsVersion    = "jabber:iq:version"
	nsVCard      = "vcard-temp"
	nsCommands   = commands.NS
)

// iqRoute is what an iq request is routed by, as mellium's mux does: its
// type, its payload's name, and whether it is to a buddy or the domain.
type iqRoute struct {
	typ     string // get or set
	payload xml.Name
	buddy   bool
}

// iqHandler serves one request; it returns the result's payload (nil:
// an empty result) or an error that serve turns into the stanza error.
type iqHandler func(s *session, ctx context.Context, in inbound) (any, error)

type iqRoutes map[iqRoute]iqHandler

func newIQRoutes() iqRoutes {
	r := iqRoutes{}
	name := func(space, local string) xml.Name { return xml.Name{Space: space, Local: local} }
	for _, buddy := range []bool{false, true} {
		r[iqRoute{"get", name(nsDiscoInfo, "query"), buddy}] = (*session).discoInfo
		r[iqRoute{"get", name(nsDiscoItems, "query"), buddy}] = emptyResult
		r[iqRoute{"get", name(ping.NS, "ping"), buddy}] = emptyResult
		r[iqRoute{"get", name(nsVCard, "vCard"), buddy}] = func(s *session, ctx context.Context, in inbound) (any, error) {
			return s.vcardOf(ctx, in.uin)
		}
	}
	r[iqRoute{"get", name(nsPubSub, "pubsub"), true}] = (*session).pubsubGet
	r[iqRoute{"get", name(nsDiscoItems, "query"), false}] = (*session).discoItems
	r[iqRoute{"set", name(nsCommands, "command"), false}] = (*session).commandIQ
	r[iqRoute{"get", name(nsRegister, "query"), false}] = (*session).registerForm
	r[iqRoute{"set", name(nsRegister, "query"), false}] = (*session).registerSet
	r[iqRoute{"get", name(nsGateway, "query"), false}] = gatewayPrompt
	r[iqRoute{"set", name(nsGateway, "query"), false}] = gatewayJID
	r[iqRoute{"get", name(nsVersion, "query"), false}] = func(s *session, _ context.Context, _ inbound) (any, error) {
		return versionQuery{Name: "qqgateway", Version: s.g.cfg.Version}, nil
	}
	return r
}

func emptyResult(*session, context.Context, inbound) (any, error) { return nil, nil }

// handleIQ serves a request by its route.
func (s *session) handleIQ(ctx context.Context, in inbound) error {
	h, ok := s.g.iqs[iqRoute{in.st.Type, in.iq, !in.domain}]
	switch {
	case !in.domain && s.reg == nil:
		return errRegistrationRequired
	case !ok && in.domain:
		return newUserError(stanza.ServiceUnavailable, "The gateway does not serve %s.", in.iq.Space)
	case !ok:
		return newUserError(stanza.ServiceUnavailable, "QQ contacts do not answer %s.", in.iq.Space)
	}
	payload, err := h(s, ctx, in)
	if err != nil {
		return err
	}
	s.e.result(ctx, in.st, payload)
	s.afterReply(ctx)
	return nil
}

// afterReply runs what a handler left for after its answer went out.
func (s *session) afterReply(ctx context.Context) {
	if then := s.afterResult; then != nil {
		s.afterResult = nil
		then(ctx)
	}
}

// ---- disco ----

// discoInfo answers disco#info of the domain (a gateway) or a buddy (a
// contact that confirms messages that ask for a receipt), with no node or
// the node of the entity capabilities their presence carries; on the
// domain, also the command nodes (XEP-0050).
func (s *session) discoInfo(_ context.Context, in inbound) (any, error) {
	node := queryNode(in)
	if i, ok := s.commandNodeInfo(node); ok && in.domain {
		return i, nil
	}
	caps := s.e.caps.contact
	if in.domain {
		caps = s.e.caps.gateway
	}
	if node != "" && node != caps.Node+"#"+caps.Ver {
		return nil, newUserError(stanza.ItemNotFound, "No such node.")
	}
	if in.domain {
		return withNode(gatewayInfo(s.g.cfg.Name), node), nil
	}
	i := contactInfo()
	if b := s.buddies.get(in.uin); b != nil && s.nick(b) != "" && node == "" {
		i.Identity[0].Name = s.nick(b) // the caps hash is of the nameless one
	}
	return withNode(i, node), nil
}

// queryNode is the node attribute of an iq's payload.
func queryNode(in inbound) string {
	var q struct {
		Query struct {
			Node string `xml:"node,attr"`
		} `xml:",any"`
	}
	_ = xml.Unmarshal(in.st.Raw, &q)
	return q.Query.Node
}

func withNode(i disco.Info, node string) disco.Info {
	i.Node = node
	return i
}

// gatewayInfo is what the domain is: a QQ gateway.
func gatewayInfo(name string) disco.Info {
	return discoAnswer(info.Identity{Category: "gateway", Type: "qq", Name: name},
		nsDiscoInfo, nsDiscoItems, nsGateway, nsRegister, nsVersion, ping.NS, nsVCard, nsCommands)
}

// contactInfo is what every buddy JID is: a QQ user's client, whose
// profile and avatar can be read as PEP items (XEP-0292, XEP-0084).
func contactInfo() disco.Info {
	return discoAnswer(info.Identity{Category: "client", Type: "pc"},
		nsDiscoInfo, ping.NS, nsVCard, receipts.NS, nsPubSub, nsPubSubRetrieve, nsVCard4)
}

// discoAnswer is a disco#info result with the features sorted.
func discoAnswer(id info.Identity, features ...string) disco.Info {
	sort.Strings(features)
	out := disco.Info{Identity: []info.Identity{id}}
	for _, f := range features {
		out.Features = append(out.Features, info.Feature{Var: f})
	}
	return out
}

// capsNode names the gateway's software in its entity capabilities.
const capsNode = "urn:qqxmpp:qqgateway"

// entityCaps are the XEP-0115 <c/> of the domain's and the buddies'
// presence: a hash of their disco#info, so that clients ask once per
// version instead of once per JID.
type entityCaps struct {
	gateway, contact disco.Caps
}

func newEntityCaps(name string) entityCaps {
	c := func(i disco.Info) disco.Caps {
		return disco.Caps{Hash: crypto.SHA1, Node: capsNode, Ver: i.Hash(sha1.New())}
	}
	return entityCaps{gateway: c(gatewayInfo(name)), contact: c(contactInfo())}
}

// versionQuery is XEP-0092's software version.
type versionQuery struct {
	XMLName xml.Name `xml:"jabber:iq:version query"`
	Name    string   `xml:"name,omitempty"`
	Version string   `xml:"version,omitempty"`
}

// ---- XEP-0100 jabber:iq:gateway ----

// gatewayQuery is XEP-0100's jabber:iq:gateway query and answer.
type gatewayQuery struct {
	XMLName xml.Name `xml:"jabber:iq:gateway query"`
	Desc    string   `xml:"desc,omitempty"`
	Prompt  *string  `xml:"prompt"`
	JID     string   `xml:"jid,omitempty"`
}

func gatewayPrompt(*session, context.Context, inbound) (any, error) {
	prompt := "QQ number"
	return gatewayQuery{Desc: "Enter the QQ number of the person you would like to contact.", Prompt: &prompt}, nil
}

// gatewayJID turns a QQ number into its JID.
func gatewayJID(s *session, _ context.Context, in inbound) (any, error) {
	var q struct {
		Query gatewayQuery
	}
	if err := xml.Unmarshal(in.st.Raw, &q); err != nil {
		return nil, errMalformed
	}
	text := ""
	if q.Query.Prompt != nil {
		text = strings.TrimSpace(*q.Query.Prompt)
	}
	uin, ok := qqproto.ParseUIN(text)
	if !ok {
		return nil, badRequest("%s", notAUINText(text))
	}
	j := s.e.buddyJID(uin)
	// XEP-0100 6.3: <jid/>; older clients read <prompt/>.
	return gatewayQuery{JID: j, Prompt: &j}, nil
}

// notAUINText explains why text is not a QQ number.
func notAUINText(text string) string {
	if text == "" {
		return "A QQ number is required: 5 to 11 digits."
	}
	if len(text) > 40 {
		text = text[:40] + "…"
	}
	return fmt.Sprintf("%q is not a QQ number: a QQ number is 5 to 11 digits and does not start with 0.", text)
}
