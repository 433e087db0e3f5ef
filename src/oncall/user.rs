//! A user's part of the assessment: whose key it is, what the holder may have left on the user,
//! and which of killswitch's denies come off.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::action::RestoreAction;
use super::assess::{Assessment, Facts};
use crate::error::{AwsFailure, Error};
use crate::playbook::deny_user::Deny;
use crate::playbook::{Plan, org_tag};
use crate::policy;
use crate::ports::{Identity, KeyStatus, MFA_DEVICE, PolicyTarget};
use crate::report::ts;

/// Refuses what would re-arm the holder through `user`, and plans lifting killswitch's deny.
/// Returns what it refused, so the pivots' re-check does not list it twice.
pub(super) async fn assess_user<C: Identity>(
    cloud: &C,
    facts: &Facts<'_>,
    user: &str,
    a: &mut Assessment,
) -> Result<HashSet<String>, Error> {
    let (key, state) = (facts.key, &facts.state);
    if let (Some(named), Some(owner)) = (&facts.req.user_name, &state.last_used)
        && !named.eq_ignore_ascii_case(&owner.user_name)
    {
        a.refusals.push(format!(
            "--user-name {named} is not the owner of {key}: IAM says it belongs to {}",
            owner.user_name
        ));
    }
    let flagged = new_credentials(cloud, facts, user, a).await?;
    if matches!(state.key_status, Some(KeyStatus::Inactive)) && facts.req.reactivate_key {
        a.plan.push(RestoreAction::ReactivateKey {
            user_name: user.to_owned(),
            access_key_id: key.to_string(),
        });
    }
    lift_deny(facts, user, a);
    Ok(flagged)
}

/// Every Active key, console password or other credential (an MFA device too) of the user
/// created (enabled) since the incident began, by IAM's own dates: the holder's persistence until
/// shown otherwise.
async fn new_credentials<C: Identity>(
    cloud: &C,
    facts: &Facts<'_>,
    user: &str,
    a: &mut Assessment,
) -> Result<HashSet<String>, Error> {
    let began = facts.began;
    let created =
        |t: Option<DateTime<Utc>>| t.map(ts).unwrap_or_else(|| "at an unknown time".into());
    let mut flagged = HashSet::new();
    let mut refuse = |id: String, why: String| {
        flagged.insert(id);
        a.refusals.push(why);
    };
    let (keys, console, others) = tokio::join!(
        cloud.user_keys(user),
        cloud.login_profile(user),
        cloud.other_credentials(user)
    );
    // A named user that does not exist holds nothing (IAM answers NoSuchEntity).
    let gone = |e: &Error| e.is(AwsFailure::NotFound);
    for c in others? {
        if c.active && c.created.is_none_or(|t| t >= began) {
            refuse(
                credential_id(&c.id).to_owned(),
                format!(
                    "user {user} has an active {} {} {} {} (since the incident began at {}): it may be the holder's",
                    c.kind,
                    c.id,
                    dated(c.kind),
                    created(c.created),
                    ts(began)
                ),
            );
        }
    }
    let keys = match keys {
        Err(e) if gone(&e) => Vec::new(),
        other => other?,
    };
    for k in keys {
        if k.id != *facts.key
            && k.status == KeyStatus::Active
            && k.created.is_none_or(|c| c >= began)
        {
            refuse(
                k.id.to_string(),
                format!(
                    "user {user} has an Active key {} created {} (since the incident began at {}): it may be the holder's; deactivate it or check it first",
                    k.id,
                    created(k.created),
                    ts(began)
                ),
            );
        }
    }
    if let Some(at) = console?
        && at >= began
    {
        refuse(
            console_id(user),
            format!(
                "user {user} has a console password created {} (since the incident began at {}): it may be the holder's",
                ts(at),
                ts(began)
            ),
        );
    }
    Ok(flagged)
}

/// How IAM dates a credential: an MFA device by when it was enabled for the user.
pub(super) fn dated(kind: &str) -> &'static str {
    if kind == MFA_DEVICE {
        "enabled"
    } else {
        "created"
    }
}

/// What the record says denies `user`, and the boundary the lock-out replaced, when the record's
/// plan is for this user.
fn recorded_deny(recorded: Option<&Plan>, user: &str) -> (Option<Deny>, Option<String>) {
    match recorded {
        Some(Plan::User {
            user: u,
            deny,
            replaced_boundary,
            ..
        }) if u.eq_ignore_ascii_case(user) => (Some(*deny), replaced_boundary.clone()),
        Some(Plan::User { .. } | Plan::Role { .. } | Plan::Portal { .. }) | None => (None, None),
    }
}

/// The user's deny off, only what killswitch placed, after revoking the sessions it minted.
fn lift_deny(facts: &Facts<'_>, user: &str, a: &mut Assessment) {
    let state = &facts.state;
    let ours = |p: &str| {
        state
            .killswitch_policies
            .iter()
            .any(|x| x == &format!("user/{user}: {p}"))
    };
    let (recorded_deny, replaced_boundary) = recorded_deny(facts.recorded_plan(), user);
    // AWSDenyAll may have been attached or set as boundary by someone else (AWS itself, another
    // tool): lifted only when the record says killswitch put it there.
    let ours_managed = ours(policy::MANAGED_DENY_ALL_ARN) && recorded_deny == Some(Deny::Managed);
    let ours_boundary = state.permissions_boundary.as_deref() == Some(policy::MANAGED_DENY_ALL_ARN)
        && recorded_deny == Some(Deny::LockedOutBounded);
    let lifts_deny = ours(policy::USER_POLICY_NAME) || ours_managed || ours_boundary;
    if lifts_deny {
        // First, and the deny stays if it fails: lifting it would revive every session the
        // holder minted with the key.
        a.plan.push(RestoreAction::RevokeUserSessions {
            user_name: user.to_owned(),
            cutoff: policy::cutoff_for(Utc::now()),
        });
    }
    if ours(policy::USER_POLICY_NAME) {
        a.plan.push(RestoreAction::DeletePolicy {
            target: PolicyTarget::User(user.to_owned()),
            policy_name: policy::USER_POLICY_NAME.into(),
        });
    }
    if ours_managed {
        a.plan.push(RestoreAction::DetachManaged {
            user_name: user.to_owned(),
            policy_arn: policy::MANAGED_DENY_ALL_ARN.into(),
        });
    }
    if lifts_deny {
        // Last: under an org guard the tag denies the user everything, like the deny.
        a.plan.push(RestoreAction::RemoveTag {
            target: PolicyTarget::User(user.to_owned()),
            tag_key: org_tag::CONTAINED_TAG_KEY.into(),
        });
    }
    if ours_boundary {
        match replaced_boundary {
            None => a.plan.push(RestoreAction::DeleteBoundary {
                user_name: user.to_owned(),
            }),
            // It was AWSDenyAll before killswitch came: not ours to lift.
            Some(arn) if arn == policy::MANAGED_DENY_ALL_ARN => {}
            Some(arn) => a.plan.push(RestoreAction::PutBoundaryBack {
                user_name: user.to_owned(),
                policy_arn: arn,
            }),
        }
    }
}

/// A service-specific credential's ID without the service IAM names after it.
pub(super) fn credential_id(listed: &str) -> &str {
    listed.split_whitespace().next().unwrap_or(listed)
}

pub(super) fn console_id(user: &str) -> String {
    format!("console:{}", user.to_ascii_lowercase())
}
