"""The control endpoints that play Identity Center's administrator and its access portal:
/_killswitch/identitycenter/seed and /_killswitch/identitycenter/portal-credentials."""

from __future__ import annotations

import json
import re
from datetime import timezone

from .common import ACCOUNT_ID, ORGANIZATION_MANAGEMENT_ACCOUNT_ID, PORTAL_SESSIONS
from .identity_center import (IDENTITY_CENTER_DENY_POLICY, IDENTITY_CENTER_LOCK, IDENTITY_CENTER_REGION,
                              IDENTITY_CENTER_SESSION_DURATION, duration_seconds, identity_center_backends,
                              permission_set_policy_arns, provisioning_failure,
                              provision_permission_set_to_account, sso_role)


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
        sso, instance, store = identity_center_backends()
        store_id = instance.identity_store_id
        permission_set = next((p for p in sso.permission_sets
                               if p.instance_arn == instance.instance_arn and p.name == name), None)
        references = [(p.name, p.path) for p in permission_set.customer_managed_policies] if permission_set else []
        managed = [p.arn for p in permission_set.managed_policies] if permission_set else []
        failure = provisioning_failure(account, permission_set_policy_arns(
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
        sso, instance, store = identity_center_backends()
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
            duration=duration_seconds(permission_set.session_duration), external_id=None)
        PORTAL_SESSIONS[session.access_key_id] = user_id
    return 200, {"AccessKeyId": session.access_key_id, "SecretAccessKey": session.secret_access_key,
                 "SessionToken": session.session_token,
                 "Expiration": int(session.expiration.replace(tzinfo=timezone.utc).timestamp() * 1000),
                 "UserId": user_id, "RoleName": role.name, "PrincipalId": f"{role.id}:{user_name}"}
