//! Every route's guard (issue 14, item 7), walked so that a new route
//! cannot forget its own: the routes are read from the source the router is
//! built from (every `.route("…", …)` under `src/`, providers included), each
//! must be classified below, and each admin method is then called on the
//! real app with no token, a wrong token and a near-miss token (401 each),
//! and with the right one (anything but 401). A signed route (a provider's
//! webhook) gets the same walk with missing and wrong signatures.
//!
//! Reading the source rather than the router: axum cannot list a router's
//! routes, and a list kept beside the router could drift from it; the walker
//! refuses route-building calls it does not understand (`nest`,
//! `route_service`, `fallback`), so a route cannot hide from it.

use std::path::Path;

use crate::helpers::{ADMIN, spawn_app};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Guard {
    /// Shoppers, probes, Prometheus: no credentials.
    Public,
    /// `Authorization: Bearer $VITRINE_ADMIN_TOKEN`.
    Admin,
    /// The provider's webhook signature (`X-Webhook-Signature`).
    Signature,
    /// A messenger's or CRM's own secret (Telegram's secret-token header or
    /// token in the path, Meta's `X-Hub-Signature-256` and verify token,
    /// Kommo's URL secret): the walk checks that a request without it, or
    /// with the admin token instead, is refused; the providers' own tests
    /// (`channels.rs`, `crm.rs`) check the right secret is accepted.
    ProviderSecret,
}

/// Every route of the app and its guard. A new route fails
/// `every_route_is_classified` until it is added here.
const ROUTES: &[(&str, Guard)] = &[
    ("/api/v1/webhooks/health", Guard::Public),
    ("/api/v1/products/{id}/similar", Guard::Public),
    ("/api/v1/products/{id}", Guard::Public),
    ("/api/v1/products/{id}/duplicates", Guard::Public),
    ("/api/v1/duplicates", Guard::Admin),
    ("/api/v1/search/image", Guard::Public),
    ("/api/v1/health", Guard::Public),
    ("/api/v1/metrics", Guard::Public),
    ("/api/v1/webhooks/bakai", Guard::Signature),
    ("/api/v1/events", Guard::Admin),
    ("/api/v1/events/{id}", Guard::Admin),
    ("/api/v1/events/{id}/retry", Guard::Admin),
    ("/api/v1/events/replay", Guard::Admin),
    ("/api/v1/events/replay/{job_id}", Guard::Admin),
    ("/api/v1/events/replay/{job_id}/cancel", Guard::Admin),
    ("/api/v1/stats", Guard::Admin),
    ("/api/v1/search/text", Guard::Public),
    ("/api/v1/crm/organisations", Guard::Admin),
    ("/api/v1/crm/organisations/{name}", Guard::Admin),
    ("/api/v1/crm/rules", Guard::Admin),
    ("/api/v1/crm/rules/dry-run", Guard::Admin),
    ("/api/v1/crm/rules/import", Guard::Admin),
    ("/api/v1/crm/rules/metrics", Guard::Admin),
    ("/api/v1/crm/rules/{id}", Guard::Admin),
    ("/api/v1/crm/rules/{id}/runs", Guard::Admin),
    ("/api/v1/crm/runs", Guard::Admin),
    ("/api/v1/webhooks/kommo/{secret}", Guard::ProviderSecret),
    ("/api/v1/webhooks/telegram", Guard::ProviderSecret),
    ("/api/v1/webhooks/telegram/{bot}", Guard::ProviderSecret),
    ("/api/v1/channels/bots", Guard::Admin),
    ("/api/v1/channels/bots/{id}/disable", Guard::Admin),
    ("/api/v1/channels/bots/{id}/enable", Guard::Admin),
    ("/api/v1/channels/bots/{id}/rotate", Guard::Admin),
    ("/api/v1/webhooks/whatsapp", Guard::ProviderSecret),
    // The pages: the admin console's page is public, its data comes from
    // the admin API with the token the browser session holds.
    ("/", Guard::Public),
    ("/products/{id}", Guard::Public),
    ("/admin", Guard::Public),
    ("/assets/{name}", Guard::Public),
    ("/api/v1/products/{id}/thumbnail", Guard::Public),
];

