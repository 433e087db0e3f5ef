//! The writes of a plan, all in one wave, and the status they come to.

use chrono::Utc;

use crate::incident::Incident;
use crate::playbook::guard::Reads;
use crate::playbook::{Plan, Step, deactivate_key, deny_user, org_tag, portal, revoke_role};
use crate::ports::Identity;
use crate::record::IncidentRecord;
use crate::report::{Outcome, Report, Status};
use crate::vocab::Arn;

/// What one write did: its step, outcome and detail.
type Written = (Step, (Outcome, String));

/// The writes of a plan, all in one wave. Pre-states come from the guard's reads when they were
/// read for the user the plan names. Returns the plan in force afterwards: a role cutoff that
/// already covered the incident is kept, and is what verification must then find.
pub async fn apply<I: Identity>(
    iam: &I,
    incident: &Incident,
    plan: &Plan,
    reads: Option<&Reads>,
    record: Option<&IncidentRecord>,
    dry_run: bool,
    report: &mut Report,
) -> Plan {
    let ((results, in_force), tagged) = tokio::join!(
        write_plan(iam, incident, plan, reads, record, dry_run),
        org_tag::apply(iam, plan, &incident.id, dry_run)
    );
    let at = Utc::now();
    for (step, (outcome, detail)) in results {
        report.record(step, outcome, detail, at);
    }
    org_tag::record(report, tagged);
    report.status = containment_status(report, dry_run);
    in_force
}

/// The plan's own writes, concurrently.
async fn write_plan<I: Identity>(
    iam: &I,
    incident: &Incident,
    plan: &Plan,
    reads: Option<&Reads>,
    record: Option<&IncidentRecord>,
    dry_run: bool,
) -> (Vec<Written>, Plan) {
    match plan {
        Plan::User {
            user, deactivate, ..
        } => deny_the_user(iam, incident, user, *deactivate, reads, dry_run).await,
        Plan::Role {
            role,
            session: Some(session),
            ..
        } => {
            let written = deny_the_session(iam, role, session, reads, dry_run).await;
            (vec![written], plan.clone())
        }
        Plan::Portal {
            role,
            session,
            user_id,
            policy_arn,
            ..
        } => {
            let account = Arn::parse(policy_arn).map_or("", |a| a.account);
            let wanted = portal::entries(session, user_id.as_deref());
            let written = (
                Step::DenyPortalUser,
                portal::apply(iam, account, role, policy_arn, &wanted, dry_run).await,
            );
            (vec![written], plan.clone())
        }
        Plan::Role { role, cutoff, .. } => {
            cut_the_role_off(iam, incident, role, *cutoff, reads, record, dry_run).await
        }
    }
}

/// The key deactivated (when the plan says so) beside the user's deny.
async fn deny_the_user<I: Identity>(
    iam: &I,
    incident: &Incident,
    user: &str,
    deactivate: bool,
    reads: Option<&Reads>,
    dry_run: bool,
) -> (Vec<Written>, Plan) {
    let before = reads
        .and_then(|r| r.user_before.as_ref())
        .filter(|b| b.user == user);
    let key_before = before
        .and_then(|b| b.key.as_ref())
        .and_then(|r| r.as_ref().ok())
        .cloned();
    let policy_before = before.map(|b| &b.policy);
    let (deactivated, (outcome, detail, deny, replaced_boundary)) = tokio::join!(
        async {
            if deactivate {
                Some(deactivate_key::apply(iam, user, &incident.key, key_before, dry_run).await)
            } else {
                None
            }
        },
        deny_user::apply(iam, user, policy_before, dry_run)
    );
    let in_force = Plan::User {
        user: user.to_owned(),
        deactivate,
        deny,
        replaced_boundary,
    };
    let written = deactivated
        .map(|d| (Step::DeactivateKey, d))
        .into_iter()
        .chain([(Step::DenyUser, (outcome, detail))])
        .collect();
    (written, in_force)
}

async fn deny_the_session<I: Identity>(
    iam: &I,
    role: &str,
    session: &str,
    reads: Option<&Reads>,
    dry_run: bool,
) -> Written {
    let existing = match reads.and_then(|r| r.role_before.as_ref()) {
        Some(before) => relabel(&before.sessions),
        None => revoke_role::read_sessions(iam, role).await,
    };
    (
        Step::RevokeRoleSessions,
        revoke_role::apply_session(iam, role, session, &existing, dry_run).await,
    )
}

/// The role-wide cutoff; the one kept (never moved backwards) is the plan in force.
async fn cut_the_role_off<I: Identity>(
    iam: &I,
    incident: &Incident,
    role: &str,
    cutoff: Option<chrono::DateTime<Utc>>,
    reads: Option<&Reads>,
    record: Option<&IncidentRecord>,
    dry_run: bool,
) -> (Vec<Written>, Plan) {
    let existing = match reads.and_then(|r| r.role_before.as_ref()) {
        Some(before) => relabel(&before.cutoff),
        None => revoke_role::read_policy(iam, role).await,
    };
    let ours = record.and_then(|r| r.applied_cutoff(role));
    // Taken now, at the write: a session the holder opened while this invocation was reading
    // (a cold start, a slow first wave) falls before it. A later planned cutoff is kept.
    let at_write = crate::policy::cutoff_for(Utc::now());
    let wanted = cutoff.map_or(at_write, |planned| planned.max(at_write));
    let (outcome, detail, kept) = revoke_role::apply(
        iam,
        role,
        wanted,
        &existing,
        ours,
        incident.first_seen,
        dry_run,
    )
    .await;
    let in_force = Plan::Role {
        role: role.to_owned(),
        cutoff: Some(kept),
        session: None,
    };
    (
        vec![(Step::RevokeRoleSessions, (outcome, detail))],
        in_force,
    )
}

/// A read of the guard's wave, owned (errors keep their AWS code).
fn relabel(
    read: &Result<Option<String>, crate::error::Error>,
) -> Result<Option<String>, crate::error::Error> {
    match read {
        Ok(doc) => Ok(doc.clone()),
        Err(e) => Err(crate::error::Error::Aws {
            op: "iam:GetRolePolicy",
            code: e.aws_code().map(str::to_owned),
            source: e.chain().into(),
        }),
    }
}

fn containment_status(report: &Report, dry_run: bool) -> Status {
    let containment: Vec<_> = report
        .steps
        .iter()
        .filter(|s| s.step.is_containment_write())
        .collect();
    if containment.iter().any(|s| s.outcome == Outcome::Failed) {
        Status::Failed
    } else if dry_run {
        Status::DryRun
    } else if containment.iter().any(|s| s.outcome == Outcome::NotFound) && containment.len() == 1 {
        Status::KeyNotFound
    } else if containment
        .iter()
        .all(|s| s.outcome == Outcome::AlreadyDone)
    {
        Status::AlreadyContained
    } else {
        Status::Contained
    }
}
