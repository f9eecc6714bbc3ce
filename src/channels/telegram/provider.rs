//! Telegram as a [`Provider`]: its webhook routes, the bots admin API (for
//! both messengers' stored bots), its inbox handler, its background tasks
//! (the webhook monitor, and the poller in polling mode) and its settings
//! section (`[telegram]`).

use std::{sync::Arc, time::Duration};

use axum::{Router, middleware, routing::post};

use super::{
    PROVIDER, bots::TelegramBots, handler::TelegramHandler, monitor::WebhookMonitor,
    polling::Poller, state::TelegramState, webhook,
};
use crate::{
    channels::{
        ChannelsShared, admin, conversation::ConversationStore, outbox::Outbox,
        phrasing::Rephraser, shop::Shop, throttle::SendThrottle,
    },
    config::TelegramMode,
    http::state::AdminState,
    inbox::EventHandler,
    provider::{Core, Provider},
};

pub struct Telegram {
    /// Started by [`Provider::background`] when the application runs.
    monitor: Option<WebhookMonitor>,
    poller: Option<Poller>,
    state: TelegramState,
    handler: Arc<TelegramHandler>,
    admin: admin::BotsAdmin,
    admin_auth: AdminState,
}

impl Telegram {
    /// Builds the provider; its background tasks start when the
    /// application runs ([`Provider::background`]).
    pub fn new(core: &Core, shared: &ChannelsShared) -> Self {
        let s = &core.settings.telegram;
        let bots = TelegramBots::from_settings(s).with_store(s, shared.store.clone());
        if bots.default_bot().is_none() && !shared.store.has_key() {
            tracing::info!(
                "no TELEGRAM_BOT_TOKEN and no VITRINE_SECRET_KEY: Telegram webhooks will be \
                 refused with 401"
            );
        }
        let monitor = (s.webhook_info_secs > 0).then(|| WebhookMonitor {
            bots: bots.clone(),
            health: core.health.clone(),
            interval: Duration::from_secs(s.webhook_info_secs),
            pending_threshold: s.pending_updates_threshold,
        });
        let poller = (s.mode == TelegramMode::Polling).then(|| {
            Poller::new(
                bots.clone(),
                core.inbox.clone(),
                core.wake.clone(),
                core.health.clone(),
                s.poll_timeout_secs,
            )
        });
        Self {
            monitor,
            poller,
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
                phrasing: Rephraser::from_settings(&core.settings.channels.llm),
                throttle: Arc::new(SendThrottle::new(
                    s.send_per_chat_per_sec,
                    s.send_per_bot_per_sec,
                )),
            }),
            admin: admin::BotsAdmin {
                store: shared.store.clone(),
            },
            admin_auth: AdminState {
                token: core.settings.server.admin_token.clone(),
                inbox: core.inbox.clone(),
                wake: core.wake.clone(),
                replay: crate::inbox::ReplayLimits::from_settings(&core.settings.replay),
            },
        }
    }
}

impl Provider for Telegram {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn router(&self) -> Router {
        let webhooks = Router::new()
            .route("/api/v1/webhooks/telegram", post(webhook::receive_default))
            .route("/api/v1/webhooks/telegram/{bot}", post(webhook::receive))
            .with_state(self.state.clone());
        let admin = admin::router(self.admin.clone()).route_layer(middleware::from_fn_with_state(
            self.admin_auth.clone(),
            crate::http::events::require_admin,
        ));
        webhooks.merge(admin)
    }

    fn handlers(&self) -> Vec<(&'static str, Arc<dyn EventHandler>)> {
        vec![(PROVIDER, self.handler.clone())]
    }

    fn background(
        &self,
        stop: tokio_util::sync::CancellationToken,
    ) -> Vec<futures::future::BoxFuture<'static, ()>> {
        let mut tasks: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
        if let Some(m) = &self.monitor {
            tasks.push(Box::pin(m.clone().run(stop.clone())));
        }
        if let Some(p) = &self.poller {
            tasks.push(Box::pin(p.clone().run(stop)));
        }
        tasks
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi as _;
        let mut doc = super::webhook::TelegramApi::openapi();
        doc.merge(admin::BotsApi::openapi());
        doc
    }

    fn status(&self) -> serde_json::Value {
        let default = self.state.bots.default_bot();
        serde_json::json!({
            "bots": self.state.bots.len(),
            "default_bot": default.map(|b| b.id.clone()),
            "secret_configured": default.is_some_and(|b| b.secret.is_some()),
            "stored_bots_key_configured": self.admin.store.has_key(),
        })
    }
}
