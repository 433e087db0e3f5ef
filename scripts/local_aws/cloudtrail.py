"""The CloudTrail LookupEvents double (moto has none), and the shapes of the management events the
harness records for every authenticated call (see harness.Harness.record)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone

from .common import ACCOUNT_ID, parse_iso

RATE_PER_SECOND = 2.0
RETENTION = timedelta(days=90)
LOOKUP_KEYS = {
    "EventId": "eventID",
    "EventName": "eventName",
    "ReadOnly": "readOnly",
    "Username": None,
    "ResourceType": None,
    "ResourceName": None,
    "EventSource": "eventSource",
    "AccessKeyId": None,
}


class CloudTrailDouble:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[dict] = []
        # (account, region, access key) -> events: a lookup by AccessKeyId reads only its own
        # events, so a large store does not slow every call down (and blur the rate limiter).
        self.by_key: dict[tuple[str, str, str], list[dict]] = {}
        self.fail_regions: set[str] = set()
        self.fail_all = False
        self.fail_keys: set[str] = set()
        self.accepted: dict[tuple[str, str], list[float]] = {}
        self.lag_default = 0.0
        self.lag_keys: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.throttled: dict[str, int] = {}

    def reset(self) -> None:
        with self.lock:
            self.events.clear()
            self.by_key.clear()
            self.fail_regions.clear()
            self.fail_keys.clear()
            self.fail_all = False
            self.accepted.clear()
            self.lag_keys.clear()
            self.lag_default = 0.0
            self.calls.clear()
            self.throttled.clear()

    def add(self, record: dict) -> None:
        with self.lock:
            self.events.append(record)
            key = (record.get("recipientAccountId", ACCOUNT_ID), record.get("awsRegion"),
                   (record.get("userIdentity") or {}).get("accessKeyId"))
            self.by_key.setdefault(key, []).append(record)

    def stats(self) -> dict:
        with self.lock:
            return {"calls": dict(self.calls), "throttled": dict(self.throttled), "events": len(self.events)}

    def _take_token(self, account: str, region: str, arrived: float | None = None) -> bool:
        """At most RATE_PER_SECOND calls answered within any 1-second window (inclusive), by
        arrival time: AWS counts requests as they reach it, not as a busy server gets to them."""
        now = arrived if arrived is not None else time.monotonic()
        recent = [t for t in self.accepted.get((account, region), []) if abs(now - t) <= 1.0]
        if len(recent) >= RATE_PER_SECOND:
            self.accepted[(account, region)] = recent
            return False
        recent.append(now)
        self.accepted[(account, region)] = recent
        return True

    def _delivered(self, event: dict, now: datetime) -> bool:
        key = (event.get("userIdentity") or {}).get("accessKeyId")
        lag = self.lag_keys.get(key, self.lag_default)
        return parse_iso(event["eventTime"]) + timedelta(seconds=lag) <= now

    def lookup(self, body: dict, region: str, account: str, arrived: float | None = None) -> tuple[int, dict]:
        with self.lock:
            self.calls[region] = self.calls.get(region, 0) + 1
            asked_key = next((a.get("AttributeValue") for a in body.get("LookupAttributes") or []
                              if a.get("AttributeKey") == "AccessKeyId"), None)
            if self.fail_all or region in self.fail_regions or asked_key in self.fail_keys:
                return 500, {"__type": "InternalFailure", "message": "injected fault"}
            if not self._take_token(account, region, arrived):
                self.throttled[region] = self.throttled.get(region, 0) + 1
                return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
            delivered_by = datetime.now(timezone.utc)
            source = self.events
            if asked_key is not None:
                source = self.by_key.get((account, region, asked_key), [])
            events = [e for e in source if e.get("awsRegion") == region and e.get("recipientAccountId", ACCOUNT_ID) == account
                      and self._delivered(e, delivered_by)]
        attrs = body.get("LookupAttributes") or []
        if len(attrs) > 1:
            return 400, {"__type": "InvalidLookupAttributesException", "message": "Only one lookup attribute is allowed"}
        max_results = body.get("MaxResults", 50)
        if not isinstance(max_results, int) or not 1 <= max_results <= 50:
            return 400, {"__type": "InvalidMaxResultsException", "message": "MaxResults must be between 1 and 50"}
        now = datetime.now(timezone.utc)
        end = datetime.fromtimestamp(float(body["EndTime"]), timezone.utc) if "EndTime" in body else now
        start = datetime.fromtimestamp(float(body["StartTime"]), timezone.utc) if "StartTime" in body else now - RETENTION
        if start > end:
            return 400, {"__type": "InvalidTimeRangeException", "message": "StartTime is after EndTime"}
        start = max(start, now - RETENTION)
        fingerprint = hashlib.sha256(
            json.dumps({k: body.get(k) for k in ("LookupAttributes", "StartTime", "EndTime", "MaxResults")}, sort_keys=True).encode()
        ).hexdigest()[:16]
        offset = 0
        if body.get("NextToken"):
            try:
                token = json.loads(base64.b64decode(body["NextToken"]))
                if token["f"] != fingerprint:
                    raise ValueError("parameters changed")
                offset = int(token["o"])
            except Exception:
                return 400, {"__type": "InvalidNextTokenException", "message": "Invalid NextToken"}
        if attrs:
            key, value = attrs[0].get("AttributeKey"), attrs[0].get("AttributeValue")
            if key not in LOOKUP_KEYS:
                return 400, {"__type": "InvalidLookupAttributesException", "message": f"Unknown AttributeKey {key}"}
            events = [e for e in events if self._matches(e, key, value)]
        events = [e for e in events if start <= parse_iso(e["eventTime"]) <= end]
        events.sort(key=lambda e: (e["eventTime"], e["eventID"]), reverse=True)
        page = events[offset : offset + max_results]
        result: dict = {"Events": [self._summary(e) for e in page]}
        if offset + max_results < len(events):
            result["NextToken"] = base64.b64encode(json.dumps({"f": fingerprint, "o": offset + max_results}).encode()).decode()
        return 200, result

    @staticmethod
    def _matches(event: dict, key: str, value: str) -> bool:
        ident = event.get("userIdentity") or {}
        if key == "AccessKeyId":
            return ident.get("accessKeyId") == value
        if key == "Username":
            return ident.get("userName") == value or (ident.get("sessionContext") or {}).get("sessionIssuer", {}).get("userName") == value
        if key == "ReadOnly":
            return str(event.get("readOnly")).lower() == str(value).lower()
        if key in ("ResourceType", "ResourceName"):
            field = "type" if key == "ResourceType" else "ARN"
            return any(r.get(field) == value for r in event.get("resources") or [])
        return event.get(LOOKUP_KEYS[key]) == value

    @staticmethod
    def _summary(event: dict) -> dict:
        ident = event.get("userIdentity") or {}
        return {
            "EventId": event["eventID"],
            "EventName": event.get("eventName"),
            "ReadOnly": str(bool(event.get("readOnly"))).lower(),
            "AccessKeyId": ident.get("accessKeyId"),
            "EventTime": parse_iso(event["eventTime"]).timestamp(),
            "EventSource": event.get("eventSource"),
            "Username": ident.get("userName") or (ident.get("sessionContext") or {}).get("sessionIssuer", {}).get("userName"),
            "Resources": [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")} for r in event.get("resources") or []],
            "CloudTrailEvent": json.dumps(event),
        }


def event_name(environ: dict, params: dict) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.split(".")[-1]
    return params.get("Action", f"{environ.get('REQUEST_METHOD', 'GET')}Request")


def error_code(body: bytes) -> str | None:
    text = body[:4096].decode("utf-8", "replace")
    m = re.search(r"<Code>([^<]+)</Code>", text) or re.search(r'"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"', text)
    return m.group(1) if m else None


# Request parameters CloudTrail never records (AWS leaves passwords and tokens out of the record).
SECRET_PARAMETERS = {"Password", "OldPassword", "NewPassword", "PrivateKey", "WebIdentityToken", "SAMLAssertion"}


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def camel(params: dict) -> dict:
    """Query parameters as CloudTrail writes requestParameters: camelCase keys, lists for
    `X.member.N` (`tagKeys: [..]`), lists of objects for `X.member.N.Field` (`tags: [{key, value}]`),
    and never a password or token."""
    out: dict = {}
    lists: dict = {}
    for key, value in params.items():
        if key in ("Action", "Version") or key in SECRET_PARAMETERS:
            continue
        parts = key.split(".")
        if len(parts) in (3, 4) and parts[1] == "member" and parts[2].isdigit():
            items = lists.setdefault(_lower_first(parts[0]), {})
            if len(parts) == 3:
                items[int(parts[2])] = value
            else:
                entry = items.setdefault(int(parts[2]), {})
                if isinstance(entry, dict):
                    entry[_lower_first(parts[3])] = value
        else:
            out[_lower_first(key)] = value
    for name, items in lists.items():
        out[name] = [items[i] for i in sorted(items)]
    return out


def _xml(body: bytes, tag: str) -> str | None:
    m = re.search(rb"<" + tag.encode() + rb">([^<]*)</" + tag.encode() + rb">", body)
    return m.group(1).decode() if m else None


def iam_date(value: str | None) -> str | None:
    """An IAM timestamp as CloudTrail writes it in IAM responseElements ("Jan 5, 2026, 4:07:09 PM")."""
    if not value:
        return None
    try:
        t = parse_iso(value)
    except ValueError:
        return value
    return f"{t:%b} {t.day}, {t.year}, {t.hour % 12 or 12}:{t:%M:%S} {t:%p}"


def response_elements(name: str, body: bytes) -> dict | None:
    """responseElements as CloudTrail records them for the calls a responder reads: never a secret
    access key, session token or password."""
    if name == "CreateAccessKey" and _xml(body, "AccessKeyId"):
        return {"accessKey": {"accessKeyId": _xml(body, "AccessKeyId"), "status": _xml(body, "Status") or "Active",
                              "userName": _xml(body, "UserName"), "createDate": iam_date(_xml(body, "CreateDate"))}}
    if name == "CreateLoginProfile" and _xml(body, "UserName"):
        return {"loginProfile": {"userName": _xml(body, "UserName"), "createDate": iam_date(_xml(body, "CreateDate")),
                                 "passwordResetRequired": _xml(body, "PasswordResetRequired") == "true"}}
    if name == "CreateRole" and _xml(body, "Arn"):
        return {"role": {"path": _xml(body, "Path"), "roleName": _xml(body, "RoleName"), "roleId": _xml(body, "RoleId"),
                         "arn": _xml(body, "Arn"), "createDate": iam_date(_xml(body, "CreateDate"))}}
    if name in ("AssumeRole", "GetSessionToken", "GetFederationToken", "AssumeRoleWithWebIdentity") \
            and _xml(body, "AccessKeyId"):
        elements: dict = {"credentials": {"accessKeyId": _xml(body, "AccessKeyId"),
                                          "expiration": iam_date(_xml(body, "Expiration"))}}
        if _xml(body, "AssumedRoleId"):
            elements["assumedRoleUser"] = {"assumedRoleId": _xml(body, "AssumedRoleId"), "arn": _xml(body, "Arn")}
        if _xml(body, "FederatedUserId"):
            elements["federatedUser"] = {"federatedUserId": _xml(body, "FederatedUserId"), "arn": _xml(body, "Arn")}
        return elements
    return None
