"""Test infrastructure: the embedded local AWS that killswitch's tests, demo and drills run against.

One HTTP endpoint on 127.0.0.1 serves three things:

* moto (IAM, STS, SNS, SQS, ...) with IAM authentication enforced, plus patches that close
  moto's gaps where it is kinder than AWS: a key whose status is not Active is refused with
  InvalidClientTokenId; a user's aggregate inline policies are capped at 2,048 non-whitespace
  characters (LimitExceeded); `StringEquals` on the signer's aws:userid / aws:username /
  aws:PrincipalArn is evaluated (stock moto applies such statements to everyone); the
  AWS-managed AWSDenyAll exists; trust policies are honoured.
* a CloudTrail LookupEvents double (moto has none), faithful to the documented API: awsJson1_1,
  one lookup attribute, MaxResults 1..50, NextToken bound to the same parameters, newest first,
  90-day retention, per-Region data, CloudTrailEvent as a JSON string, ThrottlingException from a
  strict sliding window (a third call within any 1 s per account and Region is refused: stricter
  than a token bucket, and what arrival jitter turns exact 500 ms pacing into), and delivery lag
  (an event is visible only once its time plus the lag has passed; per key, see below).
* a recorder: every authenticated call made to moto is stored as a CloudTrail management event
  (identity, event name and source, Region from the SigV4 scope, source IP, user agent, error code),
  so calls made with a leaked key show up in LookupEvents like they would in Event history.

Known gaps of the double (documented in the README): data events are never recorded (same as
real Event history), calls refused before authentication (unknown or Inactive key) are not
recorded, delivery lag is 0 unless set (real Event history lags by about 5 minutes, up to 15),
requestParameters are the query parameters in camelCase (lists for `X.member.N`, passwords and
tokens left out), and only Region, account and the lookup
attribute shape the results.

* account:ListRegions (moto has none): the 17 Regions enabled by default, opt-in ones disabled.
* a Security Hub BatchUpdateFindings double (moto answers 404): authenticated and authorized like
  moto's services, the request validated like the service model (InvalidInputException, 400),
  findings exist only once planted (per account from the key, Region from the SigV4 scope), others
  come back as UnprocessedFindings/FindingNotFound with 200; every call is kept for assertions.
* a GuardDuty double (moto has no GetFindings): one detector per account and Region (the ID the
  events/ fixtures name; the control API can switch a Region off), ListDetectors, GetDetector and
  GetFindings authenticated and authorized like moto's services; a finding exists only once the
  control API raised it, unknown IDs are left out of the answer and a detector the account does
  not own is refused (400), as GuardDuty does. The function reads every finding back there.
* Organizations as strict as AWS where moto is not (see patch_moto_organizations_limits): SCP size
  and per-target quotas, duplicate or missing attachments, policy type enabled, and an
  OrganizationAccountAccessRole with AdministratorAccess in created accounts; management-only
  operations refused to member accounts (see patch_moto_organizations_management_only); calls
  authorized as IAM does, against the policy, account, root or OU ARNs they name with
  aws:RequestTag/*, aws:TagKeys and aws:ResourceTag/* conditions, refusals in the JSON protocol's
  shape (see patch_moto_organizations_authorization).
* an organization from the start (see organize): MEMBER_ACCOUNT_ID manages it, ACCOUNT_ID (the
  function's account) is a member that joined by invitation (moto has no handshakes),
  SERVICE_CONTROL_POLICY enabled, so a quarantine SCP can be attached to the function's account
  (AWS never applies SCPs to the management account); its IDs are in the env file.
* a quarantine role for drills and end-to-end tests (see deploy_quarantine_role): quarantine-role.yaml
  deployed through CloudFormation in the management account, trusting the admin user of
  ACCOUNT_ID (the env file's AWS_ACCESS_KEY_ID) with an external ID; KILLSWITCH_LOCAL_QUARANTINE_*.
  root-access-role.yaml is deployed for it too (see deploy_root_access): it may call
  sts:AssumeRoot with IAMDeleteRootUserCredentials on member accounts, as a deployment with
  KILLSWITCH_ROOT_KEYS=delete gives it.
* managed policies as strict as IAM (see patch_moto_managed_policy_limits): 6,144 non-whitespace
  characters per document (LimitExceeded), DeletePolicy of an attached policy or one with
  non-default versions refused (DeleteConflict); moto already caps versions at 5 and keeps the
  default version from being deleted. The default version is what sessions are evaluated against.
* IAM Identity Center, enough to contain a leaked portal credential:
  - one instance, the organization's: in the management account, us-east-1, IDs in AWS's formats
    (see patch_moto_identity_center_instances); its identity store is the identitystore store.
  - sso-admin and identitystore calls authorized against sso:<Operation> / identitystore:<Operation>
    and refused in the JSON protocol's shape, AccessDeniedException (see
    patch_moto_identity_center_authorization).
  - Create/DeleteAccountAssignment with their own RequestIds that Describe*Status answer, no
    duplicate assignments, provisioning on assignment (see patch_moto_sso_admin_assignments).
  - identity-center-role.yaml (the responder's KillSwitchIdentityCenter and the operators'
    KillSwitchIdentityCenterRestore, trusting ACCOUNT_ID's admin user with an external ID) in the
    management account, identity-center-policy.yaml (KillSwitchDeny) in ACCOUNT_ID (see
    deploy_identity_center); KILLSWITCH_LOCAL_IDENTITY_CENTER_ROLE_ARN, ..._RESTORE_ROLE_ARN,
    ..._EXTERNAL_ID, ..._INSTANCE_ARN, ..._REGION, and KILLSWITCH_LOCAL_IDENTITY_STORE_ID.
  - permission sets provisioned as AWS does (see provision_permission_set_to_account): a role
    AWSReservedSSO_<name>_<suffix> at /aws-reserved/sso.amazonaws.com/ with AwsSSOInlinePolicy and
    the referenced customer-managed policies attached, which IAM refuses to change through the API
    (UnmodifiableEntity, see patch_moto_identity_center_roles_protected).
  - portal sessions (control endpoints, see control.py): their requests carry
    identitystore:UserId, so a Deny on that key in KillSwitchDeny stops one user's sessions of a
    shared role and no one else's.

* IAM's propagation window (see lag.py, authorizer.py): with `KILLSWITCH_IAM_LAG_SECONDS` = D > 0
  at start, authentication and authorization use the IAM state of D seconds earlier (access keys
  and their status, inline and attached managed policies with their default version, groups,
  permissions boundaries, principal tags, trust policies for AssumeRole, login profiles in the
  state, and the organization's SCPs) while List*/Get* answers see every write at once, as AWS
  documents ("changes take time to propagate") and OffensAI measured (~3-4 s, in several Regions;
  AWS-FACTS sections 6 and 16). D = 0 (the default) is no window. The env file says D
  (KILLSWITCH_LOCAL_IAM_LAG_SECONDS), so does GET /_killswitch/iam/lag. Left out: D is one fixed
  number, not a distribution, the same for every Region, endpoint and kind of change (AWS's
  varies); new STS sessions work at once; console sign-in is not modelled (a login profile is only
  a fact in the state); moto's own gaps in policy evaluation stay (policy_eval.py).
* SCPs (see scp.py): a member account's principals are held to the SCPs attached to the account,
  its OUs and the root (with the same lag), never the management account's, never a service-linked
  role's; an explicit Deny refuses with AWS's "with an explicit deny in a service control policy";
  an operator or key the evaluator does not know fails the request (HTTP 500), never allows.
  Permissions boundaries limit users and roles (moto has none for users: added, see
  iam.patch_moto_user_permissions_boundaries). AssumeRole with session tags is also authorized as
  sts:TagSession; session tags are aws:PrincipalTag/* of the session, over the role's.
* CloudTrail -> EventBridge (see eventbridge.py): an `AWS API Call via CloudTrail` event for every
  successful IAM write and STS AssumeRole, GetSessionToken, GetFederationToken and
  AssumeRoleWithWebIdentity, delivered after KILLSWITCH_EVENTBRIDGE_DELAY_SECONDS (default 2), read
  with GET /_killswitch/eventbridge/events?after=SEQ. Records never carry a secret key, session
  token or password.

Started by scripts/local-aws.sh as `scripts/local_aws.py --port N --env-file PATH` (the same as
`python -m local_aws ...` with scripts/ on the path). The package, by service:
  common.py                 the accounts, per-request state, identity_for, shared helpers
  iam.py                    IAM and STS as strict as AWS (Inactive keys, quotas, trust policies)
  cloudformation.py         CloudFormation fixes (inline role policies, AWS::NoValue in lists)
  policy_eval.py            identity-policy evaluation (condition keys, operators, statements)
  lag.py                    IAM's propagation window: the journal of authorization state, the view
                            a request is authorized against
  authorizer.py             keys and policies from that view, permissions boundaries, SCPs
  scp.py                    the strict SCP evaluator
  eventbridge.py            the CloudTrail -> EventBridge events and their delivery
  organizations.py          Organizations limits, management-only operations, the organization
  organizations_auth.py     Organizations calls authorized per resource, with condition keys
  identity_center.py        IAM Identity Center patches, permission-set provisioning
  identity_center_control.py  the seed and portal-credentials control endpoints
  cloudtrail.py             the CloudTrail LookupEvents double and the recorder's event shapes
  security_hub.py           the Security Hub BatchUpdateFindings double
  guardduty.py              GuardDuty: detectors and the findings they hold (ListDetectors,
                            GetDetector, GetFindings), strict; findings raised by the control API
  simulate.py               IAM SimulatePrincipalPolicy (strict double)
  control.py                the harness control API (/_killswitch/...)
  harness.py                the WSGI middleware in front of moto
  bootstrap.py              what is set up before authentication is enforced
  server.py                 main: patches, server, bootstrap, env file
"""
