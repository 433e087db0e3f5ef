"""Authentication and authorization on the IAM state in force for the request (lag.current_view):
access keys and identity policies D seconds old under a propagation lag, permissions boundaries,
and the organization's SCPs on member accounts (moto evaluates neither boundaries nor SCPs)."""

from __future__ import annotations

import sys

from .common import PRINCIPAL
from .lag import current_view, lag_seconds
from .scp import RESOURCE_TAGS_KNOWN, ScpEvaluationError, decide, request_tag_keys

# IAM actions that act on the caller when the request names no user.
SELF_ACTIONS = {"CreateAccessKey", "DeleteAccessKey", "UpdateAccessKey", "ListAccessKeys", "GetUser",
                "ChangePassword", "ListSigningCertificates", "UploadSigningCertificate",
                "UpdateSigningCertificate", "DeleteSigningCertificate", "ListSSHPublicKeys",
                "ListServiceSpecificCredentials", "ListMFADevices", "GetLoginProfile"}


def patch_moto_lagged_authentication() -> None:
    """Under a propagation lag (D > 0), access keys and identity policies are those of D seconds
    ago: a key created within D does not authenticate yet, one deleted or deactivated within D
    still does; a policy written within D does not apply yet, one deleted still does (inline,
    attached managed policies' default version, the user's groups'). With D = 0 moto's own
    lookups stay as they are."""
    if lag_seconds() <= 0:
        return
    from moto.iam import access_control, models

    def user_key(self, account_id, partition, access_key_id, headers):  # type: ignore[no-untyped-def]
        self.account_id, self.partition = account_id, partition
        key = current_view().account(account_id).key(access_key_id)
        if key is None or key.status != "Active":
            raise access_control.CreateAccessKeyFailure(reason="InvalidId")
        self._owner_user_name, self._access_key_id, self._secret_access_key = key.user, access_key_id, key.secret
        if "X-Amz-Security-Token" in headers:
            raise access_control.CreateAccessKeyFailure(reason="InvalidToken")

    def user_policies(self):  # type: ignore[no-untyped-def]
        account = current_view().account(self.account_id)
        user = account.user(self._owner_user_name)
        if user is None:
            return []
        docs = [*user.inline, *(account.policy(arn) for arn in user.managed)]
        for name in user.groups:
            inline, managed = account.group(name) or ((), ())
            docs += [*inline, *(account.policy(arn) for arn in managed)]
        return [d for d in docs if d]

    def role_policies(self):  # type: ignore[no-untyped-def]
        account = current_view().account(self.account_id)
        role = account.role(self._owner_role_name)
        if role is None:
            return []
        return [d for d in [*role.inline, *(account.policy(arn) for arn in role.managed)] if d]

    original_account_of = models.get_account_id_from

    def account_of(access_key: str) -> str:
        # A key deleted within D still authenticates, in the account it belonged to.
        found = original_account_of(access_key)
        view = current_view()
        if found == models.DEFAULT_ACCOUNT_ID and getattr(view, "lagged", False):
            for account, state in view.accounts.items():
                if access_key in state.keys:
                    return account
        return found

    access_control.IAMUserAccessKey.__init__ = user_key
    access_control.IAMUserAccessKey.collect_policies = user_policies
    access_control.AssumedRoleAccessKey.collect_policies = role_policies
    models.get_account_id_from = account_of


def _principal(access_key, view):  # type: ignore[no-untyped-def]
    from moto.iam import access_control

    account = view.account(access_key.account_id)
    if isinstance(access_key, access_control.AssumedRoleAccessKey):
        return account.role(access_key._owner_role_name)
    return account.user(access_key._owner_user_name)


def _param(data: dict, name: str) -> str | None:
    value = (data or {}).get(name)
    return value[0] if isinstance(value, list) and value else value or None


def _resource_tags(request, principal, view) -> dict:
    """aws:ResourceTag/* of the IAM user or role the request names (the caller for an action on
    itself), as of the state in force."""
    data = request._data if isinstance(request._data, dict) else {}
    account = view.account(request._access_key.account_id)
    target = None
    if _param(data, "UserName"):
        target = account.user(_param(data, "UserName"))
    elif _param(data, "RoleName"):
        target = account.role(_param(data, "RoleName"))
    elif request._action.split(":", 1)[1] in SELF_ACTIONS and principal is not None and principal.kind == "user":
        target = principal
    tags = target.tags if target is not None else {}
    return {f"aws:resourcetag/{k}".lower(): v for k, v in tags.items()}


