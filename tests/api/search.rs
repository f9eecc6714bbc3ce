//! Search beyond one photo: text search in Russian and English (on SQLite,
//! and on PostgreSQL with `VITRINE_TEST_DB=postgres`), its filters and
//! folding, and paging on every search.

use serde_json::{Value, json};

use crate::helpers::{TestApp, event, photos, spawn_app};

/// The catalog of these tests: (id, title, description, category, price,
/// currency, photo).
const CATALOG: &[(&str, &str, &str, &str, f64, &str, &str)] = &[
    (
        "kettle",
        "Чайник заварочный",
        "Фарфор, 0,8 л",
        "посуда",
        900.0,
        "KGS",
        "coffee",
    ),
    (
        "tree",
        "Ёлка искусственная",
        "Новогодняя, 150 см",
        "праздник",
        2500.0,
        "KGS",
        "aloe",
    ),
    (
        "sneakers",
        "Red sneakers",
        "Running shoes, size 42",
        "shoes",
        49.0,
        "USD",
        "football",
    ),
    (
        "cafe",
        "Café table",
        "Round bistro table for a small kitchen",
        "furniture",
        120.0,
        "USD",
        "home",
    ),
    (
        "duck",
        "Өрдөк оюнчук",
        "Rubber duck, балдар үчүн оюнчук",
        "toys",
        300.0,
        "KGS",
        "toys",
    ),
    (
        "teapot-blue",
        "Blue teapot",
        "Ceramic teapot, красный чай in it",
        "посуда",
        15.0,
        "EUR",
        "orange",
    ),
];

async fn load(app: &TestApp) {
    let photos = photos();
    for (id, title, description, category, price, currency, photo) in CATALOG {
        let bytes = &photos.iter().find(|(n, _)| n == photo).unwrap().1;
        let key = format!("img/{id}");
        app.images.put(&key, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("create-{id}"),
            id,
            "2026-12-01T10:00:00Z",
            json!({"title": title, "description": description, "category": category,
                   "price": price, "currency": currency, "image_key": key}),
        ))
        .await;
    }
    for (id, ..) in CATALOG {
        app.wait_product(id, "indexed").await;
    }
}

/// The ids a text search returns, in order; asserts 200 and the page shape.
async fn text(app: &TestApp, query: &str) -> Vec<String> {
    let body = text_body(app, query).await;
    ids(&body)
}

async fn text_body(app: &TestApp, query: &str) -> Value {
    let (code, body) = app.get_json(&format!("/api/v1/search/text?{query}")).await;
    assert_eq!(code, 200, "{query}: {body}");
    assert!(body.get("next_offset").is_some(), "{body}");
    body
}

fn ids(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["product_id"].as_str().unwrap().to_string())
        .collect()
}

fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn text_queries_in_russian_and_english_find_their_products() {
    let app = spawn_app().await;
    load(&app).await;

    // Russian, any case, whole words and prefixes as the shopper types.
    assert_eq!(text(&app, &format!("q={}", q("чайник"))).await, ["kettle"]);
    assert_eq!(text(&app, &format!("q={}", q("ЧАЙНИК"))).await, ["kettle"]);
    assert_eq!(text(&app, &format!("q={}", q("чайн"))).await, ["kettle"]);
    assert_eq!(
        text(&app, &format!("q={}", q("заварочный чайник"))).await,
        ["kettle"]
    );
    // ё and е are one letter to a shopper.
    assert_eq!(text(&app, &format!("q={}", q("елка"))).await, ["tree"]);
    assert_eq!(text(&app, &format!("q={}", q("ЁЛКА"))).await, ["tree"]);
    // Kyrgyz letters are words like any other.
    assert_eq!(text(&app, &format!("q={}", q("өрдөк"))).await, ["duck"]);
    assert_eq!(text(&app, &format!("q={}", q("оюнчук"))).await, ["duck"]);

    // English; Latin diacritics are folded both ways.
    assert_eq!(text(&app, "q=red+sneakers").await, ["sneakers"]);
    assert_eq!(text(&app, "q=SNEAKER").await, ["sneakers"]);
    assert_eq!(text(&app, "q=cafe").await, ["cafe"]);
    assert_eq!(text(&app, &format!("q={}", q("Café"))).await, ["cafe"]);
    // The description and the category are searched too.
    assert_eq!(text(&app, "q=bistro").await, ["cafe"]);
    assert_eq!(text(&app, "q=shoes").await, ["sneakers"]);
    // Every word must match.
    assert!(text(&app, "q=red+table").await.is_empty());

    // A match in the title ranks above one in the description only.
    let both = text(&app, &format!("q={}", q("чай"))).await;
    assert_eq!(both, ["kettle", "teapot-blue"], "title first");
    let results = text_body(&app, "q=teapot").await;
    assert_eq!(results["results"][0]["title"], "Blue teapot");
    assert_eq!(results["results"][0]["currency"], "EUR");
    assert!(results["results"][0]["score"].as_f64().unwrap() > 0.0);

    // Filters: several categories (comma-separated or repeated), currency,
    // price.
    let dishes = format!("q={}", q("чай"));
    assert_eq!(
        text(&app, &format!("{dishes}&currency=EUR")).await,
        ["teapot-blue"]
    );
    assert_eq!(
        text(&app, &format!("{dishes}&max_price=100")).await,
        ["teapot-blue"]
    );
    assert_eq!(
        text(&app, &format!("{dishes}&min_price=100&currency=KGS,EUR")).await,
        ["kettle"]
    );
    // "r" starts "Red", "Running", "Rubber" and "Round" (furniture).
    let shoes_or_toys = "q=r&category=shoes&category=toys";
    let mut found = text(&app, shoes_or_toys).await;
    found.sort();
    assert_eq!(found, ["duck", "sneakers"]);
    assert_eq!(
        text(&app, "q=r&category=shoes,toys&currency=USD").await,
        ["sneakers"]
    );

    // The index follows the product: a new title is found, the old one not;
    // a deleted product is found no more.
    app.send(&event(
        "product.updated",
        "update-kettle",
        "kettle",
        "2026-12-01T11:00:00Z",
        json!({"title": "Самовар электрический"}),
    ))
    .await;
    app.drive_until(
        || "kettle renamed".into(),
        || async {
            app.product("kettle").await.1["title"] == "Самовар электрический"
        },
    )
    .await;
    assert_eq!(text(&app, &format!("q={}", q("самовар"))).await, ["kettle"]);
    assert!(
        text(&app, &format!("q={}", q("заварочный")))
            .await
            .is_empty()
    );
    app.send(&event(
        "product.deleted",
        "delete-sneakers",
        "sneakers",
        "2026-12-01T11:00:00Z",
        json!({}),
    ))
    .await;
    app.wait_product("sneakers", "deleted").await;
    assert!(text(&app, "q=sneakers").await.is_empty());

    // Bad input: no word, too long, a page too deep, a bad filter.
    for bad in [
        "q=".to_string(),
        "q=%21%3F".into(),
        format!("q={}", "a".repeat(300)),
        "q=tea&offset=1001".into(),
        "q=tea&min_price=10&max_price=1".into(),
    ] {
        let (code, body) = app.get_json(&format!("/api/v1/search/text?{bad}")).await;
        assert_eq!(code, 422, "{bad}: {body}");
    }
    let (code, _) = app.get_json("/api/v1/search/text?q=tea&limit=x").await;
    assert_eq!(code, 400);
    // FTS syntax in the query is only words.
    assert!(
        text(&app, "q=title%3A+NEAR%28%22a%22%29+AND+OR")
            .await
            .is_empty()
    );
}

