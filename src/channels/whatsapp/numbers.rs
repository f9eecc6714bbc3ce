//! The WhatsApp numbers this instance answers for: the default number from
//! `WHATSAPP_PHONE_NUMBER_ID` / `WHATSAPP_ACCESS_TOKEN` /
//! `WHATSAPP_VERIFY_TOKEN`, and the numbers stored in the database
//! ([`crate::channels::bots_store`]), each with its client.

use std::sync::Arc;

use super::api::GraphApi;
use crate::{
    channels::{
        bots_store::{BotKind, BotStore, Directory},
        secret_eq,
    },
    config::Secret,
};

pub struct WhatsappNumber {
    pub phone_number_id: String,
    pub verify_token: Option<Secret>,
    pub api: GraphApi,
}

#[derive(Clone, Default)]
pub struct WhatsappNumbers {
    default: Option<Arc<WhatsappNumber>>,
    stored: Option<Directory<WhatsappNumber>>,
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
            default,
            stored: None,
            verify_token,
        }
    }

    /// Also the enabled numbers of `store`, with clients at the settings'
    /// Graph API base.
    pub fn with_store(
        mut self,
        s: &crate::config::WhatsappSettings,
        max_media_bytes: usize,
        store: BotStore,
    ) -> Self {
        let base = s.graph_base_url.clone();
        self.stored = Some(Directory::new(store, BotKind::Whatsapp, move |b| {
            Some(WhatsappNumber {
                api: GraphApi::new(&base, b.token, max_media_bytes),
                phone_number_id: b.info.external_id,
                verify_token: b.secret,
            })
        }));
        self
    }

    /// The number with this `phone_number_id`: the default one, or an
    /// enabled stored one.
    pub async fn by_id(&self, phone_number_id: &str) -> Option<Arc<WhatsappNumber>> {
        if let Some(n) = self
            .default
            .as_ref()
            .filter(|n| n.phone_number_id == phone_number_id)
        {
            return Some(n.clone());
        }
        match &self.stored {
            Some(d) => d.find(|n| n.phone_number_id == phone_number_id).await,
            None => None,
        }
    }

    /// Whether `given` is a configured verify token (constant time, every
    /// token compared): the app's, or an enabled number's.
    pub async fn verify_token_matches(&self, given: &str) -> bool {
        let stored = match &self.stored {
            Some(d) => d.current().await,
            None => Arc::default(),
        };
        let mut ok = false;
        for t in self
            .default
            .iter()
            .chain(stored.iter())
            .filter_map(|n| n.verify_token.as_ref())
            .chain(self.verify_token.as_ref())
        {
            ok |= secret_eq(t.expose(), given);
        }
        ok
    }

    /// Whether `phone_number_id` is a stored number that is disabled: its
    /// deliveries are refused.
    pub async fn is_disabled(&self, phone_number_id: &str) -> bool {
        match &self.stored {
            Some(d) => d.is_disabled(phone_number_id).await,
            None => false,
        }
    }

    /// How many numbers, as last loaded.
    pub fn len(&self) -> usize {
        usize::from(self.default.is_some()) + self.stored.as_ref().map_or(0, |d| d.cached().len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
