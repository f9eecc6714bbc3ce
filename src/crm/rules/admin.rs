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
use crate::http::schemas::ErrorBody;
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

#[utoipa::path(get, path = "/api/v1/crm/rules", tag = "crm",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every rule", body = RuleList),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
async fn list(State(api): State<AdminApi>) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(json!({ "data": api.rules.list().await? })))
}

#[utoipa::path(post, path = "/api/v1/crm/rules", tag = "crm",
    request_body(content = RuleDoc, description = "A rule: triggers, conditions and actions"),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Created", body = RuleOne),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "A rule of that name exists", body = ErrorBody),
        (status = 422, description = "An invalid rule (unknown trigger, operator or action field), with the reason", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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

#[utoipa::path(get, path = "/api/v1/crm/rules/{id}", tag = "crm",
    params(("id" = String, Path, description = "The rule's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The rule", body = RuleOne),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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

#[utoipa::path(put, path = "/api/v1/crm/rules/{id}", tag = "crm",
    params(("id" = String, Path, description = "The rule's id")),
    request_body(content = RuleDoc, description = "A rule: triggers, conditions and actions"),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Replaced", body = RuleOne),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 409, description = "Another rule has that name", body = ErrorBody),
        (status = 422, description = "An invalid rule (unknown trigger, operator or action field), with the reason", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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

#[utoipa::path(delete, path = "/api/v1/crm/rules/{id}", tag = "crm",
    params(("id" = String, Path, description = "The rule's id")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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
#[utoipa::path(post, path = "/api/v1/crm/rules/import", tag = "crm",
    request_body(content = String, content_type = "text/plain", description = "A TOML file of `[[rule]]` tables (any content type is read as TOML text); each rule is created, or replaced by name", example = json!("[[rule]]\nname = \"won\"\ntrigger = \"stage_changed\"\nconditions = { field = \"status_id\", op = \"==\", value = 142 }\nactions = [{ type = \"telegram\", chat_id = -100123, text = \"Won: {name}\" }]\n")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The rules stored, with whether each was new", body = ImportResult),
        (status = 400, description = "Not UTF-8", body = ErrorBody),
        (status = 422, description = "Not valid TOML, or an invalid rule; nothing is stored", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"form": "leads[status][0][id]=1&leads[status][0][status_id]=142&account[subdomain]=acme"}))]
struct DryRun {
    /// A stored Kommo event's id.
    event_id: Option<String>,
    form: Option<String>,
    /// The organisation a `form` is taken to come from.
    org: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/crm/rules/dry-run", tag = "crm",
    request_body = DryRun,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Per event, per rule: whether it would fire, and per test the actual value, the expected one and pass or fail", body = DryRunResult),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 422, description = "Neither or both of `event_id` and `form`, a malformed form, or an event that is not Kommo's", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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

#[utoipa::path(get, path = "/api/v1/crm/rules/metrics", tag = "crm",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Fired, failed and skipped runs per rule", body = DataList),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
async fn metrics(State(api): State<AdminApi>) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(json!({ "data": api.rules.metrics().await? })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RunParams {
    /// 1 to 500; default 50.
    limit: Option<i64>,
    event_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/crm/rules/{id}/runs", tag = "crm",
    params(("id" = String, Path, description = "The rule's id"), RunParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The rule's runs, newest first", body = DataList),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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

#[utoipa::path(get, path = "/api/v1/crm/runs", tag = "crm",
    params(RunParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Runs of every rule (of one event with `event_id`), newest first", body = DataList),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
async fn event_runs(
    State(api): State<AdminApi>,
    ApiQuery(p): ApiQuery<RunParams>,
) -> Result<ApiJson<Value>, ApiError> {
    let limit = p.limit.unwrap_or(50).clamp(1, 500);
    let runs = api.rules.runs(None, p.event_id.as_deref(), limit).await?;
    Ok(ApiJson(json!({ "data": runs })))
}

#[utoipa::path(get, path = "/api/v1/crm/organisations", tag = "crm",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The stored organisations (never their secrets), and whether the default one has a secret", body = OrgList),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
async fn list_orgs(State(api): State<AdminApi>) -> Result<ApiJson<Value>, ApiError> {
    Ok(ApiJson(json!({
        "default_configured": api.orgs.has_default(),
        "data": api.orgs.list().await?,
    })))
}

#[utoipa::path(post, path = "/api/v1/crm/organisations", tag = "crm",
    request_body = OrgDoc,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Stored"),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "That name or secret is taken", body = ErrorBody),
        (status = 422, description = "No name, the name `default`, or a secret under 16 characters", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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

#[utoipa::path(delete, path = "/api/v1/crm/organisations/{name}", tag = "crm",
    params(("name" = String, Path, description = "The organisation's name")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such organisation", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "No admin token configured", body = ErrorBody),
    ))]
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

/// The rule admin API's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, create, get_one, replace, remove, import, dry_run, metrics, rule_runs,
        event_runs, list_orgs, add_org, remove_org),
    components(schemas(ErrorBody, RuleDoc, DryRun)),
    tags((name = "crm", description = "Admin: Kommo automation rules, their runs, and the organisations"))
)]
pub struct RulesApi;

/// A rule as the API takes it (documentation only).
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"name": "won to sales chat", "enabled": true,
    "triggers": ["stage_changed"],
    "conditions": {"all": [{"field": "pipeline_id", "op": "==", "value": 7},
        {"field": "status_id", "op": "in", "value": [142, 143]},
        {"custom_field": "Benefit", "op": ">=", "value": 1000}]},
    "actions": [{"type": "telegram", "chat_id": -1001234567890_i64, "text": "Lead {name} won: {price}"},
        {"type": "webhook", "url": "https://hooks.example.com/won", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        {"type": "kommo_note", "text": "Vitrine: {event.org}"},
        {"type": "kommo_tag", "tag": "won"}]}))]
