-- 0004: one row the running gateway rewrites to prove that the database
-- still takes writes (Store.Heartbeat, systemd's watchdog), and to tell an
-- operator when it last did.

CREATE TABLE heartbeat (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	at BIGINT  NOT NULL
);
INSERT INTO heartbeat (id, at) VALUES (1, 0);
