//! The BakaiMarket event as Vitrine understands it, and its validation.
//!
//! A webhook body is first parsed as loose JSON ([`RawEvent`]) so that a
//! syntactically broken body (400) is told apart from a well-formed body that
//! is not a valid event (422). Validation then produces a [`ProductEvent`], the
//! domain type every later stage works with.
//!
//! The webhook and the worker read a body with the same function,
//! [`parse_event`] (the webhook in its two halves, [`parse_json`] and
//! [`from_json`], to label its metrics in between), so an event that was
//! acknowledged is always one the worker can read. That parse refuses
//! duplicate object keys at any depth: `serde_json::Value` would keep the
//! last copy silently while the derived struct refuses the body, and which
//! copy the sender meant is anyone's guess.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, MapAccess, SeqAccess, Visitor},
};

use super::{ENTITY, PROVIDER};
pub use crate::embed::ImageRef;
use crate::inbox::NewEvent;

/// What a product event asks Vitrine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
/// a `deleted` event carries only the id. `image_key` (a key under
/// IMAGE_BASE_URL or the S3 bucket) wins over `image_url`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Refuses an event dated more than `max_skew` after `now`. Its
    /// timestamp becomes the product's clock, and an event older than that
    /// clock is skipped as stale: one event dated 9999-12-31 would make
    /// every later update, and even the delete, of its product a no-op.
    /// Past dates are fine (a late delivery is what the stale check is for).
    pub fn check_clock(
        &self,
        now: DateTime<Utc>,
        max_skew: Duration,
    ) -> Result<(), ValidationError> {
        let skew = chrono::Duration::from_std(max_skew).unwrap_or(chrono::Duration::MAX);
        match now.checked_add_signed(skew) {
            Some(latest) if self.timestamp > latest => Err(invalid(
                "timestamp",
                format!(
                    "is {} s ahead of this server's clock ({}), more than the {} s allowed \
                     (bakai.max_clock_skew_secs)",
                    (self.timestamp - now).num_seconds(),
                    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    max_skew.as_secs()
                ),
            )),
            _ => Ok(()),
        }
    }

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
            org: None,
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
    /// serde_json's text: "duplicate key `title` at line 1 column 80".
    #[error("{0}")]
    DuplicateKey(String),
}

/// Why a body is not an event the inbox may accept.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// Not JSON at all (400).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON, but not an object (422).
    #[error("body is not a JSON object")]
    NotAnObject,
    /// A JSON object, but not a valid event (422).
    #[error("invalid event: {0}")]
    Invalid(#[from] ValidationError),
}

/// A JSON value that refuses an object with the same key twice, at any
/// depth. Otherwise the same as `serde_json::Value` (without the
/// `arbitrary_precision` feature, which this crate does not enable).
struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // JSON text cannot spell NaN or infinity; `Value` maps them to null.
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Strict::deserialize(d).map(|s| s.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(items.into())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let Strict(v) = map.next_value()?;
            fields.insert(key, v);
        }
        Ok(fields.into())
    }
}

/// The first half of [`parse_event`]: JSON syntax (400) and duplicate keys
/// (422).
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, ParseError> {
    match serde_json::from_slice::<Strict>(body) {
        Ok(Strict(v)) => Ok(v),
        // `Value` accepts every well-formed text, so the only data error
        // left is the duplicate key raised above.
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            Err(ValidationError::DuplicateKey(e.to_string()).into())
        }
        Err(e) => Err(ParseError::Malformed(e.to_string())),
    }
}

/// The second half of [`parse_event`]: shape and validity (422).
pub fn from_json(value: serde_json::Value) -> Result<ProductEvent, ParseError> {
    let raw: RawEvent = serde_json::from_value(value).map_err(|_| ParseError::NotAnObject)?;
    Ok(validate(raw)?)
}

/// A webhook body (or a stored payload) as an event: what intake accepts is
/// exactly what the worker applies.
pub fn parse_event(body: &[u8]) -> Result<ProductEvent, ParseError> {
    from_json(parse_json(body)?)
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
    // Characters, as documented: a Cyrillic id takes two bytes a letter.
    if s.chars().count() > 256 {
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

    #[test]
    fn the_id_limit_counts_characters_not_bytes() {
        let with_id = |id: String| {
            let mut v = good();
            v["data"]["product_id"] = json!(id);
            parse(v)
        };
        // 256 Cyrillic letters are 512 bytes: allowed.
        assert!(with_id("ж".repeat(256)).is_ok());
        let err = with_id("ж".repeat(257)).unwrap_err().to_string();
        assert!(err.contains("longer than 256 characters"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let body = good().to_string();
        assert!(parse_event(body.as_bytes()).is_ok());
        for (case, dup) in [
            (
                "top level",
                body.replacen("\"event_id\"", "\"event_id\":\"evt-0\",\"event_id\"", 1),
            ),
            (
                "in data",
                body.replacen("\"title\"", "\"title\":\"Dog\",\"title\"", 1),
            ),
            (
                "deeper",
                body.replacen("\"title\"", "\"extra\":[{\"a\":1,\"a\":2}],\"title\"", 1),
            ),
        ] {
            assert_ne!(dup, body, "{case}");
            match parse_event(dup.as_bytes()) {
                Err(ParseError::Invalid(ValidationError::DuplicateKey(m))) => {
                    assert!(m.starts_with("duplicate key `"), "{case}: {m}")
                }
                other => panic!("{case}: {other:?}"),
            }
        }
        // Broken JSON stays a syntax error, a non-object its own case.
        assert!(matches!(
            parse_event(b"{\"event_type\": "),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(
            parse_event(b"{} trailing"),
            Err(ParseError::Malformed(_))
        ));
        assert_eq!(parse_event(b"[1, 2]"), Err(ParseError::NotAnObject));
        // The same keys in different objects are not duplicates.
        let v = parse_json(br#"{"a": {"k": 1}, "b": {"k": 2}, "k": [1.5, null, true]}"#).unwrap();
        assert_eq!(
            v,
            json!({"a": {"k": 1}, "b": {"k": 2}, "k": [1.5, null, true]})
        );
    }

    #[test]
    fn timestamps_beyond_the_clock_skew_are_refused() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .to_utc();
        let skew = Duration::from_secs(300);
        let at = |ts: &str| {
            let mut v = good();
            v["timestamp"] = json!(ts);
            parse(v).unwrap()
        };
        assert!(at("2020-01-01T00:00:00Z").check_clock(now, skew).is_ok());
        assert!(at("2026-11-22T10:05:00Z").check_clock(now, skew).is_ok());
        let err = at("2026-11-22T10:05:01Z")
            .check_clock(now, skew)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("field `timestamp` is 301 s ahead of this server's clock"),
            "{err}"
        );
        assert!(at("9999-12-31T23:59:59Z").check_clock(now, skew).is_err());
        // A skew too large for chrono means "no limit", not a panic.
        assert!(
            at("9999-12-31T23:59:59Z")
                .check_clock(now, Duration::MAX)
                .is_ok()
        );
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
