"""IAM Identity Center, enough to contain a leaked portal credential: the organization's one
instance, its calls authorized and refused in the JSON protocol's shape, account assignments,
AWSReservedSSO_ roles protected, and permission sets provisioned into accounts as AWS does."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid

from .common import ORGANIZATION_MANAGEMENT_ACCOUNT_ID, json_protocol_error

# IAM Identity Center (see bootstrap.deploy_identity_center): the organization's instance lives in the
# management account, in this Region (moto's instance of that account and Region, see
# patch_moto_identity_center_instances); identity-center-role.yaml's parameters.
IDENTITY_CENTER_REGION = "us-east-1"
IDENTITY_CENTER_STACK_NAME = "killswitch-local-identity-center"
IDENTITY_CENTER_ROLE_NAME = "KillSwitchIdentityCenter"
IDENTITY_CENTER_EXTERNAL_ID = "killswitch-local-identity-center"
IDENTITY_CENTER_POLICY_STACK_NAME = "killswitch-local-identity-center-policy"
# identity-center-policy.yaml's policy, which the seeded permission sets reference.
IDENTITY_CENTER_DENY_POLICY = ("KillSwitchDeny", "/")
# The portal's role sessions last as long as the permission set says (moto's default: 3600).
IDENTITY_CENTER_SESSION_DURATION = "PT1H"
# Serializes the control endpoints' work on the Identity Center, IAM and STS backends.
IDENTITY_CENTER_LOCK = threading.Lock()


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


def identity_center_backends():  # type: ignore[no-untyped-def]
    """(sso-admin backend, instance, identitystore backend) of the organization's instance."""
    from moto.identitystore.models import identitystore_backends
    from moto.ssoadmin.models import ssoadmin_backends

    sso = ssoadmin_backends[ORGANIZATION_MANAGEMENT_ACCOUNT_ID][IDENTITY_CENTER_REGION]
    return sso, sso.instances[0], identitystore_backends[ORGANIZATION_MANAGEMENT_ACCOUNT_ID][IDENTITY_CENTER_REGION]


def duration_seconds(value) -> int:  # type: ignore[no-untyped-def]
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


def permission_set_policy_arns(account: str, references, managed_arns) -> list[str]:  # type: ignore[no-untyped-def]
    """The managed policies a permission set's role gets in `account`: each customer-managed
    reference (name, path) as that account's policy, then the AWS-managed ones."""
    return [f"arn:aws:iam::{account}:policy{path}{name}" for name, path in references] + list(managed_arns)


def provisioning_failure(account: str, arns: list[str]) -> str | None:
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
    arns = permission_set_policy_arns(account, [(p.name, p.path) for p in permission_set.customer_managed_policies],
                                       [p.arn for p in permission_set.managed_policies])
    failure = provisioning_failure(account, arns)
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
                               str(duration_seconds(permission_set.session_duration)))
    if permission_set.inline_policy:
        iam.put_role_policy(name, "AwsSSOInlinePolicy", permission_set.inline_policy)
    elif "AwsSSOInlinePolicy" in role.policies:
        iam.delete_role_policy(name, "AwsSSOInlinePolicy")
    for arn in arns:
        if arn not in role.managed_policies:
            iam.attach_role_policy(arn, name)
    for arn in [a for a in role.managed_policies if a not in arns]:
        iam.detach_role_policy(arn, name)
    instance = next((i for i in identity_center_backends()[0].instances if i.instance_arn == permission_set.instance_arn), None)
    if instance is not None and permission_set not in instance.provisioned_permission_sets:
        instance.provisioned_permission_sets.append(permission_set)
    return None
