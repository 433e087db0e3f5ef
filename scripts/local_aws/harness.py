"""The WSGI middleware in front of moto: the control API, the LookupEvents, ListRegions and
BatchUpdateFindings doubles, and the recorder that keeps every authenticated call as a CloudTrail
management event."""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

from .cloudtrail import CloudTrailDouble, camel, error_code, event_name, response_elements
from .common import ACCOUNT_ID, REQUEST, identity_for, iso
from .control import ControlApi
from .eventbridge import EventBus
from .guardduty import GuardDutyDouble
from .lag import JOURNAL
from .root_access import RootAccessDouble, serve as serve_root_access
from .security_hub import SecurityHubDouble

SCOPE_RE = re.compile(r"Credential=([A-Z0-9]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
# (the last two: what JSON-protocol services such as Organizations answer for the first two)
# Services whose writes change what authorization reads (the propagation lag's journal).
AUTHORIZATION_STATE = {"iam", "organizations", "cloudformation", "sso", "identitystore"}
UNAUTHENTICATED = ("InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId",
                   "UnrecognizedClientException", "InvalidSignatureException")
# account:ListRegions (moto has none): the 17 Regions enabled by default, and opt-in ones left off.
DEFAULT_REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
    "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "sa-east-1",
]
# CloudTrail's readOnly: reads, and STS's credential calls (AWS records AssumeRole as read-only).
READ_ONLY = re.compile(r"(Get|List|Describe|Lookup|Head|AssumeRole)")
OPT_IN_REGIONS = ["af-south-1", "ap-east-1", "me-south-1", "eu-south-1", "me-central-1", "il-central-1"]


