//! [`SendThrottle`]: how fast a bot may send. Telegram allows about one
//! message a second to one chat and about thirty a second per bot (the
//! limits teloxide's `Throttle` keeps too); beyond them it answers 429,
//! which [`crate::channels::telegram::BotApi`] waits out, but staying under
//! them means no reply waits for a refusal first.
//!
//! Two keyed GCRA limiters (`governor`): one per `(bot, chat)` with a
//! burst of one, so messages to one chat are spaced by `1/rate`; one per
//! bot with a burst of its rate. A send *waits* for its turn
//! (`until_key_ready`) rather than being dropped: a reply is late, never
//! lost. Answers to callback queries are not messages and are not
//! throttled. WhatsApp numbers use the per-sender limiter only
//! ([`SendThrottle::per_sender`]): Meta's limit is a number's throughput.

use std::{num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota};

pub struct SendThrottle {
    per_chat: Option<DefaultKeyedRateLimiter<(String, String)>>,
    per_bot: DefaultKeyedRateLimiter<String>,
}

/// Keys kept before forgetting those whose limit has fully recovered.
const RETAIN_AT: usize = 10_000;

impl SendThrottle {
    /// `per_chat` messages a second to one chat, `per_bot` a second per bot
    /// (each at least 1).
    pub fn new(per_chat: u32, per_bot: u32) -> Self {
        let per_chat = NonZeroU32::new(per_chat).unwrap_or(NonZeroU32::MIN);
        let per_bot = NonZeroU32::new(per_bot).unwrap_or(NonZeroU32::MIN);
        let chat_quota = Quota::with_period(Duration::from_secs(1) / per_chat.get())
            .expect("a non-zero period")
            .allow_burst(NonZeroU32::MIN);
        Self {
            per_chat: Some(DefaultKeyedRateLimiter::keyed(chat_quota)),
            per_bot: DefaultKeyedRateLimiter::keyed(Quota::per_second(per_bot)),
        }
    }

    /// `per_sec` messages a second per sender (bot or number), with a burst
    /// of as many, and no limit per chat.
    pub fn per_sender(per_sec: u32) -> Self {
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        Self {
            per_chat: None,
            per_bot: DefaultKeyedRateLimiter::keyed(Quota::per_second(per_sec)),
        }
    }

    /// Whether a Bot API method sends a message to a chat.
    pub fn is_send(method: &str) -> bool {
        method.starts_with("send") || method == "copyMessage" || method == "forwardMessage"
    }

    /// Waits until `bot` may send one more message to `chat`.
    pub async fn wait(&self, bot: &str, chat: &str) {
        let started = std::time::Instant::now();
        if let Some(per_chat) = &self.per_chat {
            per_chat
                .until_key_ready(&(bot.to_string(), chat.to_string()))
                .await;
            if per_chat.len() > RETAIN_AT {
                per_chat.retain_recent();
            }
        }
        self.per_bot.until_key_ready(&bot.to_string()).await;
        let waited = started.elapsed();
        if waited >= Duration::from_millis(1) {
            metrics::histogram!("visual_search_channel_send_wait_seconds")
                .record(waited.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_to_one_chat_are_spaced_and_other_chats_are_not_held_up() {
        let t = SendThrottle::new(20, 1000);
        let start = std::time::Instant::now();
        for _ in 0..4 {
            t.wait("1", "chat-a").await;
        }
        // Burst one, then every 50 ms: at least 150 ms for four.
        assert!(
            start.elapsed() >= Duration::from_millis(145),
            "{:?}",
            start.elapsed()
        );
        // Another chat, and another bot's same chat, have their own turns
        // (checked without waiting, so a slow machine cannot flake it).
        let per_chat = t.per_chat.as_ref().unwrap();
        assert!(per_chat.check_key(&("1".into(), "chat-b".into())).is_ok());
        assert!(per_chat.check_key(&("2".into(), "chat-a".into())).is_ok());
        assert!(SendThrottle::is_send("sendMediaGroup"));
        assert!(!SendThrottle::is_send("answerCallbackQuery"));
    }
}
