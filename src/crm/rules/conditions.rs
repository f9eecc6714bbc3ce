//! Rule conditions, evaluated by JSONLogic (`datalogic-rs`): each
//! [`Condition`] compiles to a JSONLogic expression over the event's
//! context ([`context`]), and the dry run evaluates every test on its own
//! too, to show the actual value, the expected one and whether it passed
//! ([`explain`]).
//!
//! The context is the change's fields as Kommo sent them, with integer and
//! decimal text turned into numbers (Kommo sends every value as text, and
//! `in` compares strictly), plus `event` (`subtype`, `entity_type`,
//! `entity_id`, `org`, `account_subdomain`, `account_id`) and `cf`: custom
//! field values by id and by name (one value as itself, several as a list).

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::model::{Condition, Test};
use crate::crm::kommo::KommoEvent;

/// Integer or decimal text as a JSON number; anything else unchanged.
/// Leading zeros (`007`, phone numbers) stay text, as do integers past
/// what JSON numbers hold exactly.
fn typed(s: &str) -> Value {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical_int = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && digits.len() <= 15;
    if canonical_int && let Ok(n) = s.parse::<i64>() {
        return json!(n);
    }
    if let Some((int, frac)) = digits.split_once('.')
        && !int.is_empty()
        && !frac.is_empty()
        && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'))
        && let Ok(f) = s.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(s.to_string())
}

fn typed_tree(v: &Value) -> Value {
    match v {
        Value::String(s) => typed(s),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), typed_tree(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(typed_tree).collect()),
        other => other.clone(),
    }
}

