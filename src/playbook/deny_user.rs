//! The user's deny-all: stops every other credential of the user, including the sessions it
//! minted with GetSessionToken/GetFederationToken, which deactivating the key does not.
//!
//! The key's holder can fill the user's 2,048-character inline-policy quota before we arrive.
//! Then the AWS-managed `AWSDenyAll` is attached instead (the execution role may attach that one
//! policy only), and when the managed-policy quota is full too, AWS's own runbook: every access
//! key of the user is deactivated and console access removed. Deactivating keys does not end the
//! sessions the holder minted with GetSessionToken/GetFederationToken (up to 36 h), so, when the
//! user has no permissions boundary yet, `AWSDenyAll` becomes its boundary (no quota applies).

use crate::error::{AwsFailure, Error};
use crate::policy::{self, MANAGED_DENY_ALL_ARN, USER_POLICY_NAME};
use crate::ports::{Identity, KeyStatus, Operator, PolicyTarget};
use crate::report::Outcome;

pub const PERMISSIONS: &[&str] = crate::vocab::Step::DenyUser.permissions();

pub use crate::vocab::Deny;

fn is_quota(e: &Error) -> bool {
    e.is(AwsFailure::LimitExceeded)
}

/// `before` is the policy read in the guard's wave, when it was read for this user. Returns the
/// outcome and what denies the user afterwards.
pub async fn apply<C: Identity>(
    cloud: &C,
    user: &str,
    before: Option<&Result<Option<String>, Error>>,
    dry_run: bool,
) -> (Outcome, String, Deny, Option<String>) {
    let (outcome, detail, deny, replaced) = deny(cloud, user, before, dry_run).await;
    (outcome, detail, deny, replaced)
}

async fn deny<C: Identity>(
    cloud: &C,
    user: &str,
    before: Option<&Result<Option<String>, Error>>,
    dry_run: bool,
) -> (Outcome, String, Deny, Option<String>) {
    let target = PolicyTarget::User(user.to_owned());
    let decoy = match before {
        Some(Ok(Some(doc))) if policy::is_deny_all(doc) => {
            return (
                Outcome::AlreadyDone,
                format!("{USER_POLICY_NAME} already on {target}"),
                Deny::Inline,
                None,
            );
        }
        Some(Ok(Some(_))) => {
            " (replaced a TAMPERED OR DECOY policy under that name: it was not exactly what killswitch writes, so it may deny nothing)"
        }
        _ => "",
    };
    if dry_run {
        return (
            Outcome::WouldDo,
            format!("would put inline policy {USER_POLICY_NAME} (Deny * on *) on {target}{decoy}"),
            Deny::Inline,
            None,
        );
    }
    match cloud
        .put_policy(&target, USER_POLICY_NAME, &policy::deny_all())
        .await
    {
        Ok(()) => (
            Outcome::Done,
            format!("inline policy {USER_POLICY_NAME} (Deny * on *) put on {target}{decoy}"),
            Deny::Inline,
            None,
        ),
        Err(e) if is_quota(&e) => managed(cloud, user).await,
        Err(e) => (Outcome::Failed, e.chain(), Deny::Inline, None),
    }
}

async fn managed<C: Identity>(cloud: &C, user: &str) -> (Outcome, String, Deny, Option<String>) {
    match cloud.attach_managed(user, MANAGED_DENY_ALL_ARN).await {
        Ok(()) => (
            Outcome::Done,
            format!(
                "user {user}'s inline-policy quota is full (the key's holder may have filled it), so {USER_POLICY_NAME} could not be added: the AWS-managed deny-all {MANAGED_DENY_ALL_ARN} was attached instead"
            ),
            Deny::Managed,
            None,
        ),
        Err(e) if is_quota(&e) => lock_out(cloud, user).await,
        Err(e) => (
            Outcome::Failed,
            format!(
                "user {user}'s inline-policy quota is full and attaching {MANAGED_DENY_ALL_ARN} failed: {}",
                e.chain()
            ),
            Deny::Managed,
            None,
        ),
    }
}

/// AWS's runbook when no policy can be added: no credential of the user works any more.
async fn lock_out<C: Identity>(cloud: &C, user: &str) -> (Outcome, String, Deny, Option<String>) {
    let keys = match cloud.user_keys(user).await {
        Ok(k) => k,
        Err(e) => {
            return (
                Outcome::Failed,
                format!(
                    "user {user} has no room for an inline or a managed deny, and its keys could not be listed: {}",
                    e.chain()
                ),
                Deny::LockedOut,
                None,
            );
        }
    };
    let deactivations = futures::future::join_all(
        keys.iter()
            .filter(|k| k.status == KeyStatus::Active)
            .map(|k| async move { (k.id.clone(), cloud.deactivate_key(user, &k.id).await) }),
    );
    // Always AWSDenyAll as the boundary, also over one the holder may have planted to keep it
    // out: the one it replaces is recorded, and restore puts it back.
    let bound = async {
        let previous = cloud.permissions_boundary(user).await?;
        if previous.as_deref() != Some(MANAGED_DENY_ALL_ARN) {
            cloud.put_boundary(user, MANAGED_DENY_ALL_ARN).await?;
        }
        Ok::<_, Error>(previous)
    };
    let (deactivated, console, bound) =
        tokio::join!(deactivations, cloud.remove_login_profile(user), bound);
    let mut failures: Vec<String> = deactivated
        .iter()
        .filter_map(|(id, r)| r.as_ref().err().map(|e| format!("{id}: {}", e.chain())))
        .collect();
    if let Err(e) = &console {
        failures.push(format!("console access: {}", e.chain()));
    }
    let (bound_note, deny, replaced) = bounded(bound, &mut failures);
    let ids: Vec<String> = deactivated.iter().map(|(id, _)| id.to_string()).collect();
    let console_note = match console {
        Ok(true) => "console password DELETED (it cannot be restored, only reset)",
        Ok(false) => "no console password",
        Err(_) => "console password NOT removed",
    };
    let detail = format!(
        "user {user} has no room for an inline or a managed deny (both quotas full), so, as AWS's runbook does: EVERY access key deactivated ({}), {console_note}; {bound_note}",
        if ids.is_empty() {
            "none was active".into()
        } else {
            ids.join(", ")
        }
    );
    if failures.is_empty() {
        (Outcome::Done, detail, deny, replaced)
    } else {
        (
            Outcome::Failed,
            format!("{detail}; FAILED: {}", failures.join("; ")),
            deny,
            replaced,
        )
    }
}

