#!/usr/bin/env python3
"""Secret scanner for log output (issue 14, item 7).

Reads log files (or stdin with `-`) and fails if any line shows a secret:
the test suite's own secrets (tests/api/helpers.rs `SECRET` and `ADMIN`,
the chaos driver's, and any given with --secret), a URL with a password in
it, or an `Authorization` value. Each hit is printed with its file and line,
with the secret itself masked so that the scanner's own output is clean.

    VITRINE_TEST_LOG=1 cargo test --test api 2>&1 | tee test.log
    scripts/scan-secrets.py test.log
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def suite_secrets():
    """The literal secrets the test suite and the chaos driver configure."""
    found = set()
    helpers = ROOT / "tests/api/helpers.rs"
    for m in re.finditer(r'pub const (?:SECRET|ADMIN): &str = "([^"]+)"', helpers.read_text()):
        found.add(m.group(1))
    chaos = ROOT / "scripts/chaos.py"
    for m in re.finditer(r'^(?:SECRET|ADMIN) = "([^"]+)"', chaos.read_text(), re.M):
        found.add(m.group(1))
    return found


PATTERNS = [
    # scheme://user:password@host, the password not already redacted.
    ("a URL with a password", re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@]+:(?!\*\*\*|REDACTED|redacted)[^\s/@]+@")),
    ("an Authorization value", re.compile(r"(?i)authorization[\"']?\s*[:=]\s*[\"']?(bearer|basic)\s+(?!\*\*\*)\S+")),
]


def scan(name, lines, secrets):
    hits = 0
    for n, line in enumerate(lines, 1):
        for s in secrets:
            if s in line:
                hits += 1
                print(f"{name}:{n}: a configured secret: {line.strip().replace(s, '***')[:300]}")
        for what, pat in PATTERNS:
            if pat.search(line):
                hits += 1
                print(f"{name}:{n}: {what}: {pat.sub('***', line.strip())[:300]}")
    return hits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+", help="log files, or - for stdin")
    ap.add_argument("--secret", action="append", default=[], help="another literal secret")
    args = ap.parse_args()
    secrets = suite_secrets() | set(args.secret)
    if len(secrets) < 3:
        sys.exit(f"found only {len(secrets)} suite secrets: the scanner no longer reads them")
    hits = lines = 0
    for name in args.logs:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(errors="replace")
        rows = text.splitlines()
        lines += len(rows)
        hits += scan(name, rows, secrets)
    print(f"scan-secrets: {lines} lines, {len(secrets)} secrets and {len(PATTERNS)} patterns, {hits} hits")
    sys.exit(1 if hits else 0)


if __name__ == "__main__":
    main()
