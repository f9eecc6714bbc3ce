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

/// The name of a model version's first embedded index folder. The version
/// is in the name, so a new model starts a new index instead of mixing
/// vectors; `vitrine reindex` builds `<this>.<timestamp>` folders beside it.
fn version_dir_name(info: &ModelInfo) -> String {
    format!("{}-{}", info.manifest.name, &info.version[..12])
}

/// True when folder `name` holds `info`'s model version: its first folder
/// or one a reindex built.
fn holds_version(name: &str, info: &ModelInfo) -> bool {
    let base = version_dir_name(info);
    name == base
        || name
            .strip_prefix(base.as_str())
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Where `serve` finds the embedded index of a given model: the folder
/// `LIVE` names when that holds this model version (the last reindex
/// built it), else the version's first folder.
pub fn index_dir(settings: &Settings, info: &ModelInfo) -> PathBuf {
    let root = index_root(settings);
    match embedded::live::read_live(&root) {
        Some(live) if holds_version(&live, info) => root.join(live),
        _ => root.join(version_dir_name(info)),
    }
}

/// Marks a folder that a reindex is still filling; removed once it is live.
const BUILDING: &str = "BUILDING";

/// The folder a reindex builds into: never one a server may have open (the
/// audit truncated a live index's files under a running server, which then
/// died with SIGBUS on its next search). It resumes an unfinished build of
/// the same version, else starts a new, timestamped folder.
fn fresh_build_dir(settings: &Settings, info: &ModelInfo) -> anyhow::Result<PathBuf> {
    let root = index_root(settings);
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create the index root {}", root.display()))?;
    let live = embedded::live::read_live(&root);
    let mut unfinished: Vec<String> = std::fs::read_dir(&root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(BUILDING).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| holds_version(name, info) && live.as_deref() != Some(name.as_str()))
        .collect();
    // Timestamped names sort by age; resume the newest.
    unfinished.sort();
    if let Some(name) = unfinished.pop() {
        return Ok(root.join(name));
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3f");
    let dir = root.join(format!("{}.{stamp}", version_dir_name(info)));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let marker = dir.join(BUILDING);
    std::fs::write(&marker, b"a reindex is filling this folder\n")
        .and_then(|()| std::fs::File::open(&marker)?.sync_all())
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(dir)
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
            Live::Embedded { root, name } => {
                embedded::live::set_live(root, name)?;
                // After the switch: a crash in between leaves a live folder
                // with a stale marker, which is never resumed (it is live).
                match std::fs::remove_file(root.join(name).join(BUILDING)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
            Live::Qdrant(q) => q.switch_alias().await?,
        }
        Ok(())
    }
}

/// Opens the index for `info`'s model version that `serve` uses: Qdrant
/// when a `[qdrant]` section is configured, else the embedded index in the
/// data directory ([`index_dir`]).
pub async fn open_index(settings: &Settings, info: &ModelInfo) -> anyhow::Result<OpenedIndex> {
    if let Some(q) = open_qdrant(settings, info).await? {
        return Ok(q);
    }
    open_embedded(settings, info, index_dir(settings, info)).await
}

/// Opens the index a reindex writes into. Embedded: a fresh folder (or an
/// unfinished one of the same version), never the one a server has open,
/// so a reindex runs beside `serve` even with an unchanged model. Qdrant:
/// the version's collection, which Qdrant itself lets several writers share.
pub async fn open_build_index(
    settings: &Settings,
    info: &ModelInfo,
) -> anyhow::Result<OpenedIndex> {
    if let Some(q) = open_qdrant(settings, info).await? {
        return Ok(q);
    }
    open_embedded(settings, info, fresh_build_dir(settings, info)?).await
}

async fn open_qdrant(settings: &Settings, info: &ModelInfo) -> anyhow::Result<Option<OpenedIndex>> {
    let Some(cfg) = &settings.qdrant else {
        return Ok(None);
    };
    let q = Arc::new(QdrantIndex::open(cfg, &info.manifest.name, info.dim(), &info.version).await?);
    Ok(Some(OpenedIndex {
        index: q.clone(),
        live: Live::Qdrant(q),
    }))
}

async fn open_embedded(
    settings: &Settings,
    info: &ModelInfo,
    dir: PathBuf,
) -> anyhow::Result<OpenedIndex> {
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
