package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"qqxmpp/xmppcomp"
)

// echoDomain is a second component of the benchmark's Prosody: a trivial
// relay in qqbench's own process, the floor of what any component costs
// Prosody per relayed message.
const echoDomain = "echo.localhost"

// echoConfig is what Prosody's configuration adds for the echo component.
func echoConfig(secret string) string {
	return fmt.Sprintf("\nComponent %q\n\tcomponent_secret = %q\n", echoDomain, secret)
}

// echoMessage is what the echo component reads and writes of a message.
type echoMessage struct {
	XMLName xml.Name `xml:"message"`
	From    string   `xml:"from,attr"`
	To      string   `xml:"to,attr"`
	Type    string   `xml:"type,attr,omitempty"`
	Body    string   `xml:"body"`
}

// echo relays a message to LOCAL@echo.localhost to LOCAL@localhost, from
// the sender's local part @echo.localhost: two hops through Prosody, as a
// relayed message of the gateway takes, with nothing else.
type echo struct{ c *xmppcomp.Component }

func (e *echo) HandleStanza(ctx context.Context, st xmppcomp.Stanza) {
	if st.Name != "message" || st.Type == "error" {
		return
	}
	var m echoMessage
	if err := st.Decode(&m); err != nil || m.Body == "" {
		return
	}
	out := echoMessage{From: st.From.Localpart() + "@" + echoDomain, To: st.To.Localpart() + "@" + domain, Type: st.Type, Body: m.Body}
	_ = e.c.Encode(ctx, out)
}

// echoPhase: the yardstick's plain users send each other as many messages
// again, through the echo component: Prosody's cost of a relayed message
// when the component costs nothing, measured the same way.
func (b *bench) echoPhase(ctx context.Context) error { return b.echoInto(ctx, &b.rep.Echo) }

// echoEmpty is the echo phase before any user is online.
func (b *bench) echoEmpty(ctx context.Context) error { return b.echoInto(ctx, &b.rep.EchoEmpty) }

func (b *bench) echoInto(ctx context.Context, into *phaseResult) error {
	e := &echo{}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	c, err := xmppcomp.New(xmppcomp.Config{Domain: echoDomain, Server: b.st.componentAddr, Secret: b.st.secret, Logger: log}, e)
	if err != nil {
		return err
	}
	e.c = c
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Run(cctx)
	n := 2 * b.o.pairs
	plain, closeAll, err := b.plainClients(ctx, n)
	if err != nil {
		return err
	}
	defer closeAll()
	deadline := time.Now().Add(10 * time.Second)
	for !c.Connected() {
		if time.Now().After(deadline) {
			return fmt.Errorf("echo component: not connected to Prosody")
		}
		time.Sleep(20 * time.Millisecond)
	}
	prefix := fmt.Sprintf("e%d-", b.col.received.Load())
	r, err := b.plainRun(n, prefix, func(from int) string {
		return b.w.plainUser(from^1) + "@" + echoDomain
	}, plain)
	*into = r
	return err
}
