"""IAM and STS as strict as AWS where moto is kinder: Inactive keys refused, user resources,
trust policies honoured, AWS-managed policies, inline and managed policy quotas,
ListServiceSpecificCredentials, SigV4 over the bytes sent."""

from __future__ import annotations

import json
import uuid

from .common import REQUEST, SESSION_TAGS, as_list, identity_for


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


def trust_refusal(role_arn: str, caller: dict, external_id: str | None) -> str | None:
    """Why the role's trust policy refuses this caller, or None if it allows it.

    Evaluates what member roles use: Allow statements for sts:AssumeRole, AWS principals (ARN,
    account root or account ID, "*"), and StringEquals/StringLike/ArnEquals/ArnLike conditions on
    sts:ExternalId, aws:PrincipalArn and aws:PrincipalAccount. Any other condition fails closed.
    """
    import fnmatch

    from moto.iam.models import iam_backends

    from .lag import current_view

    parts = role_arn.split(":")
    if len(parts) != 6 or not parts[5].startswith("role/"):
        return "not a role ARN"
    account = parts[4]
    role = None
    if account in iam_backends:
        # The trust policy in force for this request (D seconds old under a propagation lag).
        role = current_view().account(account).role(parts[5].rsplit("/", 1)[-1])
    if role is None or role.arn != role_arn:
        return "no such role"
    doc = json.loads(role.trust)
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
        for p in as_list(principal["AWS"]):
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
                if not any(test(have, w) for w in as_list(wanted)):
                    return False
        return True

    for stmt in as_list(doc.get("Statement", [])):
        actions = as_list(stmt.get("Action", []))
        if stmt.get("Effect") != "Allow" or not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        if principal_ok(stmt) and conditions_ok(stmt):
            return None
    return "the trust policy does not allow this caller"


def patch_moto_user_resources() -> None:
    """Authorize IAM user actions against the user's ARN, and SimulatePrincipalPolicy against the
    simulated principal's, as IAM does.

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
        if (self.data.get("Action") or [""])[0] == "SimulatePrincipalPolicy":
            # IAM authorizes a simulation against the simulated principal.
            return (self.data.get("PolicySourceArn") or ["*"])[0]
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
        result = original(self)
        query = self.querystring
        tags = {keys[0]: query.get(name[: -len(".Key")] + ".Value", [""])[0]
                for name, keys in query.items() if name.startswith("Tags.member.") and name.endswith(".Key") and keys}
        if tags:
            SESSION_TAGS[result.result["Credentials"].access_key_id] = tags
        return result

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
    request with a space in a form field would fail with SignatureDoesNotMatch. And a request that
    sent no body is signed over an empty payload: for a body-less call moto signs its `data`
    instead, which Lambda's responses fill with the request headers, so every Lambda GET
    (GetFunctionConfiguration, GetFunctionConcurrency, ...) failed with SignatureDoesNotMatch.
    """
    from moto.iam import access_control

    original_init = access_control.IAMRequestBase.__init__
    original_request = access_control.IAMRequestBase._create_aws_request

    def init(self, account_id, method, path, data, body, headers, action):  # type: ignore[no-untyped-def]
        raw = getattr(REQUEST, "body", None)
        original_init(self, account_id, method, path, data, body or raw, headers, action)

    def create_aws_request(self):  # type: ignore[no-untyped-def]
        request = original_request(self)
        if not self._body:
            request.data = b""
        return request

    access_control.IAMRequestBase.__init__ = init
    access_control.IAMRequestBase._create_aws_request = create_aws_request


def patch_moto_iam_error_shape() -> None:
    """IAM refuses a call (AccessDenied, InvalidClientTokenId, SignatureDoesNotMatch) in IAM's own
    error shape, `<ErrorResponse><Error><Code>…`, as IAM does.

    moto answers these from its authentication for every query-protocol service in one shape,
    `<ErrorResponse><Errors><Error>…`, that the SDKs' awsQuery parser does not read: a Rust client
    saw an error without a code, so it could not tell a refused call from a broken one.
    """
    import uuid as _uuid
    from xml.sax.saxutils import escape

    from moto.core.exceptions import _RESTError
    from moto.iam.responses import IamResponse

    original = IamResponse._authenticate_and_authorize_normal_action

    def authenticate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return original(self, *args, **kwargs)
        except _RESTError as error:
            error.description = (
                '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
                f"<Code>{escape(error.error_type)}</Code><Message>{escape(error.message)}</Message></Error>"
                f"<RequestId>{_uuid.uuid4()}</RequestId></ErrorResponse>")
            raise

    IamResponse._authenticate_and_authorize_normal_action = authenticate


def patch_moto_user_permissions_boundaries() -> None:
    """PutUserPermissionsBoundary and DeleteUserPermissionsBoundary work, and GetUser shows the
    boundary, as in IAM (moto 5.2.1 has them for roles only and answers "not implemented" for
    users); the boundary then limits the user's calls (authorizer.patch_moto_boundaries_and_scps)."""
    from moto.iam import models
    from moto.core.responses import EmptyResult
    from moto.iam.exceptions import NotFoundException, ValidationError
    from moto.iam.responses import IamResponse

    models.User.permissions_boundary_arn = None
    models.User.permissions_boundary = property(lambda self: {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": self.permissions_boundary_arn} if self.permissions_boundary_arn else None)

    def put(self):  # type: ignore[no-untyped-def]
        user = self.backend.get_user(self._get_param("UserName"))
        arn = self._get_param("PermissionsBoundary") or ""
        if not self.backend.policy_arn_regex.match(arn):
            raise ValidationError(f"ARN {arn} is not valid.")
        if arn not in self.backend.managed_policies:
            raise NotFoundException(f"Policy {arn} does not exist or is not attachable.")
        user.permissions_boundary_arn = arn
        return EmptyResult()

    def delete(self):  # type: ignore[no-untyped-def]
        self.backend.get_user(self._get_param("UserName")).permissions_boundary_arn = None
        return EmptyResult()

    IamResponse.put_user_permissions_boundary = put
    IamResponse.delete_user_permissions_boundary = delete
