//! The WhatsApp numbers this instance answers for: the default number from
//! `WHATSAPP_PHONE_NUMBER_ID` / `WHATSAPP_ACCESS_TOKEN` /
//! `WHATSAPP_VERIFY_TOKEN`, each with its client.

use std::sync::Arc;

use super::api::GraphApi;
use crate::{channels::secret_eq, config::Secret};

pub struct WhatsappNumber {
    pub phone_number_id: String,
    pub verify_token: Option<Secret>,
    pub api: GraphApi,
}

#[derive(Clone, Default)]
pub struct WhatsappNumbers {
    numbers: Arc<Vec<Arc<WhatsappNumber>>>,
    /// The app's verify token when no number has one of its own.
    verify_token: Option<Secret>,
}

impl WhatsappNumbers {
    pub fn from_settings(s: &crate::config::WhatsappSettings, max_media_bytes: usize) -> Self {
        let verify_token = s.verify_token.clone().filter(|t| !t.is_empty());
        let default = match (&s.phone_number_id, &s.access_token) {
            (Some(id), Some(token)) if !id.trim().is_empty() && !token.is_empty() => {
                Some(Arc::new(WhatsappNumber {
                    phone_number_id: id.trim().to_string(),
                    verify_token: verify_token.clone(),
                    api: GraphApi::new(&s.graph_base_url, token.clone(), max_media_bytes),
                }))
            }
            _ => None,
        };
        Self {
            numbers: Arc::new(default.into_iter().collect()),
            verify_token,
        }
    }

    pub fn by_id(&self, phone_number_id: &str) -> Option<&Arc<WhatsappNumber>> {
        self.numbers
            .iter()
            .find(|n| n.phone_number_id == phone_number_id)
    }

    /// Whether `given` is a configured verify token (constant time, every
    /// token compared).
    pub fn verify_token_matches(&self, given: &str) -> bool {
        let mut ok = false;
        for t in self
            .numbers
            .iter()
            .filter_map(|n| n.verify_token.as_ref())
            .chain(self.verify_token.as_ref())
        {
            ok |= secret_eq(t.expose(), given);
        }
        ok
    }

    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }
}
