//! The OpenAPI document against the router: every route the app serves is
//! documented (and every documented operation is served), the document is
//! OpenAPI 3.1 whose references all resolve, and every operation names its
//! error responses; Swagger UI is served from the binary itself.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

/// Pages (anything outside `/api/`) and the document itself are not API
/// operations.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") && path != "/api/v1/openapi.json"
}

/// The paths in the router, read from its `Debug` text (axum has no other
/// way to list them): each route appears as `RouteId(n): "/path"`.
fn router_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("RouteId(") {
        rest = &rest[i + "RouteId(".len()..];
        let Some(q) = rest.find("): \"") else {
            continue;
        };
        if !rest[..q].bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let after = &rest[q + 4..];
        let end = after.find('"').expect("closing quote");
        out.insert(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

async fn document(app: &TestApp) -> Value {
    let resp = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Every `$ref` in `v` names something under `components`.
fn unresolved_refs(doc: &Value, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let target = r
                    .strip_prefix('#')
                    .and_then(|p| doc.pointer(p))
                    .filter(|t| !t.is_null());
                if target.is_none() {
                    out.push(r.clone());
                }
            }
            m.values().for_each(|x| unresolved_refs(doc, x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| unresolved_refs(doc, x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_served() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let served: BTreeSet<String> = router_paths(&app.router_text)
        .into_iter()
        .filter(|p| is_api(p))
        .collect();
    assert!(served.len() >= 9, "router paths not read: {served:?}");
    assert_eq!(
        served, documented,
        "the router's routes (left) and the OpenAPI paths (right) differ: \
         document the new route with #[utoipa::path] and list it in its OpenApi derive"
    );

    // And each documented method is routed: not the router's own 404
    // (empty body) or 405 for the method.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let url = format!("{}{}", app.addr, path.replace("{id}", "no-such-id"));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = app.client.request(m, &url).send().await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap();
            assert!(
                status != 405 && !(status == 404 && body.is_empty()),
                "{method} {path} is documented but not routed ({status})"
            );
        }
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_auth_schemes_errors_and_examples() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    // It reads back as an OpenAPI document.
    serde_json::from_value::<utoipa::openapi::OpenApi>(doc.clone()).expect("an OpenAPI document");
    let mut missing = Vec::new();
    unresolved_refs(&doc, &doc, &mut missing);
    assert!(missing.is_empty(), "unresolved $refs: {missing:?}");

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["admin_token"]["scheme"], "bearer");
    assert_eq!(schemes["webhook_signature"]["in"], "header");
    assert_eq!(schemes["webhook_signature"]["name"], "X-Webhook-Signature");

    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(
                codes.iter().any(|c| c.starts_with('2')),
                "{method} {path}: {codes:?}"
            );
            let errors_ok = path.ends_with("health") || path.ends_with("metrics");
            assert!(
                errors_ok || codes.iter().any(|c| c.starts_with('4')),
                "{method} {path} documents no error response: {codes:?}"
            );
            if path.starts_with("/api/v1/events") {
                assert_eq!(
                    op["security"][0]["admin_token"],
                    Value::Array(vec![]),
                    "{path}"
                );
            }
        }
    }
    let webhook = &doc["paths"]["/api/v1/webhooks/bakai"]["post"];
    assert_eq!(
        webhook["security"][0]["webhook_signature"],
        Value::Array(vec![])
    );
    for code in ["200", "400", "401", "413", "422", "503"] {
        assert!(webhook["responses"][code].is_object(), "webhook {code}");
    }
    // Examples: the webhook's body and an event record carry one.
    let text = doc.to_string();
    assert!(text.contains("product.created") && text.contains("evt-0001"));
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_with_page_headers() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/docs/", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // No asset from another host.
    assert!(!html.contains("https://") && !html.contains("//unpkg") && !html.contains("cdn"));
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let resp = app
            .client
            .get(format!("{}/docs/{asset}", app.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{asset}");
        let body = resp.text().await.unwrap();
        assert!(body.len() > 100, "{asset}");
        if asset == "swagger-initializer.js" {
            assert!(body.contains("/api/v1/openapi.json"), "{body}");
        }
    }
}
