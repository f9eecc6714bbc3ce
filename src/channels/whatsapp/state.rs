//! What the WhatsApp routes share.

use std::sync::Arc;

use tokio::sync::Notify;

use super::numbers::WhatsappNumbers;
use crate::{config::Secret, inbox::Inbox};

#[derive(Clone)]
pub struct WhatsappState {
    pub numbers: WhatsappNumbers,
    /// The key of `X-Hub-Signature-256`; none means 503.
    pub app_secret: Option<Secret>,
    pub inbox: Inbox,
    pub wake: Arc<Notify>,
    pub max_body_bytes: usize,
}
