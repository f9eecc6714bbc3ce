//! The conversation of one `(channel, bot, chat)`: a small state machine
//! ([`Conversation::step`], pure) and its row in `channel_conversations`
//! ([`ConversationStore`]). Keyed by the bot as well as the chat: with one
//! bot per business, one shopper talks to several bots (teloxide keys its
//! dialogues by chat alone).
//!
//! ```text
//! greeting ─▶ waiting ─photo/text─▶ results ─more─▶ more_or_new ─more─▶ …
//!    ▲           ▲  ▲                  │ number          │ new
//!    │ /start    │  └──── new ─────────┼─────────────────┘
//!    │           └──────── bye ──▶ goodbye (any message starts again)
//!    └ any state: /start, hello     details ◀─ number (from results)
//! ```

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{
    reply::{Button, Item, Reply, result_line},
    texts::{Lang, texts},
};
use crate::db::{Db, now_ms, text_vocabulary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Greeting,
    Waiting,
    Results,
    MoreOrNew,
    Details,
    Goodbye,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Greeting,
        State::Waiting,
        State::Results,
        State::MoreOrNew,
        State::Details,
        State::Goodbye,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Greeting => "greeting",
            State::Waiting => "waiting",
            State::Results => "results",
            State::MoreOrNew => "more_or_new",
            State::Details => "details",
            State::Goodbye => "goodbye",
        }
    }
}

text_vocabulary!(State, "conversation state");

/// What the shopper did, once the channel has read (and, for a photo or a
/// query, searched) it.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Start,
    Greeting,
    Bye,
    /// A photo or text search found these (maybe none).
    Found(Vec<Item>),
    /// The photo could not be read as an image.
    BadPhoto,
    /// Free text, while text search is not available.
    TextSearchUnavailable,
    More,
    NewSearch,
    /// A product number from the results (1-based).
    Number(usize),
    Unclear,
    /// A sticker, voice, video, location…
    OtherMedia,
}

/// What a piece of text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextIntent {
    Start,
    Greeting,
    Bye,
    More,
    NewSearch,
    Number(usize),
    Unclear,
    Query(String),
}

/// Reads a text message (or a button's data). Pure, for the fuzz target.
pub fn classify(text: &str) -> TextIntent {
    let t = text.trim().to_lowercase();
    let t = t.trim_end_matches(['!', '.', '?', ')']).trim();
    let command = t
        .strip_prefix('/')
        .map(|c| c.split(['@', ' ']).next().unwrap_or(""));
    match command {
        Some("start" | "help") => return TextIntent::Start,
        Some("more") => return TextIntent::More,
        Some("new") => return TextIntent::NewSearch,
        Some("stop" | "bye") => return TextIntent::Bye,
        Some(_) => return TextIntent::Unclear,
        None => {}
    }
    let number = t
        .strip_prefix("n:")
        .or_else(|| t.strip_prefix('#'))
        .unwrap_or(t);
    if !number.is_empty() && number.len() <= 3 && number.chars().all(|c| c.is_ascii_digit()) {
        return number
            .parse()
            .map(TextIntent::Number)
            .unwrap_or(TextIntent::Unclear);
    }
    match t {
        "привет"
        | "здравствуйте"
        | "здравствуй"
        | "добрый день"
        | "добрый вечер"
        | "салам"
        | "hello"
        | "hi"
        | "hey"
        | "good morning"
        | "good afternoon" => TextIntent::Greeting,
        "пока" | "до свидания" | "спасибо, пока" | "bye" | "goodbye" | "стоп" => {
            TextIntent::Bye
        }
        "ещё" | "еще" | "дальше" | "more" | "next" => TextIntent::More,
        "новый поиск" | "new search" | "new" => TextIntent::NewSearch,
        _ if !t.chars().any(char::is_alphabetic) || t.chars().count() > 200 => TextIntent::Unclear,
        _ => TextIntent::Query(text.trim().to_string()),
    }
}

/// One chat's state, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub state: State,
    pub lang: Lang,
    /// The last search's results, all pages of them.
    pub results: Vec<Item>,
    /// How many of them have been shown.
    pub shown: usize,
    /// When the shopper last wrote (Unix ms): WhatsApp's 24-hour window.
    pub last_inbound_at: Option<i64>,
}

#[derive(Serialize, Deserialize, Default)]
struct Data {
    results: Vec<Item>,
    shown: usize,
}

impl Conversation {
    pub fn new(lang: Lang) -> Self {
        Self {
            state: State::Greeting,
            lang,
            results: Vec::new(),
            shown: 0,
            last_inbound_at: None,
        }
    }

    fn text(&self, text: &str, buttons: Vec<Button>) -> Reply {
        Reply::Text {
            text: text.to_string(),
            buttons,
        }
    }

    fn new_button(&self) -> Button {
        Button {
            label: texts(self.lang).new_search.into(),
            data: "new".into(),
        }
    }