/// Kommo's `custom_fields[i][id|name|values[j][value]]` (a date field's
/// values may be bare: `values[0]=1725915600`).
fn custom_fields(fields: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(list) = fields.get("custom_fields").and_then(Value::as_object) else {
        return out;
    };
    for cf in list.values() {
        let values: Vec<Value> = cf
            .get("values")
            .and_then(Value::as_object)
            .map(|vs| {
                let mut items: Vec<(&String, &Value)> = vs.iter().collect();
                items.sort_by_key(|(k, _)| k.parse::<u64>().unwrap_or(u64::MAX));
                items
                    .into_iter()
                    .map(|(_, v)| match v {
                        Value::Object(o) => o.get("value").map(typed_tree).unwrap_or(Value::Null),
                        other => typed_tree(other),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let value = match values.len() {
            0 => Value::Null,
            1 => values.into_iter().next().unwrap_or(Value::Null),
            _ => Value::Array(values),
        };
        for key in ["id", "name"] {
            if let Some(k) = cf.get(key).and_then(Value::as_str) {
                out.insert(k.to_string(), value.clone());
            }
        }
    }
    out
}

/// What conditions and templates see of an event.
pub fn context(e: &KommoEvent) -> Value {
    let mut ctx = match typed_tree(&e.fields) {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    ctx.insert(
        "event".into(),
        json!({
            "subtype": e.subtype,
            "entity_type": e.entity_type,
            "entity_id": e.entity_id,
            "org": e.org,
            "account_subdomain": e.account_subdomain,
            "account_id": e.account_id,
        }),
    );
    ctx.insert("cf".into(), Value::Object(custom_fields(&e.fields)));
    Value::Object(ctx)
}

fn path(t: &Test) -> String {
    match (&t.field, &t.custom_field) {
        (Some(f), _) => f.clone(),
        (None, Some(cf)) => format!("cf.{cf}"),
        (None, None) => String::new(),
    }
}

/// The JSONLogic expression of a condition tree.
pub fn to_logic(c: &Condition) -> Value {
    match c {
        // JSONLogic's `and`/`or` of nothing is not defined the same way
        // everywhere: spell the empty cases out.
        Condition::All { all } if all.is_empty() => json!(true),
        Condition::Any { any } if any.is_empty() => json!(false),
        Condition::All { all } => json!({ "and": all.iter().map(to_logic).collect::<Vec<_>>() }),
        Condition::Any { any } => json!({ "or": any.iter().map(to_logic).collect::<Vec<_>>() }),
        Condition::Test(t) => {
            let mut m = Map::new();
            m.insert(
                t.op.logic().to_string(),
                json!([{ "var": path(t) }, t.value]),
            );
            Value::Object(m)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("condition: {0}")]
pub struct ConditionError(String);

fn eval(logic: &Value, data: &str) -> Result<Value, ConditionError> {
    datalogic_rs::eval_into::<Value, _, _>(logic, data).map_err(|e| ConditionError(e.to_string()))
}

/// JSONLogic truthiness of a result (`[]`, `0`, `""`, `null` are false).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

/// Whether the condition holds for this context.
pub fn holds(c: &Condition, ctx: &Value) -> Result<bool, ConditionError> {
    let data = ctx.to_string();
    eval(&to_logic(c), &data).map(|v| truthy(&v))
}

/// The dry run's account of a condition tree.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Explanation {
    Group {
        /// `all` or `any`.
        group: &'static str,
        pass: bool,
        items: Vec<Explanation>,
    },
    Test {
        field: String,
        op: &'static str,
        expected: Value,
        /// The field's value in this event; `null` when it has none.
        actual: Value,
        pass: bool,
    },
}

impl Explanation {
    pub fn pass(&self) -> bool {
        match self {
            Explanation::Group { pass, .. } | Explanation::Test { pass, .. } => *pass,
        }
    }
}

/// Evaluates every test of the tree on its own, and each group from its
/// parts.
pub fn explain(c: &Condition, ctx: &Value) -> Result<Explanation, ConditionError> {
    let data = ctx.to_string();
    explain_in(c, &data)
}

fn explain_in(c: &Condition, data: &str) -> Result<Explanation, ConditionError> {
    Ok(match c {
        Condition::All { all } => {
            let items = all
                .iter()
                .map(|c| explain_in(c, data))
                .collect::<Result<Vec<_>, _>>()?;
            Explanation::Group {
                group: "all",
                pass: items.iter().all(Explanation::pass),
                items,
            }
        }
        Condition::Any { any } => {
            let items = any
                .iter()
                .map(|c| explain_in(c, data))
                .collect::<Result<Vec<_>, _>>()?;
            Explanation::Group {
                group: "any",
                pass: items.iter().any(Explanation::pass),
                items,
            }
        }
        Condition::Test(t) => {
            let field = path(t);
            let actual = eval(&json!({ "var": field }), data)?;
            let pass = truthy(&eval(&to_logic(c), data)?);
            Explanation::Test {
                field,
                op: t.op.logic(),
                expected: t.value.clone(),
                actual,
                pass,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::{
        kommo::{Delivery, form},
        rules::model::Op,
    };

    fn status_event() -> KommoEvent {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/webhooks/kommo/amocrm-legacy-status-lead.form"
        ))
        .unwrap();
        let d = Delivery::from_tree(&form::decode(&body).unwrap());
        KommoEvent::from_delivery("default", &d).remove(0)
    }

    fn test(field: &str, op: Op, value: Value) -> Condition {
        Condition::Test(Test {
            field: Some(field.into()),
            custom_field: None,
            op,
            value,
        })
    }

    fn cf(key: &str, op: Op, value: Value) -> Condition {
        Condition::Test(Test {
            field: None,
            custom_field: Some(key.into()),
            op,
            value,
        })
    }

    #[test]
    fn the_context_types_numbers_and_lists_custom_fields() {
        let ctx = context(&status_event());
        assert_eq!(ctx["status_id"], json!(10216994));
        assert_eq!(ctx["price"], json!(1000));
        assert_eq!(ctx["name"], json!("Some test lead"));
        assert_eq!(ctx["cf"]["1119321"], json!("some text"));
        assert_eq!(ctx["cf"]["Some text field"], json!("some text"));
        assert_eq!(ctx["event"]["subtype"], json!("lead_status_changed"));
        assert_eq!(typed("007"), json!("007"));
        assert_eq!(typed("-12.5"), json!(-12.5));
        assert_eq!(typed("99999999999999999999"), json!("99999999999999999999"));
    }

    #[test]
    fn operators_through_jsonlogic() {
        let ctx = context(&status_event());
        let cases = [
            (test("status_id", Op::Eq, json!(10216994)), true),
            (test("status_id", Op::Eq, json!("10216994")), true),
            (test("status_id", Op::Ne, json!(10216994)), false),
            (test("status_id", Op::In, json!([1, 10216994])), true),
            (test("status_id", Op::In, json!([1, 2])), false),
            (test("price", Op::Gt, json!(999)), true),
            (test("price", Op::Ge, json!(1000)), true),
            (test("price", Op::Lt, json!(1000)), false),
            (test("price", Op::Le, json!(1000)), true),
            (test("pipeline_id", Op::Eq, json!(2116)), true),
            (test("responsible_user_id", Op::Eq, json!(938348)), true),
            (test("event.org", Op::Eq, json!("default")), true),
            (cf("1119321", Op::Eq, json!("some text")), true),
            (
                cf("Some text field", Op::In, json!(["x", "some text"])),
                true,
            ),
            (test("no_such_field", Op::Eq, json!(1)), false),
        ];
        for (c, want) in cases {
            assert_eq!(holds(&c, &ctx).unwrap(), want, "{c:?}");
        }
        let all = Condition::All {
            all: vec![
                test("status_id", Op::Eq, json!(10216994)),
                Condition::Any {
                    any: vec![
                        test("price", Op::Gt, json!(5000)),
                        cf("1119321", Op::Eq, json!("some text")),
                    ],
                },
            ],
        };
        assert!(holds(&all, &ctx).unwrap());
        assert!(holds(&Condition::default(), &ctx).unwrap());
        assert!(!holds(&Condition::Any { any: vec![] }, &ctx).unwrap());
    }

    #[test]
    fn the_explanation_gives_actual_expected_and_pass() {
        let ctx = context(&status_event());
        let c = Condition::All {
            all: vec![
                test("status_id", Op::In, json!([142])),
                test("price", Op::Ge, json!(500)),
            ],
        };
        let e = explain(&c, &ctx).unwrap();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"group": "all", "pass": false, "items": [
                {"field": "status_id", "op": "in", "expected": [142], "actual": 10216994, "pass": false},
                {"field": "price", "op": ">=", "expected": 500, "actual": 1000, "pass": true},
            ]})
        );
        assert_eq!(e.pass(), holds(&c, &ctx).unwrap());
    }
}
