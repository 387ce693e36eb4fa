// Package xmpptest runs real XMPP servers for tests, the way
// net/http/httptest runs HTTP servers: Prosody or ejabberd from the
// distribution's packages, on free loopback ports, in a temporary
// directory, with one external component entry, stopped at cleanup.
//
//	srv := xmpptest.StartProsody(t, xmpptest.Options{ComponentDomain: "qq.localhost", Secret: "s"})
//	srv.CreateUser(t, "alice", "pw")
//	alice := srv.Login(t, ctx, "alice", "pw")
//	alice.SendPresence(ctx)
//	// connect an xmppcomp.Component to srv.ComponentAddr ...
//	msg, err := alice.Next(ctx, func(st xmppcomp.Stanza) bool { return st.Name == "message" })
//
// StartProsody and StartEjabberd give a test its own server (Prosody
// starts in about a second, ejabberd in two or three); Stop, Start,
// Restart (same ports, same data), Pause and Resume (SIGSTOP/SIGCONT, a
// hung server) act on it. SharedProsody and SharedEjabberd give every test
// of a binary the same server for the same Options; such a server must not
// be stopped or paused by a test, and TestMain should call StopShared.
//
// Only processes the package started are signalled, by their own process
// group; they also get SIGKILL if the test binary dies. ejabberd is run
// with erl directly (what ejabberdctl foreground does, without the system
// directories, the Erlang node name or epmd). Users are created with
// prosodyctl, or ejabberd's HTTP API on a loopback port.
//
// When a server is not installed the test is skipped with the apt-get
// command that installs it; with the CI environment variable set it fails
// instead. The configuration templates, ProsodyConfigTemplate and
// EjabberdConfigTemplate (the files prosody.cfg.lua.tmpl and
// ejabberd.yml.tmpl), are the ones the tests run against; the component
// parts are marked.
//
// The Client is a plain c2s client (SASL without TLS, which the test
// servers allow on loopback). It buffers everything it receives for Next,
// answers roster pushes and pings with a result and every other IQ request
// with service-unavailable (still buffering them), and sends no presence
// until SendPresence.
package xmpptest
