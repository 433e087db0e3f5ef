"""The centralized root access double (moto has no sts:AssumeRoot and no root user keys), as strict
as the documented API.

- Root access keys exist only once the control API planted one (`POST /_killswitch/root/keys`,
  {"account"}), as a key created by the root user would; a planted key signs
  sts:GetCallerIdentity as `arn:aws:iam::ACCOUNT:root` until it is deleted, then it is unknown.
  The control API lists them (`POST /_killswitch/root/keys/list`, {"account"}) and deletes one as
  the root user would (`POST /_killswitch/root/keys/delete`, {"account", "id"}: {"deleted"}).
- `sts:AssumeRoot`: Regional endpoint only (a request addressed to `sts.amazonaws.com` is
  refused), signed by a principal of the organization's management account or of an account
  registered as IAM's delegated administrator (`POST /_killswitch/root/delegated-admin`), never
  by root credentials; allowed by the caller's identity policy for `sts:AssumeRoot` on
  `arn:aws:iam::TARGET:root` with `sts:TaskPolicyArn` set as IAM sets it; `TargetPrincipal` a
  member account (its ID or `arn:aws:iam::ID:root`), never the management account;
  `TaskPolicyArn` one of the five documented root-task policies; `DurationSeconds` 0 to 900.
  With centralized root sessions switched off (`POST /_killswitch/root/sessions`,
  {"enabled": false}) it is refused.
- The session it returns may call only what its task policy allows (the policies' v1 documents
  of 2024-11-06), only on the target's root user (no `UserName`), and only until it expires.

Gaps: the session's and the root keys' signatures are not verified (their key IDs and the
session token are); the error codes for the global endpoint and for root sessions switched off
are not documented (the ones below are this double's); S3UnlockBucketPolicy and
SQSUnlockQueuePolicy sessions are issued but every call of theirs is refused here."""

from __future__ import annotations

import re
import secrets
import string
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from .common import ACCOUNT_ID, ORGANIZATION_MANAGEMENT_ACCOUNT_ID, REQUEST, iso

TASK_POLICY_PREFIX = "arn:aws:iam::aws:policy/root-task/"
_DELETE = ["iam:DeleteAccessKey", "iam:DeleteSigningCertificate", "iam:DeleteLoginProfile",
           "iam:DeactivateMFADevice", "iam:DeleteVirtualMFADevice", "iam:ListAccessKeys",
           "iam:ListSigningCertificates", "iam:GetLoginProfile", "iam:ListMFADevices", "iam:GetUser",
           "iam:GetAccessKeyLastUsed"]
# What each task policy lets a root session do (on the target's root user only). None of them
# holds iam:UpdateAccessKey: a root session can delete a root key, never deactivate it.
TASK_POLICIES: dict[str, frozenset[str]] = {
    "IAMAuditRootUserCredentials": frozenset([
        "iam:ListAccessKeys", "iam:ListSigningCertificates", "iam:GetLoginProfile", "iam:ListMFADevices",
        "iam:GetAccountSummary", "iam:GetUser", "iam:GetAccessKeyLastUsed"]),
    "IAMCreateRootUserPassword": frozenset(["iam:CreateLoginProfile", "iam:GetLoginProfile"]),
    "IAMDeleteRootUserCredentials": frozenset(_DELETE),
    "S3UnlockBucketPolicy": frozenset(),
    "SQSUnlockQueuePolicy": frozenset(),
}
MAX_DURATION_SECONDS = 900
GLOBAL_ENDPOINT = "sts.amazonaws.com"
ACCOUNT_RE = re.compile(r"^(?:arn:aws:iam::)?([0-9]{12})(?::root)?$")
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def _key_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def patch_moto_task_policy_condition_key() -> None:
    """IAM sets `sts:TaskPolicyArn` on an AssumeRoot request: give the identity policy's
    StringEquals on it the value of the request being authorized (policy_eval reads the signer's
    keys from principal_keys, looked up when each call is checked)."""
    from . import policy_eval

    original = policy_eval.principal_keys

    def keys(access_key) -> dict:  # type: ignore[no-untyped-def]
        values = original(access_key)
        arn = getattr(REQUEST, "task_policy_arn", None)
        return {**values, "sts:taskpolicyarn": arn} if arn else values

    policy_eval.principal_keys = keys
    # AssumeRoot's resource is the target's root user (`arn:aws:iam::ACCOUNT:root`, or `*` for
    # the account), which IAM takes in a policy and moto's validator does not know.
    from moto.iam.policy_validation import VALID_RESOURCE_PATH_STARTING_VALUES

    VALID_RESOURCE_PATH_STARTING_VALUES["iam"]["values"].append("root")


