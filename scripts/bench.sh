#!/usr/bin/env bash
# Rust ingest against the Python baseline, back to back, on the same images.
#
#   scripts/bench.sh            release build, then ROUNDS rounds of:
#                                 vitrine bench ingest      (service path + inference-only ceiling)
#                                 bench_python_baseline.py  (Pillow + numpy + onnxruntime)
#                               and ROUNDS rounds of the resize comparison
#                                 vitrine bench resize      (fast_image_resize vs image::imageops)
#                                 bench_python_baseline.py --mode resize   (Pillow)
#                               then prints medians, spreads and the per-round ratios.
#   scripts/bench.sh --sweep    also runs both pipelines for every batch size in
#                               SWEEP_BATCHES and thread count in SWEEP_THREADS, SWEEP_ROUNDS
#                               times over (whole sweeps, so that a burst of load from
#                               elsewhere hits one round of a point, not all of them), and
#                               draws docs/bench-throughput.png with scripts/plot_bench.py
#                               (the median of the rounds per point).
#   scripts/bench.sh --sweep-only   the sweep and the chart without the main rounds.
#
# Both programs read the same bytes: the photos of IMAGES (default tests/data/photos),
# re-encoded once as JPEG quality 90 by `vitrine bench ingest --dump-jpeg`, cycled to COUNT.
# Same model, same batch size, same thread count (Rust: rayon pool of THREADS, one ORT
# session per thread; Python: one session with intra_op_num_threads = THREADS).
#
# Settings (environment): COUNT (256), BATCH (16), THREADS (nproc), ROUNDS (3),
# IMAGES, SWEEP_BATCHES ("1 8 16 32 64"), SWEEP_THREADS ("1 2"), SWEEP_COUNT (128),
# SWEEP_ROUNDS (3),
# VITRINE_BIN (skip the build), BENCH_OUT (target/bench). Every JSON report is appended to
# $BENCH_OUT/bench-<time>.jsonl; the machine's noise is why only same-run ratios are quoted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

COUNT="${COUNT:-256}"
BATCH="${BATCH:-16}"
THREADS="${THREADS:-$(nproc)}"
ROUNDS="${ROUNDS:-3}"
IMAGES="${IMAGES:-tests/data/photos}"
SWEEP_BATCHES="${SWEEP_BATCHES:-1 8 16 32 64}"
SWEEP_THREADS="${SWEEP_THREADS:-1 2}"
SWEEP_COUNT="${SWEEP_COUNT:-128}"
SWEEP_ROUNDS="${SWEEP_ROUNDS:-3}"
OUT="${BENCH_OUT:-target/bench}"
VENV=.cache/venv-bench
SWEEP=0
MAIN=1
for arg in "$@"; do
  case "$arg" in
    --sweep) SWEEP=1 ;;
    --sweep-only) SWEEP=1; MAIN=0 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

NAME=bench.sh
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

log "assets"
ensure_assets

log "python venv ($VENV)"
if ! "$VENV/bin/python" -c 'import onnxruntime, numpy, PIL, matplotlib' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q onnxruntime==1.31.1 numpy==2.4.6 pillow==13.0.0 matplotlib==3.11.2
fi
PY="$VENV/bin/python"

vitrine_bin

mkdir -p "$OUT"
RUN="$OUT/bench-$(date +%Y%m%d-%H%M%S).jsonl"
JPEGS="$OUT/jpeg-q90"
rm -rf "$JPEGS"
export VITRINE_LOG_FORMAT=json RUST_LOG=warn

# Appends the last line (the JSON report) of a command's stdout to $RUN, tagged.
record() { # tag, command...
  local tag="$1"; shift
  local out
  out="$("$@")"
  printf '%s\n' "$out" | sed '$d' >&2
  printf '%s\n' "$out" | tail -1 | "$PY" -c 'import json,sys; r=json.load(sys.stdin); r["tag"]=sys.argv[1]; print(json.dumps(r))' "$tag" >> "$RUN"
}

{
  echo "{\"bench\":\"machine\",\"nproc\":$(nproc),\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\",\"date\":\"$(date -Iseconds)\",\"count\":$COUNT,\"batch\":$BATCH,\"threads\":$THREADS,\"rounds\":$ROUNDS}"
} >> "$RUN"