class Harness(ControlApi):
    """WSGI middleware in front of moto: control API, LookupEvents and BatchUpdateFindings
    doubles, call recorder."""

    def __init__(self, moto_app, trail: CloudTrailDouble, hub: SecurityHubDouble | None = None) -> None:
        self.moto_app = moto_app
        self.trail = trail
        self.hub = hub or SecurityHubDouble()
        self.guardduty = GuardDutyDouble()
        self.root = RootAccessDouble()
        self.bus = EventBus()

    def __call__(self, environ, start_response):
        environ["killswitch.arrived"] = REQUEST.arrived = time.monotonic()
        path = environ.get("PATH_INFO", "")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = SCOPE_RE.search(auth)
        if path.startswith("/_killswitch/root/") or self.root.wants(environ, scope, self.read_body):
            return serve_root_access(self, environ, start_response, scope, path)
        if path.startswith("/_killswitch/"):
            return self.control(environ, start_response, path)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if "CloudTrail_20131101." in target:
            return self.cloudtrail(environ, start_response, target, scope)
        if path == "/listRegions" and scope and scope.group(3) == "account":
            return self.list_regions(environ, start_response)
        if (path == "/findings/batchupdate" and scope and scope.group(3) == "securityhub"
                and environ.get("REQUEST_METHOD") == "PATCH"):
            return self.batch_update_findings(environ, start_response, scope)
        if scope and scope.group(3) == "guardduty":
            return self.guardduty_call(environ, start_response, scope)
        if not scope:
            return self.unsigned(environ, start_response)
        return self.recorded(environ, start_response, scope)

    def read_body(self, environ) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def respond(self, start_response, status: int, payload: dict, content_type: str = "application/x-amz-json-1.1"):
        data = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  500: "Internal Server Error"}[status]
        headers = [("Content-Type", content_type), ("Content-Length", str(len(data))),
                   ("x-amzn-RequestId", str(uuid.uuid4()))]
        if status != 200 and "__type" in payload:
            headers.append(("x-amzn-ErrorType", payload["__type"]))
        start_response(f"{status} {reason}", headers)
        return [data]

    def cloudtrail(self, environ, start_response, target, scope):
        region = scope.group(2) if scope else "us-east-1"
        operation = target.rsplit(".", 1)[1]
        if operation != "LookupEvents":
            # Trails (CreateTrail, GetTrailStatus, …) are moto's; only LookupEvents is the double.
            return self.recorded(environ, start_response, scope) if scope else self.moto_app(environ, start_response)
        try:
            body = json.loads(self.read_body(environ) or b"{}")
        except ValueError:
            return self.respond(start_response, 400, {"__type": "SerializationException", "message": "bad JSON"})
        account = ACCOUNT_ID
        if scope:
            account = identity_for(scope.group(1)).get("accountId", ACCOUNT_ID)
        status, payload = self.trail.lookup(body, region, account, environ.get("killswitch.arrived"))
        return self.respond(start_response, status, payload)

    def list_regions(self, environ, start_response):
        body = json.loads(self.read_body(environ) or b"{}")
        regions = [{"RegionName": r, "RegionOptStatus": "ENABLED_BY_DEFAULT"} for r in DEFAULT_REGIONS]
        regions += [{"RegionName": r, "RegionOptStatus": "DISABLED"} for r in OPT_IN_REGIONS]
        wanted = body.get("RegionOptStatusContains")
        if wanted:
            regions = [r for r in regions if r["RegionOptStatus"] in wanted]
        data = json.dumps({"Regions": regions}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def recorded(self, environ, start_response, scope):
        body = self.read_body(environ)
        params = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        REQUEST.body = body
        try:
            chunks = list(self.moto_app(environ, capture))
        finally:
            REQUEST.body = None
        response = b"".join(chunks)
        key, region, service = scope.group(1), scope.group(2), scope.group(3)
        name = event_name(environ, params)
        code = error_code(response) if captured.get("status", 200) >= 400 else None
        if code:
            print(f"{service} {name} by {key} -> {captured.get('status')} {code}: {response[:300]!r}", file=sys.stderr, flush=True)
        if code not in UNAUTHENTICATED:
            self.record(environ, scope, name, camel(params) or None,
                        response_elements(name, response) if code is None else None, code)
        if code is None and service in AUTHORIZATION_STATE and not READ_ONLY.match(name):
            JOURNAL.record()
        return [response]

    def unsigned(self, environ, start_response):
        """A call without SigV4 (STS AssumeRoleWithWebIdentity, the only one a holder uses here):
        served by moto, and on success recorded and sent to EventBridge with a web-identity user."""
        body = self.read_body(environ)
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        if params.get("Action") != "AssumeRoleWithWebIdentity":
            return self.moto_app(environ, start_response)
        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        response = b"".join(self.moto_app(environ, capture))
        if captured.get("status", 200) < 400:
            provider = params.get("ProviderId") or "web-identity"
            identity = {"type": "WebIdentityUser", "principalId": f"{provider}:{params.get('RoleSessionName', '')}",
                        "userName": params.get("RoleSessionName", ""), "identityProvider": provider}
            role_account = (params.get("RoleArn") or "").split(":")[4:5] or [ACCOUNT_ID]
            record = self.cloudtrail_record(environ, identity, "sts", "us-east-1", "AssumeRoleWithWebIdentity",
                                            camel(params), response_elements("AssumeRoleWithWebIdentity", response))
            record["recipientAccountId"] = role_account[0] or ACCOUNT_ID
            self.trail.add(record)
            self.bus.offer("sts", record)
        return [response]

    def record(self, environ, scope, name: str, request_parameters: dict | None,
               elements: dict | None, code: str | None) -> None:
        """Store one authenticated call as the CloudTrail management event AWS would write."""
        key, region, service = scope.group(1), scope.group(2), scope.group(3)
        ident = identity_for(key)
        record = self.cloudtrail_record(environ, ident, service, region, name, request_parameters, elements)
        if code:
            record["errorCode"] = code
            record["errorMessage"] = "recorded by the local CloudTrail double"
        self.trail.add(record)
        self.bus.offer(service, record)

    @staticmethod
    def cloudtrail_record(environ, ident: dict, service: str, region: str, name: str,
                          request_parameters: dict | None, elements: dict | None) -> dict:
        return {
            "eventVersion": "1.09",
            "userIdentity": ident,
            "eventTime": iso(datetime.now(timezone.utc)),
            "eventSource": f"{service}.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "userAgent": environ.get("HTTP_USER_AGENT", ""),
            "requestParameters": request_parameters,
            "responseElements": elements,
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": bool(READ_ONLY.match(name)),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ident.get("accountId", ACCOUNT_ID),
            "eventCategory": "Management",
        }

    def batch_update_findings(self, environ, start_response, scope):
        """Security Hub BatchUpdateFindings: authenticated and authorized like moto's own services
        (against the hub, as IAM does for this action), then the double; recorded in CloudTrail."""
        key, region = scope.group(1), scope.group(2)
        raw = self.read_body(environ)
        account = identity_for(key).get("accountId", ACCOUNT_ID)
        refusal = self.authorize(environ, raw, scope, account, "BatchUpdateFindings",
                                 f"arn:aws:securityhub:{region}:{account}:hub/default")
        if refusal is not None:
            status, payload = refusal
            if payload["__type"] == "AccessDeniedException":
                self.record(environ, scope, "BatchUpdateFindings", None, None, payload["__type"])
            return self.respond(start_response, status, payload, "application/json")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        status, payload = self.hub.batch_update(body, account, region, key)
        self.record(environ, scope, "BatchUpdateFindings", body if isinstance(body, dict) else None,
                    None, payload.get("__type"))
        return self.respond(start_response, status, payload, "application/json")

    def answered_here(self, environ, start_response, scope, operation: str, resource: str, answer):
        """A call the harness answers itself: authenticated and authorized like moto's own, then
        `answer(raw body, account, region)` -> (status, payload); recorded in CloudTrail."""
        key, region = scope.group(1), scope.group(2)
        raw = self.read_body(environ)
        account = identity_for(key).get("accountId", ACCOUNT_ID)
        refusal = self.authorize(environ, raw, scope, account, operation, resource.format(region=region, account=account))
        if refusal is not None:
            status, payload = refusal
            if payload["__type"] == "AccessDeniedException":
                self.record(environ, scope, operation, None, None, payload["__type"])
            return self.respond(start_response, status, payload, "application/json")
        status, payload = answer(raw, account, region)
        self.record(environ, scope, operation, None, None, payload.get("__type") if status != 200 else None)
        return self.respond(start_response, status, payload, "application/json")

    def guardduty_call(self, environ, start_response, scope):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        operation = self.guardduty.operation(method, path)
        if operation is None:
            return self.respond(start_response, 400, {"__type": "BadRequestException",
                                                       "message": f"{method} {path} is not part of the GuardDuty double"},
                                "application/json")
        return self.answered_here(environ, start_response, scope, operation, "*",
                                  lambda raw, account, region: self.guardduty.answer(operation, path, raw, account, region))

    def authorize(self, environ, raw: bytes, scope, account: str, action: str,
                  resource: str) -> tuple[int, dict] | None:
        """moto's own authentication and IAM check for a call the harness answers itself: None if
        allowed, else the JSON-protocol error AWS gives (unknown or Inactive key, bad signature,
        policy denial). Skipped while moto's auth is off (bootstrap), as moto does."""
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.core.exceptions import AccessDeniedError, InvalidClientTokenIdError, SignatureDoesNotMatchError
        from moto.iam.access_control import IAMRequest
        from moto.iam.models import mark_account_as_visited
        from werkzeug.datastructures import EnvironHeaders

        key, region, service = scope.group(1), scope.group(2), scope.group(3)
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return None
        path = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        try:
            request = IAMRequest(account_id=account, method=environ.get("REQUEST_METHOD", "GET"), path=path,
                                 data={}, body=raw, headers=EnvironHeaders(environ), action=action)
            request.check_signature()
            request.check_action_permitted(resource)
        except InvalidClientTokenIdError:
            return 403, {"__type": "UnrecognizedClientException",
                         "message": "The security token included in the request is invalid."}
        except SignatureDoesNotMatchError:
            return 403, {"__type": "InvalidSignatureException",
                         "message": "The request signature we calculated does not match the signature you provided."}
        except AccessDeniedError:
            who = identity_for(key).get("arn", key)
            return 403, {"__type": "AccessDeniedException", "Code": "AccessDeniedException",
                         "Message": f"User: {who} is not authorized to perform: {service}:{action} on resource: {resource}"}
        mark_account_as_visited(account, key, service, region)
        return None
