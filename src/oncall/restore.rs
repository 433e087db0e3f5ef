//! `restore`'s second half: recorded, announced, carried out step by step, told.

use chrono::Utc;
use serde::Serialize;

use super::action::RestoreAction;
use super::assess::Assessment;
use super::notice::{self, Who, done_next_steps, publish, refused_next_steps, stays_inactive};
use crate::config::Config;
use crate::error::{AwsFailure, Error};
use crate::incident::AccessKeyId;
use crate::playbook::deny_user::Deny;
use crate::playbook::portal::{self, Entry, Removed};
use crate::playbook::quarantine::{self, Quarantined};
use crate::playbook::{deactivate_key, deny_user, revoke_role};
use crate::policy;
use crate::ports::{
    Findings, Identity, IdentityCenterAdmin, IncidentStore, Notifier, Operator, Organization,
    PolicyTarget,
};
use crate::record::{Records, Restore};
use crate::vocab::Arn;

#[derive(Debug, Serialize)]
pub struct Restored {
    pub access_key_id: String,
    pub operator_arn: Option<String>,
    pub recorded: bool,
    /// Why the restore is not in the incident record, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_recorded: Option<String>,
    /// What the restore set out to do; none of it was carried out when it was refused.
    pub plan: Vec<String>,
    pub done: Vec<String>,
    pub failed: Vec<String>,
    /// Why nothing was changed (the assessment's refusals, without `--force`).
    pub refused: Vec<String>,
    /// The assessment's refusals `--force` went past.
    pub forced_past: Vec<String>,
    /// What the restore could not check and did not wait for.
    pub unchecked: Vec<String>,
    /// The notice before acting went out.
    pub announced: bool,
    /// The notice after acting (or the refusal's) went out.
    pub notified: bool,
    /// What the operator does now.
    pub next_steps: Vec<String>,
}

/// Records the restore in the incident store (so the follow-through does not take it for
/// tampering) with the operator's own identity, tells the on-call channel before acting, applies
/// the plan and tells it again what was done. `force`: go ahead despite the assessment's
/// refusals, or when the restore cannot be recorded.
pub async fn restore<
    C: Operator + Notifier + Identity + IncidentStore + Findings + Organization + IdentityCenterAdmin,
>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    assessment: &Assessment,
    requested_by: &str,
    reason: &str,
    force: bool,
) -> Restored {
    let who = Who {
        key,
        requested_by,
        reason,
        operator: cloud.caller().await.ok(),
    };
    let plan = &assessment.plan;
    let mut out = Restored::new(&who, assessment, force);
    if !assessment.refusals.is_empty() && !force {
        refuse(cloud, &who, assessment, &mut out).await;
        return out;
    }
    let records = Records::new(cloud, config);
    if !record(&records, &who, plan, force, &mut out).await {
        return out;
    }
    out.announced = publish(
        cloud,
        who.thread(),
        &format!("[killswitch] RESTORING: {key} by {requested_by}"),
        &notice::before(&who, assessment, force),
    )
    .await;
    carry_out(cloud, config, key, plan, force, &mut out).await;
    note_finding(cloud, config, &who, assessment, &mut out).await;
    let subject = format!(
        "[killswitch] RESTORED{}: {key} by {requested_by}",
        if out.failed.is_empty() {
            ""
        } else {
            " (PARTLY)"
        }
    );
    out.notified = publish(
        cloud,
        who.thread(),
        &subject,
        &notice::after(&who, plan, &out),
    )
    .await;
    out.next_steps = done_next_steps(&out, key, records.enabled, stays_inactive(plan));
    out
}

impl Restored {
    /// Nothing done yet: the plan, and what `--force` goes past.
    fn new(who: &Who<'_>, assessment: &Assessment, force: bool) -> Self {
        Restored {
            access_key_id: who.key.to_string(),
            operator_arn: who.operator_arn().map(str::to_owned),
            recorded: false,
            not_recorded: None,
            plan: assessment.plan.iter().map(ToString::to_string).collect(),
            done: Vec::new(),
            failed: Vec::new(),
            refused: Vec::new(),
            forced_past: if force {
                assessment.refusals.clone()
            } else {
                Vec::new()
            },
            unchecked: assessment.unchecked.clone(),
            announced: false,
            notified: false,
            next_steps: Vec::new(),
        }
    }
}

/// Nothing changed: the refusals, told to on-call (someone may be re-arming the holder).
async fn refuse<N: Notifier>(
    cloud: &N,
    who: &Who<'_>,
    assessment: &Assessment,
    out: &mut Restored,
) {
    out.refused = assessment.refusals.clone();
    out.not_recorded = Some("refused: nothing was changed, so there is nothing to record".into());
    out.next_steps = refused_next_steps();
    out.notified = publish(
        cloud,
        who.thread(),
        &format!(
            "[killswitch] RESTORE REFUSED: {} by {}",
            who.key, who.requested_by
        ),
        &notice::refused(who, assessment),
    )
    .await;
    if !out.notified {
        out.next_steps
            .push("Tell on-call yourself: the RESTORE REFUSED notice could not be sent.".into());
    }
}

