"""Organizations as strict as AWS: quotas and attachment rules (patch_moto_organizations_limits),
management-only operations, and the local organization itself (organize)."""

from __future__ import annotations

import json

from .common import ACCOUNT_ID, ORGANIZATION_MANAGEMENT_ACCOUNT_ID


# AWS Organizations quotas (orgs_reference_limits) that stock moto does not enforce: maximum
# policy document size, and policies of one type attached directly to one root, OU or account.
ORG_CONTENT_LIMITS = {"SERVICE_CONTROL_POLICY": 5120, "RESOURCE_CONTROL_POLICY": 5120,
                      "AISERVICES_OPT_OUT_POLICY": 2500, "BACKUP_POLICY": 10000, "TAG_POLICY": 10000}
ORG_ATTACHMENT_LIMITS = {"SERVICE_CONTROL_POLICY": 5, "RESOURCE_CONTROL_POLICY": 5}
# Types that need at least one policy attached to every target (p-FullAWSAccess by default).
ORG_MIN_ONE_ATTACHED = ("SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY")


def patch_moto_organizations_limits() -> None:
    """Organizations refuses what AWS refuses where stock moto accepts it, so a quarantine SCP that
    would fail in AWS fails here too.

    * CreatePolicy/UpdatePolicy: content over the type's size quota (5,120 for an SCP, counted in
      UTF-8 bytes, whitespace included as the API keeps it) -> ConstraintViolationException,
      Reason POLICY_CONTENT_LIMIT_EXCEEDED; content that is not one JSON object ->
      MalformedPolicyDocumentException; UpdatePolicy onto another policy's name -> DuplicatePolicyException.
    * AttachPolicy: the type not enabled in the root -> PolicyTypeNotEnabledException (call
      EnablePolicyType first, as in AWS); the policy already on the target ->
      DuplicatePolicyAttachmentException; a sixth SCP directly on one target (p-FullAWSAccess
      counts) -> ConstraintViolationException, Reason MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED.
    * DetachPolicy: not attached -> PolicyNotAttachedException; the target's last SCP ->
      ConstraintViolationException, Reason MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED.
    * CreateAccount: OrganizationAccountAccessRole gets AdministratorAccess (moto creates it with
      no policy, so with authentication enforced the new account could not be entered).

    DeletePolicy of an attached policy already fails with PolicyInUseException in stock moto.
    """
    _patch_policy_content()
    _patch_attachments()
    _patch_created_account_role()


def _violation(reason: str, message: str):  # type: ignore[no-untyped-def]
    """ConstraintViolationException with `reason` as its Reason member."""
    from moto.organizations.exceptions import ConstraintViolationException

    error = ConstraintViolationException(message)
    error.reason = reason  # serialized as the error's Reason member
    return error


def _check_content(policy_type: str, content) -> None:  # type: ignore[no-untyped-def]
    """A policy document within its type's size quota and one JSON object, or the error AWS gives."""
    from moto.organizations.exceptions import OrganizationsClientError

    limit = ORG_CONTENT_LIMITS.get(policy_type)
    if limit is not None and len((content or "").encode("utf-8")) > limit:
        raise _violation("POLICY_CONTENT_LIMIT_EXCEEDED",
                         "You attempted to create a policy that is larger than the maximum size.")
    try:
        parsed = json.loads(content or "")
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise OrganizationsClientError(
            "MalformedPolicyDocumentException",
            "The provided policy document doesn't meet the requirements of the specified policy type.")


def _patch_policy_content() -> None:
    """CreatePolicy/UpdatePolicy: the content checked (see _check_content); UpdatePolicy onto
    another policy's name refused."""
    from moto.organizations import models
    from moto.organizations.exceptions import DuplicatePolicyException

    original_create = models.OrganizationsBackend.create_policy

    def create_policy(self, **kwargs):  # type: ignore[no-untyped-def]
        if models.FakePolicy.supported_policy_type(kwargs.get("Type", "")):
            _check_content(kwargs["Type"], kwargs.get("Content"))
        return original_create(self, **kwargs)

    original_update = models.OrganizationsBackend.update_policy

    def update_policy(self, **kwargs):  # type: ignore[no-untyped-def]
        policy = self.get_policy_by_id(kwargs["PolicyId"])
        if "Content" in kwargs:
            _check_content(policy.type, kwargs["Content"])
        if "Name" in kwargs and any(p.name == kwargs["Name"] and p is not policy for p in self.policies):
            raise DuplicatePolicyException
        return original_update(self, **kwargs)

    models.OrganizationsBackend.create_policy = create_policy
    models.OrganizationsBackend.update_policy = update_policy


