"""Flood benchmark: 1,000 bogus manual invocations alongside 20 real GuardDuty findings. The
stack's two functions as deployed: the trigger function (findings only, its own copies) and the
manual function (manual requests only, its own copies), each a set of warm `killswitch` processes
in Lambda mode behind fake Lambda Runtime APIs pulling from that function's own queue, every AWS
call through scripts/latency_proxy.py. Target: every real key contained within 30 s of its
finding's delivery.

The bogus invocations, fired at the manual function all at once: made-up key IDs (KEY NOT FOUND),
requests naming another account (REJECTED), payloads over 1 MiB, malformed requests, and
GuardDuty-shaped findings (refused: the manual function answers manual requests only). The real
findings are raised in the local GuardDuty (the function reads each back there) and delivered to
the trigger function one every BENCH_FLOOD_SPACING seconds from the flood's start.

Run through scripts/bench.sh (inside `scripts/local-aws.sh run`):
  bench_flood.py BINARY OUT.md
Environment (defaults): BENCH_FLOOD_BOGUS=1000 BENCH_FLOOD_FINDINGS=20 BENCH_FLOOD_TRIGGER_COPIES=10
  BENCH_FLOOD_MANUAL_COPIES=5 (template.yaml's ManualFunction) BENCH_FLOOD_DELAY_MS=60
  BENCH_FLOOD_SPACING=1.0 BENCH_IAM_WRITE_LIMIT=20 BENCH_FLOOD_SHARED=1 (also the same flood at
  one function answering both, as before the split) BENCH_FLOOD_TIMEOUT=900
Writes OUT.md and prints it.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import string
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, HERE)
from bench_analysis import containment_writes, ms, percentile  # noqa: E402
from bench_burst import Copy, Sim  # noqa: E402
from bench_lambda import Event  # noqa: E402
from bench_proxies import Account, ProxySet, guardduty_finding, log, raise_finding  # noqa: E402

BOGUS = int(os.environ.get("BENCH_FLOOD_BOGUS", "1000"))
FINDINGS = int(os.environ.get("BENCH_FLOOD_FINDINGS", "20"))
TRIGGER_COPIES = int(os.environ.get("BENCH_FLOOD_TRIGGER_COPIES", "10"))
MANUAL_COPIES = int(os.environ.get("BENCH_FLOOD_MANUAL_COPIES", "5"))
DELAY_MS = float(os.environ.get("BENCH_FLOOD_DELAY_MS", "60"))
SPACING = float(os.environ.get("BENCH_FLOOD_SPACING", "1.0"))
WRITE_LIMIT = int(os.environ.get("BENCH_IAM_WRITE_LIMIT", "20"))
SHARED = os.environ.get("BENCH_FLOOD_SHARED", "1") == "1"
TIMEOUT = float(os.environ.get("BENCH_FLOOD_TIMEOUT", "900"))
TARGET_MAX = 30.0
OTHER_ACCOUNT = "999999999999"


class FloodSim(Sim):
    """A function's queue. Bogus invocations (`ev.sync`) are synchronous, as `aws lambda invoke`
    is: an error goes back to the caller and is not retried, and their outcomes are kept. The
    findings are EventBridge's asynchronous deliveries, retried as in bench_burst.py."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[str] = []

    def handout(self, ev: Event, rid: str, t: float) -> None:
        if not hasattr(ev, "t_handout"):
            ev.t_handout = t
        super().handout(ev, rid, t)

    def result(self, rid: str, kind: str, body, t: float) -> None:
        entry = self.inflight.get(rid)
        if entry and getattr(entry[0], "sync", False):
            self.outcomes.append(outcome(kind, body))
        super().result(rid, kind, body, t)

    def fail(self, ev: Event, why) -> None:
        if getattr(ev, "sync", False):
            ev.errors.append(why)
            ev.state = "dropped"
            self._check()
        else:
            super().fail(ev, why)


