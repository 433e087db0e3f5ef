"""Identity-policy evaluation as IAM does it, where moto's is incomplete: the signer's condition
keys (principal_keys), condition operators (condition_holds) and whole statements
(identity_statement_result, used for Organizations calls)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .common import PORTAL_SESSIONS, PRINCIPAL, SESSION_TAGS, as_list, parse_iso


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
                        matches = have is not None and have in as_list(wanted)
                    elif operator == "DateLessThan" and key.lower() == "aws:tokenissuetime":
                        # Long-term keys have no token: the condition, and the statement, do not apply.
                        matches = have is not None and any(have < parse_iso(w) for w in as_list(wanted))
                    else:
                        continue
                    if not matches:
                        return access_control.PermissionResult.NEUTRAL
        return original_statement(self, action, resource, principal, incoming_condition_values)

    access_control.IAMRequestBase.check_action_permitted = check
    access_control.IAMPolicyStatement.is_action_permitted = statement


def principal_keys(access_key) -> dict:  # type: ignore[no-untyped-def]
    """The global condition keys IAM sets for the signer of a request, from the IAM state the
    request is authorized against (lag.current_view): aws:userid, aws:username (users),
    aws:PrincipalArn, aws:TokenIssueTime (sessions), aws:PrincipalTag/* (a session's: its role's
    tags with the session tags on top, which win for the same key)."""
    from moto.iam import access_control

    from .lag import current_view

    try:
        account = current_view().account(access_key.account_id)
        if isinstance(access_key, access_control.AssumedRoleAccessKey):
            return _session_keys(access_key, account.role(access_key._owner_role_name))
        user = account.user(access_key._owner_user_name)
        if user is None:
            return {}
        return {"aws:userid": user.id, "aws:username": user.name, "aws:principalarn": user.arn,
                **_principal_tags(user.tags)}
    except Exception:  # noqa: BLE001 - an unknown principal has no keys; conditions then fail
        return {}


def _principal_tags(tags: dict) -> dict:
    return {f"aws:principaltag/{k}".lower(): v for k, v in tags.items()}


def _session_keys(access_key, role) -> dict:  # type: ignore[no-untyped-def]
    from moto.sts.models import sts_backends

    if role is None:
        return {}
    issued = None
    for assumed in sts_backends[access_key.account_id][access_key.partition].assumed_roles:
        if assumed.access_key_id == access_key._access_key_id:
            issued = assumed.access_key.create_date
    if issued is not None and issued.tzinfo is None:
        issued = issued.replace(tzinfo=timezone.utc)
    tags = {**role.tags, **SESSION_TAGS.get(access_key._access_key_id, {})}
    keys = {"aws:userid": f"{role.id}:{access_key._session_name}",
            "aws:principalarn": role.arn, "aws:tokenissuetime": issued, **_principal_tags(tags)}
    # A portal session (see identity_center_portal_credentials) carries the Identity Center
    # user it was issued to, as AWS sets identitystore:UserId for permission-set sessions.
    portal_user = PORTAL_SESSIONS.get(access_key._access_key_id)
    if portal_user is not None:
        keys["identitystore:userid"] = portal_user
    return keys


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
    wanted = [_condition_text(w) for w in as_list(wanted)]
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
        concerned = not any(_wildcard(a, action, True) for a in as_list(statement["NotAction"]))
    else:
        concerned = any(_wildcard(a, action, True) for a in as_list(statement.get("Action", [])))
    if not concerned:
        return PermissionResult.NEUTRAL
    if "NotResource" in statement:
        applies = not any(_wildcard(r, resource) for r in as_list(statement["NotResource"]))
    else:
        applies = any(_wildcard(r, resource) for r in as_list(statement.get("Resource", [])))
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
