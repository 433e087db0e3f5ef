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
use crate::ports::{
    Accounts, Findings, FollowUpQueue, Identity, IdentityCenterAdmin, IncidentStore, Notifier,
    Organization,
};
use crate::record::{Applied, IncidentRecord, Records};
use crate::report::{Notification, Outcome, Report, Status};

/// One incident after the contain phase: its report so far and what follows through.
pub struct Contained {
    pub report: Report,
    pub follow_up: Option<FollowUp>,
}

/// What the response needs from the cloud in the function's own account.
pub trait Home:
    Identity
    + Notifier
    + Accounts
    + IncidentStore
    + FollowUpQueue
    + Findings
    + Organization
    + IdentityCenterAdmin
{
}
impl<
    T: Identity
        + Notifier
        + Accounts
        + IncidentStore
        + FollowUpQueue
        + Findings
        + Organization
        + IdentityCenterAdmin,
> Home for T
{
}

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

async fn contain_one<C: Home>(
    cloud: &C,
    incident: Incident,
    reads: Reads,
    ctx: &Context<'_>,
) -> Contained {
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
                        let member_ctx = Context {
                            responder: &responder,
                            ..*ctx
                        };
                        let reads =
                            guard::read(&entered.clients, &incident, Some(&account), ctx.config)
                                .await;
                        let note = format!(
                            "assumed {role_arn} (session {session}) to act in account {account}"
                        );
                        contain_in(
                            &entered.clients,
                            cloud,
                            incident,
                            reads,
                            &member_ctx,
                            Some((account, note)),
                        )
                        .await
                    }
                    Err(e) => {
                        let report = locate::not_entered(cloud, &incident, ctx, &account, |r| {
                            locate::enter_failed(r, &role_arn, &account, &e.chain());
                        })
                        .await;
                        Contained {
                            report,
                            follow_up: None,
                        }
                    }
                }
            }
            Location::Outside(account, reason) => {
                let now = ctx.now;
                let report = locate::not_entered(cloud, &incident, ctx, &account, |r| {
                    guard::reject(r, reason, now);
                })
                .await;
                Contained {
                    report,
                    follow_up: None,
                }
            }
        }
    }
    .instrument(span)
    .await
}

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
    let key = &incident.key;
    let mut in_force = plan.clone();
    let results: Vec<(Step, (Outcome, String))> = match plan {
        Plan::User {
            user, deactivate, ..
        } => {
            let before = reads
                .and_then(|r| r.user_before.as_ref())
                .filter(|b| &b.user == user);
            let key_before = before
                .and_then(|b| b.key.as_ref())
                .and_then(|r| r.as_ref().ok())
                .cloned();
            let policy_before = before.map(|b| &b.policy);
            let (deactivated, (outcome, detail, deny, replaced_boundary)) = tokio::join!(
                async {
                    if *deactivate {
                        Some(deactivate_key::apply(iam, user, key, key_before, dry_run).await)
                    } else {
                        None
                    }
                },
                deny_user::apply(iam, user, policy_before, dry_run)
            );
            in_force = Plan::User {
                user: user.clone(),
                deactivate: *deactivate,
                deny,
                replaced_boundary,
            };
            deactivated
                .map(|d| (Step::DeactivateKey, d))
                .into_iter()
                .chain([(Step::DenyUser, (outcome, detail))])
                .collect()
        }
        Plan::Role {
            role,
            session: Some(session),
            ..
        } => {
            let existing = match reads.and_then(|r| r.role_before.as_ref()) {
                Some(before) => relabel(&before.sessions),
                None => revoke_role::read_sessions(iam, role).await,
            };
            vec![(
                Step::RevokeRoleSessions,
                revoke_role::apply_session(iam, role, session, &existing, dry_run).await,
            )]
        }
        Plan::Portal {
            role,
            session,
            user_id,
            policy_arn,
            ..
        } => {
            let account = policy_arn.split(':').nth(4).unwrap_or_default();
            let wanted = super::portal::entries(session, user_id.as_deref());
            vec![(
                Step::DenyPortalUser,
                super::portal::apply(iam, account, role, policy_arn, &wanted, dry_run).await,
            )]
        }
        Plan::Role { role, cutoff, .. } => {
            let existing = match reads.and_then(|r| r.role_before.as_ref()) {
                Some(before) => relabel(&before.cutoff),
                None => revoke_role::read_policy(iam, role).await,
            };
            let ours = record.and_then(|r| r.applied_cutoff(role));
            let wanted = cutoff.unwrap_or_else(|| crate::policy::cutoff_for(Utc::now()));
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
            in_force = Plan::Role {
                role: role.clone(),
                cutoff: Some(kept),
                session: None,
            };
            vec![(Step::RevokeRoleSessions, (outcome, detail))]
        }
    };
    let at = Utc::now();
    for (step, (outcome, detail)) in results {
        report.record(step, outcome, detail, at);
    }
    report.status = containment_status(report, dry_run);
    in_force
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
        .filter(|s| {
            matches!(
                s.step,
                Step::DeactivateKey
                    | Step::DenyUser
                    | Step::RevokeRoleSessions
                    | Step::DenyPortalUser
            )
        })
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