# What a Lambda error's message says, by the start of the text the function writes.
ERROR_CLASSES = (
    ("Rejected:", "REJECTED (an error to the caller)"),
    ("bytes; the limit is", "refused: over 1 MiB"),
    ("answers manual requests only", "refused: a finding at the manual function"),
    ("answers findings only", "refused: a manual request at the trigger function"),
    ("manual request:", "refused: malformed request"),
)


def outcome(kind: str, body) -> str:
    """A response's report status (and whether its page was held back), or what the error was."""
    if kind == "response" and isinstance(body, dict):
        reports = body.get("reports") or [{}]
        note = (reports[0].get("notification") or {})
        held = ", page held back" if "held back" in json.dumps(note) else ""
        return f"{reports[0].get('status', '?')}{held}"
    if isinstance(body, dict):
        message = str(body.get("errorMessage", ""))
        return next((name for text, name in ERROR_CLASSES if text in message), body.get("errorType", "?"))
    return str(body)[:40]


def made_up_key(rng: random.Random) -> str:
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def bogus_payloads(n: int) -> list[tuple[str, dict]]:
    """(kind, payload) of the flood, in a fixed mix."""
    rng = random.Random(26)
    out = []
    for i in range(n):
        k = made_up_key(rng)
        base = {"access_key_id": k, "reason": "flood", "requested_by": "mallory", "request_id": f"flood-{i}"}
        slot = i % 10
        if slot < 4:
            out.append(("made-up key", base))
        elif slot < 6:
            out.append(("another account", dict(base, account_id=OTHER_ACCOUNT)))
        elif slot == 6:
            out.append(("over 1 MiB", dict(base, reason="x" * (1024 * 1024 + 1))))
        elif slot == 7:
            out.append(("malformed", {"access_key_id": k, "dryrun": False, "reason": "r"}))
        else:
            out.append(("finding sent to the manual function", guardduty_finding(k, "mallory", "AIDAFLOOD")))
    return out


def real_findings(acct: Account) -> list[Event]:
    log(f"flood: planting {FINDINGS} keys and raising their findings")
    events = []
    for i in range(FINDINGS):
        user, uid, key = acct.plant(f"fl{i}")
        payload = guardduty_finding(key, user, uid)
        raise_finding(payload)
        events.append(Event(payload, key=key, user=user, kind="GuardDuty finding"))
    return events


async def start(sim: Sim, n: int, prefix: str, binary: str, env: dict, proxies: ProxySet, workdir: str) -> None:
    copies = [Copy(sim, f"{prefix}{i}", binary, dict(env, **proxies.env(f"{prefix}{i}")), workdir) for i in range(n)]
    for c in copies:
        sim.copies[c.name] = c
    await asyncio.gather(*(c.start() for c in copies))
    await asyncio.gather(*(asyncio.wait_for(c.runtime.ready.wait(), 180) for c in copies))


async def trickle(sim: Sim, events: list[Event]) -> None:
    """The real findings, one every SPACING seconds, each with its own delivery time."""
    for ev in events:
        ev.t0 = time.time()
        sim.deliver([ev])
        await asyncio.sleep(SPACING)


class Run:
    def __init__(self, label: str):
        self.label = label
        self.real: list[Event] = []
        self.bogus: list[Event] = []
        self.recs: list[dict] = []
        self.flood_sim: FloodSim | None = None
        self.t0 = self.t_flood_done = self.t_all = 0.0
        self.timed_out = False


