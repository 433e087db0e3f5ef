"""What the local AWS sets up while moto still accepts anything: admin users and keys, the
organization, the quarantine role (with centralized root access), the Identity Center roles and
deny policy."""

from __future__ import annotations

import json
import os

from .common import ACCOUNT_ID, MEMBER_ACCOUNT_ID, ORGANIZATION_MANAGEMENT_ACCOUNT_ID, REPO_ROOT
from .identity_center import (IDENTITY_CENTER_DENY_POLICY, IDENTITY_CENTER_EXTERNAL_ID,
                              IDENTITY_CENTER_POLICY_STACK_NAME, IDENTITY_CENTER_REGION,
                              IDENTITY_CENTER_ROLE_NAME, IDENTITY_CENTER_STACK_NAME)
from .organizations import organize

# The quarantine role deploy_quarantine_role sets up for drills (quarantine-role.yaml's parameters).
QUARANTINE_STACK_NAME = "killswitch-local-quarantine"
QUARANTINE_ROLE_NAME = "KillSwitchQuarantine"
QUARANTINE_EXTERNAL_ID = "killswitch-local-quarantine"
# The responder role the template trusts: a name only, no such role exists here (drills assume the
# quarantine role as ACCOUNT_ID's admin user, an operator of the template).
QUARANTINE_RESPONDER_ROLE_NAME = "killswitch-local-responder"
QUARANTINE_TEMPLATE = os.path.join(REPO_ROOT, "quarantine-role.yaml")
# root-access-role.yaml's stack: the quarantine role's sts:AssumeRoot (KILLSWITCH_ROOT_KEYS=delete).
ROOT_ACCESS_STACK_NAME = "killswitch-local-root-access"
ROOT_ACCESS_TEMPLATE = os.path.join(REPO_ROOT, "root-access-role.yaml")
IDENTITY_CENTER_ROLE_TEMPLATE = os.path.join(REPO_ROOT, "identity-center-role.yaml")
IDENTITY_CENTER_POLICY_TEMPLATE = os.path.join(REPO_ROOT, "identity-center-policy.yaml")


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


def deploy_root_access(endpoint: str, management_key: dict) -> None:
    """root-access-role.yaml for the quarantine role (deploy_quarantine_role's), as the management
    account's admin: what a deployment that opts into KILLSWITCH_ROOT_KEYS=delete adds, so a drill
    can delete a member account's root key through sts:AssumeRoot. Raises unless the stack reaches
    CREATE_COMPLETE (the template has no outputs)."""
    deploy_stack(endpoint, management_key, ROOT_ACCESS_TEMPLATE, ROOT_ACCESS_STACK_NAME,
                 {"QuarantineRoleName": QUARANTINE_ROLE_NAME}, {})


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
    organize), the quarantine role in its management account (see deploy_quarantine_role) with
    its sts:AssumeRoot (see deploy_root_access), and the Identity Center roles there and deny
    policy in ACCOUNT_ID (see deploy_identity_center)."""
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
    deploy_root_access(endpoint, member)
    env.update(deploy_identity_center(endpoint, member, key, key["UserArn"]))
    return env
