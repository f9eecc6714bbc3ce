//! The one-shot commands of the `vitrine` binary, as library functions so
//! that tests can run them too: [`import`] a catalog through the inbox,
//! [`migrate`] the database, [`reindex`] into a new model version's index,
//! [`sign`] a body, and manage the Telegram bot's webhook ([`telegram`]). They sit on top of [`crate::app`] and the
//! capabilities; nothing imports them back.

pub mod import;
pub mod reindex;
pub mod telegram;

use crate::config::{Settings, redact_url};

/// `vitrine migrate`: applies pending migrations; returns the (redacted)
/// database URL it migrated.
pub async fn migrate(settings: &Settings) -> anyhow::Result<String> {
    let (db, _) = crate::app::open_inbox(settings).await?;
    db.close().await;
    Ok(redact_url(&settings.database_url()))
}

/// `vitrine sign`: the `X-Webhook-Signature` header value for `body`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    crate::http::signature::sign(secret, body)
}