class RootAccessDouble:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            # account -> key ID -> {"secret", "status", "created"}
            self.root_keys: dict[str, dict[str, dict]] = {}
            # session key ID -> {"account", "policy", "token", "expires"}
            self.sessions: dict[str, dict] = {}
            self.delegated: set[str] = set()
            self.enabled = True

    # -- control API -------------------------------------------------------------------------
    def control(self, path: str, data: dict) -> tuple[int, dict] | None:
        if path == "/_killswitch/root/keys" and isinstance(data.get("account"), str):
            return self.plant(data["account"])
        if path == "/_killswitch/root/keys/list" and isinstance(data.get("account"), str):
            with self.lock:
                keys = self.root_keys.get(data["account"], {})
                return 200, {"keys": [{"id": k, "status": v["status"]} for k, v in keys.items()]}
        if path == "/_killswitch/root/keys/delete" and isinstance(data.get("account"), str) \
                and isinstance(data.get("id"), str):
            # What the root user would do in the console: a drill's cleanup when its response
            # left the planted key behind.
            with self.lock:
                deleted = self.root_keys.get(data["account"], {}).pop(data["id"], None) is not None
            return 200, {"deleted": deleted}
        if path == "/_killswitch/root/delegated-admin" and isinstance(data.get("account"), str):
            with self.lock:
                self.delegated.add(data["account"])
            return 200, {"delegated": sorted(self.delegated)}
        if path == "/_killswitch/root/sessions" and isinstance(data.get("enabled"), bool):
            with self.lock:
                self.enabled = data["enabled"]
            return 200, {"enabled": self.enabled}
        if path == "/_killswitch/root/reset":
            self.reset()
            return 200, {"reset": True}
        return None

    def plant(self, account: str) -> tuple[int, dict]:
        """A root access key, as the root user would create it (at most two, as IAM allows)."""
        if not ACCOUNT_RE.fullmatch(account):
            return 400, {"message": "account must be a 12-digit account ID"}
        with self.lock:
            keys = self.root_keys.setdefault(account, {})
            if len(keys) >= 2:
                return 409, {"message": "the root user already has two access keys"}
            key = _key_id("AKIA")
            secret = secrets.token_urlsafe(30)[:40]
            keys[key] = {"secret": secret, "status": "Active", "created": datetime.now(timezone.utc)}
        return 200, {"AccessKeyId": key, "SecretAccessKey": secret, "account": account}

    # -- who signs -------------------------------------------------------------------------
    def wants(self, environ, scope, read_body) -> bool:  # type: ignore[no-untyped-def]
        """Whether the double answers this signed call: one signed by its keys, or AssumeRoot."""
        if scope is None:
            return False
        if self.holds(scope.group(1)):
            return True
        if scope.group(3) != "sts":
            return False
        return form_params(environ, read_body(environ)).get("Action") == "AssumeRoot"

    def holds(self, key: str) -> bool:
        """Whether a signing key is this double's (a root session or a root key)."""
        with self.lock:
            return key in self.sessions or self._root_key_account(key) is not None

    def _root_key_account(self, key: str) -> str | None:
        for account, keys in self.root_keys.items():
            if key in keys:
                return account
        return None

    def management_or_delegated(self, account: str) -> bool:
        with self.lock:
            return account == ORGANIZATION_MANAGEMENT_ACCOUNT_ID or account in self.delegated

    @staticmethod
    def members() -> set[str]:
        """The organization's member accounts (moto's, when it has an organization)."""
        try:
            from moto.organizations.models import organizations_backends

            backend = organizations_backends[ORGANIZATION_MANAGEMENT_ACCOUNT_ID]["aws"]
            found = {a.id for a in backend.accounts}
            if found:
                return found - {ORGANIZATION_MANAGEMENT_ACCOUNT_ID}
        except Exception:  # noqa: BLE001 - no organization yet: the local one's member
            pass
        return {ACCOUNT_ID}

    # -- sts:AssumeRoot --------------------------------------------------------------------
    def check_assume_root(self, params: dict, host: str, caller_account: str | None,
                          signed_by_root: bool) -> tuple[int, str, str] | None:
        """Everything AssumeRoot refuses before authorization: (status, code, message) or None."""
        if host.split(":")[0].lower() == GLOBAL_ENDPOINT:
            return 400, "InvalidAction", "AssumeRoot is not supported on the STS global endpoint: use a Regional endpoint"
        if signed_by_root:
            return 403, "AccessDenied", "root user credentials cannot call AssumeRoot"
        if caller_account is None or not self.management_or_delegated(caller_account):
            return 403, "AccessDenied", (f"account {caller_account} is neither the organization's management account "
                                         "nor IAM's delegated administrator")
        if not self.enabled:
            return 403, "AccessDenied", "centralized root access (root sessions) is not enabled for the organization"
        target = ACCOUNT_RE.fullmatch(params.get("TargetPrincipal", ""))
        if target is None:
            return 400, "ValidationError", "TargetPrincipal must be a member account ID or arn:aws:iam::ID:root"
        if target.group(1) not in self.members():
            return 400, "ValidationError", f"TargetPrincipal {target.group(1)} is not a member account of the organization"
        arn = params.get("TaskPolicyArn.arn", "")
        if not arn.startswith(TASK_POLICY_PREFIX) or arn[len(TASK_POLICY_PREFIX):] not in TASK_POLICIES:
            return 400, "ValidationError", f"TaskPolicyArn {arn!r} is not one of the root-task policies"
        duration = params.get("DurationSeconds", str(MAX_DURATION_SECONDS))
        if not duration.isdigit() or int(duration) > MAX_DURATION_SECONDS:
            return 400, "ValidationError", f"DurationSeconds must be 0 to {MAX_DURATION_SECONDS}"
        return None

    def issue(self, params: dict) -> str:
        """The session (checked by check_assume_root and authorized), as AssumeRoot's XML."""
        account = ACCOUNT_RE.fullmatch(params["TargetPrincipal"]).group(1)
        policy = params["TaskPolicyArn.arn"][len(TASK_POLICY_PREFIX):]
        seconds = int(params.get("DurationSeconds", str(MAX_DURATION_SECONDS)))
        key, secret, token = _key_id("ASIA"), secrets.token_urlsafe(30)[:40], secrets.token_urlsafe(96)
        expires = time.time() + seconds
        with self.lock:
            self.sessions[key] = {"account": account, "policy": policy, "token": token, "expires": expires}
        expiration = iso(datetime.fromtimestamp(expires, timezone.utc))
        return (f'<AssumeRootResponse xmlns="{STS_NS}"><AssumeRootResult><Credentials>'
                f"<AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
                f"<SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration>"
                f"</Credentials><SourceIdentity></SourceIdentity></AssumeRootResult>"
                f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></AssumeRootResponse>")

    # -- calls signed by the double's keys --------------------------------------------------
    def answer(self, key: str, service: str, params: dict, token: str | None) -> tuple[int, str]:
        """(status, XML) for a call signed by a root session or a root key."""
        with self.lock:
            session = self.sessions.get(key)
            root_account = self._root_key_account(key)
        if root_account is not None:
            if service == "sts" and params.get("Action") == "GetCallerIdentity":
                return 200, (f'<GetCallerIdentityResponse xmlns="{STS_NS}"><GetCallerIdentityResult>'
                             f"<Arn>arn:aws:iam::{root_account}:root</Arn><UserId>{root_account}</UserId>"
                             f"<Account>{root_account}</Account></GetCallerIdentityResult>"
                             f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                             f"</GetCallerIdentityResponse>")
            return error(501, "NotImplemented", "root access keys sign only sts:GetCallerIdentity in this double")
        if session is None:
            return error(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if token != session["token"]:
            return error(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        if time.time() >= session["expires"]:
            return error(403, "ExpiredToken", "The security token included in the request is expired")
        action = f"{service}:{params.get('Action', '')}"
        if action not in TASK_POLICIES[session["policy"]] or params.get("UserName"):
            # DenyAllOtherActionsOnAnyResource, or the deny on any resource but the root user.
            resource = f"user/{params['UserName']}" if params.get("UserName") else "root"
            return error(403, "AccessDenied", f"root session ({session['policy']}) is not authorized to perform: "
                                              f"{action} on resource: arn:aws:iam::{session['account']}:{resource}")
        return self.root_user_call(session["account"], params)

    def root_user_call(self, account: str, params: dict) -> tuple[int, str]:
        action = params.get("Action")
        with self.lock:
            keys = self.root_keys.setdefault(account, {})
            if action == "ListAccessKeys":
                members = "".join(
                    f"<member><AccessKeyId>{k}</AccessKeyId><Status>{v['status']}</Status>"
                    f"<CreateDate>{iso(v['created'])}</CreateDate></member>" for k, v in keys.items())
                return 200, iam_response("ListAccessKeys", f"<AccessKeyMetadata>{members}</AccessKeyMetadata>"
                                                           "<IsTruncated>false</IsTruncated>")
            if action == "DeleteAccessKey":
                wanted = params.get("AccessKeyId", "")
                if wanted not in keys:
                    return error(404, "NoSuchEntity", f"The Access Key with id {escape(wanted)} cannot be found.")
                del keys[wanted]
                return 200, iam_response("DeleteAccessKey", "")
        return error(501, "NotImplemented", f"{action} is allowed to this root session but not part of the double")


def iam_response(action: str, result: str) -> str:
    inner = f"<{action}Result>{result}</{action}Result>" if result else ""
    return (f'<{action}Response xmlns="{IAM_NS}">{inner}'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>")


def error(status: int, code: str, message: str) -> tuple[int, str]:
    kind = "Receiver" if status >= 500 else "Sender"
    return status, (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{escape(message)}"
                    f"</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")


def form_params(environ, body: bytes) -> dict:  # type: ignore[no-untyped-def]
    params = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
    return params


def serve(harness, environ, start_response, scope, path: str):  # type: ignore[no-untyped-def]
    """The double behind the harness: its control API, AssumeRoot, and its keys' calls."""
    import json

    from .common import identity_for

    double: RootAccessDouble = harness.root
    raw = harness.read_body(environ)
    if path.startswith("/_killswitch/root/"):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            data = {}
        answered = double.control(path, data if isinstance(data, dict) else {})
        status, payload = answered or (404, {"message": f"no control route {path}"})
        return harness.respond(start_response, status, payload, "application/json")
    params = form_params(environ, raw)
    key, service = scope.group(1), scope.group(3)
    if double.holds(key):
        status, xml = double.answer(key, service, params, environ.get("HTTP_X_AMZ_SECURITY_TOKEN"))
        return xml_response(start_response, status, xml)
    caller = identity_for(key).get("accountId")
    refused = double.check_assume_root(params, environ.get("HTTP_HOST", ""), caller, False)
    if refused is None:
        target = ACCOUNT_RE.fullmatch(params["TargetPrincipal"]).group(1)
        REQUEST.task_policy_arn = params["TaskPolicyArn.arn"]
        try:
            denial = harness.authorize(environ, raw, scope, caller, "AssumeRoot", f"arn:aws:iam::{target}:root")
        finally:
            REQUEST.task_policy_arn = None
        if denial is not None:
            status, payload = denial
            code = "AccessDenied" if payload["__type"] == "AccessDeniedException" else "InvalidClientTokenId"
            refused = (status, code, payload.get("Message") or payload.get("message", ""))
    if refused is not None:
        status, code, message = refused
        if code != "InvalidClientTokenId":
            harness.record(environ, scope, "AssumeRoot", None, None, code)
        return xml_response(start_response, *error(status, code, message))
    harness.record(environ, scope, "AssumeRoot", {"targetPrincipal": params["TargetPrincipal"],
                                                  "taskPolicyArn": {"arn": params["TaskPolicyArn.arn"]}}, None, None)
    return xml_response(start_response, 200, double.issue(params))


def xml_response(start_response, status: int, xml: str):  # type: ignore[no-untyped-def]
    data = xml.encode()
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 501: "Not Implemented"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "text/xml"), ("Content-Length", str(len(data))),
                                          ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [data]
