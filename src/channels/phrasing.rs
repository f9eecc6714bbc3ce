//! The optional phrasing hook (`[channels.llm]`, off by default): the bot's
//! own plain-text replies (greetings, help, "send a photo", …; never a
//! results list, a product's details or a button) are handed to an
//! OpenAI-compatible chat-completions endpoint to be rephrased. On a
//! timeout, an error or an empty answer the bot's own text is used, so the
//! hook can only change the wording, never whether a reply goes out.
//!
//! The handlers call it while planning, before the plan is committed to the
//! outbox: a retried event sends the stored text and never asks again.

use std::time::Duration;

use serde_json::{Value, json};

use super::reply::Reply;
use crate::config::Secret;

/// What the model is told. The reply's language is kept by instruction.
const SYSTEM: &str = "You rephrase short messages of a shop's chat assistant so they read \
    naturally and warmly. Keep the language, the meaning, every number and every link. \
    Answer with the rephrased message only.";

/// The longest answer taken (Telegram's message limit is 4096).
const MAX_CHARS: usize = 2000;

/// The largest chat-completions answer read: a misbehaving endpoint cannot
/// make a worker buffer more than this.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The rephrased text of a chat-completions answer (`choices[0].message
/// .content`, trimmed, at most [`MAX_CHARS`] characters), or why there is
/// none: not JSON, no such field, or only white space.
pub fn answer_text(body: &[u8]) -> Result<String, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not a JSON answer: {e}"))?;
    let out = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if out.is_empty() {
        return Err("an empty answer".into());
    }
    Ok(out.chars().take(MAX_CHARS).collect())
}

#[derive(Clone)]
pub struct Rephraser {
    http: reqwest::Client,
    url: url::Url,
    key: Option<Secret>,
    model: String,
    timeout: Duration,
}

impl Rephraser {
    /// From `[channels.llm]`; `None` when no URL is set.
    pub fn from_settings(s: &crate::config::LlmSettings) -> Option<Self> {
        let url = s.url.clone()?;
        Some(Self {
            http: super::net::client(s.timeout()),
            url,
            key: s.key.clone().filter(|k| !k.is_empty()),
            model: s.model.clone(),
            timeout: s.timeout(),
        })
    }

    /// `text` rephrased, or `None` (the caller keeps its own text).
    pub async fn rephrase(&self, text: &str) -> Option<String> {
        match tokio::time::timeout(self.timeout, self.ask(text)).await {
            Ok(Ok(t)) => Some(t),
            Ok(Err(why)) => {
                tracing::info!(
                    why,
                    "the phrasing model gave no text; the bot's own is sent"
                );
                None
            }
            Err(_) => {
                tracing::info!(timeout = ?self.timeout, "the phrasing model did not answer in time; the bot's own text is sent");
                None
            }
        }
    }

    async fn ask(&self, text: &str) -> Result<String, String> {
        let body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": text},
            ],
            "temperature": 0.3,
        });
        let mut req = self.http.post(self.url.clone()).json(&body);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k.expose());
        }
        let resp = req.send().await.map_err(|e| e.without_url().to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status().as_u16()));
        }
        let body = super::net::read_capped(resp, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        answer_text(&body)
    }

    /// Rephrases every plain-text reply in place.
    pub async fn rephrase_all(&self, replies: &mut [Reply]) {
        for r in replies.iter_mut() {
            if let Reply::Text { text, .. } = r
                && let Some(t) = self.rephrase(text).await
            {
                *text = t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_the_first_choice_trimmed_and_bounded() {
        let ok = json!({"choices": [{"message": {"role": "assistant", "content": "  Привет!  "}}]});
        assert_eq!(answer_text(ok.to_string().as_bytes()).unwrap(), "Привет!");
        let long = json!({"choices": [{"message": {"content": "я".repeat(5000)}}]});
        assert_eq!(
            answer_text(long.to_string().as_bytes())
                .unwrap()
                .chars()
                .count(),
            MAX_CHARS
        );
        for bad in [
            &b"<html>busy</html>"[..],
            br#"{"choices": []}"#,
            br#"{"choices": [{"message": {"content": "   "}}]}"#,
            br#"{"choices": [{"message": {"content": 7}}]}"#,
        ] {
            assert!(
                answer_text(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
