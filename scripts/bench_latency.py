"""Containment benchmark with network latency: time to containment and sequential waves of calls
when AWS is a round trip away, `killswitch respond` (cold, fresh process) versus a minimal
Python/boto3 responder, and killswitch warm in Lambda mode behind a fake Lambda Runtime API.

The local AWS answers in ~5 ms, which hides every sequential call. Here every AWS call goes
through scripts/latency_proxy.py: one round trip per request, three for the first request on a
new connection (TCP + TLS handshakes). Each AWS service, and each process under test, gets its
own proxy port, as real AWS has one host per service (so connections are not shared across
services the way they would be on a single local endpoint).

Run through scripts/bench.sh (inside `scripts/local-aws.sh run`):
  bench_latency.py BINARY OUT.md      BENCH_RUNS (default 10), BENCH_DELAYS_MS (default "60,20")
Writes OUT.md and prints it. Also importable: scripts/bench_burst.py reuses the proxy set, the
fake Lambda Runtime API and the log analysis.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, HERE)
from latency_proxy import read_message  # noqa: E402

# One proxy port per service the function may call (AWS_ENDPOINT_URL_<SERVICE>), plus the default.
SERVICES = ("iam", "sts", "sns", "sqs", "dynamodb", "cloudtrail", "account", "securityhub")
CONTAINMENT_WRITES = ("UpdateAccessKey", "PutUserPolicy")
RUNTIME_PREFIX = "/2018-06-01/runtime"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def endpoint_host_port(url: str) -> str:
    m = re.match(r"^http://(127\.0\.0\.1|localhost):(\d+)/?$", url or "")
    if not m:
        raise SystemExit(f"not a local AWS endpoint on 127.0.0.1: {url!r} (run inside scripts/local-aws.sh run)")
    return f"127.0.0.1:{m.group(2)}"


# --------------------------------------------------------------------------------------------
# Latency proxies


class ProxySet:
    """latency_proxy.py processes in front of the local AWS. For each label (a process under
    test) a default port (AWS_ENDPOINT_URL) plus one port per service in SERVICES; one proxy
    process per distinct upstream (AWS_ENDPOINT_URL_CLOUDTRAIL etc. from the local AWS's env are
    honoured), so an IAM write limit applies to the whole account."""

    def __init__(self, workdir: str, delay_ms: float, labels: list[str], iam_write_limit: int | None = None):
        self.workdir = workdir
        self.delay_ms = delay_ms
        self.labels = labels
        self.iam_write_limit = iam_write_limit
        self.procs: list[asyncio.subprocess.Process] = []
        self.logs: list[str] = []
        self.slots: dict[int, tuple[str, str | None]] = {}  # port -> (label, service or None)
        self.urls: dict[tuple[str, str | None], str] = {}
        self._offsets: dict[str, int] = {}
        self._records: list[dict] = []
        self.tag = uuid.uuid4().hex[:6]

    async def start(self) -> None:
        default = endpoint_host_port(os.environ.get("AWS_ENDPOINT_URL", ""))
        groups: dict[str, list[tuple[str, str | None]]] = {}
        for label in self.labels:
            groups.setdefault(default, []).append((label, None))
            for svc in SERVICES:
                specific = os.environ.get(f"AWS_ENDPOINT_URL_{svc.upper()}")
                upstream = endpoint_host_port(specific) if specific else default
                groups.setdefault(upstream, []).append((label, svc))
        for n, (upstream, slots) in enumerate(groups.items()):
            logfile = os.path.join(self.workdir, f"proxy-{self.tag}-{int(self.delay_ms)}ms-{n}.jsonl")
            ready = logfile + ".ready"
            cmd = [sys.executable, os.path.join(HERE, "latency_proxy.py"), "--upstream", upstream,
                   "--delay-ms", str(self.delay_ms), "--log", logfile, "--ready-file", ready]
            for _ in slots:
                cmd += ["--listen-port", "0"]
            if self.iam_write_limit:
                cmd += ["--iam-write-limit", str(self.iam_write_limit)]
            out = open(logfile + ".out", "w")  # noqa: SIM115 - handed to the child
            proc = await asyncio.create_subprocess_exec(*cmd, stdout=out, stderr=out)
            out.close()
            self.procs.append(proc)
            self.logs.append(logfile)
            for _ in range(200):
                if os.path.exists(ready):
                    break
                if proc.returncode is not None:
                    raise RuntimeError(f"latency proxy exited: {open(logfile + '.out').read()}")
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("latency proxy did not start")
            with open(ready) as fh:
                ports = json.load(fh)["ports"]
            for port, slot in zip(ports, slots):
                self.slots[port] = slot
                self.urls[slot] = f"http://127.0.0.1:{port}"

    def env(self, label: str) -> dict[str, str]:
        env = {"AWS_ENDPOINT_URL": self.urls[(label, None)]}
        for svc in SERVICES:
            env[f"AWS_ENDPOINT_URL_{svc.upper()}"] = self.urls[(label, svc)]
        return env

    def records(self) -> list[dict]:
        """Every request logged so far (all proxies), sorted by arrival, with the label added."""
        fresh = False
        for path in self.logs:
            if not os.path.exists(path):
                continue
            with open(path, "rb") as fh:
                fh.seek(self._offsets.get(path, 0))
                data = fh.read()
            complete = data.rfind(b"\n") + 1  # a line still being written waits for the next call
            self._offsets[path] = self._offsets.get(path, 0) + complete
            for line in data[:complete].decode().splitlines():
                if not line.strip():
                    continue
                rec = json.loads(line)
                if "event" in rec:  # connection errors
                    continue
                rec["label"] = self.slots.get(rec["port"], ("?", None))[0]
                self._records.append(rec)
                fresh = True
        if fresh:
            self._records.sort(key=lambda r: r["t_arrive"])
        return self._records

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


# --------------------------------------------------------------------------------------------
# Fake Lambda Runtime API


class FakeRuntime:
    """The Lambda Runtime API on 127.0.0.1: `/next` hands out the items of `source` (an
    asyncio.Queue of objects with `.payload` bytes), long-polling while it is empty; results
    posted to `/response` and `/error` go to `on_result(rid, kind, body, t)`; `on_handout(item,
    rid, t)` is called with the time /next returned the event."""

    ids = itertools.count(1)

    def __init__(self, name: str, source: asyncio.Queue, on_handout=None, on_result=None, deadline_ms: int = 120_000):
        self.name = name
        self.source = source
        self.on_handout = on_handout or (lambda item, rid, t: None)
        self.on_result = on_result or (lambda rid, kind, body, t: None)
        self.deadline_ms = deadline_ms
        self.ready = asyncio.Event()  # the function has polled /next once: initialised
        self.polls = 0
        self.init_errors: list = []
        self.tasks: set[asyncio.Task] = set()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 22)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, status: str, body: bytes = b"{}", headers: str = "") -> None:
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            while True:
                try:
                    req = await read_message(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    return
                if req is None:
                    return
                path = req.target.split("?", 1)[0]
                if req.method == "GET" and path == f"{RUNTIME_PREFIX}/invocation/next":
                    self.polls += 1
                    self.ready.set()
                    if not await self._next(reader, writer):
                        return
                    continue
                m = re.fullmatch(rf"{RUNTIME_PREFIX}/invocation/([^/]+)/(response|error)", path)
                try:
                    body = json.loads(req.body) if req.body else None
                except ValueError:
                    body = req.body.decode("utf-8", "replace")
                if req.method == "POST" and m:
                    self.on_result(m.group(1), m.group(2), body, time.time())
                    self._reply(writer, "202 Accepted", b'{"status":"OK"}')
                elif req.method == "POST" and path == f"{RUNTIME_PREFIX}/init/error":
                    self.init_errors.append(body)
                    log(f"{self.name}: init error {body}")
                    self._reply(writer, "202 Accepted", b'{"status":"OK"}')
                else:
                    self._reply(writer, "404 Not Found", b'{"errorMessage":"unknown path"}')
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self.tasks.discard(task)
            writer.close()

    async def _next(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Waits for an event, or for the function to go away (then the event stays queued)."""
        get = asyncio.ensure_future(self.source.get())
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            get.cancel()
            gone.cancel()
            raise
        if not get.done():
            get.cancel()
            return False
        item = get.result()
        if gone.done():
            self.source.put_nowait(item)
            return False
        gone.cancel()
        try:
            data = await gone  # the reader must be free before the next request is read
        except asyncio.CancelledError:
            data = None
        if data is not None:  # closed (b"") or sent something while polling: keep the event
            self.source.put_nowait(item)
            return False
        rid = f"{self.name}-{next(self.ids)}"
        deadline = int(time.time() * 1000) + self.deadline_ms
        headers = (f"Lambda-Runtime-Aws-Request-Id: {rid}\r\n"
                   f"Lambda-Runtime-Deadline-Ms: {deadline}\r\n"
                   "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:killswitch\r\n"
                   f"Lambda-Runtime-Trace-Id: Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0\r\n")
        t = time.time()
        try:
            self._reply(writer, "200 OK", item.payload, headers)
            await writer.drain()
        except ConnectionError:
            self.source.put_nowait(item)
            return False
        self.on_handout(item, rid, t)
        return True


