"""IAM SimulatePrincipalPolicy (moto has none), as strict as the API where killswitch doctor
relies on it.

The principal (PolicySourceArn: a user, group or role of the caller's account, else NoSuchEntity;
not an IAM ARN of one of those, InvalidInput) is simulated with every identity policy IAM would
include: inline and attached managed (their default version) policies, a user's groups', plus
PolicyInputList; a role's permissions boundary (or PermissionsBoundaryPolicyInputList) caps the
result. Each action is evaluated on each of ResourceArns (default `*`) with ContextEntries as the
request's condition keys, through policy_eval.identity_statement_result (the same statement
evaluation Organizations calls get): an explicit Deny wins (explicitDeny), else an Allow
(allowed), else implicitDeny.

As the API answers today: one EvaluationResult per action, its EvalDecision the most restrictive
over the resources, with ResourceSpecificResults per resource when ResourceArns is given;
MatchedStatements name the deciding policies (SourcePolicyId, SourcePolicyType; no positions);
MissingContextValues lists the condition keys of the statements that concern the action and
resource and that ContextEntries does not supply. Paged by MaxItems (1-1000, default 100) with an
opaque Marker; a Marker this double did not issue is InvalidInput. ActionNames missing or empty is
ValidationError.

Gaps: SCPs and resource policies (ResourcePolicy, ResourceOwner, CallerArn) are not simulated (the
local AWS enforces no SCP on IAM calls either); a resource `*` matches only statements whose
Resource is `*` (the API's treatment of `*` against scoped statements is not documented).
"""

from __future__ import annotations

import json
import urllib.parse

from .policy_eval import identity_statement_result

DECISIONS = ("allowed", "implicitDeny", "explicitDeny")  # least to most restrictive


def patch_moto_simulate_principal_policy() -> None:
    """Serve iam:SimulatePrincipalPolicy (authorized by moto like every IAM call, against the
    principal's ARN: see iam.patch_moto_user_resources)."""
    from moto.core.responses import ActionResult
    from moto.iam.exceptions import InvalidInput, ValidationError
    from moto.iam.responses import IamResponse

    def simulate_principal_policy(self):  # type: ignore[no-untyped-def]
        actions = self._get_param("ActionNames") or []
        if not actions:
            raise ValidationError("1 validation error detected: Value null at 'actionNames' failed to satisfy "
                                  "constraint: Member must not be null")
        max_items = int(self._get_param("MaxItems") or 100)
        if not 1 <= max_items <= 1000:
            raise ValidationError(f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to "
                                  "satisfy constraint: Member must have value between 1 and 1000")
        resources = self._get_param("ResourceArns") or []
        policies, boundary = principal_policies(self.backend, self._get_param("PolicySourceArn") or "",
                                                self.current_account)
        policies += [(f"PolicyInputList.{i}", "none", _doc(d))
                     for i, d in enumerate(self._get_param("PolicyInputList") or [], 1)]
        boundary_input = self._get_param("PermissionsBoundaryPolicyInputList") or []
        if boundary_input:
            boundary = [(f"PermissionsBoundaryPolicyInputList.{i}", "none", _doc(d))
                        for i, d in enumerate(boundary_input, 1)]
        values = context_values(self._get_param("ContextEntries") or [])
        results = [evaluate(action, resources, policies, boundary, values) for action in actions]
        start = _marker(self._get_param("Marker"), len(results), InvalidInput)
        page = results[start:start + max_items]
        out = {"EvaluationResults": page, "IsTruncated": start + max_items < len(results)}
        if out["IsTruncated"]:
            out["Marker"] = f"killswitch-sim-{start + max_items}"
        return ActionResult(out)

    IamResponse.simulate_principal_policy = simulate_principal_policy


def _marker(marker, total: int, invalid) -> int:  # type: ignore[no-untyped-def]
    if marker is None:
        return 0
    prefix = "killswitch-sim-"
    if not marker.startswith(prefix) or not marker[len(prefix):].isdigit() or int(marker[len(prefix):]) > total:
        raise invalid("Invalid Marker.")
    return int(marker[len(prefix):])


def _doc(document) -> dict:  # type: ignore[no-untyped-def]
    if isinstance(document, dict):
        return document
    return json.loads(urllib.parse.unquote(document) if document.lstrip().startswith("%") else document)


