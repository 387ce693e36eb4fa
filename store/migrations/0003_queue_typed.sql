-- 0003: typed queue columns in place of the free-form meta string, so the
-- gateway no longer parses "mt=N" or re-parses whole stanzas on replay.
-- attempts and meta stay in the table unused: dropping a column in SQLite
-- means rebuilding the table, which is not worth it.

-- To XMPP: the QQ message type (MT) the item came as.
ALTER TABLE queue ADD COLUMN msg_type INTEGER NOT NULL DEFAULT 0;
-- To QQ: what the gateway needs of the user's <message/> for its receipt or
-- error reply.
ALTER TABLE queue ADD COLUMN resource    TEXT    NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN stanza_id   TEXT    NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN stanza_type TEXT    NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN receipt     INTEGER NOT NULL DEFAULT 0 CHECK (receipt IN (0, 1));
-- 1 for a to-QQ row written before this version: text holds the stanza XML.
ALTER TABLE queue ADD COLUMN raw_stanza  INTEGER NOT NULL DEFAULT 0 CHECK (raw_stanza IN (0, 1));

-- Existing to-XMPP rows keep their type. Meta was written as "mt=" and a
-- decimal int64; anything else (or more digits than surely fit) is taken
-- for a buddy message (9), as the old reader did, so the text is not lost.
UPDATE queue SET msg_type = CASE
	WHEN meta GLOB 'mt=[0-9]*' AND substr(meta, 4) NOT GLOB '*[^0-9]*' AND length(meta) <= 3 + 18
		THEN CAST(substr(meta, 4) AS INTEGER)
	WHEN meta GLOB 'mt=-[0-9]*' AND substr(meta, 5) NOT GLOB '*[^0-9]*' AND length(meta) <= 4 + 18
		THEN CAST(substr(meta, 4) AS INTEGER)
	ELSE 9
END
WHERE dir = 0;

-- Existing to-QQ rows were whole stanzas; the caller decodes them itself.
UPDATE queue SET raw_stanza = 1 WHERE dir = 1 AND meta = 'xmpp-message';
