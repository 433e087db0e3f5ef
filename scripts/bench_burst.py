"""Burst benchmark: many leaked keys at once, delivered to a few warm Lambda copies, with network
latency and IAM write throttling. Then one AWS Health event naming several keys.

Lambda's asynchronous invocation is simulated locally: one shared queue of events; each copy is a
separate `killswitch` process in Lambda mode (no arguments) behind its own fake Lambda Runtime API,
all pulling from that queue; an invocation that ends in an error (or times out, or whose process
dies) is re-queued after a back-off, at most BENCH_RETRIES times (Lambda: 2 retries, ~1 min then
~2 min; the simulation's back-off is shorter, BENCH_RETRY_BACKOFF). Every AWS call goes through
scripts/latency_proxy.py (BENCH_BURST_DELAY_MS per round trip, three for a new connection) which
also answers IAM writes beyond BENCH_IAM_WRITE_LIMIT per second with `Throttling`.

Run through scripts/bench.sh (inside `scripts/local-aws.sh run`):
  bench_burst.py BINARY OUT.md
Environment (defaults): BENCH_BURST_KEYS=200 BENCH_COPIES=5 BENCH_BURST_DELAY_MS=60
  BENCH_IAM_WRITE_LIMIT=20 (0: none) BENCH_RETRY_BACKOFF=1,2 BENCH_RETRIES=2
  BENCH_BURST_VERIFY_DELAY=10 (template.yaml's default) BENCH_BURST_REGIONS=us-east-1
  BENCH_LAMBDA_TIMEOUT=120 (template.yaml) BENCH_BURST_TIMEOUT=900 BENCH_HEALTH_KEYS=5 (at most 10:
  an event naming more is refused whole, src/trigger/mod.rs MAX_KEYS_PER_EVENT)
Writes OUT.md and prints it.
"""

from __future__ import annotations

import asyncio
import copy
import os
import platform
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
from bench_analysis import containment_writes, ms, percentile  # noqa: E402
from bench_lambda import Event, FakeRuntime, lambda_env  # noqa: E402
from bench_proxies import (  # noqa: E402
    Account, ProxySet, guardduty_finding, load_event, log, manual_request, raise_finding)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


KEYS = env_int("BENCH_BURST_KEYS", 200)
COPIES = env_int("BENCH_COPIES", 5)
DELAY_MS = float(os.environ.get("BENCH_BURST_DELAY_MS", "60"))
WRITE_LIMIT = env_int("BENCH_IAM_WRITE_LIMIT", 20)
BACKOFF = [float(x) for x in os.environ.get("BENCH_RETRY_BACKOFF", "1,2").split(",")]
RETRIES = env_int("BENCH_RETRIES", 2)
VERIFY_DELAY = os.environ.get("BENCH_BURST_VERIFY_DELAY", "10")
REGIONS = os.environ.get("BENCH_BURST_REGIONS", "us-east-1")
LAMBDA_TIMEOUT = float(os.environ.get("BENCH_LAMBDA_TIMEOUT", "120"))
BURST_TIMEOUT = float(os.environ.get("BENCH_BURST_TIMEOUT", "900"))
HEALTH_KEYS = env_int("BENCH_HEALTH_KEYS", 5)
TARGET_MAX = 30.0


HEALTH = load_event("health-exposed-new-shape.json")


def health_event(planted: list[tuple[str, str, str]]) -> dict:
    """The newest documented shape, naming every key in affectedEntities and resources; metadata
    (publicKey, userName) for the first one, as AWS fills it for one key; the others' users must
    be resolved through IAM."""
    ev = copy.deepcopy(HEALTH)
    ev["id"] = str(uuid.uuid4())
    keys = [k for _, _, k in planted]
    d = ev["detail"]
    tag = uuid.uuid4().hex[:10]
    d["eventArn"] = f"arn:aws:health:us-east-1::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED-{tag}"
    d["eventMetadata"]["publicKey"] = keys[0]
    d["eventMetadata"]["userName"] = planted[0][0]
    d["eventDescription"][0]["latestDescription"] = f"Access keys {', '.join(keys)} are publicly available online."
    d["affectedEntities"] = [{"entityValue": k} for k in keys]
    ev["resources"] = keys
    return ev


