-- 0002: retry bookkeeping for the delivery queue, and an index for the
-- per-user, per-direction scans done after every poll and on start-up.

ALTER TABLE queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN meta TEXT NOT NULL DEFAULT '';

CREATE INDEX queue_by_user ON queue (jid, dir, id);
