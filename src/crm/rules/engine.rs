//! The inbox handler of Kommo events: runs every enabled rule whose
//! trigger matches the event's subtype.
//!
//! For each such rule: its conditions are evaluated ([`super::conditions`]);
//! if they hold, its actions run in order. Before an action runs, its
//! effect is looked up by (event, rule, action): one found means an earlier
//! try did it, and it is not done again. After it succeeds its effect is
//! stored. So a retried event (an action failed, the worker died, an
//! operator retried it) redoes only what is not done yet. The one gap is a
//! crash between an action's success and its effect's write: that action
//! may happen twice (at least once, as any outbound call without the
//! target's cooperation; webhooks carry a stable `webhook-id` for that).
//!
//! Every run is recorded (`fired`, `failed` with the error, or `skipped`
//! when the conditions do not hold), and counted in
//! `visual_search_crm_rule_runs_total{rule, outcome}`. A failed action fails the
//! try: transient errors retry on the inbox's schedule, permanent ones fail
//! the event with the reason.

use serde::Serialize;
use serde_json::Value;

use super::{
    actions::ActionRunner,
    conditions::{self, Explanation},
    model::trigger_matches,
    store::{Rule, RuleStore, RunOutcome},
};
use crate::{
    crm::kommo::KommoEvent,
    inbox::{EventHandler, EventRecord, HandlerError, Outcome},
};

pub struct RuleEngine {
    rules: RuleStore,
    actions: ActionRunner,
}

/// The dry run's account of one rule.
#[derive(Debug, Serialize)]
pub struct RuleVerdict {
    pub rule_id: String,
    pub name: String,
    pub enabled: bool,
    pub trigger_matches: bool,
    /// Whether it would fire: enabled, trigger matched, conditions held.
    pub would_fire: bool,
    pub conditions: Explanation,
}

fn db_error(e: sqlx::Error) -> HandlerError {
    HandlerError::transient("the rule store is unavailable").with_detail(e.to_string())
}

fn count(rule: &Rule, outcome: RunOutcome) {
    metrics::counter!(
        "visual_search_crm_rule_runs_total",
        "rule" => rule.spec.name.clone(),
        "outcome" => outcome.as_str()
    )
    .increment(1);
}

impl RuleEngine {
    pub fn new(rules: RuleStore, actions: ActionRunner) -> Self {
        Self { rules, actions }
    }

    /// Evaluates `event` against every rule, changing nothing.
    pub async fn dry_run(&self, event: &KommoEvent) -> Result<Vec<RuleVerdict>, HandlerError> {
        let ctx = conditions::context(event);
        let mut out = Vec::new();
        for rule in self.rules.list().await.map_err(db_error)? {
            let matches = rule
                .spec
                .triggers
                .iter()
                .any(|t| trigger_matches(t, &event.subtype));
            let explanation = conditions::explain(&rule.spec.conditions, &ctx)
                .map_err(|e| HandlerError::permanent(e.to_string()))?;
            out.push(RuleVerdict {
                would_fire: rule.spec.enabled && matches && explanation.pass(),
                rule_id: rule.id,
                name: rule.spec.name,
                enabled: rule.spec.enabled,
                trigger_matches: matches,
                conditions: explanation,
            });
        }
        Ok(out)
    }

    /// Runs one rule's actions that are not done yet.
    async fn fire(
        &self,
        rule: &Rule,
        event_id: &str,
        event: &KommoEvent,
        ctx: &Value,
    ) -> Result<(), HandlerError> {
        for (i, action) in rule.spec.actions.iter().enumerate() {
            if self
                .rules
                .effect(event_id, &rule.id, i)
                .await
                .map_err(db_error)?
                .is_some()
            {
                continue;
            }
            let message_id = format!("{event_id}.{}.{i}", rule.id);
            match self.actions.run(action, event, ctx, &message_id).await {
                Ok(effect) => self
                    .rules
                    .record_effect(event_id, &rule.id, i, &effect)
                    .await
                    .map_err(db_error)?,
                Err(e) => {
                    let message = format!(
                        "rule `{}` action {} ({}): {}",
                        rule.spec.name,
                        i + 1,
                        action.kind(),
                        e.message
                    );
                    return Err(if e.transient {
                        HandlerError::transient(message)
                    } else {
                        HandlerError::permanent(message)
                    });
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventHandler for RuleEngine {
    async fn handle(&self, record: &EventRecord) -> Result<Outcome, HandlerError> {
        let event: KommoEvent = serde_json::from_str(&record.payload).map_err(|e| {
            HandlerError::permanent("the stored Kommo event is unreadable")
                .with_detail(e.to_string())
        })?;
        let rules: Vec<Rule> = self
            .rules
            .enabled()
            .await
            .map_err(db_error)?
            .into_iter()
            .filter(|r| {
                r.spec
                    .triggers
                    .iter()
                    .any(|t| trigger_matches(t, &event.subtype))
            })
            .collect();
        if rules.is_empty() {
            return Ok(Outcome::skipped(format!(
                "no rule is triggered by {}",
                event.subtype
            )));
        }
        let ctx = conditions::context(&event);
        let (mut fired, mut skipped) = (Vec::new(), Vec::new());
        let mut first_error: Option<HandlerError> = None;
        for rule in &rules {
            let holds = conditions::holds(&rule.spec.conditions, &ctx);
            let (outcome, error) = match holds {
                Ok(false) => (RunOutcome::Skipped, None),
                Ok(true) => match self.fire(rule, &record.id, &event, &ctx).await {
                    Ok(()) => (RunOutcome::Fired, None),
                    Err(e) => (RunOutcome::Failed, Some(e)),
                },
                Err(e) => (
                    RunOutcome::Failed,
                    Some(HandlerError::permanent(e.to_string())),
                ),
            };
            self.rules
                .record_run(
                    &rule.id,
                    &record.id,
                    outcome,
                    error.as_ref().map(|e| e.message.as_str()),
                )
                .await
                .map_err(db_error)?;
            count(rule, outcome);
            match outcome {
                RunOutcome::Fired => fired.push(rule.spec.name.as_str()),
                RunOutcome::Skipped => skipped.push(rule.spec.name.as_str()),
                RunOutcome::Failed => {
                    // A transient error wins: retrying may then help the
                    // others too, and done actions are not redone.
                    let e = error.expect("a failed run has an error");
                    first_error = match first_error {
                        Some(prev) if prev.kind == crate::inbox::ErrorKind::Transient => Some(prev),
                        _ => Some(e),
                    };
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let detail = format!(
            "rules fired: [{}]; conditions not met: [{}]",
            fired.join(", "),
            skipped.join(", ")
        );
        Ok(if fired.is_empty() {
            Outcome::skipped(detail)
        } else {
            Outcome::applied(detail)
        })
    }
}
