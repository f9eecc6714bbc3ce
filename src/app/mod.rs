//! Builds the application: opens storage, loads the model, builds the
//! [`Core`] and the enabled providers from it, wires the routes, binds the
//! listener (port 0 in tests), runs the server and the workers until a
//! shutdown future resolves, and then drains everything it started.

mod storage;

use std::{collections::HashMap, future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::{net::TcpListener, sync::Notify};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use storage::{
    OpenedIndex, index_dir, index_root, open_build_index, open_inbox, open_inbox_tracked,
    open_index,
};

use crate::{
    catalog::Catalog,
    config::Settings,
    crm::Crm,
    embed::{EmbedService, Embedder, ImageFetcher},
    http::{
        AppState,
        limits::UploadPermits,
        serve::{ConnLimits, serve},
    },
    inbox::{Inbox, ReplayLimits, WorkerConfig, worker::Handlers},
    provider::{Core, Provider},
    search::SearchService,
    telemetry::{self, HealthBoard},
};

/// The providers this build knows, in mounting order, each built only when
/// its settings section enables it. A new provider is one more line here
/// (and its section in `config`).
fn providers(core: &Core) -> Vec<Box<dyn Provider>> {
    let mut list: Vec<Box<dyn Provider>> = Vec::new();
    let channels = crate::channels::ChannelsShared::new(core);
    if core.settings.bakai.enabled {
        list.push(Box::new(Catalog::new(core)));
    }
    if core.settings.crm.enabled {
        list.push(Box::new(Crm::new(core)));
    }
    if core.settings.telegram.enabled {
        list.push(Box::new(crate::channels::telegram::Telegram::new(
            core, &channels,
        )));
    }
    if core.settings.whatsapp.enabled {
        list.push(Box::new(crate::channels::whatsapp::Whatsapp::new(
            core, &channels,
        )));
    }
    list
}

pub struct Application {
    listener: TcpListener,
    core: Core,
    state: AppState,
    providers: Vec<Box<dyn Provider>>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        let metrics = telemetry::metrics_handle();
        let tasks = TaskTracker::new();

        let (db, inbox) = open_inbox_tracked(&settings, &tasks).await?;

        let s = settings.embed.clone();
        let embedder = tokio::task::spawn_blocking(move || Embedder::from_settings(&s)).await??;
        let info = embedder.info().clone();
        let embed = EmbedService::start_tracked(embedder, settings.embed.batch, &tasks);

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
        let fetcher = ImageFetcher::from_settings(&settings.fetch, settings.s3.as_ref()).await?;
        let search = SearchService::new(index.clone(), embed.clone(), db.clone(), fetcher.clone());

        let listener = TcpListener::bind(&settings.server.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let core = Core {
            settings: Arc::new(settings),
            db,
            inbox,
            index,
            embed,
            fetcher,
            search,
            wake: Arc::new(Notify::new()),
            tasks,
            health: HealthBoard::default(),
        };
        let providers = providers(&core);
        let state = AppState {
            db: core.db.clone(),
            inbox: core.inbox.clone(),
            index: core.index.clone(),
            embed: core.embed.clone(),
            search: core.search.clone(),
            wake: core.wake.clone(),
            metrics,
            admin_token: core.settings.server.admin_token.clone(),
            max_upload_bytes: core.settings.fetch.max_bytes,
            upload_permits: UploadPermits::new(core.settings.server.max_search_uploads),
            replay: ReplayLimits::from_settings(&core.settings.replay),
            providers: Arc::new(providers.iter().map(|p| (p.name(), p.status())).collect()),
            health: core.health.clone(),
        };
        Ok(Self {
            listener,
            core,
            state,
            providers,
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

    /// Every route the server will serve, with its layers: what
    /// [`Application::run_until`] serves (tests read its paths).
    pub fn router(&self) -> axum::Router {
        routes(self.state.clone(), &self.providers, &self.core.settings)
    }

    /// Processes due events on demand, beside the worker loop (tests).
    pub fn due_processor(&self) -> DueProcessor {
        DueProcessor {
            inbox: self.core.inbox.clone(),
            handlers: Arc::new(handlers(&self.providers)),
            cfg: worker_config(&self.core.settings),
        }
    }

    /// Serves until `shutdown` resolves (mini-redis's `server::run(listener,
    /// shutdown)`), then stops taking requests, lets open ones finish within
    /// `server.shutdown_grace_secs`, drains the workers, waits for every
    /// task it started (intake writers, the embed batcher) and closes the
    /// database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            core,
            state,
            providers,
        } = self;
        let stop = CancellationToken::new();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                shutdown.await;
                tracing::info!("shutdown requested");
                stop.cancel();
            });
        }
        let settings = core.settings.clone();
        let workers = spawn_workers(&core, &providers, stop.clone());
        if let Some(retention) = settings.inbox.retention() {
            core.tasks.spawn(crate::inbox::retention::run(
                core.db.clone(),
                retention,
                settings.inbox.purge_interval(),
                stop.clone(),
            ));
        }
        if let Some(alerter) =
            crate::alerts::Alerter::from_settings(core.db.clone(), &settings.alerts)
        {
            core.tasks.spawn(alerter.run(stop.clone()));
        }
        for p in &providers {
            for task in p.background(stop.clone()) {
                core.tasks.spawn(task);
            }
        }
        if settings.fetch.probe_secs > 0 {
            core.tasks.spawn(crate::embed::fetch::monitor::run(
                core.fetcher.clone(),
                core.health.clone(),
                std::time::Duration::from_secs(settings.fetch.probe_secs),
                stop.clone(),
            ));
        }
        let app = routes(state, &providers, &settings);
        drop(providers);
        tracing::info!(addr = %listener.local_addr()?, "vitrine listening");
        let limits = ConnLimits {
            max_connections: settings.server.max_connections,
            header_read_timeout: settings.server.header_read_timeout(),
        };
        let serve = serve(listener, app, limits, stop.clone());
        let grace = settings.server.shutdown_grace();
        let deadline = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                tokio::time::sleep(grace).await;
            }
        };
        tokio::select! {
            r = serve => r.context("HTTP server failed")?,
            _ = deadline => tracing::warn!(?grace, "open requests did not finish within the shutdown grace; closing them"),
        }
        stop.cancel();
        let _ = workers.await;
        // The last handles to the inbox and the embedder go here, so the
        // intake writers and the batcher see their channels close, finish
        // what they hold and end.
        let (db, tasks) = (core.db.clone(), core.tasks.clone());
        drop(core);
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!("background tasks did not finish within the shutdown grace");
        }
        db.close().await;
        Ok(())
    }
}

