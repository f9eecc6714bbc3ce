//! Shoppers' messengers: the Telegram and WhatsApp bots, two providers in
//! the sense of [`crate::provider`]. Owns their webhook receivers (verify,
//! store in the inbox, acknowledge), their outbound API clients
//! ([`telegram::BotApi`], [`whatsapp::GraphApi`]), the conversation each
//! `(bot, chat)` is in ([`conversation`]: a small state machine kept in the
//! database, with its Russian and English [`texts`]), and the outbox that
//! makes replying idempotent ([`outbox`]). The bots of each business live
//! in the database ([`bots_store`], tokens sealed by [`secrets`], managed
//! through [`admin`]); sends keep Telegram's rates ([`throttle`]); an
//! optional model may rephrase the bots' own texts ([`phrasing`]).
//!
//! The flow of one shopper message: the receiver checks the request and
//! stores the update in the inbox, keyed for dedup by the messenger's own id
//! (`(bot, update_id)`, the `wamid`), and answers 200. The inbox worker hands
//! it to the channel's handler, which turns it into an [`conversation::Input`]
//! (a photo is downloaded and searched with the core's
//! [`crate::search::SearchService`]), steps the conversation, renders the
//! replies as API calls and commits the new state and those calls to the
//! outbox in one transaction; then it sends what the outbox has not sent yet.
//! A retried event finds its plan already there and only sends the rest.
//!
//! These modules call the core (search, fetcher, db, inbox); the core never
//! calls them.

pub mod admin;
pub mod bots_store;
pub mod conversation;
pub mod net;
pub mod outbox;
pub mod phrasing;
pub mod reply;
pub mod secrets;
pub mod shop;
pub mod telegram;
pub mod texts;
pub mod throttle;
pub mod whatsapp;

use subtle::ConstantTimeEq;

/// What the Telegram and WhatsApp providers share, built once by the app:
/// the stored bots (one store, so a change made through the admin API is
/// seen by both providers' lookups at once) and the token that stops their
/// background tasks at shutdown.
#[derive(Clone)]
pub struct ChannelsShared {
    pub store: bots_store::BotStore,
}

impl ChannelsShared {
    pub fn new(core: &crate::provider::Core) -> Self {
        Self {
            store: bots_store::BotStore::from_settings(core.db.clone(), &core.settings),
        }
    }
}

/// Compares two secrets in constant time (for equal lengths; a length
/// mismatch returns early, which reveals only the length).
pub fn secret_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Counts one received update, by channel and kind.
pub(crate) fn count_update(channel: &'static str, kind: &str) {
    metrics::counter!("visual_search_channel_updates_total", "channel" => channel, "kind" => kind.to_string())
        .increment(1);
}

/// Counts one reply sent, and the time since its inbound message arrived.
pub(crate) fn count_reply(channel: &'static str, received_at_ms: i64) {
    metrics::counter!("visual_search_channel_replies_total", "channel" => channel).increment(1);
    let secs = (crate::db::now_ms() - received_at_ms).max(0) as f64 / 1000.0;
    metrics::histogram!("visual_search_channel_reply_latency_seconds", "channel" => channel)
        .record(secs);
}
