//! `vitrine bench text`: text search latency over a generated catalog of
//! `--products` (100,000 by default) in the metadata database, on SQLite
//! (a fresh file) or on PostgreSQL (`--database-url`, an empty throwaway
//! database: the bench migrates it and fills it).
//!
//! Each query class is timed through [`vitrine::search::text_ranking`], the
//! code the search route runs (exact full-text first, the typo-tolerant
//! fallback when nothing matches exactly). The baseline, in the same run,
//! is what one would write without a text index: `LIKE '%word%'` over the
//! lower-cased title and description, first 20 rows, no ranking.

use std::time::Instant;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use vitrine::{db, index::Filter, search};

use super::stats::quantile;

pub struct TextOptions {
    pub products: usize,
    pub queries: usize,
    pub database_url: Option<String>,
    pub seed: u64,
}

const NOUNS: &[&str] = &[
    "чайник",
    "кроссовки",
    "куртка",
    "телефон",
    "сумка",
    "часы",
    "лампа",
    "стул",
    "стол",
    "диван",
    "ковер",
    "кружка",
    "тарелка",
    "рюкзак",
    "шапка",
    "платье",
    "ботинки",
    "наушники",
    "планшет",
    "ноутбук",
    "kettle",
    "sneakers",
    "jacket",
    "phone",
    "handbag",
    "watch",
    "lamp",
    "chair",
    "table",
    "sofa",
    "carpet",
    "mug",
    "plate",
    "backpack",
    "hat",
    "dress",
    "boots",
    "headphones",
    "tablet",
    "laptop",
    "оюнчук",
    "көйнөк",
    "бут кийим",
    "шырдак",
    "калпак",
];
const ADJECTIVES: &[&str] = &[
    "красный",
    "синий",
    "черный",
    "белый",
    "зеленый",
    "кожаный",
    "детский",
    "женский",
    "мужской",
    "новый",
    "большой",
    "маленький",
    "red",
    "blue",
    "black",
    "white",
    "green",
    "leather",
    "kids",
    "women",
    "men",
    "new",
    "large",
    "small",
    "wooden",
    "steel",
    "cotton",
];
const CATEGORIES: &[&str] = &[
    "посуда",
    "обувь",
    "одежда",
    "электроника",
    "мебель",
    "дом",
    "игрушки",
    "аксессуары",
    "kitchen",
    "shoes",
    "clothes",
    "electronics",
    "furniture",
    "home",
    "toys",
    "accessories",
];
const LABELS: &[&str] = &[
    "teapot",
    "running shoe",
    "jersey",
    "cellular telephone",
    "purse",
    "analog clock",
    "table lamp",
    "folding chair",
    "dining table",
    "studio couch",
    "prayer rug",
    "coffee mug",
    "plate",
    "backpack",
    "cowboy hat",
    "gown",
    "cowboy boot",
    "headphone",
    "ipod",
    "notebook",
];
const SYLLABLES: &[&str] = &[
    "ka", "ro", "mi", "ta", "ne", "so", "vi", "lu", "po", "ze", "da", "ri", "ko", "ma", "te",
];

/// A brand-like word of three syllables: rare (a few products each), so
/// queries for one have one or two exact matches.
fn brand(rng: &mut StdRng) -> String {
    (0..3)
        .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
        .collect()
}

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

/// One wrong letter in the middle of `word` (the typo class's query).
fn typo(word: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    let i = rng.random_range(1..chars.len() - 1);
    chars.swap(i, i + 1);
    chars.into_iter().collect()
}

