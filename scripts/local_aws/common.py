"""What every part of the local AWS shares: its accounts, per-request state, the CloudTrail
identity of a key, and small helpers."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone

# The function's account (where template.yaml runs): a member of the local organization, so an
# SCP can quarantine its principals.
ACCOUNT_ID = "123456789012"
# A second account, for multi-account tests (member-role.yaml; KILLSWITCH_LOCAL_MEMBER_*: a member
# account in killswitch's sense), and the local organization's management account.
MEMBER_ACCOUNT_ID = "111122223333"
ORGANIZATION_MANAGEMENT_ACCOUNT_ID = MEMBER_ACCOUNT_ID
# The repository's root (the CloudFormation templates bootstrap deploys).
REPO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)
# Per request thread: `body`, the raw body of the call being forwarded to moto (see
# iam.patch_moto_signature_body).
REQUEST = threading.local()


def as_list(value) -> list:  # type: ignore[no-untyped-def]
    return value if isinstance(value, list) else [value]


# Per request thread: `values`, the signer's condition keys while moto checks the call (see
# policy_eval.patch_moto_principal_condition_keys).
PRINCIPAL = threading.local()
# Identity Center portal sessions (see identity_center_control.identity_center_portal_credentials): access key ID -> the
# identity-store UserId it was issued to (identitystore:UserId in principal_keys).
PORTAL_SESSIONS: dict[str, str] = {}
# Session tags of AssumeRole calls (see iam.patch_moto_trust_policies): session access key ID ->
# {key: value}; moto keeps none. They are aws:PrincipalTag/* of the session, over the role's tags.
SESSION_TAGS: dict[str, dict] = {}


def iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def identity_for(access_key_id: str) -> dict:
    """What CloudTrail's userIdentity would say for a key moto knows."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id in list(iam_backends):
        iam = iam_backends[account_id]["aws"]
        user = iam.get_user_from_access_key_id(access_key_id)
        if user:
            return {"type": "IAMUser", "principalId": user.id, "arn": user.arn, "accountId": account_id,
                    "accessKeyId": access_key_id, "userName": user.name}
        role = sts_backends[account_id]["global"].get_assumed_role_from_access_key(access_key_id)
        if role:
            role_name = role.role_arn.split("/")[-1]
            return {"type": "AssumedRole", "principalId": f"{role.user_id}", "arn": role.arn, "accountId": account_id,
                    "accessKeyId": access_key_id,
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role.role_arn, "accountId": account_id,
                                                         "userName": role_name}}}
    return {"type": "Unknown", "accessKeyId": access_key_id}


def json_protocol_error(response, code: int, error_type: str, message: str):  # type: ignore[no-untyped-def]
    """An error to raise while moto authorizes a JSON-protocol call, in that protocol's shape.

    moto answers an error raised while authorizing with the response's headers and the error's
    description (its own are the query protocol's XML, which the SDKs of JSON services cannot
    read): make both the JSON protocol's.
    """
    from moto.core.exceptions import JsonRESTError

    response.response_headers["Content-Type"] = "application/x-amz-json-1.1"
    response.response_headers["x-amzn-ErrorType"] = error_type
    error = JsonRESTError(error_type, message)
    error.code = code
    error.description = json.dumps({"__type": error_type, "Message": message})
    return error
