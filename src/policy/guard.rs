//! The org guard: one static service control policy, deployed once before any incident
//! (`org-guard.yaml`, or `killswitch guard-policy` for another way to deploy it), so that what
//! containment writes in the key's account bites the moment the tag's write has propagated and
//! nothing in that account can take it back. Pure functions; docs/org-guard.md says what it
//! covers and what it cannot.
//!
//! IAM authorizes on state some seconds old (AWS-FACTS §6, §16): a holder polling the account can
//! delete a just-written deny inside that window, and every re-apply opens a new one. An SCP the
//! holder cannot change closes the loop: once the user's tag has propagated, every key and every
//! session the user minted is refused, and no one but killswitch's own roles can untag it or
//! edit what killswitch wrote.

use serde_json::{Value, json};

use crate::vocab::{Invalid, Plan};

/// Tag on an IAM user under containment (value: the incident ID). The guard denies every request
/// of a principal carrying it, whatever its value: a session tag of the same key can change the
/// value, never remove the key.
pub const CONTAINED_TAG_KEY: &str = "killswitch-contained";
/// Tag on an IAM role whose sessions are denied (value: the incident ID). Never
/// [`CONTAINED_TAG_KEY`] on a role: a role's tags are principal tags of every session of it, so
/// that would deny all of them, an outage (AWS-FACTS §12). The guard freezes the role's policies
/// and trust instead, so `KillSwitchDenySessions` stays.
pub const GUARDED_TAG_KEY: &str = "killswitch-guarded";

/// The guarded tag's value lists the denied sessions of the role, each `ROLE-ID:session-name`
/// between slashes (`/AROA…:i-0abc/AROA…:ci/`); a role-wide cutoff lists none (`/`). Session
/// names cannot hold `*`, `?` or `/`, so no value can widen the match.
pub const DENIED_SESSION_PATTERN: &str = "*/${aws:userid}/*";

/// The default name of the guard policy in the organization.
pub const POLICY_NAME: &str = "killswitch-org-guard";

/// Organizations' limit on an SCP document. Whitespace counts when the document is saved
/// through the API (the CLI, an SDK, CloudFormation); only the console strips it.
pub const MAX_SCP_CHARS: usize = 5120;

/// Writes on a user tagged [`CONTAINED_TAG_KEY`] that would undo or route around containment:
/// its denies and boundary, its keys and console password, its name (a rename breaks the
/// record's link), its deletion (a new user of the same name carries no tag). Only actions whose
/// resource is the user itself: IAM authorizes group membership on the group, and the tag's
/// deny of the user's own requests makes membership moot.
pub const CONTAINED_USER_WRITES: [&str; 12] = [
    "iam:DeleteUserPolicy",
    "iam:PutUserPolicy",
    "iam:DetachUserPolicy",
    "iam:AttachUserPolicy",
    "iam:DeleteUserPermissionsBoundary",
    "iam:PutUserPermissionsBoundary",
    "iam:UpdateAccessKey",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:UpdateUser",
    "iam:DeleteUser",
];

/// Writes on a role tagged [`GUARDED_TAG_KEY`] that would lift `KillSwitchDenySessions` or a
/// cutoff (delete, overwrite with a decoy, detach the managed fallback) or open the role to
/// someone new. `iam:PassRole` stays allowed: the role's workloads keep deploying.
pub const GUARDED_ROLE_WRITES: [&str; 7] = [
    "iam:DeleteRolePolicy",
    "iam:PutRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRole",
];

/// Writes on killswitch's own roles (responder, member, restore, deployer): creating one where it
/// is missing (a look-alike of an exempt name would be exempt), changing its trust or policies.
pub const OWN_ROLE_WRITES: [&str; 10] = [
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:UpdateRole",
];

/// Writes on the managed policies killswitch creates under `policy/killswitch/` when a role's
/// inline quota is full: a new default version would replace the deny.
pub const OWN_POLICY_WRITES: [&str; 4] = [
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
];

/// Every way to put a tag key on a principal or take it off: on users and roles, at creation,
/// and as a session tag (which overrides a principal tag of the same key).
pub const TAGGING: [&str; 7] = [
    "iam:TagUser",
    "iam:UntagUser",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:CreateUser",
    "iam:CreateRole",
    "sts:TagSession",
];

/// The roles the guard never denies: the function's execution role, the member role it enters
/// other accounts with, and the operators' restore role. Named without an account (the guard
/// covers many accounts, the member role is in each), which is why the guard also keeps anyone
/// else from creating or editing a role of these names. The deployer, when given, may write
/// these roles (a stack update) but is exempt from nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exempt {
    pub responder: String,
    pub member: String,
    pub restore: String,
    pub deployer: Option<String>,
}

/// IAM's role-name rule: 1-64 of `A-Za-z0-9+=,.@_-`. No wildcard can slip into an exemption.
pub fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// `aws`, `aws-cn`, `aws-us-gov`, `aws-iso-b`...
pub fn is_partition(p: &str) -> bool {
    p.strip_prefix("aws").is_some_and(|rest| {
        rest.split('-')
            .skip(1)
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
            && (rest.is_empty() || rest.starts_with('-'))
    })
}

impl Exempt {
    /// The exempt roles by name, each checked against IAM's rule for role names.
    pub fn parse(
        responder: &str,
        member: &str,
        restore: &str,
        deployer: Option<&str>,
    ) -> Result<Exempt, Invalid> {
        let check = |what: &str, name: &str| {
            if is_role_name(name) {
                Ok(name.to_owned())
            } else {
                Err(Invalid(format!(
                    "{what} role name {name:?} is not an IAM role name (1-64 of A-Za-z0-9+=,.@_-, no path, no wildcard)"
                )))
            }
        };
        Ok(Exempt {
            responder: check("responder", responder)?,
            member: check("member", member)?,
            restore: check("restore", restore)?,
            deployer: deployer.map(|d| check("deployer", d)).transpose()?,
        })
    }

