// Package xmpptest runs real XMPP servers for tests, the way
// net/http/httptest runs HTTP servers: Prosody or ejabberd from the
// distribution's packages, on free loopback ports, in a temporary
// directory, with one external component entry, stopped at cleanup.
//
//	srv := xmpptest.StartProsody(t, xmpptest.Options{ComponentDomain: "qq.localhost", Secret: "s"})
//	alice := srv.NewClient(t, ctx, "alice") // a new user, logged in
//	alice.SendPresence(ctx)
//	// connect an xmppcomp.Component to srv.ComponentAddr ...
//	alice.SendXML(t, ctx, `<presence to=%q type="subscribe"/>`, "10001@qq.localhost")
//	alice.Expect(t, ctx, "the buddy's answer", xmpptest.PresenceFrom("10001@qq.localhost", "subscribed"))
//
// StartProsody and StartEjabberd (or Start with the kind) give a test its
// own server (Prosody starts in about a second, ejabberd in two or three);
// Stop, Start, Restart (same ports, same data), Kill (SIGKILL, a crash),
// Pause and Resume (SIGSTOP/SIGCONT, a hung server) act on it. SharedProsody and
// SharedEjabberd (or Shared) give every test of a binary the same server
// for the same Options; such a server must not be stopped or paused by a
// test, and TestMain should run the tests with Main, which stops them.
// EachKind runs a subtest per kind.
//
// Only processes the package started are signalled, by their own process
// group; they also get SIGKILL if the test binary dies. ejabberd is run
// with erl directly (what ejabberdctl foreground does, without the system
// directories, the Erlang node name or epmd). Users are created with
// prosodyctl, or ejabberd's HTTP API on a loopback port.
//
// StartEjabberdCluster starts several ejabberd nodes (two by default)
// joined into one cluster, with their own epmd on a loopback port, and
// ComponentDomain balanced over ClusterOptions.ComponentNumber component
// connections by the sender's bare JID (domain_balancing). Each node is a
// Server of its own (its ports, Login, Stop, Kill, Start); the Cluster
// creates users on all of them, lists the running nodes and calls Erlang
// functions on a node (RPC). docs/testing.md says what ejabberd does with
// such connections, as the integration tests observe it.
//
// When a server is not installed the test is skipped with the apt-get
// command that installs it; with the CI environment variable set it fails
// instead. XMPPTEST_EJABBERD_LIBS names ejabberd's ERL_LIBS directory when
// it is not where the Debian package puts it. The tests that start servers
// are tagged integration across the repository, so that go test ./...
// needs none.
//
// The configuration templates, ProsodyConfigTemplate and
// EjabberdConfigTemplate (the files prosody.cfg.lua.tmpl and
// ejabberd.yml.tmpl), filled by RenderConfig, are the ones every server
// runs with: the tests', the end-to-end suite's and make demo's (through
// cmd/xmppconfig). The parts a deployment needs are marked as snippets,
// which README.md quotes. Options.RosterPrivilege grants the component
// XEP-0356 roster access (Prosody: mod_privilege from prosody-modules;
// ejabberd: its own mod_privilege); it is off by default.
//
// The Client is a plain c2s client (SASL without TLS, which the test
// servers allow on loopback). It buffers everything it receives for Next,
// answers roster pushes and pings with a result and every other IQ request
// with service-unavailable (still buffering them), and sends no presence
// until SendPresence. Expect is Next that fails the test, showing what was
// received instead; PresenceFrom, MessageFrom and IQResult are matchers
// for it; SendXML sends a formatted stanza. UserName makes user names
// unique, since a shared server keeps its users for the whole test binary;
// NewClient creates such a user and logs in.
package xmpptest