def lambda_env(name: str, runtime: FakeRuntime) -> dict[str, str]:
    return {
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": "killswitch",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/01/01/[1]{name}",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/killswitch",
    }


class Event:
    def __init__(self, payload: dict, **info):
        self.payload = json.dumps(payload).encode()
        self.__dict__.update(info)


# --------------------------------------------------------------------------------------------
# Analysis of the proxy log


def is_write_for(rec: dict, key: str, user: str | None) -> str | None:
    """Which containment write `rec` is for this key and user, if any."""
    if rec.get("service") != "iam":
        return None
    p = rec.get("params") or {}
    if rec.get("action") == "UpdateAccessKey" and p.get("AccessKeyId") == key:
        return "UpdateAccessKey"
    if rec.get("action") == "PutUserPolicy" and user is not None and p.get("UserName") == user:
        return "PutUserPolicy"
    return None


def containment_writes(recs: list[dict], key: str, user: str | None) -> dict[str, dict]:
    """The first successful request of each containment write for the key (by arrival)."""
    found: dict[str, dict] = {}
    for r in recs:
        w = is_write_for(r, key, user)
        if w and w not in found and r.get("status") == 200:
            found[w] = r
    return found


def depths(recs: list[dict]) -> dict[int, int]:
    """Wave of each request: 1 + the deepest wave among the requests whose responses had gone back
    to the client before it arrived (0 if none). Sequential calls give 1, 2, 3...; calls issued
    together share one wave. Keyed by id() of the record."""
    out: dict[int, int] = {}
    ordered = sorted(recs, key=lambda r: r["t_arrive"])
    for i, r in enumerate(ordered):
        prior = [out[id(q)] for q in ordered[:i] if q["t_done"] <= r["t_arrive"]]
        out[id(r)] = 1 + max(prior, default=0)
    return out


