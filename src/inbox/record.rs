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
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
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
    pub next_retry_at: Option<i64>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub processing_started_at: Option<i64>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub processed_at: Option<i64>,
    /// When an operator asked for a retry whose try has not ended yet.
    #[serde(serialize_with = "rfc3339_opt")]
    pub manual_retry_at: Option<i64>,
    pub error: Option<String>,
    pub outcome: Option<String>,
    #[serde(skip)]
    pub payload: String,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339")]
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
