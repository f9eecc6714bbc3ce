//! Message templates of the actions: `tinytemplate` (`{name}`,
//! `{status_id}`, `{event.org}`, `{cf.1118164}`; `\{` for a brace), values
//! written as they are, never HTML-escaped (Telegram's plain text and Kommo
//! notes are not HTML).

use serde_json::Value;
use tinytemplate::TinyTemplate;

/// Whether `text` is a well-formed template.
pub fn check(text: &str) -> Result<(), String> {
    let mut tt = TinyTemplate::new();
    tt.add_template("t", text)
        .map_err(|e| format!("template: {e}"))
}

/// Fills `text` from `ctx`. A field the event lacks is an error naming it.
pub fn render(text: &str, ctx: &Value) -> Result<String, String> {
    let mut tt = TinyTemplate::new();
    tt.set_default_formatter(&tinytemplate::format_unescaped);
    tt.add_template("t", text)
        .map_err(|e| format!("template: {e}"))?;
    tt.render("t", ctx).map_err(|e| format!("template: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fills_fields_without_escaping() {
        let ctx =
            json!({"name": "A & B <x>", "price": 1000, "event": {"org": "acme"}, "cf": {"7": "v"}});
        assert_eq!(
            render("{name}: {price} ({event.org}) {cf.7} \\{x}", &ctx).unwrap(),
            "A & B <x>: 1000 (acme) v {x}"
        );
        assert!(render("{missing}", &ctx).unwrap_err().contains("missing"));
        assert!(check("{unclosed").is_err());
    }
}