    /// The exempt roles' ARN patterns, in any account: `arn:PARTITION:iam::*:role/NAME`.
    pub fn principal_arns(&self, partition: &str) -> Vec<String> {
        [&self.responder, &self.member, &self.restore]
            .into_iter()
            .map(|name| role_arn(partition, name))
            .collect()
    }

    /// The roles the guard protects as killswitch's own, and who may write them.
    fn own_roles(&self, partition: &str) -> Vec<String> {
        let mut arns = self.principal_arns(partition);
        arns.extend(self.deployer.iter().map(|d| role_arn(partition, d)));
        arns
    }
}

fn role_arn(partition: &str, name: &str) -> String {
    format!("arn:{partition}:iam::*:role/{name}")
}

/// The tag containment writes on the principal of `plan`: the contained tag on a user, the
/// guarded tag on a role, nothing on an Identity Center role (IAM refuses edits to
/// `AWSReservedSSO_` roles; the portal plan denies through the permission sets' policy).
pub fn tag_key(plan: &Plan) -> Option<&'static str> {
    match plan {
        Plan::User { .. } => Some(CONTAINED_TAG_KEY),
        Plan::Role { .. } => Some(GUARDED_TAG_KEY),
        Plan::Portal { .. } => None,
    }
}

/// One deny statement, sparing the exempt principals (`spared`). The condition operators are
/// ANDed by IAM: the statement applies only to principals not spared.
fn deny(sid: &str, actions: Value, resource: Value, spared: &[String], when: Value) -> Value {
    let mut condition = when;
    if let Some(map) = condition.as_object_mut() {
        map.insert("ArnNotLike".into(), json!({ "aws:PrincipalArn": spared }));
    }
    json!({
        "Sid": sid,
        "Effect": "Deny",
        "Action": actions,
        "Resource": resource,
        "Condition": condition,
    })
}

/// The guard's document (compact JSON, as it is saved through the API).
///
/// 1. `KillSwitchGuardContained`: every action of a principal tagged [`CONTAINED_TAG_KEY`] (the
///    user's every key and every session it minted with `GetSessionToken`/`GetFederationToken`).
/// 2. `KillSwitchGuardTagKeys`: adding or removing either tag key, in any letter case (IAM tag
///    keys are case-insensitive), on users and roles, at creation or as a session tag.
/// 3. `KillSwitchGuardDeniedSessions`: every action of a role session whose `aws:userid` the
///    role's [`GUARDED_TAG_KEY`] lists (`/ROLE-ID:session/…/`): the leaked session is refused
///    once the tag has propagated, even if its holder deleted `KillSwitchDenySessions` first.
/// 4. `KillSwitchGuardContainedUser`: [`CONTAINED_USER_WRITES`] on a contained user.
/// 5. `KillSwitchGuardGuardedRole`: [`GUARDED_ROLE_WRITES`] on a guarded role.
/// 6. `KillSwitchGuardOwnPolicies`: [`OWN_POLICY_WRITES`] on `policy/killswitch/*`.
/// 7. `KillSwitchGuardOwnRoles`: [`OWN_ROLE_WRITES`] on the exempt roles and the deployer.
///
/// Each spares the exempt roles; the last also the deployer.
pub fn document(exempt: &Exempt, partition: &str) -> String {
    let spared = exempt.principal_arns(partition);
    let tagged =
        |prefix: &str, key: &str| json!({ "Null": { format!("{prefix}/{key}"): "false" } });
    let iam = |kind: &str| format!("arn:{partition}:iam::*:{kind}");
    let mut own_writers = spared.clone();
    own_writers.extend(exempt.deployer.iter().map(|d| role_arn(partition, d)));
    let statements = vec![
        deny(
            "KillSwitchGuardContained",
            json!("*"),
            json!("*"),
            &spared,
            tagged("aws:PrincipalTag", CONTAINED_TAG_KEY),
        ),
        deny(
            "KillSwitchGuardTagKeys",
            json!(TAGGING),
            json!("*"),
            &spared,
            json!({ "ForAnyValue:StringEqualsIgnoreCase": {
                "aws:TagKeys": [CONTAINED_TAG_KEY, GUARDED_TAG_KEY]
            }}),
        ),
        deny(
            "KillSwitchGuardDeniedSessions",
            json!("*"),
            json!("*"),
            &spared,
            json!({ "StringLike": {
                format!("aws:PrincipalTag/{GUARDED_TAG_KEY}"): DENIED_SESSION_PATTERN
            }}),
        ),
        deny(
            "KillSwitchGuardContainedUser",
            json!(CONTAINED_USER_WRITES),
            json!(iam("user/*")),
            &spared,
            tagged("aws:ResourceTag", CONTAINED_TAG_KEY),
        ),
        deny(
            "KillSwitchGuardGuardedRole",
            json!(GUARDED_ROLE_WRITES),
            json!(iam("role/*")),
            &spared,
            tagged("aws:ResourceTag", GUARDED_TAG_KEY),
        ),
        deny(
            "KillSwitchGuardOwnPolicies",
            json!(OWN_POLICY_WRITES),
            json!(iam("policy/killswitch/*")),
            &spared,
            json!({}),
        ),
        deny(
            "KillSwitchGuardOwnRoles",
            json!(OWN_ROLE_WRITES),
            json!(exempt.own_roles(partition)),
            &own_writers,
            json!({}),
        ),
    ];
    json!({ "Version": "2012-10-17", "Statement": statements }).to_string()
}

#[cfg(test)]
mod tests;
