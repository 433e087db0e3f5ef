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
Writes OUT.md and prints it. Its parts are shared with scripts/bench_burst.py: the proxy set and
the setup on the local AWS (bench_proxies.py), the fake Lambda Runtime API (bench_lambda.py) and
the log analysis (bench_analysis.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, HERE)
from bench_analysis import Measured, median_run, ms, stats  # noqa: E402
from bench_lambda import WarmFunction  # noqa: E402
from bench_proxies import Account, ProxySet, guardduty_finding, log, manual_request, raise_finding  # noqa: E402


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


async def warm_killswitch(fn: WarmFunction, proxies: ProxySet, label: str, user: str, key: str) -> Measured:
    ev = await fn.invoke(manual_request(key, user))
    m = Measured(await settle(proxies), ev.t_handout, key, user, label, ev.t_result)
    m.kind = ev.kind
    if ev.kind != "response" or not m.ok:
        log(f"warm invocation: {ev.kind} {json.dumps(ev.body)[:1500]}")
    return m


async def warm_finding(fn: WarmFunction, proxies: ProxySet, label: str, user: str, uid: str, key: str) -> Measured:
    """A GuardDuty finding, raised in the local GuardDuty first: the function reads it back
    there (ListDetectors + GetFindings) before it believes it."""
    payload = guardduty_finding(key, user, uid)
    raise_finding(payload)
    ev = await fn.invoke(payload)
    m = Measured(await settle(proxies), ev.t_handout, key, user, label, ev.t_result)
    m.kind = ev.kind
    m.readback = m.ok and {"guardduty:ListDetectors", "guardduty:GetFindings"} <= set(m.first_wave)
    if ev.kind != "response" or not m.ok:
        log(f"warm finding: {ev.kind} {json.dumps(ev.body)[:1500]}")
    return m


# --------------------------------------------------------------------------------------------

MODES = ("killswitch `respond`, cold", "reference, cold", "killswitch warm (Lambda mode), manual request",
         "killswitch warm, GuardDuty finding")


def measures(runs_by_mode: list[list[Measured]]) -> list[str]:
    """The per-mode rows: median (min / max) of each measure, the waves, the runs that wrote."""
    def col(runs, attr):
        return [getattr(m, attr) for m in runs if m.ok]

    def cell(runs, attr):
        med, lo, hi = stats(col(runs, attr))
        return f"{ms(med)} ({ms(lo)} / {ms(hi)})" if med is not None else "n/a"

    def wave_cell(runs):
        w = col(runs, "waves")
        return f"{statistics.median(w):g} ({min(w)}-{max(w)})" if w else "n/a"

    def row(name, f):
        return f"| {name} | " + " | ".join(f(r) for r in runs_by_mode) + " |"

    return [
        "| measure: median (min / max) | " + " | ".join(MODES) + " |",
        "|---" * (len(MODES) + 1) + "|",
        row("last containment write arrives at AWS", lambda r: cell(r, "sent")),
        row("last containment write acknowledged", lambda r: cell(r, "acked")),
        row("waves up to the last containment write, median (min-max)", wave_cell),
        row("of which simulated network", lambda r: cell(r, "network")),
        row("of which local AWS processing (moto; real AWS has its own)", lambda r: cell(r, "service")),
        row("of which in the function (start-up, CPU, waiting)", lambda r: cell(r, "client")),
        row("runs with both writes succeeded", lambda r: f"{sum(m.ok for m in r)}/{len(r)}"),
    ]


