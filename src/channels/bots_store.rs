//! The bots stored in the database, one per business (`channel_bots`):
//! Telegram bots (token, webhook secret) and WhatsApp numbers
//! (`phone_number_id`, access token, verify token), beside the default bot
//! and number of the settings.
//!
//! [`BotStore`] adds, lists, enables, disables and rotates them; tokens and
//! secrets are sealed with [`super::secrets`] before they reach SQL, and
//! nothing here ever logs one. [`Directory`] is what the receivers and the
//! handlers look bots up in: an in-memory snapshot of the enabled bots with
//! their clients built, so a delivery costs no query. It reloads
//!
//! - when this instance changed a bot (the store bumps a generation that
//!   every directory built on it sees on its next lookup);
//! - on a miss, at most once per [`MISS_RELOAD_INTERVAL`], so a bot that
//!   another instance added is found within a second, while a flood of
//!   deliveries for unknown bots costs at most one query a second;
//! - when the snapshot is older than [`MAX_AGE`], so a bot that another
//!   instance disabled or rotated stops working here within that time.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::secrets::{Binding, SealError, SealKey};
use crate::{
    config::Secret,
    db::{Db, now_ms},
};

/// The shortest time between two reloads caused by a lookup that missed.
pub const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// How old a snapshot may get before a lookup reloads it anyway.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// Which messenger a stored bot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BotKind {
    Telegram,
    Whatsapp,
}

impl BotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BotKind::Telegram => "telegram",
            BotKind::Whatsapp => "whatsapp",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "telegram" => Some(BotKind::Telegram),
            "whatsapp" => Some(BotKind::Whatsapp),
            _ => None,
        }
    }
}

/// A stored bot as the admin API shows it: never a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BotInfo {
    pub id: String,
    pub kind: BotKind,
    /// The Telegram bot id (the token's digits before `:`) or the WhatsApp
    /// `phone_number_id`.
    pub external_id: String,
    /// The business it answers for.
    pub name: String,
    pub enabled: bool,
    /// Whether it has a webhook secret (Telegram) or a verify token
    /// (WhatsApp).
    pub secret_set: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored, enabled bot with its token and secret opened.
#[derive(Debug, Clone)]
pub struct StoredBot {
    pub info: BotInfo,
    pub token: Secret,
    pub secret: Option<Secret>,
}

/// A new bot, as the admin API takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBot {
    pub kind: BotKind,
    pub name: String,
    /// The bot token (Telegram) or the Graph API access token (WhatsApp).
    pub token: Secret,
    /// The webhook secret (Telegram) or the verify token (WhatsApp).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// WhatsApp only: the number's `phone_number_id`.
    #[serde(default)]
    pub phone_number_id: Option<String>,
}

/// New credentials for a stored bot; what is absent is kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub secret: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum BotStoreError {
    #[error(
        "bots in the database need VITRINE_SECRET_KEY (`[channels] secret_key`, 32 bytes as hex \
         or base64) to encrypt their tokens, and it is not set: nothing was stored"
    )]
    NoKey,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("bot {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// The id in a Telegram token `123456:AA…`: its digits before the colon.
pub fn telegram_bot_id(token: &str) -> Option<String> {
    let (id, rest) = token.trim().split_once(':')?;
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) && !rest.is_empty())
        .then(|| id.to_string())
}