#[allow(dead_code)]
struct RuleDoc {
    /// Unique.
    name: String,
    /// Default true.
    enabled: Option<bool>,
    /// Event subtypes (`lead_status_changed`, `contact_created`, …), the
    /// aliases `stage_changed` and `message_received`, or `*`. `trigger`
    /// with one string is accepted too.
    triggers: Vec<String>,
    /// `{"all": […]}`, `{"any": […]}` or one test
    /// `{"field"|"custom_field", "op": "=="|"!="|"<"|"<="|">"|">="|"in", "value"}`.
    #[schema(value_type = Option<Object>)]
    conditions: Option<Value>,
    /// In order: `telegram` (`chat_id`, `text`), `webhook` (`url`,
    /// `secret`), `kommo_note` (`text`), `kommo_tag` (`tag`). Texts are
    /// templates of the event's fields.
    #[schema(value_type = Vec<Object>)]
    actions: Vec<Value>,
}

/// `{"data": <rule>}`: the rule with its `id` and times.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct RuleOne {
    #[schema(value_type = Object)]
    data: Value,
}

/// `{"data": [<rule>…]}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct RuleList {
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
}

/// `{"data": […]}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct DataList {
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
}

#[derive(utoipa::ToSchema)]
#[schema(example = json!({"success": true, "data": [{"id": "0193…", "name": "won", "created": true}]}))]
#[allow(dead_code)]
struct ImportResult {
    success: bool,
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
}

#[derive(utoipa::ToSchema)]
#[schema(example = json!({"data": [{"event_subtype": "lead_status_changed", "entity_type": "lead",
    "entity_id": "1", "rules": [{"rule_id": "0193…", "name": "won", "enabled": true,
    "trigger_matches": true, "would_fire": true,
    "conditions": {"group": "all", "pass": true, "items": [
        {"field": "status_id", "op": "==", "expected": 142, "actual": 142, "pass": true}]}}]}]}))]
#[allow(dead_code)]
struct DryRunResult {
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct OrgList {
    /// Whether `KOMMO_WEBHOOK_SECRET` (the `default` organisation) is set.
    default_configured: bool,
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
}

/// A Kommo account's organisation: its URL secret and, optionally, the
/// account it must be.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"name": "acme", "webhook_secret": "k7Qe2mVbX9pLr4Tz", "subdomain": "acme", "account_id": "31234567"}))]
#[allow(dead_code)]
struct OrgDoc {
    name: String,
    /// At least 16 characters; the last path segment of its webhook URL.
    webhook_secret: String,
    subdomain: Option<String>,
    account_id: Option<String>,
}
