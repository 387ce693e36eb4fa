// Package gateway is the only package that knows both XMPP and QQ: it turns
// a Jabber user's stanzas into QQ HTTP commands and QQ's answers and polls
// into stanzas.
//
// A Gateway serves one component domain (say qq.example.org). It answers
// service discovery, XEP-0077 registration and XEP-0100 jabber:iq:gateway on
// the domain; it keeps one session per registered bare JID, which logs in
// to QQ while the user has an available resource, imports the QQ buddy list
// into the user's roster as uin@domain contacts, and mirrors presence both
// ways. One scheduler polls all sessions with a bounded number of requests
// in flight: often while a conversation is active, slowly when idle.
//
// Wiring, as cmd/qqgateway does it:
//
//	g, _ := gateway.New(cfg, st)
//	comp, _ := xmppcomp.New(xmppcomp.Config{..., OnConnect: g.OnConnect}, g)
//	go g.Run(ctx, comp)     // scheduler; on ctx end: unavailable to all, QQ logout
//	comp.Run(compCtx)       // cancel compCtx only after g.Run returned
//
// The QQ side is reached through the narrow QQ interface (legacy.go), which
// *qqproto.Client satisfies; stanzas leave through Sender, which
// *xmppcomp.Component satisfies.
package gateway
