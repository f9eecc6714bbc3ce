//! The rule engine's admin API, behind the admin bearer token:
//!
//! - `GET /api/v1/crm/rules`, `POST` (create), `GET|PUT|DELETE
//!   /api/v1/crm/rules/{id}`;
//! - `POST /api/v1/crm/rules/import`: a TOML file of `[[rule]]` tables,
//!   each created or replaced by name;
//! - `POST /api/v1/crm/rules/dry-run`: `{"event_id": …}` (a stored Kommo
//!   event) or `{"form": "<a raw delivery body>"}`, evaluated against
//!   every rule, with per test the actual value, the expected one and
//!   pass or fail; nothing runs;
//! - `GET /api/v1/crm/rules/{id}/runs`, `GET /api/v1/crm/runs?event_id=…`;
//! - `GET /api/v1/crm/rules/metrics`: fired, failed and skipped runs per
//!   rule;
//! - `GET|POST /api/v1/crm/organisations`, `DELETE
//!   /api/v1/crm/organisations/{name}`.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{engine::RuleEngine, model::RuleSpec, store::RuleStore};
use crate::{
    crm::kommo::{Delivery, KommoEvent, NewOrganisation, Organisations, PROVIDER, form},
    error::ApiError,
    http::extract::{ApiJson, ApiQuery},
    inbox::Inbox,
};

#[derive(Clone)]
pub struct AdminApi {
    pub rules: RuleStore,
    pub engine: Arc<RuleEngine>,
    pub orgs: Organisations,
    pub inbox: Inbox,
}

pub fn router(api: AdminApi) -> Router {
    Router::new()
        .route("/api/v1/crm/rules", get(list).post(create))
        .route("/api/v1/crm/rules/import", post(import))
        .route("/api/v1/crm/rules/dry-run", post(dry_run))
        .route("/api/v1/crm/rules/metrics", get(metrics))
        .route(
            "/api/v1/crm/rules/{id}",
            get(get_one).put(replace).delete(remove),
        )
        .route("/api/v1/crm/rules/{id}/runs", get(rule_runs))
        .route("/api/v1/crm/runs", get(event_runs))
        .route("/api/v1/crm/organisations", get(list_orgs).post(add_org))
        .route("/api/v1/crm/organisations/{name}", delete(remove_org))
        .with_state(api)
}

fn checked(spec: RuleSpec) -> Result<RuleSpec, ApiError> {
    spec.validate().map_err(ApiError::Unprocessable)?;
    Ok(spec)
}

fn name_taken(name: &str) -> ApiError {
    ApiError::Conflict(format!("a rule named `{name}` exists already"))
}

async fn list(State(api): State<AdminApi>) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(json!({ "data": api.rules.list().await? })))
}

async fn create(
    State(api): State<AdminApi>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<(StatusCode, ApiJson<Value>), ApiError> {
    let spec = checked(spec)?;
    let rule = api
        .rules
        .create(&spec)
        .await?
        .ok_or_else(|| name_taken(&spec.name))?;
    Ok((StatusCode::CREATED, ApiJson(json!({ "data": rule }))))
}

async fn get_one(
    State(api): State<AdminApi>,
    Path(id): Path<String>,
) -> Result<ApiJson<Value>, ApiError> {
    let rule = api
        .rules
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("rule {id} not found")))?;
    Ok(ApiJson(json!({ "data": rule })))
}

async fn replace(
    State(api): State<AdminApi>,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<ApiJson<Value>, ApiError> {
    let spec = checked(spec)?;
    let rule = match api.rules.update(&id, &spec).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(ApiError::NotFound(format!("rule {id} not found"))),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(name_taken(&spec.name));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(ApiJson(json!({ "data": rule })))
}

async fn remove(
    State(api): State<AdminApi>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if api.rules.delete(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("rule {id} not found")))
    }
}

