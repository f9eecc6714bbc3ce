#!/usr/bin/env python3
"""The Python pipeline a seed stack would use, with Vitrine's model and inputs.

    --mode ingest (default)
        Pillow decode -> resize short side to 256 (bilinear) -> centre crop 224
        -> numpy (x - 127) / 128, NCHW -> onnxruntime InferenceSession, in batches
        of --batch with intra_op_num_threads = --threads, then L2-normalised rows.
        In the same run: the same session on pre-made tensors (its ceiling).
    --mode resize
        Pillow resize to 224x224 (BILINEAR, the whole image) of the decoded
        images, one thread: the counterpart of `vitrine bench resize`.

The images are the files of --images, sorted by name and cycled to --count;
`scripts/bench.sh` points it at the JPEG q90 files that `vitrine bench ingest
--dump-jpeg` wrote, so both programs read the same bytes. The mean, std,
sizes and tensor names come from the model's manifest.json.

Prints a short summary and, as its last line, one JSON object.
Needs: onnxruntime==1.31.1, numpy, pillow (scripts/bench.sh makes the venv).
"""

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def summary(values):
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        "median": round(med, 3),
        "min": round(lo, 3),
        "max": round(hi, 3),
        "spread_pct": round((hi - lo) / 2 / med * 100, 3) if med else 0.0,
        "runs": [round(v, 3) for v in values],
    }


def fmt(s):
    return f"{s['median']:.3f} (min {s['min']:.3f}, max {s['max']:.3f}, ±{s['spread_pct']:.1f}%)"


def load_files(folder):
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXT)
    if not paths:
        sys.exit(f"no images in {folder}")
    return [p.read_bytes() for p in paths]


class Preprocessor:
    def __init__(self, manifest):
        inp, pre = manifest["input"], manifest["preprocess"]
        assert inp["layout"] == "NCHW" and inp["channels"] == "RGB", "baseline handles NCHW RGB"
        self.w, self.h = inp["width"], inp["height"]
        self.short = pre.get("resize_shortest_side") or 0
        self.mean = np.array(pre["mean"], dtype=np.float32)
        self.std = np.array(pre["std"], dtype=np.float32)

    def __call__(self, data):
        im = Image.open(io.BytesIO(data)).convert("RGB")
        w, h = im.size
        if self.short:
            scale = self.short / min(w, h)
            nw, nh = max(self.w, round(w * scale)), max(self.h, round(h * scale))
            im = im.resize((nw, nh), Image.BILINEAR)
            left, top = (nw - self.w) // 2, (nh - self.h) // 2
            im = im.crop((left, top, left + self.w, top + self.h))
        else:
            im = im.resize((self.w, self.h), Image.BILINEAR)
        x = (np.asarray(im, dtype=np.float32) - self.mean) / self.std
        return x.transpose(2, 0, 1)  # HWC -> CHW


def session(model_path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])


def ingest(args, manifest, model_dir):
    files = load_files(args.images)
    inputs = [files[i % len(files)] for i in range(args.count)]
    pre = Preprocessor(manifest)
    sess = session(model_dir / manifest["file"], args.threads)
    in_name, out_name = manifest["input"]["name"], manifest["output"]["name"]
    b = args.batch

    def run_batch(x):
        y = sess.run([out_name], {in_name: x})[0]
        return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)

    def pipeline(items):
        t = time.perf_counter()
        for i in range(0, len(items), b):
            run_batch(np.stack([pre(d) for d in items[i : i + b]]))
        return time.perf_counter() - t

    tensor = np.stack([pre(d) for d in inputs])

    def ceiling(n):
        t = time.perf_counter()
        for i in range(0, n, b):
            run_batch(tensor[i : min(i + b, n)])
        return time.perf_counter() - t

    print(
        f"python baseline: {len(inputs)} images ({len(files)} distinct), batch {b}, "
        f"intra_op threads {args.threads}, {args.reps} reps, onnxruntime {ort.__version__}, "
        f"Pillow {Image.__version__}, numpy {np.__version__}",
        file=sys.stderr,
    )
    load_before = os.getloadavg()[0]
    warm = max(1, min(len(inputs), 2 * b * args.threads))
    pipeline(inputs[:warm])
    ceiling(warm)
    ips, ceil, ratio = [], [], []
    for rep in range(args.reps):
        a = len(inputs) / pipeline(inputs)
        c = len(inputs) / ceiling(len(inputs))
        print(
            f"  rep {rep + 1}: pipeline {a:.2f} images/s, inference-only {c:.2f} images/s, ratio {a / c:.3f}",
            file=sys.stderr,
        )
        ips.append(a)
        ceil.append(c)
        ratio.append(a / c)
    report = {
        "bench": "python_baseline",
        "images": len(inputs),
        "distinct_images": len(files),
        "batch": b,
        "threads": args.threads,
        "reps": args.reps,
        "cores": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "pipeline_images_per_s": summary(ips),
        "ceiling_images_per_s": summary(ceil),
        "ratio_pipeline_to_ceiling": summary(ratio),
        "loadavg_1m": [load_before, os.getloadavg()[0]],
    }
    print(f"python pipeline (images/s):        {fmt(report['pipeline_images_per_s'])}")
    print(f"python inference only (images/s):  {fmt(report['ceiling_images_per_s'])}")
    return report


def resize(args, manifest):
    w, h = manifest["input"]["width"], manifest["input"]["height"]
    images = []
    for data in load_files(args.images):
        im = Image.open(io.BytesIO(data)).convert("RGB")
        im.load()
        images.append(im)
    rates = []
    for _ in range(args.reps):
        t = time.perf_counter()
        for im in images:
            im.resize((w, h), Image.BILINEAR)
        rates.append(len(images) / (time.perf_counter() - t))
    report = {
        "bench": "resize_pillow",
        "images": len(images),
        "side": w,
        "filter": "bilinear",
        "reps": args.reps,
        "pillow": Image.__version__,
        "pillow_images_per_s": summary(rates),
    }
    print(f"Pillow resize (images/s):  {fmt(report['pillow_images_per_s'])}")
    return report


def main():
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["ingest", "resize"], default="ingest")
    p.add_argument("--images", default=str(root / "tests/data/photos"))
    p.add_argument("--count", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--model-dir", default=str(root / "models/effnet-lite0"))
    args = p.parse_args()
    model_dir = Path(args.model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    report = ingest(args, manifest, model_dir) if args.mode == "ingest" else resize(args, manifest)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