/// The restore in the incident record, under the operator's identity. `false`: it could not be
/// recorded and nothing may be restored (without `--force`).
async fn record<S: IncidentStore>(
    records: &Records<'_, S>,
    who: &Who<'_>,
    plan: &[RestoreAction],
    force: bool,
    out: &mut Restored,
) -> bool {
    let recording = match &who.operator {
        Some((account, arn)) => {
            let restore = Restore {
                by: who.requested_by.to_owned(),
                operator_arn: Some(arn.clone()),
                reason: who.reason.to_owned(),
                at: Utc::now(),
                actions: plan.iter().map(ToString::to_string).collect(),
            };
            records.record_restore(account, who.key, restore).await
        }
        None => Err(Error::BadEvent(
            "sts:GetCallerIdentity failed: the restore cannot name who made it".into(),
        )),
    };
    out.recorded = recording.is_ok();
    out.not_recorded = match &recording {
        Ok(()) => None,
        Err(_) if !records.enabled => {
            Some("no incident table (KILLSWITCH_INCIDENT_TABLE is not set)".into())
        }
        Err(e) => Some(format!(
            "the incident table could not be written: {}",
            e.chain()
        )),
    };
    if recording.is_ok() || !records.enabled || force {
        return true;
    }
    // Unrecorded, a follow-through still in flight would take the restore for tampering
    // and contain the key again; and the history would not say who lifted it.
    // The table's error is in `not_recorded`, said once.
    out.failed
        .push("nothing restored: the restore could not be recorded in the incident table".into());
    out.next_steps = vec![
        "Run restore again as the incident-response role (the stack's IncidentResponseRoleArn output), which may write KILLSWITCH_INCIDENT_TABLE.".into(),
        "Or add --force to restore unrecorded: a follow-through still in flight then takes the restore for tampering and contains the key again, and the record will not say who lifted it.".into(),
    ];
    false
}

/// The user whose deny the action lifts, if it lifts one.
fn user_deny_of(action: &RestoreAction) -> Option<&str> {
    match action {
        RestoreAction::DeletePolicy {
            target: PolicyTarget::User(u),
            ..
        }
        | RestoreAction::DetachManaged { user_name: u, .. }
        | RestoreAction::DeleteBoundary { user_name: u }
        | RestoreAction::PutBoundaryBack { user_name: u, .. }
        | RestoreAction::RemoveTag {
            target: PolicyTarget::User(u),
            ..
        } => Some(u),
        RestoreAction::DeletePolicy {
            target: PolicyTarget::Role(_),
            ..
        }
        | RestoreAction::ReactivateKey { .. }
        | RestoreAction::RemoveSession { .. }
        | RestoreAction::DetachRoleDeny { .. }
        | RestoreAction::RevokeUserSessions { .. }
        | RestoreAction::LiftQuarantine { .. }
        | RestoreAction::LiftPortalDeny { .. }
        | RestoreAction::PutAssignmentBack { .. }
        | RestoreAction::RemoveTag {
            target: PolicyTarget::Role(_),
            ..
        }
        | RestoreAction::UntagSession { .. } => None,
    }
}

/// Each action of the plan in order, into `done` or `failed`. A user's deny is lifted only after
/// its minted sessions are revoked.
async fn carry_out<C: Operator + Identity + IncidentStore + Organization + IdentityCenterAdmin>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    plan: &[RestoreAction],
    force: bool,
    out: &mut Restored,
) {
    let mut revoke_failed_for: Option<&str> = None;
    for action in plan {
        if let (Some(u), Some(failed)) = (user_deny_of(action), revoke_failed_for)
            && u == failed
        {
            if !force {
                out.failed.push(format!(
                    "{action}: skipped, the user's minted sessions could not be revoked first (--force lifts the deny anyway: sessions the holder minted then work again)"
                ));
                continue;
            }
            out.failed.push(format!(
                "{action}: FORCED although the user's minted sessions could not be revoked first: sessions the holder minted work again"
            ));
        }
        let result = apply(cloud, config, key, action).await;
        if let (RestoreAction::RevokeUserSessions { user_name, .. }, Err(_)) = (action, &result) {
            revoke_failed_for = Some(user_name);
        }
        match result {
            Ok(()) => out.done.push(action.to_string()),
            Err(e) if e.is(AwsFailure::LimitExceeded) => out.failed.push(format!(
                "{action}: the user's inline-policy quota is full (likely filled by the key's holder): remove the policies that filled it, then run restore again"
            )),
            Err(e) => out.failed.push(format!("{action}: {}", e.chain())),
        }
    }
}