/// What setting `AWSDenyAll` as the boundary came to: the note, what denies the user, and the
/// boundary it replaced. A failure is added to `failures`.
fn bounded(
    bound: Result<Option<String>, Error>,
    failures: &mut Vec<String>,
) -> (String, Deny, Option<String>) {
    match bound {
        Ok(None) => (
            format!(
                "{MANAGED_DENY_ALL_ARN} set as its permissions boundary, so the sessions it minted die too"
            ),
            Deny::LockedOutBounded,
            None,
        ),
        Ok(Some(previous)) => (
            format!(
                "{MANAGED_DENY_ALL_ARN} set as its permissions boundary in place of {previous} (restore puts that back), so the sessions it minted die too"
            ),
            Deny::LockedOutBounded,
            Some(previous),
        ),
        Err(e) => {
            failures.push(format!("permissions boundary: {}", e.chain()));
            (
                "sessions it minted may STILL WORK (the permissions boundary could not be set)"
                    .to_owned(),
                Deny::LockedOut,
                None,
            )
        }
    }
}

pub async fn read_back<C: Identity>(cloud: &C, user: &str, deny: Deny) -> (bool, String) {
    match deny {
        Deny::Inline => {
            let doc = cloud
                .read_policy(&PolicyTarget::User(user.to_owned()), USER_POLICY_NAME)
                .await;
            match doc {
                Ok(Some(d)) if policy::is_deny_all(&d) => {
                    (true, format!("{USER_POLICY_NAME} in place"))
                }
                Ok(Some(_)) => (false, format!("{USER_POLICY_NAME} ALTERED")),
                Ok(None) => (false, format!("{USER_POLICY_NAME} MISSING")),
                Err(e) => (false, format!("policy unreadable: {}", e.chain())),
            }
        }
        Deny::Managed => {
            // A re-apply may have found room for the inline deny meanwhile: either denies all.
            let target = PolicyTarget::User(user.to_owned());
            let (attached, inline) = tokio::join!(
                cloud.managed_policies(user),
                cloud.read_policy(&target, USER_POLICY_NAME)
            );
            match (attached, inline) {
                (Ok(arns), _) if arns.iter().any(|a| a == MANAGED_DENY_ALL_ARN) => {
                    (true, "AWSDenyAll attached".into())
                }
                (_, Ok(Some(d))) if policy::is_deny_all(&d) => (
                    true,
                    format!("{USER_POLICY_NAME} in place (instead of AWSDenyAll)"),
                ),
                (Ok(_), _) => (false, "AWSDenyAll DETACHED".into()),
                (Err(e), _) => (
                    false,
                    format!("attached policies unreadable: {}", e.chain()),
                ),
            }
        }
        Deny::LockedOut | Deny::LockedOutBounded => {
            let (keys, console, boundary) =
                tokio::join!(cloud.user_keys(user), cloud.login_profile(user), async {
                    if deny == Deny::LockedOutBounded {
                        Some(cloud.permissions_boundary(user).await)
                    } else {
                        None
                    }
                });
            match boundary {
                Some(Ok(Some(arn))) if arn == MANAGED_DENY_ALL_ARN => {}
                Some(Ok(_)) => return (false, "AWSDenyAll boundary REMOVED".into()),
                Some(Err(e)) => {
                    return (
                        false,
                        format!("permissions boundary unreadable: {}", e.chain()),
                    );
                }
                None => {}
            }
            let active: Vec<String> = match &keys {
                Ok(k) => k
                    .iter()
                    .filter(|k| k.status == KeyStatus::Active)
                    .map(|k| k.id.to_string())
                    .collect(),
                Err(e) => return (false, format!("keys unreadable: {}", e.chain())),
            };
            match console {
                Ok(None) if active.is_empty() => {
                    (true, "every key inactive, no console password".into())
                }
                Ok(None) => (false, format!("key(s) ACTIVE AGAIN: {}", active.join(", "))),
                Ok(Some(_)) => (false, "console password CREATED AGAIN".into()),
                Err(e) => (false, format!("login profile unreadable: {}", e.chain())),
            }
        }
    }
}

pub async fn undo<O: Operator>(op: &O, user: &str, deny: Deny) -> Result<(), Error> {
    match deny {
        Deny::Inline => {
            op.delete_policy(&PolicyTarget::User(user.to_owned()), USER_POLICY_NAME)
                .await
        }
        Deny::Managed => op.detach_managed(user, MANAGED_DENY_ALL_ARN).await,
        // Nothing of ours to remove: keys are reactivated one by one, on purpose, and a deleted
        // password can only be reset.
        Deny::LockedOut => Ok(()),
        Deny::LockedOutBounded => op.delete_boundary(user).await,
    }
}
