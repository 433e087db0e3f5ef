"""Service control policies as Organizations applies them to a member account's principals (never
the management account's, never a service-linked role's): every level from the root down to the
account must allow the action (p-FullAWSAccess does), and an explicit Deny in any of them refuses.

The evaluator is strict where a guard relies on it: a condition operator or key it does not know
makes the request fail with HTTP 500 and a message naming the policy (`ScpEvaluationError`), so
a guard is never silently lifted. Operators: StringEquals/StringNotEquals/StringLike/StringNotLike
(and ...IgnoreCase), ArnEquals/ArnNotEquals/ArnLike/ArnNotLike, Null, Bool, Date* (on
aws:TokenIssueTime), ...IfExists, with ForAnyValue:/ForAllValues:; policy variables such as
`${aws:userid}` in condition values (a variable without a value in the request: no match). Keys: see `KNOWN_KEYS` and
`KNOWN_PREFIXES`; aws:ResourceTag/* is known only for IAM users and roles a request names and for
Organizations resources (anything else would be a guess)."""

from __future__ import annotations

import json
import re

from .common import as_list
from .policy_eval import _wildcard, condition_holds

KNOWN_KEYS = {"aws:principalarn", "aws:userid", "aws:username", "aws:tagkeys", "aws:principalaccount",
              "aws:principalorgid", "aws:principaltype", "aws:requestedregion", "aws:tokenissuetime",
              "organizations:policytype"}
KNOWN_PREFIXES = ("aws:principaltag/", "aws:requesttag/")
# Set in the values when aws:ResourceTag/* is known for the request's resource.
RESOURCE_TAGS_KNOWN = "_resource_tags_known"
SUPPORTED_OPERATORS = {"stringequals", "stringnotequals", "stringlike", "stringnotlike",
                       "stringequalsignorecase", "stringnotequalsignorecase", "arnequals",
                       "arnnotequals", "arnlike", "arnnotlike", "null", "bool", "datelessthan",
                       "dategreaterthan", "datelessthanequals", "dategreaterthanequals"}


class ScpEvaluationError(Exception):
    """An SCP the evaluator cannot judge: the request fails (HTTP 500), never allowed."""


def _operator(raw: str) -> str:
    op = raw.lower()
    for prefix in ("forallvalues:", "foranyvalue:"):
        if op.startswith(prefix):
            op = op[len(prefix):]
    if op.endswith("ifexists") and op != "null":
        op = op[: -len("ifexists")]
    return op


def _known(key: str, values: dict) -> bool:
    key = key.lower()
    if key in KNOWN_KEYS or key.startswith(KNOWN_PREFIXES):
        return True
    return key.startswith("aws:resourcetag/") and bool(values.get(RESOURCE_TAGS_KNOWN))


def _conditions_hold(statement: dict, values: dict, where: str) -> bool:
    for operator, checks in (statement.get("Condition") or {}).items():
        if _operator(operator) not in SUPPORTED_OPERATORS:
            raise ScpEvaluationError(f"{where}: condition operator {operator} is not evaluated by the local AWS")
        if not isinstance(checks, dict):
            raise ScpEvaluationError(f"{where}: condition {operator} is not a key/value block")
        for key, wanted in checks.items():
            if not _known(key, values):
                raise ScpEvaluationError(f"{where}: condition key {key} is not known to the local AWS's SCP "
                                         "evaluator for this request")
            wanted = _substituted(wanted, values, where)
            if wanted is None:
                return False
            holds = condition_holds(operator, key, wanted, values)
            if holds is None:
                raise ScpEvaluationError(f"{where}: {operator} on {key} cannot be evaluated here")
            if not holds:
                return False
    return True


def _substituted(wanted, values: dict, where: str):  # type: ignore[no-untyped-def]
    """Policy variables (`${aws:userid}`) replaced by the request's values, as IAM does in SCPs;
    None when a variable has no value in this request (the condition then does not match)."""
    out = []
    for w in as_list(wanted):
        if not isinstance(w, str) or "${" not in w:
            out.append(w)
            continue
        text = w
        for name in re.findall(r"\$\{([^}]+)\}", w):
            if not _known(name, values):
                raise ScpEvaluationError(f"{where}: policy variable ${{{name}}} is not known to the local AWS")
            have = values.get(name.lower())
            if have is None or isinstance(have, (list, set, tuple)):
                return None
            text = text.replace("${" + name + "}", str(have))
        out.append(text)
    return out


def _concerns(statement: dict, action: str, resource: str) -> bool:
    if "NotAction" in statement:
        if any(_wildcard(a, action, True) for a in as_list(statement["NotAction"])):
            return False
    elif not any(_wildcard(a, action, True) for a in as_list(statement.get("Action", []))):
        return False
    if "NotResource" in statement:
        return not any(_wildcard(r, resource) for r in as_list(statement["NotResource"]))
    return any(_wildcard(r, resource) for r in as_list(statement.get("Resource", "*")))


def _statements(policy_id: str, name: str, document: str) -> list[dict]:
    try:
        parsed = json.loads(document)
    except ValueError as error:
        raise ScpEvaluationError(f"SCP {name} ({policy_id}) is not JSON: {error}") from error
    return [s for s in as_list(parsed.get("Statement", [])) if isinstance(s, dict)]


def decide(levels: tuple, action: str, resource: str, values: dict) -> tuple[str, str | None]:
    """("deny", policy) for an explicit Deny, ("implicit", None) when a level allows nothing that
    matches, else ("allow", None)."""
    implicit = False
    for level in levels:
        allowed = False
        for policy_id, name, document in level:
            for index, statement in enumerate(_statements(policy_id, name, document)):
                if not _concerns(statement, action, resource):
                    continue
                where = f"SCP {name} ({policy_id}) statement {statement.get('Sid', index)}"
                if not _conditions_hold(statement, values, where):
                    continue
                if statement.get("Effect") == "Deny":
                    return "deny", f"{name} ({policy_id})"
                if statement.get("Effect") == "Allow":
                    allowed = True
        implicit = implicit or not allowed
    return ("implicit", None) if implicit else ("allow", None)


def request_tag_keys(data: dict) -> dict:
    """aws:RequestTag/* and aws:TagKeys of a query-protocol request (Tags.member.N.Key/Value as
    IAM's TagUser/TagRole/CreateUser/CreateRole and STS's AssumeRole send them; TagKeys.member.N
    as UntagUser/UntagRole do)."""
    def one(value):  # type: ignore[no-untyped-def]
        return value[0] if isinstance(value, list) and value else value

    flat = {k: one(v) for k, v in (data or {}).items()}
    tags: dict = {}
    for name, value in flat.items():
        if name.startswith("Tags.member.") and name.endswith(".Key"):
            tags[value] = flat.get(name[: -len(".Key")] + ".Value", "")
    removed = [v for k, v in sorted(flat.items()) if k.startswith("TagKeys.member.")]
    keys: dict = {}
    if tags:
        keys.update({f"aws:requesttag/{k}".lower(): v for k, v in tags.items()})
        keys["aws:tagkeys"] = list(tags)
    if removed:
        keys["aws:tagkeys"] = keys.get("aws:tagkeys", []) + removed
    return keys
