#!/usr/bin/env python3
"""Mixed load over time (issue 14, item 8), driven by scripts/soak.sh.

Starts one real `vitrine serve` (SQLite, the photos from a file:// folder),
then:

1. **Calibrates**: offers product creates with images as fast as the
   server completes them for `--calibrate-s` seconds, and takes the
   completed events per second as the maximum.
2. **Soaks** for `--seconds`: signed webhooks at `--fraction` (50 %) of that
   maximum (creates, image updates, metadata updates and deletes over a
   fixed set of products, so the catalog stays the same size), searches by
   image and by text, and admin queries, each at a bounded rate.

Pass means, over the soak:
- no error: every request answered 2xx (a 429 or a 5xx is an error);
- RSS flat: the last sample is within 10 % of the sample at the end of the
  first window;
- p99 stable: each request type's p99 in every window is within 2× its p99
  in the first window (floored at 5 ms, so a 1 ms p99 does not fail on 3 ms).
- the inbox keeps up: nothing is left unfinished a while after the load.

Only the Python standard library. Prints `SOAK-RESULT {json}`; exits 1 on a
violation.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import sys
import threading
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaos  # noqa: E402  (the Instance, request and admin helpers)


def sign(body):
    return "sha256=" + hmac.new(chaos.SECRET.encode(), body, hashlib.sha256).hexdigest()


def quantile(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(q * len(v) + 0.999999) - 1))]


class Recorder:
    """Latencies per (window, kind), and errors."""

    def __init__(self, window_s):
        self.window_s = window_s
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.lat = {}
        self.errors = []
        self.counts = {}

    def record(self, kind, started, status):
        ms = (time.monotonic() - started) * 1000
        w = int((started - self.t0) // self.window_s)
        with self.lock:
            self.lat.setdefault(kind, {}).setdefault(w, []).append(ms)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if status is None or not 200 <= status < 300:
                self.errors.append({"kind": kind, "status": status, "at_s": round(started - self.t0, 1)})


def paced(rate, stop, fn):
    """Calls fn() about `rate` times a second until `stop` is set."""
    interval = 1.0 / rate
    nxt = time.monotonic()
    while not stop.is_set():
        fn()
        nxt += interval
        time.sleep(max(0.0, nxt - time.monotonic()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=float, default=1800)
    ap.add_argument("--window-s", type=float, default=60)
    ap.add_argument("--calibrate-s", type=float, default=30)
    ap.add_argument("--fraction", type=float, default=0.5)
    ap.add_argument("--products", type=int, default=300)
    ap.add_argument("--search-rate", type=float, default=2.0, help="image searches per second")
    ap.add_argument("--text-rate", type=float, default=5.0, help="text searches per second")
    ap.add_argument("--admin-rate", type=float, default=1.0, help="admin queries per second")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--p99-advisory", action="store_true",
                    help="report p99 growth but do not fail on it (CI's short run on a shared "
                         "machine, where one window of 15 s can catch another job's burst)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    folder = os.path.join(args.root, "tests/data/photos")
    photos = sorted(os.listdir(folder))
    photo_bytes = [open(os.path.join(folder, p), "rb").read() for p in photos]
    os.makedirs(args.work, exist_ok=True)
    data = os.path.join(args.work, "data")
    os.makedirs(data, exist_ok=True)
    iargs = SimpleNamespace(root=args.root, bin=os.path.abspath(args.bin), work=args.work,
                            qdrant_url="", qdrant_alias="", outage_s=0, images="file",
                            image_base_url="file://" + folder + "/")
    inst = chaos.Instance("soak", iargs, data, "")
    failures = []
    advisories = []
    seq = [0]
    seq_lock = threading.Lock()

    def next_id():
        with seq_lock:
            seq[0] += 1
            return seq[0]

    base = time.time() - 3600

    def ts():
        # Strictly increasing event times, a millisecond apart, from an hour
        # ago (within the server's clock-skew bound however long the run).
        n = next_id()
        t = base + n / 1000.0
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
            f".{int(t * 1000) % 1000:03d}Z", n

    def webhook(kind, pid, extra, rec):
        stamp, n = ts()
        body = json.dumps({"event_type": kind, "event_id": f"soak-{n}", "timestamp": stamp,
                           "data": dict({"product_id": pid}, **extra)},
                          separators=(",", ":")).encode()
        t = time.monotonic()
        try:
            status, _ = chaos.request(inst.port, "POST", "/api/v1/webhooks/bakai", body=body,
                                      headers={"Content-Type": "application/json",
                                               "X-Webhook-Signature": sign(body)})
        except OSError:
            status = None
        if rec:
            rec.record("webhook", t, status)
        return status

    try:
        inst.start()
        # The catalog: every product once.
        for p in range(args.products):
            webhook("product.created", f"soak-{p}",
                    {"title": f"Товар {p} soak", "category": "soak", "price": float(p),
                     "image_key": photos[p % len(photos)]}, None)

        def unfinished():
            c = chaos.inbox_counts(inst.port)
            return c["pending"] + c["processing"] + c["retrying"], c

        def drain(limit_s):
            t = time.monotonic()
            while time.monotonic() - t < limit_s:
                n, c = unfinished()
                if n == 0:
                    return c
                time.sleep(0.5)
            return None

        if drain(600) is None:
            raise SystemExit("the initial catalog did not finish")

        # 1. Calibrate: image updates as fast as they complete.
        before = chaos.inbox_counts(inst.port)["completed"]
        t = time.monotonic()
        stop = threading.Event()

        def flood():
            while not stop.is_set():
                pid = f"soak-{rng.randrange(args.products)}"
                webhook("product.updated", pid, {"image_key": rng.choice(photos)}, None)
                while not stop.is_set() and unfinished()[0] > 20:
                    time.sleep(0.05)

        threads = [threading.Thread(target=flood, daemon=True) for _ in range(2)]
        for th in threads:
            th.start()
        time.sleep(args.calibrate_s)
        stop.set()
        for th in threads:
            th.join()
        drain(120)
        maximum = (chaos.inbox_counts(inst.port)["completed"] - before) / (time.monotonic() - t)
        rate = max(1.0, maximum * args.fraction)
        print(f"calibrated: {maximum:.1f} image events/s completed; soaking at {rate:.1f}/s",
              flush=True)

        # 2. Soak.
        rec = Recorder(args.window_s)
        stop = threading.Event()
        lock = threading.Lock()
        wrng = random.Random(args.seed + 1)

        def one_webhook():
            with lock:
                pid = f"soak-{wrng.randrange(args.products)}"
                r = wrng.random()
            if r < 0.4:
                webhook("product.updated", pid, {"image_key": wrng.choice(photos)}, rec)
            elif r < 0.8:
                webhook("product.updated", pid, {"title": f"Товар {pid} {wrng.random():.3f}"}, rec)
            elif r < 0.9:
                webhook("product.deleted", pid, {}, rec)
            else:
                webhook("product.created", pid,
                        {"title": f"Товар {pid} again", "category": "soak", "price": 1.0,
                         "image_key": wrng.choice(photos)}, rec)

        def one_image_search():
            body = photo_bytes[rng.randrange(len(photo_bytes))]
            t = time.monotonic()
            try:
                status, _ = chaos.request(inst.port, "POST", "/api/v1/search/image?limit=10",
                                          body=body,
                                          headers={"Content-Type": "application/octet-stream"})
            except OSError:
                status = None
            rec.record("search_image", t, status)

        words = ["товар", "soak", "again", "тавар", "1", "23"]

        def one_text_search():
            q = rng.choice(words)
            from urllib.parse import quote
            t = time.monotonic()
            try:
                status, _ = chaos.request(inst.port, "GET",
                                          f"/api/v1/search/text?q={quote(q)}&limit=20")
            except OSError:
                status = None
            rec.record("search_text", t, status)

        def one_admin():
            path = rng.choice(["/api/v1/events?limit=50", "/api/v1/events?status=failed&limit=20",
                               "/api/v1/stats", "/api/v1/health"])
            t = time.monotonic()
            try:
                if path == "/api/v1/health":
                    status, _ = chaos.request(inst.port, "GET", path)
                else:
                    status, _ = chaos.admin(inst.port, path)
            except OSError:
                status = None
            rec.record("admin", t, status)

        loads = [(rate, one_webhook), (args.search_rate, one_image_search),
                 (args.text_rate, one_text_search), (args.admin_rate, one_admin)]
        threads = [threading.Thread(target=paced, args=(r, stop, fn), daemon=True)
                   for r, fn in loads if r > 0]
        rss = []
        soak_t0 = time.monotonic()
        rec.t0 = soak_t0
        for th in threads:
            th.start()
        while time.monotonic() - soak_t0 < args.seconds:
            time.sleep(min(5.0, args.window_s / 4))
            kib = None
            try:
                with open(f"/proc/{inst.proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            kib = int(line.split()[1])
            except OSError:
                pass
            rss.append((round(time.monotonic() - soak_t0, 1), kib))
        stop.set()
        for th in threads:
            th.join(timeout=30)
        left = drain(300)

        # Verdict.
        if rec.errors:
            failures.append(f"{len(rec.errors)} requests failed; first: {rec.errors[:5]}")
        if left is None:
            failures.append(f"the inbox did not drain after the load: {unfinished()[1]}")
        elif left["failed"]:
            failures.append(f"{left['failed']} events failed")
        first_window_end = [k for t_, k in rss if t_ >= args.window_s and k]
        baseline_rss = first_window_end[0] if first_window_end else None
        last_rss = rss[-1][1] if rss else None
        if baseline_rss and last_rss and last_rss > baseline_rss * 1.10:
            failures.append(f"RSS grew from {baseline_rss} KiB to {last_rss} KiB (over 10 %)")
        p99 = {}
        for kind, windows in rec.lat.items():
            per = {w: quantile(v, 0.99) for w, v in sorted(windows.items())}
            p99[kind] = {str(w): round(v, 1) for w, v in per.items()}
            full = [w for w in per if (w + 1) * args.window_s <= args.seconds]
            if not full:
                continue
            first = max(per[full[0]], 5.0)
            for w in full[1:]:
                if per[w] > 2 * first:
                    (advisories if args.p99_advisory else failures).append(f"{kind}: p99 {per[w]:.1f} ms in window {w}, over 2x the "
                                    f"first window's {per[full[0]]:.1f} ms")
        result = {
            "seconds": args.seconds, "window_s": args.window_s,
            "calibrated_max_events_per_s": round(maximum, 2),
            "webhook_rate": round(rate, 2), "requests": rec.counts,
            "errors": len(rec.errors), "rss_kib_first_window_end": baseline_rss,
            "rss_kib_last": last_rss,
            "rss_growth_pct": round((last_rss / baseline_rss - 1) * 100, 1)
            if baseline_rss and last_rss else None,
            "rss_kib_max": max((k for _, k in rss if k), default=None),
            "p99_ms_by_window": p99, "inbox_after": left,
            "load_average": open("/proc/loadavg").read().split()[:3],
            "violations": len(failures), "first_violations": failures[:10],
            "advisories": advisories[:10], "seed": args.seed,
        }
    finally:
        inst.stop()
    print("SOAK-RESULT " + json.dumps(result))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
