//! Durability: torn log tails, injected write failures (a full disk), the
//! format-1 log, the directory lock, and the map of `vectors.i8` never
//! shrinking under readers.

use std::{
    fs::OpenOptions,
    io::Write,
    path::{Path, PathBuf},
};

use super::{
    EmbeddedIndex,
    format::{FORMAT, LOG_MAGIC, LogEntry},
};
use crate::index::{Filter, IndexError, Payload, Point, VectorIndex};

const DIM: usize = 16;

fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    crate::embed::model::l2_normalised(&v)
}

fn point(id: &str, seed: u64) -> Point {
    Point {
        vector: vector(seed),
        payload: Payload {
            product_id: id.into(),
            title: Some(format!("title {id}")),
            ..Payload::default()
        },
    }
}

fn open(dir: &Path) -> EmbeddedIndex {
    EmbeddedIndex::open(dir, DIM, "v").unwrap()
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("points.log")
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn torn_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("points.log.torn-")
        })
        .count()
}

/// An index holding p1 and p2, written in one upsert and closed.
fn two_points() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path())
        .upsert_sync(vec![point("p1", 1), point("p2", 2)])
        .unwrap();
    dir
}

fn has(idx: &EmbeddedIndex, id: &str) -> bool {
    idx.get_vector_sync(id).unwrap().is_some()
}

/// The audit's full disk: the last append torn, then the next write glued
/// onto it, then a restart. The old code skipped the glued line, and a
/// deleted product came back.
#[test]
fn a_torn_tail_is_cut_at_open_and_later_writes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let idx = open(dir.path());
        idx.upsert_sync(vec![point("p1", 1)]).unwrap();
        idx.upsert_sync(vec![point("p2", 2)]).unwrap();
    }
    // Tear the last append (p2's), whatever the format.
    let log = log_path(dir.path());
    set_len(&log, file_len(&log) - 5);
    {
        let idx = open(dir.path());
        assert!(has(&idx, "p1"));
        assert!(!has(&idx, "p2"), "a torn record was never acknowledged");
        assert_eq!(idx.delete_sync(&["p1".into()]).unwrap(), 1);
        idx.upsert_sync(vec![point("p3", 3)]).unwrap();
    }
    let idx = open(dir.path());
    assert!(!has(&idx, "p1"), "the deleted product came back");
    assert!(has(&idx, "p3"));
    assert_eq!(idx.len(), 1);
    assert_eq!(torn_files(dir.path()), 1, "the torn bytes are kept aside");
}

#[test]
fn zeros_after_the_last_record_are_a_torn_tail() {
    let dir = two_points();
    let log = log_path(dir.path());
    let whole = file_len(&log);
    append(&log, &[0u8; 100]);
    let idx = open(dir.path());
    assert_eq!(idx.len(), 2);
    assert_eq!(file_len(&log), whole, "cut back to the last record");
    idx.upsert_sync(vec![point("p3", 3)]).unwrap();
    drop(idx);
    assert_eq!(open(dir.path()).len(), 3);
}

