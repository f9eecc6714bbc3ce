//! The rule tables: `crm_rules` (the rules), `crm_rule_runs` (every run),
//! `crm_action_effects` (what each action did, once per event, rule and
//! action).

use serde::Serialize;
use serde_json::Value;

use super::model::{ActionSpec, Condition, RuleSpec};
use crate::db::{Db, now_ms};

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub id: String,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: String,
    name: String,
    enabled: i64,
    triggers: String,
    conditions: String,
    actions: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<RuleRow> for Rule {
    type Error = sqlx::Error;
    fn try_from(r: RuleRow) -> Result<Self, Self::Error> {
        let bad = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
        Ok(Rule {
            id: r.id,
            spec: RuleSpec {
                name: r.name,
                enabled: r.enabled != 0,
                triggers: serde_json::from_str(&r.triggers).map_err(bad)?,
                conditions: serde_json::from_str::<Condition>(&r.conditions).map_err(bad)?,
                actions: serde_json::from_str::<Vec<ActionSpec>>(&r.actions).map_err(bad)?,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// How a run of a rule on an event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    /// Its conditions held and every action was done (now or on an
    /// earlier try).
    Fired,
    /// An action failed; the error says which and why.
    Failed,
    /// Its trigger matched but its conditions did not hold.
    Skipped,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Fired => "fired",
            RunOutcome::Failed => "failed",
            RunOutcome::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Run {
    pub id: String,
    pub rule_id: String,
    pub event_id: String,
    pub outcome: String,
    pub error: Option<String>,
    pub created_at: i64,
}

/// Per-rule counts of runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleMetrics {
    pub rule_id: String,
    pub name: String,
    pub fired: i64,
    pub failed: i64,
    pub skipped: i64,
}

#[derive(Debug, Clone)]
pub struct RuleStore {
    db: Db,
}

/// The columns of [`RuleRow`], as a macro so queries stay `&'static str`.
macro_rules! rule_columns {
    () => {
        "id, name, enabled, triggers, conditions, actions, created_at, updated_at"
    };
}

fn json(v: &impl Serialize) -> String {
    serde_json::to_string(v).expect("rule parts serialise")
}

impl RuleStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn list(&self) -> Result<Vec<Rule>, sqlx::Error> {
        let rows: Vec<RuleRow> = sqlx::query_as(concat!(
            "SELECT ",
            rule_columns!(),
            " FROM crm_rules ORDER BY name"
        ))
        .fetch_all(self.db.reader())
        .await?;
        rows.into_iter().map(Rule::try_from).collect()
    }

    /// The enabled rules, for the engine (triggers are matched in Rust:
    /// aliases and `*` are not plain equality).
    pub async fn enabled(&self) -> Result<Vec<Rule>, sqlx::Error> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|r| r.spec.enabled)
            .collect())
    }

    pub async fn get(&self, id: &str) -> Result<Option<Rule>, sqlx::Error> {
        let row: Option<RuleRow> = sqlx::query_as(concat!(
            "SELECT ",
            rule_columns!(),
            " FROM crm_rules WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?;
        row.map(Rule::try_from).transpose()
    }

    /// Creates a rule; `None` when its name is taken.
    pub async fn create(&self, spec: &RuleSpec) -> Result<Option<Rule>, sqlx::Error> {
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let r = sqlx::query(
            "INSERT INTO crm_rules (id, name, enabled, triggers, conditions, actions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(&spec.name)
        .bind(i64::from(spec.enabled))
        .bind(json(&spec.triggers))
        .bind(json(&spec.conditions))
        .bind(json(&spec.actions))
        .bind(now)
        .execute(self.db.writer())
        .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        self.get(&id).await
    }

    /// Replaces a rule's spec; `Ok(None)` when it does not exist, an error
    /// (unique violation) when the new name is another rule's.
    pub async fn update(&self, id: &str, spec: &RuleSpec) -> Result<Option<Rule>, sqlx::Error> {
        let r = sqlx::query(
            "UPDATE crm_rules SET name = $2, enabled = $3, triggers = $4, conditions = $5, \
             actions = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(&spec.name)
        .bind(i64::from(spec.enabled))
        .bind(json(&spec.triggers))
        .bind(json(&spec.conditions))
        .bind(json(&spec.actions))
        .bind(now_ms())
        .execute(self.db.writer())
        .await?;
        if r.rows_affected() == 0 {
            return Ok(None);
        }
        self.get(id).await
    }

    /// Creates the rule, or replaces the one of the same name (TOML import).
    /// Returns it and whether it was new.
    pub async fn upsert_by_name(&self, spec: &RuleSpec) -> Result<(Rule, bool), sqlx::Error> {
        if let Some(r) = self.create(spec).await? {
            return Ok((r, true));
        }
        let id: String = sqlx::query_scalar("SELECT id FROM crm_rules WHERE name = $1")
            .bind(&spec.name)
            .fetch_one(self.db.reader())
            .await?;
        let r = self
            .update(&id, spec)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        Ok((r, false))
    }

    pub async fn delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let r = sqlx::query("DELETE FROM crm_rules WHERE id = $1")
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn record_run(
        &self,
        rule_id: &str,
        event_id: &str,
        outcome: RunOutcome,
        error: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let _turn = self.db.background_turn().await;
        sqlx::query(
            "INSERT INTO crm_rule_runs (id, rule_id, event_id, outcome, error, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(rule_id)
        .bind(event_id)
        .bind(outcome.as_str())
        .bind(error)
        .bind(now_ms())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// The runs of a rule, newest first, or of an event.
    pub async fn runs(
        &self,
        rule_id: Option<&str>,
        event_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Run>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, rule_id, event_id, outcome, error, created_at FROM crm_rule_runs \
             WHERE ($1 IS NULL OR rule_id = $1) AND ($2 IS NULL OR event_id = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3",
        )
        .bind(rule_id)
        .bind(event_id)
        .bind(limit)
        .fetch_all(self.db.reader())
        .await
    }

    /// Fired, failed and skipped runs of every rule.
    pub async fn metrics(&self) -> Result<Vec<RuleMetrics>, sqlx::Error> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT r.id, r.name, u.outcome, COUNT(*) FROM crm_rules r \
             JOIN crm_rule_runs u ON u.rule_id = r.id GROUP BY r.id, r.name, u.outcome",
        )
        .fetch_all(self.db.reader())
        .await?;
        let mut out: Vec<RuleMetrics> = self
            .list()
            .await?
            .into_iter()
            .map(|r| RuleMetrics {
                rule_id: r.id,
                name: r.spec.name,
                ..Default::default()
            })
            .collect();
        for (id, _, outcome, n) in rows {
            if let Some(m) = out.iter_mut().find(|m| m.rule_id == id) {
                match outcome.as_str() {
                    "fired" => m.fired = n,
                    "failed" => m.failed = n,
                    _ => m.skipped = n,
                }
            }
        }
        Ok(out)
    }

    /// What the action did for this event, if it was done already.
    pub async fn effect(
        &self,
        event_id: &str,
        rule_id: &str,
        action: usize,
    ) -> Result<Option<Value>, sqlx::Error> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT effect FROM crm_action_effects \
             WHERE event_id = $1 AND rule_id = $2 AND action_index = $3",
        )
        .bind(event_id)
        .bind(rule_id)
        .bind(action as i64)
        .fetch_optional(self.db.reader())
        .await?;
        Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t))))
    }

    pub async fn record_effect(
        &self,
        event_id: &str,
        rule_id: &str,
        action: usize,
        effect: &Value,
    ) -> Result<(), sqlx::Error> {
        let _turn = self.db.background_turn().await;
        sqlx::query(
            "INSERT INTO crm_action_effects (event_id, rule_id, action_index, effect, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(event_id)
        .bind(rule_id)
        .bind(action as i64)
        .bind(effect.to_string())
        .bind(now_ms())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }
}
