package xmpptest

import (
	"crypto/sha1"
	"encoding/xml"
	"fmt"

	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/stanza"

	"qqxmpp/xmppcomp"
)

// capsInfo is what a client announced: its disco#info and its caps node.
type capsInfo struct {
	node, ver string
	info      disco.Info
}

// AnnounceCaps makes c answer disco#info, with or without its caps node, as
// a client program (category client, type pc) with these features does,
// and returns the entity capabilities (XEP-0115, SHA-1) for its presence:
//
//	caps := c.AnnounceCaps("https://example.org/client", "urn:xmpp:avatar:metadata+notify")
//	c.SendXML(t, ctx, `<presence>%s</presence>`, caps)
func (c *Client) AnnounceCaps(node string, features ...string) string {
	i := disco.Info{Identity: []info.Identity{{Category: "client", Type: "pc", Name: "xmpptest"}}}
	for _, f := range append([]string{disco.NSInfo, disco.NSCaps}, features...) {
		i.Features = append(i.Features, info.Feature{Var: f})
	}
	ci := &capsInfo{node: node, ver: i.Hash(sha1.New()), info: i}
	c.caps.Store(ci)
	return fmt.Sprintf(`<c xmlns=%q hash="sha-1" node=%q ver=%q/>`, disco.NSCaps, node, ci.ver)
}

// discoReply answers a disco#info get with the announced features, for no
// node or the caps node; other nodes are item-not-found.
func (c *Client) discoReply(st xmppcomp.Stanza, iq stanza.IQ) xml.TokenReader {
	ci := c.caps.Load()
	var q struct {
		Query disco.InfoQuery `xml:"http://jabber.org/protocol/disco#info query"`
	}
	_ = st.Decode(&q)
	if n := q.Query.Node; n != "" && n != ci.node+"#"+ci.ver {
		iq.Type = stanza.ErrorIQ
		return iq.Wrap(stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound}.TokenReader())
	}
	i := ci.info
	i.Node = q.Query.Node
	return iq.Wrap(i.TokenReader())
}
