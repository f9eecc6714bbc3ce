//! The metadata database: connection and migrations.
//!
//! SQLite is the embedded default. It runs in WAL mode so that readers (the
//! event-history API, product lookups) never block the writer, with
//! `synchronous=FULL` so that a webhook acknowledged with 200 survives a power
//! cut, not only a process crash.

use std::{str::FromStr, time::Duration};

use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported DATABASE_URL `{0}`: this build speaks sqlite://")]
    Unsupported(String),
}

pub type Db = SqlitePool;

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Opens (creating if needed) the database and applies pending migrations.
pub async fn connect(url: &str) -> Result<Db, DbError> {
    if !url.starts_with("sqlite:") {
        return Err(DbError::Unsupported(url.to_string()));
    }
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

pub async fn migrate(pool: &Db) -> Result<(), DbError> {
    sqlx::migrate!("./migrations/sqlite").run(pool).await?;
    Ok(())
}

pub async fn ping(pool: &Db) -> Result<(), DbError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
