"""The harness control API (test-only), served by harness.Harness.

Control endpoints (test-only, under /_killswitch/):
  GET  /_killswitch/health
  POST /_killswitch/cloudtrail/events   {"events": [<CloudTrail record>, ...]} seeds records
  POST /_killswitch/cloudtrail/faults   {"fail_regions": ["eu-west-1"], "fail_all": false}
                                        or {"key": "AKIA...", "on": true} (lookups for one key fail)
  POST /_killswitch/cloudtrail/lag      {"key": "AKIA...", "seconds": 150}: that key's events are
                                        delivered 150 s after their eventTime ({"seconds": N} alone
                                        sets the default for every key)
  POST /_killswitch/cloudtrail/reset    forgets recorded events, faults, lags and rate state
  POST /_killswitch/securityhub/findings  {"account": "123456789012", "region": "us-east-1", "Id": "...",
                                        "ProductArn": "..."} plants a finding, workflow NEW (again: anew)
  POST /_killswitch/guardduty/findings  {"account": "123456789012", "finding": <detail of a GuardDuty
                                        Finding event>}: GuardDuty raised it (the account's
                                        detector in the finding's Region holds it for GetFindings)
  POST /_killswitch/guardduty/detector  {"account": "123456789012", "region": "eu-west-1", "enabled": false}:
                                        GuardDuty off (or on again) in that Region
  POST /_killswitch/guardduty/reset     forgets raised findings, every Region enabled again
  GET  /_killswitch/securityhub/findings  {"findings": [...], "calls": [...]}: workflow, notes history
  POST /_killswitch/securityhub/reset   forgets findings and calls (cloudtrail/reset leaves them)
  GET  /_killswitch/iam/lag             {"seconds": D}: the propagation lag authorization runs with
                                        (KILLSWITCH_IAM_LAG_SECONDS at start; see lag.py)
  GET  /_killswitch/eventbridge/events?after=SEQ  {"events": [{"seq": N, "event": <envelope>}]}: the
                                        `AWS API Call via CloudTrail` events delivered so far with
                                        seq > SEQ (see eventbridge.py)
  POST /_killswitch/eventbridge/delay   {"seconds": x}: delivery delay of later events (GET: {"seconds": x})
  POST /_killswitch/identitycenter/seed  {"account": "123456789012", "permission_set": "Developer",
                                        "user_name": "alice@example.com", "via_group": false}: as Identity
                                        Center's administrator, the permission set (reused by name;
                                        KillSwitchDeny referenced, inline policy allowing everything), the
                                        user, the assignment to the user (via_group: to group
                                        killswitch-drill-<permission set>, the user added), provisioned into
                                        the account; idempotent. 200 {"permission_set_arn", "instance_arn",
                                        "identity_store_id", "user_id", "group_id", "role_name", "role_arn",
                                        "role_id"}; a referenced policy missing in the account: 400
                                        {"error": "ValidationException"} and nothing created
  POST /_killswitch/identitycenter/portal-credentials  {"account", "permission_set_arn", "user_name"}:
                                        the access portal's GetRoleCredentials: 200 {"AccessKeyId",
                                        "SecretAccessKey", "SessionToken", "Expiration", "UserId", "RoleName",
                                        "PrincipalId"} while the permission set is assigned to the user
                                        (directly or through a group) and provisioned in the account, else
                                        403 {"error": "ForbiddenException", "message": "No access"}; an
                                        unknown user 401 UnauthorizedException
"""

from __future__ import annotations

import json
import urllib.parse
import uuid

from .common import ACCOUNT_ID
from .identity_center_control import identity_center_portal_credentials, identity_center_seed
from .lag import JOURNAL, lag_seconds


