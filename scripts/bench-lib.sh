# Shared by scripts/bench.sh, scripts/loadtest.sh and scripts/memtest.sh; sourced, not run.
# The caller sets ROOT and cd's there first, and sets NAME (for error messages).
#
#   log MSG / die MSG        progress on stderr / error and exit 1
#   ensure_assets            model, ONNX Runtime and photos (scripts/fetch-assets.sh)
#   vitrine_bin              sets BIN: $VITRINE_BIN, or a fresh release build
#   start_server LOG [VAR=value ...]
#                            runs `vitrine serve` with those variables added to the
#                            environment, output appended to LOG; waits until $URL/api/v1/health
#                            answers 200; sets SERVER_PID and READY_S (seconds from spawn)
#   stop_server              SIGTERM, wait, clears SERVER_PID
#   proc_mem PID             JSON of VmRSS, RssAnon, RssFile, RssShmem, VmHWM in MB

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '%s: %s\n' "${NAME:-bench}" "$*" >&2; exit 1; }

ensure_assets() {
  scripts/fetch-assets.sh --check >/dev/null 2>&1 || scripts/fetch-assets.sh
}

vitrine_bin() {
  if [[ -n "${VITRINE_BIN:-}" ]]; then
    BIN="$VITRINE_BIN"
  else
    log "build: cargo build --release --bin vitrine"
    nice cargo build --release --bin vitrine
    BIN="${CARGO_TARGET_DIR:-target}/release/vitrine"
  fi
  BIN="$(realpath "$BIN")"
}

SERVER_PID=""
start_server() {
  local log_file="$1" t0 i
  shift
  if curl -s -o /dev/null "$URL/api/v1/health"; then die "something already listens on $URL"; fi
  t0=$(date +%s.%N)
  env "$@" "$BIN" serve >>"$log_file" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 1 3000); do
    if curl -sf -o /dev/null "$URL/api/v1/health"; then
      READY_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$log_file" >&2; die "vitrine serve exited"; }
    sleep 0.01
  done
  die "vitrine serve did not become healthy in 30 s"
}

stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

proc_mem() {
  awk '/^(VmRSS|RssAnon|RssFile|RssShmem|VmHWM):/ {printf "%s\"%s_mb\":%.1f", (n++ ? "," : "{"), $1, $2/1024} END {print "}"}' \
    "/proc/$1/status" | sed 's/:_mb/_mb/g'
}
