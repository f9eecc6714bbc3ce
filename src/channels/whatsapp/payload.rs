//! A Cloud API delivery split into its parts: every `entry[]`, every
//! `changes[]`, every `messages[]` and every `statuses[]` (pywa reads only
//! index 0 of each, which loses messages). [`split`] is pure, for the fuzz
//! target.

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One stored event of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The dedup key: the message's `wamid`, `status:{wamid}:{status}`, or
    /// a hash of a change that is neither.
    pub external_id: String,
    /// `message`, `status` or `change`.
    pub kind: &'static str,
    /// The message type (`text`, `image`, …), the status (`delivered`, …)
    /// or the change's `field`.
    pub subtype: Option<String>,
    /// The number it came to: routes it to a business.
    pub phone_number_id: Option<String>,
    /// The shopper's `wa_id`, for messages.
    pub from: Option<String>,
    /// What the handler reads: `{phone_number_id, contact, message}`,
    /// `{phone_number_id, status}` or `{phone_number_id, change}`.
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not JSON: {0}")]
    Malformed(String),
    #[error("a delivery is a JSON object with an `entry` array")]
    NoEntries,
}

pub fn split(body: &[u8]) -> Result<Vec<Part>, PayloadError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    let entries = v
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(PayloadError::NoEntries)?;
    let mut parts = Vec::new();
    let none = Vec::new();
    for entry in entries {
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .unwrap_or(&none);
        for change in changes {
            let value = change.get("value").unwrap_or(&Value::Null);
            let field = change
                .get("field")
                .and_then(Value::as_str)
                .map(String::from);
            let number = value
                .pointer("/metadata/phone_number_id")
                .and_then(Value::as_str)
                .map(String::from);
            let contacts = value
                .get("contacts")
                .and_then(Value::as_array)
                .unwrap_or(&none);
            let messages = value
                .get("messages")
                .and_then(Value::as_array)
                .unwrap_or(&none);
            let statuses = value
                .get("statuses")
                .and_then(Value::as_array)
                .unwrap_or(&none);
            for m in messages {
                let from = m.get("from").and_then(Value::as_str).map(String::from);
                let contact = contacts
                    .iter()
                    .find(|c| c.get("wa_id").and_then(Value::as_str) == from.as_deref())
                    .or(contacts.first())
                    .cloned()
                    .unwrap_or(Value::Null);
                let id = m.get("id").and_then(Value::as_str).map(String::from);
                parts.push(Part {
                    external_id: id.unwrap_or_else(|| format!("hash:{}", digest(m))),
                    kind: "message",
                    subtype: m.get("type").and_then(Value::as_str).map(String::from),
                    phone_number_id: number.clone(),
                    from,
                    payload: json!({ "phone_number_id": number, "contact": contact, "message": m }),
                });
            }
            for s in statuses {
                let id = s.get("id").and_then(Value::as_str).unwrap_or("");
                let status = s.get("status").and_then(Value::as_str).map(String::from);
                parts.push(Part {
                    external_id: if id.is_empty() {
                        format!("hash:{}", digest(s))
                    } else {
                        format!("status:{id}:{}", status.as_deref().unwrap_or(""))
                    },
                    kind: "status",
                    subtype: status,
                    phone_number_id: number.clone(),
                    from: None,
                    payload: json!({ "phone_number_id": number, "status": s }),
                });
            }
            if messages.is_empty() && statuses.is_empty() {
                parts.push(Part {
                    external_id: format!("hash:{}", digest(change)),
                    kind: "change",
                    subtype: field,
                    phone_number_id: number.clone(),
                    from: None,
                    payload: json!({ "phone_number_id": number, "change": change }),
                });
            }
        }
    }
    Ok(parts)
}

fn digest(v: &Value) -> String {
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

/// The message part the handler reads back.
#[derive(Debug, Clone, Deserialize)]
pub struct StoredMessage {
    pub phone_number_id: Option<String>,
    pub message: InboundMessage,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InboundMessage {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub from: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<TextBody>,
    #[serde(default)]
    pub image: Option<Media>,
    #[serde(default)]
    pub document: Option<Media>,
    #[serde(default)]
    pub interactive: Option<Value>,
    #[serde(default)]
    pub button: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TextBody {
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Media {
    pub id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
}

impl InboundMessage {
    /// The reply id (or text) of a pressed button or picked list row.
    pub fn choice(&self) -> Option<String> {
        if let Some(i) = &self.interactive {
            for k in ["list_reply", "button_reply"] {
                if let Some(id) = i.pointer(&format!("/{k}/id")).and_then(Value::as_str) {
                    return Some(id.to_string());
                }
            }
        }
        self.button
            .as_ref()
            .and_then(|b| b.get("payload").or_else(|| b.get("text")))
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// The media id of an image (or an image sent as a document).
    pub fn image_media(&self) -> Option<&str> {
        if let Some(m) = &self.image {
            return Some(&m.id);
        }
        self.document
            .as_ref()
            .filter(|d| {
                d.mime_type
                    .as_deref()
                    .is_some_and(|m| m.starts_with("image/"))
            })
            .map(|d| d.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_change_message_and_status_is_its_own_part() {
        let body = json!({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [{"field": "messages", "value": {
                "metadata": {"phone_number_id": "P1"},
                "contacts": [{"wa_id": "A"}, {"wa_id": "B"}],
                "messages": [{"id": "wamid.1", "from": "A", "type": "text"},
                             {"id": "wamid.2", "from": "B", "type": "image"}]}}]},
            {"id": "2", "changes": [
                {"field": "messages", "value": {"metadata": {"phone_number_id": "P2"},
                    "statuses": [{"id": "wamid.9", "status": "read"},
                                 {"id": "wamid.9", "status": "delivered"}]}},
                {"field": "account_update", "value": {"x": 1}}]}]});
        let parts = split(body.to_string().as_bytes()).unwrap();
        let ids: Vec<&str> = parts.iter().map(|p| p.external_id.as_str()).collect();
        assert_eq!(
            &ids[..4],
            [
                "wamid.1",
                "wamid.2",
                "status:wamid.9:read",
                "status:wamid.9:delivered"
            ]
        );
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[4].kind, "change");
        assert_eq!(parts[1].payload["contact"]["wa_id"], "B");
        assert_eq!(parts[2].phone_number_id.as_deref(), Some("P2"));
        assert!(matches!(split(b"{"), Err(PayloadError::Malformed(_))));
        assert_eq!(split(b"{}"), Err(PayloadError::NoEntries));
    }
}
