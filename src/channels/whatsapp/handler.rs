//! The inbox handler of WhatsApp events: a message steps its contact's
//! conversation and is answered through the outbox, within the 24-hour
//! customer-service window; a status updates the delivery of the message
//! of ours it names.

use serde_json::Value;

use super::{
    PROVIDER,
    api::GraphError,
    numbers::{WhatsappNumber, WhatsappNumbers},
    payload::{InboundMessage, StoredMessage},
    render::render,
};
use crate::{
    channels::{
        conversation::{
            Conversation, ConversationKey, ConversationStore, Input, TextIntent, classify,
        },
        outbox::{Outbox, OutboxStatus},
        shop::Shop,
        texts::Lang,
    },
    db::now_ms,
    inbox::{ErrorKind, EventHandler, EventRecord, HandlerError, Outcome},
};

/// Free-form messages may go out only this long after the shopper's last
/// message; later, only templates (which this bot does not send).
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;

pub struct WhatsappHandler {
    pub numbers: WhatsappNumbers,
    pub shop: Shop,
    pub outbox: Outbox,
    pub conversations: ConversationStore,
    /// The optional phrasing model of the bot's own texts.
    pub phrasing: Option<crate::channels::phrasing::Rephraser>,
    /// The number's throughput, all contacts together.
    pub throttle: std::sync::Arc<crate::channels::throttle::SendThrottle>,
}

fn db_error(e: sqlx::Error) -> HandlerError {
    HandlerError::transient("the database is unavailable").with_detail(e.to_string())
}

fn api_error(e: &GraphError) -> HandlerError {
    let kind = if e.is_transient() {
        ErrorKind::Transient
    } else {
        ErrorKind::Permanent
    };
    HandlerError::new(kind, "the WhatsApp Cloud API call failed").with_detail(e.to_string())
}

fn intent_input(intent: TextIntent) -> Option<Input> {
    Some(match intent {
        TextIntent::Start => Input::Start,
        TextIntent::Greeting => Input::Greeting,
        TextIntent::Bye => Input::Bye,
        TextIntent::More => Input::More,
        TextIntent::NewSearch => Input::NewSearch,
        TextIntent::Number(n) => Input::Number(n),
        TextIntent::Unclear => Input::Unclear,
        TextIntent::Query(_) => return None,
    })
}

impl WhatsappHandler {
    /// `None`: nothing to answer (a reaction).
    async fn read(
        &self,
        number: &WhatsappNumber,
        m: &InboundMessage,
    ) -> Result<Option<Input>, HandlerError> {
        if let Some(media) = m.image_media() {
            return match number.api.download_media(media).await {
                Ok(bytes) => self.shop.by_image(bytes).await.map(Some),
                Err(e) if e.is_transient() => Err(api_error(&e)),
                Err(e) => {
                    tracing::info!(error = %e, "a shopper's photo could not be downloaded");
                    Ok(Some(Input::BadPhoto))
                }
            };
        }
        if let Some(choice) = m.choice() {
            return Ok(Some(
                intent_input(classify(&choice)).unwrap_or(Input::Unclear),
            ));
        }
        match m.kind.as_str() {
            "reaction" => Ok(None),
            "text" => {
                let text = m.text.as_ref().map(|t| t.body.as_str()).unwrap_or("");
                match classify(text) {
                    TextIntent::Query(q) => self.shop.by_text(&q).await.map(Some),
                    other => Ok(intent_input(other)),
                }
            }
            _ => Ok(Some(Input::OtherMedia)),
        }
    }

