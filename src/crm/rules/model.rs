//! A rule as data: a trigger, conditions and actions ([`RuleSpec`]), as
//! the admin API and the TOML import take it, and how it is checked before
//! it is stored ([`RuleSpec::validate`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an admin writes: the rule without its id and times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Event subtypes (`lead_status_changed`, `contact_created`, …) or
    /// their aliases (see [`trigger_matches`]); `*` is every event.
    #[serde(alias = "trigger", deserialize_with = "one_or_many")]
    pub triggers: Vec<String>,
    #[serde(default)]
    pub conditions: Condition,
    pub actions: Vec<ActionSpec>,
}

fn yes() -> bool {
    true
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The trigger aliases: `stage_changed` is a lead's status change, and
/// `message_received` any message (Kommo's `message_sent` included, as the
/// issue asks).
pub fn trigger_matches(trigger: &str, subtype: &str) -> bool {
    match trigger {
        "*" => true,
        "stage_changed" => subtype == "lead_status_changed",
        "message_received" => matches!(subtype, "message_received" | "message_sent"),
        t => t == subtype,
    }
}

/// A condition tree: every one of `all`, any one of `any`, or a test of one
/// field. No conditions (`all = []`) always holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Condition {
    All { all: Vec<Condition> },
    Any { any: Vec<Condition> },
    Test(Test),
}

impl Default for Condition {
    fn default() -> Self {
        Condition::All { all: Vec::new() }
    }
}

/// One test: a field of the event (`status_id`, `pipeline_id`, `price`,
/// `responsible_user_id`, any field Kommo sent, `event.org`, …) or a
/// custom field by id or by name, compared with a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A custom field's id (`"1118164"`) or name (`"Benefit"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_field: Option<String>,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "in")]
    In,
}

impl Op {
    /// The JSONLogic operator.
    pub fn logic(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
        }
    }
}

/// What a rule does when it fires, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    /// `sendMessage` through the configured bot; `text` is a template of
    /// the event's fields (`{name}`, `{status_id}`, `{event.org}`, …).
    Telegram { chat_id: Value, text: String },
    /// POSTs the event as JSON to `url`, signed with the Standard Webhooks
    /// headers when a `whsec_…` secret is given.
    Webhook {
        url: url::Url,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// Adds a `common` note (a template) to the event's lead, contact or
    /// company through the Kommo API v4.
    KommoNote { text: String },
    /// Adds a tag to the event's lead, contact or company (read, merge,
    /// write).
    KommoTag { tag: String },
}

impl ActionSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::Telegram { .. } => "telegram",
            ActionSpec::Webhook { .. } => "webhook",
            ActionSpec::KommoNote { .. } => "kommo_note",
            ActionSpec::KommoTag { .. } => "kommo_tag",
        }
    }
}

/// A TOML file of rules: `[[rule]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
}

pub fn parse_toml(text: &str) -> Result<Vec<RuleSpec>, String> {
    let f: RuleFile = toml::from_str(text).map_err(|e| e.to_string())?;
    for r in &f.rule {
        r.validate()
            .map_err(|e| format!("rule `{}`: {e}", r.name))?;
    }
    Ok(f.rule)
}

impl RuleSpec {
    /// What the database's JSON columns cannot check: a name, a trigger,
    /// at least one action, well-formed tests and templates, whsec_
    /// secrets.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("a rule needs a name of 1 to 200 characters".into());
        }
        if self.triggers.is_empty() || self.triggers.iter().any(|t| t.trim().is_empty()) {
            return Err("a rule needs at least one trigger (an event subtype)".into());
        }
        if self.actions.is_empty() {
            return Err("a rule needs at least one action".into());
        }
        validate_condition(&self.conditions, 0)?;
        for a in &self.actions {
            match a {
                ActionSpec::Telegram { chat_id, text } => {
                    if !(chat_id.is_i64() || chat_id.as_str().is_some_and(|s| !s.is_empty())) {
                        return Err("telegram: chat_id must be a number or an @channel name".into());
                    }
                    super::template::check(text).map_err(|e| format!("telegram: {e}"))?;
                }
                ActionSpec::Webhook { url, secret } => {
                    if !matches!(url.scheme(), "http" | "https") {
                        return Err("webhook: url must be http(s)".into());
                    }
                    if let Some(s) = secret {
                        crate::http::signature::standard_webhooks_sign(s, "x", 0, b"")
                            .map_err(|_| "webhook: secret must be whsec_<base64>".to_string())?;
                    }
                }
                ActionSpec::KommoNote { text } => {
                    super::template::check(text).map_err(|e| format!("kommo_note: {e}"))?;
                }
                ActionSpec::KommoTag { tag } => {
                    if tag.trim().is_empty() {
                        return Err("kommo_tag: tag must not be empty".into());
                    }
                }
            }
        }
        Ok(())
    }
}

