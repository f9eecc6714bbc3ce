-- Alerts on events that failed for good (`src/alerts`): one row per
-- provider that has had such a failure since alerts were first enabled,
-- plus the row `*`, whose `counted_through` is when that was (a provider
-- seen for the first time starts counting there, so enabling alerts on an
-- old database does not report its whole history). Kept in the database so
-- that several instances on one database send one alert per window, not
-- one each: an instance claims a provider's row (`claimed_until`) before
-- it sends.
CREATE TABLE alert_windows (
    provider        TEXT    PRIMARY KEY,
    -- Failures that ended at or before this (Unix ms) are in a delivered alert.
    counted_through BIGINT  NOT NULL,
    -- When an alert of this provider was last tried (delivered or not): the
    -- next one waits `alerts.interval_secs` after it.
    last_try_at     BIGINT,
    last_sent_at    BIGINT,
    -- An instance is sending this provider's alert until then (a lease, so a
    -- crashed sender does not block the provider for ever).
    claimed_until   BIGINT,
    claim_token     TEXT,
    -- Deliveries that failed in a row, and the last one's reason.
    failed_tries    BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT,
    updated_at      BIGINT  NOT NULL
);

-- The alerts and the stats endpoint read the failed tries by when they
-- ended. The queries spell this predicate as it is written here (not bound),
-- so that both engines can use the partial index.
CREATE INDEX webhook_event_attempts_failed_ended
    ON webhook_event_attempts (ended_at) WHERE outcome IN ('retrying', 'failed');

-- The stats endpoint counts embeddings (completed events) by when they were
-- processed.
CREATE INDEX webhook_events_processed_at
    ON webhook_events (processed_at) WHERE processed_at IS NOT NULL;
