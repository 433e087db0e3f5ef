//! The role's deny when its inline-policy quota is full. IAM allows a role 10,240 characters of
//! inline policy, all its inline policies together: the key's holder can fill them before we
//! arrive, and a list of denied sessions that only a restore shortens can outgrow them. The same
//! document then goes into a customer-managed policy of killswitch's own,
//! `policy/killswitch/<inline name>-<role>`, attached to the role: the same condition, so it
//! denies exactly what the inline policy would, and nothing else. (A managed policy holds 6,144
//! characters; a role takes 10 attached, 20 on request.)

use crate::error::{AwsFailure, Error};
use crate::ports::{Identity, Operator};
use crate::vocab::Arn;

/// The path of killswitch's managed policies: the execution role may create, version and attach
/// policies under it only.
pub const PATH: &str = "/killswitch/";

/// The managed fallback's name for one of killswitch's inline role policies.
pub fn name(inline: &str, role: &str) -> String {
    format!("{inline}-{role}")
}

/// Whether `arn` is the fallback of `inline` on `role` (IAM names are case-insensitive).
pub fn is_fallback(arn: &str, inline: &str, role: &str) -> bool {
    let wanted = format!("policy{PATH}{}", name(inline, role));
    Arn::parse(arn).is_some_and(|a| a.service == "iam" && a.resource.eq_ignore_ascii_case(&wanted))
}

/// The fallback of `inline` as the role holds it now: its ARN and default document, when it is
/// attached (detached, it denies nothing).
pub async fn attached<C: Identity>(
    cloud: &C,
    inline: &str,
    role: &str,
) -> Result<Option<(String, String)>, Error> {
    let arns = match cloud.role_managed_policies(role).await {
        // No role, nothing attached (as the inline reads say of a deleted role).
        Err(e) if e.is(AwsFailure::NotFound) => return Ok(None),
        other => other?,
    };
    let Some(arn) = arns.into_iter().find(|a| is_fallback(a, inline, role)) else {
        return Ok(None);
    };
    Ok(cloud.policy_default(&arn).await?.map(|v| (arn, v.document)))
}

/// The fallback before a write: its ARN in this account, its document (`None`: no such policy
/// yet) and whether the role has it attached.
pub struct Found {
    pub arn: String,
    pub document: Option<String>,
    pub attached: bool,
}

pub async fn find<C: Identity>(cloud: &C, inline: &str, role: &str) -> Result<Found, Error> {
    let (caller, arns) = tokio::join!(cloud.caller(), cloud.role_managed_policies(role));
    let (account, caller_arn) = caller?;
    let partition = Arn::parse(&caller_arn).map_or("aws", |a| a.partition);
    let arn = format!(
        "arn:{partition}:iam::{account}:policy{PATH}{}",
        name(inline, role)
    );
    let attached = arns?.iter().any(|a| is_fallback(a, inline, role));
    let document = cloud.policy_default(&arn).await?.map(|v| v.document);
    Ok(Found {
        arn,
        document,
        attached,
    })
}

/// The fallback's default version made from the one in place (`document` gets it, `None` when
/// there is none: the policy is then created), attached to the role.
pub async fn write<C: Identity>(
    cloud: &C,
    inline: &str,
    role: &str,
    found: &Found,
    document: impl Fn(Option<&str>) -> String,
) -> Result<(), Error> {
    match &found.document {
        None => match cloud
            .create_managed(PATH, &name(inline, role), &document(None))
            .await
        {
            Ok(_) => {}
            // Created meanwhile (another containment of the role): what it holds is kept.
            Err(e) if e.is(AwsFailure::AlreadyExists) => {
                let current = cloud.policy_default(&found.arn).await?.map(|v| v.document);
                new_version(cloud, &found.arn, &document(current.as_deref())).await?;
            }
            Err(e) => return Err(e),
        },
        Some(current) => {
            let wanted = document(Some(current));
            if &wanted != current {
                new_version(cloud, &found.arn, &wanted).await?;
            }
        }
    }
    cloud.attach_role_managed(role, &found.arn).await
}

/// A new default version; IAM keeps 5, so the oldest other one makes room.
pub(super) async fn new_version<C: Identity>(
    cloud: &C,
    arn: &str,
    document: &str,
) -> Result<(), Error> {
    let versions = cloud.policy_versions(arn).await?;
    if versions.len() >= 5
        && let Some(oldest) = versions
            .iter()
            .filter(|v| !v.default)
            .min_by_key(|v| v.created)
    {
        cloud.delete_policy_version(arn, &oldest.version).await?;
    }
    cloud.create_policy_version(arn, document).await.map(|_| ())
}

/// The fallback off the role, and deleted: detached, it already denies nothing, so a policy
/// that cannot be deleted (attached elsewhere by someone else) is only logged.
pub async fn remove<O: Operator>(op: &O, role: &str, arn: &str) -> Result<(), Error> {
    op.detach_role_managed(role, arn).await?;
    if let Err(e) = op.delete_managed_policy(arn).await {
        tracing::warn!(policy_arn = arn, error = %e.chain(), "killswitch's managed role deny detached but not deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_killswitchs_own_policy_of_that_role_is_the_fallback() {
        let arn = "arn:aws:iam::123456789012:policy/killswitch/KillSwitchDenySessions-ci-deployer";
        assert!(is_fallback(arn, "KillSwitchDenySessions", "ci-deployer"));
        assert!(is_fallback(arn, "KillSwitchDenySessions", "CI-Deployer"));
        assert!(!is_fallback(arn, "KillSwitchDenySessions", "ci"));
        assert!(!is_fallback(
            arn,
            "KillSwitchRevokeOlderSessions",
            "ci-deployer"
        ));
        assert!(!is_fallback(
            "arn:aws:iam::123456789012:policy/other/KillSwitchDenySessions-ci-deployer",
            "KillSwitchDenySessions",
            "ci-deployer"
        ));
    }
}
