//! `vitrine reindex` after a model change: search keeps answering from the
//! old version during the run; afterwards the live pointer names the new
//! version and an instance on the new model finds every product. Runs on the
//! embedded index, and on Qdrant when `VITRINE_TEST_QDRANT_URL` is set.

use std::path::{Path, PathBuf};

use serde_json::json;
use vitrine::embed::ModelInfo;

use crate::helpers::{Stopped, event, photos, spawn_app_with, start};

/// A second "model version": the same network with a different doc string,
/// so the file (and its sha256, the version) differs.
fn model_b(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/effnet-lite0");
    let out = dir.join("model-b");
    std::fs::create_dir_all(&out).unwrap();
    let mut bytes = std::fs::read(src.join("model.onnx")).unwrap();
    // ModelProto field 6 (doc_string), length-delimited; appending a field
    // is valid protobuf.
    let doc = b"vitrine test model B";
    bytes.extend_from_slice(&[0x32, doc.len() as u8]);
    bytes.extend_from_slice(doc);
    std::fs::write(out.join("model.onnx"), bytes).unwrap();
    // The classifier's label names, which the manifest names beside it.
    std::fs::copy(src.join("labels.txt"), out.join("labels.txt")).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("manifest.json")).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("sha256");
    std::fs::write(out.join("manifest.json"), manifest.to_string()).unwrap();
    out
}

async fn reindex_flow(qdrant: Option<String>) {
    let alias = format!("vt{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let (q, a) = (qdrant.clone(), alias.clone());
    let app = spawn_app_with(move |s| {
        if let Some(url) = q {
            s.qdrant = Some(vitrine::config::QdrantSettings {
                url,
                rest_url: None,
                api_key: None,
                alias: a,
                shards: 1,
                replication: 1,
            });
        }
    })
    .await;
    let photos = photos();
    for (name, bytes) in photos.iter().take(4) {
        app.images.put(name, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("c-{name}"),
            name,
            "2026-11-22T10:00:00Z",
            json!({"title": name, "category": "x", "image_key": name}),
        ))
        .await;
    }
    for (name, _) in photos.iter().take(4) {
        app.wait_product(name, "indexed").await;
    }
    let version_a = ModelInfo::load(&app.settings.embed.model_dir)
        .unwrap()
        .version;

    let tmp = tempfile::tempdir().unwrap();
    let mut settings_b = app.settings.clone();
    settings_b.embed.model_dir = model_b(tmp.path());
    let version_b = ModelInfo::load(&settings_b.embed.model_dir)
        .unwrap()
        .version;
    assert_ne!(version_a, version_b);

    // Search answers (from version A) while the reindex runs.
    let s = settings_b.clone();
    let job = tokio::spawn(async move { vitrine::commands::reindex::run(&s, |_, _| {}).await });
    let (probe, probe_bytes) = &photos[0];
    let mut answered = 0;
    while !job.is_finished() || answered == 0 {
        let body = app.search_image_body(probe_bytes.clone(), "limit=1").await;
        assert_eq!(body["model_version"], version_a.as_str());
        assert_eq!(body["results"][0]["product_id"], probe.as_str());
        answered += 1;
    }
    let report = job.await.unwrap().unwrap();
    assert_eq!(
        (report.total, report.embedded, report.failed.len()),
        (4, 4, 0),
        "{report:?}"
    );
    assert_eq!(report.model_version, version_b);

    let again = vitrine::commands::reindex::run(&settings_b, |_, _| {})
        .await
        .unwrap();
    if qdrant.is_some() {
        // Qdrant: the version's collection again, where everything is.
        assert_eq!((again.embedded, again.skipped), (0, 4), "{again:?}");
    } else {
        // Embedded: every run builds a fresh folder, never the live one.
        assert_eq!((again.embedded, again.skipped), (4, 0), "{again:?}");
        assert_ne!(again.target, report.target);
    }

    // Switch over: an instance on model B serves B's vectors.
    let Stopped {
        images, tmp: tmp_a, ..
    } = app.stop().await;
    let app_b = start(settings_b, images, tmp_a).await;
    let body = app_b
        .search_image_body(probe_bytes.clone(), "limit=1")
        .await;
    assert_eq!(body["model_version"], version_b.as_str());
    assert_eq!(body["results"][0]["product_id"], probe.as_str());
    let (_, h) = app_b.get_json("/api/v1/health").await;
    assert_eq!(h["index"]["points"], 4);
    let (_, p) = app_b.product(probe).await;
    assert_eq!(p["model_version"], version_b.as_str());
    let (code, sim) = app_b.similar(probe, "").await;
    assert_eq!(code, 200);
    assert_eq!(sim["results"].as_array().unwrap().len(), 3);

    // The suite may run wholly on Qdrant (VITRINE_TEST_INDEX=qdrant).
    match app_b.settings.qdrant.is_none().then_some(()) {
        Some(()) => {
            let live = vitrine::index::embedded::live::read_live(&vitrine::app::index_root(
                &app_b.settings,
            ))
            .unwrap();
            assert!(live.contains(&version_b[..12]), "LIVE = {live}");
            assert_eq!(again.target, format!("embedded index {live}"));
        }
        None => {
            let info = ModelInfo::load(&app_b.settings.embed.model_dir).unwrap();
            let opened = vitrine::app::open_index(&app_b.settings, &info)
                .await
                .unwrap();
            assert_eq!(opened.live_target().await.unwrap(), Some(opened.name()));
        }
    }
}

