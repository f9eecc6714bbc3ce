//! Telegram as a [`Provider`]: its webhook routes, its inbox handler and
//! its settings section (`[telegram]`).

use std::sync::Arc;

use axum::{Router, routing::post};

use super::{
    PROVIDER, bots::TelegramBots, handler::TelegramHandler, state::TelegramState, webhook,
};
use crate::{
    channels::{conversation::ConversationStore, outbox::Outbox, shop::Shop},
    inbox::EventHandler,
    provider::{Core, Provider},
};

pub struct Telegram {
    state: TelegramState,
    handler: Arc<TelegramHandler>,
}

impl Telegram {
    pub fn new(core: &Core) -> Self {
        let bots = TelegramBots::from_settings(&core.settings.telegram);
        if bots.is_empty() {
            tracing::info!("no TELEGRAM_BOT_TOKEN: Telegram webhooks will be refused with 401");
        }
        Self {
            state: TelegramState {
                bots: bots.clone(),
                inbox: core.inbox.clone(),
                wake: core.wake.clone(),
                max_body_bytes: core.settings.server.max_body_bytes,
            },
            handler: Arc::new(TelegramHandler {
                bots,
                shop: Shop::new(core),
                outbox: Outbox::new(core.db.clone()),
                conversations: ConversationStore::new(core.db.clone()),
            }),
        }
    }
}

impl Provider for Telegram {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/webhooks/telegram", post(webhook::receive_default))
            .route("/api/v1/webhooks/telegram/{bot}", post(webhook::receive))
            .with_state(self.state.clone())
    }

    fn handlers(&self) -> Vec<(&'static str, Arc<dyn EventHandler>)> {
        vec![(PROVIDER, self.handler.clone())]
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <super::webhook::TelegramApi as utoipa::OpenApi>::openapi()
    }

    fn status(&self) -> serde_json::Value {
        let default = self.state.bots.default_bot();
        serde_json::json!({
            "bots": self.state.bots.len(),
            "default_bot": default.map(|b| b.id.clone()),
            "secret_configured": default.is_some_and(|b| b.secret.is_some()),
        })
    }
}
