-- Claiming walks each status's events oldest first (see Inbox::claim); without
-- this index both engines sorted the whole backlog on every claim.
CREATE INDEX webhook_events_status_created ON webhook_events (status, created_at, id);
