//! The contain phase: every incident of a delivery is contained, read back and announced before
//! anything slow starts. Writes go out together in the wave after the guard's reads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{Instrument, error, info, info_span};

use super::follow::FollowUp;
use super::guard::{self, Reads};
use super::locate::{self, Location};
use super::{Context, Plan, Responder, Step, deactivate_key, deny_user, dry_run, revoke_role};
use crate::incident::{AccountId, Incident, Trigger};
use crate::ports::{Accounts, Identity, IncidentStore, Notifier};
use crate::record::{Applied, Records};
use crate::report::{Notification, Outcome, Report, Status};

/// One incident after the contain phase: its report so far and what follows through.
pub struct Contained {
    pub report: Report,
    pub follow_up: Option<FollowUp>,
}

/// What the response needs from the cloud in the function's own account.
pub trait Home: Identity + Notifier + Accounts + IncidentStore {}
impl<T: Identity + Notifier + Accounts + IncidentStore> Home for T {}

/// Contains every incident of one delivery concurrently. `reads` are the guard's first wave,
/// made by the caller (together with learning our own identity, on the command line).
pub async fn contain_delivery<C: Home>(
    cloud: &C,
    incidents: Vec<(Incident, Reads)>,
    ctx: &Context<'_>,
) -> Vec<Contained> {
    futures::future::join_all(
        incidents
            .into_iter()
            .map(|(incident, reads)| contain_one(cloud, incident, reads, ctx)),
    )
    .await
}

async fn contain_one<C: Home>(cloud: &C, incident: Incident, reads: Reads, ctx: &Context<'_>) -> Contained {
    let span = info_span!("incident", incident_id = %incident.id, access_key_id = %incident.key);
    async {
        let key_account = match &reads.account {
            Some(Ok(a)) => Some(a.clone()),
            _ => None,
        };
        match locate::locate(&incident, key_account.as_ref(), ctx) {
            Location::Here => contain_in(cloud, cloud, incident, reads, ctx, None).await,
            Location::Member(account, members) => {
                let role_arn = locate::member_role_arn(&account, members, ctx);
                let session = locate::session_name(&incident);
                match cloud.enter(&role_arn, &members.external_id, &session).await {
                    Ok(entered) => {
                        info!(account = %account, role = %role_arn, "entered member account");
                        let responder = Responder::from_arn(account.clone(), &entered.arn);
                        let member_ctx = Context { responder: &responder, ..*ctx };
                        let reads = guard::read(&entered.clients, &incident, Some(&account)).await;
                        let note = format!("assumed {role_arn} (session {session}) to act in account {account}");
                        contain_in(&entered.clients, cloud, incident, reads, &member_ctx, Some((account, note))).await
                    }
                    Err(e) => {
                        let report = locate::not_entered(cloud, &incident, ctx, &account, |r| {
                            locate::enter_failed(r, &role_arn, &account, &e.chain());
                        })
                        .await;
                        Contained { report, follow_up: None }
                    }
                }
            }
            Location::Outside(account, reason) => {
                let now = ctx.now;
                let report = locate::not_entered(cloud, &incident, ctx, &account, |r| {
                    guard::reject(r, reason, now);
                })
                .await;
                Contained { report, follow_up: None }
            }
        }
    }
    .instrument(span)
    .await
}

/// The writes of a plan, all in one wave. Pre-states come from the guard's reads when they were
/// read for the user the plan names.
pub async fn apply<I: Identity>(
    iam: &I,
    incident: &Incident,
    plan: &Plan,
    reads: Option<&Reads>,
    dry_run: bool,
    report: &mut Report,
) {
    let key = &incident.key;
    let results: Vec<(Step, (Outcome, String))> = match plan {
        Plan::User { user, deactivate } => {
            let before = reads
                .and_then(|r| r.user_before.as_ref())
                .filter(|b| &b.user == user);
            let key_before = before.and_then(|b| b.key.as_ref()).and_then(|r| r.as_ref().ok()).cloned();
            let policy_before = before.map(|b| &b.policy);
            let (deactivated, denied) = tokio::join!(
                async {
                    if *deactivate {
                        Some(deactivate_key::apply(iam, user, key, key_before, dry_run).await)
                    } else {
                        None
                    }
                },
                deny_user::apply(iam, user, policy_before, dry_run)
            );
            deactivated
                .map(|d| (Step::DeactivateKey, d))
                .into_iter()
                .chain([(Step::DenyUser, denied)])
                .collect()
        }
        Plan::Role { role, cutoff } => {
            let existing = match reads.and_then(|r| r.role_policy.as_ref()) {
                Some(Ok(doc)) => Ok(doc.clone()),
                Some(Err(e)) => Err(crate::error::Error::Aws {
                    op: "iam:GetRolePolicy",
                    code: e.aws_code().map(str::to_owned),
                    source: e.chain().into(),
                }),
                None => revoke_role::read_policy(iam, role).await,
            };
            vec![(
                Step::RevokeRoleSessions,
                revoke_role::apply(iam, role, *cutoff, &existing, incident.first_seen, dry_run).await,
            )]
        }
    };
    let at = Utc::now();
    for (step, (outcome, detail)) in results {
        report.record(step, outcome, detail, at);
    }
    report.status = containment_status(report, dry_run);
}

