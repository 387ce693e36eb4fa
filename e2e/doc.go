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
// Without the tag, go test ./e2e only checks that the server configuration
// snippets quoted in README.md are the ones the suite runs with
// (testdata/prosody.cfg.lua, testdata/ejabberd.yml). scripts/demo.sh renders
// the same Prosody template for make demo.
package e2e
