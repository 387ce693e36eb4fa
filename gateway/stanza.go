package gateway

import (
	"encoding/xml"
	"strconv"
	"strings"

	"mellium.im/xmpp/stanza"
)

// Namespaces the gateway speaks.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsRegister   = "jabber:iq:register"
	nsGateway    = "jabber:iq:gateway"
	nsVersion    = "jabber:iq:version"
	nsPing       = "urn:xmpp:ping"
	nsVCard      = "vcard-temp"
	nsNick       = "http://jabber.org/protocol/nick"
	nsData       = "jabber:x:data"
	nsXML        = "http://www.w3.org/XML/1998/namespace"
)

// The stanza structs below serve both ways: encoding/xml writes them (in no
// namespace: xmppcomp puts them in the component stream's) and reads the
// parts of inbound stanzas the gateway looks at. Addresses are strings so
// that an empty one is left out rather than written as from="".

// presence is a <presence/> stanza.
type presence struct {
	XMLName  xml.Name      `xml:"presence"`
	From     string        `xml:"from,attr,omitempty"`
	To       string        `xml:"to,attr,omitempty"`
	ID       string        `xml:"id,attr,omitempty"`
	Type     string        `xml:"type,attr,omitempty"`
	Show     string        `xml:"show,omitempty"`
	Status   string        `xml:"status,omitempty"`
	Priority string        `xml:"priority,omitempty"`
	Nick     *nick         `xml:"http://jabber.org/protocol/nick nick,omitempty"`
	Error    *stanza.Error `xml:"error,omitempty"`
	// Extra holds further payloads to write (an avatar hash, say), each a
	// value encoding/xml can marshal with its own XMLName. Never read.
	Extra []any `xml:",omitempty"`
}

// priority reads <priority/>: an integer from -128 to 127, 0 if absent or
// malformed (RFC 6121 4.7.2.3).
func (p presence) priority() int {
	n, err := strconv.Atoi(strings.TrimSpace(p.Priority))
	if err != nil || n < -128 || n > 127 {
		return 0
	}
	return n
}

// Presence types (RFC 6121); available is the absent type.
const (
	presAvailable    = ""
	presUnavailable  = "unavailable"
	presProbe        = "probe"
	presSubscribe    = "subscribe"
	presSubscribed   = "subscribed"
	presUnsubscribe  = "unsubscribe"
	presUnsubscribed = "unsubscribed"
	presError        = "error"
)

// nick is XEP-0172's user nickname.
type nick struct {
	Text string `xml:",chardata"`
}

func newNick(s string) *nick {
	if s == "" {
		return nil
	}
	return &nick{Text: s}
}

func (n *nick) text() string {
	if n == nil {
		return ""
	}
	return n.Text
}

// message is a <message/> stanza.
type message struct {
	XMLName xml.Name      `xml:"message"`
	From    string        `xml:"from,attr,omitempty"`
	To      string        `xml:"to,attr,omitempty"`
	ID      string        `xml:"id,attr,omitempty"`
	Type    string        `xml:"type,attr,omitempty"`
	Lang    string        `xml:"http://www.w3.org/XML/1998/namespace lang,attr,omitempty"`
	Subject string        `xml:"subject,omitempty"`
	Body    string        `xml:"body,omitempty"`
	Thread  string        `xml:"thread,omitempty"`
	Nick    *nick         `xml:"http://jabber.org/protocol/nick nick,omitempty"`
	Error   *stanza.Error `xml:"error,omitempty"`
	Extra   []any         `xml:",omitempty"`
}

// iq is an <iq/> stanza with at most one payload.
type iq struct {
	XMLName xml.Name      `xml:"iq"`
	From    string        `xml:"from,attr,omitempty"`
	To      string        `xml:"to,attr,omitempty"`
	ID      string        `xml:"id,attr"`
	Type    string        `xml:"type,attr"`
	Payload any           `xml:",omitempty"`
	Error   *stanza.Error `xml:"error,omitempty"`
}

// iqChildren reads only the names of an inbound iq's child elements, to
// route it by its payload's namespace.
type iqChildren struct {
	Children []struct {
		XMLName xml.Name
	} `xml:",any"`
}

// payload returns the name of the iq's payload: its first child that is not
// an <error/>.
func (c iqChildren) payload() (xml.Name, bool) {
	for _, ch := range c.Children {
		if ch.XMLName.Local != "error" {
			return ch.XMLName, true
		}
	}
	return xml.Name{}, false
}

// discoInfo is XEP-0030's disco#info query and answer.
type discoInfo struct {
	XMLName    xml.Name        `xml:"http://jabber.org/protocol/disco#info query"`
	Node       string          `xml:"node,attr,omitempty"`
	Identities []discoIdentity `xml:"identity"`
	Features   []discoFeature  `xml:"feature"`
}

type discoIdentity struct {
	Category string `xml:"category,attr"`
	Type     string `xml:"type,attr"`
	Name     string `xml:"name,attr,omitempty"`
}

type discoFeature struct {
	Var string `xml:"var,attr"`
}

// discoItems is XEP-0030's disco#items query and (empty) answer.
type discoItems struct {
	XMLName xml.Name `xml:"http://jabber.org/protocol/disco#items query"`
	Node    string   `xml:"node,attr,omitempty"`
}

// registerQuery is XEP-0077's jabber:iq:register query, with the legacy
// fields and a XEP-0004 form.
type registerQuery struct {
	XMLName      xml.Name  `xml:"jabber:iq:register query"`
	Instructions string    `xml:"instructions,omitempty"`
	Registered   *struct{} `xml:"registered"`
	Username     *string   `xml:"username"`
	Password     *string   `xml:"password"`
	Remove       *struct{} `xml:"remove"`
	Form         *dataForm `xml:"jabber:x:data x"`
}

// dataForm is a XEP-0004 data form (the <x/> element, named by the field
// that holds it).
type dataForm struct {
	Type         string      `xml:"type,attr"`
	Title        string      `xml:"title,omitempty"`
	Instructions string      `xml:"instructions,omitempty"`
	Fields       []formField `xml:"field"`
}

type formField struct {
	Var      string    `xml:"var,attr,omitempty"`
	Type     string    `xml:"type,attr,omitempty"`
	Label    string    `xml:"label,attr,omitempty"`
	Desc     string    `xml:"desc,omitempty"`
	Required *struct{} `xml:"required"`
	Values   []string  `xml:"value"`
}

// value returns the first value of the field named name, and whether the
// form has that field.
func (f *dataForm) value(name string) (string, bool) {
	if f == nil {
		return "", false
	}
	for _, fl := range f.Fields {
		if fl.Var == name {
			if len(fl.Values) == 0 {
				return "", true
			}
			return fl.Values[0], true
		}
	}
	return "", false
}

// gatewayQuery is XEP-0100's jabber:iq:gateway query and answer.
type gatewayQuery struct {
	XMLName xml.Name `xml:"jabber:iq:gateway query"`
	Desc    string   `xml:"desc,omitempty"`
	Prompt  *string  `xml:"prompt"`
	JID     string   `xml:"jid,omitempty"`
}

// versionQuery is XEP-0092's software version.
type versionQuery struct {
	XMLName xml.Name `xml:"jabber:iq:version query"`
	Name    string   `xml:"name,omitempty"`
	Version string   `xml:"version,omitempty"`
	OS      string   `xml:"os,omitempty"`
}

func strPtr(s string) *string { return &s }
