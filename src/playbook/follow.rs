//! The follow-through phase: the re-check after IAM's propagation window, the CloudTrail
//! investigation, the attacker's pivots and the full notice. Runs from the durable queue (a
//! message per incident, delayed by the verification delay) or inline on the command line.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info, info_span};

use super::contain::Home;
use super::verify::{self, Later};
use super::{Context, Plan, Responder, Step, guard, locate, pivots, sweep};
use crate::error::Error;
use crate::incident::{AccountId, Incident};
use crate::investigation::{self, Window};
use crate::pacing::Budget;
use crate::ports::{ActivityLog, Identity};
use crate::record::Records;
use crate::report::{Investigation, Notification, Outcome, Report, Status, Verification};

/// What the contain phase hands to the follow-through (the queue message's body).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FollowUp {
    pub version: u32,
    pub incident: Incident,
    pub plan: Option<Plan>,
    /// The member account the key lives in, entered again to verify and search there.
    pub member_account: Option<AccountId>,
    /// The contain phase's report, continued here.
    pub report: Report,
    pub contained_at: DateTime<Utc>,
    /// The delayed read-back is not made before this (IAM's propagation window).
    pub not_before: DateTime<Utc>,
    pub region_hints: Vec<String>,
}

impl FollowUp {
    pub const VERSION: u32 = 1;
}

/// Where a queue message (a follow-up or a sweep) came from.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    /// This process itself (the command line, or a failed hand-off).
    Inline,
    /// The follow-up queue, with the message body as received: carried out only if the
    /// incident record lists its digest (the function queued it itself).
    Queue(&'a str),
}

/// Runs the follow-through and returns the full report (also when containment fails). An error
/// means the follow-up was not carried out at all (not ours, or not verifiable yet).
pub async fn follow_through<C: Home + ActivityLog>(
    cloud: &C,
    f: FollowUp,
    ctx: &Context<'_>,
    origin: Origin<'_>,
) -> Result<Report, Error>
where
    C::Member: ActivityLog,
{
    let span =
        info_span!("follow_through", incident_id = %f.incident.id, access_key_id = %f.incident.key);
    async {
        if let Origin::Queue(body) = origin {
            let account = f
                .member_account
                .clone()
                .unwrap_or_else(|| ctx.responder.account.clone());
            if !Records::new(cloud, ctx.config)
                .handed_off(&account, &f.incident.key, body)
                .await
            {
                return Err(Error::BadEvent(
                    "follow-up not handed off by this function (no matching digest in the incident record): nothing done".into(),
                ));
            }
        }
        let Some(account) = f.member_account.clone() else {
            return Ok(follow_in(cloud, cloud, f, ctx).await);
        };
        let Some(members) = ctx.config.members.as_ref().filter(|m| m.allows(&account)) else {
            return Err(Error::BadEvent(format!(
                "follow-up for account {account}, which KILLSWITCH_MEMBER_* does not allow: nothing done"
            )));
        };
        let role_arn = locate::member_role_arn(&account, members, ctx);
        let session = locate::session_name(&f.incident);
        Ok(match cloud.enter(&role_arn, &members.external_id, &session).await {
            Ok(entered) => {
                let responder = Responder::from_arn(account.clone(), &entered.arn);
                let member_ctx = Context { responder: &responder, ..*ctx };
                follow_in(&entered.clients, cloud, f, &member_ctx).await
            }
            Err(e) => {
                let mut report = f.report;
                locate::enter_failed(&mut report, &role_arn, &account, &e.chain());
                report.summary = format!("Could not assume {role_arn} again to verify the containment in account {account}; the follow-through will be retried.");
                super::notify::notify(cloud, &mut report).await;
                report
            }
        })
    }
    .instrument(span)
    .await
}

/// Whether the principal acted on is known from IAM or CloudTrail, not only from the request:
/// the org quarantine cannot be undone from inside the account, so a forged request must not
/// get one. A long-term key's owner is IAM's answer; an exact session deny is narrow enough.
fn owner_established(incident: &Incident, plan: Option<&Plan>, report: &Report) -> bool {
    incident.key.kind() == crate::incident::KeyKind::LongTerm
        // AWS's own finding names the portal session; a request's word does not.
        || (matches!(plan, Some(Plan::Portal { .. }))
            && !matches!(incident.trigger, crate::incident::Trigger::Manual { .. }))
        || matches!(
            plan,
            Some(Plan::Role {
                session: Some(_),
                ..
            })
        )
        || report
            .steps
            .iter()
            .any(|s| s.step == Step::ResolveOwner && s.detail.starts_with("owner confirmed"))
}

