//! The steps of a response, each declared once with every fact about it.

use serde::{Deserialize, Serialize};

/// Declares the steps: a new step is one line here. For each: its JSON name, the actions it
/// calls (the execution role grants exactly their union), whether it runs in the key's
/// account (through the member role when that is another account), and whether it is a
/// containment write.
macro_rules! steps {
    ($($step:ident $name:literal key_account: $in_key:literal, write: $write:literal, $perms:expr;)*) => {
        /// The steps, each with the actions it calls. The execution role grants exactly their union.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Step {
            $(#[serde(rename = $name)] $step,)*
        }

        impl Step {
            pub const ALL: &'static [Step] = &[$(Step::$step,)*];

            /// The JSON name (as serde writes it).
            pub const fn name(self) -> &'static str {
                match self { $(Step::$step => $name,)* }
            }

            pub const fn permissions(self) -> &'static [&'static str] {
                match self { $(Step::$step => $perms,)* }
            }

            /// Runs in the key's account (through the member role when it is another one).
            pub const fn in_key_account(self) -> bool {
                match self { $(Step::$step => $in_key,)* }
            }

            /// Writes containment: deactivates the key or denies its principal.
            pub const fn is_containment_write(self) -> bool {
                match self { $(Step::$step => $write,)* }
            }
        }
    };
}

steps! {
    // The finding read back at GuardDuty, where it was raised (Security Hub imports too), in the
    // function's own account (the GuardDuty administrator's holds its members' findings too).
    CheckFinding "check_finding" key_account: false, write: false,
        &["guardduty:ListDetectors", "guardduty:GetFindings"];
    EnterAccount "enter_account" key_account: false, write: false, &["sts:AssumeRole"];
    CheckAccount "check_account" key_account: true, write: false, &["sts:GetAccessKeyInfo"];
    ResolveOwner "resolve_owner" key_account: true, write: false, &["iam:GetAccessKeyLastUsed"];
    DeactivateKey "deactivate_key" key_account: true, write: true,
        &["iam:ListAccessKeys", "iam:UpdateAccessKey"];
    DenyUser "deny_user" key_account: true, write: true, &[
        "iam:GetUserPolicy",
        "iam:PutUserPolicy",
        "iam:AttachUserPolicy",
        "iam:ListAttachedUserPolicies",
        "iam:ListAccessKeys",
        "iam:DeleteLoginProfile",
        "iam:GetUser",
        "iam:PutUserPermissionsBoundary",
        "iam:GetLoginProfile",
    ];
    // With the role's inline quota full, killswitch's own managed deny under policy/killswitch/
    // (created, versioned within IAM's 5, attached): the same condition as the inline policy.
    RevokeRoleSessions "revoke_role_sessions" key_account: true, write: true, &[
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:PutRolePolicy",
        "iam:ListAttachedRolePolicies",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListPolicyVersions",
        "iam:CreatePolicy",
        "iam:CreatePolicyVersion",
        "iam:DeletePolicyVersion",
        "iam:AttachRolePolicy",
    ];
    // The containment tag an org guard keys on (`org-guard.yaml`): a user's in the deny's wave,
    // a role's (never the user's key) beside its session deny; read by the first-minute watch.
    TagPrincipal "tag_principal" key_account: true, write: false, &[
        "iam:TagUser",
        "iam:TagRole",
        "iam:ListUserTags",
        "iam:ListRoleTags",
    ];
    // Records are sealed with the record key, which only the responder may sign with.
    Record "record" key_account: false, write: false, &[
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        // The watchdog lists the records and claims it looks after.
        "dynamodb:Scan",
        "kms:GenerateMac",
        "kms:VerifyMac",
    ];
    HandOff "hand_off" key_account: false, write: false, &["sqs:SendMessage"];
    Verify "verify" key_account: true, write: false, &[
        "iam:ListAccessKeys",
        "iam:GetUserPolicy",
        "iam:GetRolePolicy",
        "iam:UpdateAccessKey",
        "iam:PutUserPolicy",
        "iam:PutRolePolicy",
        // A role's deny read back (and re-applied) where the inline quota sent it.
        "iam:ListAttachedRolePolicies",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
    ];
    Investigate "investigate" key_account: true, write: false,
        &["cloudtrail:LookupEvents", "account:ListRegions"];
    // A chat topic under a customer key (`ChatTopicKmsKeyArn`): SNS uses the key on the
    // publisher's behalf.
    Notify "notify" key_account: false, write: false,
        &["sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"];
    UpdateFinding "update_finding" key_account: false, write: false,
        &["securityhub:BatchUpdateFindings"];
    // Organizations is called through the quarantine role (`quarantine-role.yaml`,
    // `quarantine::ORGANIZATIONS_PERMISSIONS`), never with the function's own rights.
    Quarantine "quarantine" key_account: false, write: false, &["sts:AssumeRole"];
    DenyPortalUser "deny_portal_user" key_account: true, write: true, &[
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListPolicyVersions",
        "iam:CreatePolicyVersion",
        // The 5-version limit: the oldest non-default version makes room. Scoped to the deny
        // policy.
        "iam:DeletePolicyVersion",
        "iam:ListAttachedRolePolicies",
        // Which permission sets' roles lack the policy (the user could still use those).
        "iam:ListRoles",
    ];
    // Identity Center is called through its role (`identity-center-role.yaml`,
    // `portal::IDENTITY_CENTER_PERMISSIONS`): the user lookup and the removal.
    RemoveAssignment "remove_assignment" key_account: false, write: false, &["sts:AssumeRole"];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_json_name() {
        for step in Step::ALL {
            assert_eq!(
                serde_json::to_value(step).unwrap(),
                serde_json::Value::String(step.name().into())
            );
        }
    }
}
