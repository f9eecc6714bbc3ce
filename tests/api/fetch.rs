//! Image fetching through the whole app (issue 9, items 1, 2 and 13): keys
//! that try to leave a `file://` base fail their event for good, nothing
//! outside the base is indexed, and the product's public `error` is a short
//! class that names no path.

use crate::helpers::{TestApp, photos, spawn_app_with};

async fn create(app: &TestApp, id: &str, key: &str) -> serde_json::Value {
    let task = app.create_product(id, key).await;
    app.wait_event_done(&task).await
}

#[tokio::test]
async fn image_keys_cannot_leave_a_file_base() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("images");
    std::fs::create_dir(&base).unwrap();
    let (_, jpeg) = photos().into_iter().next().unwrap();
    std::fs::write(base.join("inside.jpg"), &jpeg).unwrap();
    std::fs::write(dir.path().join("outside.jpg"), &jpeg).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.jpg"), base.join("link.jpg")).unwrap();
    let base_url = url::Url::from_directory_path(&base).unwrap();
    let app = spawn_app_with(|s| s.fetch.image_base_url = Some(base_url.clone())).await;
    let secret_dir = dir.path().display().to_string();

    for (id, key, reason) in [
        ("enc", "%2e%2e/outside.jpg", "image URL refused"),
        ("half", ".%2e/outside.jpg", "image URL refused"),
        ("slash", "..\\outside.jpg", "image URL refused"),
        ("deep", "a/%2e%2e/%2e%2e/outside.jpg", "image URL refused"),
        ("link", "link.jpg", "image URL refused"),
        ("missing", "missing.jpg", "image not found"),
    ] {
        let rec = create(&app, id, key).await;
        assert_eq!(rec["status"], "failed", "{key}: {rec}");
        assert_eq!(rec["retry_count"], 0, "{key}: not retried");
        let (_, p) = app.product(id).await;
        assert_eq!(p["status"], "failed", "{key}: {p}");
        let public = p["error"].as_str().unwrap();
        assert!(public.contains(reason), "{key}: {public}");
        assert!(
            !public.contains(&secret_dir),
            "{key} leaks a path: {public}"
        );
        assert!(!public.contains("file:"), "{key} leaks a URL: {public}");
    }

    let rec = create(&app, "inside", "inside.jpg").await;
    assert_eq!(rec["status"], "completed", "{rec}");
    app.wait_product("inside", "indexed").await;
    // Only the product inside the base is searchable.
    let results = app.search_image(jpeg, "limit=10").await;
    let ids: Vec<&str> = results
        .iter()
        .filter_map(|r| r["product_id"].as_str())
        .collect();
    assert_eq!(ids, ["inside"], "{results:?}");
}