/// Telegram's rule for `secret_token`: 1–256 of `A-Z a-z 0-9 _ -`.
fn valid_telegram_secret(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The stored bots. Cheap to clone; clones share the generation that tells
/// every [`Directory`] on this instance that a bot changed.
#[derive(Clone, Debug)]
pub struct BotStore {
    db: Db,
    key: Option<SealKey>,
    generation: Arc<AtomicU64>,
    /// The external ids of the settings' default bot and number, which a
    /// stored bot may not take: `(kind, external id)`.
    reserved: Arc<Vec<(BotKind, String)>>,
}

const COLUMNS: &str = "id, kind, external_id, name, token_ciphertext, secret_ciphertext, \
                       enabled, created_at, updated_at";

impl BotStore {
    pub fn new(db: Db, key: Option<SealKey>, reserved: Vec<(BotKind, String)>) -> Self {
        Self {
            db,
            key,
            generation: Arc::new(AtomicU64::new(0)),
            reserved: Arc::new(reserved),
        }
    }

    /// From the settings: the key of `[channels] secret_key` (validated at
    /// start-up) and the default bot's and number's ids.
    pub fn from_settings(db: Db, s: &crate::config::Settings) -> Self {
        let key = s
            .channels
            .secret_key_bytes()
            .ok()
            .flatten()
            .map(|k| SealKey::new(&k));
        let mut reserved = Vec::new();
        if let Some(id) = s
            .telegram
            .bot_token
            .as_ref()
            .and_then(|t| telegram_bot_id(t.expose()))
        {
            reserved.push((BotKind::Telegram, id));
        }
        if let Some(id) = s
            .whatsapp
            .phone_number_id
            .as_ref()
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
        {
            reserved.push((BotKind::Whatsapp, id));
        }
        Self::new(db, key, reserved)
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    fn key(&self) -> Result<&SealKey, BotStoreError> {
        self.key.as_ref().ok_or(BotStoreError::NoKey)
    }

    /// Bumped by every change this instance makes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Checks a new bot and finds its external id (the Telegram token's
    /// digits before the colon, or the WhatsApp `phone_number_id`).
    pub fn external_id(new: &NewBot) -> Result<String, BotStoreError> {
        let invalid = |m: &str| Err(BotStoreError::Invalid(m.into()));
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return invalid("name must be 1 to 100 characters");
        }
        match new.kind {
            BotKind::Telegram => {
                if new.phone_number_id.is_some() {
                    return invalid("phone_number_id is for WhatsApp numbers only");
                }
                if let Some(s) = &new.secret
                    && !valid_telegram_secret(s.expose())
                {
                    return invalid(
                        "secret must be 1 to 256 characters of A-Z, a-z, 0-9, `_` and `-` \
                         (Telegram's rule for secret_token)",
                    );
                }
                telegram_bot_id(new.token.expose()).ok_or_else(|| {
                    BotStoreError::Invalid(
                        "token is not a Telegram bot token (`<digits>:<secret>`)".into(),
                    )
                })
            }
            BotKind::Whatsapp => {
                let id = new.phone_number_id.as_deref().unwrap_or("").trim();
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.len() > 32 {
                    return invalid("phone_number_id (digits) is required for a WhatsApp number");
                }
                if new.token.is_empty() || new.token.expose().trim().len() > 4096 {
                    return invalid("token (the Graph API access token) is required");
                }
                if let Some(s) = &new.secret
                    && (s.is_empty() || s.expose().len() > 256)
                {
                    return invalid("secret (the verify token) must be 1 to 256 characters");
                }
                Ok(id.to_string())
            }
        }
    }

    fn seal(
        key: &SealKey,
        kind: BotKind,
        external_id: &str,
        field: &str,
        value: &Secret,
    ) -> Result<Vec<u8>, SealError> {
        key.seal(
            Binding {
                kind: kind.as_str(),
                external_id,
                field,
            },
            value,
        )
    }

    /// Stores a new bot, its token and secret sealed.
    pub async fn add(&self, new: &NewBot) -> Result<BotInfo, BotStoreError> {
        let key = self.key()?;
        let external_id = Self::external_id(new)?;
        if self
            .reserved
            .iter()
            .any(|(k, id)| *k == new.kind && *id == external_id)
        {
            return Err(BotStoreError::Conflict(format!(
                "{} {external_id} is the default one of the settings",
                new.kind.as_str()
            )));
        }
        let token = Self::seal(key, new.kind, &external_id, "token", &new.token)?;
        let secret = new
            .secret
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| Self::seal(key, new.kind, &external_id, "secret", s))
            .transpose()?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO channel_bots (id, kind, external_id, name, token_ciphertext, \
               secret_ciphertext, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) \
             ON CONFLICT (kind, external_id) DO NOTHING",
        )
        .bind(&id)
        .bind(new.kind.as_str())
        .bind(&external_id)
        .bind(new.name.trim())
        .bind(token)
        .bind(secret)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(BotStoreError::Conflict(format!(
                "a {} bot {external_id} is stored already",
                new.kind.as_str()
            )));
        }
        self.changed();
        self.info(&id).await
    }

    /// Every stored bot, enabled or not, oldest first.
    pub async fn list(&self) -> Result<Vec<BotInfo>, BotStoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM channel_bots ORDER BY created_at, id"
        )))
        .fetch_all(self.db.reader())
        .await?;
        rows.iter().map(info_of).collect()
    }

    pub async fn info(&self, id: &str) -> Result<BotInfo, BotStoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM channel_bots WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.reader())
        .await?
        .ok_or_else(|| BotStoreError::NotFound(id.to_string()))?;
        info_of(&row)
    }

    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<BotInfo, BotStoreError> {
        self.key()?;
        let done =
            sqlx::query("UPDATE channel_bots SET enabled = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(enabled))
                .bind(now_ms())
                .bind(id)
                .execute(self.db.writer())
                .await?;
        if done.rows_affected() == 0 {
            return Err(BotStoreError::NotFound(id.to_string()));
        }
        self.changed();
        self.info(id).await
    }

    /// Replaces the token and/or the secret. A Telegram token must stay
    /// the same bot's (BotFather's "revoke" keeps the id).
    pub async fn rotate(&self, id: &str, r: &Rotation) -> Result<BotInfo, BotStoreError> {
        let key = self.key()?;
        if r.token.is_none() && r.secret.is_none() {
            return Err(BotStoreError::Invalid(
                "give a new token, a new secret, or both".into(),
            ));
        }
        let info = self.info(id).await?;
        let check = NewBot {
            kind: info.kind,
            name: info.name.clone(),
            token: r.token.clone().unwrap_or_else(|| match info.kind {
                // Only the new values are checked; stand-ins for the rest.
                BotKind::Telegram => Secret::new(format!("{}:kept", info.external_id)),
                BotKind::Whatsapp => Secret::new("kept"),
            }),
            secret: r.secret.clone(),
            phone_number_id: (info.kind == BotKind::Whatsapp).then(|| info.external_id.clone()),
        };
        if Self::external_id(&check)? != info.external_id {
            return Err(BotStoreError::Invalid(format!(
                "the new token is another bot's, not bot {}'s",
                info.external_id
            )));
        }
        let now = now_ms();
        if let Some(t) = &r.token {
            let sealed = Self::seal(key, info.kind, &info.external_id, "token", t)?;
            sqlx::query(
                "UPDATE channel_bots SET token_ciphertext = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(sealed)
            .bind(now)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        }
        if let Some(s) = &r.secret {
            let sealed = Self::seal(key, info.kind, &info.external_id, "secret", s)?;
            sqlx::query(
                "UPDATE channel_bots SET secret_ciphertext = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(sealed)
            .bind(now)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        }
        self.changed();
        self.info(id).await
    }

    /// The external ids of the stored bots of `kind` that are disabled.
    pub async fn disabled_ids(&self, kind: BotKind) -> Result<Vec<String>, BotStoreError> {
        if self.key.is_none() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_scalar(
            "SELECT external_id FROM channel_bots WHERE kind = $1 AND enabled = 0",
        )
        .bind(kind.as_str())
        .fetch_all(self.db.reader())
        .await?)
    }

    /// The enabled bots of `kind`, opened. A row that does not open (another
    /// key, a ciphertext moved from another row) is left out with a warning
    /// that names its id, never its bytes. Without a key there is nothing
    /// to open, and no query is made.
    pub async fn load_enabled(&self, kind: BotKind) -> Result<Vec<StoredBot>, BotStoreError> {
        let Some(key) = &self.key else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM channel_bots WHERE kind = $1 AND enabled = 1 \
             ORDER BY created_at, id"
        )))
        .bind(kind.as_str())
        .fetch_all(self.db.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let info = info_of(row)?;
            match open_row(key, &info, row) {
                Ok((token, secret)) => out.push(StoredBot {
                    info,
                    token,
                    secret,
                }),
                Err(e) => tracing::warn!(
                    bot = %info.id, kind = info.kind.as_str(), external_id = %info.external_id,
                    error = %e, "a stored bot is left out"
                ),
            }
        }
        Ok(out)
    }
}

