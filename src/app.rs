//! Builds the application: opens storage, loads the model, wires `AppState`,
//! binds the listener (port 0 in tests), runs the server and the workers, and
//! shuts both down cleanly.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    catalog::{CatalogSync, ProductStore, sync::PROVIDER},
    config::{Secret, Settings},
    db::{self, Db},
    embed::{
        EmbedService, Embedder, ImageFetcher, ModelInfo,
        fetch::{AllowList, FetchConfig},
        model::resolve_ort_library,
        s3::{S3Config, S3Images},
    },
    inbox::{EventHandler, Inbox, RetryPolicy, WorkerConfig},
    index::{
        EmbeddedIndex, VectorIndex,
        embedded::live,
        qdrant::{QdrantConfig, QdrantIndex},
    },
    search::SearchService,
    telemetry,
};

/// Everything a request handler may need: cheap handles, cloned per request.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub webhook_secrets: Arc<Vec<Secret>>,
    pub db: Db,
    pub inbox: Inbox,
    pub products: ProductStore,
    pub index: Arc<dyn VectorIndex>,
    pub embed: EmbedService,
    pub search: SearchService,
    /// Wakes the workers when a webhook lands, so they need not poll fast.
    pub wake: Arc<Notify>,
    pub metrics: PrometheusHandle,
}

/// Loads the model described by `settings.model_dir`, resolving the ONNX
/// Runtime library. Shared by `serve` and the benchmarks.
pub fn load_embedder(settings: &Settings) -> anyhow::Result<Embedder> {
    let info = ModelInfo::load(&settings.model_dir)?;
    let dylib = resolve_ort_library(&settings.ort_dylib_path, &settings.model_dir)?;
    Ok(Embedder::load(
        info,
        &dylib,
        settings.embed_threads(),
        settings.max_pixels,
    )?)
}

/// Where the embedded index of a given model lives. The version is in the
/// path, so a new model starts a new index instead of mixing vectors.
pub fn index_dir(settings: &Settings, info: &ModelInfo) -> PathBuf {
    settings
        .data_dir
        .join("index")
        .join(format!("{}-{}", info.manifest.name, &info.version[..12]))
}

/// The image fetcher: HTTP/file under `IMAGE_BASE_URL`, or S3 when
/// `S3_BUCKET` is set.
pub async fn build_fetcher(settings: &Settings) -> anyhow::Result<ImageFetcher> {
    let base_url = if settings.image_base_url.trim().is_empty() {
        None
    } else {
        let mut s = settings.image_base_url.trim().to_string();
        // `join` would replace the last segment of a base without '/'.
        if !s.ends_with('/') {
            s.push('/');
        }
        Some(url::Url::parse(&s).with_context(|| format!("IMAGE_BASE_URL `{s}` is not a URL"))?)
    };
    let fetcher = ImageFetcher::new(FetchConfig {
        base_url,
        allow: AllowList::parse(crate::config::split_list(&settings.fetch_allow)),
        connect_timeout: Duration::from_millis(settings.fetch_connect_timeout_ms),
        timeout: Duration::from_millis(settings.fetch_timeout_ms),
        max_bytes: settings.fetch_max_bytes,
    })?;
    if settings.s3_bucket.trim().is_empty() {
        return Ok(fetcher);
    }
    let endpoint = Some(settings.s3_endpoint.trim().to_string()).filter(|e| !e.is_empty());
    Ok(fetcher.with_s3(
        S3Images::connect(S3Config {
            bucket: settings.s3_bucket.trim().to_string(),
            endpoint,
            region: settings.s3_region.clone(),
            connect_timeout: Duration::from_millis(settings.fetch_connect_timeout_ms),
            timeout: Duration::from_millis(settings.fetch_timeout_ms),
            max_bytes: settings.fetch_max_bytes,
        })
        .await,
    ))
}

/// The vector index of one model version, and how to make it the live one.
pub struct OpenedIndex {
    pub index: Arc<dyn VectorIndex>,
    live: Live,
}

enum Live {
    Embedded { data_dir: PathBuf, name: String },
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
            Live::Embedded { data_dir, .. } => live::read_live(&data_dir.join("index")),
            Live::Qdrant(q) => q.alias_target().await?,
        })
    }

    /// Points the live pointer at this index, atomically.
    pub async fn make_live(&self) -> anyhow::Result<()> {
        match &self.live {
            Live::Embedded { data_dir, name } => live::set_live(&data_dir.join("index"), name)?,
            Live::Qdrant(q) => q.switch_alias().await?,
        }
        Ok(())
    }
}