# The Rust side re-encodes IMAGES as JPEG q90 in memory (deterministically); these are the
# same bytes as files, for the Python side and the resize comparison.
"$BIN" bench ingest --images "$IMAGES" --count 1 --reps 1 --dump-jpeg "$JPEGS" >/dev/null 2>&1

if [[ "$MAIN" == 1 ]]; then
  log "ingest: $ROUNDS rounds of Rust then Python, $COUNT images, batch $BATCH, $THREADS threads"
  for r in $(seq 1 "$ROUNDS"); do
    record main "$BIN" bench ingest --images "$IMAGES" --count "$COUNT" --batch "$BATCH" \
      --threads "$THREADS" --reps 1
    record main "$PY" scripts/bench_python_baseline.py --images "$JPEGS" --count "$COUNT" \
      --batch "$BATCH" --threads "$THREADS" --reps 1
  done

  log "resize: $ROUNDS rounds of Rust then Pillow, 224x224 bilinear, one thread"
  for r in $(seq 1 "$ROUNDS"); do
    record main "$BIN" bench resize --images "$JPEGS" --reps 3
    record main "$PY" scripts/bench_python_baseline.py --mode resize --images "$JPEGS" --reps 3
  done
fi

if [[ "$SWEEP" == 1 ]]; then
  for round in $(seq 1 "$SWEEP_ROUNDS"); do
    for t in $SWEEP_THREADS; do
      for b in $SWEEP_BATCHES; do
        log "sweep round $round/$SWEEP_ROUNDS: batch $b, threads $t, $SWEEP_COUNT images"
        record sweep "$BIN" bench ingest --images "$IMAGES" --count "$SWEEP_COUNT" --batch "$b" \
          --threads "$t" --reps 1
        record sweep "$PY" scripts/bench_python_baseline.py --images "$JPEGS" \
          --count "$SWEEP_COUNT" --batch "$b" --threads "$t" --reps 1
      done
    done
  done
fi

log "summary ($RUN)"
[[ "$MAIN" == 1 ]] && "$PY" - "$RUN" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
main = [r for r in rows if r.get("tag") == "main"]
def s(v):
    m = statistics.median(v)
    return f"{m:8.2f}  (min {min(v):.2f}, max {max(v):.2f}, ±{(max(v) - min(v)) / 2 / m * 100:.1f}%)"
rust = [r for r in main if r["bench"] == "ingest"]
py = [r for r in main if r["bench"] == "python_baseline"]
ri = [r["ingest_images_per_s"]["median"] for r in rust]
rc = [r["ceiling_images_per_s"]["median"] for r in rust]
pi = [r["pipeline_images_per_s"]["median"] for r in py]
pc = [r["ceiling_images_per_s"]["median"] for r in py]
print(f"rounds: {len(rust)}; batch {rust[0]['batch']}, threads {rust[0]['threads']}, {rust[0]['images']} images")
print(f"Rust ingest, images/s            {s(ri)}")
print(f"Rust inference-only, images/s    {s(rc)}")
print(f"Python pipeline, images/s        {s(pi)}")
print(f"Python inference-only, images/s  {s(pc)}")
print(f"Rust ingest / Rust ceiling       {s([a / b for a, b in zip(ri, rc)])}   (target >= 0.9)")
print(f"Rust ingest / Python pipeline    {s([a / b for a, b in zip(ri, pi)])}   (target >= 2)")
print(f"Rust ceiling / Python ceiling    {s([a / b for a, b in zip(rc, pc)])}")
fir = [r["fast_image_resize_images_per_s"]["median"] for r in main if r["bench"] == "resize"]
ops = [r["imageops_images_per_s"]["median"] for r in main if r["bench"] == "resize"]
pil = [r["pillow_images_per_s"]["median"] for r in main if r["bench"] == "resize_pillow"]
if fir and pil:
    print(f"resize fast_image_resize, img/s  {s(fir)}")
    print(f"resize image::imageops, img/s    {s(ops)}")
    print(f"resize Pillow, img/s             {s(pil)}")
    print(f"fast_image_resize / imageops     {s([a / b for a, b in zip(fir, ops)])}   (target >= 5)")
    print(f"fast_image_resize / Pillow       {s([a / b for a, b in zip(fir, pil)])}   (target >= 2)")
EOF

if [[ "$SWEEP" == 1 ]]; then
  log "chart: scripts/plot_bench.py"
  mkdir -p docs
  "$PY" scripts/plot_bench.py "$RUN" docs/bench-throughput.png
fi
echo "reports: $RUN"