    /// The next page of results, from `shown`.
    fn page(&mut self, per_page: usize, heading: &str) -> Reply {
        let first = self.shown;
        let end = (first + per_page).min(self.results.len());
        self.shown = end;
        let mut buttons: Vec<Button> = (first + 1..=end)
            .map(|n| Button {
                label: n.to_string(),
                data: format!("n:{n}"),
            })
            .collect();
        if end < self.results.len() {
            buttons.push(Button {
                label: texts(self.lang).more.into(),
                data: "more".into(),
            });
        }
        buttons.push(self.new_button());
        Reply::Results {
            heading: heading.into(),
            items: self.results[first..end].to_vec(),
            first: first + 1,
            buttons,
        }
    }

    /// Applies one input; returns what to say. `per_page` is
    /// `channels.results`.
    pub fn step(&mut self, input: Input, per_page: usize) -> Vec<Reply> {
        let t = texts(self.lang);
        let per_page = per_page.max(1);
        let reply = match input {
            Input::Start | Input::Greeting => {
                self.state = State::Greeting;
                self.text(t.greeting, vec![])
            }
            Input::Bye => {
                self.state = State::Goodbye;
                self.results.clear();
                self.shown = 0;
                self.text(t.goodbye, vec![])
            }
            Input::Found(items) if items.is_empty() => {
                self.state = State::Waiting;
                self.text(t.nothing_found, vec![])
            }
            Input::Found(items) => {
                self.results = items;
                self.shown = 0;
                self.state = State::Results;
                self.page(per_page, t.found)
            }
            Input::BadPhoto => self.text(t.bad_photo, vec![]),
            Input::TextSearchUnavailable => self.text(t.text_search_unavailable, vec![]),
            Input::More if self.results.is_empty() => {
                self.state = State::Waiting;
                self.text(t.ask_again, vec![])
            }
            Input::More if self.shown >= self.results.len() => {
                self.state = State::MoreOrNew;
                self.text(t.no_more, vec![self.new_button()])
            }
            Input::More => {
                self.state = State::MoreOrNew;
                self.page(per_page, t.found)
            }
            Input::NewSearch => {
                self.state = State::Waiting;
                self.results.clear();
                self.shown = 0;
                self.text(t.ask_again, vec![])
            }
            Input::Number(_) if self.results.is_empty() => self.text(t.not_understood, vec![]),
            Input::Number(n) if n == 0 || n > self.shown => self.text(t.no_such_number, vec![]),
            Input::Number(n) => {
                self.state = State::Details;
                let item = self.results[n - 1].clone();
                let mut text = result_line(n, &item);
                if let Some(c) = &item.category {
                    text.push_str(&format!("\n{}: {c}", t.category));
                }
                if let Some(l) = &item.link {
                    text.push_str(&format!("\n{}: {l}", t.link));
                }
                let mut buttons = Vec::new();
                if self.shown < self.results.len() {
                    buttons.push(Button {
                        label: t.more.into(),
                        data: "more".into(),
                    });
                }
                buttons.push(self.new_button());
                Reply::Details {
                    item,
                    text,
                    buttons,
                }
            }
            Input::Unclear => self.text(t.not_understood, vec![]),
            Input::OtherMedia => self.text(t.unsupported_media, vec![]),
        };
        vec![reply]
    }
}

/// Which conversation: the channel, the bot (or number) and the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationKey {
    pub channel: &'static str,
    pub bot_id: String,
    pub chat_id: String,
}

/// The `channel_conversations` table.
#[derive(Clone)]
pub struct ConversationStore {
    db: Db,
}

