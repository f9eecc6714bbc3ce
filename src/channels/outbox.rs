//! The `channel_outbox` table: every reply keyed by `(inbound event, reply
//! number)`. A handler first commits its whole plan (the API calls, plus
//! the conversation's new state) in one transaction, then sends each
//! pending call and records it as sent with the messenger's message id. A
//! retried or redelivered event finds the plan already there and sends only
//! what is still pending, so a try that died after sending does not answer
//! again. What remains is the gap between the messenger accepting a call
//! and our recording it, which no client can close (neither API takes an
//! idempotency key); it is one call wide.

use serde_json::Value;
use sqlx::Row;

use super::conversation::{Conversation, ConversationKey, ConversationStore};
use crate::db::{Db, now_ms, text_vocabulary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Sent,
    Failed,
}

impl OutboxStatus {
    pub const ALL: [OutboxStatus; 3] = [
        OutboxStatus::Pending,
        OutboxStatus::Sent,
        OutboxStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }
}

text_vocabulary!(OutboxStatus, "outbox status");

/// One API call to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub request: Value,
}

/// A stored reply.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub seq: i64,
    pub method: String,
    pub request: Value,
    pub status: OutboxStatus,
    pub received_at: i64,
}

#[derive(Clone)]
pub struct Outbox {
    db: Db,
}

impl Outbox {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The plan of `event_id`, in order; empty when none is committed.
    pub async fn plan(&self, event_id: &str) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT seq, method, request, status, received_at FROM channel_outbox \
             WHERE event_id = $1 ORDER BY seq",
        )
        .bind(event_id)
        .fetch_all(self.db.reader())
        .await?;
        rows.into_iter()
            .map(|r| {
                let request: String = r.try_get("request")?;
                Ok(OutboxRow {
                    seq: r.try_get("seq")?,
                    method: r.try_get("method")?,
                    request: serde_json::from_str(&request).unwrap_or(Value::Null),
                    status: r.try_get("status")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    /// Commits the plan of `event_id` and the conversation's new state in
    /// one transaction. When a plan is already there (another try got
    /// first), changes nothing and returns false.
    pub async fn commit(
        &self,
        event_id: &str,
        received_at: i64,
        conversation: Option<(&ConversationKey, &Conversation)>,
        calls: &[Call],
    ) -> Result<bool, sqlx::Error> {
        let _turn = self.db.background_turn().await;
        let mut tx = self.db.writer().begin().await?;
        let now = now_ms();
        let (channel, bot_id, chat_id) = match conversation {
            Some((k, _)) => (k.channel, k.bot_id.as_str(), k.chat_id.as_str()),
            None => ("", "", ""),
        };
        for (seq, call) in calls.iter().enumerate() {
            let done = sqlx::query(
                "INSERT INTO channel_outbox (event_id, seq, channel, bot_id, chat_id, method, \
                   request, status, received_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $9) \
                 ON CONFLICT (event_id, seq) DO NOTHING",
            )
            .bind(event_id)
            .bind(seq as i64)
            .bind(channel)
            .bind(bot_id)
            .bind(chat_id)
            .bind(&call.method)
            .bind(call.request.to_string())
            .bind(received_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        if let Some((key, conv)) = conversation {
            ConversationStore::save(&mut tx, key, conv).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn mark_sent(
        &self,
        event_id: &str,
        seq: i64,
        provider_message_id: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let _turn = self.db.background_turn().await;
        let now = now_ms();
        sqlx::query(
            "UPDATE channel_outbox SET status = 'sent', provider_message_id = $3, sent_at = $4, \
               updated_at = $4 WHERE event_id = $1 AND seq = $2",
        )
        .bind(event_id)
        .bind(seq)
        .bind(provider_message_id)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// A call the messenger refused for good; later ones are still sent.
    pub async fn mark_failed(
        &self,
        event_id: &str,
        seq: i64,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let _turn = self.db.background_turn().await;
        sqlx::query(
            "UPDATE channel_outbox SET status = 'failed', error = $3, updated_at = $4 \
             WHERE event_id = $1 AND seq = $2",
        )
        .bind(event_id)
        .bind(seq)
        .bind(error)
        .bind(now_ms())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Records a delivery status (WhatsApp's sent/delivered/read/failed) of
    /// the message the messenger calls `provider_message_id`. Returns
    /// whether it is one of ours.
    pub async fn set_delivery(
        &self,
        provider_message_id: &str,
        delivery: &str,
        error: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let _turn = self.db.background_turn().await;
        let done = sqlx::query(
            "UPDATE channel_outbox SET delivery = $2, error = COALESCE($3, error), updated_at = $4 \
             WHERE provider_message_id = $1",
        )
        .bind(provider_message_id)
        .bind(delivery)
        .bind(error)
        .bind(now_ms())
        .execute(self.db.writer())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// `(status, delivery)` of every reply of `event_id` (tests, admin).
    pub async fn states(
        &self,
        event_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT status, delivery FROM channel_outbox WHERE event_id = $1 ORDER BY seq",
        )
        .bind(event_id)
        .fetch_all(self.db.reader())
        .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("delivery")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_schema() {
        let words: Vec<&str> = OutboxStatus::ALL.iter().map(|s| s.as_str()).collect();
        for w in &words {
            assert_eq!(w.parse::<OutboxStatus>().unwrap().as_str(), *w);
        }
        assert!("lost".parse::<OutboxStatus>().is_err());
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let check = format!("CHECK (status IN ({}))", quoted.join(", "));
        for schema in [
            include_str!("../../migrations/sqlite/20261201000200_channels.sql"),
            include_str!("../../migrations/postgres/20261201000200_channels.sql"),
        ] {
            assert!(schema.contains(&check), "{check}");
        }
    }
}
