//! The BakaiMarket event as Vitrine understands it, and its validation.
//!
//! A webhook body is first parsed as loose JSON ([`RawEvent`]) so that a
//! syntactically broken body (400) is told apart from a well-formed body that
//! is not a valid event (422). Validation then produces a [`ProductEvent`], the
//! domain type every later stage works with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ENTITY, PROVIDER};
pub use crate::embed::ImageRef;
use crate::inbox::NewEvent;

/// What a product event asks Vitrine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "product.created")]
    Created,
    #[serde(rename = "product.updated")]
    Updated,
    #[serde(rename = "product.deleted")]
    Deleted,
    #[serde(rename = "product.image.updated")]
    ImageUpdated,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Created,
        EventKind::Updated,
        EventKind::Deleted,
        EventKind::ImageUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "product.created",
            EventKind::Updated => "product.updated",
            EventKind::Deleted => "product.deleted",
            EventKind::ImageUpdated => "product.image.updated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// `product.image.updated` → `image.updated`; the inbox's `event_subtype`.
    pub fn subtype(self) -> &'static str {
        &self.as_str()["product.".len()..]
    }
}

/// Product fields carried by an event. Everything but the id is optional:
/// a `deleted` event carries only the id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductData {
    pub product_id: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub price: Option<f64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub image_key: Option<String>,
    #[serde(default)]
    pub image_url: Option<String>,
}

impl ProductData {
    pub fn image(&self) -> Option<ImageRef> {
        match (&self.image_key, &self.image_url) {
            (Some(k), _) if !k.trim().is_empty() => Some(ImageRef::Key(k.clone())),
            (_, Some(u)) if !u.trim().is_empty() => Some(ImageRef::Url(u.clone())),
            _ => None,
        }
    }
}

/// A validated product event.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductEvent {
    pub kind: EventKind,
    pub event_id: String,
    pub timestamp: DateTime<Utc>,
    pub data: ProductData,
}

impl ProductEvent {
    /// The inbox row for this event, whoever received it (the webhook, `vitrine
    /// import`): deduplicated by `event_id`, addressed to the `bakai` handler,
    /// with `payload`, the JSON body the event was validated from, stored as
    /// it is for the handler to parse again.
    pub fn to_new_event(&self, payload: String) -> NewEvent {
        NewEvent {
            provider: PROVIDER.into(),
            external_id: self.event_id.clone(),
            event_type: self.kind.as_str().into(),
            event_subtype: Some(self.kind.subtype().into()),
            entity_type: Some(ENTITY.into()),
            entity_id: Some(self.data.product_id.clone()),
            payload,
        }
    }
}

/// The wire shape, deliberately loose: fields are checked in [`validate`].
#[derive(Debug, Deserialize)]
pub struct RawEvent {
    pub event_type: Option<serde_json::Value>,
    pub event_id: Option<serde_json::Value>,
    pub timestamp: Option<serde_json::Value>,
    pub data: Option<serde_json::Value>,
}

/// Why a well-formed body is not a valid event; the text goes back to the
/// sender in the 422 response.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValidationError {
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(
        "unknown event_type `{0}` (expected product.created, product.updated, product.deleted or product.image.updated)"
    )]
    UnknownType(String),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ValidationError {
    ValidationError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A non-empty string id; numbers are accepted and rendered as text, since
/// marketplaces often send numeric ids.
fn id_field(v: Option<&serde_json::Value>, field: &'static str) -> Result<String, ValidationError> {
    let s = match v {
        None | Some(serde_json::Value::Null) => return Err(ValidationError::Missing(field)),
        Some(serde_json::Value::String(s)) => s.trim().to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => return Err(invalid(field, "must be a string")),
    };
    if s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.len() > 256 {
        return Err(invalid(field, "is longer than 256 characters"));
    }
    Ok(s)
}

/// RFC 3339 text, or Unix seconds/milliseconds as a number.
fn timestamp_field(v: Option<&serde_json::Value>) -> Result<DateTime<Utc>, ValidationError> {
    match v {
        None | Some(serde_json::Value::Null) => Err(ValidationError::Missing("timestamp")),
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| invalid("timestamp", format!("is not RFC 3339 ({e})"))),
        Some(serde_json::Value::Number(n)) => {
            let n = n
                .as_i64()
                .ok_or_else(|| invalid("timestamp", "must be an integer"))?;
            // Ten-digit values are seconds, thirteen-digit ones milliseconds.
            let t = if n.abs() < 100_000_000_000 {
                DateTime::from_timestamp(n, 0)
            } else {
                DateTime::from_timestamp_millis(n)
            };
            t.ok_or_else(|| invalid("timestamp", "is out of range"))
        }
        Some(_) => Err(invalid("timestamp", "must be RFC 3339 text or Unix time")),
    }
}

