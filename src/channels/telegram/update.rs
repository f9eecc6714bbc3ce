//! Telegram's `Update`, read leniently: [`parse_update`] needs only an
//! object with an integer `update_id` and finds its kind (the one other
//! field) and chat, so unknown kinds are stored, not refused; [`Update`]
//! types the parts the bot answers and ignores everything else.

use serde::Deserialize;
use serde_json::Value;

/// What the receiver needs from a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMeta {
    pub update_id: i64,
    /// `message`, `callback_query`, … or whatever new kind Telegram adds.
    pub kind: String,
    /// The chat it belongs to, when it has one.
    pub chat_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("the body is not JSON: {0}")]
    Malformed(String),
    #[error("an update is a JSON object with an integer update_id")]
    NoUpdateId,
}

/// Reads what the receiver stores an update by. Pure, for the fuzz target.
pub fn parse_update(body: &[u8]) -> Result<UpdateMeta, UpdateError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| UpdateError::Malformed(e.to_string()))?;
    let obj = v.as_object().ok_or(UpdateError::NoUpdateId)?;
    let update_id = obj
        .get("update_id")
        .and_then(Value::as_i64)
        .ok_or(UpdateError::NoUpdateId)?;
    let kind = obj
        .keys()
        .find(|k| *k != "update_id")
        .cloned()
        .unwrap_or_else(|| "empty".into());
    let inner = &obj.get(&kind).cloned().unwrap_or(Value::Null);
    let chat_id = inner
        .pointer("/chat/id")
        .or_else(|| inner.pointer("/message/chat/id"))
        .and_then(Value::as_i64);
    Ok(UpdateMeta {
        update_id,
        kind,
        chat_id,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub callback_query: Option<CallbackQuery>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub message_id: i64,
    pub chat: Chat,
    #[serde(default)]
    pub from: Option<User>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub photo: Option<Vec<PhotoSize>>,
    #[serde(default)]
    pub document: Option<Document>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    pub id: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub language_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhotoSize {
    pub file_id: String,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    #[serde(default)]
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Document {
    pub file_id: String,
    #[serde(default)]
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    pub id: String,
    pub from: User,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub data: Option<String>,
}

impl Message {
    /// The file to search with: the largest photo size, or a document that
    /// is an image (a photo sent "as file").
    pub fn image_file(&self) -> Option<&str> {
        if let Some(sizes) = &self.photo {
            return sizes
                .iter()
                .max_by_key(|p| (u64::from(p.width) * u64::from(p.height), p.file_size))
                .map(|p| p.file_id.as_str());
        }
        self.document
            .as_ref()
            .filter(|d| {
                d.mime_type
                    .as_deref()
                    .is_some_and(|m| m.starts_with("image/"))
            })
            .map(|d| d.file_id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_parse_and_junk_does_not() {
        let m = parse_update(br#"{"new_update_kind": {"x": 1}, "update_id": 1}"#).unwrap();
        assert_eq!(
            (m.update_id, m.kind.as_str(), m.chat_id),
            (1, "new_update_kind", None)
        );
        let m = parse_update(br#"{"update_id": 2, "message": {"chat": {"id": -5}}}"#).unwrap();
        assert_eq!(m.chat_id, Some(-5));
        assert!(matches!(parse_update(b"{"), Err(UpdateError::Malformed(_))));
        assert_eq!(parse_update(b"[]"), Err(UpdateError::NoUpdateId));
        assert_eq!(
            parse_update(br#"{"update_id": "1"}"#),
            Err(UpdateError::NoUpdateId)
        );
    }

    #[test]
    fn the_largest_photo_and_image_documents_are_searched() {
        let u: Update = serde_json::from_str(
            r#"{"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "photo": [
                {"file_id": "s", "width": 90, "height": 60},
                {"file_id": "l", "width": 1280, "height": 853},
                {"file_id": "m", "width": 320, "height": 213}]}}"#,
        )
        .unwrap();
        assert_eq!(u.message.unwrap().image_file(), Some("l"));
        let u: Update = serde_json::from_str(
            r#"{"update_id": 1, "message": {"chat": {"id": 1},
                "document": {"file_id": "d", "mime_type": "image/png"}}}"#,
        )
        .unwrap();
        assert_eq!(u.message.unwrap().image_file(), Some("d"));
        let u: Update = serde_json::from_str(
            r#"{"update_id": 1, "message": {"chat": {"id": 1},
                "document": {"file_id": "d", "mime_type": "application/pdf"}}}"#,
        )
        .unwrap();
        assert_eq!(u.message.unwrap().image_file(), None);
    }
}