#[test]
fn a_bad_record_with_records_after_it_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    drop({
        let idx = open(dir.path());
        idx.upsert_sync(vec![point("p1", 1)]).unwrap();
        idx.upsert_sync(vec![point("p2", 2)]).unwrap();
        idx
    });
    let log = log_path(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    assert!(bytes.starts_with(&LOG_MAGIC));
    // A byte of the first record's body (past the magic and frame header).
    bytes[LOG_MAGIC.len() + 8 + 3] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();
    let err = EmbeddedIndex::open(dir.path(), DIM, "v").err().unwrap();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn a_bad_last_record_is_torn_not_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    drop({
        let idx = open(dir.path());
        idx.upsert_sync(vec![point("p1", 1)]).unwrap();
        idx.upsert_sync(vec![point("p2", 2)]).unwrap();
        idx
    });
    let log = log_path(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(&log, &bytes).unwrap();
    let idx = open(dir.path());
    assert!(has(&idx, "p1") && !has(&idx, "p2"));
}

/// What a test can observe of a writer: counts, slots, file lengths.
#[derive(Debug, PartialEq)]
struct Snapshot {
    len: usize,
    next_slot: usize,
    free: Vec<usize>,
    log_len: u64,
    f32_len: u64,
    i8_len: u64,
    mapped: usize,
    vectors: Vec<Option<Vec<f32>>>,
    titles: Vec<Option<String>>,
}

fn snapshot(idx: &EmbeddedIndex, dir: &Path, ids: &[&str]) -> Snapshot {
    let (next_slot, free) = {
        let w = idx.core.lock_writer();
        (w.next_slot, w.free.clone())
    };
    let titles = ids
        .iter()
        .map(|id| {
            let st = idx.core.read_state();
            st.by_id
                .get(*id)
                .and_then(|s| st.slots[*s].as_ref())
                .and_then(|m| m.payload.title.clone())
        })
        .collect();
    Snapshot {
        len: idx.len(),
        next_slot,
        free,
        log_len: file_len(&log_path(dir)),
        f32_len: file_len(&dir.join("vectors.f32")),
        i8_len: file_len(&dir.join("vectors.i8")),
        mapped: idx.core.read_state().codes.len(),
        vectors: ids
            .iter()
            .map(|id| idx.get_vector_sync(id).unwrap())
            .collect(),
        titles,
    }
}

/// Each kind of failed write, on an upsert that takes a fresh slot, one
/// that reuses a free slot and replaces a point, a payload update and a
/// delete: an error, the index exactly as before, and the retry works.
#[test]
fn a_failed_write_leaves_the_index_as_it_was_and_the_retry_applies() {
    type Inject = fn(&mut super::writer::Faults);
    let faults: [(&str, Inject); 4] = [
        ("torn log append", |f| f.log_write = Some(11)),
        ("log append with nothing written", |f| f.log_write = Some(0)),
        ("log sync", |f| f.log_sync = true),
        ("vector write", |f| f.vector_write = true),
    ];
    for (name, inject) in faults {
        let dir = tempfile::tempdir().unwrap();
        let ids = ["a", "b", "c", "new"];
        let idx = open(dir.path());
        idx.upsert_sync(vec![point("a", 1), point("b", 2), point("c", 3)])
            .unwrap();
        idx.delete_sync(&["c".into()]).unwrap(); // one free slot
        type Write = Box<dyn Fn(&EmbeddedIndex) -> Result<(), IndexError>>;
        let writes: [(&str, Write); 4] = [
            (
                "upsert, fresh and reused slots",
                Box::new(|i| i.upsert_sync(vec![point("new", 9), point("a", 10)])),
            ),
            (
                "upsert past the map",
                Box::new(|i| i.upsert_sync((0..300).map(|n| point(&format!("x{n}"), n)).collect())),
            ),
            (
                "set payload",
                Box::new(|i| {
                    let p = Payload {
                        product_id: "b".into(),
                        title: Some("renamed".into()),
                        ..Payload::default()
                    };
                    i.set_payload_sync(p).map(|found| assert!(found))
                }),
            ),
            (
                "delete",
                Box::new(|i| i.delete_sync(&["a".into()]).map(|n| assert_eq!(n, 1))),
            ),
        ];
        for (what, write) in &writes {
            if name == "vector write" && matches!(*what, "set payload" | "delete") {
                continue; // they write no vectors
            }
            let before = snapshot(&idx, dir.path(), &ids);
            inject(&mut idx.core.lock_writer().faults);
            let err = write(&idx).err();
            assert!(err.is_some(), "{name} / {what}: no error");
            assert_eq!(
                snapshot(&idx, dir.path(), &ids),
                before,
                "{name} / {what}: the index changed"
            );
            // Searches still see exactly the old points.
            let hits = idx.search_sync(&vector(1), &Filter::default(), 10).unwrap();
            assert_eq!(hits.len(), before.len, "{name} / {what}");
            // A reopen would see the same (no half record left behind).
            let log = std::fs::read(log_path(dir.path())).unwrap();
            assert_eq!(log.len() as u64, before.log_len, "{name} / {what}");
        }
        // Retried (the event's next attempt), every write applies.
        for (what, write) in &writes {
            write(&idx).unwrap_or_else(|e| panic!("{name} / {what} retried: {e}"));
        }
        let after = snapshot(&idx, dir.path(), &ids);
        drop(idx);
        let idx = open(dir.path());
        assert_eq!(
            snapshot(&idx, dir.path(), &ids).vectors,
            after.vectors,
            "{name}"
        );
        assert_eq!(
            snapshot(&idx, dir.path(), &ids).titles,
            after.titles,
            "{name}"
        );
        assert_eq!(idx.len(), after.len, "{name}");
        assert!(!has(&idx, "a") && has(&idx, "new") && has(&idx, "x299"));
        assert_eq!(torn_files(dir.path()), 0, "{name}: nothing was torn");
    }
}

#[test]
fn a_rollback_that_could_not_truncate_is_finished_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let idx = open(dir.path());
    idx.upsert_sync(vec![point("a", 1)]).unwrap();
    let committed = file_len(&log_path(dir.path()));
    {
        let mut w = idx.core.lock_writer();
        w.faults.log_write = Some(20);
        w.faults.log_truncate = true;
    }
    assert!(idx.upsert_sync(vec![point("b", 2)]).is_err());
    assert_eq!(file_len(&log_path(dir.path())), committed + 20);
    assert!(!has(&idx, "b"));
    idx.upsert_sync(vec![point("c", 3)]).unwrap();
    drop(idx);
    let idx = open(dir.path());
    assert!(has(&idx, "a") && !has(&idx, "b") && has(&idx, "c"));
    assert_eq!(torn_files(dir.path()), 0);
}