async def run(binary: str, acct: Account, workdir: str, split: bool, flood: bool) -> Run:
    """One run: the findings (and, with `flood`, the bogus invocations) against two functions
    (`split`) or one answering both."""
    r = Run(("two functions" if split else "one function") + (", flood" if flood else ", no flood"))
    r.real = real_findings(acct)
    r.bogus = [Event(p, kind=k, sync=True) for k, p in bogus_payloads(BOGUS)] if flood else []
    trig_names = [f"t{i}" for i in range(TRIGGER_COPIES)]
    man_names = [f"m{i}" for i in range(MANUAL_COPIES)] if split else []
    proxies = ProxySet(workdir, DELAY_MS, trig_names + man_names, iam_write_limit=WRITE_LIMIT or None)
    await proxies.start()
    base = dict(os.environ, **acct.function_env(verify_delay="10"))
    trig = FloodSim()
    man = FloodSim() if split else None
    dogs = []
    try:
        await start(trig, TRIGGER_COPIES, "t", binary, dict(base, KILLSWITCH_ACCEPTS="findings" if split else "all"),
                    proxies, workdir)
        if split:
            await start(man, MANUAL_COPIES, "m", binary, dict(base, KILLSWITCH_ACCEPTS="manual"), proxies, workdir)
        r.flood_sim = man if split else trig
        dogs = [asyncio.ensure_future(s.watchdog()) for s in (trig, man) if s]
        log(f"{r.label}: copies ready; {len(r.bogus)} bogus invocations, then {FINDINGS} findings")
        r.t0 = time.time()
        if r.bogus:
            r.flood_sim.deliver(r.bogus)
        await trickle(trig, r.real)
        # Findings done before the last was delivered may have marked the queue finished early.
        trig.finished.clear()
        trig._check()
        sims = [s for s in (trig, man) if s and s.events]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.finished.wait() for s in sims)), TIMEOUT)
        except asyncio.TimeoutError:
            r.timed_out = True
        r.t_all = time.time() - r.t0
        r.t_flood_done = max((i["end"] for i in r.flood_sim.invocations), default=r.t0) - r.t0
        await asyncio.sleep(0.3)
        r.recs = [x for x in proxies.records() if x["t_arrive"] >= r.t0]
    finally:
        for d in dogs:
            d.cancel()
        await asyncio.gather(*(c.stop() for s in (trig, man) if s for c in s.copies.values()))
        await proxies.stop()
    return r


def contained_after(r: Run) -> tuple[list[float], list[str]]:
    """Each real key's time from its finding's delivery to its last containment write's answer."""
    times, missing = [], []
    for ev in r.real:
        mine = [x for x in r.recs if (x.get("params") or {}).get("AccessKeyId") == ev.key
                or (x.get("params") or {}).get("UserName") == ev.user]
        w = containment_writes(sorted(mine, key=lambda x: x["t_arrive"]), ev.key, ev.user)
        if len(w) == 2:
            times.append(max(x["t_done"] for x in w.values()) - ev.t0)
        else:
            missing.append(ev.key)
    return times, missing


def run_lines(r: Run, target: bool) -> list[str]:
    times, missing = contained_after(r)
    worst = max(times) if times else None
    verdict = ""
    if target:
        verdict = " FAIL" if missing or worst is None or worst > TARGET_MAX else " PASS"
    waited = [ev.t_handout - ev.t0 for ev in r.real if hasattr(ev, "t_handout")]
    counts: dict[str, int] = {}
    for o in (r.flood_sim.outcomes if r.flood_sim else []):
        counts[o] = counts.get(o, 0) + 1
    publishes = sum(1 for x in r.recs if x.get("service") == "sns" and x.get("action") == "Publish")
    flood_pages = sum(1 for x in r.recs if x.get("service") == "sns" and x.get("action") == "Publish"
                      and str(x.get("label", "")).startswith("m"))
    reads = sum(1 for x in r.recs if x.get("service") in ("iam", "sts"))
    lines = [
        f"### {r.label}",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| real keys contained | {len(times)} / {len(r.real)} | all |",
        f"| time from a finding's delivery to its key contained, p50 | {ms(percentile(times, 50))} | |",
        f"| the same, max | {ms(worst)}{' (' + str(len(missing)) + ' never contained)' if missing else ''} | "
        f"{'<= 30 s' + verdict if target else '(comparison)'} |",
        f"| a finding's wait for a free copy, p50 / max | {ms(percentile(waited, 50))} / "
        f"{ms(max(waited) if waited else None)} | |",
    ]
    if r.bogus:
        lines += [
            f"| bogus invocations answered | {sum(counts.values())} / {len(r.bogus)} | |",
            f"| the flood drained after | {r.t_flood_done:.1f} s | |",
            f"| bogus outcomes | {', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))} | |",
        ]
        if r.label.startswith("two"):
            allowed = sum(v for k, v in counts.items() if k == "key_not_found")
            lines += [
                f"| REJECTED pages the flood sent (the manual function's SNS publishes) | {flood_pages} | <= 5 per 10 min |",
                f"| KEY NOT FOUND pages the flood was allowed (each goes out with its follow-through, queued) | "
                f"{allowed} | <= 5 per 10 min |",
            ]
    lines += [
        f"| SNS publishes during the run (the findings' short notices included) | {publishes} | |",
        f"| IAM and STS calls during the run | {reads} | |",
        f"| everything finished after | {r.t_all:.1f} s{' (TIMED OUT)' if r.timed_out else ''} | |",
        "",
    ]
    return lines


