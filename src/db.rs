//! The metadata database: connection, migrations and which engine it is.
//!
//! One code path serves both engines through sqlx's `Any` driver: queries
//! use `$N` placeholders (SQLite reads `$1` as a named parameter, and sqlx's
//! SQLite driver binds it by its number, so `$N` means the N-th bind on both
//! engines, wherever it appears and however often) and portable types only
//! (text, BIGINT, double, and vocabularies stored as text: see
//! `text_vocabulary!`). Where the engines must differ (claiming with
//! `FOR UPDATE SKIP LOCKED`, schema types) the code asks [`Backend`].
//!
//! SQLite, the embedded default, runs in WAL mode so that readers (the
//! event-history API, product lookups) never block the writer, with
//! `synchronous=FULL` so that a webhook acknowledged with 200 survives a power
//! cut, not only a process crash.
//!
//! Writes go through [`Db::writer`]. On SQLite that is a pool of exactly one
//! connection: SQLite admits one writer at a time anyway, and when several
//! connections race for the write lock the losers get `SQLITE_BUSY` and
//! SQLite's busy handler puts them to *sleep* in 1–100 ms steps (measured:
//! thousands of 5 ms naps per second under webhook load, and 500s once the
//! 10 s `busy_timeout` ran out). One connection turns that into a fair FIFO
//! queue in the pool, where a waiting write starts the moment the previous
//! one commits. Reads use the other pool and, in WAL mode, never wait for the
//! writer. On PostgreSQL, which locks rows, both are the same pool.
//!
//! Not all writes are equally urgent. A webhook's 200 waits for its insert;
//! a worker's claim or result can wait a millisecond. With one FIFO queue, a
//! group of webhooks could land behind a dozen worker writes (one commit and
//! `fsync` each). So background writes first take [`Db::background_turn`]:
//! at most one of them is queued for the writer at a time, and a webhook
//! group waits behind one background write at worst.

use std::time::Duration;

use sqlx::{AnyPool, Executor, any::AnyPoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported DATABASE_URL `{0}`: use sqlite://… or postgres://…")]
    Unsupported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::Unsupported(crate::config::redact_url(url)))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The pools plus the engine behind them. Cheap to clone.