impl ConversationStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn load(&self, key: &ConversationKey) -> Result<Option<Conversation>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT state, lang, data, last_inbound_at FROM channel_conversations \
             WHERE channel = $1 AND bot_id = $2 AND chat_id = $3",
        )
        .bind(key.channel)
        .bind(&key.bot_id)
        .bind(&key.chat_id)
        .fetch_optional(self.db.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let data: Data =
            serde_json::from_str(&row.try_get::<String, _>("data")?).unwrap_or_default();
        let lang: String = row.try_get("lang")?;
        Ok(Some(Conversation {
            state: row.try_get("state")?,
            lang: Lang::parse(&lang).unwrap_or(Lang::En),
            shown: data.shown.min(data.results.len()),
            results: data.results,
            last_inbound_at: row.try_get("last_inbound_at")?,
        }))
    }

    /// Writes `conv` in `tx` (the outbox's plan commit).
    pub async fn save(
        tx: &mut sqlx::AnyConnection,
        key: &ConversationKey,
        conv: &Conversation,
    ) -> Result<(), sqlx::Error> {
        let data = serde_json::to_string(&Data {
            results: conv.results.clone(),
            shown: conv.shown,
        })
        .expect("plain data serialises");
        sqlx::query(
            "INSERT INTO channel_conversations \
               (channel, bot_id, chat_id, state, lang, data, last_inbound_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (channel, bot_id, chat_id) DO UPDATE SET state = excluded.state, \
               lang = excluded.lang, data = excluded.data, \
               last_inbound_at = excluded.last_inbound_at, updated_at = excluded.updated_at",
        )
        .bind(key.channel)
        .bind(&key.bot_id)
        .bind(&key.chat_id)
        .bind(conv.state)
        .bind(conv.lang.as_str())
        .bind(data)
        .bind(conv.last_inbound_at)
        .bind(now_ms())
        .execute(tx)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize) -> Item {
        Item {
            product_id: format!("p{n}"),
            title: Some(format!("Item {n}")),
            category: Some("shoes".into()),
            price: Some(100.0 * n as f64),
            currency: Some("KGS".into()),
            image_url: None,
            link: Some(format!("https://shop/p{n}")),
        }
    }

    #[test]
    fn texts_are_classified() {
        assert_eq!(classify("/start"), TextIntent::Start);
        assert_eq!(classify("/start@vitrine_bot"), TextIntent::Start);
        assert_eq!(classify("Привет!"), TextIntent::Greeting);
        assert_eq!(classify("ещё"), TextIntent::More);
        assert_eq!(classify("More"), TextIntent::More);
        assert_eq!(classify(" 3 "), TextIntent::Number(3));
        assert_eq!(classify("n:12"), TextIntent::Number(12));
        assert_eq!(classify("#2"), TextIntent::Number(2));
        assert_eq!(classify("пока"), TextIntent::Bye);
        assert_eq!(classify("???"), TextIntent::Unclear);
        assert_eq!(classify("/weird"), TextIntent::Unclear);
        assert_eq!(classify("new"), TextIntent::NewSearch);
        assert_eq!(classify("Кроссовки"), TextIntent::Query("Кроссовки".into()));
    }

    #[test]
    fn results_page_then_details_then_new_search() {
        let mut c = Conversation::new(Lang::En);
        let r = c.step(Input::Start, 2);
        assert!(matches!(&r[0], Reply::Text { text, .. } if text.contains("Hello")));
        let r = c.step(Input::Found((1..=3).map(item).collect()), 2);
        let Reply::Results {
            items,
            first,
            buttons,
            ..
        } = &r[0]
        else {
            panic!("{r:?}")
        };
        assert_eq!((items.len(), *first, c.state), (2, 1, State::Results));
        assert!(buttons.iter().any(|b| b.data == "more"));
        assert!(buttons.iter().any(|b| b.data == "n:2"));
        // "3" is not shown yet.
        let r = c.step(Input::Number(3), 2);
        assert!(matches!(&r[0], Reply::Text { text, .. } if text.contains("no such number")));
        let r = c.step(Input::More, 2);
        let Reply::Results {
            items,
            first,
            buttons,
            ..
        } = &r[0]
        else {
            panic!("{r:?}")
        };
        assert_eq!((items.len(), *first, c.state), (1, 3, State::MoreOrNew));
        assert!(!buttons.iter().any(|b| b.data == "more"));
        let r = c.step(Input::More, 2);
        assert!(matches!(&r[0], Reply::Text { text, .. } if text.contains("no more")));
        let r = c.step(Input::Number(3), 2);
        let Reply::Details { item, text, .. } = &r[0] else {
            panic!("{r:?}")
        };
        assert_eq!(item.product_id, "p3");
        assert!(
            text.contains("300") && text.contains("https://shop/p3"),
            "{text}"
        );
        assert_eq!(c.state, State::Details);
        c.step(Input::NewSearch, 2);
        assert_eq!((c.state, c.results.len()), (State::Waiting, 0));
        let r = c.step(Input::More, 2);
        assert!(matches!(&r[0], Reply::Text { text, .. } if text.contains("Send a photo")));
    }

    #[test]
    fn other_inputs_get_helpful_answers_in_the_shoppers_language() {
        let mut c = Conversation::new(Lang::Ru);
        let r = c.step(Input::OtherMedia, 5);
        assert!(matches!(&r[0], Reply::Text { text, .. } if text.contains("только фото")));
        let r = c.step(Input::Unclear, 5);
        assert!(matches!(&r[0], Reply::Text { text, .. } if text.contains("не понял")));
        let r = c.step(Input::Found(vec![]), 5);
        assert!(matches!(&r[0], Reply::Text { text, .. } if text.contains("Ничего")));
        c.step(Input::Bye, 5);
        assert_eq!(c.state, State::Goodbye);
        let words: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
        for w in &words {
            assert_eq!(w.parse::<State>().unwrap().as_str(), *w);
        }
        assert!("lost".parse::<State>().is_err());
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let check = format!("CHECK (state IN ({}))", quoted.join(", "));
        for schema in [
            include_str!("../../migrations/sqlite/20261201000200_channels.sql"),
            include_str!("../../migrations/postgres/20261201000200_channels.sql"),
        ] {
            assert!(schema.contains(&check), "{check}");
        }
    }
}
