#!/usr/bin/env bash
# Webhook-intake load test on loopback.
#
# Starts `vitrine serve` on 127.0.0.1 with a fresh temporary data directory, then runs
# `vitrine bench intake`: CONNECTIONS keep-alive connections, each sending signed
# `product.updated` events (unique event ids, so none is a duplicate) one after another for
# DURATION seconds, REPS times; and, in the same run and before the first event, the same
# client against GET /api/v1/webhooks/health (the ceiling: the HTTP stack without the inbox).
# It reports accepted events/s and p50/p99 latency, median and spread over the reps.
#
# Afterwards the server is killed with SIGKILL, started again on the same database, and the
# stored events are counted through the admin API: every acknowledged event must be there.
# The script also records how long the server took to become ready and its memory
# (VmRSS, RssAnon, RssFile) after the load.
#
# Runs on SQLite (in the temp data dir) always, and on PostgreSQL too when DATABASE_URL is a
# postgres:// URL (eval "$(scripts/dev-services.sh up)" starts one).
#
# Settings (environment): CONNECTIONS (64), DURATION (10), REPS (3), PORT (18080),
# VITRINE_BIN (skip the build), BENCH_OUT (target/bench). JSON reports go to
# $BENCH_OUT/loadtest-<time>.jsonl.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-10}"
REPS="${REPS:-3}"
PORT="${PORT:-18080}"
OUT="${BENCH_OUT:-target/bench}"
PG_URL=""
[[ "${DATABASE_URL:-}" == postgres://* || "${DATABASE_URL:-}" == postgresql://* ]] && PG_URL="$DATABASE_URL"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'loadtest: %s\n' "$*" >&2; exit 1; }

scripts/fetch-assets.sh --check >/dev/null 2>&1 || scripts/fetch-assets.sh
if [[ -n "${VITRINE_BIN:-}" ]]; then
  BIN="$VITRINE_BIN"
else
  log "build: cargo build --release --bin vitrine"
  nice cargo build --release --bin vitrine
  BIN="${CARGO_TARGET_DIR:-target}/release/vitrine"
fi
BIN="$(realpath "$BIN")"
mkdir -p "$OUT"
RUN="$(realpath "$OUT")/loadtest-$(date +%Y%m%d-%H%M%S).jsonl"
URL="http://127.0.0.1:$PORT"
SECRET="lt$(openssl rand -hex 24)"
ADMIN="adm$(openssl rand -hex 24)"
SERVER_PID=""

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "${DATA:-}" ]]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT

# start_server DATABASE_URL: starts `vitrine serve`, waits until /api/v1/health is 200,
# sets SERVER_PID and READY_S (seconds from spawn to the first healthy answer).
start_server() {
  local db="$1" t0 i
  if curl -s -o /dev/null "$URL/api/v1/webhooks/health"; then die "something already listens on $URL"; fi
  t0=$(date +%s.%N)
  env VITRINE_DATA_DIR="$DATA" DATABASE_URL="$db" WEBHOOK_SECRET="$SECRET" \
    VITRINE_ADMIN_TOKEN="$ADMIN" VITRINE_BIND="127.0.0.1:$PORT" VITRINE_LOG_FORMAT=json \
    VITRINE_MODEL_DIR="$ROOT/models/effnet-lite0" \
    "$BIN" serve >>"$DATA/serve.log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 1 3000); do
    if curl -sf -o /dev/null "$URL/api/v1/health"; then
      READY_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$DATA/serve.log" >&2; die "vitrine serve exited"; }
    sleep 0.01
  done
  die "vitrine serve did not become healthy in 30 s"
}

stored_events() {
  curl -sf -H "Authorization: Bearer $ADMIN" "$URL/api/v1/events?limit=1&provider=bakai" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["pagination"]["total"])'
}