///
/// The pools are private so that every use says which one it means
/// ([`Db::reader`] or [`Db::writer`]) and so that closing is all or nothing
/// ([`Db::close`]).
#[derive(Debug, Clone)]
pub struct Db {
    /// For reads (and, on PostgreSQL, writes).
    reader: AnyPool,
    /// For anything that writes: see the module doc.
    writer: AnyPool,
    backend: Backend,
    /// See [`Db::background_turn`]. A tokio mutex because the turn is held
    /// across the `.await` of the write.
    background: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Db {
    /// For reads. In WAL mode they never wait for the writer. On PostgreSQL
    /// this is the same pool as [`Db::writer`].
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// For anything that writes: one connection on SQLite (see the module
    /// doc). A write nobody waits on takes [`Db::background_turn`] first.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Call before a write that nobody is waiting on (worker claims and
    /// results) and hold the guard until the write is done. On SQLite this
    /// lets at most one such write queue for the single writer connection,
    /// ahead of webhook inserts; on PostgreSQL it is free and returns `None`.
    pub async fn background_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.background.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Closes both pools (they are the same one on PostgreSQL), for every
    /// clone of this `Db`: for a clean shutdown, or before another instance
    /// opens the same database. Waits until their connections are closed.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// A word that a vocabulary type (an event or product status) does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} `{value}`")]
pub struct UnknownValue {
    pub vocabulary: &'static str,
    pub value: String,
}

/// For a fieldless enum stored as TEXT, with `const ALL: [Self; N]` and
/// `fn as_str(self) -> &'static str`: implements `Display`, `FromStr` and
/// sqlx's `Type`, `Encode` and `Decode` for the `Any` driver, all through
/// `as_str`, so the words live in one place. sqlx's own `#[derive(Type)]`
/// does not fit: for an enum it implements `Type` per engine only (a named
/// enum type on PostgreSQL, not TEXT) and not for `Any`.
macro_rules! text_vocabulary {
    ($ty:ty, $vocabulary:literal) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::db::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::db::UnknownValue {
                        vocabulary: $vocabulary,
                        value: s.to_string(),
                    })
            }
        }

        impl ::sqlx::Type<::sqlx::Any> for $ty {
            fn type_info() -> ::sqlx::any::AnyTypeInfo {
                <str as ::sqlx::Type<::sqlx::Any>>::type_info()
            }

            fn compatible(ty: &::sqlx::any::AnyTypeInfo) -> bool {
                <str as ::sqlx::Type<::sqlx::Any>>::compatible(ty)
            }
        }

        impl<'q> ::sqlx::Encode<'q, ::sqlx::Any> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <::sqlx::Any as ::sqlx::Database>::ArgumentBuffer,
            ) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <&str as ::sqlx::Encode<'q, ::sqlx::Any>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> ::sqlx::Decode<'r, ::sqlx::Any> for $ty {
            fn decode(
                value: <::sqlx::Any as ::sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, ::sqlx::error::BoxDynError> {
                let s = <&str as ::sqlx::Decode<'r, ::sqlx::Any>>::decode(value)?;
                Ok(s.parse()?)
            }
        }
    };
}
pub(crate) use text_vocabulary;

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Checks shared by every [`text_vocabulary!`] enum's tests: each word
/// round-trips through `FromStr`, `Display` and serde, the words are
/// `words` in that order, `wrong` is refused with `wrong_message`, and both
/// engines' schemas hold the same `CHECK (status IN (…))` list.
#[cfg(test)]
pub(crate) fn check_vocabulary<T>(all: &[T], words: &[&str], wrong: &str, wrong_message: &str)
where
    T: Copy
        + PartialEq
        + std::fmt::Debug
        + std::fmt::Display
        + std::str::FromStr<Err = UnknownValue>
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let shown: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    assert_eq!(shown, words);
    for (s, word) in all.iter().zip(words) {
        assert_eq!(word.parse::<T>().ok(), Some(*s));
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json, serde_json::Value::String((*word).into()));
        assert_eq!(serde_json::from_value::<T>(json).unwrap(), *s);
    }
    assert_eq!(wrong.parse::<T>().unwrap_err().to_string(), wrong_message);
    let quoted: Vec<_> = words.iter().map(|w| format!("'{w}'")).collect();
    let check = format!("CHECK (status IN ({}))", quoted.join(", "));
    for schema in [
        include_str!("../migrations/sqlite/20261122000001_inbox_and_products.sql"),
        include_str!("../migrations/postgres/20261122000001_inbox_and_products.sql"),
    ] {
        assert!(schema.contains(&check), "{check}");
    }
}

/// Opens (creating if needed) the database and applies pending migrations.
pub async fn connect(url: &str) -> Result<Db, DbError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url)?;
    let db = match backend {
        Backend::Sqlite => {
            // `mode=rwc`: create the file if it does not exist.
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            // The writer first, so the file exists and is in WAL mode before
            // the readers open it.
            let writer = sqlite_pool(1).connect(&url).await?;
            let reader = sqlite_pool(8).connect(&url).await?;
            Db {
                reader,
                writer,
                backend,
                background: Default::default(),
            }
        }
        Backend::Postgres => {
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Db {
                writer: pool.clone(),
                reader: pool,
                backend,
                background: Default::default(),
            }
        }
    };
    migrate(&db).await?;
    Ok(db)
}

/// A migrated SQLite database in `dir`, for unit tests.
#[cfg(test)]
pub(crate) async fn test_sqlite(dir: &std::path::Path) -> Db {
    connect(&format!("sqlite://{}", dir.join("t.db").display()))
        .await
        .unwrap()
}

fn sqlite_pool(connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(connections)
        // A write waits its turn in the pool's queue for at most this long
        // before its request fails (sqlx's default, stated here on purpose).
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                )
                .await?;
                Ok(())
            })
        })
}

/// Applies the migrations of the database's engine; the two sets live in
/// `migrations/sqlite` and `migrations/postgres` and must stay equivalent.
pub async fn migrate(db: &Db) -> Result<(), DbError> {
    match db.backend {
        Backend::Sqlite => {
            sqlx::migrate!("./migrations/sqlite")
                .run(&db.writer)
                .await?
        }
        Backend::Postgres => {
            sqlx::migrate!("./migrations/postgres")
                .run(&db.writer)
                .await?
        }
    }
    Ok(())
}

pub async fn ping(db: &Db) -> Result<(), DbError> {
    sqlx::query("SELECT 1").execute(db.reader()).await?;
    Ok(())
}
