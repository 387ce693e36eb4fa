-- 0005: exactly once to and from QQ, and a place for what cannot be
-- delivered.

-- To QQ: the SEQ of the row's first CLTMSG, chosen before the first attempt
-- and reused by every retry in this process or after a restart (part i of a
-- long message uses seq + i), so that the server answers a repeat from its
-- memory instead of delivering it twice. 0: none chosen (rows written
-- before this version); one is chosen when the row is sent.
ALTER TABLE queue ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
-- When a delivery of the row first failed in a way that may have reached
-- the other side (0: never). attempts (schema 2) counts such failures.
ALTER TABLE queue ADD COLUMN tried INTEGER NOT NULL DEFAULT 0;
-- attempts was last used before schema 3, counting something else.
UPDATE queue SET attempts = 0;

-- The SEQ of the user's last GetMsgEx, written before it is sent and
-- removed in the transaction that queues what it fetched. A row left here
-- by a lost reply or a crash is asked again first, with the same SEQ.
CREATE TABLE qq_fetch (
	jid TEXT    PRIMARY KEY NOT NULL REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	seq INTEGER NOT NULL
) WITHOUT ROWID;

-- Queue rows given up on, moved aside instead of retried for ever, for an
-- admin to see. id is the queue row's id.
CREATE TABLE dead_letter (
	id       INTEGER PRIMARY KEY,
	dir      INTEGER NOT NULL,
	jid      TEXT    NOT NULL REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	peer     INTEGER NOT NULL,
	text     TEXT    NOT NULL,
	received INTEGER NOT NULL,
	msg_type INTEGER NOT NULL DEFAULT 0,
	seq      INTEGER NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0,
	failed   INTEGER NOT NULL,
	reason   TEXT    NOT NULL
);
CREATE INDEX dead_letter_by_user ON dead_letter (jid, id);