/// Pages of `size` through `query` (which has no limit or offset) until
/// `next_offset` is null.
async fn all_pages(app: &TestApp, path: &str, query: &str, size: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut offset = Some(0);
    while let Some(o) = offset {
        let (code, body) = app
            .get_json(&format!("{path}?{query}&limit={size}&offset={o}"))
            .await;
        assert_eq!(code, 200, "{body}");
        pages.push(ids(&body));
        offset = body["next_offset"].as_u64().map(|n| n as usize);
        assert!(pages.len() < 100, "paging does not end");
    }
    pages
}

#[tokio::test]
async fn pages_are_disjoint_and_together_equal_one_large_page() {
    let app = spawn_app().await;
    let photos = photos();
    // Every photo, each titled so that one text query matches them all.
    for (i, (name, bytes)) in photos.iter().enumerate() {
        let key = format!("img/{name}");
        app.images.put(&key, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("create-{name}"),
            name,
            "2026-12-01T10:00:00Z",
            json!({"title": format!("Товар {name}"), "category": (["a", "b"][i % 2]),
                   "price": i as f64, "currency": "KGS", "image_key": key}),
        ))
        .await;
    }
    for (name, _) in &photos {
        app.wait_product(name, "indexed").await;
    }
    let first = &photos[0].0;
    let searches = [
        (
            "/api/v1/search/text".to_string(),
            format!("q={}", q("товар")),
        ),
        (
            "/api/v1/search/text".to_string(),
            format!("q={}&category=a", q("товар")),
        ),
        (format!("/api/v1/products/{first}/similar"), "x=1".into()),
        (
            format!("/api/v1/products/{first}/similar"),
            "category=b".into(),
        ),
    ];
    for (path, query) in searches {
        let (code, whole) = app.get_json(&format!("{path}?{query}&limit=100")).await;
        assert_eq!(code, 200, "{whole}");
        assert!(whole["next_offset"].is_null());
        let whole = ids(&whole);
        assert!(whole.len() >= 10, "{path}?{query}: {whole:?}");
        for size in [1, 3, 7] {
            let pages = all_pages(&app, &path, &query, size).await;
            assert!(pages.iter().all(|p| p.len() <= size));
            assert!(pages[..pages.len() - 1].iter().all(|p| p.len() == size));
            let joined: Vec<String> = pages.concat();
            assert_eq!(joined, whole, "{path}?{query} in pages of {size}");
        }
    }

    // Search by image pages the same way.
    let body = |offset: usize, limit: usize| {
        let app = &app;
        let bytes = photos[3].1.clone();
        async move {
            app.search_image_body(bytes, &format!("limit={limit}&offset={offset}"))
                .await
        }
    };
    let whole = ids(&body(0, 20).await);
    let mut joined = Vec::new();
    for o in (0..20).step_by(5) {
        let page = body(o, 5).await;
        assert_eq!(page["next_offset"], json!(o + 5));
        joined.extend(ids(&page));
    }
    assert_eq!(joined, whole);
}
