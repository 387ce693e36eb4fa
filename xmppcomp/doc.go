// Package xmppcomp keeps an XEP-0114 external component connected to an
// XMPP server (Prosody, ejabberd) and moves whole stanzas in and out.
// It knows nothing of what the component is for.
//
// # Use
//
//	c, err := xmppcomp.New(xmppcomp.Config{
//		Domain: "qq.example.org",
//		Server: "127.0.0.1:5347",
//		Secret: secret,
//	}, handler)
//	...
//	go c.Run(ctx) // connects, serves, reconnects until ctx ends
//	err = c.Encode(ctx, msg) // from any goroutine; ErrNotConnected while down
//
// Run retries everything except a refused secret or an unknown domain,
// which it returns at once as a *HandshakeError (errors.Is ErrNotAuthorized
// or ErrHostUnknown) whose text names the domain and the server. Reconnects
// back off from MinBackoff to MaxBackoff with jitter. OnConnect runs after
// every handshake with a context that ends with that connection; a gateway
// uses it to re-announce presence, since the server forgets a component's
// presence when it disconnects.
//
// # Reading
//
// One goroutine reads the stream; it never waits for the Handler unless
// the queue in front of the Handler (Config.QueueSize, default 1024) is
// full. A second goroutine calls Handler.HandleStanza for each stanza, one
// at a time in arrival order, with Run's context. So the Handler decides
// the concurrency: it should look at the stanza and hand it to its own
// worker (per user, to keep each user's order), not do slow work inline.
// While the queue is full, reading pauses, the server buffers, and liveness
// pings are not held against the connection.
//
// A stanza nested deeper than 256 elements or larger than
// Config.MaxStanzaBytes (default 1 MiB, the servers' own default) is read
// past, not held, and refused with policy-violation; the stream goes on,
// so one user's hostile stanza cannot take the component offline.
//
// Mellium's Session.Serve is not used: it holds the stream while a handler
// runs and answers every IQ the handler has not answered before returning
// with service-unavailable, which rules out answering an IQ after a slow
// operation (a registration that must log in to the legacy network first).
//
// # IQs
//
// Results and errors answering an IQ sent with SendIQ go to the waiting
// SendIQ, not to the Handler. XEP-0199 pings addressed to the bare
// component domain are answered by xmppcomp (set Config.HandlePings to get
// them instead), through a bounded queue that one goroutine per
// connection writes: under a flood of pings, answers beyond it are
// dropped rather than held. Every other IQ get or set goes to the Handler, which must
// answer it, for example with ReplyError; xmppcomp never answers on its
// behalf.
//
// # Sending
//
// The connection's kernel send buffer is small (Config.SendBuffer, 16 KiB):
// what it holds reaches the server in order whoever it is for, so writers
// wait with their stanzas, and take turns, rather than queue behind a
// burst of megabytes for one user.
//
// Send, Encode and SendIQ read the element whole before writing, so a
// failing or malformed source never leaves half a stanza on the stream.
// The stanza may be in no namespace (a plain struct with XMLName "message")
// or in jabber:client (mellium's stanza types):
// it goes out in jabber:component:accept, and its children that inherited
// the stanza namespace move with it; payloads in their own namespace
// (urn:xmpp:delay, vcard-temp, a jabber:client message inside a forwarded
// element) are left as they are. A stanza without an id gets one. The
// stanza's from may be any JID of the component's domain
// (12345@qq.example.org/QQ); without from the server uses the domain.
// A write that fails or outlives Config.WriteTimeout closes the connection
// and reports ErrNotConnected: the stanza was not handed over, retry it
// after the reconnect.
//
// A successful send means the stanza was written, not that the server read
// it. Barrier(ctx, to) says when it has: it returns once the server has
// processed everything this connection sent before, so a gateway can
// forget messages (delete them from its queue) only then.
//
// # Liveness
//
// Every PingInterval the component pings its own domain: the server must
// route the ping back, so an answer proves the connection and the server
// alive on any server without knowing its domain. If nothing at all has
// been read PingTimeout after a ping, the connection is closed with
// ErrPingTimeout and redialled. A hung server is so noticed within
// PingInterval+PingTimeout.
//
// # Server configuration
//
// The configurations the tests run against are in xmpptest
// (prosody.cfg.lua.tmpl, ejabberd.yml.tmpl); the tests that start those
// servers carry the build tag integration (go test -tags integration).
// What a deployment needs:
//
// Prosody, in the global section and at the end of prosody.cfg.lua:
//
//	component_ports = { 5347 }
//	component_interfaces = { "127.0.0.1" }
//
//	Component "qq.example.org"
//		component_secret = "a long random secret"
//
// ejabberd, in ejabberd.yml:
//
//	listen:
//	  - port: 5347
//	    ip: "127.0.0.1"
//	    module: ejabberd_service
//	    hosts:
//	      "qq.example.org":
//	        password: "a long random secret"
//
// and the gateway side: Config{Domain: "qq.example.org", Server:
// "127.0.0.1:5347", Secret: "a long random secret"}. Prosody answers a
// domain it does not serve with host-unknown; ejabberd answers it like a
// wrong secret, with not-authorized, so the error names both causes.
package xmppcomp