/// One action of the plan.
async fn apply<C: Operator + Identity + IncidentStore + Organization + IdentityCenterAdmin>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    action: &RestoreAction,
) -> Result<(), Error> {
    match action {
        RestoreAction::ReactivateKey { user_name, .. } => {
            deactivate_key::undo(cloud, user_name, key).await
        }
        RestoreAction::DeletePolicy {
            target: PolicyTarget::User(user),
            ..
        } => deny_user::undo(cloud, user, Deny::Inline).await,
        RestoreAction::DetachManaged { user_name, .. } => {
            deny_user::undo(cloud, user_name, Deny::Managed).await
        }
        RestoreAction::DeleteBoundary { user_name } => {
            deny_user::undo(cloud, user_name, Deny::LockedOutBounded).await
        }
        RestoreAction::PutBoundaryBack {
            user_name,
            policy_arn,
        } => cloud.put_boundary(user_name, policy_arn).await,
        RestoreAction::DeletePolicy {
            target: PolicyTarget::Role(role),
            ..
        } => revoke_role::undo(cloud, role).await,
        RestoreAction::RemoveSession { role_name, session } => {
            revoke_role::undo_session(cloud, role_name, session)
                .await
                .map(|_| ())
        }
        RestoreAction::DetachRoleDeny {
            role_name,
            policy_arn,
        } => revoke_role::undo_managed(cloud, role_name, policy_arn).await,
        RestoreAction::LiftQuarantine { quarantined } => {
            lift_quarantine(cloud, config, quarantined).await
        }
        RestoreAction::LiftPortalDeny {
            policy_arn,
            entries,
            ..
        } => lift_portal_deny(cloud, config, policy_arn, entries).await,
        RestoreAction::RemoveTag { target, tag_key } => cloud.untag(target, tag_key).await,
        RestoreAction::UntagSession { role_name, session } => {
            crate::playbook::org_tag::drop_session(cloud, role_name, session).await
        }
        RestoreAction::PutAssignmentBack { removed } => {
            put_assignment_back(cloud, config, removed).await
        }
        RestoreAction::RevokeUserSessions { user_name, cutoff } => {
            // The cutoff is when the deny goes, not when the plan was shown.
            let cutoff = (*cutoff).max(policy::cutoff_for(Utc::now()));
            cloud
                .put_policy(
                    &PolicyTarget::User(user_name.clone()),
                    policy::ROLE_POLICY_NAME,
                    &policy::revoke_older_sessions(cutoff),
                )
                .await
        }
    }
}

async fn lift_quarantine<C: Organization + IncidentStore>(
    cloud: &C,
    config: &Config,
    q: &Quarantined,
) -> Result<(), Error> {
    let Some(c) = &config.quarantine else {
        return Err(Error::BadEvent(format!(
            "NOT lifted: set KILLSWITCH_QUARANTINE_ROLE_ARN and KILLSWITCH_QUARANTINE_EXTERNAL_ID and run restore again, or an organization admin takes {} out of SCP {} ({}) by hand",
            q.entry, q.policy_name, q.policy_id
        )));
    };
    let store = config.incident_table.is_some().then_some(cloud);
    let done = quarantine::lift(cloud, store, c, q).await?;
    tracing::info!(%done, "org quarantine lifted");
    Ok(())
}

/// The user out of the deny policy, under the account's Identity Center lease (which the
/// containments writing that policy take too).
async fn lift_portal_deny<C: Identity + IncidentStore>(
    cloud: &C,
    config: &Config,
    policy_arn: &str,
    entries: &[Entry],
) -> Result<(), Error> {
    let account = Arn::parse(policy_arn).map_or("", |arn| arn.account);
    let lease = portal::lease(config.incident_table.is_some().then_some(cloud), account).await;
    let lifted = portal::lift(cloud, policy_arn, entries).await;
    lease.give_back().await;
    let done = lifted?;
    tracing::info!(%done, "Identity Center user no longer denied");
    Ok(())
}

async fn put_assignment_back<C: IdentityCenterAdmin>(
    cloud: &C,
    config: &Config,
    removed: &Removed,
) -> Result<(), Error> {
    let Some(c) = &config.identity_center else {
        return Err(Error::BadEvent(format!(
            "NOT put back: set KILLSWITCH_IDENTITY_CENTER_ROLE_ARN, KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID and KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN and run restore again, or by hand: {}",
            portal::manual_put_back(removed)
        )));
    };
    let done = portal::put_back(cloud, c, removed).await?;
    tracing::info!(%done, "Identity Center assignment put back");
    Ok(())
}

/// The finding stays open (NOTIFIED) for a human to resolve; it only learns why.
/// NOTIFIED with the note: a finding still NEW (our first update failed or found nothing)
/// would come back as a NEW import and, with the Security Hub trigger on, contain the key
/// again right after the restore.
async fn note_finding<F: Findings>(
    cloud: &F,
    config: &Config,
    who: &Who<'_>,
    assessment: &Assessment,
    out: &mut Restored,
) {
    let Some(finding) = &assessment.finding else {
        return;
    };
    if out.done.is_empty() || !config.security_hub_updates {
        return;
    }
    let note =
        crate::playbook::finding::restore_note(who.key.as_str(), who.requested_by, who.reason);
    match cloud.update_finding(finding, true, &note).await {
        Ok(true) => out.done.push(format!(
            "note on the Security Hub finding in {}",
            finding.region
        )),
        // Security Hub is not enabled there: nothing to tell, nothing failed.
        Ok(false) => {}
        Err(e) => out
            .failed
            .push(format!("note on the Security Hub finding: {}", e.chain())),
    }
}
