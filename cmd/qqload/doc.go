// Command qqload measures what the whole gateway costs under load: it
// starts the QQ emulator (qqsim) in this process on a loopback HTTP
// listener, registers N users in a fresh store, makes every user available
// through Gateway.HandleStanza, waits until each has a QQ session, and then
// measures a window of steady state: CPU per second of wall time, heap per
// user, goroutines, QQ requests per second, stanzas sent per second and,
// with -chat-rate, the delivery latency of messages from QQ to XMPP.
//
// There is no XMPP server: a counting Sender stands in for the component
// connection. It marshals each stanza (as the component would) and counts
// it by kind. The CPU and heap figures include qqsim, which runs in the
// same process; its handler time is reported separately.
//
// Usage:
//
//	go run ./cmd/qqload -users 10000 -duration 60s
//	go run ./cmd/qqload -users 10000 -duration 30s -chat-rate 100
//
// It exits 1 if not every user logged in, or in chat mode if a message was
// lost or delivered twice.
package main
