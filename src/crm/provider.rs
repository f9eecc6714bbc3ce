//! The CRM as a [`Provider`]: the Kommo receiver, the rule engine as the
//! `kommo` inbox handler, and its admin API; settings in `[crm]`.

use std::sync::Arc;

use axum::{Router, middleware, routing::post};

use super::{
    kommo::{Organisations, PROVIDER, receiver},
    rules::{RuleEngine, RuleStore, actions::ActionRunner, admin},
};
use crate::{
    http::state::AdminState,
    inbox::EventHandler,
    provider::{Core, Provider},
};

pub struct Crm {
    receiver: receiver::ReceiverState,
    admin: admin::AdminApi,
    admin_auth: AdminState,
    engine: Arc<RuleEngine>,
}

impl Crm {
    pub fn new(core: &Core) -> Self {
        let s = &core.settings.crm;
        let orgs = Organisations::new(core.db.clone(), s.kommo_webhook_secret.clone());
        let rules = RuleStore::new(core.db.clone());
        let engine = Arc::new(RuleEngine::new(
            rules.clone(),
            ActionRunner::from_settings(s),
        ));
        Self {
            receiver: receiver::ReceiverState {
                orgs: orgs.clone(),
                signature_secret: s.kommo_signature_secret.clone().filter(|k| !k.is_empty()),
                max_body_bytes: core.settings.server.max_body_bytes,
                inbox: core.inbox.clone(),
                wake: core.wake.clone(),
            },
            admin: admin::AdminApi {
                rules,
                engine: engine.clone(),
                orgs,
                inbox: core.inbox.clone(),
            },
            admin_auth: AdminState {
                token: core.settings.server.admin_token.clone(),
                inbox: core.inbox.clone(),
                wake: core.wake.clone(),
                replay: crate::inbox::ReplayLimits::from_settings(&core.settings.replay),
            },
            engine,
        }
    }
}

impl Provider for Crm {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn router(&self) -> Router {
        let webhook = Router::new()
            .route("/api/v1/webhooks/kommo/{secret}", post(receiver::receive))
            .with_state(self.receiver.clone());
        let admin = admin::router(self.admin.clone()).route_layer(middleware::from_fn_with_state(
            self.admin_auth.clone(),
            crate::http::events::require_admin,
        ));
        webhook.merge(admin)
    }

    fn handlers(&self) -> Vec<(&'static str, Arc<dyn EventHandler>)> {
        vec![(PROVIDER, self.engine.clone())]
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi as _;
        let mut doc = super::kommo::receiver::KommoApi::openapi();
        doc.merge(super::rules::admin::RulesApi::openapi());
        doc
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "default_secret_configured": self.receiver.orgs.has_default(),
            "signature_required": self.receiver.signature_secret.is_some(),
        })
    }
}