/// The core routes, each provider's, the web pages, and the API
/// documentation of them all (`/api/v1/openapi.json`, Swagger UI at `/docs`).
fn routes(state: AppState, providers: &[Box<dyn Provider>], settings: &Settings) -> axum::Router {
    use utoipa::OpenApi as _;
    let doc = crate::http::openapi::document(
        providers
            .iter()
            .map(|p| p.openapi())
            .chain([crate::web::openapi::WebApi::openapi()]),
    );
    let mut routers: Vec<axum::Router> = providers.iter().map(|p| p.router()).collect();
    routers.push(crate::web::router(crate::web::WebState {
        search: state.search.clone(),
        products: crate::catalog::ProductStore::new(state.db.clone()),
        thumbs: crate::thumbs::ThumbStore::new(state.db.clone()),
    }));
    routers.push(crate::http::openapi::docs_router(doc));
    crate::http::router(state, routers, &settings.server)
}

fn handlers(providers: &[Box<dyn Provider>]) -> Handlers {
    let mut handlers: Handlers = HashMap::new();
    for p in providers {
        for (key, h) in p.handlers() {
            handlers.insert(key.to_string(), h);
        }
    }
    handlers
}

fn spawn_workers(
    core: &Core,
    providers: &[Box<dyn Provider>],
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let handlers = handlers(providers);
    tokio::spawn(crate::inbox::worker::run(
        core.inbox.clone(),
        handlers,
        worker_config(&core.settings),
        core.wake.clone(),
        stop,
    ))
}

fn worker_config(settings: &Settings) -> WorkerConfig {
    let w = &settings.worker;
    WorkerConfig {
        concurrency: w.concurrency,
        lease: w.lease(),
        poll_interval: w.poll_interval(),
        shutdown_grace: w.shutdown_grace(),
        abort_grace: w.abort_grace(),
        handler_timeout: w.handler_timeout(&settings.fetch),
    }
}

/// A handle that processes whatever is due in the inbox, in the caller's
/// task: see [`crate::inbox::worker::process_due`].
#[derive(Clone)]
pub struct DueProcessor {
    inbox: Inbox,
    handlers: Arc<Handlers>,
    cfg: WorkerConfig,
}

impl DueProcessor {
    /// Processes every due event; returns how many.
    pub async fn process_due(&self) -> usize {
        crate::inbox::worker::process_due(&self.inbox, &self.handlers, &self.cfg).await
    }

    /// Events not finished yet: pending, retrying or being processed.
    pub async fn unfinished(&self) -> anyhow::Result<i64> {
        Ok(self.inbox.unfinished().await?)
    }

    /// The app's inbox, as providers see it (tests store events of other
    /// providers through it).
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }
}

/// Resolves on Ctrl-C or SIGTERM: what `vitrine serve` hands to
/// [`Application::run_until`].
pub async fn shutdown_signal() {
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
