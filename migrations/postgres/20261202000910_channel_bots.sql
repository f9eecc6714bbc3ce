-- The messenger bots of each business (src/channels/bots_store.rs), beside
-- the default bot and number of the environment. Times are Unix
-- milliseconds.
--
-- Tokens and secrets are stored only encrypted (AES-256-GCM under
-- VITRINE_SECRET_KEY): nonce (12 bytes) || ciphertext || tag (16 bytes),
-- with the row's kind and external id as associated data, so a ciphertext
-- copied into another row does not decrypt.
CREATE TABLE channel_bots (
    id                TEXT    PRIMARY KEY,
    kind              TEXT    NOT NULL CHECK (kind IN ('telegram', 'whatsapp')),
    external_id       TEXT    NOT NULL,     -- the token's digits before ':' / the phone_number_id
    name              TEXT    NOT NULL,     -- the business it answers for
    token_ciphertext  BYTEA   NOT NULL,     -- bot token / Graph API access token
    secret_ciphertext BYTEA,                -- webhook secret / verify token
    enabled           BIGINT NOT NULL DEFAULT 1,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    UNIQUE (kind, external_id)
);
