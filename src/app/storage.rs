//! Opening what the application stores into: the metadata database with
//! its inbox, and the vector index of one model version (embedded, or a
//! Qdrant collection) with its live pointer. Shared by `serve` and the
//! commands (`import`, `migrate`, `reindex`).

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use tokio_util::task::TaskTracker;

use crate::{
    config::Settings,
    db::{self, Db},
    embed::ModelInfo,
    inbox::{Inbox, RetryPolicy},
    index::{
        EmbeddedIndex, VectorIndex,
        embedded::{self, EmbeddedOptions},
        qdrant::QdrantIndex,
    },
};

/// Where the embedded indexes live: one folder per model version, plus the
/// `LIVE` pointer.
pub fn index_root(settings: &Settings) -> PathBuf {
    settings.data_dir.join("index")
}

/// Where the embedded index of a given model lives. The version is in the
/// path, so a new model starts a new index instead of mixing vectors.
pub fn index_dir(settings: &Settings, info: &ModelInfo) -> PathBuf {
    index_root(settings).join(format!("{}-{}", info.manifest.name, &info.version[..12]))
}

/// The vector index of one model version, and how to make it the live one.
pub struct OpenedIndex {
    pub index: Arc<dyn VectorIndex>,
    live: Live,
}

enum Live {
    Embedded { root: PathBuf, name: String },
    Qdrant(Arc<QdrantIndex>),
}

impl OpenedIndex {
    /// The version-specific name: index folder or Qdrant collection.
    pub fn name(&self) -> String {
        match &self.live {
            Live::Embedded { name, .. } => name.clone(),
            Live::Qdrant(q) => q.collection().to_string(),
        }
    }

    pub fn describe(&self) -> String {
        match &self.live {
            Live::Embedded { .. } => format!("embedded index {}", self.name()),
            Live::Qdrant(_) => format!("Qdrant collection {}", self.name()),
        }
    }

    /// What the live pointer (LIVE file / Qdrant alias) names now.
    pub async fn live_target(&self) -> anyhow::Result<Option<String>> {
        Ok(match &self.live {
            Live::Embedded { root, .. } => embedded::live::read_live(root),
            Live::Qdrant(q) => q.alias_target().await?,
        })
    }

    /// Points the live pointer at this index, atomically.
    pub async fn make_live(&self) -> anyhow::Result<()> {
        match &self.live {
            Live::Embedded { root, name } => embedded::live::set_live(root, name)?,
            Live::Qdrant(q) => q.switch_alias().await?,
        }
        Ok(())
    }
}

/// Opens the index for `info`'s model version: Qdrant when a `[qdrant]`
/// section is configured, else the embedded index in the data directory.
pub async fn open_index(settings: &Settings, info: &ModelInfo) -> anyhow::Result<OpenedIndex> {
    if let Some(cfg) = &settings.qdrant {
        let q =
            Arc::new(QdrantIndex::open(cfg, &info.manifest.name, info.dim(), &info.version).await?);
        return Ok(OpenedIndex {
            index: q.clone(),
            live: Live::Qdrant(q),
        });
    }
    let dir = index_dir(settings, info);
    let name = dir
        .file_name()
        .expect("index dir has a name")
        .to_string_lossy()
        .into_owned();
    let (dim, version) = (info.dim(), info.version.clone());
    let options = EmbeddedOptions {
        search_threads: settings.index.search_threads,
    };
    let embedded =
        tokio::task::spawn_blocking(move || EmbeddedIndex::open_with(&dir, dim, &version, options))
            .await??;
    Ok(OpenedIndex {
        index: Arc::new(embedded),
        live: Live::Embedded {
            root: index_root(settings),
            name,
        },
    })
}

/// Opens (creating and migrating) the metadata database and its inbox.
pub async fn open_inbox(settings: &Settings) -> anyhow::Result<(Db, Inbox)> {
    open_inbox_tracked(settings, &TaskTracker::new()).await
}

/// [`open_inbox`], with the inbox's intake writers tracked by `tasks`.
pub async fn open_inbox_tracked(
    settings: &Settings,
    tasks: &TaskTracker,
) -> anyhow::Result<(Db, Inbox)> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
    let db = db::connect(&settings.database_url()).await?;
    let w = &settings.worker;
    let policy = RetryPolicy::new(w.retry_schedule.delays().to_vec(), w.max_retries);
    Ok((db.clone(), Inbox::with_tasks(db, policy, tasks)))
}
