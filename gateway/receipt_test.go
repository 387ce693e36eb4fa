package gateway

import (
	"encoding/xml"
	"testing"
	"time"
)

func TestReceiptWanted(t *testing.T) {
	req := &ReceiptRequest{}
	for _, c := range []struct {
		typ, id string
		req     *ReceiptRequest
		want    bool
	}{
		{"chat", "m1", req, true},
		{"", "m1", req, true},
		{"normal", "m1", req, true},
		{"chat", "", req, false},
		{"chat", "m1", nil, false},
		{"error", "m1", req, false},
		{"groupchat", "m1", req, false},
	} {
		if got := receiptWanted(c.typ, c.id, c.req); got != c.want {
			t.Errorf("receiptWanted(%q, %q, %v) = %v, want %v", c.typ, c.id, c.req != nil, got, c.want)
		}
	}
}

func TestReceiptRequestDecodes(t *testing.T) {
	var m struct {
		ID  string          `xml:"id,attr"`
		Req *ReceiptRequest `xml:"urn:xmpp:receipts request"`
	}
	in := `<message xmlns="jabber:client" id="a1"><body>x</body><request xmlns="urn:xmpp:receipts"/></message>`
	if err := xml.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if m.Req == nil || m.ID != "a1" {
		t.Fatalf("request not found in %s", in)
	}
	// The same local name in another namespace is not a receipt request.
	m.Req = nil
	in = `<message xmlns="jabber:client" id="a1"><request xmlns="urn:example"/></message>`
	if err := xml.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if m.Req != nil {
		t.Fatalf("request of another namespace taken for a receipt request")
	}
}

func TestReceiptAndDelayMarshal(t *testing.T) {
	out, err := xml.Marshal(Receipt{ID: "a<1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `<received xmlns="urn:xmpp:receipts" id="a&lt;1"></received>`; string(out) != want {
		t.Errorf("receipt = %s, want %s", out, want)
	}
	at := time.Date(2026, 11, 27, 18, 4, 5, 678_900_000, time.FixedZone("CST", 8*3600))
	out, err = xml.Marshal(NewDelay("qq.example.org", at))
	if err != nil {
		t.Fatal(err)
	}
	if want := `<delay xmlns="urn:xmpp:delay" from="qq.example.org" stamp="2026-11-27T10:04:05.678Z"></delay>`; string(out) != want {
		t.Errorf("delay = %s, want %s", out, want)
	}
	// The stamp reads back as the same instant (to the millisecond).
	var d Delay
	if err := xml.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	back, err := time.Parse(time.RFC3339Nano, d.Stamp)
	if err != nil || !back.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("stamp %q reads back as %v (%v), want %v", d.Stamp, back, err, at)
	}
}
