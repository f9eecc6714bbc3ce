//! One stored event as the inbox reads it ([`EventRecord`]), and how the
//! admin API shows it ([`EventView`]). Shared by the write side
//! ([`super::store`]) and the reads ([`super::history`]).

use serde::{Serialize, Serializer};

use super::{
    attempt::Attempt,
    event::{EventStatus, time_text},
};

/// One stored event. Serialised, it is the admin API's view: times as
/// RFC 3339, the payload left out (see [`EventRecord::view`]).
#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "0193b2c4-7d1e-7a60-9f0e-2b9d3c4e5f60", "provider": "bakai",
    "external_id": "evt-0001", "event_type": "product.created", "event_subtype": "created",
    "entity_type": "product", "entity_id": "demo-0001", "status": "failed", "retry_count": 3,
    "max_retries": 3, "next_retry_at": null, "processing_started_at": null,
    "processed_at": "2026-12-01T10:00:03.120Z", "error": "image fetch: HTTP 404",
    "outcome": null, "created_at": "2026-12-01T10:00:00.000Z",
    "updated_at": "2026-12-01T10:00:03.120Z"}))]
pub struct EventRecord {
    pub id: String,
    pub provider: String,
    pub external_id: String,
    pub event_type: String,
    pub event_subtype: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// The organisation, when the provider knows one.
    pub org: Option<String>,
    pub status: EventStatus,
    pub retry_count: i64,
    pub max_retries: i64,
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_retry_at: Option<i64>,
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub processing_started_at: Option<i64>,
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub processed_at: Option<i64>,
    /// When an operator asked for a retry whose try has not ended yet.
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub manual_retry_at: Option<i64>,
    pub error: Option<String>,
    pub outcome: Option<String>,
    #[serde(skip)]
    pub payload: String,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

fn rfc3339<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    time_text(*ms).serialize(s)
}

fn rfc3339_opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    ms.and_then(time_text).serialize(s)
}

/// The admin API's view of an event: its fields, and the payload and the
/// tries (oldest first) when asked.
#[derive(Debug, Serialize)]
pub struct EventView<'a> {
    #[serde(flatten)]
    pub event: &'a EventRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<&'a [Attempt]>,
}

impl EventRecord {
    pub fn view(&self, with_payload: bool) -> EventView<'_> {
        EventView {
            event: self,
            payload: with_payload.then(|| {
                serde_json::from_str(&self.payload)
                    .unwrap_or_else(|_| serde_json::Value::String(self.payload.clone()))
            }),
            attempts: None,
        }
    }

    /// The full view: payload and tries.
    pub fn view_with_attempts<'a>(&'a self, attempts: &'a [Attempt]) -> EventView<'a> {
        EventView {
            attempts: Some(attempts),
            ..self.view(true)
        }
    }
}