mem() { # pid -> JSON object of the memory lines of /proc/pid/status, in MB
  awk '/^(VmRSS|RssAnon|RssFile|RssShmem|VmHWM):/ {printf "%s\"%s_mb\":%.1f", (n++ ? "," : "{"), $1, $2/1024} END {print "}"}' \
    "/proc/$1/status" | sed 's/:_mb/_mb/g'
}

run_backend() { # label, database URL ("" = SQLite in the data dir)
  local label="$1" db="$2" before after report ready1 mem_after acked
  DATA="$(mktemp -d /tmp/vitrine-loadtest.XXXXXX)"
  [[ -z "$db" ]] && db="sqlite://$DATA/vitrine.db"
  log "$label: vitrine serve on $URL (data $DATA)"
  start_server "$db"
  ready1="$READY_S"
  before=$(stored_events)
  log "$label: vitrine bench intake, $CONNECTIONS connections, $REPS x ${DURATION}s per phase"
  report=$("$BIN" bench intake --url "$URL" --secret "$SECRET" --connections "$CONNECTIONS" \
    --seconds "$DURATION" --reps "$REPS" --server-pid "$SERVER_PID")
  printf '%s\n' "$report" | sed '$d' >&2
  mem_after=$(mem "$SERVER_PID")
  acked=$(printf '%s\n' "$report" | tail -1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(x["ok"] for x in r["webhook"]["runs"]))')

  log "$label: kill -9 the server, start it again, count the stored events"
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  start_server "$db"
  after=$(stored_events)
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  local kept=$((after - before))
  printf '%s\n' "$report" | tail -1 | python3 -c '
import json, sys
r = json.load(sys.stdin)
label, ready1, ready2, mem, acked, kept = sys.argv[1:7]
r.update(tag=label, ready_s=round(float(ready1), 3), ready_after_kill_s=round(float(ready2), 3),
         server_memory_after_load=json.loads(mem), acknowledged=int(acked), stored_after_kill9=int(kept))
print(json.dumps(r))' "$label" "$ready1" "$READY_S" "$mem_after" "$acked" "$kept" >>"$RUN"
  printf '%s: server ready in %ss (again after kill -9: %ss); memory after load %s\n' \
    "$label" "$ready1" "$READY_S" "$mem_after" >&2
  if (( kept < acked )); then
    die "$label: $acked events were acknowledged but only $kept are stored after kill -9"
  fi
  printf '%s: %s acknowledged events, %s stored after kill -9: none lost\n' "$label" "$acked" "$kept" >&2
  rm -rf "$DATA"
  DATA=""
}

echo "{\"bench\":\"machine\",\"nproc\":$(nproc),\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\",\"date\":\"$(date -Iseconds)\"}" >>"$RUN"
run_backend sqlite ""
if [[ -n "$PG_URL" ]]; then
  run_backend postgres "$PG_URL"
else
  log "postgres: skipped (DATABASE_URL is not a postgres:// URL)"
fi

log "summary ($RUN)"
python3 - "$RUN" <<'EOF'
import json, sys
for r in (json.loads(l) for l in open(sys.argv[1])):
    if r.get("bench") != "intake":
        continue
    w, h = r["webhook"], r["ceiling_health"]
    f = lambda s, d=0: f"{s['median']:.{d}f} (min {s['min']:.{d}f}, max {s['max']:.{d}f})"
    print(f"{r['tag']:>8}: accepted events/s {f(w['per_s'])}; p50 {f(w['p50_ms'], 2)} ms; p99 {f(w['p99_ms'], 2)} ms")
    print(f"{'':>8}  health requests/s  {f(h['per_s'])}; p50 {f(h['p50_ms'], 2)} ms; p99 {f(h['p99_ms'], 2)} ms")
    print(f"{'':>8}  webhook / health (medians) {r['ratio_webhook_to_health']:.3f}; targets: >= 5000/s, p99 < 25 ms")
    print(f"{'':>8}  ready in {r['ready_s']} s; RSS after load {r['server_memory_after_load']}")
EOF
echo "reports: $RUN"