async fn follow_in<I, H>(iam: &I, home: &H, f: FollowUp, ctx: &Context<'_>) -> Report
where
    I: Identity + ActivityLog,
    H: Home,
{
    let FollowUp {
        incident,
        plan,
        member_account,
        mut report,
        contained_at,
        not_before,
        region_hints,
        ..
    } = f;
    let records = Records::new(home, ctx.config);
    let account = member_account
        .clone()
        .unwrap_or_else(|| ctx.responder.account.clone());
    // A plan that the guards would refuse today (the protected list grew) is not re-applied.
    let plan = plan.filter(|p| guard::protected_reason(p, ctx).is_none());
    let should_verify = plan.is_some() && !report.dry_run && report.status != Status::KeyNotFound;
    let should_investigate = report.status != Status::Rejected;
    // "After containment" only means something once something was contained (or tried).
    let contained_since =
        (report.status.is_contained() || report.status == Status::Failed).then_some(contained_at);
    let delay_secs = ctx.config.verify_delay.as_secs();
    let mut verification = report.verification.take().unwrap_or_default();
    let quarantine_account = account.to_string();
    let owner_established = owner_established(&incident, plan.as_ref(), &report);
    let ((later, (quarantined, removed)), activity) = tokio::join!(
        async {
            let Some(plan) = plan.as_ref().filter(|_| should_verify) else {
                return (None, (None, None));
            };
            if let Ok(wait) = (not_before - Utc::now()).to_std() {
                // Never past the invocation's own budget: the re-check and the notice must fit.
                let left = ctx
                    .investigation_deadline
                    .saturating_duration_since(tokio::time::Instant::now());
                crate::progress::say(format!(
                    "waiting {} s for IAM's propagation window before reading containment back",
                    wait.min(left).as_secs()
                ));
                tokio::time::sleep(wait.min(left)).await;
            }
            let phase = format!("after {delay_secs}s propagation delay");
            let later = verify::later(
                iam,
                &incident.key,
                plan,
                &phase,
                &mut verification,
                |undone: verify::Undone| {
                    let (records, account, key) = (&records, &account, &incident.key);
                    async move {
                        let r = records.load(account, key).await?;
                        r.restored_since(contained_at)
                            .filter(|x| undone.explained_by(&x.actions))
                            .map(|x| (x.by.clone(), x.reason.clone()))
                    }
                },
            )
            .await;
            // The org-level layer, once the read-back is in: never for a containment an
            // operator has just lifted, and never past the invocation's budget.
            let quarantined = match (&ctx.config.quarantine, &later) {
                (None, _) | (_, Later::Restored { .. }) => None,
                (Some(_), _) if !owner_established => {
                    report.record(
                        Step::Quarantine,
                        Outcome::Skipped,
                        format!("no org quarantine on the request's word alone: the owner of {} is not established (IAM or CloudTrail); the IAM containment stands", incident.key),
                        Utc::now(),
                    );
                    None
                }
                (Some(q), _) => {
                    let left = ctx
                        .investigation_deadline
                        .saturating_duration_since(tokio::time::Instant::now());
                    let store = records.enabled.then_some(home);
                    match tokio::time::timeout(
                        left,
                        super::quarantine::apply(
                            home,
                            store,
                            q,
                            &quarantine_account,
                            plan,
                            &locate::session_name(&incident),
                            &mut report,
                        ),
                    )
                    .await
                    {
                        Ok(placed) => placed,
                        Err(_) => {
                            report.record(
                                Step::Quarantine,
                                Outcome::Failed,
                                "org quarantine NOT confirmed: Organizations did not answer within the invocation's budget (the IAM containment stands)",
                                Utc::now(),
                            );
                            None
                        }
                    }
                }
            };
            if let Plan::Portal {
                policy_arn, user, ..
            } = plan
                && matches!(later, Later::Holds | Later::Reapplied { holds: true })
            {
                super::portal::coverage(iam, policy_arn, user, &mut report).await;
            }
            let removed = match (&ctx.config.identity_center, plan, &later) {
                (
                    Some(ic),
                    Plan::Portal {
                        role,
                        user,
                        user_id: Some(user_id),
                        ..
                    },
                    Later::Holds | Later::Reapplied { holds: true },
                ) if ic.remove_assignments && owner_established => {
                    super::portal::remove_assignment(
                        home,
                        ic,
                        &quarantine_account,
                        role,
                        user_id,
                        user,
                        &locate::session_name(&incident),
                        &mut report,
                    )
                    .await
                }
                (Some(ic), Plan::Portal { user, .. }, _) if ic.remove_assignments => {
                    report.record(
                        Step::RemoveAssignment,
                        Outcome::Skipped,
                        format!("{user}'s account assignment was not removed: the user's identity store ID is unknown, or the deny did not hold"),
                        Utc::now(),
                    );
                    None
                }
                _ => None,
            };
            (Some(later), (quarantined, removed))
        },
        async {
            if should_investigate {
                let (regions, source) =
                    investigation::regions(iam, ctx.config, &region_hints).await;
                let lag = chrono::TimeDelta::from_std(ctx.config.cloudtrail_lag)
                    .unwrap_or(chrono::TimeDelta::minutes(15));
                let window = Window {
                    contained_at: contained_since,
                    // The sweep re-reads only the last `lag` before this search's end.
                    remember_after: Some(ctx.now - lag),
                    ..Window::new(ctx.config, ctx.now, ctx.investigation_deadline)
                };
                let budget = Budget {
                    pacer: ctx.pacer,
                    store: records.enabled.then_some(home),
                    account: account.as_str(),
                };
                investigation::investigate(iam, &incident.key, &regions, source, window, budget)
                    .await
            } else {
                Investigation::NotRun {
                    reason: "the key is not this account's".into(),
                }
            }
        }
    );
    let verified = later.is_some();
    match later {
        Some(Later::Holds) | None => {}
        Some(Later::Restored { by, reason }) => {
            report.status = Status::Restored;
            report.summary = format!(
                "Containment of {} was lifted by {by} with killswitch restore ({reason}); recorded in the incident store, so it was not re-applied.",
                incident.key
            );
        }
        Some(Later::Reapplied { holds }) => {
            report.record(
                Step::Verify,
                Outcome::Done,
                "containment was undone and has been re-applied once",
                Utc::now(),
            );
            report.status = if holds {
                Status::Contested
            } else {
                Status::Failed
            };
        }
    }
    if verified || !verification.checks.is_empty() {
        report.verification = Some(verification);
    }
    report.investigation = activity;
    super::finding::notified(home, ctx.config, &incident, &mut report).await;
    let home_here = member_account.is_none().then_some(home);
    pivots::follow_pivots(iam, home_here, &incident, ctx, &mut report, plan.as_ref()).await;
    super::notify::finish(
        &mut report,
        &incident,
        plan.as_ref(),
        member_account.as_ref(),
    );
    let mut record = records.load(&account, &incident.key).await;
    // The latest pass's IDs: a later incident for the same key, or a retried follow-through,
    // reads at least as far as an earlier one did, so its sweep must compare against it.
    if let Some(r) = record.as_mut()
        && let Investigation::Ran(a) = &report.investigation
    {
        r.first_pass_event_ids = a.event_ids.clone();
        // A restore re-reads these: a credential the holder minted may still be live.
        r.note_pivots(a.pivots.iter().map(|p| &p.pivot));
        r.note_created_users(crate::report::open::created_users(a));
    }
    if let (Some(r), Some(q)) = (record.as_mut(), quarantined) {
        r.quarantine = Some(q);
    }
    match (record.as_mut(), removed) {
        (Some(r), Some(removed)) => r.assignment = Some(removed),
        // Nowhere to record it: the notice carries the command that puts it back.
        (None, Some(removed)) => report.record(
            Step::RemoveAssignment,
            Outcome::Done,
            format!(
                "NOT recorded (no incident table): to put the assignment back, {}",
                super::portal::manual_put_back(&removed)
            ),
            Utc::now(),
        ),
        _ => {}
    }
    // The sweep is scheduled (and its digest recorded) before the notice, which says when.
    if let Some(sweep) = sweep::after_first_pass(
        &incident,
        plan.as_ref(),
        member_account.as_ref(),
        &region_hints,
        contained_at,
        &report,
        ctx,
    ) {
        sweep::schedule(home, &records, record.as_mut(), sweep, &mut report, ctx).await;
    }
    // A dry run's report is not the real one: it never silences it.
    let claim = format!(
        "full:{}{}",
        incident.id,
        if report.dry_run { ":dry-run" } else { "" }
    );
    // An outcome that needs a human is never silenced by an earlier notice.
    let must_tell = matches!(report.status, Status::Failed | Status::Contested);
    if report.status == Status::KeyNotFound && !ctx.config.page_key_not_found {
        info!(step = "notify", outcome = "suppressed", "key not found");
        report.notification = Notification::Suppressed {
            reason: "IAM knows no such key, and a command-line request pages nobody for that (--notify-not-found does)".into(),
        };
    } else if must_tell || records.claim(record.as_ref(), &claim).await {
        super::notify::notify(home, &mut report).await;
        // Not sent (failed, or printed by --no-notify / a dry run): a later delivery must
        // still be able to send it.
        if !must_tell
            && matches!(
                report.notification,
                Notification::Failed { .. } | Notification::NotPublished { .. }
            )
        {
            records.release(record.as_ref(), &claim).await;
        }
    } else {
        info!(
            step = "notify",
            outcome = "suppressed",
            "full report already sent"
        );
        report.notification = Notification::Suppressed {
            reason: "duplicate follow-through: the full report for this incident was already sent"
                .into(),
        };
    }
    if let Some(r) = record.as_mut() {
        if report
            .verification
            .as_ref()
            .is_some_and(|v: &Verification| v.holds)
        {
            r.verified_at = Some(Utc::now());
        }
        if let Notification::Sent { .. } = report.notification {
            r.notices.push(claim);
        }
        if let Err(e) = records.save(r).await {
            report.record(Step::Record, Outcome::Failed, e.chain(), Utc::now());
        }
    }
    report
}
