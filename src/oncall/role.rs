//! A role's and an Identity Center user's part of the assessment: which deny is this
//! incident's to lift, and whether another open incident or a live session still needs it.

use chrono::{DateTime, TimeDelta, Utc};

use super::MAX_ROLE_SESSION_HOURS;
use super::action::RestoreAction;
use super::assess::{Assessment, Facts};
use super::status::PortalState;
use crate::error::Error;
use crate::playbook::{Plan, org_tag, portal, revoke_role};
use crate::policy;
use crate::ports::{IncidentStore, PolicyTarget};
use crate::record::Records;
use crate::report::ts;

/// What a role plan denies: the role, the session it names, whether it set a role-wide cutoff.
struct RoleDeny<'p> {
    role: &'p str,
    session: Option<&'p str>,
    cutoff: bool,
}

fn role_deny(plan: &Plan) -> Option<RoleDeny<'_>> {
    match plan {
        Plan::Role {
            role,
            session,
            cutoff,
        } => Some(RoleDeny {
            role,
            session: session.as_deref(),
            cutoff: cutoff.is_some(),
        }),
        Plan::User { .. } | Plan::Portal { .. } => None,
    }
}

/// The Identity Center user and session a portal plan denies.
fn portal_deny(plan: &Plan) -> Option<(&str, &str)> {
    match plan {
        Plan::Portal { user, session, .. } => Some((user, session)),
        Plan::User { .. } | Plan::Role { .. } => None,
    }
}

/// The role's session deny and cutoff, when they are this incident's and no other open one
/// relies on them.
pub(super) async fn assess_role<S: IncidentStore>(
    records: &Records<'_, S>,
    facts: &Facts<'_>,
    role: &str,
    a: &mut Assessment,
) -> Result<(), Error> {
    let recorded = facts.recorded_plan().and_then(role_deny);
    if let Some(r) = &recorded
        && !r.role.eq_ignore_ascii_case(role)
    {
        a.refusals.push(format!(
            "--role-name {role} is not the role this key's incident contained ({})",
            r.role
        ));
    }
    let ours = recorded.filter(|r| r.role.eq_ignore_ascii_case(role));
    let recorded_session = ours.as_ref().and_then(|r| r.session);
    let recorded_cutoff = ours.as_ref().is_some_and(|r| r.cutoff);
    if let (Some(asked), Some(recorded)) = (&facts.req.session, recorded_session)
        && asked != recorded
    {
        a.refusals.push(format!(
            "--session {asked} is not the session this key's incident denied ({recorded}): it may be another incident's"
        ));
    }
    let session = facts
        .req
        .session
        .clone()
        .or(recorded_session.map(str::to_owned));
    let mut lifts = false;
    let mut lifted_session = None;
    if let Some(session) = session
        && facts.state.role_sessions_denied.contains(&session)
    {
        lifted_session = Some(session.clone());
        lift_session(records, facts, role, session, a).await?;
        lifts = true;
    }
    if facts.state.role_sessions_revoked_before.is_some()
        && (recorded_cutoff || facts.req.session.is_none())
    {
        lift_cutoff(records, facts, role, a).await?;
        lifts = true;
    }
    // The guard's tag protects the role's denies for every open incident on it: it comes off
    // with the last of them.
    if lifts {
        let others = records
            .others_relying(&facts.account, role, facts.key, |_| true)
            .await?;
        if others.is_empty() {
            a.plan.push(RestoreAction::RemoveTag {
                target: PolicyTarget::Role(role.to_owned()),
                tag_key: org_tag::GUARDED_TAG_KEY.into(),
            });
        } else if let Some(session) = lifted_session {
            // Under the guard the tag itself denies the sessions it lists.
            a.plan.push(RestoreAction::UntagSession {
                role_name: role.to_owned(),
                session,
            });
        }
    }
    // The leaked session's own credentials live up to 12 h (a role's longest session): lifting
    // the deny before then hands them back to the holder.
    let applied_at = facts.applied_at();
    if lifts && !expired(applied_at, facts.now) {
        a.refusals.push(match applied_at {
            Some(at) => format!(
                "the leaked session's credentials may still be valid until {} (role sessions last up to {MAX_ROLE_SESSION_HOURS} h; contained at {}): lifting the deny now re-arms them",
                ts(at + TimeDelta::hours(MAX_ROLE_SESSION_HOURS)),
                ts(at)
            ),
            None => format!(
                "no incident record says when the role was contained, so the leaked session's credentials may still be valid (role sessions last up to {MAX_ROLE_SESSION_HOURS} h)"
            ),
        });
    }
    Ok(())
}