def table(delay_ms: float, ks: list[Measured], ref: list[Measured], warm: list[Measured], gd: list[Measured],
          warm_init: float) -> list[str]:
    def col(runs, attr):
        return [getattr(m, attr) for m in runs if m.ok]

    ks_med, ref_med, warm_med = (stats(col(r, "sent"))[0] for r in (ks, ref, warm))
    ratio = ks_med / ref_med if ks_med is not None and ref_med else None
    warm_budget = delay_ms / 1000 + 0.020
    warm_max = stats(col(warm, "sent"))[2]
    failed = sum(not m.ok for m in ks + ref + warm + gd)
    lines = [f"### {delay_ms:g} ms per round trip", ""] + measures([ks, ref, warm, gd]) + [
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
    lines += finding_rows(gd)
    lines.append(f"| warm: Lambda init (start to first /next poll) | {ms(warm_init)} | |")
    if failed:
        lines.append(f"| runs where a containment write was missing or failed | {failed} | 0 |")
    odd = [m.status for m in ks if getattr(m, "status", None) not in (None, "contained")]
    if odd:
        lines.append(f"| cold reports whose status is not `contained` | {len(odd)} ({', '.join(sorted(set(map(str, odd))))}) | 0 |")
    lines += ["", "Waves of the median run (`service:Action`, `*` = first request on a new connection, "
              "3 round trips; `+` = same wave):", ""]
    for name, runs in (("killswitch cold", ks), ("reference cold", ref), ("killswitch warm", warm),
                       ("killswitch warm, GuardDuty finding", gd)):
        m = median_run(runs)
        if m:
            lines.append(f"- {name} ({ms(m.sent)}, {m.waves} waves): {m.path}")
    lines.append("")
    return lines


def finding_rows(gd: list[Measured]) -> list[str]:
    """A finding is read back at GuardDuty in the first wave, beside the guard's reads: the
    containment writes stay in the second."""
    ok = [m for m in gd if m.ok]
    if not ok:
        return ["| warm GuardDuty finding: runs contained | 0 | all |"]
    waves = max(m.waves for m in ok)
    read_back = sum(bool(getattr(m, "readback", False)) for m in ok)
    return [
        f"| warm GuardDuty finding: waves up to the last containment write, max | {waves} | 2 "
        f"{'PASS' if waves <= 2 else 'FAIL'} |",
        f"| warm GuardDuty finding: ListDetectors and GetFindings in wave 1 | {read_back}/{len(gd)} runs | all "
        f"{'PASS' if read_back == len(gd) else 'FAIL'} |",
    ]


async def bench_delay(binary: str, acct: Account, delay_ms: float, runs: int, workdir: str) -> list[str]:
    log(f"delay {delay_ms:g} ms: planting {4 * runs} keys")
    keys = {mode: [acct.plant(f"{mode}{int(delay_ms)}-{i}") for i in range(runs)] for mode in ("k", "r", "w", "g")}
    proxies = ProxySet(workdir, delay_ms, ["cold", "reference", "warm", "finding"])
    await proxies.start()
    base = dict(os.environ, **acct.function_env())
    ks, ref, warm, gd = [], [], [], []
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
        gd = await findings_warm(binary, base, proxies, keys["g"], delay_ms, workdir)
    finally:
        await proxies.stop()
    return table(delay_ms, ks, ref, warm, gd, init)


async def findings_warm(binary: str, base: dict, proxies: ProxySet, keys: list, delay_ms: float,
                        workdir: str) -> list[Measured]:
    """The trigger function's path: warm, one GuardDuty finding per key, each read back first."""
    fn = WarmFunction(binary, dict(base, **proxies.env("finding")), f"finding{int(delay_ms)}", workdir)
    gd = []
    try:
        await fn.start()
        await asyncio.sleep(0.5)
        for i, (user, uid, key) in enumerate(keys):
            gd.append(await warm_finding(fn, proxies, "finding", user, uid, key))
            log(f"delay {delay_ms:g} ms, finding {i + 1}/{len(keys)}: {ms(gd[-1].sent)} ({gd[-1].waves} waves)")
            await asyncio.sleep(0.2)
    finally:
        await fn.stop()
    return gd


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
        "  returned the event. With a manual request; and with a GuardDuty finding, raised in the local",
        "  GuardDuty first, which the function reads back there (ListDetectors + GetFindings on",
        "  GuardDuty's own endpoint) before it believes it: the trigger function's path.",
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
