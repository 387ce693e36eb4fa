-- 0006: several gateway processes sharing one database. QQ allows one
-- login per number, so two processes must never serve one user at once.

-- Which process serves each user, until when. A process renews its
-- leases while it runs; a dead one's expire, and another takes them. A
-- released or expired row is kept (expires in the past) so that the
-- others can see whose users need a new process.
CREATE TABLE lease (
	jid     TEXT    PRIMARY KEY NOT NULL REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	owner   TEXT    NOT NULL,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
-- LeasesExpired scans by expiry; RenewLeases and ReleaseLeases by owner.
CREATE INDEX lease_by_expiry ON lease (expires);
CREATE INDEX lease_by_owner ON lease (owner);

-- The processes sharing the database, alive until expires, and how many of
-- the XMPP server's balanced component connections (ejabberd
-- domain_balancing slots) each holds, so that together they open no more
-- than the server routes to.
CREATE TABLE gateway_process (
	owner   TEXT    PRIMARY KEY NOT NULL,
	expires INTEGER NOT NULL,
	slots   INTEGER NOT NULL DEFAULT 0 CHECK (slots >= 0)
) WITHOUT ROWID;
