"""Organizations calls authorized as IAM does: against the policy, account, root or OU ARNs they
name (organizations_checks), with the request's and the caller's condition keys, refusals in the
JSON protocol's shape (patch_moto_organizations_authorization)."""

from __future__ import annotations

import re
import threading

from .common import PRINCIPAL, json_protocol_error
from .policy_eval import identity_statement_result


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
