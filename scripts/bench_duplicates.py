#!/usr/bin/env python3
"""What the near-duplicate check costs at ingest (issue 10): the same signed
events through a real `vitrine serve` (SQLite, embedded index, the photos
from a file:// folder), with `duplicates.enabled` off and on, alternated
over repetitions in one run. Reports the time from the first event sent to
the inbox drained, its median per mode, and the ratio on/off. The driver
and its checks (nothing lost, each product embedded once) are
scripts/chaos.py's, with no kills.

    scripts/bench_duplicates.py --bin target/release/vitrine [--events 300] [--reps 3]

Prints one JSON line (prefixed BENCH-RESULT).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, enabled, rep):
    with tempfile.TemporaryDirectory(prefix="vitrine-dupbench.") as work:
        out = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts/chaos.py"), "--bin", args.bin,
             "--root", ROOT, "--work", work, "--label", f"dup-{enabled}-{rep}",
             "--events", str(args.events), "--kills", "0", "--rate", "2000",
             "--seed", str(args.seed), "--env", f"VITRINE_DUPLICATES_ENABLED={enabled}"],
            capture_output=True, text=True)
        line = next((l for l in out.stdout.splitlines() if l.startswith("CHAOS-RESULT ")), None)
        if out.returncode != 0 or line is None:
            sys.exit(f"run failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
        r = json.loads(line[len("CHAOS-RESULT "):])
        # drained_s counts from the first event sent (it includes ingest_s).
        return r["drained_s"], r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    times = {"false": [], "true": []}
    for rep in range(args.reps):
        for enabled in ("false", "true"):
            t, r = run(args, enabled, rep)
            times[enabled].append(round(t, 2))
            print(f"rep {rep} duplicates={enabled}: {t:.1f} s "
                  f"({r['indexed']} indexed, histogram {r['embed_count_histogram']})", flush=True)
    off, on = statistics.median(times["false"]), statistics.median(times["true"])
    print("BENCH-RESULT " + json.dumps({
        "bench": "duplicates", "events": args.events, "seconds_off": times["false"],
        "seconds_on": times["true"], "median_off": off, "median_on": on,
        "on_over_off": round(on / off, 3),
        "load_average": open("/proc/loadavg").read().split()[:3]}))


if __name__ == "__main__":
    main()