/// The audit's case: `vitrine reindex` with an unchanged model while
/// `serve` runs. It used to open the live folder itself (the server's); now
/// it builds a fresh folder beside it, the running server keeps answering
/// from its own, and a restarted server opens the new one. An interrupted
/// run is resumed by the next one, in the same folder.
#[tokio::test]
async fn reindex_with_an_unchanged_model_builds_beside_the_running_server() {
    let app = spawn_app_with(|_| {}).await;
    if app.settings.qdrant.is_some() {
        eprintln!("SKIPPED: embedded-index folders (the suite runs on Qdrant)");
        return;
    }
    let photos = photos();
    for (name, bytes) in photos.iter().take(3) {
        app.images.put(name, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("c-{name}"),
            name,
            "2026-11-22T10:00:00Z",
            json!({"title": name, "category": "x", "image_key": name}),
        ))
        .await;
    }
    for (name, _) in photos.iter().take(3) {
        app.wait_product(name, "indexed").await;
    }
    let root = vitrine::app::index_root(&app.settings);
    let serving = vitrine::index::embedded::live::read_live(&root).unwrap();

    // Interrupted after its first product (a panic stands in for a crash).
    let s = app.settings.clone();
    let crashed = tokio::spawn(async move {
        vitrine::commands::reindex::run(&s, |done, _| {
            assert!(done < 1, "interrupted");
        })
        .await
    })
    .await;
    assert!(crashed.is_err(), "the first run was interrupted");
    let building: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("BUILDING").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(building.len(), 1, "{building:?}");
    assert_ne!(building[0], serving);
    // A crashed process's lock goes with it; here the interrupted task's
    // last blocking index call may still be finishing.
    let lock = std::fs::File::open(root.join(&building[0]).join("LOCK")).unwrap();
    for _ in 0..100 {
        if lock.try_lock().is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    lock.unlock().unwrap();
    drop(lock);

    let report = vitrine::commands::reindex::run(&app.settings, |_, _| {})
        .await
        .unwrap();
    assert_eq!(report.target, format!("embedded index {}", building[0]));
    assert!(report.skipped >= 1, "resumed: {report:?}");
    assert_eq!(report.embedded + report.skipped, 3, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    let live = vitrine::index::embedded::live::read_live(&root).unwrap();
    assert_eq!(live, building[0]);
    assert!(!root.join(&live).join("BUILDING").exists());

    // The running server still answers, from the folder it opened.
    let (probe, probe_bytes) = &photos[0];
    let body = app.search_image_body(probe_bytes.clone(), "limit=1").await;
    assert_eq!(body["results"][0]["product_id"], probe.as_str());

    // Restarted, it serves the new folder, with every product.
    let Stopped {
        settings,
        images,
        tmp,
        ..
    } = app.stop().await;
    let app = start(settings, images, tmp).await;
    let (_, h) = app.get_json("/api/v1/health").await;
    assert_eq!(h["index"]["points"], 3, "{h}");
    let body = app.search_image_body(probe_bytes.clone(), "limit=1").await;
    assert_eq!(body["results"][0]["product_id"], probe.as_str());
    assert_eq!(
        vitrine::app::index_dir(
            &app.settings,
            &ModelInfo::load(&app.settings.embed.model_dir).unwrap()
        )
        .file_name()
        .unwrap()
        .to_string_lossy(),
        live
    );
}

#[tokio::test]
async fn reindex_on_the_embedded_index() {
    reindex_flow(None).await;
}

#[tokio::test]
async fn reindex_on_qdrant() {
    let Ok(url) = std::env::var("VITRINE_TEST_QDRANT_URL") else {
        eprintln!(
            "SKIPPED: Qdrant reindex test needs VITRINE_TEST_QDRANT_URL (QDRANT_BIN=… scripts/dev-services.sh up)"
        );
        return;
    };
    reindex_flow(Some(url)).await;
}

/// A copy of the model whose manifest names no classifier head: what a
/// deployment ran before labels existed.
fn model_without_labels(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/effnet-lite0");
    let out = dir.join("model-no-labels");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(src.join("model.onnx"), out.join("model.onnx")).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("manifest.json")).unwrap()).unwrap();
    manifest.as_object_mut().unwrap().remove("labels");
    std::fs::write(out.join("manifest.json"), manifest.to_string()).unwrap();
    out
}

