//! The inbox handler of Telegram updates: read the update, step the
//! conversation, commit the replies to the outbox, send what is pending,
//! each message in its turn of the [`SendThrottle`].

use serde_json::{Value, json};

use super::{
    PROVIDER,
    api::BotApiError,
    bots::{TelegramBot, TelegramBots},
    render::render,
    update::{Message, Update},
};
use crate::{
    channels::{
        conversation::{
            Conversation, ConversationKey, ConversationStore, Input, TextIntent, classify,
        },
        outbox::{Call, Outbox, OutboxStatus},
        shop::Shop,
        texts::Lang,
        throttle::SendThrottle,
    },
    db::now_ms,
    inbox::{EventHandler, EventRecord, HandlerError, Outcome},
};

pub struct TelegramHandler {
    pub bots: TelegramBots,
    pub shop: Shop,
    pub outbox: Outbox,
    pub conversations: ConversationStore,
    /// The optional phrasing model of the bot's own texts.
    pub phrasing: Option<crate::channels::phrasing::Rephraser>,
    pub throttle: std::sync::Arc<SendThrottle>,
}

fn db_error(e: sqlx::Error) -> HandlerError {
    HandlerError::transient("the database is unavailable").with_detail(e.to_string())
}

fn api_error(e: &BotApiError) -> HandlerError {
    let kind = if e.is_transient() {
        crate::inbox::ErrorKind::Transient
    } else {
        crate::inbox::ErrorKind::Permanent
    };
    HandlerError::new(kind, "the Telegram Bot API call failed").with_detail(e.to_string())
}

/// The id of the (first) message a send returned.
fn message_id(result: &Value) -> Option<String> {
    result
        .get("message_id")
        .or_else(|| result.get(0).and_then(|m| m.get("message_id")))
        .and_then(Value::as_i64)
        .map(|i| i.to_string())
}

/// What a planned reply needs besides its calls.
struct Plan {
    conversation: Option<(ConversationKey, Conversation)>,
    calls: Vec<Call>,
}

impl TelegramHandler {
    async fn read_message(&self, bot: &TelegramBot, m: &Message) -> Result<Input, HandlerError> {
        if let Some(file) = m.image_file() {
            return match bot.api.download_file(file).await {
                Ok(bytes) => self.shop.by_image(bytes).await,
                Err(e) if e.is_transient() => Err(api_error(&e)),
                Err(e) => {
                    tracing::info!(error = %e, "a shopper's photo could not be downloaded");
                    Ok(Input::BadPhoto)
                }
            };
        }
        let Some(text) = m.text.as_deref() else {
            return Ok(Input::OtherMedia);
        };
        Ok(match classify(text) {
            TextIntent::Start => Input::Start,
            TextIntent::Greeting => Input::Greeting,
            TextIntent::Bye => Input::Bye,
            TextIntent::More => Input::More,
            TextIntent::NewSearch => Input::NewSearch,
            TextIntent::Number(n) => Input::Number(n),
            TextIntent::Unclear => Input::Unclear,
            TextIntent::Query(q) => self.shop.by_text(&q).await?,
        })
    }

    async fn plan(&self, bot: &TelegramBot, update: &Update) -> Result<Option<Plan>, HandlerError> {
        let mut calls = Vec::new();
        let (chat_id, from, input) = if let Some(m) = &update.message {
            (m.chat.id, m.from.clone(), self.read_message(bot, m).await?)
        } else if let Some(cq) = &update.callback_query {
            calls.push(Call {
                method: "answerCallbackQuery".into(),
                request: json!({ "callback_query_id": cq.id }),
            });
            let Some(m) = &cq.message else {
                // An inline message: nothing to answer in a chat.
                return Ok(Some(Plan {
                    conversation: None,
                    calls,
                }));
            };
            let input = match classify(cq.data.as_deref().unwrap_or("")) {
                TextIntent::More => Input::More,
                TextIntent::NewSearch => Input::NewSearch,
                TextIntent::Number(n) => Input::Number(n),
                _ => Input::Unclear,
            };
            (m.chat.id, Some(cq.from.clone()), input)
        } else {
            return Ok(None);
        };
        let key = ConversationKey {
            channel: PROVIDER,
            bot_id: bot.id.clone(),
            chat_id: chat_id.to_string(),
        };
        let code_lang = from
            .as_ref()
            .and_then(|u| u.language_code.as_deref())
            .map(Lang::from_code);
        let mut conv = self
            .conversations
            .load(&key)
            .await
            .map_err(db_error)?
            .unwrap_or_else(|| Conversation::new(code_lang.unwrap_or(Lang::Ru)));
        if let Some(l) = code_lang {
            conv.lang = l;
        }
        conv.last_inbound_at = Some(now_ms());
        let mut replies = conv.step(input, self.shop.per_page());
        // Before the commit: a retry sends what is stored, never asks again.
        if let Some(p) = &self.phrasing {
            p.rephrase_all(&mut replies).await;
        }
        calls.extend(render(&replies, chat_id));
        Ok(Some(Plan {
            conversation: Some((key, conv)),
            calls,
        }))
    }
}

#[async_trait::async_trait]
impl EventHandler for TelegramHandler {
    async fn handle(&self, ev: &EventRecord) -> Result<Outcome, HandlerError> {
        let bot_id = ev.external_id.split(':').next().unwrap_or_default();
        // The update's own bot, so the reply goes out with its token.
        let Some(bot) = self.bots.by_id(bot_id).await else {
            return Ok(Outcome::skipped(format!("no bot {bot_id} is configured")));
        };
        let mut plan = self.outbox.plan(&ev.id).await.map_err(db_error)?;
        if plan.is_empty() {
            let update: Update = serde_json::from_str(&ev.payload).map_err(|e| {
                HandlerError::permanent("the update cannot be read").with_detail(e.to_string())
            })?;
            let Some(p) = self.plan(&bot, &update).await? else {
                return Ok(Outcome::skipped(format!(
                    "nothing to answer to a {} update",
                    ev.event_type
                )));
            };
            let conv = p.conversation.as_ref().map(|(k, c)| (k, c));
            self.outbox
                .commit(&ev.id, ev.created_at, conv, &p.calls)
                .await
                .map_err(db_error)?;
            plan = self.outbox.plan(&ev.id).await.map_err(db_error)?;
        }
        let (mut sent, mut failed) = (0, 0);
        for row in plan.iter().filter(|r| r.status == OutboxStatus::Pending) {
            if SendThrottle::is_send(&row.method) {
                let chat = match &row.request["chat_id"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                self.throttle.wait(&bot.id, &chat).await;
            }
            match bot.api.call(&row.method, &row.request).await {
                Ok(result) => {
                    self.outbox
                        .mark_sent(&ev.id, row.seq, message_id(&result).as_deref())
                        .await
                        .map_err(db_error)?;
                    sent += 1;
                    if row.method != "answerCallbackQuery" {
                        crate::channels::count_reply(PROVIDER, row.received_at);
                    }
                }
                Err(e) if e.is_transient() => return Err(api_error(&e)),
                Err(e) => {
                    tracing::warn!(error = %e, method = %row.method, "Telegram refused a reply");
                    self.outbox
                        .mark_failed(&ev.id, row.seq, &e.to_string())
                        .await
                        .map_err(db_error)?;
                    failed += 1;
                }
            }
        }
        Ok(Outcome::applied(format!(
            "{} replies: {sent} sent now, {failed} refused",
            plan.len()
        )))
    }
}
