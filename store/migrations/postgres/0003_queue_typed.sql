-- 0003: typed queue columns in place of the free-form meta string, as
-- ../0003_queue_typed.sql. attempts and meta stay, unused, as in SQLite.
-- receipt and raw_stanza are BOOLEAN where SQLite has 0 or 1.

-- To XMPP: the QQ message type (MT) the item came as.
ALTER TABLE queue ADD COLUMN msg_type BIGINT NOT NULL DEFAULT 0;
-- To QQ: what the gateway needs of the user's <message/> for its receipt or
-- error reply.
ALTER TABLE queue ADD COLUMN resource    TEXT    NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN stanza_id   TEXT    NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN stanza_type TEXT    NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN receipt     BOOLEAN NOT NULL DEFAULT false;
-- true for a to-QQ row written before this version: text holds the stanza XML.
ALTER TABLE queue ADD COLUMN raw_stanza  BOOLEAN NOT NULL DEFAULT false;

-- The same conversion as for SQLite, though no PostgreSQL database was
-- ever written at version 2: "mt=" and at most 18 digits, optionally
-- negative, is that type; anything else is a buddy message (9).
UPDATE queue SET msg_type = CASE
	WHEN meta ~ '^mt=-?[0-9]{1,18}$' THEN CAST(substr(meta, 4) AS BIGINT)
	ELSE 9
END
WHERE dir = 0;

UPDATE queue SET raw_stanza = true WHERE dir = 1 AND meta = 'xmpp-message';
