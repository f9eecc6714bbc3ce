//! The `vitrine` binary: sign, import, and a clear message when ONNX Runtime
//! is missing.

use std::{path::Path, process::Command};

use serde_json::json;

use crate::helpers::{ImageServer, photos, start, test_settings};

fn vitrine(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vitrine"));
    // A clean environment: no developer `.env` or stray settings.
    c.current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn sign_prints_the_header_for_a_body_file() {
    let dir = tempfile::tempdir().unwrap();
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/webhooks/github/x-hub-signature-256-test-vector.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, v["payload"].as_str().unwrap()).unwrap();
    let out = vitrine(dir.path())
        .args([
            "sign",
            body.to_str().unwrap(),
            "--secret",
            v["secret"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!(
            "X-Webhook-Signature: {}",
            v["X-Hub-Signature-256"].as_str().unwrap()
        )
    );
    // Without any secret: a clear error, not a panic.
    let out = vitrine(dir.path())
        .args(["sign", body.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WEBHOOK_SECRET"));
}

#[test]
fn missing_onnx_runtime_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/effnet-lite0");
    let out = vitrine(dir.path())
        .arg("serve")
        .env("VITRINE_BIND", "127.0.0.1:0")
        .env("VITRINE_DATA_DIR", dir.path())
        .env("VITRINE_MODEL_DIR", &model)
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("vitrine: ") && last.contains("scripts/fetch-assets.sh"),
        "{stderr}"
    );
}

#[tokio::test]
async fn import_queues_a_catalog_once_and_serve_indexes_it() {
    let tmp = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let images = ImageServer::start().await;
    let photos = photos();
    let mut lines = Vec::new();
    for (name, bytes) in photos.iter().take(3) {
        images.put(&format!("{name}.img"), bytes.clone());
        lines.push(
            json!({"product_id": name, "title": name, "category": "demo", "price": 1.0,
                          "currency": "KGS", "image_key": format!("{name}.img")})
            .to_string(),
        );
    }
    lines.push("{not json".into());
    lines.push(json!({"title": "no id"}).to_string());
    let file = tmp.path().join("catalog.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();

    let settings = test_settings(tmp.path(), &images).await;
    let run = || {
        let mut cmd = vitrine(tmp.path());
        if let Some(url) = &settings.database.url {
            cmd.env("DATABASE_URL", url.expose());
        }
        let out = cmd
            .args([
                "import",
                file.to_str().unwrap(),
                "--data-dir",
                tmp.path().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(
        first.contains("3 queued, 0 already queued, 2 invalid"),
        "{first}"
    );
    let second = run();
    assert!(second.contains("0 queued, 3 already queued"), "{second}");

    let app = start(settings, images, Some(tmp.clone())).await;
    for (name, _) in photos.iter().take(3) {
        app.wait_product(name, "indexed").await;
    }
}

type BotApiCalls = std::sync::Arc<std::sync::Mutex<Vec<(String, String, serde_json::Value)>>>;

/// A local fake of the Bot API's methods these commands call; records
/// `(bot{token}, method, body)` of each call.
async fn fake_bot_api() -> (String, BotApiCalls) {
    use axum::{Json, Router, extract::Path as UrlPath, routing::post};

    let calls: BotApiCalls = Default::default();
    let seen = calls.clone();
    let app = Router::new().route(
        "/{bot}/{method}",
        post(
            move |UrlPath((bot, method)): UrlPath<(String, String)>,
                  Json(body): Json<serde_json::Value>| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push((bot, method.clone(), body));
                    Json(match method.as_str() {
                        "getWebhookInfo" => json!({"ok": true, "result": {
                            "url": "https://shop.example.com/api/v1/webhooks/telegram",
                            "has_custom_certificate": false, "pending_update_count": 3,
                            "last_error_date": 1764669600,
                            "last_error_message": "Wrong response from the webhook: 502 Bad Gateway",
                            "max_connections": 40}}),
                        _ => json!({"ok": true, "result": true, "description": "Webhook was set"}),
                    })
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, calls)
}

/// `vitrine telegram --bot ID set-webhook` for a bot stored in the
/// database: its own token in the Bot API's path, its own secret, its own
/// route; an unknown id, or no key to open the stored bots, is refused
/// before any call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_webhook_commands_take_a_stored_bot() {
    const KEY: &str = "3f1c0b6f4e2a9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa";
    const STORED: &str = "7000002:AAF-stored-cli-token";
    let (base, calls) = fake_bot_api().await;
    let app = crate::helpers::spawn_app_with(|s| {
        s.channels.secret_key = Some(vitrine::config::Secret::new(KEY));
    })
    .await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/channels/bots", app.addr))
        .bearer_auth(crate::helpers::ADMIN)
        .json(
            &json!({"kind": "telegram", "name": "Second shop", "token": STORED,
                      "secret": "stored-cli-secret"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    let database_url = app.settings.database_url();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: Vec<&'static str>, key: bool| {
        let mut c = vitrine(dir.path());
        c.args(args)
            .env("TELEGRAM_API_BASE_URL", &base)
            .env("DATABASE_URL", &database_url);
        if key {
            c.env("VITRINE_SECRET_KEY", KEY);
        }
        async move {
            tokio::task::spawn_blocking(move || c.output().unwrap())
                .await
                .unwrap()
        }
    };
    let out = run(
        vec![
            "telegram",
            "--bot",
            "7000002",
            "set-webhook",
            "--url",
            "https://shop.example.com",
        ],
        true,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        let calls = calls.lock().unwrap();
        let (bot, method, body) = calls.last().unwrap();
        assert_eq!(
            (bot.as_str(), method.as_str()),
            (&*format!("bot{STORED}"), "setWebhook")
        );
        assert_eq!(
            body["url"],
            "https://shop.example.com/api/v1/webhooks/telegram/7000002"
        );
        assert_eq!(body["secret_token"], "stored-cli-secret");
    }
    let out = run(vec!["telegram", "--bot", "7000002", "webhook-info"], true).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        calls.lock().unwrap().last().unwrap().0,
        format!("bot{STORED}")
    );

    let n = calls.lock().unwrap().len();
    let out = run(vec!["telegram", "--bot", "7000009", "webhook-info"], true).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && err.contains("no enabled Telegram bot 7000009"),
        "{err}"
    );
    let out = run(vec!["telegram", "--bot", "7000002", "webhook-info"], false).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && err.contains("VITRINE_SECRET_KEY"),
        "{err}"
    );
    assert!(!err.contains("AAF-stored"), "the token leaked: {err}");
    assert_eq!(
        calls.lock().unwrap().len(),
        n,
        "a refused command called the Bot API"
    );
}

/// `vitrine telegram set-webhook|webhook-info|delete-webhook` against a
/// local fake of the Bot API: the calls Telegram documents, with the
/// secret token and the default bot's route; the answer printed; clear
/// errors without a token or a secret, and never the token in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_webhook_commands_call_the_bot_api() {
    const TOKEN: &str = "123456:AAF-cli-test-token";
    let (base, calls) = fake_bot_api().await;

    let dir = tempfile::tempdir().unwrap();
    let run = |args: &'static [&'static str], env: &'static [(&'static str, &'static str)]| {
        let mut c = vitrine(dir.path());
        c.args(args).env("TELEGRAM_API_BASE_URL", &base);
        for (k, v) in env {
            c.env(k, v);
        }
        async move {
            tokio::task::spawn_blocking(move || c.output().unwrap())
                .await
                .unwrap()
        }
    };
    let both = &[
        ("TELEGRAM_BOT_TOKEN", TOKEN),
        ("TELEGRAM_WEBHOOK_SECRET", "cli-test-webhook-secret"),
    ];

    let out = run(
        &[
            "telegram",
            "set-webhook",
            "--url",
            "https://shop.example.com",
            "--drop-pending-updates",
        ],
        both,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("https://shop.example.com/api/v1/webhooks/telegram"),
        "{printed}"
    );
    {
        let calls = calls.lock().unwrap();
        let (bot, method, body) = calls.last().unwrap();
        assert_eq!(
            (bot.as_str(), method.as_str()),
            (&*format!("bot{TOKEN}"), "setWebhook")
        );
        assert_eq!(
            body["url"],
            "https://shop.example.com/api/v1/webhooks/telegram"
        );
        assert_eq!(body["secret_token"], "cli-test-webhook-secret");
        assert_eq!(body["drop_pending_updates"], true);
        assert!(
            body["allowed_updates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u == "message")
        );
    }

    let out = run(&["telegram", "webhook-info"], both).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["pending_update_count"], 3);
    assert!(info["last_error_message"].as_str().unwrap().contains("502"));

    let out = run(&["telegram", "delete-webhook"], both).await;
    assert!(out.status.success());
    assert_eq!(calls.lock().unwrap().last().unwrap().1, "deleteWebhook");

    // Refused before any call: no token, no secret, a plain-http URL.
    let n = calls.lock().unwrap().len();
    let out = run(&["telegram", "webhook-info"], &[]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TELEGRAM_BOT_TOKEN"));
    let out = run(
        &[
            "telegram",
            "set-webhook",
            "--url",
            "https://shop.example.com",
        ],
        &[("TELEGRAM_BOT_TOKEN", TOKEN)],
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("TELEGRAM_WEBHOOK_SECRET"));
    let out = run(
        &[
            "telegram",
            "set-webhook",
            "--url",
            "http://shop.example.com",
        ],
        both,
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && err.contains("https"), "{err}");
    assert!(!err.contains(TOKEN), "the token leaked: {err}");
    assert_eq!(
        calls.lock().unwrap().len(),
        n,
        "a refused command called the Bot API"
    );
}