/// The body is the TOML text. Every rule is checked before any is stored.
async fn import(State(api): State<AdminApi>, body: Bytes) -> Result<ApiJson<Value>, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the rule file is not UTF-8".into()))?;
    let specs = super::model::parse_toml(text).map_err(ApiError::Unprocessable)?;
    let mut out = Vec::new();
    for spec in &specs {
        let (rule, created) = api.rules.upsert_by_name(spec).await?;
        out.push(json!({ "id": rule.id, "name": rule.spec.name, "created": created }));
    }
    Ok(ApiJson(json!({ "success": true, "data": out })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRun {
    event_id: Option<String>,
    form: Option<String>,
    /// The organisation a `form` is taken to come from.
    org: Option<String>,
}

async fn dry_run(
    State(api): State<AdminApi>,
    ApiJson(req): ApiJson<DryRun>,
) -> Result<ApiJson<Value>, ApiError> {
    let events: Vec<KommoEvent> =
        match (req.event_id, req.form) {
            (Some(id), None) => {
                let rec = api.inbox.get(&id).await?;
                if rec.provider != PROVIDER {
                    return Err(ApiError::Unprocessable(format!(
                        "event {id} is a `{}` event, not a Kommo one",
                        rec.provider
                    )));
                }
                vec![serde_json::from_str(&rec.payload).map_err(|e| {
                    ApiError::Unprocessable(format!("event {id} is unreadable: {e}"))
                })?]
            }
            (None, Some(body)) => {
                let tree = form::decode(body.as_bytes())
                    .map_err(|e| ApiError::Unprocessable(format!("malformed form body: {e}")))?;
                let org = req
                    .org
                    .unwrap_or_else(|| crate::crm::kommo::DEFAULT_ORG.into());
                KommoEvent::from_delivery(&org, &Delivery::from_tree(&tree))
            }
            _ => {
                return Err(ApiError::Unprocessable(
                    "give exactly one of `event_id` or `form`".into(),
                ));
            }
        };
    let mut out = Vec::new();
    for e in &events {
        let verdicts = api
            .engine
            .dry_run(e)
            .await
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        out.push(json!({
            "event_subtype": e.subtype,
            "entity_type": e.entity_type,
            "entity_id": e.entity_id,
            "rules": verdicts,
        }));
    }
    Ok(ApiJson(json!({ "data": out })))
}

async fn metrics(State(api): State<AdminApi>) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(json!({ "data": api.rules.metrics().await? })))
}

#[derive(Debug, Deserialize)]
struct RunParams {
    limit: Option<i64>,
    event_id: Option<String>,
}

async fn rule_runs(
    State(api): State<AdminApi>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<RunParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let limit = p.limit.unwrap_or(50).clamp(1, 500);
    let runs = api
        .rules
        .runs(Some(&id), p.event_id.as_deref(), limit)
        .await?;
    Ok(ApiJson(json!({ "data": runs })))
}

async fn event_runs(
    State(api): State<AdminApi>,
    ApiQuery(p): ApiQuery<RunParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let limit = p.limit.unwrap_or(50).clamp(1, 500);
    let runs = api.rules.runs(None, p.event_id.as_deref(), limit).await?;
    Ok(ApiJson(json!({ "data": runs })))
}

async fn list_orgs(State(api): State<AdminApi>) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(json!({
        "default_configured": api.orgs.has_default(),
        "data": api.orgs.list().await?,
    })))
}

async fn add_org(
    State(api): State<AdminApi>,
    ApiJson(o): ApiJson<NewOrganisation>,
) -> Result<StatusCode, ApiError> {
    if o.name.trim().is_empty() || o.name == crate::crm::kommo::DEFAULT_ORG {
        return Err(ApiError::Unprocessable(
            "an organisation needs a name other than `default`".into(),
        ));
    }
    if o.webhook_secret.expose().len() < 16 {
        return Err(ApiError::Unprocessable(
            "webhook_secret must be at least 16 characters".into(),
        ));
    }
    if api.orgs.add(&o).await? {
        Ok(StatusCode::CREATED)
    } else {
        Err(ApiError::Conflict(
            "that organisation name or secret is taken".into(),
        ))
    }
}

async fn remove_org(
    State(api): State<AdminApi>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if api.orgs.remove(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("organisation {name} not found")))
    }
}
