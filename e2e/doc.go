// Package e2e is the end-to-end suite of the qq-xmpp gateway: the whole user
// journey, lived by a real XMPP client (slixmpp, e2e/journey.py) through a
// real server (Prosody, then ejabberd), the built qqgateway binary and the
// built qqsim emulator.
//
// The journey itself needs the build tag e2e and the Debian packages prosody,
// ejabberd and python3-slixmpp:
//
//	make e2e            # or: go test -tags e2e -count=1 -v ./e2e
//
// The servers are started by xmppcomp/xmpptest, with the configuration every
// test server runs with (E2E_SERVER_LOG=debug for their debug logs, E2E_KEEP=1
// to keep their directories with all logs). Without the tag, go test ./e2e
// only checks that the server configuration snippets quoted in README.md are
// the ones in xmpptest's templates, which make demo runs with too.
package e2e