#[derive(Debug)]
struct Route {
    path: String,
    methods: Vec<&'static str>,
    file: String,
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The non-test code of a source file: up to its `#[cfg(test)]` module,
/// without comment lines, and nothing of a file that is a test module.
fn production_text(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    // A test module (`#[cfg(test)] mod …`), by convention the file's end;
    // a lone `#[cfg(test)]` item elsewhere does not cut the file short.
    // (`#[cfg(test)] mod tests;` names a file of its own, skipped above.)
    let test_mod = text.match_indices("#[cfg(test)]").find(|(i, m)| {
        let after = text[i + m.len()..].trim_start();
        after.starts_with("mod ")
            && after
                .lines()
                .next()
                .is_some_and(|l| l.trim_end().ends_with('{'))
    });
    let code = match test_mod {
        Some((i, _)) => &text[..i],
        None => &text,
    };
    // Comments (doc examples name routes that do not exist).
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The expression from `open` (just after a `(`) to its matching `)`.
fn balanced(text: &str) -> &str {
    let mut depth = 1;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    panic!(
        "unbalanced parentheses after: {}",
        &text[..text.len().min(80)]
    );
}

/// The HTTP methods a method router expression names (`get(h)`,
/// `post(h).layer(…)`, `get(a).post(b)`, `axum::routing::delete(h)`).
fn methods_of(expr: &str) -> Vec<&'static str> {
    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];
    let mut out = Vec::new();
    for m in METHODS {
        let mut from = 0;
        while let Some(i) = expr[from..].find(&format!("{m}(")) {
            let at = from + i;
            let before = expr[..at].chars().last();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                out.push(m);
            }
            from = at + m.len();
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn source_routes() -> Vec<Route> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut routes = Vec::new();
    for file in files {
        let text = production_text(&file);
        let rel = file.strip_prefix(&src).unwrap().display().to_string();
        for call in [".nest(", ".nest_service(", ".route_service(", ".fallback("] {
            assert!(
                !text.contains(call),
                "{rel} builds routes with `{call}`: teach tests/api/auth_walk.rs to read it"
            );
        }
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let args = balanced(rest);
            let trimmed = args.trim_start();
            let path = trimmed
                .strip_prefix('"')
                .and_then(|t| t.split('"').next())
                .unwrap_or_else(|| {
                    panic!("{rel}: a route whose path is not a literal: .route({args})")
                });
            let methods = methods_of(&trimmed[path.len() + 2..]);
            assert!(!methods.is_empty(), "{rel}: no method in .route({args})");
            routes.push(Route {
                path: path.to_string(),
                methods,
                file: rel.clone(),
            });
        }
    }
    routes
}

fn guard_of(path: &str) -> Option<Guard> {
    ROUTES.iter().find(|(p, _)| *p == path).map(|(_, g)| *g)
}

#[test]
fn every_route_is_classified() {
    let routes = source_routes();
    // The walker must see the routes we know are there, or it reads nothing.
    for (known, _) in ROUTES {
        assert!(
            routes.iter().any(|r| r.path == *known),
            "{known} is classified but no source defines it: remove it, or fix the walker"
        );
    }
    for r in &routes {
        assert!(
            guard_of(&r.path).is_some(),
            "{} ({}) is a new route: classify it in ROUTES of tests/api/auth_walk.rs",
            r.path,
            r.file
        );
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-0000-0000-000000000000")
}

#[tokio::test]
async fn every_admin_route_refuses_missing_and_wrong_tokens() {
    let app = spawn_app().await;
    let mut walked = 0;
    for r in source_routes() {
        let guard = guard_of(&r.path).expect("classified (see every_route_is_classified)");
        for m in &r.methods {
            let method: reqwest::Method = m.to_uppercase().parse().unwrap();
            let url = format!("{}{}", app.addr, concrete(&r.path));
            let call = |auth: Option<String>, sig: Option<&str>| {
                let mut req = app
                    .client
                    .request(method.clone(), &url)
                    .header("content-type", "application/json")
                    .body(r#"{"event_type":"product.deleted","event_id":"walk","timestamp":"2026-11-22T10:00:00Z","data":{"product_id":"walk"}}"#);
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                if let Some(s) = sig {
                    req = req.header("x-webhook-signature", s);
                }
                async move { req.send().await.unwrap().status().as_u16() }
            };
            match guard {
                Guard::Public => continue,
                Guard::Admin => {
                    for (what, auth) in [
                        ("no token", None),
                        ("a wrong token", Some("Bearer wrong-token".to_string())),
                        ("an empty token", Some("Bearer ".to_string())),
                        (
                            "a prefix of the token",
                            Some(format!("Bearer {}", &ADMIN[..5])),
                        ),
                        ("the token plus a byte", Some(format!("Bearer {ADMIN}x"))),
                        ("the token without Bearer", Some(ADMIN.to_string())),
                        ("another scheme", Some(format!("Basic {ADMIN}"))),
                    ] {
                        let status = call(auth, None).await;
                        assert_eq!(status, 401, "{m} {} with {what}", r.path);
                    }
                    let status = call(Some(format!("Bearer {ADMIN}")), None).await;
                    assert_ne!(status, 401, "{m} {} with the right token", r.path);
                }
                Guard::Signature => {
                    for (what, sig) in [
                        ("no signature", None),
                        ("a malformed signature", Some("sha256=zz")),
                        ("a wrong signature", Some("sha256=00")),
                    ] {
                        let status = call(None, sig).await;
                        assert_eq!(status, 401, "{m} {} with {what}", r.path);
                    }
                    // A bearer token is no substitute for the signature.
                    let status = call(Some(format!("Bearer {ADMIN}")), None).await;
                    assert_eq!(status, 401, "{m} {} with the admin token", r.path);
                }
                Guard::ProviderSecret => {
                    // Refused: 401/403, 400 for a handshake without its
                    // parameters, 503 where no secret is configured.
                    for (what, auth) in [
                        ("no credentials", None),
                        ("the admin token", Some(format!("Bearer {ADMIN}"))),
                    ] {
                        let status = call(auth, None).await;
                        assert!(
                            [400, 401, 403, 503].contains(&status),
                            "{m} {} with {what}: {status}",
                            r.path
                        );
                    }
                }
            }
            walked += 1;
        }
    }
    assert!(walked >= 4, "walked only {walked} guarded methods");
}
