-- 0005: exactly once to and from QQ, and a place for what cannot be
-- delivered, as ../0005_exactly_once.sql. dead_letter.text is BYTEA as
-- queue.text is (0001).

-- To QQ: the SEQ of the row's first CLTMSG, chosen before the first attempt
-- and reused by every retry in this process or after a restart (part i of a
-- long message uses seq + i), so that the server answers a repeat from its
-- memory instead of delivering it twice. 0: none chosen (rows written
-- before this version); one is chosen when the row is sent.
ALTER TABLE queue ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
-- When a delivery of the row first failed in a way that may have reached
-- the other side (0: never). attempts (schema 2) counts such failures.
ALTER TABLE queue ADD COLUMN tried BIGINT NOT NULL DEFAULT 0;
-- attempts was last used before schema 3, counting something else.
UPDATE queue SET attempts = 0;

-- The SEQ of the user's last GetMsgEx, written before it is sent and
-- removed in the transaction that queues what it fetched. A row left here
-- by a lost reply or a crash is asked again first, with the same SEQ.
CREATE TABLE qq_fetch (
	jid TEXT COLLATE "C" PRIMARY KEY REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	seq BIGINT NOT NULL
);

-- Queue rows given up on, moved aside instead of retried for ever, for an
-- admin to see. id is the queue row's id.
CREATE TABLE dead_letter (
	id       BIGINT  PRIMARY KEY,
	dir      INTEGER NOT NULL,
	jid      TEXT COLLATE "C" NOT NULL REFERENCES registrations (jid) ON DELETE CASCADE ON UPDATE CASCADE,
	peer     BIGINT  NOT NULL,
	text     BYTEA   NOT NULL,
	received BIGINT  NOT NULL,
	msg_type BIGINT  NOT NULL DEFAULT 0,
	seq      BIGINT  NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0,
	failed   BIGINT  NOT NULL,
	reason   TEXT    NOT NULL
);
CREATE INDEX dead_letter_by_user ON dead_letter (jid, id);
