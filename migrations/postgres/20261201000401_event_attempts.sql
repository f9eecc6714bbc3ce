-- PostgreSQL twin of migrations/sqlite/20261201000401. Keep them equivalent.
-- Every processing try of an event, kept for operators: when it started
-- and ended, how it ended and why, and whether a worker took it on its own
-- (`automatic`: the first try, a scheduled retry, a lease taken over) or an
-- operator asked for it (`manual`). One row per claim: the claim's lease
-- token tells the tries of one event apart. `outcome` and `ended_at` are
-- NULL while the try runs.
CREATE TABLE webhook_event_attempts (
    event_id    TEXT   NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    lease_token TEXT   NOT NULL,
    kind        TEXT   NOT NULL CHECK (kind IN ('automatic', 'manual')),
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    outcome     TEXT
        CHECK (outcome IN ('completed', 'retrying', 'failed', 'released', 'abandoned')),
    error       TEXT,
    PRIMARY KEY (event_id, lease_token)
);

CREATE INDEX webhook_event_attempts_event_started ON webhook_event_attempts (event_id, started_at);

-- When an operator last asked for a manual retry that has not been tried
-- yet: the next try is then `manual`. Cleared when that try ends.
ALTER TABLE webhook_events ADD COLUMN manual_retry_at BIGINT;
