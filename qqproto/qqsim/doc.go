// Package qqsim emulates the QQ HTTP server, which no longer exists, for
// the tests, the demo and the benchmarks.
//
// A Server is an http.Handler over an in-memory world of accounts: the
// protocol of shared/spec/qq-http-protocol.md at "/", and a JSON control
// API under "/_sim/" for tests and scripts (add accounts, make them send,
// change state, answer add requests, inject faults, read what an account
// received). cmd/qqsim runs it as a program over a TOML world file;
// demo-world.toml is the demo's world.
//
// The control API takes and returns JSON. Bad input is a 400 whose body names
// the field, {"error": …, "field": …}. A QQ number that no account has,
// wherever a call names an account (from, to, uin, or {uin} in the path),
// is a 404 with the same body, such as
// {"error": "to: 99999: no such QQ account", "field": "to"}; only the
// buddies of a new account need not exist yet.
//
//	POST /_sim/account   an Account, keys as in the world file
//	POST /_sim/send      {"from", "to", "text"}: from sends text to to
//	POST /_sim/state     {"uin", "state"}
//	POST /_sim/ack       {"from", "to", "cd", "reason"}: from's Ack_AddToList
//	POST /_sim/endsession {"uin"}: the server drops uin's session (RES=20 next)
//	POST /_sim/faults    {"latency_ms", "error_rate", "garbage_rate", "drop_rate", "seed"}
//	GET  /_sim/inbox/{uin}     everything delivered to uin, with sender and time
//	GET  /_sim/session/{uin}   logged in?, state, last request, queue length, buddies
//	GET  /_sim/requests/{uin}  uin's requests: CMD, SEQ, RES, replayed?, fault
//	GET  /_sim/stats           counters
//
// In Go:
//
//	s := qqsim.New(qqsim.Options{})
//	s.AddAccount(qqsim.Account{UIN: 10001, Password: "demo", Nick: "演示用户"})
//	srv := httptest.NewServer(s)
//
// Where the sources are silent the emulator decides, as follows.
//
//   - Requests are parsed with qqproto's codec; a body sent as
//     application/x-www-form-urlencoded reads '+' as a space. Anything that
//     is not a KEY=value line, or has no CMD, is an HTTP 400; a GET is 405.
//   - Replies echo VER, SEQ and UIN as sent, and CMD upper-cased for List,
//     Query_Stat, GetInfo, GetMsgEx and Logout (as the seed shows), as sent
//     otherwise; replies the seed shows ending in '&' do so.
//   - RES=5: the UIN or the target UN is not a QQ number of this world.
//     RES=20: no session (never logged in, logged out, or silent for LI
//     seconds). RES=1: an unknown command or a missing or bad field.
//     RES=3: Ack_AddToList CD=2 to an account that accepts nobody.
//   - Login compares PS with the password's MD5 when M5=1; without M5=1 it
//     takes PS as the plaintext password. A wrong password is RES=0 RS=1
//     RA=密码错误. A second Login replaces the first session.
//   - A session ends after LI seconds without any request from its UIN;
//     then the accounts that list it get MT=99 MG="20 ". There is no
//     goroutine per session: deadlines sit in a heap checked on every use.
//   - States: 40 (invisible) looks like 20 to others. A state change that
//     others can see reaches every logged-in account that lists the user as
//     MT=99 with MG the code followed by a space ("30 "), as in the seed's
//     GetMsgEx line. Message text (MT=9) is never padded. State notices
//     not fetched when a session ends are dropped (stale by the next Login,
//     which a client follows with Query_Stat); messages and add requests stay.
//   - Query_Stat lists the online (10, 30) buddies and the user's own
//     number, in number order, as the seed does; capped at 50 a page. List
//     pages are capped at 160. Buddy lists are kept in number order.
//   - GetInfo writes PR escaped twice exactly as the seed: commas as %252c,
//     line breaks as %0d%0a. LV=3 adds CT, CY and MO.
//   - Buddy lists are one-way, as in QQ: AddToList to an auth-0 account adds
//     it to the requester's list only. Auth 1: CD=1, then the requester's
//     Ack_AddToList CD=2 (reason in RS) reaches the target as MT=2; the
//     target's CD=0 adds it to the requester's list and sends MT=3, CD=1
//     sends MT=4 with the reason. Answering a request that is not pending
//     is a harmless no-op. Auth 3: CD=3.
//   - CLTMSG may go to anyone, buddy or not. Items wait in the recipient's
//     queue while it is offline; GetMsgEx hands out at most MaxMessages (20)
//     oldest first. A bot account consumes its messages instead of queueing
//     them; an echo bot answers each with the same text.
//   - Replay memory: per UIN, each reply is remembered by (upper-cased CMD,
//     SEQ) for ReplayWindow; the same request again is answered from memory
//     and not executed. "The same request" means the same decoded fields:
//     a SEQ reused for a different request is executed (and logged as a
//     warning), so a client that restarts its SEQ counter is not fed stale
//     replies. An empty SEQ is never remembered. The memory belongs to the
//     UIN, not to one login: it survives a new Login, so a client that
//     crashed, logged in again and repeats its last CLTMSG or GetMsgEx with
//     the SEQ it had stored gets the remembered reply, not a second
//     delivery or an empty queue.
//   - Faults (see Faults): an HTTP 500 leaves the command unexecuted;
//     a garbage body or a dropped connection comes after the command ran
//     and its reply was remembered, the lost-response case a client must
//     retry with the same SEQ.
package qqsim
