#!/usr/bin/env bash
# Runs every check Vitrine has, in the order CI runs them:
#
#   1. scripts/fetch-assets.sh                  model, ONNX Runtime library and photos the tests use
#   2. cargo fmt --all -- --check               formatting
#   3. cargo clippy --all-targets -- -D warnings  lints, warnings are errors,
#      and scripts/check-module-cycles.py       no import cycles between modules
#   3b. cargo deny check licenses bans sources  permissive licences only, crates.io only
#                                               (deny.toml; cargo-deny installed if missing)
#   4. scripts/dev-services.sh up               throwaway PostgreSQL + S3 (moto) on loopback,
#                                               and Qdrant when QDRANT_BIN/QDRANT_URL is set
#   5. cargo test --all-targets                 unit, integration (SQLite, S3) and bench-smoke tests
#   6. VITRINE_TEST_DB=postgres cargo test --test api
#                                               the integration suite again on PostgreSQL,
#                                               plus the two-instance scale-out test
#   7. scripts/scan-secrets.py                  no secret in that run's logs
#   8. scripts/chaos.sh --quick                 kill -9 during ingest, SQLite and two
#                                               PostgreSQL instances (about a minute)
#   9. scripts/chaos.sh --outage …              the image host, an s3rver bucket and
#                                               PostgreSQL each gone for 10 s mid-ingest:
#                                               health says degraded, nothing is lost
#  10. scripts/soak.sh --quick                  60 s of mixed load: no error, RSS flat,
#                                               p99 within 2x of the first window
#  11. scripts/web-test.sh                      the pages in headless Chromium, and
#                                               schemathesis against the OpenAPI document
#
# Extra arguments go to the test binaries, e.g. `scripts/test.sh --nocapture`.
# CARGO_TARGET_DIR, if set, is used by every cargo step.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOTAL_START=$SECONDS
section() { printf '\n\033[1m==> %s\033[0m\n' "$*"; SECTION_START=$SECONDS; }
done_section() { printf '\033[1m<== %s (%ss)\033[0m\n' "$1" "$((SECONDS - SECTION_START))"; }

[[ -n "${CARGO_TARGET_DIR:-}" ]] && printf 'using CARGO_TARGET_DIR=%s\n' "$CARGO_TARGET_DIR"

section "assets: scripts/fetch-assets.sh"
scripts/fetch-assets.sh
done_section "assets"

section "format: cargo fmt --all -- --check"
cargo fmt --all -- --check
done_section "format"

section "lint: cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
scripts/check-module-cycles.py
done_section "lint"

section "dependencies: cargo deny check licenses bans sources"
# cargo-deny from crates.io (about 2 minutes to build on 2 cores). Its
# advisories check needs the RustSec database from GitHub, out of reach
# here; see RELIABILITY.md for running it where GitHub is reachable.
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny@0.20.2
# cargo-deny reads the metadata of every platform's dependencies; a build
# downloads only this platform's, so a fresh machine fetches the rest first
# (from crates.io; a no-op once they are here).
cargo fetch --locked
cargo deny --offline check --hide-inclusion-graph licenses bans sources
done_section "dependencies"

section "services: scripts/dev-services.sh up"
# Our own copies on our own ports, stopped again however this script exits.
export VITRINE_SERVICES_DIR="${VITRINE_SERVICES_DIR:-$(mktemp -d /tmp/vitrine-test-services.XXXXXX)}"
mkdir -p "$VITRINE_SERVICES_DIR"
chmod 755 "$VITRINE_SERVICES_DIR"
trap 'scripts/dev-services.sh down >/dev/null 2>&1 || true' EXIT
# Through a variable: `eval "$(…)"` alone would ignore a failed start (a
# port already taken) and run the suites without their servers.
services_env="$(scripts/dev-services.sh up)"
eval "$services_env"
done_section "services"

section "tests (SQLite): cargo test --all-targets"
cargo test --all-targets -- "$@"
done_section "tests (SQLite)"

section "tests (PostgreSQL): VITRINE_TEST_DB=postgres cargo test --test api"
# With the apps' logs on (VITRINE_TEST_LOG), kept for the secret scan below.
# The database URL carries a password here (the throwaway server trusts
# loopback and ignores it), so an unredacted URL in any log line is caught.
SCAN_LOG="$VITRINE_SERVICES_DIR/test-logs.txt"
SCAN_PW="scan-me-not-$RANDOM$RANDOM"
VITRINE_TEST_DB=postgres VITRINE_TEST_LOG=1 \
  VITRINE_TEST_POSTGRES_URL="${VITRINE_TEST_POSTGRES_URL/postgres@/postgres:$SCAN_PW@}" \
  cargo test --test api -- "$@" 2>&1 | tee "$SCAN_LOG"
done_section "tests (PostgreSQL)"

section "secrets: scripts/scan-secrets.py over the PostgreSQL run's logs"
scripts/scan-secrets.py --secret "$SCAN_PW" "$SCAN_LOG"
done_section "secrets"

section "crash safety: scripts/chaos.sh --quick"
scripts/chaos.sh --quick
done_section "crash safety"

section "outages: scripts/chaos.sh --outage images|s3|postgres 10"
scripts/chaos.sh --db sqlite --kills 0 --events 120 --outage images 10
scripts/chaos.sh --db sqlite --kills 0 --events 120 --outage s3 10
scripts/chaos.sh --db postgres --kills 0 --events 120 --outage postgres 10
done_section "outages"

section "load: scripts/soak.sh --quick"
scripts/soak.sh --quick
done_section "load"

section "web: scripts/web-test.sh (Chromium, schemathesis)"
scripts/web-test.sh
done_section "web"

if [[ -n "${VITRINE_TEST_QDRANT_URL:-}" ]]; then
  section "tests (Qdrant): VITRINE_TEST_INDEX=qdrant cargo test --test api"
  VITRINE_TEST_INDEX=qdrant cargo test --test api -- "$@"
  done_section "tests (Qdrant)"
else
  printf '\nSKIPPED: the Qdrant suite (no registry ships Qdrant; set QDRANT_BIN or QDRANT_URL to run it)\n'
fi

printf '\n\033[1mall checks passed in %ss\033[0m\n' "$((SECONDS - TOTAL_START))"
