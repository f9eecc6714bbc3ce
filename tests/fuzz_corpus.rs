//! The fuzz targets (`fuzz/targets.rs`) on stable Rust, in CI: every file
//! of each target's committed corpus (`fuzz/corpus/<target>/`), the real
//! webhook fixtures and test photos as extra seeds, and a fixed, seeded set
//! of mutations of each seed (bit flips, byte edits, truncations, splices).
//! A panic or a broken promise fails the test and names the input's seed
//! and mutation. Coverage-guided runs (`cargo +nightly fuzz run <target>`,
//! see `fuzz/README.md`) add what they find to the same corpus folders.

#[path = "../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

/// Extra seed folders per target, beside `fuzz/corpus/<target>/`.
fn extra_seeds(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("tests/fixtures/webhooks");
    match target {
        "telegram_update" => vec![fixtures.join("telegram")],
        "whatsapp_delivery" => vec![fixtures.join("whatsapp")],
        "kommo_form" => vec![fixtures.join("kommo")],
        // The photos are downloaded by scripts/fetch-assets.sh.
        "image_decode" => vec![root.join("tests/data/photos")],
        _ => vec![],
    }
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("fuzz/corpus").join(target)];
    dirs.extend(extra_seeds(target));
    let mut out = Vec::new();
    if target == "index_log" {
        out.push((
            "a log of three upserts and a delete".into(),
            targets::index_log_seed(),
        ));
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.is_file()) {
            let bytes = std::fs::read(&f).unwrap();
            out.push((f.display().to_string(), bytes));
        }
    }
    out
}

/// xorshift64*: a fixed sequence, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `seed`, the kind picked by the generator.
fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    const INTERESTING: &[&[u8]] = &[
        b"\"",
        b"\\",
        b"{",
        b"}",
        b"[",
        b"]",
        b"%",
        b"%2e",
        b"..",
        b"/",
        b"&",
        b"=",
        b"\0",
        b"\xff",
        b"-1",
        b"1e999",
        b"18446744073709551616",
        b"\xf0\x9f\x98\x80",
    ];
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let t = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(at..at, t.iter().copied());
            }
            3 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            4 => v.truncate(at),
            _ => {
                let from = rng.below(other.len() + 1);
                let len = rng.below(64).min(other.len() - from);
                v.splice(at..at, other[from..from + len].iter().copied());
            }
        }
    }
    v
}

/// What the coverage-guided runs found and `cargo fuzz cmin` kept
/// (`fuzz/corpus/<target>/found/`), replayed as is: the short smoke of the
/// libFuzzer corpora that CI runs.
#[test]
fn every_target_survives_what_libfuzzer_found() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, target) in targets::TARGETS {
        let dir = root.join("fuzz/corpus").join(name).join("found");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("{name}: no libFuzzer corpus committed");
            continue;
        };
        let mut n = 0;
        for f in entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|f| f.is_file())
        {
            let bytes = std::fs::read(&f).unwrap();
            run(name, *target, &f.display().to_string(), "as found", &bytes);
            n += 1;
        }
        eprintln!("{name}: {n} inputs libFuzzer found");
    }
}

#[test]
fn every_target_survives_its_corpus_and_its_mutations() {
    for (name, target) in targets::TARGETS {
        let seeds = seeds(name);
        assert!(!seeds.is_empty(), "no corpus for {name}");
        // Decoding whole photos is slow in a debug build: fewer mutations
        // of the large seeds.
        // So is opening an index (it starts its thread pools).
        let per_seed = match *name {
            "image_decode" => 30,
            "index_log" => 300,
            _ => 1000,
        };
        let mut rng = Rng(0x5eed_0000 ^ name.len() as u64);
        let mut runs = 0;
        for (i, (path, bytes)) in seeds.iter().enumerate() {
            run(name, *target, path, "as is", bytes);
            let other = &seeds[(i + 1) % seeds.len()].1;
            let n = if bytes.len() > 64 << 10 { 2 } else { per_seed };
            for m in 0..n {
                let input = mutate(bytes, other, &mut rng);
                run(name, *target, path, &format!("mutation {m}"), &input);
                runs += 1;
            }
        }
        eprintln!("{name}: {} seeds, {runs} mutations", seeds.len());
    }
}

fn run(name: &str, target: fn(&[u8]), seed: &str, what: &str, input: &[u8]) {
    let r = std::panic::catch_unwind(|| target(input));
    assert!(
        r.is_ok(),
        "fuzz target {name} failed on {seed} ({what}); input: {:?}",
        String::from_utf8_lossy(&input[..input.len().min(512)])
    );
}

/// `fuzz/corpus/index_log/three-upserts-and-a-delete` is a log that
/// `targets::index_log_seed` wrote (three upserts and a delete), so that
/// the coverage-guided runs start from a real log: it must still be in the
/// current format (the same header as a log written now) and open with its
/// two points. (Not byte for byte: the slots the upserts get vary.) After
/// a change of the format, `VITRINE_WRITE_SEEDS=1 cargo test --test
/// fuzz_corpus` rewrites it.
#[test]
fn the_committed_index_log_seed_is_in_the_current_format() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus/index_log/three-upserts-and-a-delete");
    let now = targets::index_log_seed();
    if std::env::var_os("VITRINE_WRITE_SEEDS").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    let header = |log: &[u8]| {
        log.split(|&b| b == b'\n')
            .next()
            .unwrap_or_default()
            .to_vec()
    };
    let rerun = "rerun with VITRINE_WRITE_SEEDS=1";
    assert_eq!(
        header(&committed),
        header(&now),
        "{}: another format; {rerun}",
        path.display()
    );
    assert_eq!(targets::index_log_points(&now), Some(2));
    assert_eq!(
        targets::index_log_points(&committed),
        Some(2),
        "{}: does not open with its two points; {rerun}",
        path.display()
    );
}
