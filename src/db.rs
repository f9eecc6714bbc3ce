//! The metadata database: connection, migrations and which engine it is.
//!
//! One code path serves both engines through sqlx's `Any` driver: queries
//! use `$N` placeholders (SQLite reads `$1` as a named parameter, which
//! binds by first appearance, so numbering them in order works on both) and
//! portable types only (text, BIGINT, double). Where the engines must
//! differ (claiming with `FOR UPDATE SKIP LOCKED`, schema types) the code
//! asks [`Backend`].
//!
//! SQLite, the embedded default, runs in WAL mode so that readers (the
//! event-history API, product lookups) never block the writer, with
//! `synchronous=FULL` so that a webhook acknowledged with 200 survives a power
//! cut, not only a process crash.

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
            Err(DbError::Unsupported(redact(url)))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A pool plus the engine behind it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A URL with its password replaced, for error messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Opens (creating if needed) the database and applies pending migrations.
pub async fn connect(url: &str) -> Result<Db, DbError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url)?;
    let pool = match backend {
        Backend::Sqlite => {
            // `mode=rwc`: create the file if it does not exist.
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            AnyPoolOptions::new()
                .max_connections(8)
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
                .connect(&url)
                .await?
        }
        Backend::Postgres => {
            AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?
        }
    };
    let db = Db { pool, backend };
    migrate(&db).await?;
    Ok(db)
}

/// Applies the migrations of the database's engine; the two sets live in
/// `migrations/sqlite` and `migrations/postgres` and must stay equivalent.
pub async fn migrate(db: &Db) -> Result<(), DbError> {
    match db.backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&db.pool).await?,
        Backend::Postgres => {
            sqlx::migrate!("./migrations/postgres")
                .run(&db.pool)
                .await?
        }
    }
    Ok(())
}

pub async fn ping(db: &Db) -> Result<(), DbError> {
    sqlx::query("SELECT 1").execute(&db.pool).await?;
    Ok(())
}
