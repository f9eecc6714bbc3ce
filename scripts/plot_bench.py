#!/usr/bin/env python3
"""Throughput against batch size, one panel per thread count, from the JSON
lines that `scripts/bench.sh --sweep` collects (the reports of `vitrine bench
ingest` and `scripts/bench_python_baseline.py`, tagged "sweep"). A point
repeated over several sweep rounds is drawn at its median.

    scripts/plot_bench.py target/bench/bench-<time>.jsonl docs/bench-throughput.png

Needs matplotlib (in the bench venv, .cache/venv-bench).
"""

import json
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERIES = [
    # (bench, field, label, style)
    ("ingest", "ingest_images_per_s", "Rust ingest (vitrine bench ingest)", dict(color="C0", marker="o")),
    ("ingest", "ceiling_images_per_s", "Rust inference only (ceiling)", dict(color="C0", ls="--", marker="x")),
    ("python_baseline", "pipeline_images_per_s", "Python pipeline (Pillow + numpy + ORT)", dict(color="C1", marker="s")),
    ("python_baseline", "ceiling_images_per_s", "Python inference only", dict(color="C1", ls="--", marker="+")),
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    machine = next((r for r in rows if r.get("bench") == "machine"), {})
    sweep = [r for r in rows if r.get("tag") == "sweep"]
    if not sweep:
        sys.exit("no sweep reports in the file: run scripts/bench.sh --sweep")
    # (bench, field, threads) -> {batch: [medians]}
    data = defaultdict(lambda: defaultdict(list))
    for r in sweep:
        for bench, field, _, _ in SERIES:
            if r["bench"] == bench:
                data[(bench, field, r["threads"])][r["batch"]].append(r[field]["median"])
    threads = sorted({r["threads"] for r in sweep})
    fig, axes = plt.subplots(1, len(threads), figsize=(5.5 * len(threads), 4.2), sharey=True, squeeze=False)
    for ax, t in zip(axes[0], threads):
        for bench, field, label, style in SERIES:
            points = data.get((bench, field, t))
            if not points:
                continue
            xs = sorted(points)
            ys = [statistics.median(points[x]) for x in xs]
            ax.plot(xs, ys, label=label, **style)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["batch"] for r in sweep}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("batch size (images per model call)")
        ax.set_title(f"{t} thread{'s' if t != 1 else ''}")
        ax.grid(True, alpha=0.3)
    top = max(statistics.median(v) for pts in data.values() for v in pts.values())
    axes[0][0].set_ylim(0, top * 1.08)
    axes[0][0].set_ylabel("images / s")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"EfficientNet-Lite0 ingest throughput, {machine.get('nproc', '?')} cores ({machine.get('cpu', '?')}), "
        f"{str(machine.get('date', ''))[:10]}, {sweep[0]['images']} JPEG q90 images per point",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
