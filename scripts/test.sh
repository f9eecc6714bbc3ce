#!/usr/bin/env bash
# Runs every check Vitrine has, in the order CI runs them:
#
#   1. scripts/fetch-assets.sh                  model, ONNX Runtime library and photos the tests use
#   2. cargo fmt --all -- --check               formatting
#   3. cargo clippy --all-targets -- -D warnings  lints, warnings are errors
#   4. cargo test --all-targets                 unit, integration and bench-smoke tests
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
done_section "lint"

section "tests: cargo test --all-targets"
if [[ $# -gt 0 ]]; then
  cargo test --all-targets -- "$@"
else
  cargo test --all-targets
fi
done_section "tests"

printf '\n\033[1mall checks passed in %ss\033[0m\n' "$((SECONDS - TOTAL_START))"
