//! The read side of the `webhook_events` table: one event, the history
//! page behind `GET /api/v1/events`, the queue depth, and what an entity has
//! waiting. Writes are in [`super::store`].

use super::{
    attempt::Attempt,
    event::{EventStatus, InboxError},
    record::EventRecord,
    store::Inbox,
};

/// Filters of `GET /api/v1/events`.
#[derive(Debug, Default, Clone)]
pub struct EventQuery {
    pub status: Option<EventStatus>,
    pub provider: Option<String>,
    pub event_type: Option<String>,
    pub entity_type: Option<String>,
    pub event_subtype: Option<String>,
    pub org: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub page: u32,
    pub limit: u32,
}

impl Inbox {
    pub async fn get(&self, id: &str) -> Result<EventRecord, InboxError> {
        sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM webhook_events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?
        .ok_or_else(|| InboxError::NotFound(id.to_string()))
    }

    /// Every try of an event, oldest first.
    pub async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, InboxError> {
        Ok(sqlx::query_as(
            "SELECT event_id, kind, started_at, ended_at, outcome, error \
             FROM webhook_event_attempts WHERE event_id = $1 ORDER BY started_at, lease_token",
        )
        .bind(id)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// The newest not-yet-applied event for an entity, if any.
    pub async fn latest_unprocessed(
        &self,
        entity_type: &str,
        entity_id: &str,
    ) -> Result<Option<EventRecord>, InboxError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM webhook_events WHERE entity_type = $1 AND entity_id = $2 \
             AND status IN ($3, $4, $5) ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(entity_type)
        .bind(entity_id)
        .bind(EventStatus::Pending)
        .bind(EventStatus::Processing)
        .bind(EventStatus::Retrying)
        .fetch_optional(self.db.reader())
        .await?)
    }

    /// One page of history, newest first, and the total number of matches.
    /// A fixed query whose unset filters are NULL keeps the SQL static (and
    /// portable: sqlx's query builder cannot number placeholders for `Any`).
    pub async fn list(&self, q: &EventQuery) -> Result<(Vec<EventRecord>, i64), InboxError> {
        macro_rules! filters {
            () => {
                concat!(" FROM webhook_events WHERE ", event_filters!())
            };
        }
        let total: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*)", filters!()))
            .bind(q.status)
            .bind(&q.provider)
            .bind(&q.event_type)
            .bind(q.start_ms)
            .bind(q.end_ms)
            .bind(&q.entity_type)
            .bind(&q.event_subtype)
            .bind(&q.org)
            .fetch_one(self.db.reader())
            .await?;
        let limit = i64::from(q.limit.max(1));
        let data = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            filters!(),
            " ORDER BY created_at DESC, id DESC LIMIT $9 OFFSET $10"
        ))
        .bind(q.status)
        .bind(&q.provider)
        .bind(&q.event_type)
        .bind(q.start_ms)
        .bind(q.end_ms)
        .bind(&q.entity_type)
        .bind(&q.event_subtype)
        .bind(&q.org)
        .bind(limit)
        .bind(i64::from(q.page.max(1) - 1) * limit)
        .fetch_all(self.db.reader())
        .await?;
        Ok((data, total))
    }

    /// How many events are not finished: pending, retrying or being
    /// processed.
    pub async fn unfinished(&self) -> Result<i64, InboxError> {
        Ok(self
            .counts()
            .await?
            .iter()
            .filter(|(s, _)| !s.is_final())
            .map(|(_, n)| n)
            .sum())
    }

    /// Number of events per status: the queue depth metric.
    pub async fn counts(&self) -> Result<Vec<(EventStatus, i64)>, InboxError> {
        Ok(
            sqlx::query_as("SELECT status, COUNT(*) FROM webhook_events GROUP BY status")
                .fetch_all(self.db.reader())
                .await?,
        )
    }
}
