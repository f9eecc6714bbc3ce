//! WhatsApp as a [`Provider`]: its webhook routes, its inbox handler and
//! its settings section (`[whatsapp]`).

use std::sync::Arc;

use axum::{Router, routing::get};

use super::{
    PROVIDER, handler::WhatsappHandler, numbers::WhatsappNumbers, state::WhatsappState, webhook,
};
use crate::{
    channels::{ChannelsShared, conversation::ConversationStore, outbox::Outbox, shop::Shop},
    inbox::EventHandler,
    provider::{Core, Provider},
};

pub struct Whatsapp {
    state: WhatsappState,
    handler: Arc<WhatsappHandler>,
}

impl Whatsapp {
    pub fn new(core: &Core, shared: &ChannelsShared) -> Self {
        let s = &core.settings.whatsapp;
        let max = core.settings.fetch.max_bytes;
        let numbers =
            WhatsappNumbers::from_settings(s, max).with_store(s, max, shared.store.clone());
        Self {
            state: WhatsappState {
                numbers: numbers.clone(),
                app_secret: s.app_secret.clone().filter(|s| !s.is_empty()),
                inbox: core.inbox.clone(),
                wake: core.wake.clone(),
                max_body_bytes: core.settings.server.max_body_bytes,
            },
            handler: Arc::new(WhatsappHandler {
                numbers,
                shop: Shop::new(core),
                outbox: Outbox::new(core.db.clone()),
                conversations: ConversationStore::new(core.db.clone()),
                phrasing: crate::channels::phrasing::Rephraser::from_settings(
                    &core.settings.channels.llm,
                ),
                throttle: Arc::new(crate::channels::throttle::SendThrottle::per_sender(
                    s.send_per_number_per_sec,
                )),
            }),
        }
    }
}

impl Provider for Whatsapp {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn router(&self) -> Router {
        Router::new()
            .route(
                "/api/v1/webhooks/whatsapp",
                get(webhook::handshake).post(webhook::receive),
            )
            .with_state(self.state.clone())
    }

    fn handlers(&self) -> Vec<(&'static str, Arc<dyn EventHandler>)> {
        vec![(PROVIDER, self.handler.clone())]
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <super::webhook::WhatsappApi as utoipa::OpenApi>::openapi()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "numbers": self.state.numbers.len(),
            "secret_configured": self.state.app_secret.is_some(),
        })
    }
}
