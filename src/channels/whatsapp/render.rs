//! Replies as Cloud API message bodies: text, reply buttons (at most 3),
//! and results as the top product's picture followed by an interactive
//! list (at most 10 rows). Titles are clipped to the limits that
//! [`super::limits::validate`] checks again before sending.

use serde_json::{Value, json};

use super::limits::{
    MAX_BUTTON_TEXT, MAX_REPLY_BUTTONS, MAX_ROW_DESCRIPTION, MAX_ROW_TITLE, MAX_ROWS,
};
use crate::channels::{
    outbox::Call,
    reply::{Button, Reply, result_line},
    telegram::render::clip,
    texts::{Lang, texts},
};

/// The body of an interactive message: at most 1024 characters; of a text
/// message 4096.
const MAX_BODY: usize = 1024;
const MAX_TEXT: usize = 4096;

fn call(to: &str, kind: &str, content: Value) -> Call {
    let mut req = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
    });
    req[kind] = content;
    Call {
        method: "messages".into(),
        request: req,
    }
}

fn text(to: &str, body: &str, buttons: &[Button], header_image: Option<&str>) -> Call {
    if buttons.is_empty() {
        return match header_image {
            Some(url) => call(
                to,
                "image",
                json!({ "link": url, "caption": clip(body, MAX_BODY) }),
            ),
            None => call(
                to,
                "text",
                json!({ "body": clip(body, MAX_TEXT), "preview_url": false }),
            ),
        };
    }
    let buttons: Vec<Value> = buttons
        .iter()
        .rev()
        .take(MAX_REPLY_BUTTONS)
        .rev()
        .map(|b| json!({ "type": "reply", "reply": { "id": b.data, "title": clip(&b.label, MAX_BUTTON_TEXT) } }))
        .collect();
    let mut interactive = json!({
        "type": "button",
        "body": { "text": clip(body, MAX_BODY) },
        "action": { "buttons": buttons },
    });
    if let Some(url) = header_image {
        interactive["header"] = json!({ "type": "image", "image": { "link": url } });
    }
    call(to, "interactive", interactive)
}

pub fn render(replies: &[Reply], to: &str, lang: Lang) -> Vec<Call> {
    let t = texts(lang);
    let mut calls = Vec::new();
    for r in replies {
        match r {
            Reply::Text {
                text: body,
                buttons,
            } => calls.push(text(to, body, buttons, None)),
            Reply::Details {
                item,
                text: body,
                buttons,
            } => {
                // Details keep only "more" and "new": numbers belong to the list.
                let buttons: Vec<Button> = buttons
                    .iter()
                    .filter(|b| !b.data.starts_with("n:"))
                    .cloned()
                    .collect();
                calls.push(text(to, body, &buttons, item.image_url.as_deref()));
            }
            Reply::Results {
                heading,
                items,
                first,
                buttons,
            } => {
                if let Some((n, top)) = items
                    .iter()
                    .enumerate()
                    .find(|(_, it)| it.image_url.is_some())
                {
                    calls.push(call(
                        to,
                        "image",
                        json!({
                            "link": top.image_url,
                            "caption": clip(&result_line(first + n, top), MAX_BODY),
                        }),
                    ));
                }
                let mut body = heading.clone();
                let mut rows = Vec::new();
                for (i, it) in items.iter().enumerate().take(MAX_ROWS) {
                    let n = first + i;
                    body.push_str("\n\n");
                    body.push_str(&result_line(n, it));
                    if let Some(l) = &it.link {
                        body.push('\n');
                        body.push_str(l);
                    }
                    let description = [it.price_text(), it.category.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" · ");
                    rows.push(json!({
                        "id": format!("n:{n}"),
                        "title": clip(&format!("{n}. {}", it.name()), MAX_ROW_TITLE),
                        "description": clip(&description, MAX_ROW_DESCRIPTION),
                    }));
                }
                for b in buttons.iter().filter(|b| !b.data.starts_with("n:")) {
                    if rows.len() < MAX_ROWS {
                        rows.push(json!({ "id": b.data, "title": clip(&b.label, MAX_ROW_TITLE) }));
                    }
                }
                calls.push(call(
                    to,
                    "interactive",
                    json!({
                        "type": "list",
                        "body": { "text": clip(&body, MAX_BODY) },
                        "action": {
                            "button": clip(t.choose, MAX_BUTTON_TEXT),
                            "sections": [{ "title": clip(t.results_section, 24), "rows": rows }],
                        },
                    }),
                ));
            }
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::{reply::Item, whatsapp::limits::validate};

    #[test]
    fn results_are_a_picture_then_a_valid_list() {
        let items: Vec<Item> = (1..=9)
            .map(|n| Item {
                product_id: format!("p{n}"),
                title: Some(format!("A very long product title number {n} indeed")),
                category: Some("shoes".into()),
                price: Some(1500.0),
                currency: Some("KGS".into()),
                image_url: Some(format!("https://img/p{n}.jpg")),
                link: None,
            })
            .collect();
        let buttons = vec![
            Button {
                label: "More".into(),
                data: "more".into(),
            },
            Button {
                label: "New search".into(),
                data: "new".into(),
            },
        ];
        let calls = render(
            &[Reply::Results {
                heading: "Found:".into(),
                items,
                first: 1,
                buttons,
            }],
            "996",
            Lang::En,
        );
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].request["type"], "image");
        let list = &calls[1].request;
        assert_eq!(list["interactive"]["type"], "list");
        let rows = list["interactive"]["action"]["sections"][0]["rows"]
            .as_array()
            .unwrap();
        assert_eq!(rows.len(), 10, "9 products and `more`; `new` does not fit");
        assert_eq!(rows[0]["id"], "n:1");
        assert_eq!(rows[9]["id"], "more");
        for c in &calls {
            validate(&c.request).unwrap();
        }
    }
}
