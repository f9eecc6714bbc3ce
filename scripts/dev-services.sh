#!/usr/bin/env bash
# Throwaway servers for development and integration tests, on loopback only.
#
#   scripts/dev-services.sh up     start PostgreSQL and an S3-compatible server
#                                  (and Qdrant when QDRANT_BIN names a binary),
#                                  then print the matching env vars
#   scripts/dev-services.sh env    print the env vars of what is running
#   scripts/dev-services.sh down   stop exactly what `up` started
#
# Use:  eval "$(scripts/dev-services.sh up)"
#
# PostgreSQL is Debian's package, run by initdb/pg_ctl in a private directory
# on its own port. S3 is moto (PyPI, in a venv under .cache/), in memory.
# Qdrant has no package in any registry: set QDRANT_BIN to a binary you have,
# or QDRANT_URL to a server you run; otherwise Qdrant tests say they skipped.
#
# Ports: PG_PORT (25432), S3_PORT (29000), QDRANT_HTTP_PORT (26333),
# QDRANT_GRPC_PORT (26334): below Linux's ephemeral range (32768-60999), so
# that no outgoing connection (a crate download, a test's client) can hold
# one when a server starts; 55432 was once taken that way here.
# State: VITRINE_SERVICES_DIR (/tmp/vitrine-dev-services).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${VITRINE_SERVICES_DIR:-/tmp/vitrine-dev-services}"
PG_PORT="${PG_PORT:-25432}"
S3_PORT="${S3_PORT:-29000}"
QDRANT_HTTP_PORT="${QDRANT_HTTP_PORT:-26333}"
QDRANT_GRPC_PORT="${QDRANT_GRPC_PORT:-26334}"
MOTO_VENV="$ROOT/.cache/venv-moto"
MOTO_VERSION="5.2.5"

log() { printf '%s\n' "$*" >&2; }
die() { log "dev-services: $*"; exit 1; }

as_postgres() {
  if [[ "$(id -un)" == postgres ]]; then "$@"; else runuser -u postgres -- "$@"; fi
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [[ -n "$d" && -x "$d/initdb" ]] || die "PostgreSQL server not installed: apt-get install -y postgresql"
  printf '%s' "$d"
}

wait_for() { # command, what
  for _ in $(seq 1 100); do
    if eval "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$2 did not become ready"
}

up_postgres() {
  local bin dir="$STATE/pg"
  bin=$(pg_bin)
  mkdir -p "$dir"
  chown postgres: "$dir" 2>/dev/null || true
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  fi
  if ! as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    # fsync stays on: the crash tests rely on durable commits.
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $dir -c max_connections=300" start >/dev/null
  fi
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres" >>"$STATE/env"
  echo "export VITRINE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres" >>"$STATE/env"
}

down_postgres() {
  local dir="$STATE/pg"
  [[ -f "$dir/data/PG_VERSION" ]] || return 0
  as_postgres "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

moto_install() {
  if [[ ! -x "$MOTO_VENV/bin/moto_server" ]]; then
    log "installing moto $MOTO_VERSION into $MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q "moto[s3]==$MOTO_VERSION" flask flask-cors >&2
  fi
}

up_s3() {
  moto_install
  if [[ -f "$STATE/moto.pid" ]] && kill -0 "$(cat "$STATE/moto.pid")" 2>/dev/null; then :; else
    nohup "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$STATE/moto.log" 2>&1 </dev/null &
    echo $! >"$STATE/moto.pid"
    wait_for "curl -sf http://127.0.0.1:$S3_PORT/" "moto on port $S3_PORT"
  fi
  cat >>"$STATE/env" <<EOF
export S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export S3_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export VITRINE_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export VITRINE_TEST_MOTO=$MOTO_VENV/bin/moto_server
EOF
}

up_qdrant() {
  if [[ -n "${QDRANT_BIN:-}" ]]; then
    [[ -x "$QDRANT_BIN" ]] || die "QDRANT_BIN=$QDRANT_BIN is not an executable"
    if [[ -f "$STATE/qdrant.pid" ]] && kill -0 "$(cat "$STATE/qdrant.pid")" 2>/dev/null; then :; else
      mkdir -p "$STATE/qdrant"
      # The whole subshell's output goes to the log: a caller reading our
      # stdout through $(…) must not wait for Qdrant to exit.
      (cd "$STATE/qdrant" && exec env QDRANT__SERVICE__HOST=127.0.0.1 \
        QDRANT__SERVICE__HTTP_PORT="$QDRANT_HTTP_PORT" QDRANT__SERVICE__GRPC_PORT="$QDRANT_GRPC_PORT" \
        QDRANT__STORAGE__STORAGE_PATH="$STATE/qdrant/storage" QDRANT__TELEMETRY_DISABLED=true \
        "$QDRANT_BIN" --disable-telemetry) >"$STATE/qdrant.log" 2>&1 </dev/null &
      echo $! >"$STATE/qdrant.pid"
      wait_for "curl -sf http://127.0.0.1:$QDRANT_HTTP_PORT/readyz" "Qdrant"
    fi
    echo "export QDRANT_URL=http://127.0.0.1:$QDRANT_GRPC_PORT" >>"$STATE/env"
    echo "export VITRINE_TEST_QDRANT_URL=http://127.0.0.1:$QDRANT_GRPC_PORT" >>"$STATE/env"
  elif [[ -n "${QDRANT_URL:-}" ]]; then
    echo "export QDRANT_URL=$QDRANT_URL" >>"$STATE/env"
    echo "export VITRINE_TEST_QDRANT_URL=$QDRANT_URL" >>"$STATE/env"
  else
    echo "# Qdrant: not started (set QDRANT_BIN or QDRANT_URL); Qdrant tests will skip" >>"$STATE/env"
  fi
}

stop_pid() {
  local f="$STATE/$1.pid"
  [[ -f "$f" ]] || return 0
  local pid
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

case "${1:-}" in
  up)
    mkdir -p "$STATE"
    : >"$STATE/env"
    up_postgres
    up_s3
    up_qdrant
    cat "$STATE/env"
    ;;
  env)
    [[ -f "$STATE/env" ]] || die "nothing is running (run: $0 up)"
    cat "$STATE/env"
    ;;
  down)
    stop_pid qdrant
    stop_pid moto
    down_postgres
    rm -rf "$STATE"
    log "dev-services: stopped"
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
