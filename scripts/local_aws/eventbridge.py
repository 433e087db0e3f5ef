"""CloudTrail -> EventBridge: the `AWS API Call via CloudTrail` events a rule on the default bus
would receive for the calls the harness serves, delivered after a delay.

Emitted for every successful IAM write (source aws.iam, Region us-east-1, as IAM's events are)
and every successful STS AssumeRole, GetSessionToken, GetFederationToken and
AssumeRoleWithWebIdentity (source aws.sts, the Region of the SigV4 scope: Regional endpoints
deliver in their Region). A failed call emits nothing (the rules filter on success, and a
contained key's refused calls must not reach the function). The detail is the CloudTrail record
(harness.Harness.record): never a secret access key, session token or password.

Delivery: an event becomes visible `KILLSWITCH_EVENTBRIDGE_DELAY_SECONDS` (default 2) after the
call; `POST /_killswitch/eventbridge/delay {"seconds": x}` changes it for later events;
`GET /_killswitch/eventbridge/events?after=SEQ` answers `{"events": [{"seq": N, "event": {...}}]}`
for the delivered events with seq > SEQ, in order.
"""

from __future__ import annotations

import copy
import os
import threading
import time
import uuid

DELAY_ENV = "KILLSWITCH_EVENTBRIDGE_DELAY_SECONDS"
STS_EVENTS = {"AssumeRole", "GetSessionToken", "GetFederationToken", "AssumeRoleWithWebIdentity"}


def _seconds(raw, name: str) -> float:  # type: ignore[no-untyped-def]
    value = float(raw)
    if not 0 <= value < float("inf"):
        raise ValueError(f"{name}={raw!r}: want a number of seconds >= 0")
    return value


def emitted(service: str, record: dict) -> str | None:
    """The event's source when this successful call emits one, else None."""
    if record.get("errorCode"):
        return None
    if service == "iam" and not record.get("readOnly"):
        return "aws.iam"
    if service == "sts" and record.get("eventName") in STS_EVENTS:
        return "aws.sts"
    return None


def envelope(record: dict, source: str) -> dict:
    detail = copy.deepcopy(record)
    if source == "aws.iam":
        detail["awsRegion"] = "us-east-1"
    context = (detail.get("userIdentity") or {}).get("sessionContext")
    if isinstance(context, dict):
        context.setdefault("attributes", {"creationDate": detail["eventTime"], "mfaAuthenticated": "false"})
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": source,
        "account": detail.get("recipientAccountId"),
        "time": detail["eventTime"],
        "region": detail["awsRegion"],
        "resources": [],
        "detail": detail,
    }


class EventBus:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delay = _seconds(os.environ.get(DELAY_ENV, "2") or "2", DELAY_ENV)
        self.events: list[tuple[int, float, dict]] = []
        self.seq = 0

    def set_delay(self, seconds) -> None:  # type: ignore[no-untyped-def]
        delay = _seconds(seconds, "seconds")
        with self.lock:
            self.delay = delay

    def offer(self, service: str, record: dict) -> None:
        source = emitted(service, record)
        if source is None:
            return
        event = envelope(record, source)
        with self.lock:
            self.seq += 1
            # Never before an earlier event: a poller's `after` then skips nothing.
            due = max(time.monotonic() + self.delay, self.events[-1][1] if self.events else 0.0)
            self.events.append((self.seq, due, event))

    def delivered(self, after: int) -> list[dict]:
        now = time.monotonic()
        with self.lock:
            return [{"seq": seq, "event": event} for seq, due, event in self.events if seq > after and due <= now]

    def reset(self) -> None:
        with self.lock:
            self.events.clear()
