package gateway

import (
	"context"
	"encoding/xml"
	"fmt"
	"sort"
	"strings"

	"mellium.im/xmpp/stanza"

	"qqxmpp/qqproto"
	"qqxmpp/xmppcomp"
)

// handleIQ routes a request by its payload's namespace and its target:
// the domain (the gateway) or a buddy JID (a contact).
func (s *session) handleIQ(ctx context.Context, st xmppcomp.Stanza) {
	if st.Type != "get" && st.Type != "set" {
		return // a result or error: the gateway asks nothing
	}
	var ch iqChildren
	if err := st.Decode(&ch); err != nil {
		s.replyError(ctx, st, badRequest("The request is not well-formed."), forRequest)
		return
	}
	name, ok := ch.payload()
	if !ok {
		s.replyError(ctx, st, badRequest("The request has no payload."), forRequest)
		return
	}
	domain, uin, ok := s.g.target(st.To)
	if !ok {
		s.replyError(ctx, st, newCondError(stanza.ItemNotFound,
			"%s is not a QQ contact: the part before @ must be a QQ number", st.To.Localpart()), forRequest)
		return
	}
	if domain {
		s.domainIQ(ctx, st, name)
	} else {
		s.buddyIQ(ctx, st, uin, name)
	}
}

func (s *session) domainIQ(ctx context.Context, st xmppcomp.Stanza, name xml.Name) {
	get := st.Type == "get"
	switch {
	case get && name.Space == nsDiscoInfo:
		s.discoInfoDomain(ctx, st)
	case get && name.Space == nsDiscoItems:
		s.replyResult(ctx, st, discoItems{})
	case name.Space == nsRegister && name.Local == "query":
		if get {
			s.registerGet(ctx, st)
		} else {
			s.registerSet(ctx, st)
		}
	case name.Space == nsGateway && name.Local == "query":
		if get {
			s.gatewayGet(ctx, st)
		} else {
			s.gatewaySet(ctx, st)
		}
	case get && name.Space == nsVersion:
		s.replyResult(ctx, st, versionQuery{Name: "qqgateway", Version: s.g.cfg.Version})
	case get && name.Space == nsPing:
		s.replyResult(ctx, st, nil)
	case get && name.Space == nsVCard && name.Local == "vCard":
		s.vcardIQ(ctx, st, 0)
	default:
		s.replyError(ctx, st, newCondError(stanza.ServiceUnavailable, "The gateway does not serve %s.", name.Space), forRequest)
	}
}

func (s *session) buddyIQ(ctx context.Context, st xmppcomp.Stanza, uin qqproto.UIN, name xml.Name) {
	if s.reg == nil {
		s.replyError(ctx, st, errRegistrationRequired, forRequest)
		return
	}
	get := st.Type == "get"
	switch {
	case get && name.Space == nsDiscoInfo:
		s.discoInfoBuddy(ctx, st, uin)
	case get && name.Space == nsDiscoItems:
		s.replyResult(ctx, st, discoItems{})
	case get && name.Space == nsPing:
		s.replyResult(ctx, st, nil)
	case get && name.Space == nsVCard && name.Local == "vCard":
		s.vcardIQ(ctx, st, uin)
	default:
		s.replyError(ctx, st, newCondError(stanza.ServiceUnavailable, "QQ contacts do not answer %s.", name.Space), forRequest)
	}
}

// gatewayFeatures are the features the domain announces.
var gatewayFeatures = []string{nsDiscoInfo, nsDiscoItems, nsGateway, nsRegister, nsVersion, nsPing, nsVCard}

// contactFeatures are the features a buddy JID announces.
var contactFeatures = []string{nsDiscoInfo, nsPing, nsVCard}

func (s *session) discoInfoDomain(ctx context.Context, st xmppcomp.Stanza) {
	var q struct {
		Query discoInfo
	}
	if err := st.Decode(&q); err == nil && q.Query.Node != "" {
		s.replyError(ctx, st, newCondError(stanza.ItemNotFound, "No such node."), forRequest)
		return
	}
	s.replyResult(ctx, st, discoInfo{
		Identities: []discoIdentity{{Category: "gateway", Type: "qq", Name: s.g.cfg.Name}},
		Features:   features(gatewayFeatures, s.extraGatewayFeatures()),
	})
}

func (s *session) discoInfoBuddy(ctx context.Context, st xmppcomp.Stanza, uin qqproto.UIN) {
	name := uin.String()
	if b := s.buddies[uin]; b != nil && b.nick != "" {
		name = b.nick
	}
	s.replyResult(ctx, st, discoInfo{
		Identities: []discoIdentity{{Category: "client", Type: "pc", Name: name}},
		Features:   features(contactFeatures, s.extraContactFeatures()),
	})
}

// features merges feature lists, sorted and without repeats.
func features(lists ...[]string) []discoFeature {
	seen := map[string]bool{}
	var vars []string
	for _, l := range lists {
		for _, v := range l {
			if !seen[v] {
				seen[v] = true
				vars = append(vars, v)
			}
		}
	}
	sort.Strings(vars)
	out := make([]discoFeature, len(vars))
	for i, v := range vars {
		out[i] = discoFeature{Var: v}
	}
	return out
}

// ---- XEP-0100 jabber:iq:gateway ----

const (
	gatewayDesc   = "Enter the QQ number of the person you would like to contact."
	gatewayPrompt = "QQ number"
)

func (s *session) gatewayGet(ctx context.Context, st xmppcomp.Stanza) {
	s.replyResult(ctx, st, gatewayQuery{Desc: gatewayDesc, Prompt: strPtr(gatewayPrompt)})
}

func (s *session) gatewaySet(ctx context.Context, st xmppcomp.Stanza) {
	var q struct {
		Query gatewayQuery
	}
	if err := st.Decode(&q); err != nil {
		s.replyError(ctx, st, badRequest("The request is not well-formed."), forRequest)
		return
	}
	text := ""
	if q.Query.Prompt != nil {
		text = strings.TrimSpace(*q.Query.Prompt)
	}
	uin, ok := qqproto.ParseUIN(text)
	if !ok {
		s.replyError(ctx, st, badRequest("%s", notAUINText(text)), forRequest)
		return
	}
	j := s.g.buddyJID(uin)
	// XEP-0100 6.3: <jid/>; older clients read <prompt/>.
	s.replyResult(ctx, st, gatewayQuery{JID: j, Prompt: strPtr(j)})
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

// ---- replies ----

// replyResult answers an iq with a result carrying payload (nil: empty).
func (s *session) replyResult(ctx context.Context, st xmppcomp.Stanza, payload any) {
	s.send(ctx, iq{From: st.To.String(), To: st.From.String(), ID: st.ID, Type: "result", Payload: payload})
}

// replyError answers any stanza with the stanza error err maps to. An
// error or an iq result is never answered (RFC 6120 8.3.1).
func (s *session) replyError(ctx context.Context, st xmppcomp.Stanza, err error, purpose errPurpose) {
	if st.Type == "error" || (st.Name == "iq" && st.Type == "result") {
		return
	}
	se := toStanzaError(err, purpose)
	from, to := st.To.String(), st.From.String()
	var v any
	switch st.Name {
	case "iq":
		v = iq{From: from, To: to, ID: st.ID, Type: "error", Error: &se}
	case "presence":
		v = presence{From: from, To: to, ID: st.ID, Type: presError, Error: &se}
	default:
		v = message{From: from, To: to, ID: st.ID, Type: "error", Error: &se}
	}
	s.send(ctx, v)
}
