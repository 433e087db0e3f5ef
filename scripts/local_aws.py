"""Test infrastructure: the embedded local AWS that killswitch's tests, demo and drills run against.

One HTTP endpoint on 127.0.0.1 serves three things:

* moto (IAM, STS, SNS, SQS, ...) with IAM authentication enforced, plus patches that close
  moto's gaps where it is kinder than AWS: a key whose status is not Active is refused with
  InvalidClientTokenId; a user's aggregate inline policies are capped at 2,048 non-whitespace
  characters (LimitExceeded); `StringEquals` on the signer's aws:userid / aws:username /
  aws:PrincipalArn is evaluated (stock moto applies such statements to everyone); the
  AWS-managed AWSDenyAll exists; trust policies are honoured.
* a CloudTrail LookupEvents double (moto has none), faithful to the documented API: awsJson1_1,
  one lookup attribute, MaxResults 1..50, NextToken bound to the same parameters, newest first,
  90-day retention, per-Region data, CloudTrailEvent as a JSON string, ThrottlingException from a
  strict sliding window (a third call within any 1 s per account and Region is refused: stricter
  than a token bucket, and what arrival jitter turns exact 500 ms pacing into), and delivery lag
  (an event is visible only once its time plus the lag has passed; per key, see below).
* a recorder: every authenticated call made to moto is stored as a CloudTrail management event
  (identity, event name and source, Region from the SigV4 scope, source IP, user agent, error code),
  so calls made with a leaked key show up in LookupEvents like they would in Event history.

Known gaps of the double (documented in the README): data events are never recorded (same as
real Event history), calls refused before authentication (unknown or Inactive key) are not
recorded, delivery lag is 0 unless set (real Event history lags by about 5 minutes, up to 15),
requestParameters are the raw query parameters, and only Region, account and the lookup
attribute shape the results.

* account:ListRegions (moto has none): the 17 Regions enabled by default, opt-in ones disabled.
* a Security Hub BatchUpdateFindings double (moto answers 404): authenticated and authorized like
  moto's services, the request validated like the service model (InvalidInputException, 400),
  findings exist only once planted (per account from the key, Region from the SigV4 scope), others
  come back as UnprocessedFindings/FindingNotFound with 200; every call is kept for assertions.
* Organizations as strict as AWS where moto is not (see patch_moto_organizations_limits): SCP size
  and per-target quotas, duplicate or missing attachments, policy type enabled, and an
  OrganizationAccountAccessRole with AdministratorAccess in created accounts; management-only
  operations refused to member accounts (see patch_moto_organizations_management_only); calls
  authorized as IAM does, against the policy, account, root or OU ARNs they name with
  aws:RequestTag/*, aws:TagKeys and aws:ResourceTag/* conditions, refusals in the JSON protocol's
  shape (see patch_moto_organizations_authorization).
* an organization from the start (see organize): MEMBER_ACCOUNT_ID manages it, ACCOUNT_ID (the
  function's account) is a member that joined by invitation (moto has no handshakes),
  SERVICE_CONTROL_POLICY enabled, so a quarantine SCP can be attached to the function's account
  (AWS never applies SCPs to the management account); its IDs are in the env file.
* a quarantine role for drills and end-to-end tests (see deploy_quarantine_role): quarantine-role.yaml
  deployed through CloudFormation in the management account, trusting the admin user of
  ACCOUNT_ID (the env file's AWS_ACCESS_KEY_ID) with an external ID; KILLSWITCH_LOCAL_QUARANTINE_*.
* managed policies as strict as IAM (see patch_moto_managed_policy_limits): 6,144 non-whitespace
  characters per document (LimitExceeded), DeletePolicy of an attached policy or one with
  non-default versions refused (DeleteConflict); moto already caps versions at 5 and keeps the
  default version from being deleted. The default version is what sessions are evaluated against.
* IAM Identity Center, enough to contain a leaked portal credential:
  - one instance, the organization's: in the management account, us-east-1, IDs in AWS's formats
    (see patch_moto_identity_center_instances); its identity store is the identitystore store.
  - sso-admin and identitystore calls authorized against sso:<Operation> / identitystore:<Operation>
    and refused in the JSON protocol's shape, AccessDeniedException (see
    patch_moto_identity_center_authorization).
  - Create/DeleteAccountAssignment with their own RequestIds that Describe*Status answer, no
    duplicate assignments, provisioning on assignment (see patch_moto_sso_admin_assignments).
  - identity-center-role.yaml (the responder's KillSwitchIdentityCenter and the operators'
    KillSwitchIdentityCenterRestore, trusting ACCOUNT_ID's admin user with an external ID) in the
    management account, identity-center-policy.yaml (KillSwitchDeny) in ACCOUNT_ID (see
    deploy_identity_center); KILLSWITCH_LOCAL_IDENTITY_CENTER_ROLE_ARN, ..._RESTORE_ROLE_ARN,
    ..._EXTERNAL_ID, ..._INSTANCE_ARN, ..._REGION, and KILLSWITCH_LOCAL_IDENTITY_STORE_ID.
  - permission sets provisioned as AWS does (see provision_permission_set_to_account): a role
    AWSReservedSSO_<name>_<suffix> at /aws-reserved/sso.amazonaws.com/ with AwsSSOInlinePolicy and
    the referenced customer-managed policies attached, which IAM refuses to change through the API
    (UnmodifiableEntity, see patch_moto_identity_center_roles_protected).
  - portal sessions (control endpoints below): their requests carry identitystore:UserId, so a
    Deny on that key in KillSwitchDeny stops one user's sessions of a shared role and no one else's.

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
  GET  /_killswitch/securityhub/findings  {"findings": [...], "calls": [...]}: workflow, notes history
  POST /_killswitch/securityhub/reset   forgets findings and calls (cloudtrail/reset leaves them)
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

import argparse
import base64
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

# The function's account (where template.yaml runs): a member of the local organization, so an
# SCP can quarantine its principals.
ACCOUNT_ID = "123456789012"
# A second account, for multi-account tests (member-role.yaml; KILLSWITCH_LOCAL_MEMBER_*: a member
# account in killswitch's sense), and the local organization's management account.
MEMBER_ACCOUNT_ID = "111122223333"
ORGANIZATION_MANAGEMENT_ACCOUNT_ID = MEMBER_ACCOUNT_ID
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
SCOPE_RE = re.compile(r"Credential=([A-Z0-9]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
# (the last two: what JSON-protocol services such as Organizations answer for the first two)
UNAUTHENTICATED = ("InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId",
                   "UnrecognizedClientException", "InvalidSignatureException")
# account:ListRegions (moto has none): the 17 Regions enabled by default, and opt-in ones left off.
DEFAULT_REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
    "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "sa-east-1",
]
OPT_IN_REGIONS = ["af-south-1", "ap-east-1", "me-south-1", "eu-south-1", "me-central-1", "il-central-1"]


def patch_moto_inactive_keys() -> None:
    """Refuse Inactive keys at authentication, like IAM does (stock moto accepts them)."""
    from moto.iam import access_control

    original_init = access_control.IAMUserAccessKey.__init__

    def init(self, account_id, partition, access_key_id, headers):  # type: ignore[no-untyped-def]
        original_init(self, account_id, partition, access_key_id, headers)
        for key in self.backend.list_access_keys(self._owner_user_name):
            if key.access_key_id == access_key_id and key.status != "Active":
                raise access_control.CreateAccessKeyFailure(reason="InvalidId")

    access_control.IAMUserAccessKey.__init__ = init


REQUEST = threading.local()


def _as_list(value) -> list:  # type: ignore[no-untyped-def]
    return value if isinstance(value, list) else [value]


def trust_refusal(role_arn: str, caller: dict, external_id: str | None) -> str | None:
    """Why the role's trust policy refuses this caller, or None if it allows it.

    Evaluates what member roles use: Allow statements for sts:AssumeRole, AWS principals (ARN,
    account root or account ID, "*"), and StringEquals/StringLike/ArnEquals/ArnLike conditions on
    sts:ExternalId, aws:PrincipalArn and aws:PrincipalAccount. Any other condition fails closed.
    """
    import fnmatch

    from moto.iam.models import iam_backends

    parts = role_arn.split(":")
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return "not a role ARN"
    account = parts[4]
    role = None
    if account in iam_backends:
        for r in iam_backends[account]["aws"].roles.values():
            if r.arn == role_arn:
                role = r
    if role is None:
        return "no such role"
    doc = role.assume_role_policy_document
    doc = json.loads(urllib.parse.unquote(doc) if isinstance(doc, str) else json.dumps(doc))
    caller_account = caller.get("accountId", "")
    issuer = caller.get("sessionContext", {}).get("sessionIssuer", {}).get("arn")
    principal_arn = issuer or caller.get("arn", "")
    context = {"sts:externalid": external_id, "aws:principalarn": principal_arn,
               "aws:principalaccount": caller_account}
    ops = {
        "stringequals": lambda have, want: have == want,
        "arnequals": lambda have, want: have == want,
        "stringlike": lambda have, want: fnmatch.fnmatchcase(have, want),
        "arnlike": lambda have, want: fnmatch.fnmatchcase(have, want),
    }

    def principal_ok(stmt: dict) -> bool:
        principal = stmt.get("Principal")
        if principal == "*":
            return True
        if not isinstance(principal, dict) or "AWS" not in principal:
            return False
        for p in _as_list(principal["AWS"]):
            if p in ("*", principal_arn, caller.get("arn")):
                return True
            if p == caller_account or p == f"arn:aws:iam::{caller_account}:root":
                return True
        return False

    def conditions_ok(stmt: dict) -> bool:
        for op, checks in (stmt.get("Condition") or {}).items():
            test = ops.get(op.lower())
            if test is None:
                return False
            for key, wanted in checks.items():
                have = context.get(key.lower(), "unsupported")
                if have is None or have == "unsupported":
                    return False
                if not any(test(have, w) for w in _as_list(wanted)):
                    return False
        return True

    for stmt in _as_list(doc.get("Statement", [])):
        actions = _as_list(stmt.get("Action", []))
        if stmt.get("Effect") != "Allow" or not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        if principal_ok(stmt) and conditions_ok(stmt):
            return None
    return "the trust policy does not allow this caller"


def patch_moto_cloudformation_inline_policies() -> None:
    """Evaluate inline policies of roles created by CloudFormation.

    moto's CloudFormation stores a role's `Policies` as dicts, and its access control then fails
    with KeyError (HTTP 500) on the first call made with that role, so member-role.yaml, deployed
    through moto's CloudFormation, could not be exercised.
    """
    from moto.iam import access_control

    original_init = access_control.IAMPolicy.__init__

    def init(self, policy):  # type: ignore[no-untyped-def]
        if isinstance(policy, dict) and "policy_document" not in policy:
            policy = json.dumps(policy)
        original_init(self, policy)

    access_control.IAMPolicy.__init__ = init


def patch_moto_cloudformation_no_value_in_lists() -> None:
    """`!If [Cond, X, !Ref AWS::NoValue]` (or a bare `!Ref AWS::NoValue`) as a list element removes
    the element, as CloudFormation does.

    moto drops AWS::NoValue only as a property value; in a list it leaves null, so
    quarantine-role.yaml deployed without OperatorRoleArns got the trust policy
    `"Statement": [{...TheResponderOnly...}, null]`, and AssumeRole of that role failed with HTTP
    500 (the null statement).
    """
    from moto.cloudformation import parsing

    original = parsing.clean_json

    def no_value(element) -> bool:  # type: ignore[no-untyped-def]
        return isinstance(element, dict) and (element.get("Ref") == "AWS::NoValue" or "Fn::If" in element)

    def clean_json(resource_json, resources_map):  # type: ignore[no-untyped-def]
        if isinstance(resource_json, list):
            cleaned = [(element, clean_json(element, resources_map)) for element in resource_json]
            return [value for element, value in cleaned if not (value is None and no_value(element))]
        return original(resource_json, resources_map)

    # clean_json recurses through the module global, so nested lists get this too.
    parsing.clean_json = clean_json


def patch_moto_user_resources() -> None:
    """Authorize IAM user actions against the user's ARN, as IAM does.

    moto checks every IAM action except role ones against the resource "*", so a policy scoped to
    `arn:aws:iam::ACCOUNT:user/*` (the member role's) would deny everything.
    """
    from moto.iam.responses import IamResponse

    original = IamResponse._determine_resource

    def determine(self):  # type: ignore[no-untyped-def]
        resource = original(self)
        if resource != "*":
            return resource
        user = (self.data.get("UserName") or [None])[0]
        key = (self.data.get("AccessKeyId") or [None])[0]
        try:
            if user:
                return self.backend.get_user(user).arn
            if key and (self.data.get("Action") or [""])[0] == "GetAccessKeyLastUsed":
                owner = self.backend.get_user_from_access_key_id(key)
                if owner:
                    return owner.arn
        except Exception:  # noqa: BLE001 - unknown user: IAM answers NoSuchEntity after auth
            if user:
                return f"arn:aws:iam::{self.current_account}:user/{user}"
        return resource

    IamResponse._determine_resource = determine


def patch_moto_trust_policies() -> None:
    """AssumeRole honours the role's trust policy, as STS does, through `trust_refusal` alone.

    Stock moto lets any caller assume any ARN of another account, even of a role that does not
    exist, so a member role's principal and external-ID conditions would never be tested. For a
    role of the caller's own account it does check the trust policy, but stricter than AWS: the
    principal must be the caller's exact ARN, so a principal naming the account
    (`arn:aws:iam::ACCOUNT:root`) or a role (`arn:aws:iam::ACCOUNT:role/R`, whose sessions are
    `arn:aws:sts::ACCOUNT:assumed-role/R/...`) was refused. That check is replaced by this one, so
    same-account and cross-account AssumeRole are judged alike (the function's role session
    assuming a quarantine role of the management account that trusts it with an external ID).
    """
    from moto.iam import access_control
    from moto.sts.exceptions import STSClientError
    from moto.sts.responses import TokenResponse

    # The caller's identity policies are still checked by moto; the trust policy is judged below.
    access_control.IAMRequestBase._check_role_trust_relationship = lambda self, role_arn: True

    original = TokenResponse.assume_role

    def assume_role(self):  # type: ignore[no-untyped-def]
        role_arn = self._get_param("RoleArn") or ""
        caller = identity_for(self.get_access_key())
        refusal = trust_refusal(role_arn, caller, self._get_param("ExternalId"))
        if refusal:
            # Code AccessDenied in STS's XML error shape, which the SDKs parse (moto's generic
            # AccessDeniedError is not serialized as an STS error: the code would be lost).
            who = caller.get("arn", "anonymous")
            raise STSClientError(
                "AccessDenied",
                f"User: {who} is not authorized to perform: sts:AssumeRole on resource: {role_arn} ({refusal})",
            )
        return original(self)

    TokenResponse.assume_role = assume_role


def patch_moto_aws_deny_all() -> None:
    """Offer the AWS-managed AWSDenyAll (killswitch's fallback when a user's inline quota is full)
    and AdministratorAccess (what Organizations attaches to OrganizationAccountAccessRole).

    moto loads AWS-managed policies only on request, and then all of them (slow); this loads the
    ones used here.
    """
    from moto.iam import models

    def init(self):  # type: ignore[no-untyped-def]
        data = json.loads(models.aws_managed_policies_data)
        return [models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data[name])
                for name in ("AWSDenyAll", "AdministratorAccess")]

    models.IAMBackend._init_aws_policies = init


# IAM's documented aggregate inline-policy quota for a user, non-whitespace characters.
USER_INLINE_QUOTA = 2048


def patch_moto_inline_policy_quota() -> None:
    """PutUserPolicy fails with LimitExceeded past the user's aggregate inline quota, as IAM does.

    Stock moto stores any number of inline policies, so a key's holder filling the quota first
    (to keep killswitch's deny out) could not be played.
    """
    from moto.iam import models
    from moto.iam.exceptions import LimitExceededException

    original = models.IAMBackend.put_user_policy

    def size(doc: str) -> int:
        return sum(1 for c in doc if not c.isspace())

    def put_user_policy(self, user_name, policy_name, policy_json):  # type: ignore[no-untyped-def]
        user = self.get_user(user_name)
        others = sum(size(d) for n, d in user.policies.items() if n != policy_name)
        if others + size(policy_json) > USER_INLINE_QUOTA:
            raise LimitExceededException(
                f"Cannot exceed quota for PolicySize: {USER_INLINE_QUOTA}")
        return original(self, user_name, policy_name, policy_json)

    models.IAMBackend.put_user_policy = put_user_policy


# IAM's documented size quota for one managed policy document, non-whitespace characters.
MANAGED_POLICY_QUOTA = 6144


def patch_moto_managed_policy_limits() -> None:
    """Managed policies are as strict as IAM's, so the deny policy killswitch grows at incident
    time (identity-center-policy.yaml's KillSwitchDeny) fails here where it would fail in AWS.

    * CreatePolicy/CreatePolicyVersion (and CloudFormation's AWS::IAM::ManagedPolicy) of a document
      over 6,144 non-whitespace characters -> LimitExceeded "Cannot exceed quota for PolicySize:
      6144" (HTTP 409); stock moto stores any size.
    * DeletePolicy of a policy still attached to a user, group or role -> DeleteConflict "Cannot
      delete a policy attached to entities."; of one with non-default versions left -> DeleteConflict
      too, as IAM does; stock moto deleted it and left every attachment pointing at nothing.

    Already as in AWS in stock moto, and kept: a sixth version -> LimitExceeded ("A managed policy
    can have up to 5 versions..."), DeletePolicyVersion of the default version -> DeleteConflict.
    """
    from moto.iam import models
    from moto.iam.exceptions import DeleteConflictException, LimitExceededException

    def check_size(document) -> None:  # type: ignore[no-untyped-def]
        if sum(1 for c in document or "" if not c.isspace()) > MANAGED_POLICY_QUOTA:
            raise LimitExceededException(f"Cannot exceed quota for PolicySize: {MANAGED_POLICY_QUOTA}")

    original_create = models.IAMBackend.create_policy
    original_version = models.IAMBackend.create_policy_version
    original_delete = models.IAMBackend.delete_policy

    def create_policy(self, description, path, policy_document, policy_name, tags):  # type: ignore[no-untyped-def]
        check_size(policy_document)
        return original_create(self, description, path, policy_document, policy_name, tags)

    def create_policy_version(self, policy_arn, policy_document, set_as_default):  # type: ignore[no-untyped-def]
        check_size(policy_document)
        return original_version(self, policy_arn, policy_document, set_as_default)

    def delete_policy(self, policy_arn):  # type: ignore[no-untyped-def]
        policy = self.get_policy(policy_arn)
        if policy.attachment_count > 0:
            raise DeleteConflictException("Cannot delete a policy attached to entities.")
        if len(policy.versions) > 1:
            raise DeleteConflictException(
                "This policy has more than one version. Before you delete a policy, you must delete the "
                "policy's versions. The default version is deleted with the policy.")
        return original_delete(self, policy_arn)

    models.IAMBackend.create_policy = create_policy
    models.IAMBackend.create_policy_version = create_policy_version
    models.IAMBackend.delete_policy = delete_policy


PRINCIPAL = threading.local()
# Identity Center portal sessions (see identity_center_portal_credentials): access key ID -> the
# identity-store UserId it was issued to (identitystore:UserId in principal_keys).
PORTAL_SESSIONS: dict[str, str] = {}


def patch_moto_principal_condition_keys() -> None:
    """Evaluate `StringEquals` on the caller's own keys (aws:userid, aws:username,
    aws:PrincipalArn, and identitystore:UserId for Identity Center portal sessions) and
    `DateLessThan` on aws:TokenIssueTime in identity policies, as IAM does.

    Stock moto evaluates identity-policy conditions with no request values at all, so a statement
    conditioned on one role session (`aws:userid` = `ROLE-ID:session`) applied to every session
    of the role and could not show that the other sessions keep working, and a session cutoff
    denied long-term keys and sessions issued after it; and a deny of one Identity Center user
    (identitystore:UserId) in the policy their permission set references denied every user of
    that AWSReservedSSO_ role. Other operators remain ignored.
    """
    from moto.iam import access_control

    original_check = access_control.IAMRequestBase.check_action_permitted

    def check(self, resource):  # type: ignore[no-untyped-def]
        PRINCIPAL.values = principal_keys(self._access_key)
        try:
            return original_check(self, resource)
        finally:
            PRINCIPAL.values = None

    original_statement = access_control.IAMPolicyStatement.is_action_permitted

    def statement(self, action, resource="*", principal=None, incoming_condition_values=None):  # type: ignore[no-untyped-def]
        values = getattr(PRINCIPAL, "values", None)
        # moto answers DENIED when a statement's condition fails (right for trust policies, wrong
        # for identity policies, where the statement then simply does not apply).
        if incoming_condition_values is None and values is not None:
            for operator, keys in (self._statement.get("Condition") or {}).items():
                for key, wanted in keys.items():
                    have = values.get(key.lower())
                    if operator == "StringEquals":
                        matches = have is not None and have in _as_list(wanted)
                    elif operator == "DateLessThan" and key.lower() == "aws:tokenissuetime":
                        # Long-term keys have no token: the condition, and the statement, do not apply.
                        matches = have is not None and any(have < parse_iso(w) for w in _as_list(wanted))
                    else:
                        continue
                    if not matches:
                        return access_control.PermissionResult.NEUTRAL
        return original_statement(self, action, resource, principal, incoming_condition_values)

    access_control.IAMRequestBase.check_action_permitted = check
    access_control.IAMPolicyStatement.is_action_permitted = statement


def principal_keys(access_key) -> dict:  # type: ignore[no-untyped-def]
    """The global condition keys IAM sets for the signer of a request."""
    from moto.iam import access_control

    try:
        backend = access_key.backend
        if isinstance(access_key, access_control.AssumedRoleAccessKey):
            from moto.sts.models import sts_backends

            role = backend.get_role(access_key._owner_role_name)
            issued = None
            for assumed in sts_backends[access_key.account_id][access_key.partition].assumed_roles:
                if assumed.access_key_id == access_key._access_key_id:
                    issued = assumed.access_key.create_date
            if issued is not None and issued.tzinfo is None:
                issued = issued.replace(tzinfo=timezone.utc)
            keys = {"aws:userid": f"{role.id}:{access_key._session_name}",
                    "aws:principalarn": role.arn, "aws:tokenissuetime": issued}
            # A portal session (see identity_center_portal_credentials) carries the Identity Center
            # user it was issued to, as AWS sets identitystore:UserId for permission-set sessions.
            portal_user = PORTAL_SESSIONS.get(access_key._access_key_id)
            if portal_user is not None:
                keys["identitystore:userid"] = portal_user
            return keys
        user = backend.get_user(access_key._owner_user_name)
        return {"aws:userid": user.id, "aws:username": user.name, "aws:principalarn": user.arn}
    except Exception:  # noqa: BLE001 - an unknown principal has no keys; conditions then fail
        return {}


def patch_moto_service_specific_credentials() -> None:
    """ListServiceSpecificCredentials answers, as IAM does (moto has no such action, and none can
    be created here, so the faithful answer is an empty list for a user that exists)."""
    from moto.iam.responses import IamResponse

    def list_service_specific_credentials(self):  # type: ignore[no-untyped-def]
        self.backend.get_user(self._get_param("UserName"))  # NoSuchEntity for an unknown user
        return ('<ListServiceSpecificCredentialsResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
                "<ListServiceSpecificCredentialsResult><ServiceSpecificCredentials/>"
                "</ListServiceSpecificCredentialsResult><ResponseMetadata><RequestId>"
                f"{uuid.uuid4()}</RequestId></ResponseMetadata></ListServiceSpecificCredentialsResponse>")

    IamResponse.list_service_specific_credentials = list_service_specific_credentials


def patch_moto_signature_body() -> None:
    """Verify SigV4 over the bytes actually sent.

    Behind Flask, moto loses the raw form body and re-encodes the parsed fields before checking
    the signature; its encoding (space as '+') differs from the Rust SDK's ('%20'), so any Rust
    request with a space in a form field would fail with SignatureDoesNotMatch.
    """
    from moto.iam import access_control

    original_init = access_control.IAMRequestBase.__init__

    def init(self, account_id, method, path, data, body, headers, action):  # type: ignore[no-untyped-def]
        raw = getattr(REQUEST, "body", None)
        original_init(self, account_id, method, path, data, body or raw, headers, action)

    access_control.IAMRequestBase.__init__ = init


# AWS Organizations quotas (orgs_reference_limits) that stock moto does not enforce: maximum
# policy document size, and policies of one type attached directly to one root, OU or account.
ORG_CONTENT_LIMITS = {"SERVICE_CONTROL_POLICY": 5120, "RESOURCE_CONTROL_POLICY": 5120,
                      "AISERVICES_OPT_OUT_POLICY": 2500, "BACKUP_POLICY": 10000, "TAG_POLICY": 10000}
ORG_ATTACHMENT_LIMITS = {"SERVICE_CONTROL_POLICY": 5, "RESOURCE_CONTROL_POLICY": 5}
# Types that need at least one policy attached to every target (p-FullAWSAccess by default).
ORG_MIN_ONE_ATTACHED = ("SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY")


def patch_moto_organizations_limits() -> None:
    """Organizations refuses what AWS refuses where stock moto accepts it, so a quarantine SCP that
    would fail in AWS fails here too.

    * CreatePolicy/UpdatePolicy: content over the type's size quota (5,120 for an SCP, counted in
      UTF-8 bytes, whitespace included as the API keeps it) -> ConstraintViolationException,
      Reason POLICY_CONTENT_LIMIT_EXCEEDED; content that is not one JSON object ->
      MalformedPolicyDocumentException; UpdatePolicy onto another policy's name -> DuplicatePolicyException.
    * AttachPolicy: the type not enabled in the root -> PolicyTypeNotEnabledException (call
      EnablePolicyType first, as in AWS); the policy already on the target ->
      DuplicatePolicyAttachmentException; a sixth SCP directly on one target (p-FullAWSAccess
      counts) -> ConstraintViolationException, Reason MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED.
    * DetachPolicy: not attached -> PolicyNotAttachedException; the target's last SCP ->
      ConstraintViolationException, Reason MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED.
    * CreateAccount: OrganizationAccountAccessRole gets AdministratorAccess (moto creates it with
      no policy, so with authentication enforced the new account could not be entered).

    DeletePolicy of an attached policy already fails with PolicyInUseException in stock moto.
    """
    from moto.iam.models import iam_backends
    from moto.organizations import models
    from moto.organizations.exceptions import (ConstraintViolationException, DuplicatePolicyException,
                                               OrganizationsClientError, PolicyTypeNotEnabledException)
    from moto.organizations.responses import OrganizationsResponse

    def violation(reason: str, message: str) -> ConstraintViolationException:
        error = ConstraintViolationException(message)
        error.reason = reason  # serialized as the error's Reason member
        return error

    def check_content(policy_type: str, content) -> None:  # type: ignore[no-untyped-def]
        limit = ORG_CONTENT_LIMITS.get(policy_type)
        if limit is not None and len((content or "").encode("utf-8")) > limit:
            raise violation("POLICY_CONTENT_LIMIT_EXCEEDED",
                            "You attempted to create a policy that is larger than the maximum size.")
        try:
            parsed = json.loads(content or "")
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise OrganizationsClientError(
                "MalformedPolicyDocumentException",
                "The provided policy document doesn't meet the requirements of the specified policy type.")

    original_create = models.OrganizationsBackend.create_policy

    def create_policy(self, **kwargs):  # type: ignore[no-untyped-def]
        if models.FakePolicy.supported_policy_type(kwargs.get("Type", "")):
            check_content(kwargs["Type"], kwargs.get("Content"))
        return original_create(self, **kwargs)

    original_update = models.OrganizationsBackend.update_policy

    def update_policy(self, **kwargs):  # type: ignore[no-untyped-def]
        policy = self.get_policy_by_id(kwargs["PolicyId"])
        if "Content" in kwargs:
            check_content(policy.type, kwargs["Content"])
        if "Name" in kwargs and any(p.name == kwargs["Name"] and p is not policy for p in self.policies):
            raise DuplicatePolicyException
        return original_update(self, **kwargs)

    def target_checked(response, check) -> None:  # type: ignore[no-untyped-def]
        """Run `check(backend, policy, target)` for a caller's AttachPolicy/DetachPolicy; moto's
        own attachments while it builds the organization (p-FullAWSAccess) bypass the checks."""
        backend = response.organizations_backend
        params = response.request_params
        if backend.org is None:
            return
        policy = backend.get_policy_by_id(params.get("PolicyId", ""))
        target = next((t for t in [*backend.ou, *backend.accounts] if t.id == params.get("TargetId")), None)
        if target is not None:
            check(backend, policy, target)

    def attach_checks(backend, policy, target) -> None:  # type: ignore[no-untyped-def]
        root = next((o for o in backend.ou if o.id == backend.org.root_id), None)
        if root is not None and not any(t["Type"] == policy.type for t in root.policy_types):
            raise PolicyTypeNotEnabledException
        if policy in target.attached_policies:
            raise OrganizationsClientError("DuplicatePolicyAttachmentException",
                                           "The selected policy is already attached to the specified target.")
        limit = ORG_ATTACHMENT_LIMITS.get(policy.type)
        if limit is not None and sum(p.type == policy.type for p in target.attached_policies) >= limit:
            raise violation("MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                            "You attempted to exceed the number of policies of a certain type that can be "
                            "attached to an entity at one time.")

    def detach_checks(backend, policy, target) -> None:  # type: ignore[no-untyped-def]
        if policy not in target.attached_policies:
            raise OrganizationsClientError("PolicyNotAttachedException",
                                           "The policy isn't attached to the specified target in the specified root.")
        if policy.type in ORG_MIN_ONE_ATTACHED and sum(p.type == policy.type for p in target.attached_policies) <= 1:
            raise violation("MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                            "You attempted to detach a policy from an entity that would cause the entity to "
                            "have fewer than the minimum number of policies of a certain type required.")

    original_attach = OrganizationsResponse.attach_policy
    original_detach = OrganizationsResponse.detach_policy

    def attach_policy(self):  # type: ignore[no-untyped-def]
        target_checked(self, attach_checks)
        return original_attach(self)

    def detach_policy(self):  # type: ignore[no-untyped-def]
        target_checked(self, detach_checks)
        return original_detach(self)

    original_account_init = models.FakeAccount.__init__

    def account_init(self, organization, **kwargs):  # type: ignore[no-untyped-def]
        original_account_init(self, organization, **kwargs)
        iam = iam_backends[self.id]["aws"]
        role = kwargs.get("RoleName", "OrganizationAccountAccessRole")
        if not iam.get_role(role).managed_policies:
            iam.attach_role_policy("arn:aws:iam::aws:policy/AdministratorAccess", role)

    models.OrganizationsBackend.create_policy = create_policy
    models.OrganizationsBackend.update_policy = update_policy
    OrganizationsResponse.attach_policy = attach_policy
    OrganizationsResponse.detach_policy = detach_policy
    models.FakeAccount.__init__ = account_init


# Organizations operations that only the management account may call (or a delegated administrator,
# which the harness does not model): a member account gets AccessDeniedException, an account in no
# organization AWSOrganizationsNotInUseException. DescribeOrganization stays open to members.
ORG_MANAGEMENT_ONLY = (
    "create_policy", "update_policy", "delete_policy", "attach_policy", "detach_policy",
    "enable_policy_type", "disable_policy_type", "describe_policy", "list_policies",
    "list_policies_for_target", "list_targets_for_policy", "create_account", "close_account",
    "create_organizational_unit", "delete_organizational_unit", "update_organizational_unit",
    "move_account", "remove_account_from_organization", "delete_organization", "tag_resource",
    "untag_resource", "enable_aws_service_access", "disable_aws_service_access",
    "register_delegated_administrator", "deregister_delegated_administrator",
)


def patch_moto_organizations_management_only() -> None:
    """Organizations' management operations refuse every account but the management account, as in
    AWS.

    moto keeps one Organizations backend per caller account, so a member account's call went to
    its own empty backend: CreatePolicy failed with HTTP 500, UpdatePolicy/AttachPolicy/
    DetachPolicy/DeletePolicy of the organization's policies with PolicyNotFoundException, and
    ListPolicies answered an empty list. Now a member account gets AccessDeniedException ("You
    don't have permissions to access this resource.", HTTP 400) and an account outside any
    organization AWSOrganizationsNotInUseException, before anything else is checked.
    """
    from moto.organizations import models
    from moto.organizations.exceptions import AWSOrganizationsNotInUseException, OrganizationsClientError

    def guarded(original):  # type: ignore[no-untyped-def]
        def call(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.org is None:
                if self.account_id in models.organizations_backends.master_accounts:
                    raise OrganizationsClientError("AccessDeniedException",
                                                   "You don't have permissions to access this resource.")
                raise AWSOrganizationsNotInUseException
            return original(self, *args, **kwargs)

        call.__name__ = original.__name__
        call.__doc__ = original.__doc__
        return call

    for name in ORG_MANAGEMENT_ONLY:
        setattr(models.OrganizationsBackend, name, guarded(getattr(models.OrganizationsBackend, name)))


# The Organizations resource ARN's type segment for each policy type (utils.*_ARN_FORMAT).
ORG_POLICY_TYPE_SEGMENTS = {
    "SERVICE_CONTROL_POLICY": "service_control_policy", "RESOURCE_CONTROL_POLICY": "resource_control_policy",
    "TAG_POLICY": "tag_policy", "BACKUP_POLICY": "backup_policy",
    "AISERVICES_OPT_OUT_POLICY": "aiservices_opt_out_policy",
}
# Per request thread (see patch_moto_organizations_authorization): `values`, the condition keys of
# the Organizations check being evaluated (None otherwise), and `new_policy_id`, the ID CreatePolicy
# was authorized for and the new policy then gets.
ORG_AUTH = threading.local()


def _org_backend_of(account: str):  # type: ignore[no-untyped-def]
    """The backend holding the organization `account` belongs to (its own if it manages one)."""
    from moto.organizations.models import organizations_backends

    own = organizations_backends[account]["aws"]
    if own.org is not None:
        return own
    if account in organizations_backends.master_accounts:
        manager, partition = organizations_backends.master_accounts[account]
        return organizations_backends[manager][partition]
    return None


def _tag_keys(prefix: str, tags: dict) -> dict:
    return {f"{prefix}/{k}".lower(): v for k, v in tags.items()}


def _org_policy_arn(backend, policy_id: str, policy_type: str | None = None) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    """(ARN, aws:ResourceTag/* keys) of a policy; an unknown ID gets the ARN AWS would build for an
    SCP of that ID, with no tags (so a tag-scoped statement does not apply to it)."""
    org = backend.org
    policy = next((p for p in backend.policies if p.id == policy_id), None)
    kind = ORG_POLICY_TYPE_SEGMENTS.get((policy.type if policy else policy_type) or "SERVICE_CONTROL_POLICY",
                                        "service_control_policy")
    if policy is not None and policy.aws_managed:
        # AWS-managed policies (p-FullAWSAccess) belong to no organization.
        return f"arn:aws:organizations::aws:policy/{kind}/{policy.id}", {}
    arn = f"arn:aws:organizations::{org.master_account_id}:policy/{org.id}/{kind}/{policy_id}"
    keys = {"organizations:policytype": policy.type} if policy else {}
    return arn, {**keys, **_tag_keys("aws:ResourceTag", policy.tags if policy else {})}


def _org_target_arn(backend, target_id: str) -> tuple[str, dict] | None:  # type: ignore[no-untyped-def]
    """(ARN, aws:ResourceTag/* keys) of a root, OU or account by ID; None for a malformed ID
    (moto then answers InvalidInputException)."""
    org = backend.org
    prefix = f"arn:aws:organizations::{org.master_account_id}"
    if re.fullmatch(r"r-[0-9a-z]{4,32}", target_id):
        arn = f"{prefix}:root/{org.id}/{target_id}"
    elif re.fullmatch(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}", target_id):
        arn = f"{prefix}:ou/{org.id}/{target_id}"
    elif re.fullmatch(r"\d{12}", target_id):
        arn = f"{prefix}:account/{org.id}/{target_id}"
    else:
        return None
    target = next((t for t in [*backend.ou, *backend.accounts] if t.id == target_id), None)
    return arn, _tag_keys("aws:ResourceTag", target.tags if target else {})


def _org_resource_arn(backend, resource_id: str) -> tuple[str, dict] | None:  # type: ignore[no-untyped-def]
    if resource_id.startswith("p-"):
        return _org_policy_arn(backend, resource_id)
    return _org_target_arn(backend, resource_id)


def _request_tags(tags) -> dict:  # type: ignore[no-untyped-def]
    """aws:RequestTag/* and aws:TagKeys of a request's Tags member (none when it has no tags)."""
    tags = [t for t in tags or [] if isinstance(t, dict) and "Key" in t]
    if not tags:
        return {}
    return {**_tag_keys("aws:RequestTag", {t["Key"]: t.get("Value", "") for t in tags}),
            "aws:tagkeys": [t["Key"] for t in tags]}


def organizations_checks(action: str, params: dict, account: str) -> list[tuple[str, str, dict]]:
    """What IAM authorizes for an Organizations call, as AWS does it: (action, resource ARN,
    request condition keys) for each, and every one must be allowed.

    * DescribeOrganization, ListPolicies, ListRoots, ... (no resource-level permissions): "*".
    * DescribePolicy, ListTargetsForPolicy, UpdatePolicy, DeletePolicy: the policy's ARN, with
      aws:ResourceTag/<key> of its tags and organizations:PolicyType.
    * CreatePolicy: the ARN of the policy to be (its ID is drawn now and given to the new policy),
      with aws:RequestTag/<key> and aws:TagKeys of the request's Tags; with tags, also
      organizations:TagResource on that ARN with the same keys (AWS's tag-on-create rule).
    * AttachPolicy, DetachPolicy: two resources, the policy (its tags) and the target - account
      `account/o-ID/ACCOUNT`, root `root/o-ID/r-ID` or OU `ou/o-ID/ou-ID` (the target's tags).
    * ListPoliciesForTarget, DescribeAccount: the target's ARN.
    * TagResource, UntagResource, ListTagsForResource: the resource's ARN, with its tags, and for
      TagResource aws:RequestTag/*, aws:TagKeys (UntagResource: aws:TagKeys of the keys removed).
    An account in no organization is checked against "*" (moto then answers
    AWSOrganizationsNotInUseException); so are the actions not listed here.
    """
    backend = _org_backend_of(account)
    if backend is None:
        return [(action, "*", {})]
    policy_id = params.get("PolicyId") or ""
    target_id = params.get("TargetId") or params.get("AccountId") or ""
    if action == "CreatePolicy":
        from moto.organizations import utils

        org = backend.org
        new_id = utils.make_random_policy_id()
        ORG_AUTH.new_policy_id = new_id
        kind = ORG_POLICY_TYPE_SEGMENTS.get(params.get("Type") or "", (params.get("Type") or "unknown").lower())
        arn = f"arn:aws:organizations::{org.master_account_id}:policy/{org.id}/{kind}/{new_id}"
        keys = {**_request_tags(params.get("Tags")), "organizations:policytype": params.get("Type")}
        checks = [(action, arn, keys)]
        if params.get("Tags"):
            checks.append(("TagResource", arn, keys))
        return checks
    if action in ("DescribePolicy", "ListTargetsForPolicy", "UpdatePolicy", "DeletePolicy"):
        return [(action, *_org_policy_arn(backend, policy_id))]
    if action in ("AttachPolicy", "DetachPolicy"):
        checks = [(action, *_org_policy_arn(backend, policy_id))]
        target = _org_target_arn(backend, target_id)
        if target is not None:
            checks.append((action, *target))
        return checks
    if action in ("ListPoliciesForTarget", "DescribeAccount"):
        target = _org_target_arn(backend, target_id)
        policy_type = {"organizations:policytype": params["Filter"]} if params.get("Filter") else {}
        return [(action, target[0], {**target[1], **policy_type}) if target else (action, "*", policy_type)]
    if action in ("TagResource", "UntagResource", "ListTagsForResource"):
        resource = _org_resource_arn(backend, params.get("ResourceId") or "")
        if resource is None:
            return [(action, "*", {})]
        arn, keys = resource
        if action == "TagResource":
            keys = {**keys, **_request_tags(params.get("Tags"))}
        elif action == "UntagResource" and params.get("TagKeys"):
            keys = {**keys, "aws:tagkeys": list(params["TagKeys"])}
        return [(action, arn, keys)]
    if action == "ListPolicies" and params.get("Filter"):
        return [(action, "*", {"organizations:policytype": params["Filter"]})]
    return [(action, "*", {})]


def _wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's `*` (any run of characters) and `?` (one character) matching."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _condition_text(value) -> str:  # type: ignore[no-untyped-def]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Positive matching for each supported operator (negated forms are derived from these).
_CONDITION_MATCH = {
    "stringequals": lambda have, want: _condition_text(have) == want,
    "stringequalsignorecase": lambda have, want: _condition_text(have).lower() == want.lower(),
    "stringlike": lambda have, want: _wildcard(want, _condition_text(have)),
    "arnequals": lambda have, want: _condition_text(have) == want,
    "arnlike": lambda have, want: _wildcard(want, _condition_text(have)),
    "bool": lambda have, want: _condition_text(have).lower() == want.lower(),
}
_CONDITION_NEGATED = {"stringnotequals": "stringequals", "stringnotequalsignorecase": "stringequalsignorecase",
                      "stringnotlike": "stringlike", "arnnotequals": "arnequals", "arnnotlike": "arnlike"}


def condition_holds(operator: str, key: str, wanted, values: dict) -> bool | None:  # type: ignore[no-untyped-def]
    """One condition of an identity policy as IAM evaluates it, or None for an operator this
    harness does not evaluate.

    A key missing from the request: a plain operator does not match (StringEquals...), a negated
    one does (StringNotEquals...), ...IfExists does, ForAllValues: does (vacuously), ForAnyValue:
    does not. ForAllValues: every request value matches one of the policy's; ForAnyValue: one does.
    A single-valued operator on a multivalued key matches if one value does.
    """
    op = operator.lower()
    qualifier = None
    for prefix in ("forallvalues:", "foranyvalue:"):
        if op.startswith(prefix):
            qualifier, op = prefix[:-1], op[len(prefix):]
    if_exists = op.endswith("ifexists") and op != "null"
    if if_exists:
        op = op[: -len("ifexists")]
    wanted = [_condition_text(w) for w in _as_list(wanted)]
    have = values.get(key.lower())
    missing = have is None or (isinstance(have, list) and not have)
    if op == "null":
        return (wanted[0].lower() == "true") == missing if qualifier is None else None
    if op in ("datelessthan", "dategreaterthan", "datelessthanequals", "dategreaterthanequals"):
        if missing:
            return if_exists
        if not isinstance(have, datetime):
            return None
        cmp = {"datelessthan": lambda a, b: a < b, "dategreaterthan": lambda a, b: a > b,
               "datelessthanequals": lambda a, b: a <= b, "dategreaterthanequals": lambda a, b: a >= b}[op]
        return any(cmp(have, parse_iso(w)) for w in wanted)
    negated = op in _CONDITION_NEGATED
    match = _CONDITION_MATCH.get(_CONDITION_NEGATED.get(op, op))
    if match is None:
        return None
    if missing:
        if qualifier == "forallvalues":
            return True
        if qualifier == "foranyvalue":
            return False
        return if_exists or negated
    have_all = have if isinstance(have, list) else [have]

    def one(value) -> bool:  # type: ignore[no-untyped-def]
        hit = any(match(value, w) for w in wanted)
        return not hit if negated else hit

    if qualifier == "forallvalues":
        return all(one(v) for v in have_all)
    if qualifier == "foranyvalue":
        return any(one(v) for v in have_all)
    hit = any(any(match(v, w) for w in wanted) for v in have_all)
    return not hit if negated else hit


def identity_statement_result(statement: dict, action: str, resource: str, values: dict):  # type: ignore[no-untyped-def]
    """One statement of an identity policy, as IAM evaluates it: the action (case-insensitive,
    Action or NotAction), the resource (Resource or NotResource), every condition (all must hold);
    an operator the harness cannot evaluate makes an Allow not apply and a Deny apply (fail closed)."""
    from moto.iam.access_control import PermissionResult

    if "NotAction" in statement:
        concerned = not any(_wildcard(a, action, True) for a in _as_list(statement["NotAction"]))
    else:
        concerned = any(_wildcard(a, action, True) for a in _as_list(statement.get("Action", [])))
    if not concerned:
        return PermissionResult.NEUTRAL
    if "NotResource" in statement:
        applies = not any(_wildcard(r, resource) for r in _as_list(statement["NotResource"]))
    else:
        applies = any(_wildcard(r, resource) for r in _as_list(statement.get("Resource", [])))
    if not applies:
        return PermissionResult.NEUTRAL
    deny = statement.get("Effect") == "Deny"
    for operator, checks in (statement.get("Condition") or {}).items():
        for key, wanted in (checks or {}).items():
            holds = condition_holds(operator, key, wanted, values)
            if holds is None:
                holds = deny
            if not holds:
                return PermissionResult.NEUTRAL
    return PermissionResult.DENIED if deny else PermissionResult.PERMITTED


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


def patch_moto_organizations_authorization() -> None:
    """Authorize Organizations calls as IAM does: against the resources each action names (see
    `organizations_checks`) with the request's condition keys (aws:RequestTag/*, aws:TagKeys,
    aws:ResourceTag/*, organizations:PolicyType, plus the caller's aws:userid, aws:username,
    aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalOrgID, aws:PrincipalType,
    aws:RequestedRegion, aws:TokenIssueTime), every statement of the caller's identity policies
    evaluated by `identity_statement_result` (StringEquals/StringLike/ArnEquals/ArnLike and their
    negations, ...IgnoreCase, Bool, Null, Date*, ...IfExists, ForAllValues:/ForAnyValue:).
    An explicit Deny wins; each resource of a call must be allowed.

    Stock moto checks every Organizations call against the resource "*" and ignores conditions on
    keys it is not given, so a role scoped by policy ARN and tags (quarantine-role.yaml) was
    refused everything while `organizations:*` on "*" could do anything, and its refusal was the
    query protocol's XML (HTTP 403, Code AccessDenied) that the Rust SDK cannot read. A refusal is
    now the JSON protocol's: HTTP 400, {"__type": "AccessDeniedException", "Message": "User: ARN is
    not authorized to perform: organizations:ACTION on resource: RESOURCE"}; an unknown key or a
    bad signature gets UnrecognizedClientException / InvalidSignatureException (HTTP 403).
    Other services keep moto's evaluation (with patch_moto_principal_condition_keys).
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError, InvalidClientTokenIdError, SignatureDoesNotMatchError
    from moto.iam import access_control
    from moto.organizations import utils
    from moto.organizations.responses import OrganizationsResponse
    from urllib.parse import urlparse

    json_error = json_protocol_error

    original_statement = access_control.IAMPolicyStatement.is_action_permitted

    def statement(self, action, resource="*", principal=None, incoming_condition_values=None):  # type: ignore[no-untyped-def]
        context = getattr(ORG_AUTH, "values", None)
        if context is None or principal is not None or incoming_condition_values is not None:
            return original_statement(self, action, resource, principal, incoming_condition_values)
        values = {**(getattr(PRINCIPAL, "values", None) or {}), **context}
        return identity_statement_result(self._statement, action, resource, values)

    original_random_policy_id = utils.make_random_policy_id

    def make_random_policy_id() -> str:
        # The ID CreatePolicy was authorized for (see organizations_checks), once.
        drawn = getattr(ORG_AUTH, "new_policy_id", None)
        ORG_AUTH.new_policy_id = None
        return drawn or original_random_policy_id()

    def authorize(self, resource: str = "*") -> None:  # type: ignore[no-untyped-def]
        ORG_AUTH.new_policy_id = None
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            ActionAuthenticatorMixin.request_count += 1
            return
        parsed = urlparse(self.uri)
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        action = self._get_action()
        try:
            request = access_control.IAMRequest(account_id=self.current_account, method=self.method, path=path,
                                                data=self.data, body=self.raw_body, headers=self.headers,
                                                action=action)
            request.check_signature()
        except InvalidClientTokenIdError:
            raise json_error(self, 403, "UnrecognizedClientException",
                             "The security token included in the request is invalid.")
        except SignatureDoesNotMatchError:
            raise json_error(self, 403, "InvalidSignatureException",
                             "The request signature we calculated does not match the signature you provided. "
                             "Check your AWS Secret Access Key and signing method. "
                             "Consult the service documentation for details.")
        key = request._access_key
        principal_account = key.account_id
        org_backend = _org_backend_of(principal_account)
        caller = {
            "aws:principalaccount": principal_account,
            "aws:principaltype": "AssumedRole" if isinstance(key, access_control.AssumedRoleAccessKey) else "User",
            "aws:requestedregion": request._region,
        }
        if org_backend is not None:
            caller["aws:principalorgid"] = org_backend.org.id
        params = self.request_params if isinstance(self.request_params, dict) else {}
        for checked_action, arn, keys in organizations_checks(action, params, self.current_account):
            request._action = f"organizations:{checked_action}"
            ORG_AUTH.values = {**caller, **keys}
            try:
                request.check_action_permitted(arn)
            except AccessDeniedError:
                raise json_error(self, 400, "AccessDeniedException",
                                 f"User: {key.arn} is not authorized to perform: "
                                 f"organizations:{checked_action} on resource: {arn}")
            finally:
                ORG_AUTH.values = None

    access_control.IAMPolicyStatement.is_action_permitted = statement
    utils.make_random_policy_id = make_random_policy_id
    OrganizationsResponse._authenticate_and_authorize_normal_action = authorize


def patch_moto_identity_center_authorization() -> None:
    """Refuse IAM Identity Center calls (sso-admin, X-Amz-Target SWBExternalService.*, and
    identitystore, AWSIdentityStore.*) in their JSON protocol's shape, as AWS does.

    moto already authorizes them against the right actions, `sso:<Operation>` and
    `identitystore:<Operation>` (it takes the prefix from the SigV4 signing name, which is `sso`
    for sso-admin, not `sso-admin`), but answered a refusal in the query protocol's XML (HTTP 403,
    Code AccessDenied) that no SDK of these services reads as AccessDeniedException. Now: HTTP 400
    {"__type": "AccessDeniedException", "Message": "User: ARN is not authorized to perform:
    sso:ACTION"}; an unknown key or a bad signature gets UnrecognizedClientException /
    InvalidSignatureException (HTTP 403). Every call is checked against the resource "*" (the
    roles of identity-center-role.yaml grant on "*"; a policy scoped to instance, permission-set or
    account ARNs is not evaluated per ARN here).
    """
    from moto.core.exceptions import AccessDeniedError, InvalidClientTokenIdError, SignatureDoesNotMatchError
    from moto.identitystore.responses import IdentityStoreResponse
    from moto.ssoadmin.responses import SSOAdminResponse

    def authorizing(original):  # type: ignore[no-untyped-def]
        def authorize(self, resource: str = "*") -> None:  # type: ignore[no-untyped-def]
            try:
                original(self, resource)
            except InvalidClientTokenIdError:
                raise json_protocol_error(self, 403, "UnrecognizedClientException",
                                          "The security token included in the request is invalid.")
            except SignatureDoesNotMatchError:
                raise json_protocol_error(self, 403, "InvalidSignatureException",
                                          "The request signature we calculated does not match the signature "
                                          "you provided.")
            except AccessDeniedError as error:
                raise json_protocol_error(self, 400, "AccessDeniedException", error.message)

        return authorize

    for response in (SSOAdminResponse, IdentityStoreResponse):
        response._authenticate_and_authorize_normal_action = authorizing(
            response._authenticate_and_authorize_normal_action)


def patch_moto_identity_center_instances() -> None:
    """One IAM Identity Center instance, the organization's: in ORGANIZATION_MANAGEMENT_ACCOUNT_ID,
    in IDENTITY_CENTER_REGION, with identifiers in AWS's formats.

    Stock moto gives every account in every Region an instance of its own, so ListInstances with
    the wrong account's credentials (or in the wrong Region) found an empty instance instead of
    nothing, and it draws IDs AWS never issues: instance `ssoins-` and identity store `d-` followed
    by letters and digits (AWS: 16 and 10 hex digits; the API's pattern is d-[0-9a-f]{10}), and
    permission-set ARNs under the instance ARN (`instance/ssoins-.../ps-...`) where AWS writes
    `arn:aws:sso:::permissionSet/ssoins-.../ps-<16 hex digits>`.
    """
    from moto.ssoadmin import models

    original_init = models.SSOAdminBackend.__init__

    def init(self, region_name, account_id):  # type: ignore[no-untyped-def]
        original_init(self, region_name, account_id)
        if account_id != ORGANIZATION_MANAGEMENT_ACCOUNT_ID or region_name != IDENTITY_CENTER_REGION:
            self.instances.clear()
            return
        for instance in self.instances:
            partition = instance.instance_arn.split(":")[1]
            instance.identity_store_id = f"d-{uuid.uuid4().hex[:10]}"
            instance.instance_arn = f"arn:{partition}:sso:::instance/ssoins-{uuid.uuid4().hex[:16]}"

    def generate_id(instance_arn: str) -> str:
        partition, instance_id = instance_arn.split(":")[1], instance_arn.rsplit("/", 1)[-1]
        return f"arn:{partition}:sso:::permissionSet/{instance_id}/ps-{uuid.uuid4().hex[:16]}"

    models.SSOAdminBackend.__init__ = init
    models.PermissionSet.generate_id = staticmethod(generate_id)


def patch_moto_sso_admin_assignments() -> None:
    """CreateAccountAssignment / DeleteAccountAssignment as Identity Center does them, each request
    readable afterwards by its RequestId.

    Stock moto reused the assignment's ID as every request's (a deletion had the creation's
    RequestId), forgot a creation's status once the assignment was deleted, added an assignment
    again when asked twice (one DeleteAccountAssignment then left the twin in place: the user kept
    access), and assigned permission sets that do not exist. Now every request gets its own
    RequestId, answered by DescribeAccountAssignmentCreationStatus / ...DeletionStatus (an unknown
    one: ResourceNotFoundException); creating an assignment that exists succeeds and changes
    nothing; an unknown permission set -> ResourceNotFoundException; and a creation first
    provisions the permission set into the account if it is not yet (see
    provision_permission_set_to_account), as AWS does: if that fails (a customer-managed policy
    the permission set references is missing in the account) the request's Status is FAILED with
    its FailureReason and nothing is assigned. Requests complete at once (Status SUCCEEDED, never
    IN_PROGRESS). Deleting an assignment that does not exist stays ResourceNotFoundException.
    """
    from moto.core.utils import unix_time
    from moto.ssoadmin import models
    from moto.ssoadmin.exceptions import ResourceNotFoundException
    from moto.ssoadmin.responses import SSOAdminResponse

    fields = ("TargetId", "TargetType", "PermissionSetArn", "PrincipalType", "PrincipalId")

    def requests(backend) -> dict:  # type: ignore[no-untyped-def]
        if not hasattr(backend, "killswitch_requests"):
            backend.killswitch_requests = {}
        return backend.killswitch_requests

    def begin(response, kind: str) -> tuple[dict, dict]:  # type: ignore[no-untyped-def]
        params = json.loads(response.body or "{}")
        status = {"Status": "SUCCEEDED", "RequestId": str(uuid.uuid4()), "CreatedDate": unix_time(),
                  **{k: params.get(k) for k in fields}}
        requests(response.ssoadmin_backend)[(kind, status["RequestId"])] = status
        return params, status

    def existing(backend, params):  # type: ignore[no-untyped-def]
        try:
            return backend._find_account(params.get("InstanceArn"), *(params.get(k) for k in fields))
        except ResourceNotFoundException:
            return None

    def create_account_assignment(self) -> str:  # type: ignore[no-untyped-def]
        backend = self.ssoadmin_backend
        params = json.loads(self.body or "{}")
        permission_set = backend._find_permission_set(params.get("InstanceArn"), params.get("PermissionSetArn"))
        _, status = begin(self, "create")
        failure = provision_permission_set_to_account(permission_set, params.get("TargetId") or "", resync=False)
        if failure:
            status.update(Status="FAILED", FailureReason=failure)
        elif existing(backend, params) is None:
            backend.account_assignments.append(models.AccountAssignment(
                params.get("InstanceArn"), *(params.get(k) for k in fields)))
        return json.dumps({"AccountAssignmentCreationStatus": status})

    def delete_account_assignment(self) -> str:  # type: ignore[no-untyped-def]
        backend = self.ssoadmin_backend
        params = json.loads(self.body or "{}")
        assignment = existing(backend, params)
        if assignment is None:
            raise ResourceNotFoundException
        backend.account_assignments.remove(assignment)
        backend.deleted_account_assignments.append(assignment)
        _, status = begin(self, "delete")
        return json.dumps({"AccountAssignmentDeletionStatus": status})

    def describing(kind: str, param: str, member: str):  # type: ignore[no-untyped-def]
        def describe(self) -> str:  # type: ignore[no-untyped-def]
            status = requests(self.ssoadmin_backend).get((kind, self._get_param(param)))
            if status is None:
                raise ResourceNotFoundException(f"Request {self._get_param(param)} not found")
            return json.dumps({member: status})

        return describe

    SSOAdminResponse.create_account_assignment = create_account_assignment
    SSOAdminResponse.delete_account_assignment = delete_account_assignment
    SSOAdminResponse.describe_account_assignment_creation_status = describing(
        "create", "AccountAssignmentCreationRequestId", "AccountAssignmentCreationStatus")
    SSOAdminResponse.describe_account_assignment_deletion_status = describing(
        "delete", "AccountAssignmentDeletionRequestId", "AccountAssignmentDeletionStatus")


# Where Identity Center puts the roles it provisions (for an instance outside us-east-1 AWS adds
# the Region: /aws-reserved/sso.amazonaws.com/eu-west-1/).
SSO_ROLE_PATH = "/aws-reserved/sso.amazonaws.com/"
# IAM actions that change or delete a role (IamResponse method names).
ROLE_WRITES = (
    "put_role_policy", "delete_role_policy", "attach_role_policy", "detach_role_policy",
    "update_assume_role_policy", "delete_role", "put_role_permissions_boundary",
    "delete_role_permissions_boundary", "update_role", "update_role_description", "tag_role", "untag_role",
)


def patch_moto_identity_center_roles_protected() -> None:
    """IAM refuses to change or delete a role Identity Center provisioned (path
    /aws-reserved/sso.amazonaws.com/...), as AWS does: HTTP 400, Code UnmodifiableEntity, "Cannot
    perform the operation on the protected role 'NAME' - this role is only modifiable by AWS".

    Stock moto lets anyone with iam:PutRolePolicy write to an AWSReservedSSO_ role, so a responder
    that contained a portal user by editing that role (which AWS refuses: the deny must go into a
    customer-managed policy the permission set references) would pass here. The check runs after
    authorization, as in AWS; the harness's own provisioning writes through moto's backend.
    """
    from moto.iam.exceptions import IAMException
    from moto.iam.responses import IamResponse

    class UnmodifiableEntity(IAMException):
        code = "UnmodifiableEntity"

    def guarded(original):  # type: ignore[no-untyped-def]
        def call(self):  # type: ignore[no-untyped-def]
            name = self._get_param("RoleName")
            role = next((r for r in self.backend.roles.values() if r.name == name), None) if name else None
            if role is not None and (role.path or "").startswith(SSO_ROLE_PATH):
                raise UnmodifiableEntity(
                    f"Cannot perform the operation on the protected role '{name}' - this role is only "
                    "modifiable by AWS")
            return original(self)

        call.__name__ = original.__name__
        return call

    for name in ROLE_WRITES:
        setattr(IamResponse, name, guarded(getattr(IamResponse, name)))


# The local organization: its management account is ORGANIZATION_MANAGEMENT_ACCOUNT_ID, the
# function's account ACCOUNT_ID joined it by invitation. Fixed IDs (AWS's are random; discover them
# with DescribeOrganization and ListRoots).
ORGANIZATION_ID = "o-killswitch"
ORGANIZATION_ROOT_ID = "r-ks00"


def organize() -> dict:
    """The local organization, built in moto's process as if ACCOUNT_ID had accepted an invitation
    from ORGANIZATION_MANAGEMENT_ACCOUNT_ID (moto has no handshakes): FeatureSet ALL,
    SERVICE_CONTROL_POLICY enabled in the root, ACCOUNT_ID under the root with p-FullAWSAccess
    (and p-RCPFullAWSAccess, as moto gives created accounts) attached directly, JoinedMethod
    INVITED, Status ACTIVE.

    The function's account is the member because AWS never applies an SCP to the management
    account: a quarantine SCP on ACCOUNT_ID must bind its principals. As a member, ACCOUNT_ID may
    call DescribeOrganization (MasterAccountId: the management account) but gets
    AccessDeniedException for the management-only operations (policies, attachments, ...).

    An invited account gets no OrganizationAccountAccessRole (AWS creates it only in created
    accounts). CreateOrganization from either account then fails with
    AlreadyInOrganizationException, as in AWS.
    """
    from moto.core.utils import utcnow
    from moto.organizations import models, utils

    management = ORGANIZATION_MANAGEMENT_ACCOUNT_ID
    backend = models.organizations_backends[management]["aws"]
    fixed = {"make_random_org_id": lambda: ORGANIZATION_ID, "make_random_root_id": lambda: ORGANIZATION_ROOT_ID}
    saved = {name: getattr(utils, name) for name in fixed}
    try:
        for name, make in fixed.items():
            setattr(utils, name, make)
        backend.create_organization(region="us-east-1", FeatureSet="ALL")
    finally:
        for name, make in saved.items():
            setattr(utils, name, make)
    org = backend.org
    backend.enable_policy_type(RootId=org.root_id, PolicyType="SERVICE_CONTROL_POLICY")

    # FakeAccount.__init__ would create OrganizationAccountAccessRole; an invited account has none.
    member = models.FakeAccount.__new__(models.FakeAccount)
    member.type = "ACCOUNT"
    member.region = org.region
    member.organization_id = org.id
    member.master_account_id = org.master_account_id
    member.create_account_status_id = utils.make_random_create_account_status_id()
    member.id = ACCOUNT_ID
    member.name = "killswitch-local"
    member.email = "security@example.com"
    member.create_time = utcnow()
    member.status = "ACTIVE"
    member.state = "ACTIVE"
    member.joined_method = "INVITED"
    member.parent_id = org.root_id
    member.attached_policies = []
    member.tags = {}
    backend.accounts.append(member)
    for policy_id in (utils.DEFAULT_SCP_POLICY_ID, utils.DEFAULT_RCP_POLICY_ID):
        backend.attach_policy(PolicyId=policy_id, TargetId=member.id)
    models.organizations_backends.master_accounts[member.id] = (management, "aws")
    return {"KILLSWITCH_LOCAL_ORGANIZATION_ID": org.id, "KILLSWITCH_LOCAL_ORGANIZATION_ROOT_ID": org.root_id,
            "KILLSWITCH_LOCAL_ORGANIZATION_MANAGEMENT_ACCOUNT": org.master_account_id}


# The quarantine role deploy_quarantine_role sets up for drills (quarantine-role.yaml's parameters).
QUARANTINE_STACK_NAME = "killswitch-local-quarantine"
QUARANTINE_ROLE_NAME = "KillSwitchQuarantine"
QUARANTINE_EXTERNAL_ID = "killswitch-local-quarantine"
# The responder role the template trusts: a name only, no such role exists here (drills assume the
# quarantine role as ACCOUNT_ID's admin user, an operator of the template).
QUARANTINE_RESPONDER_ROLE_NAME = "killswitch-local-responder"
QUARANTINE_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "quarantine-role.yaml")


def deploy_stack(endpoint: str, key: dict, template_path: str, stack_name: str, parameters: dict,
                 want_outputs: dict) -> None:
    """Create a stack from one of the repository's templates as `key`'s holder, in us-east-1.
    Raises (naming the template, the stack's status and reason, its outputs and events) unless it
    reaches CREATE_COMPLETE with exactly the outputs in `want_outputs` (key -> value) among its own."""
    import boto3

    with open(template_path) as fh:
        template = fh.read()
    cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    cfn.create_stack(StackName=stack_name, TemplateBody=template, Capabilities=["CAPABILITY_NAMED_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    if stack["StackStatus"] != "CREATE_COMPLETE" or any(outputs.get(k) != v for k, v in want_outputs.items()):
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
        raise RuntimeError(
            f"{os.path.basename(template_path)}: stack {stack['StackId']} is {stack['StackStatus']} "
            f"({stack.get('StackStatusReason', 'no reason given')}), outputs {outputs}, want {want_outputs}; events: "
            + "; ".join(f"{e.get('LogicalResourceId')} {e.get('ResourceStatus')} {e.get('ResourceStatusReason', '')}"
                        for e in events))


def deploy_quarantine_role(endpoint: str, management_key: dict, operator_arn: str) -> dict:
    """quarantine-role.yaml, deployed through CloudFormation as the management account's admin,
    trusting `operator_arn` (ACCOUNT_ID's admin user) with QUARANTINE_EXTERNAL_ID. Raises unless
    the stack reaches CREATE_COMPLETE and its output is the expected role."""
    role_arn = f"arn:aws:iam::{ORGANIZATION_MANAGEMENT_ACCOUNT_ID}:role/{QUARANTINE_ROLE_NAME}"
    deploy_stack(endpoint, management_key, QUARANTINE_TEMPLATE, QUARANTINE_STACK_NAME, {
        "SecurityAccountId": ACCOUNT_ID,
        "ResponderRoleName": QUARANTINE_RESPONDER_ROLE_NAME,
        "ExternalId": QUARANTINE_EXTERNAL_ID,
        "QuarantineRoleName": QUARANTINE_ROLE_NAME,
        "OperatorRoleArns": operator_arn,
    }, {"QuarantineRoleArn": role_arn})
    return {"KILLSWITCH_LOCAL_QUARANTINE_ROLE_ARN": role_arn,
            "KILLSWITCH_LOCAL_QUARANTINE_EXTERNAL_ID": QUARANTINE_EXTERNAL_ID}


# IAM Identity Center (see deploy_identity_center): the organization's instance lives in the
# management account, in this Region (moto's instance of that account and Region, see
# patch_moto_identity_center_instances); identity-center-role.yaml's parameters.
IDENTITY_CENTER_REGION = "us-east-1"
IDENTITY_CENTER_STACK_NAME = "killswitch-local-identity-center"
IDENTITY_CENTER_ROLE_NAME = "KillSwitchIdentityCenter"
IDENTITY_CENTER_EXTERNAL_ID = "killswitch-local-identity-center"
IDENTITY_CENTER_POLICY_STACK_NAME = "killswitch-local-identity-center-policy"
# identity-center-policy.yaml's policy, which the seeded permission sets reference.
IDENTITY_CENTER_DENY_POLICY = ("KillSwitchDeny", "/")
IDENTITY_CENTER_ROLE_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                             "identity-center-role.yaml")
IDENTITY_CENTER_POLICY_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                               "identity-center-policy.yaml")
# The portal's role sessions last as long as the permission set says (moto's default: 3600).
IDENTITY_CENTER_SESSION_DURATION = "PT1H"
# Serializes the control endpoints' work on the Identity Center, IAM and STS backends.
IDENTITY_CENTER_LOCK = threading.Lock()


def deploy_identity_center(endpoint: str, management_key: dict, security_key: dict, operator_arn: str) -> dict:
    """identity-center-role.yaml in the management account (as its admin, trusting the responder
    role name and `operator_arn`, ACCOUNT_ID's admin user, with IDENTITY_CENTER_EXTERNAL_ID,
    RemoveAssignments on, so both the responder and the Restore role exist), and
    identity-center-policy.yaml in ACCOUNT_ID (as its admin: KillSwitchDeny, which the permission
    sets seeded into ACCOUNT_ID reference). Raises unless both stacks reach CREATE_COMPLETE with
    the expected outputs. Returns KILLSWITCH_LOCAL_IDENTITY_CENTER_* and the instance's IDs."""
    from moto.ssoadmin.models import ssoadmin_backends

    role_arn = f"arn:aws:iam::{ORGANIZATION_MANAGEMENT_ACCOUNT_ID}:role/{IDENTITY_CENTER_ROLE_NAME}"
    restore_arn = f"{role_arn}Restore"
    deploy_stack(endpoint, management_key, IDENTITY_CENTER_ROLE_TEMPLATE, IDENTITY_CENTER_STACK_NAME, {
        "SecurityAccountId": ACCOUNT_ID,
        "ResponderRoleName": QUARANTINE_RESPONDER_ROLE_NAME,
        "ExternalId": IDENTITY_CENTER_EXTERNAL_ID,
        "RemoveAssignments": "true",
        "OperatorRoleArns": operator_arn,
    }, {"IdentityCenterRoleArn": role_arn, "RestoreRoleArn": restore_arn})
    name, path = IDENTITY_CENTER_DENY_POLICY
    deploy_stack(endpoint, security_key, IDENTITY_CENTER_POLICY_TEMPLATE, IDENTITY_CENTER_POLICY_STACK_NAME,
                 {"PolicyName": name}, {"PolicyArn": f"arn:aws:iam::{ACCOUNT_ID}:policy{path}{name}"})
    instance = ssoadmin_backends[ORGANIZATION_MANAGEMENT_ACCOUNT_ID][IDENTITY_CENTER_REGION].instances[0]
    return {"KILLSWITCH_LOCAL_IDENTITY_CENTER_ROLE_ARN": role_arn,
            "KILLSWITCH_LOCAL_IDENTITY_CENTER_RESTORE_ROLE_ARN": restore_arn,
            "KILLSWITCH_LOCAL_IDENTITY_CENTER_EXTERNAL_ID": IDENTITY_CENTER_EXTERNAL_ID,
            "KILLSWITCH_LOCAL_IDENTITY_CENTER_INSTANCE_ARN": instance.instance_arn,
            "KILLSWITCH_LOCAL_IDENTITY_STORE_ID": instance.identity_store_id,
            "KILLSWITCH_LOCAL_IDENTITY_CENTER_REGION": IDENTITY_CENTER_REGION}


def _identity_center():  # type: ignore[no-untyped-def]
    """(sso-admin backend, instance, identitystore backend) of the organization's instance."""
    from moto.identitystore.models import identitystore_backends
    from moto.ssoadmin.models import ssoadmin_backends

    sso = ssoadmin_backends[ORGANIZATION_MANAGEMENT_ACCOUNT_ID][IDENTITY_CENTER_REGION]
    return sso, sso.instances[0], identitystore_backends[ORGANIZATION_MANAGEMENT_ACCOUNT_ID][IDENTITY_CENTER_REGION]


def _duration_seconds(value) -> int:  # type: ignore[no-untyped-def]
    """A permission set's SessionDuration (ISO 8601 as the API takes it, or moto's 3600) in seconds."""
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", str(value or ""))
    if not m or not any(m.groups()):
        return 3600
    hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return hours * 3600 + minutes * 60 + seconds


def sso_role_name(permission_set, account: str) -> str:  # type: ignore[no-untyped-def]
    """AWSReservedSSO_<permission set>_<16 hex digits>: AWS draws the suffix when it first
    provisions a permission set into an account and keeps it; here it is derived from both, so
    every provisioning (and a second user of the same permission set) finds the same role."""
    suffix = hashlib.sha256(f"{permission_set.permission_set_arn}|{account}".encode()).hexdigest()[:16]
    return f"AWSReservedSSO_{permission_set.name}_{suffix}"


def sso_role(permission_set, account: str):  # type: ignore[no-untyped-def]
    """The role `permission_set` is provisioned as in `account`, or None if it is not."""
    from moto.iam.models import iam_backends

    name = sso_role_name(permission_set, account)
    return next((r for r in iam_backends[account]["aws"].roles.values() if r.name == name), None)


def _permission_set_policy_arns(account: str, references, managed_arns) -> list[str]:  # type: ignore[no-untyped-def]
    """The managed policies a permission set's role gets in `account`: each customer-managed
    reference (name, path) as that account's policy, then the AWS-managed ones."""
    return [f"arn:aws:iam::{account}:policy{path}{name}" for name, path in references] + list(managed_arns)


def _provisioning_failure(account: str, arns: list[str]) -> str | None:
    """Why Identity Center would fail to provision a role with these policies into `account`
    (one does not exist there), or None."""
    from moto.iam.models import iam_backends

    iam = iam_backends[account]["aws"]
    for arn in arns:
        if arn not in iam.managed_policies:
            return f"Received a 404 status error: Not supported policy {arn}."
    return None


def provision_permission_set_to_account(permission_set, account: str, resync: bool = True) -> str | None:  # type: ignore[no-untyped-def]
    """What Identity Center does when it provisions a permission set into an account (moto's
    ProvisionPermissionSet only records it, and fails for a target account): an IAM role
    AWSReservedSSO_<name>_<suffix> (see sso_role_name) at SSO_ROLE_PATH, trusting Identity
    Center's SAML provider (so no one can sts:AssumeRole it; portal sessions are issued by
    identity_center_portal_credentials), with the permission set's inline policy as
    AwsSSOInlinePolicy and its customer-managed references and AWS-managed policies attached.
    Provisioning again brings the role in line with the permission set; `resync=False` leaves an
    already provisioned role alone (what CreateAccountAssignment does). Written through moto's
    backend, so patch_moto_identity_center_roles_protected does not apply.

    Returns None, or why provisioning failed (a referenced policy missing in the account, as
    Identity Center reports it); then nothing was changed.
    """
    from moto.iam.models import iam_backends

    iam = iam_backends[account]["aws"]
    role = sso_role(permission_set, account)
    if role is not None and not resync:
        return None
    arns = _permission_set_policy_arns(account, [(p.name, p.path) for p in permission_set.customer_managed_policies],
                                       [p.arn for p in permission_set.managed_policies])
    failure = _provisioning_failure(account, arns)
    if failure:
        return failure
    name = sso_role_name(permission_set, account)
    if role is None:
        provider = hashlib.sha256(permission_set.instance_arn.encode()).hexdigest()[:16]
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{account}:saml-provider/AWSSSO_{provider}_DO_NOT_DELETE"},
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
            "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
        }]}
        role = iam.create_role(name, json.dumps(trust), SSO_ROLE_PATH, None, "", [],
                               str(_duration_seconds(permission_set.session_duration)))
    if permission_set.inline_policy:
        iam.put_role_policy(name, "AwsSSOInlinePolicy", permission_set.inline_policy)
    elif "AwsSSOInlinePolicy" in role.policies:
        iam.delete_role_policy(name, "AwsSSOInlinePolicy")
    for arn in arns:
        if arn not in role.managed_policies:
            iam.attach_role_policy(arn, name)
    for arn in [a for a in role.managed_policies if a not in arns]:
        iam.detach_role_policy(arn, name)
    instance = next((i for i in _identity_center()[0].instances if i.instance_arn == permission_set.instance_arn), None)
    if instance is not None and permission_set not in instance.provisioned_permission_sets:
        instance.provisioned_permission_sets.append(permission_set)
    return None


def _identity_store_user_id(store, store_id: str, user_name: str) -> str | None:  # type: ignore[no-untyped-def]
    from moto.identitystore.exceptions import ResourceNotFoundException

    try:
        return store.get_user_id(store_id, {"UniqueAttribute": {"AttributePath": "userName",
                                                                "AttributeValue": user_name}})[0]
    except ResourceNotFoundException:
        return None


def _seed_request(data: dict) -> tuple[str, str, str, bool] | str:
    """(account, permission set name, user name, via_group) of a seed request, or what is wrong."""
    from moto.organizations.models import organizations_backends

    account = str(data.get("account", ACCOUNT_ID))
    name, user_name = data.get("permission_set"), data.get("user_name")
    if not re.fullmatch(r"\d{12}", account):
        return f"account must be a 12-digit account ID, not {account!r}"
    org = organizations_backends[ORGANIZATION_MANAGEMENT_ACCOUNT_ID]["aws"].org
    members = [a.id for a in organizations_backends[ORGANIZATION_MANAGEMENT_ACCOUNT_ID]["aws"].accounts] if org else []
    if account not in members:
        return f"account {account} is not in the organization of {ORGANIZATION_MANAGEMENT_ACCOUNT_ID}"
    if not isinstance(name, str) or not re.fullmatch(r"[\w+=,.@-]{1,32}", name):
        return "permission_set must be a permission set name (1-32 of letters, digits and +=,.@_-)"
    if not isinstance(user_name, str) or not user_name.strip() or len(user_name) > 64:
        return "user_name must be a non-empty user name (at most 64 characters: it names the role session)"
    return account, name, user_name, bool(data.get("via_group", False))


def identity_center_seed(data: dict) -> tuple[int, dict]:
    """POST /_killswitch/identitycenter/seed: what an Identity Center administrator does to give a
    user a permission set in an account, in the management account's backends directly: the
    permission set (reused by name) referencing KillSwitchDeny (path /) with an inline policy
    allowing everything, the identity-store user, the account assignment to the user (or, with
    via_group, to the group killswitch-drill-<permission set> the user is added to), and the
    permission set provisioned into the account (see provision_permission_set_to_account).
    Repeats are idempotent. If a referenced policy is missing in the account: 400
    ValidationException (Identity Center's provisioning failure) and nothing is created."""
    from moto.ssoadmin.models import AccountAssignment

    parsed = _seed_request(data)
    if isinstance(parsed, str):
        return 400, {"error": "ValidationException", "message": parsed}
    account, name, user_name, via_group = parsed
    allow_all = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "DrillUserCanWork", "Effect": "Allow", "Action": "*", "Resource": "*"}]})
    with IDENTITY_CENTER_LOCK:
        sso, instance, store = _identity_center()
        store_id = instance.identity_store_id
        permission_set = next((p for p in sso.permission_sets
                               if p.instance_arn == instance.instance_arn and p.name == name), None)
        references = [(p.name, p.path) for p in permission_set.customer_managed_policies] if permission_set else []
        managed = [p.arn for p in permission_set.managed_policies] if permission_set else []
        failure = _provisioning_failure(account, _permission_set_policy_arns(
            account, references + [IDENTITY_CENTER_DENY_POLICY] * (IDENTITY_CENTER_DENY_POLICY not in references),
            managed))
        if failure:
            return 400, {"error": "ValidationException", "message": failure}
        if permission_set is None:
            arn = sso.create_permission_set(name, f"killswitch drill permission set {name}", instance.instance_arn,
                                            IDENTITY_CENTER_SESSION_DURATION, None, [])["PermissionSetArn"]
            permission_set = sso._find_permission_set(instance.instance_arn, arn)
        if IDENTITY_CENTER_DENY_POLICY not in references:
            deny_name, deny_path = IDENTITY_CENTER_DENY_POLICY
            sso.attach_customer_managed_policy_reference_to_permission_set(
                instance.instance_arn, permission_set.permission_set_arn, {"Name": deny_name, "Path": deny_path})
        if not permission_set.inline_policy:
            sso.put_inline_policy_to_permission_set(instance.instance_arn, permission_set.permission_set_arn, allow_all)
        user_id = _identity_store_user_id(store, store_id, user_name)
        if user_id is None:
            given = re.split(r"[@.]", user_name)[0] or user_name
            user_id = store.create_user(
                store_id, user_name, {"GivenName": given.capitalize(), "FamilyName": "Drill",
                                      "Formatted": f"{given.capitalize()} Drill"},
                user_name, None, None, [{"Value": user_name, "Type": "work", "Primary": True}] if "@" in user_name else [],
                [], [], None, None, None, None, None)[0]
        group_id = None
        if via_group:
            group_name = f"killswitch-drill-{name}"
            group_id = next((g.GroupId for g in store.identity_stores[store_id].groups.values()
                             if g.DisplayName == group_name), None)
            if group_id is None:
                group_id = store.create_group(store_id, group_name, f"killswitch drill: {name} in {account}")[0]
            memberships = store.identity_stores[store_id].group_memberships.values()
            if not any(m["GroupId"] == group_id and m["MemberId"]["UserId"] == user_id for m in memberships):
                store.create_group_membership(store_id, group_id, {"UserId": user_id})
        principal_type, principal_id = ("GROUP", group_id) if via_group else ("USER", user_id)
        if not any(a.instance_arn == instance.instance_arn and a.target_id == account
                   and a.permission_set_arn == permission_set.permission_set_arn
                   and a.principal_type == principal_type and a.principal_id == principal_id
                   for a in sso.account_assignments):
            sso.account_assignments.append(AccountAssignment(
                instance.instance_arn, account, "AWS_ACCOUNT", permission_set.permission_set_arn,
                principal_type, principal_id))
        failure = provision_permission_set_to_account(permission_set, account)
        if failure:  # checked above: only a policy deleted meanwhile could get here
            return 400, {"error": "ValidationException", "message": failure}
        role = sso_role(permission_set, account)
    return 200, {"permission_set_arn": permission_set.permission_set_arn, "instance_arn": instance.instance_arn,
                 "identity_store_id": store_id, "user_id": user_id, "group_id": group_id,
                 "role_name": role.name, "role_arn": role.arn, "role_id": role.id}


def identity_center_portal_credentials(data: dict) -> tuple[int, dict]:
    """POST /_killswitch/identitycenter/portal-credentials: what the access portal's
    GetRoleCredentials does for a signed-in user. The user is looked up in the identity store by
    user name (unknown: 401 UnauthorizedException); the permission set must be assigned to the
    user in that account right now, directly (USER) or through a group the user is in (GROUP),
    and provisioned there, else 403 ForbiddenException "No access" (so removing the assignment
    stops new portal sessions; a "reason" member says which, for test failures). Then the role is assumed through moto's STS backend with the user
    name as the session name, and the key is remembered as that user's (identitystore:UserId, see
    principal_keys)."""
    from moto.sts.models import sts_backends

    account = str(data.get("account", ACCOUNT_ID))
    permission_set_arn, user_name = data.get("permission_set_arn"), data.get("user_name")
    if not isinstance(permission_set_arn, str) or not isinstance(user_name, str) or not re.fullmatch(r"\d{12}", account):
        return 400, {"error": "ValidationException",
                     "message": "account (12 digits), permission_set_arn and user_name are required"}
    no_access = {"error": "ForbiddenException", "message": "No access"}
    with IDENTITY_CENTER_LOCK:
        sso, instance, store = _identity_center()
        store_id = instance.identity_store_id
        user_id = _identity_store_user_id(store, store_id, user_name)
        if user_id is None:
            return 401, {"error": "UnauthorizedException", "message": "Session token not found or invalid"}
        groups = {m["GroupId"] for m in store.identity_stores[store_id].group_memberships.values()
                  if m["MemberId"]["UserId"] == user_id}
        if not any(a.instance_arn == instance.instance_arn and a.target_id == account
                   and a.permission_set_arn == permission_set_arn
                   and ((a.principal_type == "USER" and a.principal_id == user_id)
                        or (a.principal_type == "GROUP" and a.principal_id in groups))
                   for a in sso.account_assignments):
            return 403, {**no_access, "reason": "no current assignment of this permission set in this account"}
        permission_set = next((p for p in sso.permission_sets if p.permission_set_arn == permission_set_arn), None)
        role = sso_role(permission_set, account) if permission_set is not None else None
        if role is None:
            return 403, {**no_access, "reason": "the permission set is not provisioned in this account"}
        session = sts_backends[account]["aws"].assume_role(
            region_name=IDENTITY_CENTER_REGION, role_session_name=user_name, role_arn=role.arn, policy=None,
            duration=_duration_seconds(permission_set.session_duration), external_id=None)
        PORTAL_SESSIONS[session.access_key_id] = user_id
    return 200, {"AccessKeyId": session.access_key_id, "SecretAccessKey": session.secret_access_key,
                 "SessionToken": session.session_token,
                 "Expiration": int(session.expiration.replace(tzinfo=timezone.utc).timestamp() * 1000),
                 "UserId": user_id, "RoleName": role.name, "PrincipalId": f"{role.id}:{user_name}"}


def iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


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


def event_name(environ: dict, params: dict) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.split(".")[-1]
    return params.get("Action", f"{environ.get('REQUEST_METHOD', 'GET')}Request")


def error_code(body: bytes) -> str | None:
    text = body[:4096].decode("utf-8", "replace")
    m = re.search(r"<Code>([^<]+)</Code>", text) or re.search(r'"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"', text)
    return m.group(1) if m else None


def camel(params: dict) -> dict:
    """Query parameters as CloudTrail writes requestParameters: camelCase keys."""
    return {k[:1].lower() + k[1:]: v for k, v in params.items() if k not in ("Action", "Version")}


def response_elements(name: str, body: bytes) -> dict | None:
    m = re.search(rb"<AccessKeyId>([A-Z0-9]+)</AccessKeyId>", body)
    if not m:
        return None
    key = m.group(1).decode()
    if name == "CreateAccessKey":
        user = re.search(rb"<UserName>([^<]+)</UserName>", body)
        return {"accessKey": {"accessKeyId": key, "status": "Active",
                              "userName": user.group(1).decode() if user else None}}
    if name in ("AssumeRole", "GetSessionToken", "GetFederationToken", "AssumeRoleWithWebIdentity"):
        return {"credentials": {"accessKeyId": key}}
    return None


class Harness:
    """WSGI middleware in front of moto: control API, LookupEvents and BatchUpdateFindings
    doubles, call recorder."""

    def __init__(self, moto_app, trail: CloudTrailDouble, hub: SecurityHubDouble | None = None) -> None:
        self.moto_app = moto_app
        self.trail = trail
        self.hub = hub or SecurityHubDouble()

    def __call__(self, environ, start_response):
        environ["killswitch.arrived"] = time.monotonic()
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_killswitch/"):
            return self.control(environ, start_response, path)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = SCOPE_RE.search(auth)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if "CloudTrail_20131101." in target:
            return self.cloudtrail(environ, start_response, target, scope)
        if path == "/listRegions" and scope and scope.group(3) == "account":
            return self.list_regions(environ, start_response)
        if (path == "/findings/batchupdate" and scope and scope.group(3) == "securityhub"
                and environ.get("REQUEST_METHOD") == "PATCH"):
            return self.batch_update_findings(environ, start_response, scope)
        if not scope:
            return self.moto_app(environ, start_response)
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

    def control(self, environ, start_response, path):
        body = self.read_body(environ)
        data = json.loads(body or b"{}")
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
            return self.respond(start_response, status, payload, "application/json")
        if path == "/_killswitch/identitycenter/portal-credentials":
            status, payload = identity_center_portal_credentials(data)
            return self.respond(start_response, status, payload, "application/json")
        return self.respond(start_response, 404, {"message": "unknown control path"})

    def cloudtrail(self, environ, start_response, target, scope):
        region = scope.group(2) if scope else "us-east-1"
        operation = target.rsplit(".", 1)[1]
        if operation != "LookupEvents":
            return self.respond(start_response, 400, {"__type": "UnsupportedOperationException",
                                                       "message": f"{operation} is not part of the double"})
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
        return [response]

    def record(self, environ, scope, name: str, request_parameters: dict | None,
               elements: dict | None, code: str | None) -> None:
        """Store one authenticated call as the CloudTrail management event AWS would write."""
        key, region, service = scope.group(1), scope.group(2), scope.group(3)
        ident = identity_for(key)
        record = {
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
            "readOnly": bool(re.match(r"(Get|List|Describe|Lookup|Head)", name)),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ident.get("accountId", ACCOUNT_ID),
            "eventCategory": "Management",
        }
        if code:
            record["errorCode"] = code
            record["errorMessage"] = "recorded by the local CloudTrail double"
        self.trail.add(record)

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


def admin_in(endpoint: str, account: str) -> dict:
    """An admin user and its key in `account`, created while moto still accepts anything."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__(
        "x-moto-account-id", account))
    user = iam.create_user(UserName="killswitch-local-admin")["User"]
    iam.put_user_policy(UserName="killswitch-local-admin", PolicyName="admin", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    return {**iam.create_access_key(UserName="killswitch-local-admin")["AccessKey"], "UserArn": user["Arn"]}


def bootstrap(endpoint: str) -> dict:
    """Everything set up while moto still accepts anything (its environment for the env file): the
    function's identity (an admin user), an admin of a second account, the organization (see
    organize), the quarantine role in its management account (see deploy_quarantine_role), and
    the Identity Center roles there and deny policy in ACCOUNT_ID (see deploy_identity_center)."""
    key = admin_in(endpoint, ACCOUNT_ID)
    member = admin_in(endpoint, MEMBER_ACCOUNT_ID)
    env = {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "KILLSWITCH_LOCAL_MEMBER_ACCOUNT": MEMBER_ACCOUNT_ID,
        "KILLSWITCH_LOCAL_MEMBER_ACCESS_KEY_ID": member["AccessKeyId"],
        "KILLSWITCH_LOCAL_MEMBER_SECRET_ACCESS_KEY": member["SecretAccessKey"],
    }
    env.update(organize())
    assert ORGANIZATION_MANAGEMENT_ACCOUNT_ID == MEMBER_ACCOUNT_ID  # its admin deploys the role
    env.update(deploy_quarantine_role(endpoint, member, key["UserArn"]))
    env.update(deploy_identity_center(endpoint, member, key, key["UserArn"]))
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--env-file", required=True, help="where to write the shell environment for clients")
    args = parser.parse_args()

    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    from moto import settings
    from moto.core.responses import ActionAuthenticatorMixin
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    patch_moto_inactive_keys()
    patch_moto_signature_body()
    patch_moto_trust_policies()
    patch_moto_cloudformation_inline_policies()
    patch_moto_cloudformation_no_value_in_lists()
    patch_moto_user_resources()
    patch_moto_aws_deny_all()
    patch_moto_inline_policy_quota()
    patch_moto_managed_policy_limits()
    patch_moto_principal_condition_keys()
    patch_moto_service_specific_credentials()
    patch_moto_organizations_limits()
    patch_moto_organizations_management_only()
    patch_moto_organizations_authorization()
    patch_moto_identity_center_authorization()
    patch_moto_identity_center_instances()
    patch_moto_sso_admin_assignments()
    patch_moto_identity_center_roles_protected()
    trail = CloudTrailDouble()
    app = Harness(DomainDispatcherApplication(create_backend_app), trail)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    endpoint = f"http://127.0.0.1:{args.port}"
    try:
        creds = bootstrap(endpoint)
    except Exception as error:  # noqa: BLE001 - fail start-up loudly: no env file, exit status 1
        import traceback

        traceback.print_exc()
        print(f"local AWS failed to start: bootstrap: {error}", file=sys.stderr, flush=True)
        server.shutdown()
        return 1
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    # After bootstrap: its calls (users, keys, the quarantine stack) are no incident's evidence.
    trail.reset()
    app.hub.reset()

    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        **creds,
        "KILLSWITCH_LOCAL_AWS": endpoint,
        "KILLSWITCH_LOCAL_ACCOUNT": ACCOUNT_ID,
    }
    tmp = args.env_file + ".tmp"
    with open(tmp, "w") as fh:
        for k, v in env.items():
            fh.write(f"export {k}={v}\n")
    os.replace(tmp, args.env_file)
    print(f"local AWS ready on {endpoint} (auth enforced, Inactive keys refused, LookupEvents and BatchUpdateFindings doubles)", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