def name_of(r: dict) -> str:
    return f"{r.get('service') or '?'}:{r.get('action')}{'*' if r.get('new_conn') else ''}"


class Measured:
    """One containment by one process, from the proxy log."""

    def __init__(self, recs: list[dict], t0: float, key: str, user: str, label: str | None = None, until: float = math.inf):
        mine = [r for r in recs if t0 <= r["t_arrive"] <= until and (label is None or r.get("label") == label)]
        writes = containment_writes(mine, key, user)
        self.ok = len(writes) == len(CONTAINMENT_WRITES)
        self.t0 = t0
        self.requests = len(mine)
        self.sent = self.acked = self.waves = None
        self.path = ""
        if not self.ok:
            self.missing = [w for w in CONTAINMENT_WRITES if w not in writes]
            return
        last = max(writes.values(), key=lambda r: r["t_arrive"])
        self.sent = last["t_arrive"] - t0
        self.acked = max(r["t_done"] for r in writes.values()) - t0
        d = depths(mine)
        self.waves = d[id(last)]
        before = [r for r in mine if r["t_arrive"] <= last["t_arrive"]]
        groups: dict[int, list[str]] = {}
        for r in before:
            groups.setdefault(d[id(r)], []).append(name_of(r))
        self.path = " -> ".join(f"{w}: " + " + ".join(groups[w]) for w in sorted(groups))
        self.requests_before = len(before)
        # Where the time went, along the critical path (each wave's last response to come back
        # before the next wave left): simulated network, the local AWS's own processing, and the
        # rest (process start, CPU, waiting) in the function.
        self.network = self.service = 0.0
        r = last
        while d[id(r)] > 1:
            gating = [q for q in mine if q["t_done"] <= r["t_arrive"] and d[id(q)] == d[id(r)] - 1]
            if not gating:
                break
            r = max(gating, key=lambda q: q["t_done"])
            self.network += r["t_forward"] - r["t_arrive"]
            self.service += r["t_done"] - r["t_forward"]
        self.client = self.sent - self.network - self.service


def ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 1000:.0f} ms"


def stats(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    return statistics.median(values), min(values), max(values)


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))  # nearest rank
    return s[k]


# --------------------------------------------------------------------------------------------
# Shared setup on the local AWS (direct, not through a proxy)


class Account:
    def __init__(self) -> None:
        import boto3

        self.iam = boto3.client("iam")
        self.suffix = uuid.uuid4().hex[:8]
        sns = boto3.client("sns")
        self.topic = sns.create_topic(Name=f"bench-{self.suffix}")["TopicArn"]
        sqs = boto3.client("sqs")
        self.queue = sqs.create_queue(QueueName=f"bench-follow-up-{self.suffix}")["QueueUrl"]
        ddb = boto3.client("dynamodb")
        self.table = f"bench-incidents-{self.suffix}"
        ddb.create_table(TableName=self.table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])

    def follow_ups(self) -> int:
        """Messages on the follow-up queue (visible, in flight or delayed); nothing consumes them."""
        import boto3

        attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=self.queue, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(v) for v in attrs.values())

    def plant(self, tag: str) -> tuple[str, str, str]:
        """A user with a leaked (Active) key: (user name, user ID, access key ID)."""
        user = f"bench-{tag}-{self.suffix}"
        uid = self.iam.create_user(UserName=user)["User"]["UserId"]
        key = self.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
        return user, uid, key

    def function_env(self, verify_delay: str = "0", regions: str = "us-east-1") -> dict[str, str]:
        return {
            "KILLSWITCH_TOPIC_ARN": self.topic,
            "KILLSWITCH_VERIFY_DELAY_SECONDS": verify_delay,
            "KILLSWITCH_REGIONS": regions,
            "KILLSWITCH_FOLLOW_UP_QUEUE_URL": self.queue,
            "KILLSWITCH_INCIDENT_TABLE": self.table,
            "RUST_LOG": "error",
        }


def manual_request(key: str, user: str) -> dict:
    return {"access_key_id": key, "user_name": user, "reason": "bench", "requested_by": "bench"}


# --------------------------------------------------------------------------------------------
# The three measured modes


async def run_process(cmd: list[str], env: dict, timeout: float = 180) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


async def settle(proxies: ProxySet) -> list[dict]:
    await asyncio.sleep(0.15)  # the proxy logs a request just after its response went back
    return proxies.records()


async def cold_killswitch(binary: str, env: dict, proxies: ProxySet, label: str, workdir: str,
                          user: str, key: str) -> Measured:
    path = os.path.join(workdir, f"event-{key}.json")
    with open(path, "w") as fh:
        json.dump(manual_request(key, user), fh)
    t0 = time.time()
    rc, out, err = await run_process([binary, "respond", "--no-sweep", "--event", path], env)
    t_end = time.time()
    m = Measured(await settle(proxies), t0, key, user, label, t_end)
    status = None
    try:
        status = json.loads(out)["reports"][0]["status"]
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    m.status = status
    if rc != 0 or not m.ok:
        log(f"killswitch respond: exit {rc}, status {status}, writes missing {getattr(m, 'missing', [])}: {err[-2000:]}")
    return m


