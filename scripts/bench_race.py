"""Race benchmark: a holder with IAM rights on itself races containment inside IAM's propagation
window (issue 27). The local AWS runs with KILLSWITCH_IAM_LAG_SECONDS (D, 4 s from
scripts/bench.sh); each run plays the drills `racing-holder` (no guard) and
`racing-holder-org-guard` (the org guard's SCP in force), one drill process each, one after the
other: the guard attached for one exempts only its own responder role, so in the shared local
account it would refuse the other drill's responder its containment tag and re-applies.

Per scenario over the runs: the holder's last accepted call from the trigger's delivery (median,
worst), its first accepted undo, and how many credentials it held or minted (the leaked one, each
key and role session) still worked when the full report was sent (median, worst, and in how many
runs it kept none).

Run through scripts/bench.sh (inside `scripts/local-aws.sh run`):
  bench_race.py BINARY OUT.md      BINARY: a build with the drill harness (--features drill)
Environment (defaults): BENCH_RACE_RUNS=10
Writes OUT.md and prints it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUNS = int(os.environ.get("BENCH_RACE_RUNS", "10"))
SCENARIOS = ("racing-holder", "racing-holder-org-guard")


def log(msg: str) -> None:
    print(f"bench race: {msg}", file=sys.stderr, flush=True)


def one_run(binary: str, n: int) -> dict[str, dict]:
    """Both drills one after the other, each in its own process; their drill records by scenario."""
    results = {}
    for name in SCENARIOS:
        out = tempfile.mkdtemp(prefix=f"bench-race-{n}-{name}-")
        cmd = [binary, "drill", "--report-dir", out, f"drills/{name}.toml"]
        with open(os.path.join(out, "stderr"), "w") as err:
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, timeout=600, check=False)
        records = [f for f in os.listdir(out) if f.endswith(".json")]
        if not records:
            log(f"run {n} {name}: no drill record (exit {proc.returncode}); see {out}/stderr")
            continue
        with open(os.path.join(out, records[0])) as fh:
            results[name] = json.load(fh)[0]
    return results


def row(result: dict) -> dict:
    """The numbers of one scenario's run."""
    race = result.get("racer") or {}
    held = race.get("held") or []
    return {
        "passed": result.get("passed", False),
        "status": result.get("status"),
        "lag": result.get("lag_seconds"),
        "last_ok_ms": race.get("last_ok_ms"),
        "first_revert_ms": race.get("first_revert_ms"),
        "held": len(held),
        "working": sum(1 for h in held if h.get("works")),
        "kept": [h["credential"] for h in held if h.get("works")],
        "failed": [c["check"] for c in result.get("checks", []) if not c.get("passed")],
    }


def secs(ms_values: list) -> tuple[str, str]:
    vals = [v for v in ms_values if v is not None]
    if not vals:
        return "-", "-"
    return f"{statistics.median(vals) / 1000:.1f} s", f"{max(vals) / 1000:.1f} s"


def table(rows: dict[str, list[dict]]) -> list[str]:
    out = ["| scenario | runs | holder's last accepted call (median / worst) | first undo (median) | "
           "credentials still working at the full report (median / worst) | runs it kept none | drill passed |",
           "|---|---|---|---|---|---|---|"]
    for name in SCENARIOS:
        rs = rows.get(name, [])
        if not rs:
            out.append(f"| `{name}` | 0 | - | - | - | - | - |")
            continue
        med, worst = secs([r["last_ok_ms"] for r in rs])
        revert, _ = secs([r["first_revert_ms"] for r in rs])
        working = [r["working"] for r in rs]
        held = max(r["held"] for r in rs)
        out.append(
            f"| `{name}` | {len(rs)} | {med} / {worst} | {revert} | {statistics.median(working):g} / "
            f"{max(working)} (of up to {held}) | {sum(1 for w in working if w == 0)} | "
            f"{sum(1 for r in rs if r['passed'])}/{len(rs)} |")
    return out


def details(rows: dict[str, list[dict]]) -> list[str]:
    out = ["", "Per run (last accepted call, first undo, still working / held, status, failed checks):", ""]
    for name in SCENARIOS:
        out.append(f"- `{name}`:")
        for i, r in enumerate(rows.get(name, []), 1):
            last = "-" if r["last_ok_ms"] is None else f"{r['last_ok_ms'] / 1000:.1f} s"
            first = "-" if r["first_revert_ms"] is None else f"{r['first_revert_ms'] / 1000:.1f} s"
            out.append(f"  - run {i}: {last}, {first}, {r['working']}/{r['held']}, {r['status']}, "
                       f"{', '.join(r['failed']) or 'all checks passed'}; kept: {', '.join(r['kept']) or 'nothing'}")
    return out


def report(rows: dict[str, list[dict]], lag: object) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Race benchmark: a holder racing containment inside IAM's propagation window",
        "",
        f"Run {now} on {platform.machine()}, {os.cpu_count()} cores; D = {lag} s (the local AWS's "
        f"`KILLSWITCH_IAM_LAG_SECONDS`); {RUNS} runs, the two drills one after the other in each.",
        "",
        "Reproduce: `scripts/bench.sh race` (`BENCH_RACE_RUNS` runs, D from `BENCH_RACE_LAG`, default 4).",
        "The holder (`src/aws/sandbox/racer.rs`) polls its own principal every 200 ms for 60 s and, at",
        "each sighting of containment, undoes it and mints a key on itself and on another user, a",
        "console password, a role trusting an outside account and a role session; times are from the",
        "trigger's delivery. Credentials are tried with one `iam:ListUsers` each right after the",
        "handler returns, when the full report has gone out.",
        "",
    ]
    lines += table(rows)
    lines += details(rows)
    return "\n".join(lines) + "\n"


def main() -> int:
    binary, out_path = sys.argv[1], sys.argv[2]
    rows: dict[str, list[dict]] = {name: [] for name in SCENARIOS}
    lag = os.environ.get("KILLSWITCH_LOCAL_IAM_LAG_SECONDS", "0")
    for n in range(1, RUNS + 1):
        got = one_run(binary, n)
        for name, result in got.items():
            rows[name].append(row(result))
            r = rows[name][-1]
            log(f"run {n}/{RUNS} {name}: last accepted call {r['last_ok_ms']} ms, "
                f"{r['working']}/{r['held']} still working, {r['status']}")
    text = report(rows, lag)
    with open(out_path, "w") as fh:
        fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
