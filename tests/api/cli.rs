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
