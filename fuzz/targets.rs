//! The fuzz targets' bodies, shared by the cargo-fuzz binaries in
//! `fuzz/fuzz_targets/` (coverage-guided, nightly: see `fuzz/README.md`)
//! and by `tests/fuzz_corpus.rs`, which replays every committed corpus file
//! and a fixed set of mutations of them on stable Rust in CI.
//!
//! Each target feeds arbitrary bytes to one parser of untrusted input and
//! checks what must hold for any input: no panic, and where the parser
//! makes a promise, that promise (a key resolves under its base; a form
//! tree survives encoding; a decoded image respects its pixel cap; an
//! index opened from a corrupt log still answers).

use std::{
    path::PathBuf,
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use vitrine::{
    catalog::event::parse_event,
    channels::{
        bots_store::{BotKind, BotStore, NewBot},
        phrasing::answer_text,
        telegram::update::parse_update,
        whatsapp::payload::split,
    },
    config::Secret,
    crm::kommo::form,
    embed::{fetch::resolve::resolve_key, preprocess},
    http::signature,
    index::{Filter, Payload, Point, embedded::EmbeddedIndex},
};

/// A BakaiMarket webhook body: JSON, duplicate keys, shape, validation.
pub fn catalog_event(data: &[u8]) {
    if let Ok(ev) = parse_event(data) {
        // A valid event names a product and has an id.
        assert!(!ev.data.product_id.is_empty() && !ev.event_id.is_empty());
    }
}

/// An `X-Webhook-Signature` header (the first line of the input) over a
/// body (the rest): never accepted unless it is the body's real HMAC. Hex
/// digits may be in either case (the same MAC; libFuzzer found that the
/// first version of this check wrongly demanded lower case).
pub fn signature_header(data: &[u8]) {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (header, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let secrets = [Secret::new("fuzz-secret".to_string())];
    if signature::verify(Some(header), body, &secrets).is_ok() {
        assert_eq!(
            header.trim().to_ascii_lowercase(),
            signature::sign("fuzz-secret", body),
            "a signature that is not the body's HMAC was accepted"
        );
    }
}

/// An image through the decoder, with a small pixel cap and budget: never
/// a panic, never more pixels than the cap.
pub fn image_decode(data: &[u8]) {
    static LIMITS: OnceLock<preprocess::DecodeLimits> = OnceLock::new();
    let limits = LIMITS.get_or_init(|| preprocess::DecodeLimits::new(1 << 20, 64 << 20));
    if let Ok(img) = preprocess::decode(data, limits) {
        let (w, h) = img.dimensions();
        assert!(u64::from(w) * u64::from(h) <= limits.max_pixels);
    }
}

/// An event's `image_key` against an https and a file base: a key that
/// resolves stays under its base (scheme, host, port, path prefix, and no
/// dot segment left in any encoding).
pub fn fetch_key(data: &[u8]) {
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    for base in [
        "https://images.example.com/catalog/",
        "file:///srv/vitrine/photos/",
    ] {
        let base = url::Url::parse(base).unwrap();
        if let Ok(url) = resolve_key(&base, key) {
            assert_eq!(url.scheme(), base.scheme(), "{key:?} -> {url}");
            assert_eq!(url.host_str(), base.host_str(), "{key:?} -> {url}");
            assert_eq!(url.port(), base.port(), "{key:?} -> {url}");
            assert!(url.path().starts_with(base.path()), "{key:?} -> {url}");
            let path = url.path().to_ascii_lowercase();
            for seg in path.split('/') {
                let seg = seg.replace("%2e", ".");
                assert!(seg != "." && seg != "..", "{key:?} -> {url}");
            }
        }
    }
}

/// A Telegram `Update` body.
pub fn telegram_update(data: &[u8]) {
    let _ = parse_update(data);
}

/// A WhatsApp Cloud API delivery, split into its messages and statuses:
/// every part has an id to deduplicate it by.
pub fn whatsapp_delivery(data: &[u8]) {
    if let Ok(parts) = split(data) {
        for p in parts {
            assert!(!p.external_id.is_empty());
        }
    }
}

/// A Kommo form body: decoding, then encoding the tree and decoding it
/// again gives the same tree.
pub fn kommo_form(data: &[u8]) {
    if let Ok(tree) = form::decode(data) {
        let again = form::decode(form::encode(&tree).as_bytes()).expect("an encoded tree decodes");
        assert_eq!(again, tree);
    }
}

/// A fresh directory under the system's temp dir, one per call.
fn scratch_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vitrine-fuzz-index-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const INDEX_DIM: usize = 4;
const INDEX_MODEL: &str = "fuzz-model";

/// The embedded index's log (`points.log`) as it is after three upserts and
/// a delete: the seed the `index_log` target mutates.
pub fn index_log_seed() -> Vec<u8> {
    let dir = scratch_dir();
    {
        let index = EmbeddedIndex::open(&dir, INDEX_DIM, INDEX_MODEL).unwrap();
        let points = (0..3)
            .map(|i| Point {
                vector: (0..INDEX_DIM)
                    .map(|d| ((i * 7 + d) % 5) as f32 - 2.0)
                    .collect(),
                payload: Payload {
                    product_id: format!("p-{i}"),
                    title: Some(format!("product {i}")),
                    category: Some("c".into()),
                    price: Some(i as f64),
                    currency: None,
                },
            })
            .collect();
        index.upsert_sync(points).unwrap();
        index.delete_sync(&["p-1".to_string()]).unwrap();
    }
    let log = std::fs::read(dir.join("points.log")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    log
}

/// The slots the vector files of [`index_log`] hold: the log's records
/// name slots, whose vectors live in `vectors.i8` and `vectors.f32`, so a
/// log alone (a fresh index's empty vector files) would stop every open at
/// "the log references slots past the vector file" and leave the rest of
/// the reader unexplored.
const INDEX_SLOTS: usize = 16;

/// `log` as the index's `points.log`, beside vector files of
/// [`INDEX_SLOTS`] slots.
fn write_index_files(dir: &std::path::Path, log: &[u8]) {
    std::fs::write(dir.join("points.log"), log).unwrap();
    std::fs::write(dir.join("vectors.i8"), vec![1u8; INDEX_SLOTS * INDEX_DIM]).unwrap();
    let exact: Vec<u8> = (0..INDEX_SLOTS * INDEX_DIM)
        .flat_map(|_| 0.5f32.to_le_bytes())
        .collect();
    std::fs::write(dir.join("vectors.f32"), exact).unwrap();
}

/// How many points an index opened from the log `log` holds, or `None`
/// when it does not open.
pub fn index_log_points(log: &[u8]) -> Option<usize> {
    let dir = scratch_dir();
    drop(EmbeddedIndex::open(&dir, INDEX_DIM, INDEX_MODEL).expect("a fresh index opens"));
    write_index_files(&dir, log);
    let points = EmbeddedIndex::open(&dir, INDEX_DIM, INDEX_MODEL)
        .ok()
        .map(|i| i.len());
    let _ = std::fs::remove_dir_all(&dir);
    points
}

/// Arbitrary bytes as the embedded index's log: opening the index either
/// fails with an error or gives an index that answers a search, never a
/// panic (a torn or corrupt tail is the normal state after a crash).
pub fn index_log(data: &[u8]) {
    let dir = scratch_dir();
    drop(EmbeddedIndex::open(&dir, INDEX_DIM, INDEX_MODEL).expect("a fresh index opens"));
    write_index_files(&dir, data);
    if let Ok(index) = EmbeddedIndex::open(&dir, INDEX_DIM, INDEX_MODEL) {
        let hits = index
            .search_sync(&[1.0, 0.0, 0.0, 0.0], &Filter::default(), 10)
            .expect("an opened index answers");
        assert!(hits.len() <= index.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A phrasing model's chat-completions answer: what is taken is non-empty,
/// trimmed and at most 2,000 characters.
pub fn llm_answer(data: &[u8]) {
    if let Ok(text) = answer_text(data) {
        assert!(!text.is_empty() && !text.starts_with(char::is_whitespace));
        assert!(text.chars().count() <= 2000);
    }
}

/// A bot as the admin API takes it (`POST /api/v1/channels/bots`): a bot
/// that passes the checks has an id of digits, a Telegram bot's being its
/// token's prefix.
pub fn bot_spec(data: &[u8]) {
    let Ok(new) = serde_json::from_slice::<NewBot>(data) else {
        return;
    };
    if let Ok(id) = BotStore::external_id(&new) {
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            "{id:?}"
        );
        if new.kind == BotKind::Telegram {
            let token = new.token.expose().trim();
            assert!(token.starts_with(&format!("{id}:")), "{id:?}");
        }
    }
}

/// A target: its corpus folder's name and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by the name of its corpus folder.
pub const TARGETS: &[Target] = &[
    ("catalog_event", catalog_event),
    ("signature_header", signature_header),
    ("image_decode", image_decode),
    ("fetch_key", fetch_key),
    ("telegram_update", telegram_update),
    ("whatsapp_delivery", whatsapp_delivery),
    ("kommo_form", kommo_form),
    ("index_log", index_log),
    ("llm_answer", llm_answer),
    ("bot_spec", bot_spec),
];