class ControlApi:
    """The control endpoints, for Harness (which provides trail, hub, guardduty, bus, read_body
    and respond)."""

    def guardduty_control(self, start_response, path, data):
        account = str(data.get("account", ACCOUNT_ID))
        if path == "/_killswitch/guardduty/findings" and isinstance(data.get("finding"), dict):
            status, payload = self.guardduty.raise_finding(account, data["finding"])
            return self.respond(start_response, status, payload)
        if path == "/_killswitch/guardduty/detector" and isinstance(data.get("region"), str):
            self.guardduty.set_enabled(account, data["region"], bool(data.get("enabled", True)))
            return self.respond(start_response, 200, {"status": "ok"})
        if path == "/_killswitch/guardduty/reset":
            self.guardduty.reset()
            return self.respond(start_response, 200, {"status": "ok"})
        return self.respond(start_response, 400, {"message": "guardduty control: see control.py for the shapes"})

    def propagation_control(self, environ, start_response, path, data):
        """The lag and the EventBridge bus (None when `path` is neither's)."""
        if path == "/_killswitch/iam/lag":
            return self.respond(start_response, 200, {"seconds": lag_seconds()})
        if path == "/_killswitch/eventbridge/events":
            query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
            try:
                after = int(query.get("after", "0"))
            except ValueError:
                return self.respond(start_response, 400, {"message": "after must be an integer"})
            return self.respond(start_response, 200, {"events": self.bus.delivered(after)})
        if path == "/_killswitch/eventbridge/delay" and environ.get("REQUEST_METHOD") == "GET":
            return self.respond(start_response, 200, {"seconds": self.bus.delay})
        if path == "/_killswitch/eventbridge/delay":
            try:
                self.bus.set_delay(data.get("seconds"))
            except (TypeError, ValueError) as error:
                return self.respond(start_response, 400, {"message": str(error)})
            return self.respond(start_response, 200, {"seconds": self.bus.delay})
        return None

    def control(self, environ, start_response, path):
        body = self.read_body(environ)
        data = json.loads(body or b"{}")
        answered = self.propagation_control(environ, start_response, path, data)
        if answered is not None:
            return answered
        if path == "/_killswitch/health":
            return self.respond(start_response, 200, {"status": "ok", **self.trail.stats()})
        if path == "/_killswitch/cloudtrail/events":
            for record in data.get("events", []):
                record.setdefault("eventID", str(uuid.uuid4()))
                record.setdefault("recipientAccountId", ACCOUNT_ID)
                self.trail.add(record)
            return self.respond(start_response, 200, {"added": len(data.get("events", []))})
        if path == "/_killswitch/cloudtrail/faults":
            with self.trail.lock:
                if "key" in data:
                    # Scoped to one access key, so parallel tests and drills do not disturb each other.
                    (self.trail.fail_keys.add if data.get("on") else self.trail.fail_keys.discard)(data["key"])
                else:
                    self.trail.fail_regions = set(data.get("fail_regions", []))
                    self.trail.fail_all = bool(data.get("fail_all", False))
            return self.respond(start_response, 200, {"status": "ok"})
        if path == "/_killswitch/cloudtrail/lag":
            with self.trail.lock:
                if "key" in data:
                    self.trail.lag_keys[data["key"]] = float(data.get("seconds", 0))
                else:
                    self.trail.lag_default = float(data.get("seconds", 0))
            return self.respond(start_response, 200, {"status": "ok"})
        if path == "/_killswitch/cloudtrail/reset":
            self.trail.reset()
            return self.respond(start_response, 200, {"status": "ok"})
        if path == "/_killswitch/securityhub/findings" and environ.get("REQUEST_METHOD") == "GET":
            return self.respond(start_response, 200, self.hub.snapshot())
        if path.startswith("/_killswitch/guardduty/"):
            return self.guardduty_control(start_response, path, data)
        if path == "/_killswitch/securityhub/findings":
            if not (isinstance(data.get("Id"), str) and data["Id"].strip()
                    and isinstance(data.get("ProductArn"), str) and data["ProductArn"].strip()):
                return self.respond(start_response, 400, {"message": "Id and ProductArn are required"})
            finding = self.hub.plant(str(data.get("account", ACCOUNT_ID)), str(data.get("region", "us-east-1")),
                                     data["Id"], data["ProductArn"])
            return self.respond(start_response, 200, {"finding": finding})
        if path == "/_killswitch/securityhub/reset":
            # Independent of cloudtrail/reset: each double is reset on its own.
            self.hub.reset()
            return self.respond(start_response, 200, {"status": "ok"})
        if path == "/_killswitch/identitycenter/seed":
            status, payload = identity_center_seed(data)
            JOURNAL.record()
            return self.respond(start_response, status, payload, "application/json")
        if path == "/_killswitch/identitycenter/portal-credentials":
            status, payload = identity_center_portal_credentials(data)
            return self.respond(start_response, status, payload, "application/json")
        return self.respond(start_response, 404, {"message": "unknown control path"})
