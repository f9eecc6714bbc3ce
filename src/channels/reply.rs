//! What the bot says, before a channel renders it: channel-neutral replies
//! ([`Reply`]) about found products ([`Item`]).

use serde::{Deserialize, Serialize};

/// One found product, as the conversation remembers it between messages
/// (so that "more" and "3" need no second search).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub product_id: String,
    pub title: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    /// An http(s) picture a messenger can fetch itself; none for products
    /// whose image is a local file or an S3 key.
    pub image_url: Option<String>,
    /// The shopper-facing link (`channels.product_url`).
    pub link: Option<String>,
}

impl Item {
    /// The title, or the id when there is none.
    pub fn name(&self) -> &str {
        self.title
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or(&self.product_id)
    }

    /// `1 200 KGS`, or nothing without a price.
    pub fn price_text(&self) -> Option<String> {
        let p = self.price?;
        let amount = if p.fract() == 0.0 {
            group_thousands(p as i64)
        } else {
            format!("{p:.2}")
        };
        Some(match &self.currency {
            Some(c) if !c.is_empty() => format!("{amount} {c}"),
            _ => amount,
        })
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{a0}');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A button under a message: its label and what pressing it sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    /// At most 64 bytes (Telegram's `callback_data`): `more`, `new` or
    /// `n:<number>`.
    pub data: String,
}

/// One thing the bot says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Plain text, with optional buttons.
    Text { text: String, buttons: Vec<Button> },
    /// A page of results numbered from `first` (1-based), with a heading
    /// and the buttons for numbers and "more".
    Results {
        heading: String,
        items: Vec<Item>,
        first: usize,
        buttons: Vec<Button>,
    },
    /// One product in full: its number in the results and its details.
    Details {
        item: Item,
        text: String,
        buttons: Vec<Button>,
    },
}

/// The text line of a result: `3. Title — 1 200 KGS`.
pub fn result_line(number: usize, item: &Item) -> String {
    match item.price_text() {
        Some(p) => format!("{number}. {} — {p}", item.name()),
        None => format!("{number}. {}", item.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_read_like_prices() {
        let mut it = Item {
            product_id: "p1".into(),
            title: None,
            category: None,
            price: Some(1200.0),
            currency: Some("KGS".into()),
            image_url: None,
            link: None,
        };
        assert_eq!(it.price_text().unwrap(), "1\u{a0}200 KGS");
        assert_eq!(it.name(), "p1");
        it.price = Some(9.5);
        it.currency = None;
        assert_eq!(result_line(2, &it), "2. p1 — 9.50");
        it.price = None;
        assert_eq!(result_line(1, &it), "1. p1");
        assert_eq!(group_thousands(1_234_567), "1\u{a0}234\u{a0}567");
        assert_eq!(group_thousands(999), "999");
    }
}
