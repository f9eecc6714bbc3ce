//! Scale-out: two `vitrine serve` processes share one PostgreSQL inbox.
//! Every event is applied once, even when sent to both at the same time, and
//! when one instance is killed mid-run the other takes over its leased events.
//! Runs with `VITRINE_TEST_DB=postgres`; skipped (with a message) otherwise.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use vitrine::http::signature;

use crate::helpers::{ADMIN, ImageServer, SECRET, event, fresh_database_url, photos};

pub(crate) struct Instance {
    child: Child,
    pub(crate) url: String,
}

impl Instance {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some` once the process has exited (a crash, for a server).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// With `VITRINE_TEST_INDEX=qdrant` both instances share one Qdrant index
/// (a real scale-out); otherwise each has its own embedded index.
pub(crate) fn shared_qdrant() -> Option<String> {
    (std::env::var("VITRINE_TEST_INDEX").as_deref() == Ok("qdrant"))
        .then(|| std::env::var("VITRINE_TEST_QDRANT_URL").ok())
        .flatten()
}

pub(crate) async fn spawn_instance(
    db: &str,
    data: &Path,
    images: &ImageServer,
    alias: &str,
) -> Instance {
    spawn_instance_with(db, data, images, alias, &[]).await
}

/// [`spawn_instance`] with extra environment variables (set last, so they
/// override the defaults above them).
pub(crate) async fn spawn_instance_with(
    db: &str,
    data: &Path,
    images: &ImageServer,
    alias: &str,
    extra_env: &[(&str, &str)],
) -> Instance {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // Owned by the guard at once, so it is killed and reaped on any panic.
    let instance = Instance {
        url: url.clone(),
        child: Command::new(env!("CARGO_BIN_EXE_vitrine"))
            .arg("serve")
            .current_dir(data)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", db)
            .env("VITRINE_DATA_DIR", data)
            .env("VITRINE_BIND", format!("127.0.0.1:{port}"))
            .env("VITRINE_MODEL_DIR", root.join("models/effnet-lite0"))
            .env(
                "ORT_DYLIB_PATH",
                root.join("models/onnxruntime/libonnxruntime.so.1.31.1"),
            )
            .env("WEBHOOK_SECRET", SECRET)
            .env("VITRINE_ADMIN_TOKEN", ADMIN)
            .env("IMAGE_BASE_URL", images.base_url())
            .env("VITRINE_EMBED_THREADS", "1")
            .env("VITRINE_POLL_INTERVAL_MS", "100")
            .env("VITRINE_LEASE_SECS", "3")
            .env("VITRINE_RETRY_SCHEDULE", "200ms")
            .env("RUST_LOG", "warn")
            .env("VITRINE_WORKER_CONCURRENCY", "8")
            .env("QDRANT_URL", shared_qdrant().unwrap_or_default())
            .env("VITRINE_QDRANT_ALIAS", alias)
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vitrine serve"),
    };
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("{url}/api/v1/health")).await
            && r.status() == 200
        {
            return instance;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("instance on port {port} did not become healthy");
}

pub(crate) async fn send(client: &reqwest::Client, url: &str, body: &str) -> Value {
    let resp = client
        .post(format!("{url}/api/v1/webhooks/bakai"))
        .header(
            "X-Webhook-Signature",
            signature::sign(SECRET, body.as_bytes()),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

pub(crate) async fn admin_get(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn two_instances_share_the_inbox_and_survive_losing_one() {
    if std::env::var("VITRINE_TEST_DB").as_deref() != Ok("postgres") {
        eprintln!(
            "SKIPPED: scale-out test needs VITRINE_TEST_DB=postgres (scripts/dev-services.sh up)"
        );
        return;
    }
    let images = ImageServer::start().await;
    let photos = photos();
    for (name, bytes) in &photos {
        images.put(name, bytes.clone());
    }
    let db = fresh_database_url().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alias = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let a = spawn_instance(&db, dir_a.path(), &images, &alias).await;
    let b = spawn_instance(&db, dir_b.path(), &images, &alias).await;
    let client = reqwest::Client::new();

    const N: usize = 300;
    let mut tasks = Vec::new();
    for i in 0..N {
        let (name, _) = &photos[i % photos.len()];
        let body = event(
            "product.created",
            &format!("scale-{i}"),
            &format!("prod-{i}"),
            "2026-11-22T10:00:00Z",
            json!({"title": format!("P{i}"), "image_key": name}),
        )
        .to_string();
        if i % 5 == 0 {
            // The same delivery to both instances at once.
            let (ra, rb) = tokio::join!(send(&client, &a.url, &body), send(&client, &b.url, &body));
            assert_eq!(ra["task_id"], rb["task_id"]);
            tasks.push(ra["task_id"].as_str().unwrap().to_string());
        } else {
            let target = if i % 2 == 0 { &a.url } else { &b.url };
            tasks.push(
                send(&client, target, &body).await["task_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }

    // Let both work for a moment, then kill one mid-run (SIGKILL: no
    // graceful release; its leased events must be taken over by B).
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(a);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let page = admin_get(
            &client,
            &format!("{}/api/v1/events?status=completed&limit=1", b.url),
        )
        .await;
        if page["pagination"]["total"] == N {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all events completed: {page}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all = admin_get(&client, &format!("{}/api/v1/events?limit=1", b.url)).await;
    assert_eq!(
        all["pagination"]["total"], N,
        "one stored event per delivery"
    );
    // With a shared index, an event taken over from the killed instance
    // finds its vector already there (same image bytes) and does not embed
    // again: exactly one embedding per product. With per-instance embedded
    // indexes the killed instance's vectors die with it, so the events it
    // held (at most its 8 in flight) are embedded once more on B.
    let shared = shared_qdrant().is_some();
    let mut twice = Vec::new();
    for i in 0..N {
        let p: Value = client
            .get(format!("{}/api/v1/products/prod-{i}", b.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(p["status"], "indexed", "{p}");
        match p["embed_count"].as_i64() {
            Some(1) => {}
            Some(2) if !shared => twice.push(i),
            _ => panic!("prod-{i} was embedded too often: {p}"),
        }
    }
    assert!(
        twice.len() <= 8,
        "more re-embeddings than A had events in flight: {twice:?}"
    );
}
