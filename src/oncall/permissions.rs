//! What the operator's own credentials need for `status` and `restore`.

/// Actions `restore` needs (operator-only), beyond the reads of `status`.
pub const OPERATOR_PERMISSIONS: [&str; 41] = [
    "iam:GetAccessKeyLastUsed",
    "iam:ListAccessKeys",
    "iam:GetUserPolicy",
    "iam:GetRolePolicy",
    "iam:ListAttachedUserPolicies",
    "iam:GetLoginProfile",
    "iam:ListServiceSpecificCredentials",
    "iam:ListSSHPublicKeys",
    "iam:ListSigningCertificates",
    "iam:GetUser",
    // The incident record's seal (`KILLSWITCH_RECORD_KEY_ARN`): a record anyone else wrote is
    // not trusted.
    "kms:VerifyMac",
    // MFA devices enabled since the incident began (their EnableDate).
    "iam:ListMFADevices",
    // What the key's holder changed that IAM keeps no date for (a key set back to Active, a
    // password changed in place, a credential reset, an MFA device enabled): its own calls.
    "cloudtrail:LookupEvents",
    // killswitch's managed role deny (the role's inline quota was full), taken off and deleted.
    "iam:DetachRolePolicy",
    "iam:DeletePolicy",
    // The roles the incident's pivots name: a minted session's role, a changed trust policy.
    "iam:GetRole",
    "iam:PutUserPermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:UpdateAccessKey",
    "iam:PutUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    // The org guard's containment tag, taken off with the deny (`org_tag`).
    "iam:UntagUser",
    "iam:UntagRole",
    // One session out of a role's guarded tag, which other incidents keep.
    "iam:ListRoleTags",
    "iam:TagRole",
    // Identity Center: the user out of the deny policy (a new default version).
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListPolicyVersions",
    "iam:CreatePolicyVersion",
    "iam:ListAttachedRolePolicies",
    "sts:GetCallerIdentity",
    // The incident record, the role index and the restore log (`KILLSWITCH_INCIDENT_TABLE`).
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    // The quarantine lease, given back after lifting.
    "dynamodb:DeleteItem",
    "sns:Publish",
    // The 5-version limit when taking the user out again.
    "iam:DeletePolicyVersion",
    // The note on the Security Hub finding; the quarantine role (`OperatorRoleArns`).
    "securityhub:BatchUpdateFindings",
    "sts:AssumeRole",
];