pub async fn text(opts: &TextOptions) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let url = match &opts.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let db = db::connect(&url).await?;
    db::migrate(&db).await?;
    let mut rng = StdRng::seed_from_u64(opts.seed);

    // Fill: multi-row inserts in transactions, through the triggers that
    // keep the text indexes in step (as the catalog's writes do).
    let fill = Instant::now();
    let mut brands = Vec::new();
    let now = vitrine::db::now_ms();
    const CHUNK: usize = 500;
    let mut n = 0;
    while n < opts.products {
        let rows = CHUNK.min(opts.products - n);
        let mut sql = String::from(
            "INSERT INTO products (product_id, title, description, category, price, currency, \
             status, labels, created_at, updated_at) VALUES ",
        );
        let mut values = Vec::with_capacity(rows);
        for i in 0..rows {
            let b = brand(&mut rng);
            if brands.len() < 5000 {
                brands.push(b.clone());
            }
            let title = format!(
                "{} {} {b} {}",
                pick(&mut rng, ADJECTIVES),
                pick(&mut rng, NOUNS),
                rng.random_range(100..999)
            );
            let description: Vec<&str> = (0..12)
                .map(|_| {
                    if rng.random_bool(0.5) {
                        pick(&mut rng, NOUNS)
                    } else {
                        pick(&mut rng, ADJECTIVES)
                    }
                })
                .collect();
            let labels = json!([{"name": pick(&mut rng, LABELS), "score": 0.5},
                                {"name": pick(&mut rng, LABELS), "score": 0.2}])
            .to_string();
            let base = i * 10;
            sql.push_str(&format!(
                "{}(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                if i == 0 { "" } else { ", " },
                base + 1,
                base + 2,
                base + 3,
                base + 4,
                base + 5,
                base + 6,
                base + 7,
                base + 8,
                base + 9,
                base + 10
            ));
            values.push((
                format!("p{:06}", n + i),
                title,
                description.join(" "),
                pick(&mut rng, CATEGORIES).to_string(),
                f64::from(rng.random_range(100..100_000)),
                labels,
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, title, description, category, price, labels) in values {
            q = q
                .bind(id)
                .bind(title)
                .bind(description)
                .bind(category)
                .bind(price)
                .bind("KGS")
                .bind("indexed")
                .bind(labels)
                .bind(now)
                .bind(now);
        }
        q.execute(db.writer()).await?;
        n += rows;
    }
    let fill_s = fill.elapsed().as_secs_f64();

    // The query classes.
    let mut classes: Vec<(&str, Vec<String>)> = vec![
        ("one common word", vec![]),
        ("two words", vec![]),
        ("prefix of 4 letters", vec![]),
        ("rare word (brand)", vec![]),
        ("typo in a rare word", vec![]),
        ("typo in a common word", vec![]),
    ];
    for _ in 0..opts.queries {
        let noun = pick(&mut rng, NOUNS);
        let adj = pick(&mut rng, ADJECTIVES);
        let b = brands[rng.random_range(0..brands.len())].clone();
        classes[0].1.push(noun.to_string());
        classes[1].1.push(format!("{adj} {noun}"));
        classes[2].1.push(noun.chars().take(4).collect());
        classes[3].1.push(b.clone());
        classes[4].1.push(typo(&b, &mut rng));
        let long = NOUNS
            .iter()
            .filter(|w| w.chars().count() >= 6 && !w.contains(' '))
            .collect::<Vec<_>>();
        classes[5]
            .1
            .push(typo(long[rng.random_range(0..long.len())], &mut rng));
    }

    let filter = Filter::default();
    let mut report = serde_json::Map::new();
    for (name, queries) in &classes {
        let mut ms = Vec::with_capacity(queries.len());
        let mut found = 0usize;
        let mut baseline_ms = Vec::new();
        for (i, q) in queries.iter().enumerate() {
            let terms = search::text::terms(q)?;
            let t = Instant::now();
            let results = search::text_ranking(&db, &terms, &filter, 0, 20).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            found += usize::from(!results.is_empty());
            // The baseline on every tenth query (a scan is slow).
            if i % 10 == 0 {
                let t = Instant::now();
                like_scan(&db, &terms).await?;
                baseline_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        ms.sort_by(f64::total_cmp);
        baseline_ms.sort_by(f64::total_cmp);
        let p50 = quantile(&ms, 0.5);
        let base50 = quantile(&baseline_ms, 0.5);
        report.insert(
            name.to_string(),
            json!({
                "queries": queries.len(),
                "answered": found,
                "p50_ms": round(p50),
                "p99_ms": round(quantile(&ms, 0.99)),
                "max_ms": round(*ms.last().unwrap_or(&0.0)),
                "like_scan_p50_ms": round(base50),
                "like_scan_over_indexed_p50": round(base50 / p50.max(1e-9)),
            }),
        );
        println!(
            "{name:>24}: p50 {p50:.2} ms, p99 {:.2} ms, answered {found}/{} (LIKE scan p50 {base50:.1} ms)",
            quantile(&ms, 0.99),
            queries.len()
        );
    }
    Ok(json!({
        "bench": "text",
        "engine": db.backend().name(),
        "products": opts.products,
        "fill_s": round(fill_s),
        "classes": report,
        "load_average": super::stats::load_average(),
    }))
}

/// The baseline: what a catalog without a text index does, a scan.
async fn like_scan(db: &db::Db, terms: &[String]) -> anyhow::Result<()> {
    let mut sql = String::from("SELECT product_id FROM products WHERE status <> 'deleted'");
    for (i, _) in terms.iter().enumerate() {
        sql.push_str(&format!(
            " AND (lower(title) LIKE ${0} OR lower(description) LIKE ${0})",
            i + 1
        ));
    }
    sql.push_str(" LIMIT 20");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for t in terms {
        q = q.bind(format!("%{t}%"));
    }
    q.fetch_all(db.reader()).await?;
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
