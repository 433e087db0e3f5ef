"""Benchmark of the CloudTrail investigation on the local LookupEvents double, whose limiter is
the strictest reading of AWS's limit: a third call within any 1 s per account and Region is
refused (ThrottlingException).

Seeds N events per leaked key across the 17 default Regions and runs `killswitch respond
--no-sweep` (verification delay 0, no event cap) in two scenarios, for each binary given:
  alone        one investigation
  two at once  two investigations (two keys, two processes) started together, sharing one
               incident table (killswitch shares the LookupEvents budget through it)
and reports events/s against the ceiling (2 calls/s x 50 events = 100 events/s per Region),
pacing efficiency, throttles answered by the double, and peak RSS.

Before/after side by side in one run: BENCH_BEFORE_BINARY=/path/to/older/killswitch.

Run through scripts/bench.sh; writes bench/results-investigation.md and prints it.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import boto3

BINARY = sys.argv[1]
OUT = sys.argv[2]
BEFORE = os.environ.get("BENCH_BEFORE_BINARY")
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
    "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "sa-east-1",
]


def control(path, body=None):
    req = urllib.request.Request(ENDPOINT + path, data=json.dumps(body or {}).encode(), method="POST" if body is not None else "GET")
    return json.loads(urllib.request.urlopen(req, timeout=60).read())


iam, sns, ddb = boto3.client("iam"), boto3.client("sns"), boto3.client("dynamodb")
topic = sns.create_topic(Name=f"bench-{uuid.uuid4().hex[:8]}")["TopicArn"]


def leaked_key():
    """A user, its key, and EVENTS CloudTrail records signed by it across every Region."""
    user = f"bench-leaky-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    now = datetime.now(timezone.utc)
    records = []
    for i in range(EVENTS):
        records.append({
            "eventTime": (now - timedelta(seconds=5 + i // len(REGIONS))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": "ec2.amazonaws.com" if i % 3 else "iam.amazonaws.com",
            "eventName": ["DescribeInstances", "ListUsers", "RunInstances", "GetCallerIdentity"][i % 4],
            "awsRegion": REGIONS[i % len(REGIONS)],
            "sourceIPAddress": f"203.0.113.{i % 200}",
            "userAgent": f"aws-cli/2.{i % 30}",
            "readOnly": i % 4 != 2,
            "userIdentity": {"type": "IAMUser", "accessKeyId": key, "userName": user},
            "requestParameters": {"instanceType": "t3.micro"} if i % 4 == 2 else None,
        })
    for start in range(0, len(records), 2000):
        control("/_killswitch/cloudtrail/events", {"events": records[start:start + 2000]})
    return key, user


def table():
    name = f"bench-incidents-{uuid.uuid4().hex[:8]}"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    return name


def sweep_flag(binary):
    """`--no-sweep` where the binary has it (releases before the sweep do not)."""
    help_text = subprocess.run([binary, "respond", "--help"], capture_output=True, text=True).stdout
    return ["--no-sweep"] if "--no-sweep" in help_text else []


def run(binary, keys, table_name):
    """Starts one `respond` per key at once; returns (reports, peak RSS KiB, wall s, throttles)."""
    time.sleep(1.5)  # an idle second for every Region's window before the measured run
    before = control("/_killswitch/health")
    env = dict(os.environ, KILLSWITCH_TOPIC_ARN=topic, KILLSWITCH_VERIFY_DELAY_SECONDS="0", KILLSWITCH_WATCH_SECONDS="0",
               KILLSWITCH_MAX_EVENTS_PER_REGION="100000", KILLSWITCH_INVESTIGATION_SECONDS="300",
               KILLSWITCH_LOOKBACK_HOURS="24", RUST_LOG="warn")
    if table_name:
        env["KILLSWITCH_INCIDENT_TABLE"] = table_name
    procs = []
    started = time.monotonic()
    for key, user in keys:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump({"access_key_id": key, "user_name": user, "reason": "benchmark", "requested_by": "bench"}, fh)
        procs.append(subprocess.Popen([binary, "respond", *sweep_flag(binary), "--event", fh.name], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    # Drain the pipes while sampling the kernel's high-water mark of each process (VmHWM).
    drained = [{} for _ in procs]
    threads = [threading.Thread(target=lambda d=d, n=n, s=s: d.__setitem__(n, s.read()), daemon=True)
               for d, p in zip(drained, procs) for n, s in (("out", p.stdout), ("err", p.stderr))]
    for t in threads:
        t.start()
    peak = 0
    while any(p.poll() is None for p in procs):
        for p in procs:
            try:
                with open(f"/proc/{p.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except OSError:
                pass
        time.sleep(0.002)
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    after = control("/_killswitch/health")
    reports = []
    for p, d in zip(procs, drained):
        if p.returncode != 0:
            sys.stderr.write(d.get("err", ""))
            sys.exit(f"killswitch respond exited {p.returncode}")
        reports.append(json.loads(d["out"])["reports"][0])
    throttles = sum(after["throttled"].get(r, 0) - before["throttled"].get(r, 0) for r in REGIONS)
    return reports, peak, wall, throttles


def measure(binary, keys, table_name):
    reports, peak, wall, throttles = run(binary, keys, table_name)
    regions = [r for rep in reports for r in rep["investigation"]["regions"] if r["region"] in REGIONS]
    seconds = max(r["finished_after_ms"] for r in regions) / 1000
    total = sum(r["events"] for r in regions)
    # Per Region, every search together: P pages need at least (P - 1) x 0.5 s at the limit.
    pages = {}
    for r in regions:
        pages[r["region"]] = pages.get(r["region"], 0) + r["events"] // 50 + (1 if r["events"] % 50 else 0)
    ideal = max((p - 1) * 0.5 for p in pages.values())
    return {
        "read": total, "complete": all(r["coverage"]["state"] == "complete" for r in regions),
        "seconds": seconds, "eps": total / seconds, "ceiling": 100 * len(REGIONS),
        "efficiency": 100 * ideal / seconds, "throttles": throttles,
        "reported_throttles": sum(r["throttled"] for r in regions), "peak": peak / 1024, "wall": wall,
    }


binaries = [("after", BINARY)] + ([("before", BEFORE)] if BEFORE else [])
# BENCH_TABLE=0: no incident table (pacing within each process only), to tell the shared slots'
# cost from the pacing's.
use_table = os.environ.get("BENCH_TABLE", "1") != "0"
results = {}
for label, binary in binaries:
    # Each scenario on an empty double, so the store's size is the same for every binary.
    control("/_killswitch/cloudtrail/reset", {})
    results[(label, "alone")] = measure(binary, [leaked_key()], table() if use_table else "")
    control("/_killswitch/cloudtrail/reset", {})
    results[(label, "two at once")] = measure(binary, [leaked_key(), leaked_key()], table() if use_table else "")

cols = [(label, scenario) for label, _ in binaries for scenario in ("alone", "two at once")]
head = "| measure | " + " | ".join(f"{l}: {s}" for l, s in cols) + " |"
rows = [
    ("events read (per investigation: %d)" % EVENTS, lambda m: f"{m['read']} (complete: {m['complete']})"),
    ("time, last Region done", lambda m: f"{m['seconds']:.2f} s"),
    ("events/s, all investigations", lambda m: f"{m['eps']:.0f} ({100 * m['eps'] / m['ceiling']:.0f} % of {m['ceiling']})"),
    ("pacing efficiency: (P-1) x 0.5 s ideal / actual", lambda m: f"{m['efficiency']:.0f} %"),
    ("ThrottlingException answered by the double", lambda m: str(m["throttles"])),
    ("throttles the reports admit", lambda m: str(m["reported_throttles"])),
    ("peak RSS of one process (VmHWM)", lambda m: f"{m['peak']:.1f} MiB"),
    ("wall time, start to last exit", lambda m: f"{m['wall']:.2f} s"),
]
lines = [
    "# Investigation benchmark",
    "",
    f"Run: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, `scripts/bench.sh investigation` (release build), "
    f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()} double with the strict "
    "sliding-window limiter (no third call within any 1 s per account and Region).",
    "",
    head,
    "|---|" + "---|" * len(cols),
]
for name, fmt in rows:
    lines.append(f"| {name} | " + " | ".join(fmt(results[c]) for c in cols) + " |")
lines += [
    "",
    "`after` is this tree; `before` is BENCH_BEFORE_BINARY (the previous release, exact 500 ms pacing per",
    "process). Targets (issue: CloudTrail gap): 0 throttles with two investigations at once; one alone",
    ">= 90 % of the ceiling (the pacing-efficiency line: slots of 525 ms cap it at 95 %). The events/s line",
    "counts whole pages only, so short searches can read slightly above 100 events/s per Region.",
]
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as fh:
    fh.write("\n".join(lines) + "\n")
print("\n".join(lines))
