// Package gateway is the only package that knows both XMPP and QQ: it turns
// a Jabber user's stanzas into QQ HTTP commands and QQ's answers and polls
// into stanzas.
//
// A Gateway serves one component domain (say qq.example.org). It answers
// service discovery, XEP-0077 registration and XEP-0100 jabber:iq:gateway on
// the domain; it keeps one session per registered bare JID, which logs in
// to QQ while the user has an available resource, imports the QQ buddy list
// into the user's roster as uin@domain contacts, and mirrors presence both
// ways. Where the user's server grants the gateway access to its users'
// rosters (XEP-0356, privilege.go), the buddies are written into the roster
// (rosteritems.go) instead of each asking the user for a subscription. One scheduler polls all sessions with a bounded number of requests
// in flight: often while a conversation is active, slowly when idle.
//
// Inside, each stanza is read once at the door (door.go) into a plain value
// and queued on its sender's session (session.go), whose handlers return
// errors that one function turns into stanza errors (errors.go). A session
// is split by job: its QQ link (qqlink.go), the user's resources
// (resources.go), and the emitter (emit.go) that builds every outgoing
// stanza from plain values. Messages to QQ are in toqq.go, from QQ in
// toxmpp.go. docs/architecture.md draws both paths.
//
// Commands (register, login, sync, lookup, add, password, unregister, and
// for Config.Admins users, user, stats, announce, remove) are defined once
// (command.go) and served both as XEP-0050 ad-hoc commands (adhoc.go) and
// as chat lines to the domain JID (chatcmd.go), for clients without a
// command UI.
//
// Wiring, as cmd/qqgateway does it:
//
//	g, _ := gateway.New(gateway.DefaultConfig("qq.example.org"), st)
//	comp, _ := xmppcomp.New(xmppcomp.Config{..., OnConnect: g.OnConnect}, g)
//	go g.Run(ctx, comp)     // scheduler; on ctx end: unavailable to all, QQ logout
//	comp.Run(compCtx)       // cancel compCtx only after g.Run returned
//
// With Config.Metrics (NewMetrics on the caller's prometheus.Registerer)
// the gateway counts what it relays and fails, its QQ requests and its
// stanza errors (metrics.go); docs/operations.md lists every metric.
// Without, it counts the same into metrics of its own, registered nowhere,
// which the admins' stats command reads.
//
// The QQ side is reached through the narrow QQ interface (legacy.go), which
// an adapter of *qqproto.Client satisfies and tests replace with a fake;
// stanzas leave through Sender, which *xmppcomp.Component satisfies.
package gateway
