"""The local AWS side of the benchmarks (scripts/bench_latency.py, scripts/bench_burst.py): the
latency proxies in front of it (ProxySet, one scripts/latency_proxy.py process per upstream) and
the setup made on it directly (Account: topic, queue, table, planted users and keys)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))

# One proxy port per service the function may call (AWS_ENDPOINT_URL_<SERVICE>), plus the default.
# GuardDuty has its own: every finding is read back there in the first wave.
SERVICES = ("iam", "sts", "sns", "sqs", "dynamodb", "cloudtrail", "account", "securityhub", "guardduty", "kms")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def endpoint_host_port(url: str) -> str:
    m = re.match(r"^http://(127\.0\.0\.1|localhost):(\d+)/?$", url or "")
    if not m:
        raise SystemExit(f"not a local AWS endpoint on 127.0.0.1: {url!r} (run inside scripts/local-aws.sh run)")
    return f"127.0.0.1:{m.group(2)}"


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


class Account:
    """The setup the function needs, made directly on the local AWS (not through a proxy)."""

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
            # The first-minute watch runs in the follow-through, off the path measured here.
            "KILLSWITCH_WATCH_SECONDS": "0",
            "KILLSWITCH_REGIONS": regions,
            "KILLSWITCH_FOLLOW_UP_QUEUE_URL": self.queue,
            "KILLSWITCH_INCIDENT_TABLE": self.table,
            "RUST_LOG": "error",
        }


def load_event(name: str) -> dict:
    with open(os.path.join(os.path.dirname(HERE), "events", name)) as fh:
        return json.load(fh)


def iso_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def guardduty_finding(key: str, user: str, uid: str) -> dict:
    """A GuardDuty finding (events/guardduty-iam-user-finding.json) about a planted user's key,
    with its own finding ID."""
    ev = load_event("guardduty-iam-user-finding.json")
    finding = uuid.uuid4().hex
    ev["id"] = str(uuid.uuid4())
    ev["time"] = iso_now()[:19] + "Z"
    d = ev["detail"]
    d["arn"] = d["arn"].rsplit("/", 1)[0] + "/" + finding
    d["id"] = finding
    d["createdAt"] = d["updatedAt"] = iso_now()
    d["resource"]["accessKeyDetails"].update(accessKeyId=key, userName=user, principalId=uid)
    return ev


def raise_finding(payload: dict) -> None:
    """GuardDuty raises the payload's finding in the local AWS: the function reads every finding
    back at GuardDuty before it believes it."""
    urllib.request.urlopen(urllib.request.Request(
        os.environ["AWS_ENDPOINT_URL"] + "/_killswitch/guardduty/findings", method="POST",
        data=json.dumps({"finding": payload["detail"]}).encode()), timeout=10).read()


def manual_request(key: str, user: str) -> dict:
    return {"access_key_id": key, "user_name": user, "reason": "bench", "requested_by": "bench"}
