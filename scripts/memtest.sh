#!/usr/bin/env bash
# Server memory with the model loaded and N products really indexed (issue 4: RSS ≤ 300 MB
# at 10k products; RssAnon ≤ 600 MB at 100k), and the time to be ready on that data.
#
# 1. Makes the demo images (the 24 photos of tests/data/photos as JPEG q90) and a catalog
#    of PRODUCTS products cycling over them, in a temporary directory.
# 2. `vitrine import` queues the catalog; `vitrine serve` (embedded defaults: SQLite, the
#    embedded index, the real model) embeds and indexes every product through the normal
#    event path. The script waits until the index holds PRODUCTS vectors and the inbox has
#    nothing pending.
# 3. Reads /proc/<pid>/status (VmRSS, RssAnon, RssFile, VmHWM) at rest, then after
#    SEARCHES similar-by-product searches; then restarts the server on the same data and
#    reports how long it took to answer /api/v1/health and its memory right after.
#
# Embedding runs at ~100-130 images/s on 2 cores: 10k products take 1.5-3 minutes.
# Settings (environment): PRODUCTS (10000), SEARCHES (200), PORT (18081),
# VITRINE_BIN (skip the build), BENCH_OUT (target/bench). The JSON report is appended to
# $BENCH_OUT/memtest-<time>.jsonl.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PRODUCTS="${PRODUCTS:-10000}"
SEARCHES="${SEARCHES:-200}"
PORT="${PORT:-18081}"
OUT="${BENCH_OUT:-target/bench}"
URL="http://127.0.0.1:$PORT"

NAME=memtest
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

ensure_assets
vitrine_bin
mkdir -p "$OUT"
RUN="$(realpath "$OUT")/memtest-$(date +%Y%m%d-%H%M%S).jsonl"
WORK="$(mktemp -d /tmp/vitrine-memtest.XXXXXX)"
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT

export VITRINE_DATA_DIR="$WORK/data" WEBHOOK_SECRET="mt$(openssl rand -hex 16)"
export IMAGE_BASE_URL="file://$WORK/demo/images/" VITRINE_BIND="127.0.0.1:$PORT"
export VITRINE_MODEL_DIR="$ROOT/models/effnet-lite0" VITRINE_LOG_FORMAT=json

log "catalog: $PRODUCTS products over the 24 demo photos"
.cache/venv-assets/bin/python scripts/make-demo-catalog.py --out "$WORK/demo" >/dev/null
python3 - "$WORK/demo/catalog.jsonl" "$PRODUCTS" <<'EOF'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
base = [json.loads(l) for l in open(path)]
with open(path, "w") as f:
    for i in range(n):
        p = dict(base[i % len(base)])
        p["product_id"] = f"mem-{i:06d}"
        p["price"] = round(p["price"] * (1 + (i % 97) / 100), 2)
        f.write(json.dumps(p) + "\n")
EOF
"$BIN" import "$WORK/demo/catalog.jsonl" >/dev/null

log "serve: embedding and indexing $PRODUCTS products"
start_server "$WORK/serve.log"
t0=$(date +%s)
while :; do
  metrics=$(curl -sf "$URL/api/v1/metrics" || true)
  points=$(awk '$1 == "visual_search_index_points" {print int($2)}' <<<"$metrics")
  pending=$(awk '/^visual_search_inbox_events\{status="(pending|processing|retrying)"\}/ {s += $2} END {print int(s)}' <<<"$metrics")
  printf '\r  indexed %s / %s, in the inbox %s   ' "${points:-0}" "$PRODUCTS" "${pending:-?}" >&2
  [[ "${points:-0}" -ge "$PRODUCTS" && "${pending:-1}" -eq 0 ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "vitrine serve exited"
  sleep 2
done
elapsed=$(( $(date +%s) - t0 ))
echo >&2
sleep 3 # let allocator caches settle after the last batch
mem_rest=$(proc_mem "$SERVER_PID")
log "memory at rest with $PRODUCTS products: $mem_rest"

log "$SEARCHES similar-by-product searches"
for i in $(seq 1 "$SEARCHES"); do
  curl -sf -o /dev/null "$URL/api/v1/products/mem-$(printf '%06d' $(( (i * 7919) % PRODUCTS )))/similar?limit=10" \
    || die "search $i failed"
done
mem_search=$(proc_mem "$SERVER_PID")
log "memory after the searches: $mem_search"

log "restart on the same data"
stop_server
start_server "$WORK/serve.log"
mem_restart=$(proc_mem "$SERVER_PID")
log "ready in ${READY_S}s; memory right after: $mem_restart"

python3 - "$PRODUCTS" "$elapsed" "$READY_S" "$mem_rest" "$mem_search" "$mem_restart" <<'EOF' | tee -a "$RUN"
import json, os, sys
n, elapsed, ready, rest, search, restart = sys.argv[1:7]
print(json.dumps({
    "bench": "memtest", "products": int(n), "index_seconds": int(elapsed),
    "images_per_s": round(int(n) / max(int(elapsed), 1), 1), "ready_after_restart_s": float(ready),
    "memory_at_rest": json.loads(rest), "memory_after_searches": json.loads(search),
    "memory_after_restart": json.loads(restart), "nproc": os.cpu_count(),
    "loadavg": open("/proc/loadavg").read().split()[:3],
}))
EOF
echo "report: $RUN" >&2