def header(binary: str) -> list[str]:
    return [
        "# Flood benchmark",
        "",
        f"Run: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, `scripts/bench.sh flood`, binary "
        f"`{os.path.relpath(binary, ROOT) if binary.startswith(ROOT) else binary}`, {platform.machine()}, "
        f"{os.cpu_count()} cores (shared by every copy, the local AWS and the proxies).",
        "",
        "Method:",
        "",
        f"- The trigger function: {TRIGGER_COPIES} warm copies (`KILLSWITCH_ACCEPTS=findings`; template.yaml reserves 25)."
        f" The manual function: {MANUAL_COPIES} warm copies (`KILLSWITCH_ACCEPTS=manual`, as template.yaml).",
        "  Each copy is a `killswitch` process in Lambda mode behind its own fake Runtime API, pulling",
        "  from its function's own queue (reserved concurrency = copies; Lambda's back-off at the limit",
        "  is not modelled). Deployed settings: follow-up queue and incident table (the follow-ups are not",
        "  consumed here), `KILLSWITCH_VERIFY_DELAY_SECONDS=10`.",
        f"- The flood: {BOGUS} bogus manual invocations enqueued at once at t0, synchronous (an error is",
        "  not retried): 40 % made-up key IDs, 20 % naming another account, 10 % over 1 MiB, 10 %",
        "  malformed, 20 % GuardDuty-shaped findings sent to the manual function.",
        f"- The real findings: {FINDINGS} planted users and keys, each finding raised in the local GuardDuty",
        f"  and delivered to the trigger function, one every {SPACING:g} s from t0 (asynchronous: an error is",
        "  retried, as EventBridge's delivery is).",
        f"- Every AWS call through `scripts/latency_proxy.py`: {DELAY_MS:g} ms per round trip, three for a new",
        f"  connection, one port per service and copy; IAM writes beyond {WRITE_LIMIT or 'no limit'}/s answered `Throttling`.",
        "- Contained = the later of the answers to the key's `UpdateAccessKey` and its user's",
        "  `PutUserPolicy`, from the moment the finding was delivered.",
        "",
    ]


async def main() -> int:
    binary, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    workdir = tempfile.mkdtemp(prefix="bench-flood-")
    # A fresh topic, queue and incident table per run: no run inherits another's notice windows.
    lines = header(binary) + ["## Two functions (template.yaml)", ""]
    lines += run_lines(await run(binary, Account(), workdir, split=True, flood=False), target=False)
    lines += run_lines(await run(binary, Account(), workdir, split=True, flood=True), target=True)
    if SHARED:
        lines += ["## One function answering both (before the split), the same flood", "",
                  f"The same {BOGUS} bogus invocations and {FINDINGS} findings, all to one function's "
                  f"{TRIGGER_COPIES} copies (`KILLSWITCH_ACCEPTS=all`).", ""]
        lines += run_lines(await run(binary, Account(), workdir, split=False, flood=True), target=False)
    lines += [f"Proxy logs and function stderr of this run: `{workdir}` (temporary).", ""]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        fh.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