/// An index written before framing: JSON lines, with the damage the old
/// code could leave (an entry glued onto a torn one, a torn last line).
#[test]
fn a_format_1_index_opens_and_is_rewritten_framed() {
    let dir = tempfile::tempdir().unwrap();
    let entries: Vec<LogEntry> = {
        let idx = open(dir.path());
        idx.upsert_sync((0..10).map(|i| point(&format!("p{i}"), i)).collect())
            .unwrap();
        let st = idx.core.read_state();
        st.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, m)| {
                m.as_ref().map(|m| LogEntry::Put {
                    slot,
                    scale: m.scale,
                    payload: m.payload.clone(),
                })
            })
            .collect()
    };
    let line = |e: &LogEntry| serde_json::to_string(e).unwrap();
    let mut legacy = String::new();
    for e in &entries {
        legacy += &line(e);
        legacy += "\n\n";
    }
    let del = |id: &str| line(&LogEntry::Del { id: id.into() });
    // p3's delete torn, p4's glued onto it; p5's delete whole; a torn tail.
    legacy += &del("p3")[..9];
    legacy += &del("p4");
    legacy += "\n";
    legacy += &del("p5");
    legacy += "\n";
    legacy += &del("p6")[..12];
    std::fs::write(log_path(dir.path()), &legacy).unwrap();
    let header = dir.path().join("index.json");
    let text = std::fs::read_to_string(&header).unwrap();
    std::fs::write(&header, text.replace("\"format\": 2", "\"format\": 1")).unwrap();

    for _ in 0..2 {
        let idx = open(dir.path());
        assert_eq!(idx.len(), 8);
        assert!(has(&idx, "p3") && !has(&idx, "p4") && !has(&idx, "p5") && has(&idx, "p6"));
        assert_eq!(idx.get_vector_sync("p7").unwrap().unwrap().len(), DIM);
        let log = std::fs::read(log_path(dir.path())).unwrap();
        assert!(
            log.starts_with(&LOG_MAGIC),
            "rewritten in the framed format"
        );
        let text = std::fs::read_to_string(&header).unwrap();
        assert!(text.contains(&format!("\"format\": {FORMAT}")), "{text}");
        idx.upsert_sync(vec![point("p4", 4)]).unwrap();
        idx.delete_sync(&["p4".into()]).unwrap();
    }
}