def _target_checked(response, check) -> None:  # type: ignore[no-untyped-def]
    """Run `check(backend, policy, target)` for a caller's AttachPolicy/DetachPolicy; moto's
    own attachments while it builds the organization (p-FullAWSAccess) bypass the checks."""
    backend = response.organizations_backend
    params = response.request_params
    if backend.org is None:
        return
    policy = backend.get_policy_by_id(params.get("PolicyId", ""))
    target = next((t for t in [*backend.ou, *backend.accounts] if t.id == params.get("TargetId")), None)
    if target is not None:
        check(backend, policy, target)


def _attach_checks(backend, policy, target) -> None:  # type: ignore[no-untyped-def]
    from moto.organizations.exceptions import OrganizationsClientError, PolicyTypeNotEnabledException

    root = next((o for o in backend.ou if o.id == backend.org.root_id), None)
    if root is not None and not any(t["Type"] == policy.type for t in root.policy_types):
        raise PolicyTypeNotEnabledException
    if policy in target.attached_policies:
        raise OrganizationsClientError("DuplicatePolicyAttachmentException",
                                       "The selected policy is already attached to the specified target.")
    limit = ORG_ATTACHMENT_LIMITS.get(policy.type)
    if limit is not None and sum(p.type == policy.type for p in target.attached_policies) >= limit:
        raise _violation("MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                         "You attempted to exceed the number of policies of a certain type that can be "
                         "attached to an entity at one time.")


def _detach_checks(backend, policy, target) -> None:  # type: ignore[no-untyped-def]
    from moto.organizations.exceptions import OrganizationsClientError

    if policy not in target.attached_policies:
        raise OrganizationsClientError("PolicyNotAttachedException",
                                       "The policy isn't attached to the specified target in the specified root.")
    if policy.type in ORG_MIN_ONE_ATTACHED and sum(p.type == policy.type for p in target.attached_policies) <= 1:
        raise _violation("MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                         "You attempted to detach a policy from an entity that would cause the entity to "
                         "have fewer than the minimum number of policies of a certain type required.")


def _patch_attachments() -> None:
    """AttachPolicy/DetachPolicy checked as AWS does (see _attach_checks, _detach_checks)."""
    from moto.organizations.responses import OrganizationsResponse

    original_attach = OrganizationsResponse.attach_policy
    original_detach = OrganizationsResponse.detach_policy

    def attach_policy(self):  # type: ignore[no-untyped-def]
        _target_checked(self, _attach_checks)
        return original_attach(self)

    def detach_policy(self):  # type: ignore[no-untyped-def]
        _target_checked(self, _detach_checks)
        return original_detach(self)

    OrganizationsResponse.attach_policy = attach_policy
    OrganizationsResponse.detach_policy = detach_policy


def _patch_created_account_role() -> None:
    """CreateAccount: OrganizationAccountAccessRole gets AdministratorAccess."""
    from moto.iam.models import iam_backends
    from moto.organizations import models

    original_account_init = models.FakeAccount.__init__

    def account_init(self, organization, **kwargs):  # type: ignore[no-untyped-def]
        original_account_init(self, organization, **kwargs)
        iam = iam_backends[self.id]["aws"]
        role = kwargs.get("RoleName", "OrganizationAccountAccessRole")
        if not iam.get_role(role).managed_policies:
            iam.attach_role_policy("arn:aws:iam::aws:policy/AdministratorAccess", role)

    models.FakeAccount.__init__ = account_init


# Organizations operations that only the management account may call (or a delegated administrator,
# which the harness does not model): a member account gets AccessDeniedException, an account in no
# organization AWSOrganizationsNotInUseException. DescribeOrganization stays open to members.
ORG_MANAGEMENT_ONLY = (
    "create_policy", "update_policy", "delete_policy", "attach_policy", "detach_policy",
    "enable_policy_type", "disable_policy_type", "describe_policy", "list_policies",
    "list_policies_for_target", "list_targets_for_policy", "create_account", "close_account",
    "create_organizational_unit", "delete_organizational_unit", "update_organizational_unit",
    "move_account", "remove_account_from_organization", "delete_organization", "tag_resource",
    "untag_resource", "enable_aws_service_access", "disable_aws_service_access",
    "register_delegated_administrator", "deregister_delegated_administrator",
)


