-- PostgreSQL twin of migrations/sqlite/20261201000200. Keep them equivalent.
-- The messenger bots (src/channels). Times are Unix milliseconds.
--
-- One conversation per (channel, bot, chat): its state-machine state, the
-- shopper's language, the last results (JSON) and when the shopper last
-- wrote (WhatsApp's 24-hour window).
CREATE TABLE channel_conversations (
    channel         TEXT    NOT NULL,                -- telegram, whatsapp
    bot_id          TEXT    NOT NULL,                -- bot id / phone_number_id
    chat_id         TEXT    NOT NULL,
    state           TEXT    NOT NULL
        CHECK (state IN ('greeting', 'waiting', 'results', 'more_or_new', 'details', 'goodbye')),
    lang            TEXT    NOT NULL,
    data            TEXT    NOT NULL,
    last_inbound_at BIGINT,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (channel, bot_id, chat_id)
);

-- Every reply, keyed by (inbound event, reply number): planned together
-- with the conversation's new state, then sent one by one. A retried event
-- sends only what is still pending, so it never answers twice.
CREATE TABLE channel_outbox (
    event_id            TEXT    NOT NULL,            -- the inbound inbox event
    seq                 BIGINT  NOT NULL,            -- reply number, from 0
    channel             TEXT    NOT NULL,
    bot_id              TEXT    NOT NULL,
    chat_id             TEXT    NOT NULL,
    method              TEXT    NOT NULL,            -- sendMessage, messages, …
    request             TEXT    NOT NULL,            -- the API call's JSON body
    status              TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'failed')),
    provider_message_id TEXT,                        -- message_id / wamid
    delivery            TEXT,                        -- WhatsApp: delivered, read, failed
    error               TEXT,
    received_at         BIGINT  NOT NULL,            -- when the inbound arrived
    created_at          BIGINT  NOT NULL,
    sent_at             BIGINT,
    updated_at          BIGINT  NOT NULL,
    PRIMARY KEY (event_id, seq)
);

CREATE INDEX channel_outbox_provider_message ON channel_outbox (provider_message_id);
