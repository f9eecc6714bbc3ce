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

/// A query with a typo, which no product matches word for word, still
/// finds its product, said to be an approximate match; one that matches
/// exactly is never mixed with approximate ones.
#[tokio::test]
async fn a_typo_still_finds_the_product() {
    let app = spawn_app().await;
    load(&app).await;

    // One wrong, missing or swapped letter, in Russian, Kyrgyz and English.
    for (query, id) in [
        ("чайнек", "kettle"),
        ("чайник заварачный", "kettle"),
        ("искуственная", "tree"),
        ("өрдк", "duck"),
        ("snaekers", "sneakers"),
        ("red sneekers", "sneakers"),
        ("teapto", "teapot-blue"),
    ] {
        let body = text_body(&app, &format!("q={}", q(query))).await;
        assert_eq!(
            ids(&body).first().map(String::as_str),
            Some(id),
            "{query}: {body}"
        );
        assert_eq!(
            body["results"][0]["signals"]["typo"], true,
            "{query}: {body}"
        );
        assert_eq!(
            body["results"][0]["signals"]["text"], true,
            "{query}: {body}"
        );
    }
    // Too far from every word, or a short word with a wrong letter: nothing.
    for query in ["чийнек", "sneeeekers", "rad"] {
        assert!(
            text(&app, &format!("q={}", q(query))).await.is_empty(),
            "{query}"
        );
    }
    // Filters hold for approximate matches too.
    assert!(
        text(&app, &format!("q={}&currency=USD", q("чайнек")))
            .await
            .is_empty()
    );
    // An exact match is shown alone, never mixed with near ones.
    let exact = text_body(&app, "q=teapot").await;
    assert_eq!(ids(&exact), ["teapot-blue"]);
    assert_eq!(exact["results"][0]["signals"]["typo"], false);
    // The hybrid search uses the approximate text ranking when it must.
    let like = text_body(&app, &format!("q={}&like=sneakers", q("чайнек"))).await;
    assert_eq!(
        ids(&like).first().map(String::as_str),
        Some("kettle"),
        "{like}"
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
    // Every photo, each titled so that one text query matches them all:
    // two in three by their title, the others by their description only,
    // so pages of the text search cross from the names to the rest.
    for (i, (name, bytes)) in photos.iter().enumerate() {
        let title = if i % 3 == 0 {
            format!("Изделие {name}")
        } else {
            format!("Товар {name}")
        };
        let key = format!("img/{name}");
        app.images.put(&key, bytes.clone());
        app.send(&event(
            "product.created",
            &format!("create-{name}"),
            name,
            "2026-12-01T10:00:00Z",
            json!({"title": title, "description": "хороший товар",
                   "category": (["a", "b"][i % 2]),
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
        if path.ends_with("/text") {
            // Matches in the title come before those in the description.
            let by_title: Vec<bool> = whole
                .iter()
                .map(|id| photos.iter().position(|(n, _)| n == id).unwrap() % 3 != 0)
                .collect();
            let first_rest = by_title.iter().position(|t| !t).expect("both tiers");
            assert!(
                first_rest > 0 && by_title[first_rest..].iter().all(|t| !t),
                "{whole:?}"
            );
        }
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

/// A product with a photo; waits until it is indexed.
async fn product(app: &TestApp, id: &str, title: &str, photo: Vec<u8>) {
    let key = format!("img/{id}");
    app.images.put(&key, photo);
    app.send(&event(
        "product.created",
        &format!("create-{id}"),
        id,
        "2026-12-01T10:00:00Z",
        json!({"title": title, "category": "c", "price": 10.0, "currency": "KGS",
               "image_key": key}),
    ))
    .await;
    app.wait_product(id, "indexed").await;
}

/// The left `percent` of a photo, as JPEG: at 100, the photo re-encoded;
/// below, a second, different shot of the same thing.
fn left_part(bytes: &[u8], percent: u32) -> Vec<u8> {
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let part = image::imageops::crop_imm(&img, 0, 0, w * percent / 100, h).to_image();
    let mut out = std::io::Cursor::new(Vec::new());
    part.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

fn post_image(app: &TestApp, query: &str) -> reqwest::RequestBuilder {
    app.client
        .post(format!("{}/api/v1/search/image?{query}", app.addr))
}

/// Only the fusion of both rankings puts `target` first: the photo ranks
/// `exact` above it, the words rank `wordy` above it, and `target` is
/// second in both.
#[tokio::test]
async fn hybrid_ranking_puts_first_what_neither_signal_alone_does() {
    let app = spawn_app().await;
    let photos = photos();
    let photo = |n: &str| photos.iter().find(|(p, _)| p == n).unwrap().1.clone();
    let coffee = photo("coffee");
    product(&app, "exact", "Paper notebook", coffee.clone()).await;
    product(
        &app,
        "target",
        "Electric kettle, steel",
        left_part(&coffee, 75),
    )
    .await;
    product(&app, "wordy", "Kettle kettle", photo("rocket")).await;
    // Distractors the photo or the words might pick.
    for (name, bytes) in photos.iter().filter(|(n, _)| n != "coffee").take(12) {
        product(
            &app,
            &format!("filler-{name}"),
            &format!("Thing {name}"),
            bytes.clone(),
        )
        .await;
    }
    // The whole photo, re-encoded: closest to `exact`, then to `target`.
    let query_photo = left_part(&coffee, 100);

    let ids_of = |body: &Value| ids(body);
    // The photo alone.
    let by_photo = app.search_image_body(query_photo.clone(), "limit=5").await;
    assert_eq!(ids_of(&by_photo)[..2], ["exact", "target"], "{by_photo}");
    // The words alone.
    let by_words = text_body(&app, "q=kettle").await;
    assert_eq!(ids_of(&by_words), ["wordy", "target"], "{by_words}");
    // Both, fused.
    let both = app
        .search_image_body(query_photo.clone(), "limit=5&q=kettle")
        .await;
    let top = &both["results"][0];
    assert_eq!(top["product_id"], "target", "{both}");
    assert_eq!(top["signals"]["text"], true);
    assert!(top["signals"]["vector"].as_f64().unwrap() > 0.3, "{top}");
    let wordy = both["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_id"] == "wordy")
        .expect("the text match is in the fused ranking");
    assert_eq!(wordy["signals"]["text"], true);
    let exact = both["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["product_id"] == "exact")
        .expect("the photo match is in the fused ranking");
    assert_eq!(exact["signals"]["text"], false);

    // Text search with like=<product>: the same fusion from the other side
    // (the product itself is left out).
    let like = text_body(&app, "q=kettle&like=exact&limit=3").await;
    assert_eq!(ids_of(&like)[0], "target", "{like}");
    assert!(!ids_of(&like).contains(&"exact".to_string()));
    let (code, _) = app.get_json("/api/v1/search/text?q=kettle&like=nope").await;
    assert_eq!(code, 404);

    // Plain searches say which signal matched, too.
    assert_eq!(
        by_words["results"][0]["signals"],
        json!({"vector": null, "text": true, "label": false, "typo": false})
    );
    assert_eq!(by_photo["results"][0]["signals"]["text"], false);
    assert!(
        by_photo["results"][0]["signals"]["vector"]
            .as_f64()
            .unwrap()
            > 0.5
    );

    // Search by image URL: fetched through the guarded fetcher.
    app.images.put("query/coffee.jpg", query_photo.clone());
    let url = format!("{}query/coffee.jpg", app.images.base_url());
    let resp = post_image(&app, "limit=3")
        .json(&json!({ "url": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let by_url: Value = resp.json().await.unwrap();
    assert_eq!(ids_of(&by_url), ids_of(&by_photo)[..3], "{by_url}");
    let resp = post_image(&app, "limit=3")
        .json(&json!({ "url": url, "q": "kettle" }))
        .send()
        .await
        .unwrap();
    let by_url: Value = resp.json().await.unwrap();
    assert_eq!(by_url["results"][0]["product_id"], "target", "{by_url}");
    // The SSRF rules and the fetcher's refusals hold, and no URL leaks.
    for (url, code) in [
        ("http://169.254.169.254/latest/meta-data", 422),
        ("http://127.0.0.1:1/secret.jpg", 422),
        ("file:///etc/passwd", 422),
        ("not a url", 422),
    ] {
        let resp = post_image(&app, "")
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), code, "{url}");
        let body = resp.text().await.unwrap();
        assert!(
            !body.contains("169.254") && !body.contains("127.0.0.1") && !body.contains("passwd"),
            "{body}"
        );
    }
    let missing = format!("{}query/missing.jpg", app.images.base_url());
    let resp = post_image(&app, "")
        .json(&json!({ "url": missing }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let resp = post_image(&app, "")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = post_image(&app, "")
        .json(&json!({ "link": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
}

/// The classifier head's labels are stored at ingest, shown with the
/// product, and searchable: "espresso" finds a cup whose title says
/// nothing of it. A product indexed before labels existed gets them from
/// `vitrine reindex`.
#[tokio::test]
async fn label_queries_find_what_the_photo_shows() {
    let app = spawn_app().await;
    let photos = photos();
    let photo = |n: &str| photos.iter().find(|(p, _)| p == n).unwrap().1.clone();
    product(&app, "cup", "Подарок для мамы", photo("coffee")).await;
    product(&app, "ball", "Подарок для папы", photo("football")).await;

    let (_, cup) = app.product("cup").await;
    let labels = cup["labels"].as_array().expect("labels shown");
    assert_eq!(labels[0]["name"], "espresso", "{cup}");
    assert!(labels[0]["score"].as_f64().unwrap() > 0.5);
    assert!(labels.len() <= 5);

    let found = text_body(&app, "q=espresso").await;
    assert_eq!(ids(&found), ["cup"], "{found}");
    assert_eq!(
        found["results"][0]["signals"],
        json!({"vector": null, "text": false, "label": true, "typo": false})
    );
    assert_eq!(ids(&text_body(&app, "q=soccer+ball").await), ["ball"]);
    // Both gifts by their words, each saying so.
    let words = text_body(&app, &format!("q={}", q("подарок"))).await;
    assert_eq!(ids(&words).len(), 2);
    assert_eq!(words["results"][0]["signals"]["label"], false);
    assert_eq!(words["results"][0]["signals"]["text"], true);
}