/// Checks a parsed body and builds the domain event.
pub fn validate(raw: RawEvent) -> Result<ProductEvent, ValidationError> {
    let kind = match raw.event_type {
        None | Some(serde_json::Value::Null) => return Err(ValidationError::Missing("event_type")),
        Some(serde_json::Value::String(s)) => {
            EventKind::parse(&s).ok_or(ValidationError::UnknownType(s))?
        }
        Some(_) => return Err(invalid("event_type", "must be a string")),
    };
    let event_id = id_field(raw.event_id.as_ref(), "event_id")?;
    let timestamp = timestamp_field(raw.timestamp.as_ref())?;
    let mut fields = match raw.data {
        Some(serde_json::Value::Object(fields)) => fields,
        None | Some(serde_json::Value::Null) => return Err(ValidationError::Missing("data")),
        Some(_) => return Err(invalid("data", "must be an object")),
    };
    let product_id = id_field(fields.get("product_id"), "data.product_id")?;
    // Store the normalised (string) id so numeric ids deserialize too.
    fields.insert("product_id".into(), product_id.into());
    let data: ProductData = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| invalid("data", e.to_string()))?;

    if let Some(price) = data.price
        && (!price.is_finite() || price < 0.0)
    {
        return Err(invalid("data.price", "must be a non-negative number"));
    }
    if let Some(url) = &data.image_url {
        let parsed = url::Url::parse(url).map_err(|e| invalid("data.image_url", e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("data.image_url", "must be an http(s) URL"));
        }
    }
    if matches!(kind, EventKind::Created | EventKind::ImageUpdated) && data.image().is_none() {
        return Err(ValidationError::Missing(
            "data.image_key (or data.image_url)",
        ));
    }
    Ok(ProductEvent {
        kind,
        event_id,
        timestamp,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<ProductEvent, ValidationError> {
        validate(serde_json::from_value(v).unwrap())
    }

    fn good() -> serde_json::Value {
        json!({
            "event_type": "product.created",
            "event_id": "evt-1",
            "timestamp": "2026-11-22T10:00:00Z",
            "data": {"product_id": "p-1", "title": "Cat", "description": "A cat",
                     "category": "animals", "price": 12.5, "currency": "KGS",
                     "image_key": "cat.jpg"}
        })
    }

    #[test]
    fn accepts_the_documented_shape() {
        let e = parse(good()).unwrap();
        assert_eq!(e.kind, EventKind::Created);
        assert_eq!(e.data.product_id, "p-1");
        assert_eq!(e.data.image(), Some(ImageRef::Key("cat.jpg".into())));
        assert_eq!(e.kind.subtype(), "created");
    }

    #[test]
    fn numeric_ids_and_unix_timestamps_are_accepted() {
        let mut v = good();
        v["event_id"] = json!(42);
        v["data"]["product_id"] = json!(7);
        v["timestamp"] = json!(1_763_805_600);
        let e = parse(v).unwrap();
        assert_eq!(e.event_id, "42");
        assert_eq!(e.data.product_id, "7");
        assert_eq!(e.timestamp.timestamp(), 1_763_805_600);
    }

    #[test]
    fn rejects_what_is_not_an_event() {
        let mut v = good();
        v["event_type"] = json!("product.exploded");
        assert!(matches!(parse(v), Err(ValidationError::UnknownType(_))));
        let mut v = good();
        v.as_object_mut().unwrap().remove("event_id");
        assert_eq!(parse(v), Err(ValidationError::Missing("event_id")));
        let mut v = good();
        v["timestamp"] = json!("yesterday");
        assert!(parse(v).is_err());
        let mut v = good();
        v["data"].as_object_mut().unwrap().remove("image_key");
        assert!(parse(v).is_err(), "created needs an image");
        let mut v = good();
        v["data"]["image_key"] = serde_json::Value::Null;
        v["data"]["image_url"] = json!("file:///etc/passwd");
        assert!(parse(v).is_err(), "image_url must be http(s)");
        let mut v = good();
        v["data"]["price"] = json!(-3);
        assert!(parse(v).is_err());
    }

    #[test]
    fn an_event_becomes_an_inbox_row_for_the_bakai_handler() {
        let body = good().to_string();
        let mut v = good();
        v["event_type"] = json!("product.image.updated");
        let n = parse(v).unwrap().to_new_event(body.clone());
        assert_eq!(
            (n.provider.as_str(), n.external_id.as_str()),
            ("bakai", "evt-1")
        );
        assert_eq!(n.event_type, "product.image.updated");
        assert_eq!(n.event_subtype.as_deref(), Some("image.updated"));
        assert_eq!(
            (n.entity_type.as_deref(), n.entity_id.as_deref()),
            (Some("product"), Some("p-1"))
        );
        assert_eq!(n.payload, body);
    }

    #[test]
    fn delete_needs_only_the_id() {
        let e = parse(json!({"event_type": "product.deleted", "event_id": "e",
                             "timestamp": "2026-11-22T10:00:00+06:00",
                             "data": {"product_id": "p"}}))
        .unwrap();
        assert_eq!(e.kind, EventKind::Deleted);
    }
}
