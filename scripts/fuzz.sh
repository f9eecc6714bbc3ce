#!/usr/bin/env bash
# Coverage-guided fuzzing of one target of fuzz/ (libFuzzer through cargo-fuzz,
# nightly), then `cargo fuzz cmin` of what it found into
# fuzz/corpus/<target>/found/, the corpus CI replays (tests/fuzz_corpus.rs).
#
#   scripts/fuzz.sh TARGET [SECONDS]     default 600 (the issue's 10 minutes)
#
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz`.
# The seeds: fuzz/corpus/<target>/ (and found/), plus the webhook fixtures or
# the test photos for the targets that parse them. Prints libFuzzer's final
# stats (`stat::number_of_executed_units`, `stat::peak_rss_mb`) and exits 1
# on a crash, whose input is under fuzz/artifacts/<target>/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T="${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}"
SECS="${2:-600}"
WORK="$(mktemp -d "/tmp/vitrine-fuzz-$T.XXXXXX")"
mkdir -p "$WORK/corpus" "fuzz/corpus/$T/found"
cp -r "fuzz/corpus/$T/." "$WORK/corpus/"
EXTRA=() MAXLEN=()
case "$T" in
  telegram_update) EXTRA=(tests/fixtures/webhooks/telegram) ;;
  whatsapp_delivery) EXTRA=(tests/fixtures/webhooks/whatsapp) ;;
  kommo_form) EXTRA=(tests/fixtures/webhooks/kommo) ;;
  image_decode) EXTRA=(tests/data/photos); MAXLEN=(-max_len=65536) ;;
  # Each input opens an index, whose rayon pools' threads exit after the
  # drop without being joined; LeakSanitizer, checking right after the
  # input, counts glibc's record of a still-exiting thread's TLS
  # destructors (32 bytes from __cxa_thread_atexit_impl) as a leak.
  index_log) MAXLEN=(-detect_leaks=0) ;;
esac
cargo +nightly fuzz run -O "$T" "$WORK/corpus" "${EXTRA[@]}" -- \
  -max_total_time="$SECS" -rss_limit_mb=2048 -print_final_stats=1 "${MAXLEN[@]}" 2>&1 |
  tee "$WORK/run.log" | grep -E "^(#[0-9]+ +(INITED|DONE)|stat::|==[0-9]+==|SUMMARY|Test unit written)" || true
status="${PIPESTATUS[0]}"
# Keep what adds coverage, small: minimise, then replace found/ with it.
mkdir -p "$WORK/min"
cargo +nightly fuzz cmin -O "$T" "$WORK/corpus" -- "${MAXLEN[@]}" >"$WORK/cmin.log" 2>&1 || true
rm -rf "fuzz/corpus/$T/found" && mkdir -p "fuzz/corpus/$T/found"
for f in "$WORK/corpus"/*; do
  [[ -f "$f" ]] || continue
  name="$(basename "$f")"
  [[ -e "fuzz/corpus/$T/$name" ]] || cp "$f" "fuzz/corpus/$T/found/$name"
done
printf '%s: %s files kept in fuzz/corpus/%s/found (work %s)\n' "$T" \
  "$(ls "fuzz/corpus/$T/found" | wc -l)" "$T" "$WORK"
exit "$status"
