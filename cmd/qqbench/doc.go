// Command qqbench measures the real chain: Prosody from Debian, qqsim and
// qqgateway as three separate processes on loopback, and N XMPP users
// over c2s who register with the gateway (XEP-0077), accept their
// buddies' subscriptions and stay online throughout.
//
//	go run ./cmd/qqbench -users 1000 -pprof                  # make bench
//	go run ./cmd/qqbench -users 10000 -roster-files -pprof   # 10,000 users in minutes
//	go run ./cmd/qqbench -users 20 -messages 20 -yard-messages 100 -idle 3s -latency 3s -burst 100  # ≈ make bench-smoke
//
// Phases, in one run: the yardstick on the empty server (pairs of plain
// users send each other messages c2s to c2s: Prosody's own rate and CPU
// per message) and the echo (the same through a trivial component in
// qqbench's process); online (every user logs in, registers, accepts its
// buddies; RSS per user); idle (CPU per second of each process, QQ
// requests per user per minute from qqsim's counters); the yardstick and
// the echo again with every user online, the base of the ratios; chat (pairs of users whose QQ accounts are
// buddies send each other M messages at once: XMPP → gateway → CLTMSG →
// qqsim → GetMsgEx → gateway → XMPP; CPU per relayed message with the idle
// rate subtracted, msgs/s, latency); latency (a conversation, one message
// every 500 ms, alternating: XMPP → QQ and QQ → XMPP split at the time
// qqsim queued it); burst (a backlog queued on QQ for one user through
// qqsim's control API); restart (the gateway restarted, until every user is
// logged in to QQ again; each process's CPU meanwhile). -prosody-gc sets
// Prosody's garbage collector. CPU is utime+stime of /proc/PID/stat, RSS is
// VmRSS of /proc/PID/status.
//
// Accounts are written straight into Prosody's data directory
// (internal_plain files), thousands a second; the QQ world is a generated
// qqsim world file in which user i's buddies are its ring neighbours. With
// -roster-files each user's roster (the transport and its buddies,
// subscription both) is written there too, and Prosody answers the
// gateway's subscription requests itself; without it each user accepts
// them as a client's user does, which Prosody makes cost about 84 roster
// file rewrites per user (1,000 users in minutes, 10,000 in over an hour).
// Every message body carries a unique id and its send time, so each
// arrival is matched to one send: qqbench exits 1 when a message was lost,
// doubled or answered with an error, or a user could not come online —
// never on a timing.
//
// -pprof builds qqgateway with a small profiling hook added through go
// build -overlay (cmd/qqgateway has no profiling endpoint; its source is
// untouched) and prints the top of the relay phase's and the restart's CPU
// profiles, and of the heap with every user online.
package main
