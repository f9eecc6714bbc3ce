-- PostgreSQL twin of migrations/sqlite/20261122000001. Keep them equivalent.
-- The durable inbox: every webhook from every provider lands here first and
-- is acknowledged only after this row is committed. Times are Unix
-- milliseconds (BIGINT), which compare correctly as integers in SQLite and
-- in PostgreSQL alike.
CREATE TABLE webhook_events (
    id                    TEXT    PRIMARY KEY,          -- task id (UUID v7)
    provider              TEXT    NOT NULL,             -- bakai, telegram, …
    external_id           TEXT    NOT NULL,             -- the provider's event id: dedup key
    event_type            TEXT    NOT NULL,
    event_subtype         TEXT,
    entity_type           TEXT,
    entity_id             TEXT,
    status                TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'retrying')),
    retry_count           BIGINT NOT NULL DEFAULT 0,
    max_retries           BIGINT NOT NULL DEFAULT 3,
    next_retry_at         BIGINT,
    processing_started_at BIGINT,
    lease_expires_at      BIGINT,
    lease_token           TEXT,                          -- who holds the lease
    processed_at          BIGINT,
    error                 TEXT,
    outcome               TEXT,                          -- what applying it did
    payload               TEXT    NOT NULL,             -- the raw JSON body
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    UNIQUE (provider, external_id)
);

CREATE INDEX webhook_events_status ON webhook_events (status);
CREATE INDEX webhook_events_provider_status ON webhook_events (provider, status);
CREATE INDEX webhook_events_next_retry_at ON webhook_events (next_retry_at);
CREATE INDEX webhook_events_entity ON webhook_events (entity_type, entity_id);
CREATE INDEX webhook_events_created_at ON webhook_events (created_at);

-- Product metadata and index status, one row per product ever seen. Deleted
-- products keep a tombstone row so that a late, older event cannot bring
-- them back (`last_event_at`).
CREATE TABLE products (
    product_id     TEXT    PRIMARY KEY,
    title          TEXT,
    description    TEXT,
    category       TEXT,
    price          DOUBLE PRECISION,
    currency       TEXT,
    image_ref      TEXT,
    image_sha256   TEXT,
    status         TEXT    NOT NULL
        CHECK (status IN ('pending', 'indexed', 'failed', 'deleted')),
    error          TEXT,
    model_version  TEXT,
    embed_count    BIGINT NOT NULL DEFAULT 0,
    last_event_id  TEXT,
    last_event_at  BIGINT,                               -- event timestamp, ms
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