/// Whether the record read in the first wave says this plan's principal was contained in the
/// record's current generation.
fn recorded_for(record: Option<&Option<IncidentRecord>>, plan: Option<&Plan>) -> bool {
    match (record, plan) {
        (Some(Some(r)), Some(p)) => r
            .applied
            .as_ref()
            .is_some_and(|a| a.generation == r.generation && a.plan.principal() == p.principal()),
        _ => false,
    }
}

/// Health sends each global event twice (us-east-1, and a backup through us-west-2). The backup
/// still acts, in case the primary was lost, but when it finds the key already contained the
/// primary has been handled and notified.
fn is_redundant_backup(incident: &Incident, report: &Report) -> bool {
    matches!(
        incident.trigger,
        Trigger::Health {
            backup_event: true,
            ..
        }
    ) && report.status == Status::AlreadyContained
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
    report.operator = ctx.operator.map(str::to_owned);
    let member_account = entered.as_ref().map(|(a, _)| a.clone());
    if let Some((account, note)) = entered {
        report.account = Some(account.to_string());
        report.record(Step::EnterAccount, Outcome::Done, note, Utc::now());
    }
    let records = Records::new(home, ctx.config);
    let mut reads = reads;
    let preloaded = reads.record.take();
    let mut decided = guard::decide(&incident, &reads, ctx, &mut report);
    // An Identity Center user is denied by their identity store ID too, when it can be looked up.
    // Not on a manual request's word alone: it could name any user for a session nobody has
    // seen used yet, and the user-wide deny would lock that user out. Then the named session
    // only.
    let word_only = matches!(incident.trigger, Trigger::Manual { .. })
        && !report
            .steps
            .iter()
            .any(|s| s.step == Step::ResolveOwner && s.detail.starts_with("owner confirmed"));
    if let Some(Plan::Portal { user, user_id, .. }) = decided.as_mut()
        && let Some(ic) = &ctx.config.identity_center
    {
        if word_only {
            report.record(
                Step::ResolveOwner,
                Outcome::Skipped,
                format!("owner UNCONFIRMED: Identity Center user {user} is not denied as a whole on a request's word; only the named session (aws:userid) is, and no assignment is removed"),
                Utc::now(),
            );
        } else {
            *user_id = super::portal::lookup(home, ic, user, &incident, &mut report).await;
        }
    }
    // Writers of one account's deny policy take turns (incident table).
    let lease = match &decided {
        Some(Plan::Portal { policy_arn, .. }) if !dry_run => Some(
            super::portal::lease(
                records.enabled.then_some(home),
                policy_arn.split(':').nth(4).unwrap_or_default(),
            )
            .await,
        ),
        _ => None,
    };
    // Every notice names what was acted on: the key's account as STS tells it, IAM's owner.
    if let Some(Ok(owner)) = &reads.account {
        report.account = Some(owner.to_string());
    }
    if let Some(plan) = &decided {
        report.principal = plan.principal();
    }
    let account = member_account
        .clone()
        .unwrap_or_else(|| ctx.responder.account.clone());
    if let Some(Plan::User { user, .. }) = &decided
        && reads.user_before.as_ref().is_none_or(|b| &b.user != user)
        && (ctx.operator.is_some() || recorded_for(preloaded.as_ref(), decided.as_ref()))
    {
        // The owner was learnt in the guard's wave, too late to read its state there, and a
        // blind write reads as "applied" on a key already contained: a recorded incident
        // would then page CONTESTED for nothing. One more read, only where it matters: at a
        // terminal (a person waits anyway), or where this principal's containment is recorded.
        reads.user_before = Some(guard::read_user(iam, user, &incident.key).await);
    }
    let (mut record, plan) = match preloaded {
        // Read in the first wave: it also decides whether a role cutoff already covers this.
        Some(record) => {
            let plan = match &decided {
                Some(plan) => Some(
                    apply(
                        iam,
                        &incident,
                        plan,
                        Some(&reads),
                        record.as_ref(),
                        dry_run,
                        &mut report,
                    )
                    .await,
                ),
                None => None,
            };
            (record, plan)
        }
        // Otherwise read beside the writes: nothing on the write path waits for it.
        None => tokio::join!(records.load(&account, &incident.key), async {
            match &decided {
                Some(plan) => Some(
                    apply(
                        iam,
                        &incident,
                        plan,
                        Some(&reads),
                        None,
                        dry_run,
                        &mut report,
                    )
                    .await,
                ),
                None => None,
            }
        }),
    };
    if let Some(lease) = lease {
        lease.give_back().await;
    }
    let contained_at = Utc::now();
    let hints = guard::region_hints(&incident, &reads);
    // Duplicates are normal (retries, GuardDuty's 6-hourly re-emits, the Health backup copy,
    // concurrent deliveries): one notice per incident and outcome, and none at all for a
    // delivery that finds in place what an earlier one applied and recorded. The claim goes
    // out beside the read-back.
    let announce = matches!(
        report.status,
        Status::Contained | Status::AlreadyContained | Status::Contested | Status::Failed
    );
    let trigger = incident.dedupe_key();
    let recorded_earlier = record
        .as_ref()
        .is_some_and(|r| r.applied_for(&trigger).is_some());
    // Containment of this principal was applied and recorded in this generation (by this
    // trigger or another: a second finding, the Security Hub copy, a manual request), yet writes
    // were needed again: it was undone since, by the holder with another way in. That is a
    // fight, never a quiet duplicate. Only once IAM's reads can be trusted to show what was
    // written; and neither a role-wide cutoff moved forward for a finding first seen after it,
    // nor the quota fallbacks (which write again every time) are an undoing.
    let settle = chrono::TimeDelta::from_std(ctx.config.verify_delay).unwrap_or_default();
    let recorded_for_principal = match (&record, &plan) {
        (Some(r), Some(p)) => r.applied.as_ref().is_some_and(|a| {
            a.generation == r.generation
                && a.plan.principal() == p.principal()
                && a.at + settle <= ctx.now
        }),
        _ => false,
    };
    let undone_if_rewritten = matches!(
        &plan,
        Some(Plan::User {
            deny: super::deny_user::Deny::Inline,
            ..
        }) | Some(Plan::Role {
            session: Some(_),
            ..
        }) | Some(Plan::Portal { .. })
    );
    if report.status == Status::Contained
        && recorded_for_principal
        && undone_if_rewritten
        && !dry_run
    {
        report.status = Status::Contested;
        report.record(
            Step::Verify,
            Outcome::Done,
            "the containment recorded for this principal was found UNDONE and has been re-applied",
            Utc::now(),
        );
    }
    let mut suppressed = if !announce {
        None
    } else if report.status == Status::AlreadyContained && recorded_earlier {
        Some(
            "duplicate delivery: this containment was already applied and reported (incident record)",
        )
    } else if record.is_none() && is_redundant_backup(&incident, &report) {
        Some(
            "AWS Health backup copy (us-west-2) of an event already handled: the key was already contained",
        )
    } else {
        None
    };
    let claim = format!("announce:{trigger}:{:?}", report.status);
    let (verification, claimed) = tokio::join!(
        async {
            match &plan {
                Some(plan) if !dry_run && report.status != Status::KeyNotFound => {
                    Some(super::verify::immediate(iam, &incident.key, plan).await)
                }
                _ => None,
            }
        },
        async {
            // A key IAM does not know is reported once per trigger too: GuardDuty re-emits the
            // finding every 6 hours.
            // A command-line KEY NOT FOUND pages nobody, so it claims nothing either: a later
            // delivery of the same trigger (the deployed function's) must still page.
            let pages_not_found =
                report.status == Status::KeyNotFound && ctx.config.page_key_not_found;
            if (announce || pages_not_found) && suppressed.is_none() {
                records.claim(record.as_ref(), &claim).await
            } else {
                true
            }
        }
    );
    if let Some(v) = verification {
        if !v.holds {
            report.status = Status::Failed;
        } else if v.contested && report.status != Status::Failed {
            report.status = Status::Contested;
        }
        report.verification = Some(v);
    }
    if matches!(report.status, Status::Failed | Status::Contested) {
        // The read-back found containment undone: never silent, whatever an earlier delivery did.
        suppressed = None;
    } else if !claimed && suppressed.is_none() {
        suppressed = Some("duplicate delivery of this incident: another delivery announced it");
    }
    if report.status == Status::Rejected {
        super::notify::finish(&mut report, &incident, None, None);
        super::notify::notify(home, &mut report).await;
        return Contained {
            report,
            follow_up: None,
        };
    }
    // A re-emitted finding whose count grew: the key's holder is still trying. Worth a short
    // notice (once per count), not a second full report.
    if suppressed.is_some()
        && report.status == Status::AlreadyContained
        && let Some(r) = record.as_ref()
        && let Some(was) = r.applied_for(&trigger).and_then(|a| a.count)
        && let Some(now) = finding_count(&incident).filter(|n| *n > was)
        && records
            .claim(record.as_ref(), &format!("trying:{trigger}:{now}"))
            .await
    {
        super::notify::finish(
            &mut report,
            &incident,
            plan.as_ref(),
            member_account.as_ref(),
        );
        super::notify::still_trying(home, &mut report, was, now).await;
        if !matches!(report.notification, Notification::Sent { .. }) {
            // Not told: the next delivery with this count tries again.
            records
                .release(record.as_ref(), &format!("trying:{trigger}:{now}"))
                .await;
            return Contained {
                report,
                follow_up: None,
            };
        }
        // Read again: a follow-through or sweep may have written the record since.
        if let Some(mut r) = records.load(&account, &incident.key).await
            && let Some(a) = r.applied.as_mut().filter(|a| a.trigger == trigger)
        {
            a.count = Some(a.count.unwrap_or(0).max(now));
            if let Err(e) = records.save(&r).await {
                report.record(Step::Record, Outcome::Failed, e.chain(), Utc::now());
            }
        }
        return Contained {
            report,
            follow_up: None,
        };
    }
    if let Some(reason) = suppressed {
        info!(
            step = "notify",
            outcome = "suppressed",
            reason,
            "duplicate delivery"
        );
        super::notify::finish(
            &mut report,
            &incident,
            plan.as_ref(),
            member_account.as_ref(),
        );
        report.notification = Notification::Suppressed {
            reason: reason.into(),
        };
        return Contained {
            report,
            follow_up: None,
        };
    }
    // An incident that found containment already in place (another key's cutoff on the same
    // role, say) relies on it all the same: recorded, so a restore for the other key knows.
    if let (Some(r), Some(plan)) = (record.as_mut(), &plan)
        && (matches!(report.status, Status::Contained | Status::Contested)
            || (report.status == Status::AlreadyContained && !recorded_earlier))
    {
        r.applied = Some(Applied {
            incident_id: incident.id.clone(),
            trigger: trigger.clone(),
            generation: r.generation,
            plan: plan.clone(),
            at: contained_at,
            first_seen: incident.first_seen,
            count: finding_count(&incident),
            finding: incident.finding.clone(),
        });
    }
    if report.containment_failed() {
        error!(status = ?report.status, "containment failed");
    }
    let mut follow_up = FollowUp {
        version: FollowUp::VERSION,
        incident,
        plan,
        member_account,
        report: report.clone(),
        contained_at,
        not_before: not_before(contained_at, ctx.config.verify_delay),
        region_hints: hints,
    };
    // The follow-up is carried out only if the record lists its digest, so the record must be
    // writable for a hand-off; without a table there is nothing to forge against.
    let body = super::handoff::encode(&follow_up);
    let queue = ctx.hand_off && (record.is_some() || !records.enabled);
    if queue && let Some(r) = record.as_mut() {
        r.note_hand_off(&body);
    }
    let claim_taken = announce && records.enabled && record.is_some();
    // Every key contained on a role is indexed there: a restore for one key must not lift a
    // cutoff or a session deny another open incident relies on.
    let role_cutoff = match (&follow_up.plan, &record) {
        (Some(Plan::Role { role, .. }), Some(r)) if r.applied.is_some() => Some(role.clone()),
        // An Identity Center user's entries are shared by every key of theirs.
        (Some(Plan::Portal { user, .. }), Some(r)) if r.applied.is_some() => {
            Some(super::portal::index_name(user))
        }
        _ => None,
    };
    // The last wave: record, short notice and hand-off together.
    let (saved, (), handed) = tokio::join!(
        async {
            match &record {
                Some(r) => {
                    let (saved, indexed) = tokio::join!(records.save(r), async {
                        match &role_cutoff {
                            Some(role) => {
                                records
                                    .note_role_incident(&account, role, &follow_up.incident.key)
                                    .await
                            }
                            None => Ok(()),
                        }
                    });
                    saved.and(indexed)
                }
                None => Ok(()),
            }
        },
        async {
            if announce {
                super::notify::announce(home, &mut report).await;
            }
        },
        async {
            if queue {
                Some(
                    home.hand_off(
                        &body,
                        ctx.config.verify_delay.min(super::handoff::MAX_DELAY),
                    )
                    .await,
                )
            } else {
                None
            }
        }
    );
    if let Err(e) = saved {
        report.record(Step::Record, Outcome::Failed, e.chain(), Utc::now());
    }
    if claim_taken
        && matches!(
            report.notification,
            Notification::Failed { .. } | Notification::NotPublished { .. }
        )
    {
        // Lambda retries the failed notice, and a notice only printed (--no-notify) was not
        // sent: neither may be found claimed by the next delivery.
        records.release(record.as_ref(), &claim).await;
    }
    follow_up.report.notification = report.notification.clone();
    match handed {
        Some(Ok(())) => {
            info!(step = "hand_off", outcome = "done", "follow-through queued");
            report.follow_through = Some(format!(
                "queued: re-check after {}s, CloudTrail and the full report follow",
                ctx.config.verify_delay.as_secs()
            ));
            Contained {
                report,
                follow_up: None,
            }
        }
        Some(Err(e)) => {
            error!(step = "hand_off", error = %e.chain(), "could not queue the follow-through; running it here");
            report.follow_through = Some(format!("inline: the hand-off failed ({})", e.chain()));
            follow_up.report.follow_through = report.follow_through.clone();
            Contained {
                report,
                follow_up: Some(follow_up),
            }
        }
        None => {
            if ctx.hand_off {
                report.follow_through = Some(
                    "inline: the incident record could not be read, so nothing was queued".into(),
                );
                follow_up.report.follow_through = report.follow_through.clone();
            }
            Contained {
                report,
                follow_up: Some(follow_up),
            }
        }
    }
}

/// How many times GuardDuty has seen the activity (`service.count`), for re-emits.
fn finding_count(incident: &Incident) -> Option<u64> {
    match incident.trigger {
        Trigger::GuardDuty { count, .. } => count,
        _ => None,
    }
}

fn not_before(contained_at: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    contained_at + chrono::TimeDelta::from_std(delay).unwrap_or_default()
}