async def cold_reference(env: dict, proxies: ProxySet, label: str, user: str, key: str) -> Measured:
    t0 = time.time()
    rc, out, err = await run_process([sys.executable, os.path.join(HERE, "reference_minimal.py"), key, user], env)
    t_end = time.time()
    m = Measured(await settle(proxies), t0, key, user, label, t_end)
    if rc != 0 or not m.ok:
        log(f"reference: exit {rc}: {err[-2000:]}")
    return m


class WarmFunction:
    """One killswitch process in Lambda mode behind a fake Runtime API, fed one event at a time."""

    def __init__(self, binary: str, env: dict, name: str, workdir: str):
        self.binary, self.env, self.name, self.workdir = binary, env, name, workdir
        self.queue: asyncio.Queue = asyncio.Queue()
        self.runtime = FakeRuntime(name, self.queue, self._handout, self._result)
        self.pending: dict[str, asyncio.Future] = {}
        self.handed: dict[str, float] = {}
        self.current: asyncio.Future | None = None
        self.proc: asyncio.subprocess.Process | None = None

    def _handout(self, item, rid, t):
        item.rid = rid
        item.t_handout = t
        self.pending[rid] = item.done

    def _result(self, rid, kind, body, t):
        fut = self.pending.pop(rid, None)
        if fut and not fut.done():
            fut.set_result((kind, body, t))

    async def start(self, timeout: float = 60) -> float:
        await self.runtime.start()
        env = dict(self.env, **lambda_env(self.name, self.runtime))
        self.stderr = open(os.path.join(self.workdir, f"{self.name}.stderr"), "w")  # noqa: SIM115
        t = time.time()
        self.proc = await asyncio.create_subprocess_exec(self.binary, env=env, stdout=self.stderr, stderr=self.stderr)
        ready = asyncio.ensure_future(self.runtime.ready.wait())
        died = asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({ready, died}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            raise RuntimeError(f"{self.name} did not poll /next (see {self.stderr.name})")
        died.cancel()
        return time.time() - t

    async def invoke(self, payload: dict, timeout: float = 150) -> Event:
        ev = Event(payload)
        ev.done = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(ev)
        ev.kind, ev.body, ev.t_result = await asyncio.wait_for(ev.done, timeout)
        return ev

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self.runtime.stop()
        if getattr(self, "stderr", None):
            self.stderr.close()


async def warm_killswitch(fn: WarmFunction, proxies: ProxySet, label: str, user: str, key: str) -> Measured:
    ev = await fn.invoke(manual_request(key, user))
    m = Measured(await settle(proxies), ev.t_handout, key, user, label, ev.t_result)
    m.kind = ev.kind
    if ev.kind != "response" or not m.ok:
        log(f"warm invocation: {ev.kind} {json.dumps(ev.body)[:1500]}")
    return m


# --------------------------------------------------------------------------------------------


def median_run(runs: list[Measured]) -> Measured | None:
    ok = sorted((m for m in runs if m.ok), key=lambda m: m.sent)
    return ok[len(ok) // 2] if ok else None


def table(delay_ms: float, ks: list[Measured], ref: list[Measured], warm: list[Measured], warm_init: float) -> list[str]:
    def col(runs, attr):
        return [getattr(m, attr) for m in runs if m.ok]

    def cell(runs, attr):
        med, lo, hi = stats(col(runs, attr))
        return f"{ms(med)} ({ms(lo)} / {ms(hi)})" if med is not None else "n/a"

    def wave_cell(runs):
        w = col(runs, "waves")
        return f"{statistics.median(w):g} ({min(w)}-{max(w)})" if w else "n/a"

    ks_med, ref_med, warm_med = (stats(col(r, "sent"))[0] for r in (ks, ref, warm))
    ratio = ks_med / ref_med if ks_med is not None and ref_med else None
    warm_budget = delay_ms / 1000 + 0.020
    warm_max = stats(col(warm, "sent"))[2]
    failed = sum(not m.ok for m in ks + ref + warm)
    lines = [
        f"### {delay_ms:g} ms per round trip",
        "",
        "| measure: median (min / max) | killswitch `respond`, cold | reference, cold | killswitch warm (Lambda mode) |",
        "|---|---|---|---|",
        f"| last containment write arrives at AWS | {cell(ks, 'sent')} | {cell(ref, 'sent')} | {cell(warm, 'sent')} |",
        f"| last containment write acknowledged | {cell(ks, 'acked')} | {cell(ref, 'acked')} | {cell(warm, 'acked')} |",
        f"| waves up to the last containment write, median (min-max) | {wave_cell(ks)} | {wave_cell(ref)} | {wave_cell(warm)} |",
        f"| of which simulated network | {cell(ks, 'network')} | {cell(ref, 'network')} | {cell(warm, 'network')} |",
        f"| of which local AWS processing (moto; real AWS has its own) | {cell(ks, 'service')} | {cell(ref, 'service')} | {cell(warm, 'service')} |",
        f"| of which in the function (start-up, CPU, waiting) | {cell(ks, 'client')} | {cell(ref, 'client')} | {cell(warm, 'client')} |",
        f"| runs with both writes succeeded | {sum(m.ok for m in ks)}/{len(ks)} | {sum(m.ok for m in ref)}/{len(ref)} | {sum(m.ok for m in warm)}/{len(warm)} |",
        "",
        "| result | value | target |",
        "|---|---|---|",
    ]
    if delay_ms == 60:
        verdict = "" if ratio is None else (" PASS" if ratio <= 0.35 else " FAIL")
        lines.append(f"| cold: ratio of medians, killswitch / reference | {ratio:.2f} x |"
                     f" <= 0.35 x{verdict} |" if ratio is not None else "| cold ratio | n/a | <= 0.35 x |")
    else:
        lines.append(f"| cold: ratio of medians, killswitch / reference | "
                     f"{'n/a' if ratio is None else f'{ratio:.2f} x'} | (target set at 60 ms only) |")
    if warm_med is not None:
        verdict = "PASS" if warm_max <= warm_budget else "FAIL"
        lines.append(f"| warm: last write after receipt, median / max | {ms(warm_med)} / {ms(warm_max)} | "
                     f"<= one round trip + 20 ms = {warm_budget * 1000:.0f} ms (max) {verdict} |")
        net = [m.sent - m.service for m in warm if m.ok]
        lines.append(f"| warm: the same without the local AWS's processing time, median / max | "
                     f"{ms(statistics.median(net))} / {ms(max(net))} | (for comparison) |")
    lines.append(f"| warm: Lambda init (start to first /next poll) | {ms(warm_init)} | |")
    if failed:
        lines.append(f"| runs where a containment write was missing or failed | {failed} | 0 |")
    odd = [m.status for m in ks if getattr(m, "status", None) not in (None, "contained")]
    if odd:
        lines.append(f"| cold reports whose status is not `contained` | {len(odd)} ({', '.join(sorted(set(map(str, odd))))}) | 0 |")
    lines += ["", "Waves of the median run (`service:Action`, `*` = first request on a new connection, "
              "3 round trips; `+` = same wave):", ""]
    for name, runs in (("killswitch cold", ks), ("reference cold", ref), ("killswitch warm", warm)):
        m = median_run(runs)
        if m:
            lines.append(f"- {name} ({ms(m.sent)}, {m.waves} waves): {m.path}")
    lines.append("")
    return lines


async def bench_delay(binary: str, acct: Account, delay_ms: float, runs: int, workdir: str) -> list[str]:
    log(f"delay {delay_ms:g} ms: planting {3 * runs} keys")
    keys = {mode: [acct.plant(f"{mode}{int(delay_ms)}-{i}") for i in range(runs)] for mode in ("k", "r", "w")}
    proxies = ProxySet(workdir, delay_ms, ["cold", "reference", "warm"])
    await proxies.start()
    base = dict(os.environ, **acct.function_env())
    ks, ref, warm = [], [], []
    try:
        for i in range(runs):
            # Interleaved, so machine noise hits both alike.
            user, _, key = keys["k"][i]
            ks.append(await cold_killswitch(binary, dict(base, **proxies.env("cold")), proxies, "cold", workdir, user, key))
            user, _, key = keys["r"][i]
            ref.append(await cold_reference(dict(os.environ, **proxies.env("reference")), proxies, "reference", user, key))
            log(f"delay {delay_ms:g} ms, run {i + 1}/{runs}: killswitch {ms(ks[-1].sent)} ({ks[-1].waves} waves), "
                f"reference {ms(ref[-1].sent)} ({ref[-1].waves} waves)")
        fn = WarmFunction(binary, dict(base, **proxies.env("warm")), f"warm{int(delay_ms)}", workdir)
        try:
            init = await fn.start()
            await asyncio.sleep(0.5)  # let anything started at init settle
            for i in range(runs):
                user, _, key = keys["w"][i]
                warm.append(await warm_killswitch(fn, proxies, "warm", user, key))
                log(f"delay {delay_ms:g} ms, warm {i + 1}/{runs}: {ms(warm[-1].sent)} ({warm[-1].waves} waves)")
                await asyncio.sleep(0.2)
        finally:
            await fn.stop()
    finally:
        await proxies.stop()
    return table(delay_ms, ks, ref, warm, init)


async def main() -> int:
    binary, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    runs = int(os.environ.get("BENCH_RUNS", "10"))
    delays = [float(d) for d in os.environ.get("BENCH_DELAYS_MS", "60,20").split(",") if d.strip()]
    workdir = tempfile.mkdtemp(prefix="bench-latency-")
    acct = Account()
    lines = [
        "# Containment benchmark with network latency",
        "",
        f"Run: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, `scripts/bench.sh`, binary "
        f"`{os.path.relpath(binary, ROOT) if binary.startswith(ROOT) else binary}`, {platform.machine()}, "
        f"{os.cpu_count()} cores, local AWS (moto) on 127.0.0.1 behind `scripts/latency_proxy.py`, "
        f"{runs} interleaved runs per mode and delay.",
        "",
        "Latency model (the proxy): each HTTP request costs one round trip, slept before it is forwarded;",
        "the first request on a new connection costs three (TCP + TLS handshakes). Connections are kept",
        "alive like AWS's (the local AWS closes after each response; the proxy hides that). Every AWS",
        "service gets its own endpoint (`AWS_ENDPOINT_URL_<SERVICE>`), as real AWS has one host per",
        "service; all CloudTrail Regions share one. Planting keys goes directly to the local AWS.",
        "",
        "- **killswitch cold**: a fresh `killswitch respond --event` process per key (manual request;",
        "  `KILLSWITCH_VERIFY_DELAY_SECONDS=0`, `KILLSWITCH_REGIONS=us-east-1`); clock from process start.",
        "- **reference cold**: `scripts/reference_minimal.py`, a fresh Python/boto3 process making only the",
        "  two writes (UpdateAccessKey Inactive, then PutUserPolicy deny-all); clock from process start.",
        "- **killswitch warm**: one process in Lambda mode (no arguments) behind a fake Lambda Runtime",
        "  API, initialised (polling `/next`), given one event per key; clock from the moment `/next`",
        "  returned the event.",
        "",
        "Time = arrival at the proxy of the last containment write for the key (the first successful",
        "`UpdateAccessKey` of the key and `PutUserPolicy` of its user, whichever arrived later), i.e. when",
        "it leaves for AWS; \"acknowledged\" = when the later of their responses was back. A request's",
        "wave = 1 + the deepest wave among requests whose responses were back before it arrived;",
        "\"waves\" is the wave of the last containment write.",
        "",
    ]
    for delay in delays:
        lines += await bench_delay(binary, acct, delay, runs, workdir)
    lines += [f"Proxy logs and function stderr of this run: `{workdir}` (temporary).", ""]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