fn info_of(row: &sqlx::any::AnyRow) -> Result<BotInfo, BotStoreError> {
    let kind: String = row.try_get("kind")?;
    let secret: Option<Vec<u8>> = row.try_get("secret_ciphertext")?;
    let enabled: i64 = row.try_get("enabled")?;
    Ok(BotInfo {
        id: row.try_get("id")?,
        kind: BotKind::parse(&kind)
            .ok_or_else(|| BotStoreError::Invalid(format!("unknown bot kind {kind}")))?,
        external_id: row.try_get("external_id")?,
        name: row.try_get("name")?,
        enabled: enabled != 0,
        secret_set: secret.is_some(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn open_row(
    key: &SealKey,
    info: &BotInfo,
    row: &sqlx::any::AnyRow,
) -> Result<(Secret, Option<Secret>), BotStoreError> {
    let binding = |field| Binding {
        kind: info.kind.as_str(),
        external_id: &info.external_id,
        field,
    };
    let token: Vec<u8> = row.try_get("token_ciphertext")?;
    let secret: Option<Vec<u8>> = row.try_get("secret_ciphertext")?;
    let token = key.open(binding("token"), &token)?;
    let secret = secret
        .map(|s| key.open(binding("secret"), &s))
        .transpose()?;
    Ok((token, secret))
}

type Build<T> = Arc<dyn Fn(StoredBot) -> Option<T> + Send + Sync>;

struct Snapshot<T> {
    items: Arc<Vec<Arc<T>>>,
    /// The external ids of the disabled ones.
    disabled: Arc<Vec<String>>,
    loaded_at: Option<Instant>,
    generation: u64,
}

struct DirectoryState<T> {
    /// A std lock: held only to clone or swap an `Arc`, never across an
    /// `.await`.
    current: RwLock<Snapshot<T>>,
    /// One reload at a time; the others wait and then find it done.
    reloading: tokio::sync::Mutex<()>,
}

/// The enabled stored bots of one kind, each built into what its channel
/// uses (`T`: a bot with its client). Cheap to clone; clones share the
/// snapshot.
pub struct Directory<T> {
    store: BotStore,
    kind: BotKind,
    build: Build<T>,
    state: Arc<DirectoryState<T>>,
}

impl<T> Clone for Directory<T> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            kind: self.kind,
            build: self.build.clone(),
            state: self.state.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> Directory<T> {
    pub fn new(
        store: BotStore,
        kind: BotKind,
        build: impl Fn(StoredBot) -> Option<T> + Send + Sync + 'static,
    ) -> Self {
        Self {
            store,
            kind,
            build: Arc::new(build),
            state: Arc::new(DirectoryState {
                current: RwLock::new(Snapshot {
                    items: Arc::new(Vec::new()),
                    disabled: Arc::new(Vec::new()),
                    loaded_at: None,
                    generation: 0,
                }),
                reloading: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The bots as last loaded (no query).
    pub fn cached(&self) -> Arc<Vec<Arc<T>>> {
        self.state
            .current
            .read()
            .map(|s| s.items.clone())
            .unwrap_or_default()
    }

    /// Whether the snapshot must be reloaded before it is used: this
    /// instance changed a bot since, or it is older than `age`.
    fn stale(&self, age: Duration) -> bool {
        let Ok(s) = self.state.current.read() else {
            return true;
        };
        s.generation != self.store.generation() || s.loaded_at.is_none_or(|t| t.elapsed() >= age)
    }

    /// Reloads when [`Directory::stale`] for `age`; true when it did.
    async fn refresh(&self, age: Duration) -> bool {
        if !self.stale(age) {
            return false;
        }
        let _one = self.state.reloading.lock().await;
        // Someone else may have reloaded while this one waited.
        if !self.stale(age) {
            return true;
        }
        self.reload_now().await;
        true
    }

    /// Loads the bots now. A database error keeps the previous snapshot
    /// (and its time, so the next reload waits its turn).
    async fn reload_now(&self) {
        let generation = self.store.generation();
        let loaded = async {
            let bots = self.store.load_enabled(self.kind).await?;
            let disabled = self.store.disabled_ids(self.kind).await?;
            Ok::<_, BotStoreError>((bots, disabled))
        };
        let loaded = match loaded.await {
            Ok((bots, disabled)) => Some((
                Arc::new(
                    bots.into_iter()
                        .filter_map(|b| (self.build)(b))
                        .map(Arc::new)
                        .collect::<Vec<_>>(),
                ),
                Arc::new(disabled),
            )),
            Err(e) => {
                tracing::warn!(error = %e, kind = self.kind.as_str(), "stored bots could not be loaded");
                None
            }
        };
        if let Ok(mut s) = self.state.current.write() {
            if let Some((items, disabled)) = loaded {
                s.items = items;
                s.disabled = disabled;
            }
            s.loaded_at = Some(Instant::now());
            s.generation = generation;
        }
    }

    /// The bots, reloaded first when this instance changed one or the
    /// snapshot is older than [`MAX_AGE`].
    pub async fn current(&self) -> Arc<Vec<Arc<T>>> {
        self.refresh(MAX_AGE).await;
        self.cached()
    }

    /// Whether `external_id` is a stored bot that is disabled (as of the
    /// snapshot, reloaded when stale).
    pub async fn is_disabled(&self, external_id: &str) -> bool {
        self.refresh(MAX_AGE).await;
        self.state
            .current
            .read()
            .is_ok_and(|s| s.disabled.iter().any(|d| d == external_id))
    }

    /// The first bot that `matches`; on a miss, reloads (at most once per
    /// [`MISS_RELOAD_INTERVAL`]) and looks again.
    pub async fn find(&self, matches: impl Fn(&T) -> bool) -> Option<Arc<T>> {
        let hit = |items: &[Arc<T>]| items.iter().find(|b| matches(b)).cloned();
        if let Some(b) = hit(&self.current().await) {
            return Some(b);
        }
        if self.refresh(MISS_RELOAD_INTERVAL).await {
            return hit(&self.cached());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bot_id_is_the_tokens_prefix() {
        assert_eq!(telegram_bot_id("123456:ABC-def").as_deref(), Some("123456"));
        assert_eq!(telegram_bot_id("abc:def"), None);
        assert_eq!(telegram_bot_id("123456"), None);
        assert_eq!(telegram_bot_id("123456:"), None);
    }

    #[test]
    fn new_bots_are_checked_per_kind() {
        let tg = |token: &str, secret: Option<&str>| NewBot {
            kind: BotKind::Telegram,
            name: "Shop".into(),
            token: Secret::new(token),
            secret: secret.map(Secret::new),
            phone_number_id: None,
        };
        assert_eq!(
            BotStore::external_id(&tg("42:abc", Some("s-1_A"))).unwrap(),
            "42"
        );
        assert!(BotStore::external_id(&tg("nope", None)).is_err());
        assert!(BotStore::external_id(&tg("42:abc", Some("with space"))).is_err());
        let mut wa = NewBot {
            kind: BotKind::Whatsapp,
            name: "Shop".into(),
            token: Secret::new("EAAG"),
            secret: Some(Secret::new("verify")),
            phone_number_id: Some(" 1065 ".into()),
        };
        assert_eq!(BotStore::external_id(&wa).unwrap(), "1065");
        wa.phone_number_id = None;
        assert!(BotStore::external_id(&wa).is_err());
        wa.phone_number_id = Some("12a".into());
        assert!(BotStore::external_id(&wa).is_err());
    }
}