/// The leaked credentials outlived: containment is older than the longest session.
fn expired(applied_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    applied_at.is_some_and(|at| now - at >= TimeDelta::hours(MAX_ROLE_SESSION_HOURS))
}

/// This incident's session off the role's deny list.
async fn lift_session<S: IncidentStore>(
    records: &Records<'_, S>,
    facts: &Facts<'_>,
    role: &str,
    session: String,
    a: &mut Assessment,
) -> Result<(), Error> {
    // Successive keys of one instance share its session name: one deny, several incidents.
    let others = records
        .others_relying(&facts.account, role, facts.key, |p| {
            role_deny(p).is_some_and(|r| r.session == Some(session.as_str()))
        })
        .await?;
    if !others.is_empty() {
        a.refusals.push(format!(
            "session {session} on role {role} is also denied for the open incident(s) of {}: lifting it would re-arm them",
            others.join(", ")
        ));
    }
    a.plan.push(RestoreAction::RemoveSession {
        role_name: role.to_owned(),
        session,
    });
    Ok(())
}

/// The role-wide cutoff off the role.
async fn lift_cutoff<S: IncidentStore>(
    records: &Records<'_, S>,
    facts: &Facts<'_>,
    role: &str,
    a: &mut Assessment,
) -> Result<(), Error> {
    let others = records
        .others_relying(&facts.account, role, facts.key, |p| {
            role_deny(p).is_some_and(|r| r.cutoff)
        })
        .await?;
    if !others.is_empty() {
        a.refusals.push(format!(
            "the cutoff on role {role} also contains the open incident(s) of {}: lifting it would re-arm them",
            others.join(", ")
        ));
    }
    // Inline, or in killswitch's managed fallback when the role's inline quota was full: both
    // when both hold one.
    let held: Vec<&str> = facts
        .state
        .killswitch_policies
        .iter()
        .filter_map(|p| p.strip_prefix(&format!("role/{role}: ")))
        .collect();
    if held.contains(&policy::ROLE_POLICY_NAME) {
        a.plan.push(RestoreAction::DeletePolicy {
            target: PolicyTarget::Role(role.to_owned()),
            policy_name: policy::ROLE_POLICY_NAME.into(),
        });
    }
    for arn in held
        .iter()
        .filter(|p| revoke_role::is_fallback(p, policy::ROLE_POLICY_NAME, role))
    {
        a.plan.push(RestoreAction::DetachRoleDeny {
            role_name: role.to_owned(),
            policy_arn: (*arn).to_owned(),
        });
    }
    Ok(())
}

/// An Identity Center user: out of the deny policy, and the removed assignment back. The
/// portal's credentials live as long as the permission set's session duration (up to 12 h), and
/// a live portal sign-in fetches fresh ones under the same `aws:userid`.
pub(super) async fn assess_portal<S: IncidentStore>(
    records: &Records<'_, S>,
    facts: &Facts<'_>,
    p: &PortalState,
    a: &mut Assessment,
) -> Result<(), Error> {
    let Some((_, session)) = facts.recorded_plan().and_then(portal_deny) else {
        return Ok(());
    };
    // Always: a failed read-back (throttled, the role gone with its last assignment) must not
    // leave the user denied while the restore reports success. Lifting is idempotent.
    a.plan.push(RestoreAction::LiftPortalDeny {
        user: p.user.clone(),
        policy_arn: p.policy_arn.clone(),
        entries: portal::entries(session, p.user_id.as_deref()),
    });
    if let Some(removed) = &p.assignment_removed {
        a.plan.push(RestoreAction::PutAssignmentBack {
            removed: removed.clone(),
        });
    }
    let others = records
        .others_relying(
            &facts.account,
            &portal::index_name(&p.user),
            facts.key,
            |plan| portal_deny(plan).is_some_and(|(u, _)| u.eq_ignore_ascii_case(&p.user)),
        )
        .await?;
    if !others.is_empty() {
        a.refusals.push(format!(
            "Identity Center user {} is also denied for the open incident(s) of {}: lifting the deny would re-arm them",
            p.user,
            others.join(", ")
        ));
    }
    let applied_at = facts.applied_at();
    if !expired(applied_at, facts.now) {
        a.refusals.push(match applied_at {
            Some(at) => format!(
                "the leaked portal credentials may still be valid until {} (permission-set sessions last up to {MAX_ROLE_SESSION_HOURS} h; contained at {}), and a live portal sign-in fetches fresh ones under the same session: lifting the deny now re-arms them. Disable the user or end their Identity Center sessions first",
                ts(at + TimeDelta::hours(MAX_ROLE_SESSION_HOURS)),
                ts(at)
            ),
            None => "no incident record says when the user was contained, so the leaked portal credentials may still be valid".into(),
        });
    }
    Ok(())
}
