//! The plan for each kind of principal, as IAM tells it and the trigger names it.

use chrono::{DateTime, Utc};

use super::{Reads, refuse};
use crate::incident::{Incident, KeyKind, Principal, Trigger};
use crate::playbook::{Context, Plan, Step, locate, portal};
use crate::policy;
use crate::ports::KeyUsage;
use crate::report::{Outcome, Report, Status};

/// The plan for the incident's principal. `usage` is IAM's owner of a long-term key;
/// `session_seen` the principal ID CloudTrail saw signing for a manual request.
pub fn plan(
    incident: &Incident,
    reads: &Reads,
    usage: Option<&KeyUsage>,
    session_seen: Option<String>,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Plan> {
    let now = ctx.now;
    match (&incident.principal, incident.key.kind()) {
        (
            Principal::AssumedRole {
                role_name,
                session_name,
                role_id,
            },
            _,
        ) => {
            // The session CloudTrail saw, when the request did not name one.
            let seen = session_seen
                .as_deref()
                .and_then(|p| p.split_once(':'))
                .filter(|(id, s)| {
                    crate::trigger::is_role_id(id) && crate::trigger::is_session_name(s)
                });
            let (session, id) = match (seen, session_name) {
                (Some((id, s)), _) => (Some(s), Some(id)),
                (None, Some(s)) => (Some(s.as_str()), role_id.as_deref()),
                (None, None) => (None, role_id.as_deref()),
            };
            if portal::is_identity_center_role(role_name) {
                portal_plan(role_name, session, id, reads, ctx, report)
            } else {
                Some(role_plan(role_name, session, id, reads, ctx, report))
            }
        }
        // IAM knows no such key, and the named user holds none: deleted with its user (the
        // same outcome whatever the trigger), or deleted by the key's holder.
        (Principal::IamUser { user_name }, KeyKind::LongTerm) if is_key_unknown(reads) => {
            deleted_key_plan(incident, user_name, reads, report, now)
        }
        (Principal::IamUser { user_name }, kind) => {
            Some(user_plan(user_name, kind, usage, report, now))
        }
        (Principal::Unresolved, KeyKind::LongTerm) => owner_from_iam(usage, report, now),
        (Principal::Unresolved, KeyKind::Temporary) => {
            refuse(report, Step::ResolveOwner, "a temporary (ASIA) key cannot be traced to its role or user through IAM; send a manual request with role_name or user_name".into(), now);
            None
        }
        (Principal::Root | Principal::Other { .. }, _) => None,
    }
}

/// IAM knows no such key, and the user the trigger names holds none.
fn is_key_unknown(reads: &Reads) -> bool {
    matches!(reads.usage, Some(Ok(None)))
        && matches!(
            reads.user_before.as_ref().and_then(|b| b.key.as_ref()),
            Some(Ok(None))
        )
}

/// IAM knows no such key and the named user holds none.
fn deleted_key_plan(
    incident: &Incident,
    user_name: &str,
    reads: &Reads,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Option<Plan> {
    // A trigger's word is no proof the key was that user's: a made-up key ID in a payload
    // shaped like a finding must not put a deny on whoever it names. Anyone who may invoke the
    // function can send one, so this holds for every trigger until findings are read back at
    // their source.
    // A pivot is CloudTrail's record of the key's creation for that user, not a claim.
    let asked_by = match &incident.trigger {
        Trigger::Manual { .. } => Some("a manual request"),
        Trigger::GuardDuty { .. } | Trigger::Health { .. } => {
            Some("a payload naming a key IAM does not know")
        }
        Trigger::Pivot { .. } => None,
    };
    match reads.user_before.as_ref().and_then(|b| b.exists.as_ref()) {
        Some(Ok(false)) => {
            key_not_found(report, &format!(" and user {user_name} is gone"), now);
            None
        }
        Some(Ok(true)) if let Some(asked_by) = asked_by => {
            key_not_found(
                report,
                &format!(
                    " (user {user_name} exists, but {asked_by} is not proof the key was theirs: if it was and sessions minted with it may live, deny the user by hand)"
                ),
                now,
            );
            None
        }
        // The key is gone but its user is not: sessions minted with the key outlive it
        // (GetSessionToken, GetFederationToken: up to 36 h) and only the user's deny stops them.
        Some(Ok(true)) => {
            report.record(
                Step::ResolveOwner,
                Outcome::Done,
                format!("IAM no longer knows the key, but user {user_name} exists: denying the user, since sessions minted with the key outlive it (up to 36 h)"),
                now,
            );
            Some(Plan::User {
                user: user_name.to_owned(),
                deactivate: false,
                deny: Default::default(),
                replaced_boundary: None,
            })
        }
        Some(Err(e)) => {
            report.record(Step::ResolveOwner, Outcome::Failed, e.chain(), now);
            report.status = Status::Failed;
            report.summary = format!(
                "IAM does not know the key and whether user {user_name} still exists could not be read, so nothing was changed; Lambda will retry."
            );
            None
        }
        None => {
            report.status = Status::Failed;
            report.summary = format!(
                "IAM does not know the key and whether user {user_name} still exists was not read, so nothing was changed; Lambda will retry."
            );
            None
        }
    }
}

/// The user the trigger names, or IAM's owner of the key when they differ.
fn user_plan(
    user_name: &str,
    kind: KeyKind,
    usage: Option<&KeyUsage>,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Plan {
    // IAM knows the owner for sure; the trigger's name is only a hint.
    let user = match usage {
        Some(u) if u.user_name != user_name => {
            report.record(Step::ResolveOwner, Outcome::Done, format!("trigger named user {user_name}, IAM says the key belongs to {}; using IAM's answer", u.user_name), now);
            u.user_name.clone()
        }
        _ => user_name.to_owned(),
    };
    Plan::User {
        user,
        deactivate: kind == KeyKind::LongTerm,
        deny: Default::default(),
        replaced_boundary: None,
    }
}

/// A long-term key the trigger names no owner for: IAM's owner.
fn owner_from_iam(
    usage: Option<&KeyUsage>,
    report: &mut Report,
    now: DateTime<Utc>,
) -> Option<Plan> {
    match usage {
        Some(u) => {
            report.record(
                Step::ResolveOwner,
                Outcome::Done,
                format!("IAM says the key belongs to user {}", u.user_name),
                now,
            );
            Some(Plan::User {
                user: u.user_name.clone(),
                deactivate: true,
                deny: Default::default(),
                replaced_boundary: None,
            })
        }
        None if report.steps.iter().any(|s| s.outcome == Outcome::Failed) => {
            report.status = Status::Failed;
            report.summary =
                "Could not find out whose key this is, so nothing was changed; Lambda will retry."
                    .into();
            None
        }
        None => {
            key_not_found(report, "", now);
            None
        }
    }
}

/// IAM does not know the key: nothing to contain, nothing to retry.
fn key_not_found(report: &mut Report, also: &str, now: DateTime<Utc>) {
    report.status = Status::KeyNotFound;
    if report.principal == Principal::Unresolved.to_string() {
        report.principal = "owner unknown: IAM does not know the key".into();
    }
    report.summary = "IAM does not know this key in this account: it was deleted (perhaps with its user) or never existed here. Nothing to contain.".into();
    report.record(
        Step::ResolveOwner,
        Outcome::NotFound,
        format!("GetAccessKeyLastUsed does not know the key{also}"),
        now,
    );
}

/// The exact session when it can be named, the role-wide cutoff otherwise (or when configured).
fn role_plan(
    role: &str,
    session_name: Option<&str>,
    trigger_role_id: Option<&str>,
    reads: &Reads,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Plan {
    let now = ctx.now;
    let iam_role_id = match reads.role_before.as_ref().map(|r| &r.role_id) {
        Some(Ok(Some(id))) => Some(id.as_str()),
        _ => None,
    };
    let role_wide = |report: &mut Report, why: String| {
        report.record(
            Step::ResolveOwner,
            Outcome::Done,
            format!("revoking EVERY session of role {role}: {why}"),
            now,
        );
        Plan::Role {
            role: role.to_owned(),
            cutoff: Some(policy::cutoff_for(now)),
            session: None,
        }
    };
    if ctx.config.role_wide(role) {
        return role_wide(
            report,
            "KILLSWITCH_ROLE_WIDE_REVOCATION asks for it for this role".into(),
        );
    }
    let Some(session) = session_name else {
        return role_wide(report, "the trigger does not name the session".into());
    };
    let id = match (trigger_role_id, iam_role_id) {
        (Some(t), Some(i)) if t != i => {
            return role_wide(
                report,
                format!("the trigger's principal ID {t} is not role {role}'s ID {i} in IAM"),
            );
        }
        (_, Some(i)) => i,
        (Some(t), None) => t,
        (None, None) => {
            return role_wide(
                report,
                "the role's unique ID could not be read (iam:GetRole), so the session's aws:userid is unknown".into(),
            );
        }
    };
    Plan::Role {
        role: role.to_owned(),
        cutoff: None,
        session: Some(format!("{id}:{session}")),
    }
}

/// A portal session of an Identity Center role: the user's deny in the customer-managed policy,
/// never an edit of the role. Without the set-up, or without the user's name, on-call gets the
/// manual steps instead.
fn portal_plan(
    role: &str,
    session_name: Option<&str>,
    trigger_role_id: Option<&str>,
    reads: &Reads,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Plan> {
    let now = ctx.now;
    let account = ctx.responder.account.to_string();
    let manual = portal::manual_steps(role, session_name, &account);
    let Some(ic) = &ctx.config.identity_center else {
        refuse(
            report,
            Step::ResolveOwner,
            format!("{manual} (KILLSWITCH_IDENTITY_CENTER_ROLE_ARN is not set)"),
            now,
        );
        return None;
    };
    let Some(user) = session_name else {
        refuse(
            report,
            Step::ResolveOwner,
            format!(
                "the trigger does not name the session, which is the Identity Center user: {manual}"
            ),
            now,
        );
        return None;
    };
    let iam_role_id = match reads.role_before.as_ref().map(|r| &r.role_id) {
        Some(Ok(Some(id))) => Some(id.as_str()),
        _ => None,
    };
    let id = match (trigger_role_id, iam_role_id) {
        (Some(t), Some(i)) if t != i => {
            refuse(
                report,
                Step::ResolveOwner,
                format!(
                    "the trigger's principal ID {t} is not role {role}'s ID {i} in IAM: {manual}"
                ),
                now,
            );
            return None;
        }
        (_, Some(i)) => i,
        (Some(t), None) => t,
        (None, None) => {
            refuse(
                report,
                Step::ResolveOwner,
                format!("the role's unique ID could not be read (iam:GetRole): {manual}"),
                now,
            );
            return None;
        }
    };
    let partition = locate::partition(&ctx.responder.arn);
    Some(Plan::Portal {
        role: role.to_owned(),
        user: user.to_owned(),
        session: format!("{id}:{user}"),
        user_id: None,
        policy_arn: portal::policy_arn(partition, &account, &ic.policy_name),
    })
}
