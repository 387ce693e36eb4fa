// Command qqgateway runs the QQ transport: an XEP-0114 component beside an
// XMPP server, relaying between its users and the QQ HTTP protocol.
//
//	qqgateway -config gateway.toml                # run until SIGINT/SIGTERM
//	qqgateway -config gateway.toml -check-config  # validate, print "config OK"
//	qqgateway -config gateway.toml -backup FILE   # copy the database, even while it runs
//	qqgateway -version
//
// The keys of the file are documented in the commented gateway.toml at the
// root of the repository: an unknown key, or a value of the wrong kind, is
// an error naming the file, line and key. The component secret comes from
// the file or from QQGW_COMPONENT_SECRET and is never logged. The flags,
// signals and exit codes (0 clean, 1 runtime failure, 2 usage or
// configuration error, 3 shutdown cut short) are in qqgateway -help.
//
// As a service (scripts/qqgateway.service, docs/operations.md) it speaks
// systemd's notify protocol when NOTIFY_SOCKET is set: READY=1 once
// connected, WATCHDOG=1 while connected with a writable database, STATUS=,
// STOPPING=1. SIGHUP re-reads the file's [log] level and [gateway] admins.
package main
