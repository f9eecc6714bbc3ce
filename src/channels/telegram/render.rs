//! Replies as Bot API calls. Results go out as a media group (2–10
//! photos, which cannot carry a keyboard) followed by a `sendMessage` with
//! the list and the inline keyboard; one photo goes as `sendPhoto`.

use serde_json::{Value, json};

use crate::channels::{
    outbox::Call,
    reply::{Button, Reply, result_line},
};

/// Captions are limited to 1024 characters, messages to 4096.
const MAX_CAPTION: usize = 1024;
const MAX_TEXT: usize = 4096;

pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// An inline keyboard: product numbers five to a row, then the others.
pub fn keyboard(buttons: &[Button]) -> Option<Value> {
    if buttons.is_empty() {
        return None;
    }
    let (numbers, others): (Vec<&Button>, Vec<&Button>) =
        buttons.iter().partition(|b| b.data.starts_with("n:"));
    let key = |b: &&Button| json!({ "text": b.label, "callback_data": b.data });
    let mut rows: Vec<Vec<Value>> = numbers
        .chunks(5)
        .map(|c| c.iter().map(key).collect())
        .collect();
    if !others.is_empty() {
        rows.push(others.iter().map(key).collect());
    }
    Some(json!({ "inline_keyboard": rows }))
}

fn message(chat_id: i64, text: &str, buttons: &[Button]) -> Call {
    let mut req = json!({
        "chat_id": chat_id,
        "text": clip(text, MAX_TEXT),
        "link_preview_options": { "is_disabled": true },
    });
    if let Some(k) = keyboard(buttons) {
        req["reply_markup"] = k;
    }
    Call {
        method: "sendMessage".into(),
        request: req,
    }
}

pub fn render(replies: &[Reply], chat_id: i64) -> Vec<Call> {
    let mut calls = Vec::new();
    for r in replies {
        match r {
            Reply::Text { text, buttons } => calls.push(message(chat_id, text, buttons)),
            Reply::Results {
                heading,
                items,
                first,
                buttons,
            } => {
                let photos: Vec<(String, &str)> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, it)| {
                        it.image_url
                            .as_deref()
                            .map(|u| (clip(&result_line(first + i, it), MAX_CAPTION), u))
                    })
                    .take(10)
                    .collect();
                match photos.len() {
                    0 => {}
                    1 => calls.push(Call {
                        method: "sendPhoto".into(),
                        request: json!({
                            "chat_id": chat_id, "photo": photos[0].1, "caption": photos[0].0,
                        }),
                    }),
                    _ => calls.push(Call {
                        method: "sendMediaGroup".into(),
                        request: json!({
                            "chat_id": chat_id,
                            "media": photos.iter().map(|(caption, url)| json!({
                                "type": "photo", "media": url, "caption": caption,
                            })).collect::<Vec<_>>(),
                        }),
                    }),
                }
                let mut text = heading.clone();
                for (i, it) in items.iter().enumerate() {
                    text.push_str("\n\n");
                    text.push_str(&result_line(first + i, it));
                    if let Some(l) = &it.link {
                        text.push('\n');
                        text.push_str(l);
                    }
                }
                calls.push(message(chat_id, &text, buttons));
            }
            Reply::Details {
                item,
                text,
                buttons,
            } => match &item.image_url {
                Some(url) => {
                    let mut req = json!({
                        "chat_id": chat_id, "photo": url, "caption": clip(text, MAX_CAPTION),
                    });
                    if let Some(k) = keyboard(buttons) {
                        req["reply_markup"] = k;
                    }
                    calls.push(Call {
                        method: "sendPhoto".into(),
                        request: req,
                    });
                }
                None => calls.push(message(chat_id, text, buttons)),
            },
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::reply::Item;

    fn item(n: usize, image: bool) -> Item {
        Item {
            product_id: format!("p{n}"),
            title: Some(format!("Item {n}")),
            category: None,
            price: Some(10.0),
            currency: None,
            image_url: image.then(|| format!("https://img/p{n}.jpg")),
            link: Some(format!("https://shop/p{n}")),
        }
    }

    #[test]
    fn results_are_a_media_group_then_a_message_with_the_keyboard() {
        let buttons = vec![
            Button {
                label: "1".into(),
                data: "n:1".into(),
            },
            Button {
                label: "2".into(),
                data: "n:2".into(),
            },
            Button {
                label: "More".into(),
                data: "more".into(),
            },
        ];
        let calls = render(
            &[Reply::Results {
                heading: "Found:".into(),
                items: vec![item(1, true), item(2, true), item(3, false)],
                first: 1,
                buttons,
            }],
            42,
        );
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].method, "sendMediaGroup");
        assert_eq!(calls[0].request["media"].as_array().unwrap().len(), 2);
        assert!(calls[0].request.get("reply_markup").is_none());
        assert_eq!(calls[1].method, "sendMessage");
        let text = calls[1].request["text"].as_str().unwrap();
        assert!(
            text.starts_with("Found:")
                && text.contains("3. Item 3")
                && text.contains("https://shop/p3")
        );
        let kb = &calls[1].request["reply_markup"]["inline_keyboard"];
        assert_eq!(kb[0][1]["callback_data"], "n:2");
        assert_eq!(kb[1][0]["callback_data"], "more");
        // One picture: sendPhoto, since a media group needs two.
        let calls = render(
            &[Reply::Results {
                heading: "F".into(),
                items: vec![item(1, true)],
                first: 1,
                buttons: vec![],
            }],
            42,
        );
        assert_eq!(calls[0].method, "sendPhoto");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