#[test]
fn a_format_1_line_that_is_no_entry_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    let header = dir.path().join("index.json");
    let text = std::fs::read_to_string(&header).unwrap();
    std::fs::write(&header, text.replace("\"format\": 2", "\"format\": 1")).unwrap();
    std::fs::write(
        log_path(dir.path()),
        "{\"op\":\"del\",\"id\":\"a\"}\nnot json\n",
    )
    .unwrap();
    let err = EmbeddedIndex::open(dir.path(), DIM, "v").err().unwrap();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn a_second_open_of_one_index_is_refused_while_the_first_lives() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let err = EmbeddedIndex::open(dir.path(), DIM, "v").err().unwrap();
    assert!(matches!(err, IndexError::Locked { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("another process"), "{msg}");
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    drop(first);
    let second = open(dir.path());
    assert!(second.is_empty());
}

/// Reopening right after the last async call returned: no pool job may
/// still hold the index (and its lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_is_free_as_soon_as_the_async_calls_have_returned() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..50u64 {
        let idx: std::sync::Arc<dyn VectorIndex> = std::sync::Arc::new(open(dir.path()));
        idx.upsert(vec![point(&format!("p{i}"), i)]).await.unwrap();
        let hits = idx.search(&vector(i), &Filter::default(), 1).await.unwrap();
        assert_eq!(hits[0].payload.product_id, format!("p{i}"));
        assert!(idx.get_vector(&format!("p{i}")).await.unwrap().is_some());
    }
}

/// `vectors.i8` is never shorter than its map: not after a failed write
/// that grew it, not after compaction.
#[test]
fn the_map_of_the_codes_never_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let i8_path = dir.path().join("vectors.i8");
    let check = |idx: &EmbeddedIndex| {
        let mapped = idx.core.read_state().codes.len() as u64;
        assert!(
            file_len(&i8_path) >= mapped,
            "vectors.i8 shorter than its map"
        );
        mapped
    };
    let idx = open(dir.path());
    idx.upsert_sync((0..256).map(|i| point(&format!("p{i}"), i)).collect())
        .unwrap();
    let mapped = check(&idx);
    assert_eq!(mapped, (256 * DIM) as u64);
    // The 257th point grows the file; its log append fails.
    idx.core.lock_writer().faults.log_write = Some(3);
    assert!(idx.upsert_sync(vec![point("p256", 256)]).is_err());
    assert_eq!(check(&idx), mapped);
    assert_eq!(file_len(&i8_path), mapped, "the failed growth was undone");
    for i in [0u64, 128, 255] {
        let hits = idx.search_sync(&vector(i), &Filter::default(), 1).unwrap();
        assert_eq!(hits[0].payload.product_id, format!("p{i}"));
    }
    // A log mostly dead: compaction at open rewrites the log only.
    for _ in 0..5 {
        idx.upsert_sync((0..256).map(|i| point(&format!("p{i}"), i)).collect())
            .unwrap();
    }
    let grown = file_len(&i8_path);
    let log_before = file_len(&log_path(dir.path()));
    drop(idx);
    let idx = open(dir.path());
    assert!(
        file_len(&log_path(dir.path())) < log_before / 2,
        "compacted"
    );
    assert_eq!(file_len(&i8_path), grown);
    check(&idx);
    assert_eq!(idx.len(), 256);
}

/// Found by the `index_log` fuzz target once it wrote vector files: a
/// short `vectors.f32` opened, then failed every search at its rescoring
/// read. Open now refuses it, as it refuses a short `vectors.i8`.
#[test]
fn a_short_exact_vector_file_fails_open_not_every_search() {
    let dir = two_points();
    let f32_path = dir.path().join("vectors.f32");
    set_len(&f32_path, file_len(&f32_path) / 2);
    let err = EmbeddedIndex::open(dir.path(), DIM, "v").err().unwrap();
    assert!(matches!(err, IndexError::Io { .. }), "{err}");
    assert!(err.to_string().contains("vectors.f32"), "{err}");
}
