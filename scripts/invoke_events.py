"""Every payload in events/ through the Lambda emulator, both ways the README shows.

Runs under `scripts/local-aws.sh run --` (the local AWS environment), called by scripts/test.sh:

1. sets the stage in the local AWS: an SNS topic, the function's role (`killswitch-responder`,
   assumed for a session, as Lambda would), and member-role.yaml deployed through CloudFormation
   in the member account, so the member-account finding goes through sts:AssumeRole;
2. starts `cargo lambda watch` (the function in Lambda mode behind an emulated Invoke API) in dry
   run, logs kept outside the crate so watch does not rebuild on them;
3. sends each events/*.json with `cargo lambda invoke --data-file` and with the AWS CLI v2 form
   `aws lambda invoke --cli-binary-format raw-in-base64-out --payload file://...`, and checks
   the statuses each must produce. A file without an expectation here fails the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME_ACCOUNT = "123456789012"

# What each payload must produce, in dry run, against a local AWS where the fixture keys do not
# exist: (statuses of the reports, Lambda error type or None).
# A long-term key IAM does not know, whose user is gone too, is KEY NOT FOUND from every trigger.
EXPECTED = {
    "guardduty-iam-user-finding.json": (["key_not_found"], None),
    "guardduty-assumed-role-finding.json": (["dry_run"], None),
    "guardduty-member-account-finding.json": (["dry_run"], None),
    "guardduty-sample-finding.json": (["sample"], None),
    "guardduty-root-finding.json": (["refused"], None),
    # A threat finding on a root key: notify-only unless KILLSWITCH_ROOT_KEYS=delete.
    "guardduty-root-key-malicious-ip-finding.json": (["refused"], None),
    # Issue 28: an attack sequence is one incident per credential it names (one here); the AI
    # Protection and compromised-credential types are contained like any finding; a prompt a
    # guardrail caught and short-term root credentials are notify-only.
    "guardduty-attack-sequence-finding.json": (["key_not_found"], None),
    "guardduty-ai-anomalous-model-invocation.json": (["key_not_found"], None),
    "guardduty-ai-cost-harvesting.json": (["key_not_found"], None),
    "guardduty-compromised-credentials-finding.json": (["key_not_found"], None),
    "guardduty-ai-prompt-injection.json": (["refused"], None),
    "guardduty-short-term-root-finding.json": (["refused"], None),
    # No Identity Center role in this stage: a portal session is notify-only (the manual steps).
    "guardduty-identity-center-session-finding.json": (["refused"], None),
    "health-exposed-new-shape.json": (["key_not_found"], None),
    "health-exposed-old-shape.json": (["key_not_found"], None),
    "health-iam-quarantine.json": (["key_not_found"], None),
    "health-exposure-suspected.json": (["key_not_found"], None),
    "health-compromised.json": (["key_not_found"], None),
    "health-compromise-suspected.json": (["key_not_found"], None),
    # No public sample, not a key: a notice with the manual steps, nothing changed
    # (docs/how-it-works.md).
    "health-console-compromise.json": (["refused"], None),
    "manual-request.json": (["key_not_found"], None),
    "manual-request-dry-run.json": (["key_not_found"], None),
    "securityhub-guardduty-user-finding.json": (["key_not_found"], None),
    "securityhub-guardduty-sample-finding.json": (["sample"], None),
    "securityhub-v2-guardduty-user-finding.json": (["key_not_found"], None),
    "securityhub-v2-guardduty-sample-finding.json": (["sample"], None),
    # Pivot events: nobody is under containment in this stage, so each is a claim that changes
    # nothing (no reports); a refused call is not an event the rules deliver.
    "cloudtrail-create-access-key.json": ([], None),
    "cloudtrail-delete-user-policy.json": ([], None),
    "cloudtrail-create-login-profile.json": ([], None),
    "cloudtrail-assume-role.json": ([], None),
    "cloudtrail-denied-delete-user-policy.json": ([], "KillSwitch.BadEvent"),
}


# The function's error types (src/error.rs), as Lambda reports them.
ERROR_TYPES = ("KillSwitch.BadEvent", "KillSwitch.ContainmentFailed", "KillSwitch.NotifyFailed")


def client(service: str, key: str, secret: str, token: str | None = None):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)


def stage() -> dict[str, str]:
    """The topic, the function's role session and the member role; returns the function's env."""
    admin = (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    member = (os.environ["KILLSWITCH_LOCAL_MEMBER_ACCESS_KEY_ID"],
              os.environ["KILLSWITCH_LOCAL_MEMBER_SECRET_ACCESS_KEY"])
    suffix = uuid.uuid4().hex[:8]
    topic = client("sns", *admin).create_topic(Name=f"oncall-{suffix}")["TopicArn"]
    iam = client("iam", *admin)
    me = iam.get_user()["User"]["Arn"]
    role = f"killswitch-responder-{suffix}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": me}, "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName=role, PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    session = client("sts", *admin).assume_role(
        RoleArn=f"arn:aws:iam::{HOME_ACCOUNT}:role/{role}", RoleSessionName="killswitch")["Credentials"]
    external_id = f"ext-{uuid.uuid4().hex}"
    member_role = f"KillSwitchMember-{suffix}"
    cfn = client("cloudformation", *member)
    cfn.create_stack(
        StackName=f"killswitch-member-{suffix}",
        TemplateBody=(ROOT / "member-role.yaml").read_text(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in {
            "SecurityAccountId": HOME_ACCOUNT, "ResponderRoleName": role,
            "ExternalId": external_id, "MemberRoleName": member_role}.items()])
    raise_fixture_findings()
    return {
        "AWS_ACCESS_KEY_ID": session["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
        "AWS_SESSION_TOKEN": session["SessionToken"],
        "KILLSWITCH_TOPIC_ARN": topic,
        "KILLSWITCH_DRY_RUN": "true",
        "KILLSWITCH_VERIFY_DELAY_SECONDS": "0",
        "KILLSWITCH_WATCH_SECONDS": "0",
        "KILLSWITCH_REGIONS": "us-east-1",
        "KILLSWITCH_INVESTIGATION_SECONDS": "10",
        "KILLSWITCH_MEMBER_ROLE_NAME": member_role,
        "KILLSWITCH_MEMBER_EXTERNAL_ID": external_id,
        "KILLSWITCH_MEMBER_ACCOUNTS": os.environ["KILLSWITCH_LOCAL_MEMBER_ACCOUNT"],
    }


def guardduty_detail_of(asff: dict) -> dict:
    """The GuardDuty finding a Security Hub import came from (what the function reads back)."""
    resource = next((r for r in asff.get("Resources", []) if r.get("Type") == "AwsIamAccessKey"), {})
    details = resource.get("Details", {}).get("AwsIamAccessKey", {})
    finding_type = (asff.get("Types") or [""])[0].rsplit("/", 1)[-1].replace("-", "/", 1)
    return {"id": asff["Id"].rsplit("/finding/", 1)[-1], "arn": asff["Id"], "type": finding_type,
            "accountId": asff.get("AwsAccountId"), "region": asff.get("Region"),
            "resource": {"resourceType": "AccessKey", "accessKeyDetails": {
                "accessKeyId": resource.get("Id", "").rsplit("AWS::IAM::AccessKey:", 1)[-1],
                "principalId": details.get("PrincipalId"),
                "userName": details.get("PrincipalName") or details.get("UserName"),
                "userType": details.get("PrincipalType")}},
            "service": {}}


def guardduty_detail_of_ocsf(ocsf: dict) -> dict:
    """The GuardDuty finding a Security Hub V2 (OCSF) finding came from."""
    arn = ocsf["finding_info"]["uid"]
    key = next((r.get("uid", "") for r in ocsf.get("resources", []) if r.get("type") == "AWS::IAM::AccessKey"), "")
    user = next((e["actor"]["user"] for e in ocsf.get("evidences", [])
                 if e.get("actor", {}).get("user", {}).get("credential_uid") == key), {})
    return {"id": arn.rsplit("/finding/", 1)[-1], "arn": arn, "type": ocsf["finding_info"]["types"][0],
            "accountId": ocsf["cloud"]["account"]["uid"], "region": ocsf["cloud"]["region"],
            "resource": {"resourceType": "AccessKey", "accessKeyDetails": {
                "accessKeyId": key, "principalId": user.get("uid"), "userName": user.get("name"),
                "userType": user.get("type")}},
            "service": {}}


def raise_fixture_findings() -> None:
    """GuardDuty raises the fixtures' findings, as it would have: the function reads every finding
    back at GuardDuty before it believes it."""
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    for path in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("source") == "aws.guardduty":
            bodies = [("guardduty/findings", {"finding": event["detail"]})]
        elif event.get("detail-type") == "Findings Imported V2":
            # OCSF: read back at GuardDuty too, by the GuardDuty finding ARN in finding_info.uid.
            bodies = [("guardduty/findings", {"finding": guardduty_detail_of_ocsf(f)}) for f in event["detail"]["findings"]]
        elif event.get("source") == "aws.securityhub":
            # An import is read back where it was raised: the GuardDuty finding it came from.
            bodies = [("guardduty/findings", {"finding": guardduty_detail_of(f)}) for f in event["detail"]["findings"]]
        else:
            continue
        for where, body in bodies:
            urllib.request.urlopen(urllib.request.Request(
                f"{endpoint}/_killswitch/{where}", method="POST", data=json.dumps(body).encode()),
                timeout=10).read()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(name: str, how: str, payload: dict | None, error_type: str | None, failures: list[str]) -> str:
    want_statuses, want_error = EXPECTED[name]
    statuses = [r.get("status") for r in (payload or {}).get("reports", [])]
    if error_type != want_error or (want_error is None and statuses != want_statuses):
        failures.append(f"{how} {name}: expected {want_statuses} / error {want_error}, "
                        f"got {statuses} / error {error_type}: {json.dumps(payload)[:400]}")
        return "FAIL"
    if name == "guardduty-member-account-finding.json":
        r = payload["reports"][0]  # type: ignore[index]
        if r.get("account") != os.environ["KILLSWITCH_LOCAL_MEMBER_ACCOUNT"] or r["steps"][0]["step"] != "enter_account":
            failures.append(f"{how} {name}: not handled in the member account: {json.dumps(r)[:400]}")
            return "FAIL"
    return ",".join(statuses)


def logged_error(logs: Path, logged: int, out: subprocess.CompletedProcess) -> str:
    """The function's error type for an invoke the AWS CLI got no response file for: cargo lambda
    watch answers a function error with HTTP 500 and no body (Lambda answers 200 with the error),
    so it is read from what the function logged since `logged`."""
    with open(logs / "watch.log", errors="replace") as f:
        f.seek(logged)
        said = f.read()
    return next((t for t in ERROR_TYPES if f'"kind":"{t}"' in said),
                f"exit {out.returncode} without a response: {out.stderr.strip()[-300:]}")


def main() -> int:
    cargo_lambda = sys.argv[1]
    aws_cli = sys.argv[2]
    files = sorted(p.name for p in (ROOT / "events").glob("*.json"))
    # An optional third argument keeps the files whose name contains it (to look at one case).
    if len(sys.argv) > 3:
        files = [f for f in files if sys.argv[3] in f]
    missing = [f for f in files if f not in EXPECTED]
    if missing:
        print(f"invoke-events: no expectation for {missing}: add them to EXPECTED", file=sys.stderr)
        return 1

    env = {**os.environ, **stage()}
    # The build watch's first invoke would wait for, done here: a failed build (a full disk, say)
    # then stops the run with its own error instead of an invoke that hangs until its timeout.
    subprocess.run(["cargo", "build", "--locked", "--bin", "killswitch"], cwd=ROOT, check=True)
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="killswitch-watch-"))
    watch = subprocess.Popen(
        [cargo_lambda, "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
        cwd=ROOT, env=env, stdout=open(logs / "watch.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    failures: list[str] = []
    rows = []
    try:
        # The emulator is up once it says so; the first invoke then waits for the build.
        log = logs / "watch.log"
        for _ in range(240):
            if "starting Runtime server" in log.read_text(errors="replace"):
                break
            if watch.poll() is not None:
                raise SystemExit(f"cargo lambda watch exited:\n{log.read_text(errors='replace')}")
            time.sleep(0.5)
        else:
            raise SystemExit(f"cargo lambda watch did not start in 120 s:\n{log.read_text(errors='replace')}")
        cli_env = {k: v for k, v in env.items() if not k.startswith("AWS_ENDPOINT_URL")}
        cli_env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_PAGER="")
        cli_env.pop("AWS_SESSION_TOKEN", None)
        for name in files:
            path = ROOT / "events" / name
            # 1. cargo lambda invoke --data-file
            out = subprocess.run(
                [cargo_lambda, "lambda", "invoke", "killswitch", "--invoke-address", "127.0.0.1",
                 "--invoke-port", str(port), "--data-file", str(path), "--output-format", "json"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            payload, error_type = None, None
            if out.returncode == 0:
                payload = json.loads(out.stdout)
            else:
                error_type = next((t for t in ERROR_TYPES if t in out.stderr + out.stdout),
                                  f"exit {out.returncode}: {out.stderr.strip()[-300:]}")
            via_cargo = check(name, "cargo lambda invoke", payload, error_type, failures)
            # 2. The AWS CLI v2 form from the README.
            response = logs / f"{name}.out"
            logged = (logs / "watch.log").stat().st_size
            out = subprocess.run(
                [aws_cli, "lambda", "invoke", "--endpoint-url", f"http://127.0.0.1:{port}",
                 "--region", "us-east-1", "--function-name", "killswitch",
                 "--cli-binary-format", "raw-in-base64-out", "--payload", f"file://{path}", str(response)],
                cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=600)
            if out.returncode not in (0, 254):
                failures.append(f"aws lambda invoke {name}: exit {out.returncode}: {out.stderr.strip()[-300:]}")
                via_cli = "FAIL"
            elif not response.exists():
                via_cli = check(name, "aws lambda invoke", None, logged_error(logs, logged, out), failures)
            else:
                body = json.loads(response.read_text() or "null")
                meta = json.loads(out.stdout or "{}")
                err = body.get("errorType") if meta.get("FunctionError") or "errorType" in (body or {}) else None
                via_cli = check(name, "aws lambda invoke", None if err else body, err, failures)
            rows.append((name, via_cargo, via_cli))
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(watch.pid, signal.SIGKILL)

    width = max(len(r[0]) for r in rows)
    print(f"{'events/ file':<{width}}  cargo lambda invoke   aws lambda invoke (CLI v2)")
    for name, a, b in rows:
        print(f"{name:<{width}}  {a:<20}  {b}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        print(f"watch log: {logs / 'watch.log'}", file=sys.stderr)
        return 1
    print(f"all {len(rows)} payloads accepted both ways")
    return 0


if __name__ == "__main__":
    sys.exit(main())