    async fn message(&self, ev: &EventRecord) -> Result<Outcome, HandlerError> {
        let stored: StoredMessage = serde_json::from_str(&ev.payload).map_err(|e| {
            HandlerError::permanent("the message cannot be read").with_detail(e.to_string())
        })?;
        let id = stored.phone_number_id.clone().unwrap_or_default();
        let Some(number) = self.numbers.by_id(&id).await else {
            return Ok(Outcome::skipped(format!(
                "no WhatsApp number {id} is configured"
            )));
        };
        let m = &stored.message;
        let mut plan = self.outbox.plan(&ev.id).await.map_err(db_error)?;
        if plan.is_empty() {
            let Some(input) = self.read(&number, m).await? else {
                return Ok(Outcome::skipped(format!(
                    "nothing to answer to a {}",
                    m.kind
                )));
            };
            let key = ConversationKey {
                channel: PROVIDER,
                bot_id: number.phone_number_id.clone(),
                chat_id: m.from.clone(),
            };
            let stored_conv = self.conversations.load(&key).await.map_err(db_error)?;
            let fallback = stored_conv.as_ref().map_or(Lang::Ru, |c| c.lang);
            let lang = Lang::from_text(m.text.as_ref().map_or("", |t| t.body.as_str()), fallback);
            let mut conv = stored_conv.unwrap_or_else(|| Conversation::new(lang));
            conv.lang = lang;
            conv.last_inbound_at = Some(ev.created_at);
            let mut replies = conv.step(input, self.shop.per_page());
            // Before the commit: a retry sends what is stored, never asks again.
            if let Some(p) = &self.phrasing {
                p.rephrase_all(&mut replies).await;
            }
            let calls = render(&replies, &m.from, lang);
            self.outbox
                .commit(&ev.id, ev.created_at, Some((&key, &conv)), &calls)
                .await
                .map_err(db_error)?;
            plan = self.outbox.plan(&ev.id).await.map_err(db_error)?;
        }
        let (mut sent, mut refused) = (0, 0);
        for row in plan.iter().filter(|r| r.status == OutboxStatus::Pending) {
            if now_ms() - row.received_at > WINDOW_MS {
                self.outbox
                    .mark_failed(
                        &ev.id,
                        row.seq,
                        "outside the 24-hour customer-service window",
                    )
                    .await
                    .map_err(db_error)?;
                refused += 1;
                continue;
            }
            let to = row.request["to"].as_str().unwrap_or("");
            self.throttle.wait(&number.phone_number_id, to).await;
            match number.api.send(&number.phone_number_id, &row.request).await {
                Ok(wamid) => {
                    self.outbox
                        .mark_sent(&ev.id, row.seq, wamid.as_deref())
                        .await
                        .map_err(db_error)?;
                    crate::channels::count_reply(PROVIDER, row.received_at);
                    sent += 1;
                }
                Err(e) if e.is_transient() => return Err(api_error(&e)),
                Err(e) => {
                    tracing::warn!(error = %e, "WhatsApp refused a reply");
                    self.outbox
                        .mark_failed(&ev.id, row.seq, &e.to_string())
                        .await
                        .map_err(db_error)?;
                    refused += 1;
                }
            }
        }
        Ok(Outcome::applied(format!(
            "{} replies: {sent} sent now, {refused} refused",
            plan.len()
        )))
    }

    async fn status(&self, ev: &EventRecord) -> Result<Outcome, HandlerError> {
        let v: Value = serde_json::from_str(&ev.payload).unwrap_or(Value::Null);
        let s = &v["status"];
        let (Some(id), Some(status)) = (s["id"].as_str(), s["status"].as_str()) else {
            return Ok(Outcome::skipped("a status without an id"));
        };
        let error = s.pointer("/errors/0").map(|e| {
            format!(
                "{} {}",
                e["code"].as_i64().unwrap_or(0),
                e["title"].as_str().unwrap_or("")
            )
        });
        let ours = self
            .outbox
            .set_delivery(id, status, error.as_deref())
            .await
            .map_err(db_error)?;
        Ok(if ours {
            Outcome::applied(format!("message {id} is {status}"))
        } else {
            Outcome::skipped(format!("{id} is not a message of ours"))
        })
    }
}

#[async_trait::async_trait]
impl EventHandler for WhatsappHandler {
    async fn handle(&self, ev: &EventRecord) -> Result<Outcome, HandlerError> {
        match ev.event_type.as_str() {
            "message" => self.message(ev).await,
            "status" => self.status(ev).await,
            other => Ok(Outcome::skipped(format!("a {other} needs no answer"))),
        }
    }
}
