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

NAME=loadtest
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

ensure_assets
vitrine_bin
mkdir -p "$OUT"
RUN="$(realpath "$OUT")/loadtest-$(date +%Y%m%d-%H%M%S).jsonl"
URL="http://127.0.0.1:$PORT"
SECRET="lt$(openssl rand -hex 24)"
ADMIN="adm$(openssl rand -hex 24)"

cleanup() {
  stop_server
  if [[ -n "${DATA:-}" ]]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT

# start DATABASE_URL: `vitrine serve` on $URL with the data dir $DATA and that database.
start() {
  start_server "$DATA/serve.log" VITRINE_DATA_DIR="$DATA" DATABASE_URL="$1" \
    WEBHOOK_SECRET="$SECRET" VITRINE_ADMIN_TOKEN="$ADMIN" VITRINE_BIND="127.0.0.1:$PORT" \
    VITRINE_LOG_FORMAT=json VITRINE_MODEL_DIR="$ROOT/models/effnet-lite0"
}

stored_events() {
  curl -sf -H "Authorization: Bearer $ADMIN" "$URL/api/v1/events?limit=1&provider=bakai" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["pagination"]["total"])'
}

run_backend() { # label, database URL ("" = SQLite in the data dir)
  local label="$1" db="$2" before after report ready1 mem_after acked
  DATA="$(mktemp -d /tmp/vitrine-loadtest.XXXXXX)"
  [[ -z "$db" ]] && db="sqlite://$DATA/vitrine.db"
  log "$label: vitrine serve on $URL (data $DATA)"
  start "$db"
  ready1="$READY_S"
  before=$(stored_events)
  log "$label: vitrine bench intake, $CONNECTIONS connections, $REPS x ${DURATION}s per phase"
  report=$("$BIN" bench intake --url "$URL" --secret "$SECRET" --connections "$CONNECTIONS" \
    --seconds "$DURATION" --reps "$REPS" --server-pid "$SERVER_PID")
  printf '%s\n' "$report" | sed '$d' >&2
  mem_after=$(proc_mem "$SERVER_PID")
  acked=$(printf '%s\n' "$report" | tail -1 | python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum(x["ok"] for x in r["webhook"]["runs"]))')

  log "$label: kill -9 the server, start it again, count the stored events"
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  start "$db"
  after=$(stored_events)
  stop_server
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
