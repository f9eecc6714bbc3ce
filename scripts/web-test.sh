#!/usr/bin/env bash
# The web checks against one live server: starts `vitrine serve` on a free
# loopback port with a throwaway data directory and the test photos as its
# image source, then
#   1. the browser tests (tests/browser/run.mjs): Debian's Chromium driven
#      by playwright-core; screenshots go to $BROWSER_ARTIFACTS (default
#      tests/browser/artifacts);
#   2. schemathesis (PyPI) against /api/v1/openapi.json: no 5xx, and no
#      response that breaks its documented schema.
#
# Needs: the vitrine binary (VITRINE_BIN, or target/debug/vitrine, built if
# missing), /usr/bin/chromium (Debian package `chromium`; CHROMIUM overrides),
# node with npm (playwright-core is installed from npm into
# tests/browser/node_modules on first use, from package-lock.json) and
# python3 with venv (schemathesis goes into .cache/venv-schemathesis).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${VITRINE_BIN:-${CARGO_TARGET_DIR:-target}/debug/vitrine}"
[[ -x "$BIN" ]] || cargo build --bin vitrine
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "browser-test: $CHROMIUM is missing (apt-get install chromium)" >&2; exit 1; }
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
SCHEMATHESIS_VERSION=4.32.5
ST=.cache/venv-schemathesis/bin/schemathesis
if ! "$ST" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv .cache/venv-schemathesis
  .cache/venv-schemathesis/bin/pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK="$(mktemp -d)"
PID=
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export VITRINE_DATA_DIR="$WORK/data" VITRINE_BIND="127.0.0.1:$PORT"
export IMAGE_BASE_URL="file://$ROOT/tests/data/photos/"
export WEBHOOK_SECRET="browser-test-secret" VITRINE_ADMIN_TOKEN="browser-test-admin-token"
# The messengers and the CRM configured too, so that their receivers answer
# with their real checks (401 for an unsigned request) instead of failing
# closed (503).
export WHATSAPP_APP_SECRET="browser-test-whatsapp-secret" WHATSAPP_VERIFY_TOKEN="browser-test-verify"
export KOMMO_WEBHOOK_SECRET="browser-test-kommo-secret-0123"
# A key for the bots stored in the database (the admin console's bots panel).
export VITRINE_SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export VITRINE_LOG_FORMAT=json RUST_LOG="${RUST_LOG:-warn}"
"$BIN" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.2
done

export BASE_URL="http://127.0.0.1:$PORT" PHOTOS="$ROOT/tests/data/photos"
export ARTIFACTS="${BROWSER_ARTIFACTS:-$ROOT/tests/browser/artifacts}"
fail() {
  echo "--- $1 failed; server log (last 40 lines) ---" >&2
  tail -n 40 "$WORK/server.log" >&2
  exit 1
}
T=$SECONDS
node tests/browser/run.mjs || fail "the browser tests"
echo "browser tests: $((SECONDS - T))s; screenshots in $ARTIFACTS"

# The server now holds a catalog and a failed event, so the generated
# requests meet real data. The admin token lets the event routes answer
# more than 401; webhooks stay unsigned (401 is their documented answer).
T=$SECONDS
"$ST" run "$BASE_URL/api/v1/openapi.json" --url "$BASE_URL" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" --generation-deterministic \
  --header "Authorization: Bearer $VITRINE_ADMIN_TOKEN" --request-timeout 30 \
  --no-color || fail "schemathesis"
echo "schemathesis: $((SECONDS - T))s"
