"""The GuardDuty double (moto has no GetFindings): detectors and the findings they hold, as
strict as the documented REST API.

Every account has one detector per Region, as when GuardDuty is enabled organization-wide, with
the ID the events/ fixtures name (DETECTOR); the control API can switch GuardDuty off in a Region.
A finding exists only once the control API raised it (as GuardDuty would have): GetFindings
answers unknown IDs by leaving them out, and refuses a detector the account does not own. An
attack sequence (`AttackSequence:IAM/CompromisedCredentials`) is held as raised, and only with the
members its API shape requires."""

from __future__ import annotations

import json
import re
import threading

DETECTOR = "12abc34d567e8fa901bc2d34e56789f0"
FINDINGS_GET = re.compile(r"^/detector/([^/]+)/findings/get$")
DETECTOR_PATH = re.compile(r"^/detector/([^/]+)$")
MAX_FINDING_IDS = 50


class GuardDutyDouble:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (account, region) -> finding ID -> finding (the EventBridge `detail` shape, camelCase)
        self.findings: dict[tuple[str, str], dict[str, dict]] = {}
        # (account, region) without a detector
        self.disabled: set[tuple[str, str]] = set()

    def reset(self) -> None:
        with self.lock:
            self.findings.clear()
            self.disabled.clear()

    def raise_finding(self, account: str, finding: dict) -> tuple[int, dict]:
        """Holds `finding` as the account's detector in its Region would (raised again: replaced,
        as a re-emit updates it)."""
        region, finding_id = finding.get("region"), finding.get("id")
        if not (isinstance(region, str) and isinstance(finding_id, str) and finding_id):
            return 400, {"message": "a finding needs an id and a region"}
        if (finding.get("resource") or {}).get("resourceType") == "AttackSequence" and not is_sequence(finding):
            return 400, {"message": "an attack sequence needs service.detection.sequence with uid, description "
                                    "and 1 to 100 signals (GuardDuty's Sequence)"}
        with self.lock:
            self.findings.setdefault((account, region), {})[finding_id] = json.loads(json.dumps(finding))
        return 200, {"raised": finding_id, "detector": DETECTOR}

    def set_enabled(self, account: str, region: str, enabled: bool) -> None:
        with self.lock:
            (self.disabled.discard if enabled else self.disabled.add)((account, region))

    def detector(self, account: str, region: str) -> str | None:
        with self.lock:
            return None if (account, region) in self.disabled else DETECTOR

    @staticmethod
    def operation(method: str, path: str) -> str | None:
        """The GuardDuty operation a REST call is, for authorization; None if the double lacks it."""
        if method == "GET" and path == "/detector":
            return "ListDetectors"
        if method == "POST" and FINDINGS_GET.match(path):
            return "GetFindings"
        if method == "GET" and DETECTOR_PATH.match(path):
            return "GetDetector"
        return None

    def answer(self, operation: str, path: str, body: bytes, account: str, region: str) -> tuple[int, dict]:
        """(status, JSON body) for one authorized GuardDuty call."""
        own = self.detector(account, region)
        if operation == "ListDetectors":
            return 200, {"detectorIds": [own] if own else []}
        if operation == "GetFindings":
            return self.get_findings(FINDINGS_GET.match(path).group(1), body, account, region)
        if DETECTOR_PATH.match(path).group(1) != own:
            return 400, not_owned()
        return 200, {"status": "ENABLED", "findingPublishingFrequency": "SIX_HOURS",
                     "serviceRole": f"arn:aws:iam::{account}:role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty",
                     "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z",
                     "tags": {}}

    def get_findings(self, detector: str, body: bytes, account: str, region: str) -> tuple[int, dict]:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {"__type": "BadRequestException", "message": "The request body is not valid JSON."}
        ids = request.get("findingIds") if isinstance(request, dict) else None
        if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_FINDING_IDS or not all(isinstance(i, str) for i in ids):
            return 400, {"__type": "BadRequestException",
                         "message": f"findingIds must hold 1 to {MAX_FINDING_IDS} finding IDs."}
        if detector != self.detector(account, region):
            return 400, not_owned()
        with self.lock:
            held = self.findings.get((account, region), {})
            # Unknown IDs are simply absent from the answer.
            return 200, {"findings": [json.loads(json.dumps(held[i])) for i in ids if i in held]}


def is_sequence(finding: dict) -> bool:
    """The members GuardDuty's API requires of an attack sequence (`Sequence`): without them
    GetFindings could not be answered, as no real detector would hold such a finding."""
    sequence = ((finding.get("service") or {}).get("detection") or {}).get("sequence")
    if not isinstance(sequence, dict):
        return False
    signals = sequence.get("signals")
    return (isinstance(sequence.get("uid"), str) and isinstance(sequence.get("description"), str)
            and isinstance(signals, list) and 1 <= len(signals) <= 100)


def not_owned() -> dict:
    return {"__type": "BadRequestException",
            "message": "The request is rejected because the input detectorId is not owned by the current account."}
