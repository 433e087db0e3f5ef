"""Local drill: plant a leaked key, let an "attacker" use it, fire a GuardDuty trigger at
`killswitch respond`, then prove the key is contained and refused, and print the SNS summary.

Run through scripts/demo.sh (it starts and stops the local AWS). Exits non-zero if any
expectation fails.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import urllib.request

import boto3
import botocore.exceptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = sys.argv[1]
FAILURES = []


def say(msg):
    print(f"\n=== {msg}", flush=True)


def expect(ok, what):
    print(f"  [{'PASS' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        FAILURES.append(what)


def client(service, key=None):
    kwargs = {}
    if key:
        kwargs = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    cfg = botocore.config.Config(retries={"max_attempts": 1})
    return boto3.client(service, config=cfg, **kwargs)


def attempt(fn):
    try:
        fn()
        return "accepted"
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]


suffix = uuid.uuid4().hex[:8]
iam, sns, sqs = client("iam"), client("sns"), client("sqs")

say("Setting up: SNS topic with an SQS subscription (the on-call inbox)")
topic = sns.create_topic(Name=f"killswitch-demo-{suffix}")["TopicArn"]
queue_url = sqs.create_queue(QueueName=f"killswitch-demo-{suffix}")["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
print(f"  topic {topic}")

user = f"ci-deployer-{suffix}"
say(f"Planting the leak: IAM user {user} with an access key")
iam.create_user(UserName=user)
iam.put_user_policy(UserName=user, PolicyName="ci-permissions", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["iam:List*", "iam:Get*", "sts:GetCallerIdentity"], "Resource": "*"}]}))
leaked = iam.create_access_key(UserName=user)["AccessKey"]
print(f"  leaked key {leaked['AccessKeyId']} (secret not shown)")

# Real Event history shows a call minutes after it happens. The local CloudTrail double is told
# to deliver this key's events 20 s late, so the first search misses the attacker's last calls
# and the sweep (KILLSWITCH_SWEEP_SECONDS below) finds them.
LAG_SECONDS, SWEEP_SECONDS = 20, 30
urllib.request.urlopen(urllib.request.Request(
    os.environ["AWS_ENDPOINT_URL"] + "/_killswitch/cloudtrail/lag", method="POST",
    data=json.dumps({"key": leaked["AccessKeyId"], "seconds": LAG_SECONDS}).encode()), timeout=10).read()
print(f"  CloudTrail (local double) delivers this key's events {LAG_SECONDS} s late, like Event history does")

say("The attacker uses the key")
attacker_iam, attacker_sts = client("iam", leaked), client("sts", leaked)
print("  sts:GetCallerIdentity ->", attempt(attacker_sts.get_caller_identity))
print("  iam:ListUsers         ->", attempt(attacker_iam.list_users))
print("  iam:CreateUser        ->", attempt(lambda: attacker_iam.create_user(UserName=f"backdoor-{suffix}")))
print("  iam:CreateAccessKey   ->", attempt(lambda: attacker_iam.create_access_key(UserName=user)))
expect(attempt(attacker_iam.list_users) == "accepted", "before containment the leaked key works")

say("GuardDuty raises a finding; EventBridge invokes killswitch (here: killswitch respond)")
with open(os.path.join(ROOT, "events", "guardduty-iam-user-finding.json")) as fh:
    event = fh.read().replace("AKIAIOSFODNN7EXAMPLE", leaked["AccessKeyId"]).replace('"alice"', json.dumps(user))
# The function reads every finding back at GuardDuty before it believes it: the local GuardDuty
# raises this one, as the real one would have.
urllib.request.urlopen(urllib.request.Request(
    os.environ["AWS_ENDPOINT_URL"] + "/_killswitch/guardduty/findings", method="POST",
    data=json.dumps({"finding": json.loads(event)["detail"]}).encode()), timeout=10).read()
with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
    fh.write(event)
    event_path = fh.name
env = dict(os.environ, KILLSWITCH_TOPIC_ARN=topic, KILLSWITCH_VERIFY_DELAY_SECONDS="3", KILLSWITCH_WATCH_SECONDS="0",
           KILLSWITCH_SWEEP_SECONDS=str(SWEEP_SECONDS), KILLSWITCH_REGIONS="us-east-1", RUST_LOG="info")
print(f"  (the first report comes at once; the CloudTrail sweep runs {SWEEP_SECONDS} s later, so this takes ~{SWEEP_SECONDS + 10} s)")
started = time.monotonic()
proc = subprocess.run([BINARY, "respond", "--event", event_path], env=env, capture_output=True, text=True)
elapsed = time.monotonic() - started
sys.stderr.write(proc.stderr)
expect(proc.returncode == 0, f"killswitch respond exited 0 (got {proc.returncode}) in {elapsed:.1f}s")
output = json.loads(proc.stdout) if proc.stdout.strip() else {}
report = (output.get("reports") or [{}])[0]
sweep = (output.get("sweeps") or [{}])[0]
contained_at = next((s["at"] for s in report.get("steps", []) if s["step"] == "deny_user"), None)
print(f"  status: {report.get('status')}; containment finished at {contained_at}")
expect(report.get("status") == "contained", "report status is contained")
first_events = (report.get("investigation") or {}).get("total_events", 0)
found = sweep.get("sweep_result") or {}
print(f"  first search: {first_events} event(s) delivered yet; sweep: {found.get('new_events')} new event(s), closed={found.get('closed')}")
expect(found.get("new_events", 0) > 0, "the sweep found the calls CloudTrail delivered late")
expect(found.get("closed") is True, "the sweep closed the search")

say("Checking the end state through the APIs")
status = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
expect(status.get(leaked["AccessKeyId"]) == "Inactive", "the leaked key is Inactive (not deleted)")
doc = iam.get_user_policy(UserName=user, PolicyName="KillSwitchDenyAll")["PolicyDocument"]
expect(doc["Statement"][0]["Effect"] == "Deny" and doc["Statement"][0]["Action"] == "*", "KillSwitchDenyAll is on the user")
refused = attempt(attacker_iam.list_users)
expect(refused != "accepted", f"the leaked key is refused now ({refused})")

say("The on-call engineer's inbox (SNS -> SQS): a short notice at once, the full report, then the FINAL one")
received = []
for _ in range(6):
    got = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=3, MaxNumberOfMessages=10).get("Messages", [])
    for m in got:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        received.append(json.loads(m["Body"]))
    if len(received) >= 3:
        break
order = lambda b: 0 if "(details follow)" in b.get("Subject", "") else (2 if "FINAL" in b.get("Subject", "") else 1)
received.sort(key=order)
expect(len(received) == 3, f"three notices were delivered (got {len(received)})")
expect(bool(received) and "(details follow)" in received[0].get("Subject", ""), "the first is the short notice")
expect(len(received) == 3 and "FINAL" in received[2].get("Subject", ""), "the last is the FINAL notice that closes the search")
for body in received:
    print(f"\n--- Subject: {body.get('Subject')}\n")
    print(body.get("Message"))

say("Drill result")
if FAILURES:
    print(f"FAILED: {len(FAILURES)} expectation(s): " + "; ".join(FAILURES))
    sys.exit(1)
print("PASSED: leaked key contained, refused, and the on-call engineer was told what it did, including what CloudTrail delivered late.")
