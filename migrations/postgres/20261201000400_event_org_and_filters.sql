-- PostgreSQL twin of migrations/sqlite/20261201000400. Keep them equivalent.
-- The organisation an event belongs to (a CRM account, a shop), and indexes
-- for the history filters on it, on `entity_type` and on `event_subtype`:
-- each walks newest first, as the history page sorts.
ALTER TABLE webhook_events ADD COLUMN org TEXT;

CREATE INDEX webhook_events_org_created ON webhook_events (org, created_at);
CREATE INDEX webhook_events_entity_type_created ON webhook_events (entity_type, created_at);
CREATE INDEX webhook_events_subtype_created ON webhook_events (event_subtype, created_at);
