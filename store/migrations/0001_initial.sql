-- 0001: the first schema. Times are Unix nanoseconds (UTC).

CREATE TABLE registrations (
	jid          TEXT    PRIMARY KEY NOT NULL,
	uin          INTEGER NOT NULL UNIQUE CHECK (uin > 0),
	-- Only ever the MD5 the protocol needs: 32 lowercase hex digits, so a
	-- plaintext password cannot be stored even by a buggy caller.
	password_md5 TEXT    NOT NULL CHECK (length(password_md5) = 32 AND password_md5 NOT GLOB '*[^0-9a-f]*'),
	created      INTEGER NOT NULL,
	updated      INTEGER NOT NULL
);

CREATE TABLE contacts (
	jid     TEXT    NOT NULL REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	uin     INTEGER NOT NULL CHECK (uin > 0),
	nick    TEXT    NOT NULL DEFAULT '',
	face    INTEGER NOT NULL DEFAULT 0,
	sub     INTEGER NOT NULL DEFAULT 0 CHECK (sub BETWEEN 0 AND 3),
	updated INTEGER NOT NULL,
	PRIMARY KEY (jid, uin)
) WITHOUT ROWID;

-- AUTOINCREMENT so an ID is never reused after its row was removed: a caller
-- holding a stale ID can then never remove someone else's message.
CREATE TABLE queue (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	dir      INTEGER NOT NULL CHECK (dir IN (0, 1)),
	jid      TEXT    NOT NULL REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	peer     INTEGER NOT NULL CHECK (peer > 0),
	text     TEXT    NOT NULL,
	received INTEGER NOT NULL
);
