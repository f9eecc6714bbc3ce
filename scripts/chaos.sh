#!/usr/bin/env bash
# Crash safety (issue 14, item 1): drives signed events into real
# `vitrine serve` processes, kill -9s them at random moments during ingest,
# restarts them, and checks that no acknowledged event is lost, every
# product is embedded exactly once, nothing is left `processing`, and the
# index agrees with the database. The driver is scripts/chaos.py.
#
#   scripts/chaos.sh                 full run: 1,000 events, 5 kills, SQLite
#                                    and PostgreSQL with two instances
#   scripts/chaos.sh --quick         CI size: 200 events, 3 kills, same modes
#   scripts/chaos.sh --db sqlite     only one mode (sqlite | postgres)
#   scripts/chaos.sh --seed 42       replay a run's random choices
#   scripts/chaos.sh --db postgres --kills 0 --outage postgres 60
#                                    stop scripts/dev-services.sh's PostgreSQL for 60 s
#                                    mid-ingest instead (needs VITRINE_SERVICES_DIR)
#   scripts/chaos.sh --db sqlite --kills 0 --outage images 60
#                                    the photos from an HTTP host that goes away for 60 s
#   scripts/chaos.sh --db sqlite --kills 0 --outage s3 60
#                                    the photos in an s3rver bucket (on disk; npm s3rver,
#                                    installed into .cache/s3rver) that is killed for 60 s
#                                    and started again
#   An outage passes when health said `degraded` while it lasted, every instance
#   is `healthy` after it, and the usual checks hold (0 lost, each embedded once).
#
# Needs the assets (scripts/fetch-assets.sh) and a built binary:
# VITRINE_BIN, else target/debug/vitrine (built here if missing). The
# PostgreSQL mode needs VITRINE_TEST_POSTGRES_URL (scripts/dev-services.sh up
# prints it) and is skipped, with a message, without it. Each run prints a
# `CHAOS-RESULT {json}` line per mode; a violation exits 1 and keeps the
# work directory (server logs) for inspection.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

EVENTS=1000 KILLS=5 RATE=40 MODES="sqlite postgres" SEED="${CHAOS_SEED:-$RANDOM$RANDOM}" OUTAGE=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) EVENTS=200 KILLS=3 RATE=40 ;;
    --db) MODES="$2"; shift ;;
    --events) EVENTS="$2"; shift ;;
    --kills) KILLS="$2"; shift ;;
    --seed) SEED="$2"; shift ;;
    --outage-postgres) OUTAGE=(--outage postgres --outage-s "$2"); shift ;;
    --outage) OUTAGE=(--outage "$2" --outage-s "$3"); shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

BIN="${VITRINE_BIN:-}"
if [[ -z "$BIN" ]]; then
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/vitrine"
  [[ -x "$BIN" ]] || cargo build --bin vitrine
fi
[[ -f models/effnet-lite0/model.onnx ]] || { echo "run scripts/fetch-assets.sh first" >&2; exit 1; }

WORK="$(mktemp -d /tmp/vitrine-chaos.XXXXXX)"
SOURCE=()
case "${OUTAGE[1]:-}" in
  images) SOURCE=(--images http) ;;
  s3)
    S3RVER_DIR="$ROOT/.cache/s3rver"
    if [[ ! -x "$S3RVER_DIR/node_modules/.bin/s3rver" ]]; then
      echo "installing s3rver 3.7.1 into $S3RVER_DIR (npm)"
      mkdir -p "$S3RVER_DIR"
      npm install --silent --prefix "$S3RVER_DIR" s3rver@3.7.1 >/dev/null
    fi
    # boto3 uploads the photos: the moto venv of scripts/dev-services.sh has it.
    S3_PY="$ROOT/.cache/venv-moto/bin/python"
    [[ -x "$S3_PY" ]] || { echo "--outage s3 needs $S3_PY (scripts/dev-services.sh up)" >&2; exit 1; }
    SOURCE=(--images s3 --s3rver "$S3RVER_DIR/node_modules/.bin/s3rver" --s3-python "$S3_PY") ;;
esac
status=0
for mode in $MODES; do
  case "$mode" in
    sqlite)
      if [[ "${OUTAGE[1]:-}" == postgres ]]; then continue; fi
      extra=(--instances 1 "${OUTAGE[@]}" "${SOURCE[@]}") ;;
    postgres)
      if [[ -z "${VITRINE_TEST_POSTGRES_URL:-}" ]]; then
        echo "SKIPPED: chaos on PostgreSQL (set VITRINE_TEST_POSTGRES_URL; scripts/dev-services.sh up)"
        continue
      fi
      extra=(--instances 2 --pg-admin-url "$VITRINE_TEST_POSTGRES_URL" "${OUTAGE[@]}" "${SOURCE[@]}") ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  mkdir -p "$WORK/$mode"
  echo "==> chaos ($mode): $EVENTS events, $KILLS kills, seed $SEED, work $WORK/$mode"
  if ! python3 scripts/chaos.py --bin "$BIN" --root "$ROOT" --work "$WORK/$mode" --label "$mode" \
      --events "$EVENTS" --kills "$KILLS" --rate "$RATE" --seed "$SEED" "${extra[@]}"; then
    status=1
    echo "FAILED: chaos ($mode); server logs in $WORK/$mode; their last lines:" >&2
    tail -n 30 "$WORK/$mode"/*.log >&2 || true
  fi
done
if [[ $status -eq 0 ]]; then rm -rf "$WORK"; fi
exit $status