def principal_policies(backend, arn: str, account: str):  # type: ignore[no-untyped-def]
    """(id, type, document) of every identity policy of the principal, and its boundary's."""
    from moto.iam.exceptions import InvalidInput, NoSuchEntity

    parts = arn.split(":", 5)
    kind = parts[5].split("/", 1)[0] if len(parts) == 6 else ""
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or kind not in ("user", "group", "role"):
        raise InvalidInput(f"Invalid ARN: {arn!r} is not the ARN of an IAM user, group or role.")
    name = parts[5].rsplit("/", 1)[-1]
    if parts[4] != account:
        raise NoSuchEntity(f"The {kind} with name {name} cannot be found.")
    try:
        entity = {"user": backend.get_user, "role": backend.get_role, "group": backend.get_group}[kind](name)
    except Exception:  # noqa: BLE001 - moto's own not-found errors, in IAM's words below
        entity = None
    if entity is None or entity.arn != arn:  # none, or the same name on another path
        raise NoSuchEntity(f"The {kind} with name {name} cannot be found.")
    found = _attached(entity, kind)
    if kind == "user":
        for group in backend.get_groups_for_user(name):
            found += _attached(group, "group")
    boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    boundary = None
    if boundary_arn:
        policy = backend.get_policy(boundary_arn)
        boundary = [(policy.name, _managed_type(policy), _doc(_default_document(policy)))]
    return found, boundary


def _attached(entity, kind: str) -> list:  # type: ignore[no-untyped-def]
    out = [(name, kind, _doc(doc)) for name, doc in entity.policies.items()]
    for policy in entity.managed_policies.values():
        out.append((policy.name, _managed_type(policy), _doc(_default_document(policy))))
    return out


def _managed_type(policy) -> str:  # type: ignore[no-untyped-def]
    return "aws-managed" if ":iam::aws:policy/" in policy.arn else "user-managed"


def _default_document(policy) -> str:  # type: ignore[no-untyped-def]
    for version in policy.versions:
        if version.version_id == policy.default_version_id:
            return version.document
    return "{}"


def context_values(entries: list) -> dict:
    """ContextEntries as condition-key values (lower-case names; list types stay lists, dates
    become datetimes so the date operators compare them)."""
    from .common import parse_iso

    values: dict = {}
    for entry in entries:
        kind = (entry.get("ContextKeyType") or "string").lower()
        raw = list(entry.get("ContextKeyValues") or [])
        if kind.startswith("date"):
            raw = [parse_iso(v) for v in raw]
        values[entry["ContextKeyName"].lower()] = raw if kind.endswith("list") else (raw[0] if raw else None)
    return values


def _statements(document: dict) -> list:
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def decide(action: str, resource: str, policies: list, values: dict) -> tuple[str, list, set]:
    """(decision, matched statements, missing context keys) of one action on one resource."""
    from moto.iam.access_control import PermissionResult

    allows, denies, missing = [], [], set()
    for policy_id, policy_type, document in policies:
        for statement in _statements(document):
            result = identity_statement_result(statement, action, resource, values)
            if result == PermissionResult.NEUTRAL and _concerns(statement, action, resource, values):
                missing |= _missing_keys(statement, values)
            matched = {"SourcePolicyId": policy_id, "SourcePolicyType": policy_type}
            if result == PermissionResult.DENIED:
                denies.append(matched)
            elif result == PermissionResult.PERMITTED:
                allows.append(matched)
    if denies:
        return "explicitDeny", denies, missing
    if allows:
        return "allowed", allows, missing
    return "implicitDeny", [], missing


def _concerns(statement: dict, action: str, resource: str, values: dict) -> bool:
    """The statement would apply to this action and resource but for its conditions."""
    from moto.iam.access_control import PermissionResult

    bare = {k: v for k, v in statement.items() if k != "Condition"}
    return identity_statement_result(bare, action, resource, values) != PermissionResult.NEUTRAL


def _missing_keys(statement: dict, values: dict) -> set:
    keys = set()
    for _operator, checks in (statement.get("Condition") or {}).items():
        for key in checks or {}:
            if key.lower() not in values:
                keys.add(key)
    return keys


def evaluate(action: str, resources: list, policies: list, boundary, values: dict) -> dict:
    """One action's EvaluationResult over every resource."""
    per_resource = []
    for resource in resources or ["*"]:
        decision, matched, missing = decide(action, resource, policies, values)
        if boundary is not None and decision == "allowed":
            capped, capped_matched, capped_missing = decide(action, resource, boundary, values)
            missing |= capped_missing
            if capped != "allowed":
                decision, matched = capped, capped_matched
        per_resource.append({"EvalResourceName": resource, "EvalResourceDecision": decision,
                             "MatchedStatements": matched, "MissingContextValues": sorted(missing)})
    worst = max(per_resource, key=lambda r: DECISIONS.index(r["EvalResourceDecision"]))
    result = {
        "EvalActionName": action,
        "EvalDecision": worst["EvalResourceDecision"],
        "MatchedStatements": worst["MatchedStatements"],
        "MissingContextValues": sorted({k for r in per_resource for k in r["MissingContextValues"]}),
    }
    if len(per_resource) == 1:
        result["EvalResourceName"] = per_resource[0]["EvalResourceName"]
    if resources:
        result["ResourceSpecificResults"] = per_resource
    return result