/// Products indexed by a model without a classifier head have no labels;
/// `vitrine reindex` with a model that has one gives them their labels
/// (the backfill), and a text search for a label then finds them.
#[tokio::test]
async fn reindex_backfills_labels() {
    let models = tempfile::tempdir().unwrap();
    let plain = model_without_labels(models.path());
    let app = spawn_app_with(move |s| s.embed.model_dir = plain).await;
    let photos = photos();
    let chosen: Vec<_> = photos.iter().take(3).collect();
    for (name, bytes) in &chosen {
        app.images.put(name, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("c-{name}"),
            name,
            "2026-11-22T10:00:00Z",
            // Titles that say nothing of what the photos show.
            json!({"title": format!("item {name}"), "category": "x", "image_key": name}),
        ))
        .await;
    }
    for (name, _) in &chosen {
        app.wait_product(name, "indexed").await;
        let (_, p) = app.product(name).await;
        assert!(
            p["labels"].is_null() || p["labels"] == json!([]),
            "no classifier head, no labels: {p}"
        );
    }

    let mut labelled = app.settings.clone();
    labelled.embed.model_dir = model_b(models.path());
    let report = vitrine::commands::reindex::run(&labelled, |_, _| {})
        .await
        .unwrap();
    assert_eq!((report.embedded, report.failed.len()), (3, 0), "{report:?}");

    let Stopped { images, tmp, .. } = app.stop().await;
    let app = start(labelled, images, tmp).await;
    let mut found = 0;
    for (name, _) in &chosen {
        let (_, p) = app.product(name).await;
        let labels = p["labels"].as_array().expect("labels after the backfill");
        assert!(!labels.is_empty(), "{p}");
        let top = labels[0]["name"].as_str().unwrap();
        assert!(labels[0]["score"].as_f64().unwrap() > 0.0, "{p}");
        let q: String = url::form_urlencoded::byte_serialize(top.as_bytes()).collect();
        let (code, body) = app
            .get_json(&format!("/api/v1/search/text?q={q}&limit=100"))
            .await;
        assert_eq!(code, 200, "{body}");
        let hit = body["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["product_id"] == name.as_str());
        if let Some(hit) = hit {
            assert_eq!(hit["signals"]["label"], true, "{body}");
            found += 1;
        }
    }
    assert_eq!(
        found,
        chosen.len(),
        "each product is found by its top label"
    );
}
