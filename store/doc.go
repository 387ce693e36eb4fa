// Package store keeps the gateway's durable state: registrations (which
// bare JID owns which QQ number and the MD5 of its password), each user's
// contacts, and the delivery queue of messages that were accepted from one
// network but not yet handed to the other.
//
// It keeps them in one SQLite file (Open), the default for one gateway
// process, or in a PostgreSQL database (OpenPostgres), which several
// processes can share. The API is the same on both; where a notion belongs
// to one of them only, the other says so: CheckFile has no file to check on
// PostgreSQL, and Backup is pg_dump's job there (ErrUnsupported).
//
// It is plain SQL and knows nothing of XMPP or QQ wire formats: JIDs are
// opaque strings, QQ numbers are int64. The schema is versioned by numbered
// migrations embedded in the binary, one set per dialect with the same
// versions; a database written by a newer version is refused with
// ErrNewerSchema rather than touched.
//
// For running it as a service: Backup copies an SQLite database while
// others write to it, and Heartbeat proves that the database still takes
// writes.
//
// For several processes sharing a PostgreSQL database, leases say which
// process serves each user: QQ allows one login per number, so a process
// serves a user only while AcquireLease says it holds the lease, renews its
// leases (RenewLeases) while it runs, and lets them go when it stops. A dead
// process's leases expire; LeasesExpired tells the others whose users need
// a new process. Beside them, each process's row (BeatProcess, Processes)
// counts the XMPP server's balanced component connections it holds
// (ClaimSlot), so that together they open no more than the server routes to.
// All of it is decided in the database, in single statements or locked
// transactions, never from a value a process read earlier.
//
// A Store is safe for concurrent use by many goroutines. The writes of
// every relayed message (Enqueue, the fetch SEQ, EnqueueFetched, Remove,
// RemoveBatch) that come at the same time share one transaction (group
// commit); each call still returns only once its own write is durable.
package store
