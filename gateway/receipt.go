package gateway

import (
	"encoding/xml"
	"time"
)

// Namespaces of the message extensions the gateway reads and writes.
const (
	NSReceipts = "urn:xmpp:receipts" // XEP-0184 message delivery receipts
	NSDelay    = "urn:xmpp:delay"    // XEP-0203 delayed delivery
)

// ReceiptRequest is a sender's <request xmlns='urn:xmpp:receipts'/>: it
// wants a <received/> once the message reached the recipient.
type ReceiptRequest struct {
	XMLName xml.Name `xml:"urn:xmpp:receipts request"`
}

// Receipt is <received xmlns='urn:xmpp:receipts' id='…'/>, acknowledging the
// message with that id.
type Receipt struct {
	XMLName xml.Name `xml:"urn:xmpp:receipts received"`
	ID      string   `xml:"id,attr"`
}

// receiptWanted reports whether a message of type typ and id id that
// carried req must be acknowledged. XEP-0184 §5: no receipt without an id
// to name, nor for errors and groupchat.
func receiptWanted(typ, id string, req *ReceiptRequest) bool {
	return req != nil && id != "" && typ != "error" && typ != "groupchat"
}

// Delay is an XEP-0203 <delay/>: the message was delivered later than Stamp,
// the time the gateway received it; From names who delayed it.
type Delay struct {
	XMLName xml.Name `xml:"urn:xmpp:delay delay"`
	From    string   `xml:"from,attr,omitempty"`
	Stamp   string   `xml:"stamp,attr"`
}

// delayStampLayout is an XEP-0082 DateTime in UTC with milliseconds.
const delayStampLayout = "2006-01-02T15:04:05.000Z"

// NewDelay stamps a message received at t, delayed by from (a JID, may be
// empty).
func NewDelay(from string, t time.Time) *Delay {
	return &Delay{From: from, Stamp: t.UTC().Format(delayStampLayout)}
}
