//! What the Telegram routes share.

use std::sync::Arc;

use tokio::sync::Notify;

use super::bots::TelegramBots;
use crate::inbox::Inbox;

#[derive(Clone)]
pub struct TelegramState {
    pub bots: TelegramBots,
    pub inbox: Inbox,
    pub wake: Arc<Notify>,
    pub max_body_bytes: usize,
}
