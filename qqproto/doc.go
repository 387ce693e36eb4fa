// Package qqproto speaks the QQ HTTP protocol: the one-line KEY=value&… codec
// (Fields, Parse, Escape), the typed commands and results, Client, which
// sends them to a server over HTTP POST, and Transport, the pool of kept-alive
// connections that all Clients of a process share.
//
// It knows nothing of XMPP. The wire rules it follows are written down in the
// project's spec (shared/spec/qq-http-protocol.md); the emulator in
// qqproto/qqsim follows the same page, so the two are tested against each other.
package qqproto
