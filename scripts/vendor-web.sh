#!/usr/bin/env bash
# Refreshes the admin console's charting library, uPlot, from npm (the only
# third-party code the pages use). The built files are committed under
# src/web/assets/vendor/ and compiled into the binary, so building Vitrine
# needs neither npm nor a network; run this only to move to another version:
#
#   scripts/vendor-web.sh            # the version below
#   UPLOT_VERSION=1.6.33 scripts/vendor-web.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${UPLOT_VERSION:-1.6.32}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "uplot@$VERSION" >/dev/null && tar xzf "uplot-$VERSION.tgz")
DEST="$ROOT/src/web/assets/vendor"
mkdir -p "$DEST"
cp "$WORK/package/dist/uPlot.iife.min.js" "$WORK/package/dist/uPlot.min.css" "$DEST/"
cp "$WORK/package/LICENSE" "$DEST/uPlot.LICENSE"
echo "uPlot $VERSION vendored into $DEST"
