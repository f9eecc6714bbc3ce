#!/usr/bin/env bash
# Mixed load over time (issue 14, item 8): one real `vitrine serve` on
# loopback, calibrated to the image events per second it completes, then
# webhooks at half that, image and text searches and admin queries, for a
# while. Passes when no request fails, RSS stays within 10 % of its value
# after the first window, every request type's p99 stays within 2x its
# first window's, and the inbox drains. The driver is scripts/soak.py.
#
#   scripts/soak.sh            30 minutes, 60 s windows (RELIABILITY.md §8)
#   scripts/soak.sh --quick    CI size: 60 s, 15 s windows; p99 growth is reported,
#                              not failed on (a 15 s window on a shared CI machine)
#
# Needs the assets (scripts/fetch-assets.sh) and a built binary:
# VITRINE_BIN, else target/debug/vitrine (built here if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ARGS=(--seconds 1800 --window-s 60 --calibrate-s 30)
if [[ "${1:-}" == --quick ]]; then
  ARGS=(--seconds 60 --window-s 15 --calibrate-s 10 --products 100 --p99-advisory)
  shift
fi
BIN="${VITRINE_BIN:-}"
if [[ -z "$BIN" ]]; then
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/vitrine"
  [[ -x "$BIN" ]] || cargo build --bin vitrine
fi
[[ -f models/effnet-lite0/model.onnx ]] || { echo "run scripts/fetch-assets.sh first" >&2; exit 1; }
WORK="$(mktemp -d /tmp/vitrine-soak.XXXXXX)"
if python3 scripts/soak.py --bin "$BIN" --root "$ROOT" --work "$WORK" "${ARGS[@]}" "$@"; then
  rm -rf "$WORK"
else
  echo "FAILED: soak; server log in $WORK; its last lines:" >&2
  tail -n 30 "$WORK"/*.log >&2 || true
  exit 1
fi
