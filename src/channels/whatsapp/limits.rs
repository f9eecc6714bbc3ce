//! The interactive message limits (`pywa/types/callback.py`), checked
//! before anything is sent: a list has at most 10 rows in all, a row title
//! at most 24 characters and a description 72, the list's button 20; at
//! most 3 reply buttons, each title at most 20.

use serde_json::Value;

pub const MAX_ROWS: usize = 10;
pub const MAX_ROW_TITLE: usize = 24;
pub const MAX_ROW_DESCRIPTION: usize = 72;
pub const MAX_BUTTON_TEXT: usize = 20;
pub const MAX_REPLY_BUTTONS: usize = 3;
pub const MAX_SECTION_TITLE: usize = 24;

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Checks a message body against the limits; `Err` says which one.
pub fn validate(body: &Value) -> Result<(), String> {
    let Some(i) = body.get("interactive") else {
        return Ok(());
    };
    match i.get("type").and_then(Value::as_str) {
        Some("list") => {
            let action = &i["action"];
            if chars(&action["button"]) > MAX_BUTTON_TEXT || chars(&action["button"]) == 0 {
                return Err(format!(
                    "a list's button text must be 1–{MAX_BUTTON_TEXT} characters"
                ));
            }
            let sections = action["sections"].as_array().cloned().unwrap_or_default();
            let mut rows = 0;
            for s in &sections {
                if chars(&s["title"]) > MAX_SECTION_TITLE {
                    return Err(format!(
                        "a section title is over {MAX_SECTION_TITLE} characters"
                    ));
                }
                for r in s["rows"].as_array().cloned().unwrap_or_default() {
                    rows += 1;
                    if chars(&r["title"]) > MAX_ROW_TITLE || chars(&r["title"]) == 0 {
                        return Err(format!("a row title must be 1–{MAX_ROW_TITLE} characters"));
                    }
                    if chars(&r["description"]) > MAX_ROW_DESCRIPTION {
                        return Err(format!(
                            "a row description is over {MAX_ROW_DESCRIPTION} characters"
                        ));
                    }
                }
            }
            if rows == 0 || rows > MAX_ROWS {
                return Err(format!("a list has 1–{MAX_ROWS} rows in all, not {rows}"));
            }
            Ok(())
        }
        Some("button") => {
            let buttons = i["action"]["buttons"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if buttons.is_empty() || buttons.len() > MAX_REPLY_BUTTONS {
                return Err(format!(
                    "1–{MAX_REPLY_BUTTONS} reply buttons, not {}",
                    buttons.len()
                ));
            }
            for b in &buttons {
                let t = chars(&b["reply"]["title"]);
                if t == 0 || t > MAX_BUTTON_TEXT {
                    return Err(format!(
                        "a reply button title must be 1–{MAX_BUTTON_TEXT} characters"
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(rows: usize, title: &str, desc: &str, button: &str) -> Value {
        let rows: Vec<Value> = (0..rows)
            .map(|i| json!({"id": format!("n:{i}"), "title": title, "description": desc}))
            .collect();
        json!({"type": "interactive", "interactive": {"type": "list", "body": {"text": "x"},
            "action": {"button": button, "sections": [{"title": "R", "rows": rows}]}}})
    }

    #[test]
    fn list_and_button_limits_are_enforced() {
        assert!(validate(&list(10, &"a".repeat(24), &"d".repeat(72), &"b".repeat(20))).is_ok());
        assert!(validate(&list(11, "t", "d", "b")).is_err());
        assert!(validate(&list(1, &"a".repeat(25), "d", "b")).is_err());
        assert!(validate(&list(1, "t", &"d".repeat(73), "b")).is_err());
        assert!(validate(&list(1, "t", "d", &"b".repeat(21))).is_err());
        // Characters, not bytes: 24 Cyrillic letters are 48 bytes.
        assert!(validate(&list(1, &"я".repeat(24), "d", "b")).is_ok());
        let buttons = |n: usize, title: &str| {
            let b: Vec<Value> = (0..n)
                .map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": title}}))
                .collect();
            json!({"interactive": {"type": "button", "action": {"buttons": b}}})
        };
        assert!(validate(&buttons(3, &"t".repeat(20))).is_ok());
        assert!(validate(&buttons(4, "t")).is_err());
        assert!(validate(&buttons(1, &"t".repeat(21))).is_err());
        assert!(validate(&json!({"type": "text", "text": {"body": "hi"}})).is_ok());
    }
}