fn validate_condition(c: &Condition, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err("conditions nest deeper than 16 levels".into());
    }
    match c {
        Condition::All { all: list } | Condition::Any { any: list } => list
            .iter()
            .try_for_each(|c| validate_condition(c, depth + 1)),
        Condition::Test(t) => {
            match (&t.field, &t.custom_field) {
                (Some(f), None) if !f.is_empty() => {}
                (None, Some(cf)) if !cf.is_empty() && !cf.contains('.') => {}
                (None, Some(_)) => {
                    return Err(
                        "custom_field names with a `.` cannot be addressed; use the field's id"
                            .into(),
                    );
                }
                _ => return Err("a test names exactly one of `field` or `custom_field`".into()),
            }
            if t.op == Op::In && !t.value.is_array() {
                return Err("`in` takes a list of values".into());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[[rule]]
name = "won deals to the sales chat"
trigger = "stage_changed"
conditions = { all = [
  { field = "status_id", op = "in", value = [142, 143] },
  { any = [ { field = "price", op = ">=", value = 1000 }, { custom_field = "Benefit", op = "==", value = "1000" } ] },
] }
actions = [
  { type = "telegram", chat_id = -100123, text = "Lead {name} won ({price})" },
  { type = "kommo_tag", tag = "won" },
]

[[rule]]
name = "messages out"
triggers = ["message_received"]
actions = [{ type = "webhook", url = "https://example.com/hook", secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }]
"#;

    #[test]
    fn a_toml_file_of_rules_parses() {
        let rules = parse_toml(TOML).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].triggers, ["stage_changed"]);
        assert!(rules[0].enabled);
        let Condition::All { all } = &rules[0].conditions else {
            panic!("{:?}", rules[0].conditions)
        };
        assert_eq!(all.len(), 2);
        assert!(matches!(&all[1], Condition::Any { any } if any.len() == 2));
        assert_eq!(
            rules[0].actions[1],
            ActionSpec::KommoTag { tag: "won".into() }
        );
        assert_eq!(rules[1].conditions, Condition::default());
    }

    #[test]
    fn invalid_rules_are_refused_with_a_reason() {
        let bad = |patch: &str| {
            let text = format!("[[rule]]\nname = \"r\"\n{patch}");
            parse_toml(&text).unwrap_err()
        };
        assert!(bad("trigger = \"x\"\nactions = []").contains("at least one action"));
        assert!(
            bad("trigger = \"x\"\nactions = [{ type = \"webhook\", url = \"https://a/\", secret = \"nope!\" }]")
                .contains("whsec_")
        );
        assert!(
            bad("trigger = \"x\"\nconditions = { field = \"a\", op = \"in\", value = 1 }\nactions = [{ type = \"kommo_tag\", tag = \"t\" }]")
                .contains("list")
        );
        assert!(
            bad("trigger = \"x\"\nactions = [{ type = \"telegram\", chat_id = 1, text = \"{unclosed\" }]")
                .contains("telegram")
        );
        assert!(bad("trigger = \"x\"\nactions = [{ type = \"fax\" }]").contains("fax"));
    }

    #[test]
    fn aliases() {
        assert!(trigger_matches("stage_changed", "lead_status_changed"));
        assert!(!trigger_matches("stage_changed", "lead_updated"));
        assert!(trigger_matches("message_received", "message_sent"));
        assert!(trigger_matches("message_received", "message_received"));
        assert!(trigger_matches("contact_created", "contact_created"));
        assert!(trigger_matches("*", "task_deleted"));
    }
}
