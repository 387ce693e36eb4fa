// Package store keeps the gateway's durable state in one SQLite file:
// registrations (which bare JID owns which QQ number and the MD5 of its
// password), each user's contacts, and the delivery queue of messages that
// were accepted from one network but not yet handed to the other.
//
// It is plain SQL and knows nothing of XMPP or QQ wire formats: JIDs are
// opaque strings, QQ numbers are int64. The schema is versioned by numbered
// migrations embedded in the binary; a file written by a newer version is
// refused with ErrNewerSchema rather than touched.
//
// For running it as a service: Backup copies the database while others
// write to it, and Heartbeat proves that it still takes writes.
//
// A Store is safe for concurrent use by many goroutines.
package store