/// Opens the index for `info`'s model version: Qdrant when `QDRANT_URL` is
/// set, else the embedded index in the data directory.
pub async fn open_index(settings: &Settings, info: &ModelInfo) -> anyhow::Result<OpenedIndex> {
    if !settings.qdrant_url.trim().is_empty() {
        let cfg = QdrantConfig {
            url: settings.qdrant_url.trim().to_string(),
            rest_url: settings.qdrant_rest_url.trim().to_string(),
            api_key: Some(settings.qdrant_api_key.expose().to_string()).filter(|k| !k.is_empty()),
            alias: settings.qdrant_alias.clone(),
            shards: settings.qdrant_shards,
            replication: settings.qdrant_replication,
        };
        let q = Arc::new(
            QdrantIndex::open(&cfg, &info.manifest.name, info.dim(), &info.version).await?,
        );
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
    let embedded =
        tokio::task::spawn_blocking(move || EmbeddedIndex::open(&dir, dim, &version)).await??;
    Ok(OpenedIndex {
        index: Arc::new(embedded),
        live: Live::Embedded {
            data_dir: settings.data_dir.clone(),
            name,
        },
    })
}

pub async fn open_inbox(settings: &Settings) -> anyhow::Result<(Db, Inbox)> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
    let db = db::connect(&settings.database_url()).await?;
    let policy = RetryPolicy::new(settings.retry_delays()?, settings.max_retries);
    Ok((db.clone(), Inbox::new(db, policy)))
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    sync: Arc<CatalogSync>,
    shutdown: CancellationToken,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let metrics = telemetry::metrics_handle();

        let (db, inbox) = open_inbox(&settings).await?;
        let products = ProductStore::new(db.clone());

        let s = settings.clone();
        let embedder = tokio::task::spawn_blocking(move || load_embedder(&s)).await??;
        let info = embedder.info().clone();
        let embed = EmbedService::start(embedder, settings.embed_batch);

        let opened = open_index(&settings, &info).await?;
        match opened.live_target().await? {
            None => opened.make_live().await?,
            Some(live) if live != opened.name() => tracing::warn!(
                live = %live, serving = %opened.name(),
                "the live index alias points at another model version; this instance serves \
                 its own model's index (run `vitrine reindex` to switch)"
            ),
            Some(_) => {}
        }
        let index = opened.index.clone();

        let fetcher = build_fetcher(&settings).await?;

        let search = SearchService::new(index.clone(), embed.clone());
        let sync = Arc::new(CatalogSync::new(
            products.clone(),
            index.clone(),
            embed.clone(),
            fetcher,
        ));

        let listener = TcpListener::bind(&settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let state = AppState {
            webhook_secrets: Arc::new(settings.webhook_secrets()),
            settings: Arc::new(settings),
            db,
            inbox,
            products,
            index,
            embed,
            search,
            wake: Arc::new(Notify::new()),
            metrics,
        };
        Ok(Self {
            listener,
            state,
            sync,
            shutdown: CancellationToken::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancel this token to stop the server and the workers gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    fn spawn_workers(&self) -> JoinHandle<()> {
        let s = &self.state.settings;
        let mut handlers: HashMap<String, Arc<dyn EventHandler>> = HashMap::new();
        handlers.insert(PROVIDER.into(), self.sync.clone());
        let cfg = WorkerConfig {
            concurrency: s.worker_concurrency,
            lease: Duration::from_secs(s.lease_secs),
            poll_interval: Duration::from_millis(s.poll_interval_ms),
        };
        tokio::spawn(crate::inbox::worker::run(
            self.state.inbox.clone(),
            handlers,
            cfg,
            self.state.wake.clone(),
            self.shutdown.clone(),
        ))
    }

    /// Serves until the shutdown token is cancelled (or Ctrl-C / SIGTERM when
    /// `handle_signals`), then drains workers and closes the database.
    pub async fn run_until_stopped(self, handle_signals: bool) -> anyhow::Result<()> {
        let workers = self.spawn_workers();
        let shutdown = self.shutdown.clone();
        if handle_signals {
            let token = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutdown requested");
                token.cancel();
            });
        }
        tracing::info!(addr = %self.local_addr(), "vitrine listening");
        let db = self.state.db.clone();
        let app = crate::http::router(self.state);
        let stop = shutdown.clone();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .context("HTTP server failed")?;
        shutdown.cancel();
        let _ = workers.await;
        db.close().await;
        Ok(())
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("can install a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
