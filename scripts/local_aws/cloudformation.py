"""moto's CloudFormation where it fails on the repository's templates."""

from __future__ import annotations

import json


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


def patch_moto_cloudformation_unsupported_types() -> None:
    """A resource type moto's CloudFormation cannot create fails the stack, instead of being
    skipped with a warning while the stack reports CREATE_COMPLETE: root-access-role.yaml once
    declared an AWS::IAM::RolePolicy that moto left out, so the deployed role lacked its grant and
    every test built on it would have passed on a template that was never applied. AWS answers
    a type it does not know with the same error before creating anything."""
    from moto.cloudformation import parsing
    from moto.cloudformation.exceptions import ValidationError

    original = parsing.parse_resource

    def parse_resource(resource_json, resources_map):  # type: ignore[no-untyped-def]
        if not parsing.resource_class_from_type(resource_json["Type"]):
            raise ValidationError(message=f"Template format error: Unrecognized resource types: "
                                          f"[{resource_json['Type']}] (not supported by the local AWS)")
        return original(resource_json, resources_map)

    parsing.parse_resource = parse_resource