fn containment_status(report: &Report, dry_run: bool) -> Status {
    let containment: Vec<_> = report
        .steps
        .iter()
        .filter(|s| matches!(s.step, Step::DeactivateKey | Step::DenyUser | Step::RevokeRoleSessions))
        .collect();
    if containment.iter().any(|s| s.outcome == Outcome::Failed) {
        Status::Failed
    } else if dry_run {
        Status::DryRun
    } else if containment.iter().any(|s| s.outcome == Outcome::NotFound) && containment.len() == 1 {
        Status::KeyNotFound
    } else if containment.iter().all(|s| s.outcome == Outcome::AlreadyDone) {
        Status::AlreadyContained
    } else {
        Status::Contained
    }
}

/// Health sends each global event twice (us-east-1, and a backup through us-west-2). The backup
/// still acts, in case the primary was lost, but when it finds the key already contained the
/// primary has been handled and notified.
fn is_redundant_backup(incident: &Incident, report: &Report) -> bool {
    matches!(incident.trigger, Trigger::Health { backup_event: true, .. })
        && report.status == Status::AlreadyContained
}

/// Guard decision, writes, immediate read-back, record and short notice, in `iam`'s account;
/// the record and the notice stay in the function's own (`home`).
async fn contain_in<I: Identity, H: Home>(
    iam: &I,
    home: &H,
    incident: Incident,
    reads: Reads,
    ctx: &Context<'_>,
    entered: Option<(AccountId, String)>,
) -> Contained {
    let dry_run = dry_run(&incident, ctx);
    let mut report = Report::new(&incident, dry_run, ctx.now);
    let member_account = entered.as_ref().map(|(a, _)| a.clone());
    if let Some((account, note)) = entered {
        report.account = Some(account.to_string());
        report.record(Step::EnterAccount, Outcome::Done, note, Utc::now());
    }
    let records = Records::new(home, ctx.config);
    let plan = guard::decide(&incident, &reads, ctx, &mut report);
    let account = member_account.clone().unwrap_or_else(|| ctx.responder.account.clone());
    // The record is read beside the writes: nothing on the write path waits for it.
    let (mut record, ()) = tokio::join!(records.load(&account, &incident.key), async {
        if let Some(plan) = &plan {
            apply(iam, &incident, plan, Some(&reads), dry_run, &mut report).await;
        }
    });
    let contained_at = Utc::now();
    if let Some(plan) = &plan
        && !dry_run
        && report.status != Status::KeyNotFound
    {
        let v = super::verify::immediate(iam, &incident.key, plan).await;
        if !v.holds {
            report.status = Status::Failed;
        } else if v.contested && report.status != Status::Failed {
            report.status = Status::Contested;
        }
        report.verification = Some(v);
    }
    if report.status == Status::Rejected {
        super::notify::finish(&mut report, &incident, None, None);
        super::notify::notify(home, &mut report).await;
        return Contained { report, follow_up: None };
    }
    let announce = matches!(
        report.status,
        Status::Contained | Status::AlreadyContained | Status::Contested | Status::Failed
    );
    if announce {
        // A delivery that finds the key already contained, after an earlier one announced it
        // (GuardDuty's 6-hourly re-emits, retries, the Health backup copy), is a no-op.
        let first = records.claim(record.as_ref(), "contained").await;
        let duplicate = report.status == Status::AlreadyContained
            && (!first || (record.is_none() && is_redundant_backup(&incident, &report)));
        if duplicate {
            info!(step = "notify", outcome = "suppressed", "duplicate delivery of a handled incident");
            report.summary = format!("Key {} was already contained and reported; nothing had to change.", incident.key);
            report.notification = Notification::Suppressed {
                reason: if record.is_some() {
                    "duplicate delivery: this containment was already reported (incident record)".into()
                } else {
                    "AWS Health backup copy (us-west-2) of an event already handled: the key was already contained".into()
                },
            };
            return Contained { report, follow_up: None };
        }
        if let (Some(r), Some(plan)) = (record.as_mut(), &plan)
            && matches!(report.status, Status::Contained | Status::Contested)
        {
            r.applied = Some(Applied {
                incident_id: incident.id.clone(),
                plan: plan.clone(),
                at: contained_at,
            });
        }
        let (saved, ()) = tokio::join!(
            async {
                match &record {
                    Some(r) => records.save(r).await,
                    None => Ok(()),
                }
            },
            super::notify::announce(home, &mut report)
        );
        if let Err(e) = saved {
            report.record(Step::Record, Outcome::Failed, e.chain(), Utc::now());
        }
    }
    if report.containment_failed() {
        error!(status = ?report.status, "containment failed");
    }
    let hints = guard::region_hints(&incident, &reads);
    let follow_up = FollowUp {
        version: FollowUp::VERSION,
        incident,
        plan,
        member_account,
        report: report.clone(),
        contained_at,
        not_before: not_before(contained_at, ctx.config.verify_delay),
        region_hints: hints,
    };
    Contained { report, follow_up: Some(follow_up) }
}

fn not_before(contained_at: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    contained_at + chrono::TimeDelta::from_std(delay).unwrap_or_default()
}
