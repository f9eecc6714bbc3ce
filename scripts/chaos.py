#!/usr/bin/env python3
"""Crash-safety driver for scripts/chaos.sh (issue 14, item 1).

Drives signed BakaiMarket events into real `vitrine serve` processes, kills
them with SIGKILL at random moments while the events arrive and are worked
on, restarts them, and then checks what a user relies on:

- every acknowledged event is stored and completed (0 lost, 0 failed);
- nothing is left pending, processing or retrying;
- every product ends in the state of its newest event, and was embedded
  exactly once (`embed_count`), a deleted one at most once;
- the index and the database agree: every `indexed` product is in the index
  (`/similar` answers 200), no deleted one is (404), and the index holds as
  many points as there are indexed products.

Only the Python standard library: CI runs it on a bare Debian 12.
Prints one JSON summary line (prefixed `CHAOS-RESULT`) and exits 1 on any
violation.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

SECRET = "chaos-webhook-secret"
S3_BUCKET = "chaos-images"
ADMIN = "chaos-admin-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=10.0):
    """One HTTP request; returns (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data.decode("utf-8", "replace")
    finally:
        conn.close()


def admin(port, path):
    return request(port, "GET", path, headers={"Authorization": f"Bearer {ADMIN}"})


class Instance:
    """One `vitrine serve` process; restartable on the same port and data."""

    def __init__(self, name, args, data_dir, database_url):
        self.name = name
        self.args = args
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.proc = None
        self.log = open(os.path.join(args.work, f"{name}.log"), "ab")
        self.kills = 0

    def env(self):
        root = self.args.root
        env = {
            "PATH": os.environ.get("PATH", ""),
            "VITRINE_DATA_DIR": self.data_dir,
            "VITRINE_BIND": f"127.0.0.1:{self.port}",
            "VITRINE_MODEL_DIR": os.path.join(root, "models/effnet-lite0"),
            "ORT_DYLIB_PATH": os.path.join(root, "models/onnxruntime/libonnxruntime.so.1.31.1"),
            "WEBHOOK_SECRET": SECRET,
            "VITRINE_ADMIN_TOKEN": ADMIN,
            "IMAGE_BASE_URL": self.args.image_base_url,
            "VITRINE_EMBED_THREADS": "1",
            "VITRINE_WORKER_CONCURRENCY": "8",
            "VITRINE_POLL_INTERVAL_MS": "100",
            # Short leases, so events held by a killed process are taken
            # over quickly; a short retry schedule with many tries, so a
            # transient error around a restart never ends an event `failed`.
            "VITRINE_LEASE_SECS": "3",
            "VITRINE_RETRY_SCHEDULE": "200ms",
            "VITRINE_MAX_RETRIES": "20",
            "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
        }
        if self.args.outage_s:
            # A downstream outage of a minute outlasts the 200 ms schedule:
            # the default schedule (5m,10m,20m,40m,60m) scaled down, so the
            # run waits seconds, not minutes, after the source is back.
            env.update({"VITRINE_RETRY_SCHEDULE": "1s,2s,4s,8s", "VITRINE_MAX_RETRIES": "40",
                        "VITRINE_FETCH_PROBE_SECS": "1"})
        if self.args.images == "s3":
            env.update({"S3_BUCKET": S3_BUCKET, "S3_ENDPOINT": self.args.s3_endpoint,
                        "S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "S3RVER",
                        "AWS_SECRET_ACCESS_KEY": "S3RVER"})
            env.pop("IMAGE_BASE_URL", None)
        for kv in getattr(self.args, "env", None) or []:
            k, _, v = kv.partition("=")
            env[k] = v
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.args.qdrant_url:
            env["QDRANT_URL"] = self.args.qdrant_url
            env["VITRINE_QDRANT_ALIAS"] = self.args.qdrant_alias
        return env

    def start(self):
        self.proc = subprocess.Popen(
            [self.args.bin, "serve"],
            cwd=self.data_dir,
            env=self.env(),
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}; see its log")
            try:
                status, _ = request(self.port, "GET", "/api/v1/health", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name} did not become healthy")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def vmhwm_kib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None


def create_database(admin_url, name):
    """A fresh database on the server of `admin_url` (with Debian's createdb)."""
    from urllib.parse import urlsplit, urlunsplit

    u = urlsplit(admin_url)
    bins = sorted(d for d in os.listdir("/usr/lib/postgresql") if d.isdigit()) \
        if os.path.isdir("/usr/lib/postgresql") else []
    createdb = f"/usr/lib/postgresql/{bins[-1]}/bin/createdb" if bins else "createdb"
    env = dict(os.environ, PGPASSWORD=u.password or "")
    subprocess.run([createdb, "-h", u.hostname, "-p", str(u.port or 5432),
                    "-U", u.username or "postgres", name], check=True, env=env)
    return urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def build_events(n, photos, seed):
    """About 70 % creates (one product each), 15 % metadata updates that
    carry the same image, 15 % deletes; shuffled, so an update or a delete
    often arrives before its create. Returns (bodies, expected state)."""
    rng = random.Random(seed)
    products = max(1, round(n * 0.7))
    extra = n - products
    updates = extra // 2
    deletes = extra - updates
    base = datetime.now(timezone.utc) - timedelta(days=1)
    events, expected = [], {}

    def ts(minutes):
        return (base + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    for p in range(products):
        pid = f"chaos-{p}"
        image = photos[rng.randrange(len(photos))]
        events.append({
            "event_type": "product.created", "event_id": f"chaos-c-{p}", "timestamp": ts(p % 600),
            "data": {"product_id": pid, "title": f"P{p} v1", "category": "chaos",
                     "price": float(p), "image_key": image},
        })
        expected[pid] = {"status": "indexed", "title": f"P{p} v1", "last": f"chaos-c-{p}",
                         "image": image}
    chosen = rng.sample(range(products), min(products, updates + deletes))
    for i, p in enumerate(chosen):
        pid = f"chaos-{p}"
        if i < updates:
            events.append({
                "event_type": "product.updated", "event_id": f"chaos-u-{p}",
                "timestamp": ts(p % 600 + 60),
                "data": {"product_id": pid, "title": f"P{p} v2", "image_key": expected[pid]["image"]},
            })
            expected[pid].update(title=f"P{p} v2", last=f"chaos-u-{p}")
        else:
            events.append({
                "event_type": "product.deleted", "event_id": f"chaos-d-{p}",
                "timestamp": ts(p % 600 + 120), "data": {"product_id": pid},
            })
            expected[pid].update(status="deleted", last=f"chaos-d-{p}")
    rng.shuffle(events)
    return [json.dumps(e, separators=(",", ":")).encode() for e in events], expected


class Ingest:
    """Senders that deliver every event until it is acknowledged (200), as
    BakaiMarket does: a refused connection, a reset or a 5xx is retried."""

    def __init__(self, bodies, instances, rate, rng):
        self.todo = queue.Queue()
        for b in bodies:
            self.todo.put(b)
        self.instances = instances
        self.rate = rate
        self.rng = rng
        self.lock = threading.Lock()
        self.acked = {}  # event_id -> task_id
        self.duplicates = 0
        self.errors = 0
        self.remaining = len(bodies)
        self.next_send = time.monotonic()

    def pace(self):
        with self.lock:
            now = time.monotonic()
            wait = self.next_send - now
            self.next_send = max(now, self.next_send) + 1.0 / self.rate
        if wait > 0:
            time.sleep(wait)

    def worker(self):
        while True:
            try:
                body = self.todo.get(timeout=0.2)
            except queue.Empty:
                with self.lock:
                    if self.remaining == 0:
                        return
                continue
            self.pace()
            inst = self.rng.choice(self.instances)
            sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            try:
                status, resp = request(inst.port, "POST", "/api/v1/webhooks/bakai", body=body,
                                       headers={"Content-Type": "application/json",
                                                "X-Webhook-Signature": sig}, timeout=10)
            except OSError:
                status, resp = None, None
            if status == 200:
                eid = json.loads(body)["event_id"]
                with self.lock:
                    if eid in self.acked and self.acked[eid] != resp["task_id"]:
                        raise SystemExit(f"{eid} acknowledged with two task ids")
                    self.acked[eid] = resp["task_id"]
                    self.duplicates += bool(resp.get("duplicate"))
                    self.remaining -= 1
            elif status is not None and status < 500:
                raise SystemExit(f"event refused with {status}: {resp}")
            else:
                with self.lock:
                    self.errors += 1
                time.sleep(0.1)
                self.todo.put(body)


def postgres_outage(args, instances, ingest):
    """Stops the PostgreSQL server of scripts/dev-services.sh (fast shutdown:
    connections cut) for the outage, then starts it again with
    `scripts/dev-services.sh up`."""
    state = os.environ.get("VITRINE_SERVICES_DIR")
    if not state:
        raise SystemExit("--outage postgres needs VITRINE_SERVICES_DIR (scripts/dev-services.sh)")
    bins = sorted(d for d in os.listdir("/usr/lib/postgresql") if d.isdigit())
    pg_ctl = f"/usr/lib/postgresql/{bins[-1]}/bin/pg_ctl"
    as_pg = [] if os.getuid() != 0 else ["runuser", "-u", "postgres", "--"]

    def stop():
        subprocess.run(as_pg + [pg_ctl, "-D", os.path.join(state, "pg/data"), "-m", "fast", "-w",
                                "stop"], check=True, stdout=subprocess.DEVNULL)

    def start():
        subprocess.run([os.path.join(args.root, "scripts/dev-services.sh"), "up"], check=True,
                       stdout=subprocess.DEVNULL)

    return source_outage(args, instances, ingest, "postgres", stop, start)


class HttpImages:
    """The photos over HTTP from this process, on a fixed port, so the image
    host can go away and come back where the servers expect it."""

    def __init__(self, folder):
        import functools
        import http.server

        self.port = free_port()
        self.handler = functools.partial(_QuietHandler, directory=folder)
        self.server = None
        self.http = http.server

    def base_url(self):
        return f"http://127.0.0.1:{self.port}/"

    def start(self):
        self.server = self.http.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _QuietHandler(*a, **kw):
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    return Quiet(*a, **kw)


class S3rverImages:
    """The photos in an s3rver bucket that keeps its data on disk, so that
    stopping it with SIGKILL and starting it again is a real restart."""

    def __init__(self, args, folder):
        self.args = args
        self.port = free_port()
        self.dir = os.path.join(args.work, "s3rver-data")
        self.log = open(os.path.join(args.work, "s3rver.log"), "ab")
        self.proc = None
        self.folder = folder

    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        self.proc = subprocess.Popen(
            [self.args.s3rver, "-d", self.dir, "-a", "127.0.0.1", "-p", str(self.port),
             "--silent"], stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("s3rver did not start; see s3rver.log")

    def upload(self):
        """Creates the bucket and uploads the photos (boto3, from the
        Python that --s3-python names)."""
        script = (
            "import boto3, os, sys\n"
            "c = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n"
            "                 aws_access_key_id='S3RVER', aws_secret_access_key='S3RVER')\n"
            f"c.create_bucket(Bucket='{S3_BUCKET}')\n"
            "for n in os.listdir(sys.argv[2]):\n"
            f"    c.upload_file(os.path.join(sys.argv[2], n), '{S3_BUCKET}', n)\n"
        )
        subprocess.run([self.args.s3_python, "-c", script, self.endpoint(), self.folder],
                       check=True)

    def stop(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def source_outage(args, instances, ingest, name, stop, start):
    """Takes one downstream source away for `args.outage_s` seconds in the
    middle of the ingest (`stop`), watching each instance's health meanwhile,
    then brings it back (`start`) and waits for every instance to report
    `healthy` again."""
    with ingest.lock:
        acked = len(ingest.acked)
    stop()
    seen = {}
    end = time.monotonic() + args.outage_s
    while time.monotonic() < end:
        for inst in instances:
            try:
                status, body = request(inst.port, "GET", "/api/v1/health", timeout=5)
                key = f"{status} {body.get('status') if isinstance(body, dict) else body}"
            except OSError as e:
                key = f"no answer ({type(e).__name__})"
            seen[key] = seen.get(key, 0) + 1
        time.sleep(0.5)
    start()
    healthy_after = None
    t = time.monotonic()
    while time.monotonic() - t < 60:
        try:
            answers = [request(i.port, "GET", "/api/v1/health", timeout=5) for i in instances]
            if all(st == 200 and isinstance(b, dict) and b.get("status") == "healthy"
                   for st, b in answers):
                healthy_after = round(time.monotonic() - t, 1)
                break
        except OSError:
            pass
        time.sleep(0.2)
    return {"source": name, "seconds": args.outage_s, "acked_before": acked,
            "health_while_down": seen,
            "degraded_seen": any(k.endswith(" degraded") for k in seen),
            "healthy_after_s": healthy_after, "healthy_after": healthy_after is not None}


def inbox_counts(port):
    out = {}
    for st in ("pending", "processing", "retrying", "completed", "failed"):
        status, page = admin(port, f"/api/v1/events?status={st}&limit=1")
        assert status == 200, page
        out[st] = page["pagination"]["total"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--label", default="sqlite")
    ap.add_argument("--database-url", default="")
    ap.add_argument("--pg-admin-url", default="",
                    help="PostgreSQL server URL: a fresh database is created on it for this run")
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--rate", type=float, default=40.0, help="events per second offered")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--qdrant-url", default=os.environ.get("QDRANT_URL", ""))
    ap.add_argument("--qdrant-alias", default="")
    ap.add_argument("--drain-timeout", type=float, default=900)
    ap.add_argument("--outage", choices=["postgres", "images", "s3"], default="",
                    help="take this source away mid-ingest: the dev-services PostgreSQL, the "
                         "HTTP image host (--images http) or the s3rver bucket (--images s3)")
    ap.add_argument("--outage-s", type=float, default=0, help="how long the outage lasts")
    ap.add_argument("--images", choices=["file", "http", "s3"], default="file",
                    help="where the photos are: a file:// folder, an HTTP host run by this "
                         "driver, or an s3rver bucket")
    ap.add_argument("--s3rver", default="", help="the s3rver executable (--images s3)")
    ap.add_argument("--env", action="append", default=[],
                    help="KEY=VALUE for the servers' environment (repeatable)")
    ap.add_argument("--s3-python", default="", help="a Python with boto3 (--images s3)")
    ap.add_argument("--stall-timeout", type=float, default=60,
                    help="seconds without a completed event before the run counts as stuck")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    args.work = os.path.abspath(args.work)
    if args.qdrant_url and not args.qdrant_alias:
        args.qdrant_alias = f"chaos{args.seed}"
    rng = random.Random(args.seed)
    started = time.monotonic()

    if args.pg_admin_url:
        args.database_url = create_database(args.pg_admin_url, f"chaos_{args.label}_{args.seed}_{os.getpid()}")
    folder = os.path.join(args.root, "tests/data/photos")
    photos = sorted(os.listdir(folder))
    source = None
    args.image_base_url = "file://" + folder + "/"
    args.s3_endpoint = ""
    if args.images == "http":
        source = HttpImages(folder)
        source.start()
        args.image_base_url = source.base_url()
    elif args.images == "s3":
        if not (args.s3rver and args.s3_python):
            raise SystemExit("--images s3 needs --s3rver and --s3-python")
        source = S3rverImages(args, folder)
        source.start()
        source.upload()
        args.s3_endpoint = source.endpoint()
    if args.outage in ("images", "s3") and args.images == "file":
        raise SystemExit(f"--outage {args.outage} needs --images http or s3")
    bodies, expected = build_events(args.events, photos, args.seed)
    instances = []
    for i in range(args.instances):
        data = os.path.join(args.work, f"data-{i}")
        os.makedirs(data, exist_ok=True)
        instances.append(Instance(f"{args.label}-{i}", args, data, args.database_url))
    failures = []
    kill_log = []
    outage = None
    try:
        for inst in instances:
            inst.start()
        ingest = Ingest(bodies, instances, args.rate, rng)
        senders = [threading.Thread(target=ingest.worker, daemon=True) for _ in range(4)]
        for t in senders:
            t.start()
        # Kill moments: uniform over the time the offered load takes, so
        # they land while events arrive and while workers embed.
        span = len(bodies) / args.rate
        moments = sorted(rng.uniform(0.05 * span, 0.95 * span) for _ in range(args.kills))
        t0 = time.monotonic()
        for m in moments:
            time.sleep(max(0.0, t0 + m - time.monotonic()))
            victim = rng.choice(instances)
            with ingest.lock:
                acked = len(ingest.acked)
            victim.kill9()
            down = rng.uniform(0.0, 1.0)
            time.sleep(down)
            t = time.monotonic()
            victim.start()
            kill_log.append({"at_s": round(time.monotonic() - t0, 2), "instance": victim.name,
                             "acked_before": acked, "down_s": round(down, 2),
                             "restart_s": round(time.monotonic() - t, 2)})
        if args.outage and args.outage_s:
            time.sleep(max(0.0, t0 + 0.3 * span - time.monotonic()))
            if args.outage == "postgres":
                outage = postgres_outage(args, instances, ingest)
            else:
                outage = source_outage(args, instances, ingest, args.outage, source.stop,
                                       source.start)
        for t in senders:
            t.join()
        ingest_s = time.monotonic() - t0

        port = instances[0].port
        deadline = time.monotonic() + args.drain_timeout
        counts, progress, last_done = {}, time.monotonic(), -1
        while True:
            try:
                counts = inbox_counts(port)
            except OSError:
                time.sleep(1)
                continue
            if counts["pending"] + counts["processing"] + counts["retrying"] == 0:
                break
            if counts["completed"] != last_done:
                last_done, progress = counts["completed"], time.monotonic()
            if time.monotonic() > deadline or time.monotonic() - progress > args.stall_timeout:
                if os.environ.get("CHAOS_GDB"):
                    for inst in instances:
                        with open(os.path.join(args.work, f"{inst.name}.stacks"), "w") as f:
                            subprocess.run(["gdb", "-p", str(inst.proc.pid), "-batch",
                                            "-ex", "thread apply all bt 40"],
                                           stdout=f, stderr=subprocess.STDOUT, timeout=300)
                failures.append(f"inbox not drained (no progress for "
                                f"{time.monotonic() - progress:.0f} s): {counts}")
                break
            time.sleep(0.5)
        drain_s = time.monotonic() - t0

        # 1. Nothing acknowledged is lost, nothing is left unfinished.
        if len(ingest.acked) != len(bodies):
            failures.append(f"{len(bodies) - len(ingest.acked)} events never acknowledged")
        if counts["completed"] != len(bodies) or counts["failed"]:
            failures.append(f"inbox: {counts}, expected {len(bodies)} completed")
        lost = 0
        retried = 0  # events that took more than one attempt
        taken_over = set()  # products with an event whose worker died holding it
        for eid, task in ingest.acked.items():
            status, rec = admin(port, f"/api/v1/events/{task}")
            if status != 200:
                lost += 1
                failures.append(f"acknowledged {eid} ({task}) is gone: {status}")
                continue
            if rec["data"]["status"] != "completed":
                failures.append(f"{eid}: {rec['data']['status']} {rec['data'].get('error')}")
            attempts = rec["data"].get("attempts") or []
            if len(attempts) > 1:
                retried += 1
            # Taken over from a killed worker (`abandoned`), or tried again
            # after a try that ended without finishing (a lost lease, the
            # database gone mid-write): on two instances with their own
            # embedded indexes the other one may embed it again.
            if any(a.get("outcome") == "abandoned" for a in attempts) or (
                    len(attempts) > 1 and args.outage == "postgres"):
                taken_over.add("chaos-" + eid.rsplit("-", 1)[1])
        # 2. Each product in its newest event's state, embedded once; the
        # index agrees with the rows, on every instance when the index is
        # shared, else the union of the per-instance embedded indexes.
        shared = len(instances) == 1 or bool(args.qdrant_url)
        embed_hist = {}
        indexed = reembedded = 0
        for pid, exp in expected.items():
            status, row = request(port, "GET", f"/api/v1/products/{pid}")
            if status != 200:
                failures.append(f"{pid}: {status} {row}")
                continue
            n = row.get("embed_count")
            embed_hist[n] = embed_hist.get(n, 0) + 1
            if row.get("status") != exp["status"] or row.get("last_event_id") != exp["last"]:
                failures.append(f"{pid}: {row.get('status')} after {row.get('last_event_id')}, "
                                f"expected {exp['status']} after {exp['last']}")
            if exp["status"] == "indexed":
                indexed += 1
                # Per-instance embedded indexes: an update with the same
                # image, or an event taken over from a killed worker (its
                # attempts show one `abandoned`), applied by an instance whose
                # own index lacks the vector, embeds it there too. Allowed
                # (and counted) only then; with one instance or a shared
                # index, exactly once.
                updated = exp["last"].startswith("chaos-u-")
                if n == 2 and (updated or pid in taken_over) and not shared:
                    reembedded += 1
                elif n != 1:
                    failures.append(f"{pid} embedded {n} times")
                if row.get("title") != exp["title"]:
                    failures.append(f"{pid}: title {row.get('title')!r}, expected {exp['title']!r}")
            elif n == 2 and pid in taken_over and not shared:
                # Its create was taken over from a worker that lost its
                # lease (killed, or the database gone) and embedded again on
                # the other instance's own index before the delete: counted.
                reembedded += 1
            elif n not in (0, 1):
                failures.append(f"deleted {pid} embedded {n} times")
            found = [request(i.port, "GET", f"/api/v1/products/{pid}/similar?limit=1")[0]
                     for i in instances]
            if exp["status"] == "indexed":
                ok = all(s == 200 for s in found) if shared else 200 in found
                if not ok:
                    failures.append(f"indexed {pid} missing from the index: {found}")
            elif shared and any(s != 404 for s in found):
                failures.append(f"deleted {pid} still in the index: {found}")
        for inst in instances:
            if not inst.alive():
                failures.append(f"{inst.name} exited ({inst.proc.returncode}) without being killed")
        if outage and not outage["healthy_after"]:
            failures.append(f"health did not come back after the outage: {outage}")
        if outage and not outage["degraded_seen"]:
            failures.append(f"health never said degraded during the outage: {outage}")
        points = None
        if shared:
            status, text = request(port, "GET", "/api/v1/metrics")
            for line in str(text).splitlines():
                if line.startswith("visual_search_index_points"):
                    points = int(float(line.split()[-1]))
            if points != indexed:
                failures.append(f"index holds {points} points, {indexed} products are indexed")
        result = {
            "label": args.label, "instances": args.instances, "events": len(bodies),
            "products": len(expected), "indexed": indexed, "kills": len(kill_log),
            "acknowledged": len(ingest.acked), "lost": lost,
            "redelivered_duplicates": ingest.duplicates, "send_errors_retried": ingest.errors,
            "inbox": counts, "events_retried": retried,
            "reembedded_on_the_other_instance": reembedded,
            "embed_count_histogram": {str(k): v for k, v in sorted(embed_hist.items(), key=str)},
            "index_points": points, "index_check": "every instance" if shared else
            "union of per-instance embedded indexes (deletes not checked: needs a shared index)",
            "ingest_s": round(ingest_s, 1), "drained_s": round(drain_s, 1),
            "total_s": round(time.monotonic() - started, 1),
            "peak_rss_mib": [round((i.vmhwm_kib() or 0) / 1024) for i in instances],
            "seed": args.seed, "kill_log": kill_log, "images": args.images, "outage": outage,
            "crashed": [i.name for i in instances if not i.alive()],
            "violations": len(failures), "first_violations": failures[:10],
        }
    finally:
        for inst in instances:
            inst.stop()
        if isinstance(source, S3rverImages) and source.proc and source.proc.poll() is None:
            source.stop()
    print("CHAOS-RESULT " + json.dumps(result))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
