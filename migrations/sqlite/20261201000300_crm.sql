-- The CRM provider (src/crm). Times are Unix milliseconds, as in the inbox.

-- Kommo organisations besides the default one of KOMMO_WEBHOOK_SECRET. A
-- delivery's URL secret picks its organisation; when `subdomain` or
-- `account_id` is set, the delivery's `account[…]` must match it.
CREATE TABLE crm_organisations (
    name           TEXT    PRIMARY KEY,
    secret_sha256  TEXT    NOT NULL UNIQUE,        -- hex SHA-256 of the URL secret, never the secret
    subdomain      TEXT,
    account_id     TEXT,
    created_at     BIGINT  NOT NULL
);

-- Automation rules, as data: a trigger (event subtypes), conditions and
-- actions, both JSON.
CREATE TABLE crm_rules (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    enabled     INTEGER NOT NULL DEFAULT 1,
    triggers    TEXT    NOT NULL,              -- JSON array of subtypes or aliases
    conditions  TEXT    NOT NULL,              -- JSON condition tree
    actions     TEXT    NOT NULL,              -- JSON array of actions
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- Every run of a rule on an event (one per try of the event).
CREATE TABLE crm_rule_runs (
    id          TEXT    PRIMARY KEY,
    rule_id     TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('fired', 'failed', 'skipped')),
    error       TEXT,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX crm_rule_runs_rule ON crm_rule_runs (rule_id, created_at);
CREATE INDEX crm_rule_runs_event ON crm_rule_runs (event_id);

-- What each action did, once: a retried event finds its done actions here
-- and does not do them again.
CREATE TABLE crm_action_effects (
    event_id     TEXT    NOT NULL,
    rule_id      TEXT    NOT NULL,
    action_index INTEGER NOT NULL,
    effect       TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (event_id, rule_id, action_index)
);
