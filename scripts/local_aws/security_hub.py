"""The Security Hub BatchUpdateFindings double (moto answers 404)."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone

from .common import iso


class SecurityHubDouble:
    """Security Hub BatchUpdateFindings (moto answers 404 "Not yet implemented"), as strict as the
    documented API: the request shape is validated like the service model (InvalidInputException,
    HTTP 400), and only findings planted through the control API exist; any other identifier comes
    back in UnprocessedFindings (FindingNotFound) with HTTP 200, as AWS answers."""

    WORKFLOW = ("NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED")
    SEVERITY_LABELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
    VERIFICATION = ("UNKNOWN", "TRUE_POSITIVE", "FALSE_POSITIVE", "BENIGN_POSITIVE")
    UPDATE_FIELDS = ("Note", "Severity", "VerificationState", "Confidence", "Criticality", "Types",
                     "UserDefinedFields", "Workflow", "RelatedFindings")
    MAX_IDENTIFIERS = 100
    MAX_NOTE = 512

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (account, region, Id, ProductArn) -> finding
        self.findings: dict[tuple[str, str, str, str], dict] = {}
        self.calls: list[dict] = []

    def reset(self) -> None:
        with self.lock:
            self.findings.clear()
            self.calls.clear()

    def plant(self, account: str, region: str, finding_id: str, product_arn: str) -> dict:
        """A finding as Security Hub would hold it before anyone triaged it (planting it again
        starts it over)."""
        finding = {"account": account, "region": region, "Id": finding_id, "ProductArn": product_arn,
                   "Workflow": {"Status": "NEW"}, "Note": None, "Notes": [], "Updates": {}}
        with self.lock:
            self.findings[(account, region, finding_id, product_arn)] = finding
        return json.loads(json.dumps(finding))

    def snapshot(self) -> dict:
        with self.lock:
            return json.loads(json.dumps({"findings": list(self.findings.values()), "calls": self.calls}))

    @staticmethod
    def _non_empty(value) -> bool:  # type: ignore[no-untyped-def]
        return isinstance(value, str) and re.search(r"\S", value) is not None

    def validate(self, body) -> str | None:  # type: ignore[no-untyped-def]
        """Why the request is invalid input, or None."""
        if not isinstance(body, dict):
            return "The request body must be a JSON object."
        ids = body.get("FindingIdentifiers")
        if not isinstance(ids, list) or not ids:
            return "FindingIdentifiers is required and must contain at least one finding identifier."
        if len(ids) > self.MAX_IDENTIFIERS:
            return f"FindingIdentifiers can contain at most {self.MAX_IDENTIFIERS} finding identifiers."
        for i, ident in enumerate(ids):
            if not isinstance(ident, dict) or not self._non_empty(ident.get("Id")) or not self._non_empty(ident.get("ProductArn")):
                return f"FindingIdentifiers[{i}] must have a non-empty Id and ProductArn."
        if not any(field in body for field in self.UPDATE_FIELDS):
            return "At least one field to update must be provided besides FindingIdentifiers."
        if "Workflow" in body:
            workflow = body["Workflow"]
            if not isinstance(workflow, dict) or workflow.get("Status") not in self.WORKFLOW:
                return f"Workflow.Status must be one of {', '.join(self.WORKFLOW)}."
        if "Note" in body:
            note = body["Note"]
            if not isinstance(note, dict):
                return "Note must have Text and UpdatedBy."
            for field in ("Text", "UpdatedBy"):
                value = note.get(field)
                if not self._non_empty(value):
                    return f"Note.{field} is required and must not be empty."
                if len(value) > self.MAX_NOTE:
                    return f"Note.{field} must be at most {self.MAX_NOTE} characters."
        for field in ("Confidence", "Criticality"):
            if field in body and (isinstance(body[field], bool) or not isinstance(body[field], int) or not 0 <= body[field] <= 100):
                return f"{field} must be an integer from 0 to 100."
        if "Severity" in body:
            severity = body["Severity"]
            if not isinstance(severity, dict) or not severity:
                return "Severity must provide Label, Normalized or Product."
            if "Label" in severity and severity["Label"] not in self.SEVERITY_LABELS:
                return f"Severity.Label must be one of {', '.join(self.SEVERITY_LABELS)}."
            normalized = severity.get("Normalized", 0)
            if isinstance(normalized, bool) or not isinstance(normalized, int) or not 0 <= normalized <= 100:
                return "Severity.Normalized must be an integer from 0 to 100."
            if "Product" in severity and (isinstance(severity["Product"], bool) or not isinstance(severity["Product"], (int, float))):
                return "Severity.Product must be a number."
        if "VerificationState" in body and body["VerificationState"] not in self.VERIFICATION:
            return f"VerificationState must be one of {', '.join(self.VERIFICATION)}."
        if "Types" in body and (not isinstance(body["Types"], list) or not all(self._non_empty(t) for t in body["Types"])):
            return "Types must be a list of non-empty strings."
        if "UserDefinedFields" in body:
            fields = body["UserDefinedFields"]
            if not isinstance(fields, dict) or not all(self._non_empty(k) and self._non_empty(v) for k, v in fields.items()):
                return "UserDefinedFields must map non-empty strings to non-empty strings."
        if "RelatedFindings" in body:
            related = body["RelatedFindings"]
            if not isinstance(related, list) or not all(
                    isinstance(r, dict) and self._non_empty(r.get("Id")) and self._non_empty(r.get("ProductArn")) for r in related):
                return "RelatedFindings must be a list of {Id, ProductArn} with non-empty values."
        return None

    def batch_update(self, body, account: str, region: str, key: str | None = None) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
        """Validate, apply to the planted findings, and record the call whatever its outcome."""
        problem = self.validate(body)
        now = datetime.now(timezone.utc)
        call = {"account": account, "region": region, "accessKeyId": key, "time": iso(now), "body": body}
        if problem:
            with self.lock:
                self.calls.append({**call, "status": 400, "error": "InvalidInputException"})
            return 400, {"__type": "InvalidInputException", "Code": "InvalidInputException", "Message": problem}
        processed: list[dict] = []
        unprocessed: list[dict] = []
        seen: set[tuple[str, str]] = set()
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        with self.lock:
            for ident in body["FindingIdentifiers"]:
                pair = {"Id": ident["Id"], "ProductArn": ident["ProductArn"]}
                finding = self.findings.get((account, region, ident["Id"], ident["ProductArn"]))
                if (ident["Id"], ident["ProductArn"]) in seen:
                    unprocessed.append({"FindingIdentifier": pair, "ErrorCode": "DuplicatedFindingIdentifier",
                                        "ErrorMessage": "Finding Identifier is duplicated"})
                    continue
                seen.add((ident["Id"], ident["ProductArn"]))
                if finding is None:
                    unprocessed.append({"FindingIdentifier": pair, "ErrorCode": "FindingNotFound",
                                        "ErrorMessage": "Finding Not Found"})
                    continue
                if "Workflow" in body:
                    finding["Workflow"] = {"Status": body["Workflow"]["Status"]}
                if "Note" in body:
                    note = {"Text": body["Note"]["Text"], "UpdatedBy": body["Note"]["UpdatedBy"], "UpdatedAt": stamp}
                    finding["Note"] = note
                    finding["Notes"].append(note)
                for field in self.UPDATE_FIELDS:
                    if field in body and field not in ("Workflow", "Note"):
                        finding["Updates"][field] = body[field]
                processed.append(pair)
            self.calls.append({**call, "status": 200, "processed": processed, "unprocessed": unprocessed})
        return 200, {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}