def _scp_values(request, principal, account: str, org) -> dict:  # type: ignore[no-untyped-def]
    from moto.iam import access_control

    from .organizations_auth import ORG_AUTH
    from .policy_eval import principal_keys

    values = {**principal_keys(request._access_key), "aws:principalaccount": account,
              "aws:principalorgid": org.id, "aws:requestedregion": request._region,
              "aws:principaltype": "AssumedRole" if isinstance(request._access_key, access_control.AssumedRoleAccessKey)
              else "User"}
    values.update(request_tag_keys(request._data if isinstance(request._data, dict) else {}))
    org_values = getattr(ORG_AUTH, "values", None)
    if org_values is not None:
        values.update(org_values)
        values[RESOURCE_TAGS_KNOWN] = True
    if request._service == "iam":
        values.update(_resource_tags(request, principal, current_view()))
        values[RESOURCE_TAGS_KNOWN] = True
    return values


def _enforce_scps(request, resource: str, principal, view) -> None:  # type: ignore[no-untyped-def]
    from moto.core.exceptions import AccessDeniedError, _RESTError

    account = request._access_key.account_id
    org = view.org() if view.may_be_member(account) else None
    if org is None or account not in org.members:
        return
    if principal is not None and principal.kind == "role" and principal.path.startswith("/aws-service-role/"):
        return
    try:
        verdict, policy = decide(org.members[account], request._action, resource,
                                 _scp_values(request, principal, account, org))
    except ScpEvaluationError as error:
        print(f"local AWS: SCP evaluation failed for {request._action}: {error}", file=sys.stderr, flush=True)
        raise _server_error(str(error)) from error
    if verdict == "allow":
        return
    arn = request._access_key.arn
    error = AccessDeniedError(user_arn=arn, action=request._action)
    why = ("with an explicit deny in a service control policy" if verdict == "deny"
           else f"because no service control policy allows the {request._action} action")
    _RESTError.__init__(error, "AccessDenied", f"User: {arn} is not authorized to perform: {request._action} "
                        f"on resource: {resource} {why}")
    if policy:
        print(f"local AWS: {request._action} by {arn} denied by SCP {policy}", file=sys.stderr, flush=True)
    raise error


def _server_error(message: str):  # type: ignore[no-untyped-def]
    from moto.core.exceptions import _RESTError

    class ScpFailure(_RESTError):
        code = 500
        include_type_sender = False

    return ScpFailure("InternalFailure", f"local AWS cannot evaluate a service control policy: {message}")


def _enforce_boundary(request, resource: str, principal, view) -> None:  # type: ignore[no-untyped-def]
    """A permissions boundary limits what identity policies allow: the action must be allowed by
    the boundary too (an explicit deny in it refuses, as does no allow)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    from .policy_eval import principal_keys

    if principal is None or not principal.boundary:
        return
    document = view.account(request._access_key.account_id).policy(principal.boundary)
    result = PermissionResult.NEUTRAL
    if document is not None:
        PRINCIPAL.values = principal_keys(request._access_key)
        try:
            result = IAMPolicy(document).is_action_permitted(request._action, resource)
        finally:
            PRINCIPAL.values = None
    if result != PermissionResult.PERMITTED:
        request._raise_access_denied()


def patch_moto_boundaries_and_scps() -> None:
    """Every authorized call (moto's services, the harness's doubles, Organizations) also passes
    the organization's SCPs (for a member account's principals) and the principal's permissions
    boundary, on the state in force for the request. AssumeRole with session tags is also
    authorized as sts:TagSession with aws:TagKeys / aws:RequestTag/*, as STS does."""
    from moto.iam import access_control

    original = access_control.IAMRequestBase.check_action_permitted

    def check(self, resource):  # type: ignore[no-untyped-def]
        if self._action == "sts:GetCallerIdentity":
            return original(self, resource)
        view = current_view()
        principal = _principal(self._access_key, view)
        _enforce_scps(self, resource, principal, view)
        original(self, resource)
        _enforce_boundary(self, resource, principal, view)
        data = self._data if isinstance(self._data, dict) else {}
        if self._action == "sts:AssumeRole" and "aws:tagkeys" in request_tag_keys(data):
            self._action = "sts:TagSession"
            try:
                check(self, resource)
            finally:
                self._action = "sts:AssumeRole"
        return None

    access_control.IAMRequestBase.check_action_permitted = check
