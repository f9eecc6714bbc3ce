-- Bulk replays (`POST /api/v1/events/replay`): one row per job, its filter,
-- its progress and its end. Kept in the database so that any instance can
-- show a job's progress and cancel it; the instance that started the job
-- runs it, and stops at its next batch once `cancel_requested_at` is set.
CREATE TABLE replay_jobs (
    id                  TEXT   PRIMARY KEY,              -- UUID v7
    filter              TEXT   NOT NULL,                 -- the filter, as JSON
    status              TEXT   NOT NULL
        CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
    matched             BIGINT NOT NULL,                 -- events the filter matched at the start
    cap                 BIGINT NOT NULL,                 -- most events this job replays
    replayed            BIGINT NOT NULL DEFAULT 0,
    skipped             BIGINT NOT NULL DEFAULT 0,       -- being processed when their batch came
    until_created_at    BIGINT NOT NULL,                 -- only events received before the job
    cursor_created_at   BIGINT,                          -- the last event done, (created_at, id)
    cursor_id           TEXT,
    cancel_requested_at BIGINT,
    error               TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    finished_at         BIGINT
);
