//! The Kommo API v4 calls the rule actions make: add a note, add a tag.
//!
//! Every call, from every action and event, waits its turn on one
//! `governor` limiter (GCRA, burst 1) set to `crm.kommo_rate_per_sec`, so
//! Vitrine stays within Kommo's 7 requests per second however many events
//! run at once. Tags are read, merged and written back, because a `PATCH`
//! of `_embedded.tags` replaces every tag of the entity.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use governor::{DefaultDirectRateLimiter, Quota};
use serde_json::{Value, json};

use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum KommoApiError {
    #[error("the Kommo API is not configured: set KOMMO_API_BASE_URL and KOMMO_API_TOKEN")]
    NotConfigured,
    #[error("Kommo API {what}: {source}")]
    Network {
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("Kommo API {what}: HTTP {status}")]
    Status { what: &'static str, status: u16 },
    #[error("Kommo API {what}: unexpected answer: {why}")]
    Answer { what: &'static str, why: String },
}

impl KommoApiError {
    /// Network trouble, 429 and 5xx may pass; other answers will not.
    pub fn is_transient(&self) -> bool {
        match self {
            KommoApiError::Network { .. } => true,
            KommoApiError::Status { status, .. } => *status == 429 || *status >= 500,
            KommoApiError::NotConfigured | KommoApiError::Answer { .. } => false,
        }
    }
}

#[derive(Clone)]
pub struct KommoApi {
    http: reqwest::Client,
    base: Option<url::Url>,
    token: Option<Secret>,
    limiter: Arc<DefaultDirectRateLimiter>,
}

/// The entity kinds the API takes notes and tags for, by the entity type
/// the events carry.
fn collection(entity_type: &str) -> Option<&'static str> {
    match entity_type {
        "lead" => Some("leads"),
        "contact" => Some("contacts"),
        "company" => Some("companies"),
        _ => None,
    }
}

impl KommoApi {
    pub fn new(
        http: reqwest::Client,
        base: Option<url::Url>,
        token: Option<Secret>,
        rate_per_sec: u32,
    ) -> Self {
        // Burst 1: calls are spaced by 1/rate, so no one-second window
        // holds more than `rate` of them.
        let period = Duration::from_secs(1) / rate_per_sec.max(1);
        let quota = Quota::with_period(period)
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::MIN);
        Self {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
            limiter: Arc::new(DefaultDirectRateLimiter::direct(quota)),
        }
    }

    fn target(&self, path: &str) -> Result<(url::Url, &str), KommoApiError> {
        let (Some(base), Some(token)) = (&self.base, &self.token) else {
            return Err(KommoApiError::NotConfigured);
        };
        let url = base.join(path).map_err(|e| KommoApiError::Answer {
            what: "URL",
            why: e.to_string(),
        })?;
        Ok((url, token.expose()))
    }

    async fn call(
        &self,
        what: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, KommoApiError> {
        let (url, token) = self.target(path)?;
        self.limiter.until_ready().await;
        let mut req = self.http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|source| KommoApiError::Network { what, source })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(KommoApiError::Status {
                what,
                status: status.as_u16(),
            });
        }
        let text = resp
            .text()
            .await
            .map_err(|source| KommoApiError::Network { what, source })?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| KommoApiError::Answer {
            what,
            why: e.to_string(),
        })
    }

    fn entity_path(entity_type: &str, id: &str) -> Result<String, KommoApiError> {
        let coll = collection(entity_type).ok_or_else(|| KommoApiError::Answer {
            what: "entity",
            why: format!(
                "notes and tags exist for leads, contacts and companies, not `{entity_type}`"
            ),
        })?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KommoApiError::Answer {
                what: "entity",
                why: format!("entity id `{id}` is not numeric"),
            });
        }
        Ok(format!("api/v4/{coll}/{id}"))
    }

    /// `POST /api/v4/{leads|contacts|companies}/{id}/notes`, a `common` note.
    /// Returns the new note's id when Kommo gives one.
    pub async fn add_note(
        &self,
        entity_type: &str,
        id: &str,
        text: &str,
    ) -> Result<Option<i64>, KommoApiError> {
        let path = format!("{}/notes", Self::entity_path(entity_type, id)?);
        let body = json!([{ "note_type": "common", "params": { "text": text } }]);
        let answer = self
            .call("note", reqwest::Method::POST, &path, Some(body))
            .await?;
        Ok(answer
            .pointer("/_embedded/notes/0/id")
            .and_then(Value::as_i64))
    }

    /// Reads the entity's tags, and unless `tag` is among them writes them
    /// all back with it. Returns whether it wrote.
    pub async fn add_tag(
        &self,
        entity_type: &str,
        id: &str,
        tag: &str,
    ) -> Result<bool, KommoApiError> {
        let path = Self::entity_path(entity_type, id)?;
        let current = self
            .call("tag read", reqwest::Method::GET, &path, None)
            .await?;
        let mut tags: Vec<Value> = current
            .pointer("/_embedded/tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            // Keep each by id when it has one (names may be renamed), else
            // by name.
            .map(|t| match (t.get("id"), t.get("name")) {
                (Some(id), _) if id.is_i64() => json!({ "id": id }),
                (_, Some(name)) => json!({ "name": name }),
                _ => t,
            })
            .collect();
        let has = current
            .pointer("/_embedded/tags")
            .and_then(Value::as_array)
            .is_some_and(|ts| {
                ts.iter()
                    .any(|t| t.get("name").and_then(Value::as_str) == Some(tag))
            });
        if has {
            return Ok(false);
        }
        tags.push(json!({ "name": tag }));
        self.call(
            "tag write",
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "_embedded": { "tags": tags } })),
        )
        .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    /// Burst 1 at 7/s: a call right after another must wait its turn.
    #[test]
    fn the_limiter_spaces_calls() {
        let api = KommoApi::new(client(), None, None, 7);
        assert!(api.limiter.check().is_ok());
        assert!(api.limiter.check().is_err());
    }

    #[tokio::test]
    async fn unconfigured_calls_fail_without_a_request() {
        let api = KommoApi::new(client(), None, None, 7);
        let e = api.add_note("lead", "1", "x").await.unwrap_err();
        assert!(matches!(e, KommoApiError::NotConfigured) && !e.is_transient());
        let base = Some("http://127.0.0.1:1/".parse().unwrap());
        let api = KommoApi::new(client(), base, Some(Secret::new("t")), 7);
        let e = api.add_tag("task", "1", "x").await.unwrap_err();
        assert!(
            e.to_string().contains("leads, contacts and companies"),
            "{e}"
        );
        let e = api.add_tag("lead", "1; DROP", "x").await.unwrap_err();
        assert!(e.to_string().contains("not numeric"), "{e}");
    }
}
