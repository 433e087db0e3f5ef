"""Analysis of the latency proxies' request log for the benchmarks: the containment writes of a
key, waves of sequential calls, where the time went (Measured), and summary statistics."""

from __future__ import annotations

import math
import re
import statistics

CONTAINMENT_WRITES = ("UpdateAccessKey", "PutUserPolicy")


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


# GuardDuty is a REST API: the proxy logs "METHOD path"; the operation is named here.
REST_ACTIONS = (
    ("guardduty", re.compile(r"^GET /detector$"), "ListDetectors"),
    ("guardduty", re.compile(r"^POST /detector/[^/]+/findings/get$"), "GetFindings"),
)


def action_of(r: dict) -> str | None:
    """The request's operation name (`GetFindings` for `POST /detector/ID/findings/get`)."""
    action = r.get("action")
    for service, pattern, name in REST_ACTIONS:
        if r.get("service") == service and isinstance(action, str) and pattern.match(action.split("?", 1)[0]):
            return name
    return action


def name_of(r: dict) -> str:
    return f"{r.get('service') or '?'}:{action_of(r)}{'*' if r.get('new_conn') else ''}"


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
        self.first_wave = [n.rstrip("*") for n in groups.get(1, [])]
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


def median_run(runs: list[Measured]) -> Measured | None:
    ok = sorted((m for m in runs if m.ok), key=lambda m: m.sent)
    return ok[len(ok) // 2] if ok else None
