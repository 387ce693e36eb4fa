// Package wire reads and writes whole stanzas on an established XMPP stream.
//
// It exists so that the component (xmppcomp) and the test client (xmpptest)
// share one careful implementation of the two things encoding/xml gets subtly
// wrong on an XMPP stream: namespace bookkeeping (token streams may come from
// RawToken, from Token, or be hand built) and never writing half a stanza.
package wire
