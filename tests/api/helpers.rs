//! Spawns the real application on a random port with a fresh data dir, plus
//! a local image server, and offers small helpers to drive them over HTTP.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path as UrlPath, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vitrine::{
    Application, Settings,
    config::{QdrantSettings, Secret},
    http::signature,
};

pub const SECRET: &str = "test-secret-1";
pub const ADMIN: &str = "admin-token-1";

/// Real photos provided by `scripts/fetch-assets.sh`.
pub fn photos() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/photos");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|_| panic!("{} is missing: run scripts/fetch-assets.sh", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 10,
        "need at least 10 photos in {}; run scripts/fetch-assets.sh",
        dir.display()
    );
    out
}

/// What the image server does for one path.
#[derive(Clone)]
pub struct Served {
    pub bytes: Vec<u8>,
    /// Answer 503 this many times before serving.
    pub fail_first: usize,
    /// Wait this long before answering.
    pub delay: Duration,
}

#[derive(Clone, Default)]
pub struct ImageServer {
    pub addr: Option<SocketAddr>,
    files: Arc<Mutex<HashMap<String, Served>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl ImageServer {
    pub async fn start() -> Self {
        // reqwest is built without a default TLS crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut server = ImageServer::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        server.addr = Some(listener.local_addr().unwrap());
        let app = Router::new()
            .route("/{*path}", get(serve_image))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr.unwrap())
    }

    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        self.put_flaky(key, bytes, 0);
    }

    pub fn put_flaky(&self, key: &str, bytes: Vec<u8>, fail_first: usize) {
        self.put_served(
            key,
            Served {
                bytes,
                fail_first,
                delay: Duration::ZERO,
            },
        );
    }

    /// Serves `bytes`, each time only after `delay`.
    pub fn put_slow(&self, key: &str, bytes: Vec<u8>, delay: Duration) {
        self.put_served(
            key,
            Served {
                bytes,
                fail_first: 0,
                delay,
            },
        );
    }

    fn put_served(&self, key: &str, served: Served) {
        self.files.lock().unwrap().insert(key.to_string(), served);
    }

    pub fn hits(&self, key: &str) -> usize {
        self.hits.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

async fn serve_image(State(s): State<ImageServer>, UrlPath(path): UrlPath<String>) -> Response {
    let n = {
        let mut hits = s.hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    let file = s.files.lock().unwrap().get(&path).cloned();
    if let Some(f) = &file {
        tokio::time::sleep(f.delay).await;
    }
    match file {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(f) if n <= f.fail_first => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        // Deliberately claim JPEG whatever the bytes are: content is checked
        // by decoding, not by trusting the header.
        Some(f) => ([("content-type", "image/jpeg")], f.bytes).into_response(),
    }
}

pub struct TestApp {
    pub addr: String,
    pub client: reqwest::Client,
    pub images: ImageServer,
    pub settings: Settings,
    /// The `Debug` text of the app's router, the only way axum shows its
    /// routes. Not the router itself: it holds the app's state (the embedder
    /// among it), and a clone kept here would keep shutdown waiting.
    pub router_text: String,
    _tmp: Option<Arc<tempfile::TempDir>>,
    token: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// Processes due events in the test's own task (beside the app's worker
    /// loop), so waiting helpers drive the inbox instead of only watching it.
    due: Option<vitrine::app::DueProcessor>,
}

/// The suite runs on SQLite by default and on PostgreSQL when
/// `VITRINE_TEST_DB=postgres` (server from `VITRINE_TEST_POSTGRES_URL`, as
/// `scripts/dev-services.sh up` prints): each app then gets a database of
/// its own, created here.
pub async fn fresh_database_url() -> String {
    if std::env::var("VITRINE_TEST_DB").as_deref() != Ok("postgres") {
        return String::new();
    }
    let admin = std::env::var("VITRINE_TEST_POSTGRES_URL").expect(
        "VITRINE_TEST_DB=postgres needs VITRINE_TEST_POSTGRES_URL (scripts/dev-services.sh up)",
    );
    sqlx::any::install_default_drivers();
    let name = format!("vitrine_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::Executor::execute(
        &mut conn,
        sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
    )
    .await
    .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// Settings for a test app: fast polling, a short retry schedule, the
/// model from the repository, and a fresh database.
pub async fn test_settings(data_dir: &Path, images: &ImageServer) -> Settings {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // `VITRINE_TEST_INDEX=qdrant` runs the suite against a Qdrant server,
    // each app with collections of its own (a unique alias prefix).
    let qdrant =
        (std::env::var("VITRINE_TEST_INDEX").as_deref() == Ok("qdrant")).then(|| QdrantSettings {
            url: std::env::var("VITRINE_TEST_QDRANT_URL")
                .expect("VITRINE_TEST_INDEX=qdrant needs VITRINE_TEST_QDRANT_URL"),
            rest_url: None,
            api_key: None,
            alias: format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            shards: 1,
            replication: 1,
        });
    let database_url = fresh_database_url().await;
    let mut s = Settings::for_data_dir(data_dir);
    s.database.url = (!database_url.is_empty()).then(|| Secret::new(database_url));
    s.qdrant = qdrant;
    s.server.bind = "127.0.0.1:0".into();
    s.server.admin_token = Some(Secret::new(ADMIN));
    s.bakai.webhook_secret = vec![Secret::new(SECRET)];
    s.fetch.image_base_url = Some(images.base_url().parse().unwrap());
    s.embed.model_dir = root.join("models/effnet-lite0");
    s.embed.threads = 2;
    s.worker.poll_interval_ms = 50;
    s.worker.retry_schedule = "100ms".parse().unwrap();
    s.worker.max_retries = 3;
    // The webhook monitor would call every fake Bot API at start-up; the
    // tests that check it turn it on.
    s.telegram.webhook_info_secs = 0;
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let images = ImageServer::start().await;
    let tmp = Arc::new(tempfile::tempdir().unwrap());
    let mut settings = test_settings(tmp.path(), &images).await;
    tweak(&mut settings);
    start(settings, images, Some(tmp)).await
}

pub async fn start(
    settings: Settings,
    images: ImageServer,
    tmp: Option<Arc<tempfile::TempDir>>,
) -> TestApp {
    // `VITRINE_TEST_LOG=1 cargo test …` shows the apps' logs (RUST_LOG
    // sets the levels).
    if std::env::var_os("VITRINE_TEST_LOG").is_some() {
        vitrine::telemetry::init_logs(vitrine::config::LogFormat::Pretty);
    }
    let app = Application::build(settings.clone())
        .await
        .expect("the app builds (did you run scripts/fetch-assets.sh?)");
    let addr = format!("http://127.0.0.1:{}", app.port());
    let token = CancellationToken::new();
    let due = Some(app.due_processor());
    let router_text = format!("{:?}", app.router());
    let handle = tokio::spawn(app.run_until(token.clone().cancelled_owned()));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        images,
        settings,
        router_text,
        _tmp: tmp,
        token,
        handle: Some(handle),
        due,
    }
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A product event body.
pub fn event(kind: &str, event_id: &str, product_id: &str, ts: &str, data: Value) -> Value {
    let mut d = json!({ "product_id": product_id });
    for (k, v) in data.as_object().unwrap() {
        d[k] = v.clone();
    }
    json!({ "event_type": kind, "event_id": event_id, "timestamp": ts, "data": d })
}

/// What a stopped app leaves behind: everything a restart needs.
pub struct Stopped {
    pub settings: Settings,
    pub images: ImageServer,
    /// The data directory, kept alive for the restart.
    pub tmp: Option<Arc<tempfile::TempDir>>,
}

impl TestApp {
    /// Stops the server and workers and waits until they are gone.
    pub async fn stop(mut self) -> Stopped {
        // It holds handler clones; the app waits for those to go on shutdown.
        self.due.take();
        self.token.cancel();
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
        Stopped {
            settings: self.settings.clone(),
            images: self.images.clone(),
            tmp: self._tmp.clone(),
        }
    }

    pub async fn post_signed(&self, body: &[u8], secret: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/webhooks/bakai", self.addr))
            .header("content-type", "application/json")
            .header("X-Webhook-Signature", signature::sign(secret, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Signs and sends an event; asserts 200 and returns the response body.
    pub async fn send(&self, ev: &Value) -> Value {
        let resp = self.post_signed(ev.to_string().as_bytes(), SECRET).await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A public route, called as a shopper would: without the admin token,
    /// so an auth regression on a public route fails the test.
    /// Sends `product.created` for `id` with only an `image_key`
    /// (`evt-{id}`); returns the stored event's task id.
    pub async fn create_product(&self, id: &str, key: &str) -> String {
        let sent = self
            .send(&event(
                "product.created",
                &format!("evt-{id}"),
                id,
                "2026-11-22T10:00:00Z",
                json!({ "image_key": key }),
            ))
            .await;
        sent["task_id"].as_str().unwrap().to_string()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let req = self.client.get(format!("{}{}", self.addr, path));
        json_of(req.send().await.unwrap()).await
    }

    /// An admin route, with the admin token.
    pub async fn admin_get_json(&self, path: &str) -> (u16, Value) {
        let req = self
            .client
            .get(format!("{}{}", self.addr, path))
            .bearer_auth(ADMIN);
        json_of(req.send().await.unwrap()).await
    }

    /// An admin request with the admin token and an optional JSON body:
    /// the status, the body as JSON (null when it is not JSON) and as text.
    pub async fn admin_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, String) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.addr))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (code, json, text)
    }

    pub async fn product(&self, id: &str) -> (u16, Value) {
        self.get_json(&format!("/api/v1/products/{id}")).await
    }

    pub async fn event_record(&self, task_id: &str) -> Value {
        let (status, body) = self
            .admin_get_json(&format!("/api/v1/events/{task_id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// The app's inbox, to store events as a provider would.
    pub fn inbox(&self) -> &vitrine::inbox::Inbox {
        self.due.as_ref().expect("the app is running").inbox()
    }

    /// Drives the inbox until `done` holds: each round processes whatever
    /// is due in this task, then checks. Fails at once, with `what()`, when
    /// the inbox has nothing left to do and `done` still does not hold, and
    /// after 60 s at the latest (retries wait for their schedule).
    pub async fn drive_until<F, Fut>(&self, what: impl Fn() -> String, done: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let due = self.due.as_ref().expect("the app is running");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if done().await {
                return;
            }
            let processed = due.process_due().await;
            if processed == 0 {
                if due.unfinished().await.unwrap() == 0 && !done().await {
                    panic!("the inbox is idle and still not: {}", what());
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out: {}",
                    what()
                );
                // Something is retrying (or in the app's own worker): wait
                // for it to come due.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Drives the inbox until the event reaches a final state (completed or
    /// failed), and returns it.
    pub async fn wait_event_done(&self, task_id: &str) -> Value {
        let done = || async {
            let e = self.event_record(task_id).await;
            e["status"] == "completed" || e["status"] == "failed"
        };
        self.drive_until(|| format!("event {task_id} finished"), done)
            .await;
        self.event_record(task_id).await
    }

    /// Drives the inbox until the product has `status` and no event of it
    /// is waiting.
    pub async fn wait_product(&self, id: &str, status: &str) -> Value {
        let done = || async {
            let (code, p) = self.product(id).await;
            code == 200 && p["status"] == status && p["pending_event"].is_null()
        };
        self.drive_until(|| format!("product {id} is {status}"), done)
            .await;
        self.product(id).await.1
    }

    pub async fn search_image(&self, bytes: Vec<u8>, query: &str) -> Vec<Value> {
        self.search_image_body(bytes, query).await["results"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The whole search response (results and model version); asserts 200.
    pub async fn search_image_body(&self, bytes: Vec<u8>, query: &str) -> Value {
        let resp = self
            .client
            .post(format!("{}/api/v1/search/image?{query}", self.addr))
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    pub async fn similar(&self, id: &str, query: &str) -> (u16, Value) {
        self.get_json(&format!("/api/v1/products/{id}/similar?{query}"))
            .await
    }
}