class Copy:
    """One warm Lambda execution environment: a killswitch process behind its own Runtime API."""

    def __init__(self, sim: "Sim", name: str, binary: str, env: dict, workdir: str):
        self.sim, self.name, self.binary, self.env, self.workdir = sim, name, binary, env, workdir
        self.runtime = FakeRuntime(name, sim.queue, sim.handout, sim.result, deadline_ms=int(LAMBDA_TIMEOUT * 1000))
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.stderr = open(os.path.join(workdir, f"{name}.stderr"), "a")  # noqa: SIM115 - closed in stop()

    async def start(self) -> None:
        if self.runtime.server is None:
            await self.runtime.start()
        self.runtime.ready.clear()
        self.starts += 1
        env = dict(self.env, **lambda_env(self.name, self.runtime))
        self.proc = await asyncio.create_subprocess_exec(self.binary, env=env, stdout=self.stderr, stderr=self.stderr)

    async def kill(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                await self.kill()
        await self.runtime.stop()
        self.stderr.close()


class Sim:
    """Lambda's asynchronous invocation, locally: a shared queue, retries with back-off."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.events: list[Event] = []
        self.inflight: dict[str, tuple[Event, float, str]] = {}
        self.invocations: list[dict] = []
        self.retries = 0
        self.dropped = 0
        self.restarts = 0
        self.finished = asyncio.Event()
        self.copies: dict[str, Copy] = {}

    def deliver(self, events: list[Event]) -> float:
        for ev in events:
            ev.attempts, ev.state, ev.errors = 0, "queued", []
            self.events.append(ev)
        t0 = time.time()
        for ev in events:
            self.queue.put_nowait(ev)
        return t0

    def handout(self, ev: Event, rid: str, t: float) -> None:
        ev.attempts += 1
        ev.state = "running"
        self.inflight[rid] = (ev, t, rid.rsplit("-", 1)[0])

    def result(self, rid: str, kind: str, body, t: float) -> None:
        if rid not in self.inflight:
            return
        ev, start, copy_name = self.inflight.pop(rid)
        self.invocations.append({"copy": copy_name, "start": start, "end": t, "kind": kind,
                                 "error": None if kind == "response" else body})
        if kind == "response":
            ev.state = "ok"
            self._check()
        else:
            self.fail(ev, body)

    def fail(self, ev: Event, why) -> None:
        ev.errors.append(why)
        if ev.attempts <= RETRIES:
            self.retries += 1
            ev.state = "waiting"
            delay = BACKOFF[min(ev.attempts - 1, len(BACKOFF) - 1)]
            asyncio.get_running_loop().call_later(delay, self.queue.put_nowait, ev)
        else:
            ev.state = "dropped"
            self.dropped += 1
        self._check()

    def _check(self) -> None:
        if all(ev.state in ("ok", "dropped") for ev in self.events):
            self.finished.set()

    async def watchdog(self) -> None:
        """Timeouts and dead processes: the invocation fails, the copy starts again (cold)."""
        while True:
            await asyncio.sleep(0.5)
            now = time.time()
            for rid, (ev, start, name) in list(self.inflight.items()):
                c = self.copies[name]
                dead = c.proc is not None and c.proc.returncode is not None
                if now - start > LAMBDA_TIMEOUT or dead:
                    why = "Sandbox.Timedout" if not dead else f"Runtime.ExitError (exit {c.proc.returncode})"
                    del self.inflight[rid]
                    self.invocations.append({"copy": name, "start": start, "end": now, "kind": "error", "error": why})
                    log(f"{name}: {why}; restarting it")
                    await c.kill()
                    self.restarts += 1
                    await c.start()
                    self.fail(ev, why)
            for c in self.copies.values():
                busy = any(name == c.name for _, _, name in self.inflight.values())
                if c.starts > 20:
                    continue  # keeps dying: leave it down (its stderr says why)
                if not busy and c.proc is not None and c.proc.returncode is not None:
                    log(f"{c.name}: exited {c.proc.returncode} while idle; restarting it")
                    self.restarts += 1
                    await c.start()


async def start_copies(sim: Sim, n: int, binary: str, env: dict, proxies: ProxySet, workdir: str, prefix: str) -> float:
    for i in range(n):
        name = f"{prefix}{i}"
        sim.copies[name] = Copy(sim, name, binary, dict(env, **proxies.env(name)), workdir)
    t = time.time()
    await asyncio.gather(*(c.start() for c in sim.copies.values()))
    waits = [asyncio.wait_for(c.runtime.ready.wait(), 120) for c in sim.copies.values()]
    try:
        await asyncio.gather(*waits)
    except asyncio.TimeoutError:
        raise RuntimeError(f"a copy did not poll /next in 120 s (stderr in {workdir})") from None
    init = time.time() - t
    await asyncio.sleep(0.5)
    return init


def burst_events(acct: Account) -> list[Event]:
    """KEYS planted users and keys, one event each: GuardDuty findings and manual requests alternating."""
    log(f"burst: planting {KEYS} keys")
    planted = [acct.plant(f"b{i}") for i in range(KEYS)]
    events = []
    for i, (user, uid, key) in enumerate(planted):
        payload = guardduty_finding(key, user, uid) if i % 2 == 0 else dict(manual_request(key, user), request_id=f"burst-{i}")
        if i % 2 == 0:
            raise_finding(payload)
        events.append(Event(payload, key=key, user=user, kind="GuardDuty finding" if i % 2 == 0 else "manual request"))
    return events


class BurstRun:
    """What one burst left: the simulation, the copies' init time, t0 (all events enqueued), how
    long until every invocation finished (or the timeout), and the proxy records from t0."""

    def __init__(self, sim: Sim, init: float, t0: float, t_all: float, timed_out: bool, recs: list[dict]):
        self.sim, self.init, self.t0, self.t_all, self.timed_out, self.recs = sim, init, t0, t_all, timed_out, recs


async def deliver_burst(binary: str, acct: Account, workdir: str, names: list[str], events: list[Event]) -> BurstRun:
    """COPIES warm copies behind the proxies, every event delivered at once, until all finished."""
    proxies = ProxySet(workdir, DELAY_MS, names, iam_write_limit=WRITE_LIMIT or None)
    await proxies.start()
    sim = Sim()
    env = dict(os.environ, **acct.function_env(verify_delay=VERIFY_DELAY, regions=REGIONS))
    dog = None
    try:
        init = await start_copies(sim, COPIES, binary, env, proxies, workdir, "copy")
        log(f"burst: {COPIES} copies initialised in {init:.2f} s; delivering {KEYS} events")
        dog = asyncio.ensure_future(sim.watchdog())
        t0 = sim.deliver(events)
        try:
            await asyncio.wait_for(sim.finished.wait(), BURST_TIMEOUT)
            timed_out = False
        except asyncio.TimeoutError:
            timed_out = True
        t_all = time.time() - t0
        await asyncio.sleep(0.3)
        recs = [r for r in proxies.records() if r["t_arrive"] >= t0]
    finally:
        if dog:
            dog.cancel()
        await asyncio.gather(*(c.stop() for c in sim.copies.values()))
        await proxies.stop()
    return BurstRun(sim, init, t0, t_all, timed_out, recs)


def containment_times(events: list[Event], recs: list[dict], t0: float) -> tuple[list[float], list[str]]:
    """(time to contained from t0 of each contained key, the keys never contained)."""
    contained, missing = [], []
    by_key: dict[str, list[dict]] = {}
    for r in recs:
        k = (r.get("params") or {}).get("AccessKeyId")
        u = (r.get("params") or {}).get("UserName")
        for x in filter(None, (k, u)):
            by_key.setdefault(x, []).append(r)
    for ev in events:
        rel = by_key.get(ev.key, []) + [r for r in by_key.get(ev.user, []) if r not in by_key.get(ev.key, [])]
        rel.sort(key=lambda r: r["t_arrive"])
        w = containment_writes(rel, ev.key, ev.user)
        if len(w) == 2:
            contained.append(max(r["t_done"] for r in w.values()) - t0)
        else:
            missing.append(ev.key)
    return contained, missing


def invocation_error_types(sim: Sim) -> dict[str, int]:
    error_types: dict[str, int] = {}
    for i in sim.invocations:
        if i["kind"] == "response":
            continue
        e = i["error"]
        t = e.get("errorType", "?") if isinstance(e, dict) else str(e)
        error_types[t] = error_types.get(t, 0) + 1
    return error_types


def burst_report(acct: Account, events: list[Event], names: list[str], queued_before: int, run: BurstRun) -> list[str]:
    sim, recs = run.sim, run.recs
    contained, missing = containment_times(events, recs, run.t0)
    iam_writes = [r for r in recs if r.get("service") == "iam" and r.get("action") in
                  ("UpdateAccessKey", "PutUserPolicy", "PutRolePolicy", "DeleteUserPolicy")]
    throttled = sum(1 for r in recs if r.get("throttled"))
    lookups = [r for r in recs if r.get("action") == "LookupEvents"]
    lookups_throttled = sum(1 for r in lookups if r.get("status") != 200)
    errors = [i for i in sim.invocations if i["kind"] != "response"]
    durations = [i["end"] - i["start"] for i in sim.invocations]
    per_copy = {n: sum(1 for i in sim.invocations if i["copy"] == n) for n in names}
    worst = max(contained) if contained else None
    verdict = " FAIL" if missing or worst is None or worst > TARGET_MAX else " PASS"
    error_types = invocation_error_types(sim)
    lines = [
        f"## Burst: {KEYS} leaked keys at once, {COPIES} warm copies, {DELAY_MS:g} ms per round trip",
        "",
        f"Events: {KEYS} (GuardDuty findings and manual requests alternating), one planted user and key",
        f"each, all enqueued at t0 after the {COPIES} copies had initialised ({run.init:.1f} s) and were polling.",
        f"Contained = the later of the successful responses to the key's `UpdateAccessKey` and its user's",
        f"`PutUserPolicy` back at the function (proxy log), measured from t0. Function settings:",
        f"`KILLSWITCH_VERIFY_DELAY_SECONDS={VERIFY_DELAY}`, `KILLSWITCH_REGIONS={REGIONS}`, follow-up queue and",
        "incident table set (follow-up messages are not consumed by the simulation).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| time to contained, p50 | {ms(percentile(contained, 50))} | |",
        f"| time to contained, p99 | {ms(percentile(contained, 99))} | |",
        f"| time to contained, max | {ms(max(contained)) if contained else 'n/a'}"
        f"{' (' + str(len(missing)) + ' keys never contained)' if missing else ''} | <= 30 s{verdict} |",
        f"| keys contained | {len(contained)} / {KEYS} | all |",
        f"| IAM writes answered `Throttling` by the proxy (limit {WRITE_LIMIT or 'none'}/s) | "
        f"{throttled} of {len(iam_writes)} IAM writes | (throttling expected; no key lost) |",
        f"| invocations: total / errors / retries (re-queued) / dropped after {RETRIES} retries | "
        f"{len(sim.invocations)} / {len(errors)} / {sim.retries} / {sim.dropped} | 0 dropped |",
        f"| keys whose event needed a Lambda-level retry (on AWS: +1 min or more) | "
        f"{sum(1 for ev in events if ev.attempts > 1)} | 0 |",
        f"| invocation errors by type | {', '.join(f'{k}: {v}' for k, v in sorted(error_types.items())) or 'none'} | |",
        f"| copies restarted (timeout or exit) | {sim.restarts} | |",
        f"| invocation duration, p50 / max | {ms(percentile(durations, 50))} / {ms(max(durations) if durations else None)} | |",
        f"| invocations per copy | {', '.join(str(v) for v in per_copy.values())} | |",
        f"| all invocations finished after | {run.t_all:.1f} s{' (TIMED OUT at ' + str(BURST_TIMEOUT) + ' s)' if run.timed_out else ''} | |",
        f"| CloudTrail LookupEvents calls / refused (ThrottlingException from the double) | "
        f"{len(lookups)} / {lookups_throttled} | |",
        f"| follow-up messages left on the queue (not consumed here) | {acct.follow_ups() - queued_before} | |",
        "",
    ]
    if missing:
        lines += [f"Keys never contained (first 10): {', '.join(missing[:10])}", ""]
    return lines


async def run_burst(binary: str, acct: Account, workdir: str) -> list[str]:
    events = burst_events(acct)
    queued_before = acct.follow_ups()
    names = [f"copy{i}" for i in range(COPIES)]
    run = await deliver_burst(binary, acct, workdir, names, events)
    return burst_report(acct, events, names, queued_before, run)


async def run_health(binary: str, acct: Account, workdir: str) -> list[str]:
    planted = [acct.plant(f"h{i}") for i in range(HEALTH_KEYS)]
    ev = Event(health_event(planted), key=planted[0][2], user=planted[0][0])
    queued_before = acct.follow_ups()
    proxies = ProxySet(workdir, DELAY_MS, ["health0"], iam_write_limit=WRITE_LIMIT or None)
    await proxies.start()
    sim = Sim()
    env = dict(os.environ, **acct.function_env(verify_delay=VERIFY_DELAY, regions=REGIONS))
    try:
        await start_copies(sim, 1, binary, env, proxies, workdir, "health")
        dog = asyncio.ensure_future(sim.watchdog())
        t0 = sim.deliver([ev])
        try:
            await asyncio.wait_for(sim.finished.wait(), 300)
        except asyncio.TimeoutError:
            log("health: the invocation did not finish in 300 s")
        dog.cancel()
        await asyncio.sleep(0.3)
        recs = [r for r in proxies.records() if r["t_arrive"] >= t0]
    finally:
        await asyncio.gather(*(c.stop() for c in sim.copies.values()))
        await proxies.stop()
    writes = []
    complete = 0
    for user, _, key in planted:
        w = containment_writes(recs, key, user)
        complete += len(w) == 2
        writes += list(w.values())
    lookups = [r for r in recs if r.get("action") == "LookupEvents"]
    first_lookup = min((r["t_arrive"] for r in lookups), default=None)
    last_write = max((r["t_arrive"] for r in writes), default=None)
    last_ack = max((r["t_done"] for r in writes), default=None)
    n_writes = 2 * HEALTH_KEYS
    if len(writes) < n_writes:
        answer = f"no: only {len(writes)} of {n_writes} writes succeeded"
    elif first_lookup is None:
        answer = "yes (no LookupEvents at all during the invocation)"
    else:
        answer = "yes" if last_write < first_lookup else "no"
    outcome = sim.invocations[-1]["kind"] if sim.invocations else "none"
    return [
        f"## AWS Health event naming {HEALTH_KEYS} keys, one warm copy, {DELAY_MS:g} ms per round trip",
        "",
        "One `AWS_RISK_CREDENTIALS_EXPOSED` event (newest shape) with the keys in `affectedEntities` and",
        "`resources`; `eventMetadata` (publicKey, userName) names the first, the others' users come",
        "from IAM.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| all {n_writes} containment writes ({HEALTH_KEYS} x UpdateAccessKey + PutUserPolicy) arrived before the first LookupEvents | "
        f"**{answer}** | yes |",
        f"| last containment write arrived | {ms(None if last_write is None else last_write - t0)} | |",
        f"| first LookupEvents arrived | {ms(None if first_lookup is None else first_lookup - t0)} | |",
        f"| all {HEALTH_KEYS} keys contained (acknowledged) | "
        f"{ms(None if last_ack is None else last_ack - t0)} ({complete}/{HEALTH_KEYS} keys) | |",
        f"| invocation outcome / attempts | {outcome} / {ev.attempts} | |",
        f"| follow-up messages left on the queue (not consumed here) | {acct.follow_ups() - queued_before} | |",
        "",
    ]


async def main() -> int:
    binary, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    workdir = tempfile.mkdtemp(prefix="bench-burst-")
    acct = Account()
    lines = [
        "# Burst benchmark",
        "",
        f"Run: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, `scripts/bench.sh`, binary "
        f"`{os.path.relpath(binary, ROOT) if binary.startswith(ROOT) else binary}`, {platform.machine()}, "
        f"{os.cpu_count()} cores (shared: the copies, the local AWS and the proxy run on them too).",
        "",
        "Method:",
        "",
        "- Lambda's asynchronous invocation, simulated: one shared event queue; each copy is a separate",
        "  `killswitch` process in Lambda mode (no arguments) behind its own fake Lambda Runtime API, all",
        "  pulling from the queue as soon as they are free (reserved concurrency = copies). Lambda's own",
        "  back-off when the function is at its concurrency limit is not modelled (flatters the numbers).",
        f"- An invocation that returns an error, times out ({LAMBDA_TIMEOUT:g} s) or whose process dies is re-queued",
        f"  after {' s, then '.join(f'{b:g}' for b in BACKOFF)} s, at most {RETRIES} times (real Lambda: ~1 min, then ~2 min, so every",
        "  key that needs a Lambda-level retry would miss 30 s on AWS); a timed-out or dead copy starts",
        "  again (cold).",
        "- AWS calls go through `scripts/latency_proxy.py`: one round trip per request, three for a new",
        "  connection, one port per service and copy. IAM writes (UpdateAccessKey, PutUserPolicy,",
        f"  PutRolePolicy, DeleteUserPolicy) beyond {WRITE_LIMIT or 'no limit'} per second (`BENCH_IAM_WRITE_LIMIT`; IAM's real",
        "  limits are not published) are answered HTTP 400 `Throttling` / `Rate exceeded` by the proxy,",
        "  without reaching the local AWS. The default, 20/s, is low enough for a fast burst to meet it",
        "  and high enough that 400 writes fit in 20 s, inside the 30 s target.",
        "- Users and keys are planted directly on the local AWS before the clock starts.",
        "",
    ]
    lines += await run_burst(binary, acct, workdir)
    log("health event")
    lines += await run_health(binary, acct, workdir)
    lines += [f"Proxy logs and function stderr of this run: `{workdir}` (temporary).", ""]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
