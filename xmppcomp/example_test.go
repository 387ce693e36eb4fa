package xmppcomp_test

import (
	"context"
	"encoding/xml"
	"errors"
	"log"
	"os/signal"
	"syscall"

	"qqxmpp/xmppcomp"
)

// An echo component: every message to a JID of the component comes back
// from that JID. The Handler only hands off; the work happens elsewhere.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	work := make(chan xmppcomp.Stanza, 100)
	comp, err := xmppcomp.New(xmppcomp.Config{
		Domain: "echo.localhost",
		Server: "127.0.0.1:5347",
		Secret: "secret",
	}, xmppcomp.HandlerFunc(func(ctx context.Context, st xmppcomp.Stanza) {
		if st.Name == "message" {
			select {
			case work <- st:
			case <-ctx.Done():
			}
		}
	}))
	if err != nil {
		log.Fatal(err)
	}

	go func() {
		type message struct {
			XMLName xml.Name `xml:"message"`
			From    string   `xml:"from,attr"`
			To      string   `xml:"to,attr"`
			Type    string   `xml:"type,attr,omitempty"`
			Body    string   `xml:"body"`
		}
		for st := range work {
			var in message
			if st.Decode(&in) != nil || in.Body == "" {
				continue
			}
			out := message{From: st.To.String(), To: st.From.String(), Type: st.Type, Body: in.Body}
			if err := comp.Encode(ctx, out); errors.Is(err, xmppcomp.ErrNotConnected) {
				log.Printf("echo dropped while reconnecting: %v", err)
			}
		}
	}()

	if err := comp.Run(ctx); err != nil {
		log.Fatal(err) // wrong secret or unknown domain: fix the configuration
	}
}