def patch_moto_organizations_management_only() -> None:
    """Organizations' management operations refuse every account but the management account, as in
    AWS.

    moto keeps one Organizations backend per caller account, so a member account's call went to
    its own empty backend: CreatePolicy failed with HTTP 500, UpdatePolicy/AttachPolicy/
    DetachPolicy/DeletePolicy of the organization's policies with PolicyNotFoundException, and
    ListPolicies answered an empty list. Now a member account gets AccessDeniedException ("You
    don't have permissions to access this resource.", HTTP 400) and an account outside any
    organization AWSOrganizationsNotInUseException, before anything else is checked.
    """
    from moto.organizations import models
    from moto.organizations.exceptions import AWSOrganizationsNotInUseException, OrganizationsClientError

    def guarded(original):  # type: ignore[no-untyped-def]
        def call(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            if self.org is None:
                if self.account_id in models.organizations_backends.master_accounts:
                    raise OrganizationsClientError("AccessDeniedException",
                                                   "You don't have permissions to access this resource.")
                raise AWSOrganizationsNotInUseException
            return original(self, *args, **kwargs)

        call.__name__ = original.__name__
        call.__doc__ = original.__doc__
        return call

    for name in ORG_MANAGEMENT_ONLY:
        setattr(models.OrganizationsBackend, name, guarded(getattr(models.OrganizationsBackend, name)))


# The local organization: its management account is ORGANIZATION_MANAGEMENT_ACCOUNT_ID, the
# function's account ACCOUNT_ID joined it by invitation. Fixed IDs (AWS's are random; discover them
# with DescribeOrganization and ListRoots).
ORGANIZATION_ID = "o-killswitch"
ORGANIZATION_ROOT_ID = "r-ks00"


def organize() -> dict:
    """The local organization, built in moto's process as if ACCOUNT_ID had accepted an invitation
    from ORGANIZATION_MANAGEMENT_ACCOUNT_ID (moto has no handshakes): FeatureSet ALL,
    SERVICE_CONTROL_POLICY enabled in the root, ACCOUNT_ID under the root with p-FullAWSAccess
    (and p-RCPFullAWSAccess, as moto gives created accounts) attached directly, JoinedMethod
    INVITED, Status ACTIVE.

    The function's account is the member because AWS never applies an SCP to the management
    account: a quarantine SCP on ACCOUNT_ID must bind its principals. As a member, ACCOUNT_ID may
    call DescribeOrganization (MasterAccountId: the management account) but gets
    AccessDeniedException for the management-only operations (policies, attachments, ...).

    An invited account gets no OrganizationAccountAccessRole (AWS creates it only in created
    accounts). CreateOrganization from either account then fails with
    AlreadyInOrganizationException, as in AWS.
    """
    from moto.core.utils import utcnow
    from moto.organizations import models, utils

    management = ORGANIZATION_MANAGEMENT_ACCOUNT_ID
    backend = models.organizations_backends[management]["aws"]
    fixed = {"make_random_org_id": lambda: ORGANIZATION_ID, "make_random_root_id": lambda: ORGANIZATION_ROOT_ID}
    saved = {name: getattr(utils, name) for name in fixed}
    try:
        for name, make in fixed.items():
            setattr(utils, name, make)
        backend.create_organization(region="us-east-1", FeatureSet="ALL")
    finally:
        for name, make in saved.items():
            setattr(utils, name, make)
    org = backend.org
    backend.enable_policy_type(RootId=org.root_id, PolicyType="SERVICE_CONTROL_POLICY")

    # FakeAccount.__init__ would create OrganizationAccountAccessRole; an invited account has none.
    member = models.FakeAccount.__new__(models.FakeAccount)
    member.type = "ACCOUNT"
    member.region = org.region
    member.organization_id = org.id
    member.master_account_id = org.master_account_id
    member.create_account_status_id = utils.make_random_create_account_status_id()
    member.id = ACCOUNT_ID
    member.name = "killswitch-local"
    member.email = "security@example.com"
    member.create_time = utcnow()
    member.status = "ACTIVE"
    member.state = "ACTIVE"
    member.joined_method = "INVITED"
    member.parent_id = org.root_id
    member.attached_policies = []
    member.tags = {}
    backend.accounts.append(member)
    for policy_id in (utils.DEFAULT_SCP_POLICY_ID, utils.DEFAULT_RCP_POLICY_ID):
        backend.attach_policy(PolicyId=policy_id, TargetId=member.id)
    models.organizations_backends.master_accounts[member.id] = (management, "aws")
    return {"KILLSWITCH_LOCAL_ORGANIZATION_ID": org.id, "KILLSWITCH_LOCAL_ORGANIZATION_ROOT_ID": org.root_id,
            "KILLSWITCH_LOCAL_ORGANIZATION_MANAGEMENT_ACCOUNT": org.master_account_id}
