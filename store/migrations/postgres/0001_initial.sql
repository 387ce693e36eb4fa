-- 0001: the first schema, as ../0001_initial.sql has it for SQLite. Times
-- are Unix nanoseconds (UTC). Where the dialects differ:
--   jid is COLLATE "C", so that ORDER BY jid is byte order, as in SQLite,
--   whatever the database's locale;
--   text and nick, which come from QQ, are BYTEA: SQLite's TEXT keeps any
--   bytes, PostgreSQL's refuses NUL and invalid UTF-8, and the store hands
--   them back as they came;
--   SQLite's 64-bit INTEGER is BIGINT where a value may need it.

CREATE TABLE registrations (
	jid          TEXT COLLATE "C" PRIMARY KEY,
	uin          BIGINT NOT NULL UNIQUE CHECK (uin > 0),
	-- Only ever the MD5 the protocol needs: 32 lowercase hex digits, so a
	-- plaintext password cannot be stored even by a buggy caller.
	password_md5 TEXT   NOT NULL CHECK (password_md5 ~ '^[0-9a-f]{32}$'),
	created      BIGINT NOT NULL,
	updated      BIGINT NOT NULL
);

CREATE TABLE contacts (
	jid     TEXT COLLATE "C" NOT NULL REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	uin     BIGINT  NOT NULL CHECK (uin > 0),
	nick    BYTEA   NOT NULL DEFAULT '',
	face    BIGINT  NOT NULL DEFAULT 0,
	sub     INTEGER NOT NULL DEFAULT 0 CHECK (sub BETWEEN 0 AND 3),
	updated BIGINT  NOT NULL,
	PRIMARY KEY (jid, uin)
);

-- An identity never hands out an ID again after its row was removed (as
-- AUTOINCREMENT in SQLite): a caller holding a stale ID can then never
-- remove someone else's message.
CREATE TABLE queue (
	id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	dir      INTEGER NOT NULL CHECK (dir IN (0, 1)),
	jid      TEXT COLLATE "C" NOT NULL REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	peer     BIGINT  NOT NULL CHECK (peer > 0),
	text     BYTEA   NOT NULL,
	received BIGINT  NOT NULL
);
