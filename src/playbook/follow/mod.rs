//! The follow-through phase: the re-check after IAM's propagation window, the CloudTrail
//! investigation, the attacker's pivots and the full notice. Runs from the durable queue (a
//! message per incident, delayed by the verification delay) or inline on the command line.

mod recheck;
mod watch;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info, info_span};

use super::contain::Home;
use super::verify::Later;
use super::{Context, Plan, Responder, Step, guard, locate, pivots, sweep};
use crate::error::Error;
use crate::incident::{AccountId, Incident};
use crate::investigation::{self, Window};
use crate::pacing::Budget;
use crate::ports::{ActivityLog, Identity};
use crate::record::{IncidentRecord, Quarantined, Records, Removed};
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
/// What every step of one follow-through reads.
struct Pass<'a, I, H> {
    iam: &'a I,
    home: &'a H,
    ctx: &'a Context<'a>,
    records: Records<'a, H>,
    incident: &'a Incident,
    /// The account the key lives in: its record, its CloudTrail, its quarantine.
    account: AccountId,
    contained_at: DateTime<Utc>,
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
    let pass = Pass {
        iam,
        home,
        ctx,
        records: Records::new(home, ctx.config),
        incident: &incident,
        account: member_account
            .clone()
            .unwrap_or_else(|| ctx.responder.account.clone()),
        contained_at,
    };
    // A plan that the guards would refuse today (the protected list grew) is not re-applied.
    let plan = plan.filter(|p| guard::protected_reason(p, &pass.account, ctx).is_none());
    let mut verification = report.verification.take().unwrap_or_default();
    let status = report.status;
    let (rechecked, activity, aws_quarantine) = tokio::join!(
        pass.recheck(plan.as_ref(), not_before, &mut verification, &mut report),
        pass.investigate(status, &region_hints),
        pass.aws_quarantine(plan.as_ref())
    );
    let recheck::Rechecked {
        later,
        quarantined,
        removed,
        counter_moves,
    } = rechecked;
    settle(&mut report, later, verification, &counter_moves, &incident);
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
    if let Some(said) = aws_quarantine {
        report.record(Step::Verify, Outcome::Done, said.clone(), Utc::now());
        report.next_steps.push(said);
    }
    let mut record = pass.note(&mut report, quarantined, removed).await;
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
        sweep::schedule(
            home,
            &pass.records,
            record.as_mut(),
            sweep,
            &mut report,
            ctx,
        )
        .await;
    }
    let claim = pass.notify(&mut report, record.as_ref()).await;
    if let Some(r) = record.as_mut() {
        pass.save(r, claim, &mut report).await;
    }
    report
}

/// The status the delayed read-back leaves, and the verification it adds to the report.
fn settle(
    report: &mut Report,
    later: Option<Later>,
    verification: Verification,
    counter_moves: &[(DateTime<Utc>, String)],
    incident: &Incident,
) {
    let verified = later.is_some();
    if !counter_moves.is_empty() {
        let seen: Vec<String> = counter_moves
            .iter()
            .map(|(at, m)| format!("{} {m}", crate::report::ts(*at)))
            .collect();
        report.record(
            Step::Verify,
            Outcome::Done,
            format!(
                "containment was undone {} time(s) in the first minute and written again at once each time: {}",
                counter_moves.len(),
                seen.join("; ")
            ),
            Utc::now(),
        );
    }
    match later {
        Some(Later::Holds) if !counter_moves.is_empty() || verification.contested => {
            report.status = Status::Contested;
        }
        Some(Later::Holds) | None => {}
        Some(Later::Restored { by, reason }) => {
            report.status = Status::Restored;
            report.summary = format!(
                "Containment of {} was lifted by {by} with killswitch restore ({reason}); recorded in the incident store, so it was not re-applied.",
                incident.key
            );
        }
        Some(Later::Reapplied { .. }) => {
            // Undone again one propagation window after the last write: the holder is winning
            // the race. Written again, and failed so Lambda retries the follow-through (another
            // watch) while humans act.
            report.record(
                Step::Verify,
                Outcome::Failed,
                "containment was found undone past IAM's propagation window and has been written again; whether that holds is not known: the key's holder keeps undoing it (an org guard stops this, docs/org-guard.md)",
                Utc::now(),
            );
            report.status = Status::Failed;
        }
    }
    if verified || !verification.checks.is_empty() {
        report.verification = Some(verification);
    }
}

impl<I, H> Pass<'_, I, H>
where
    I: Identity + ActivityLog,
    H: Home,
{
    /// What the notice says of AWS's own quarantine policy on the user, if AWS attached one
    /// (`AWS_RISK_IAM_QUARANTINE`, or before any other trigger): which version, read from IAM.
    async fn aws_quarantine(&self, plan: Option<&Plan>) -> Option<String> {
        let user = plan.and_then(Plan::user)?;
        match self.iam.managed_policies(user).await {
            Ok(attached) => crate::report::words::aws_quarantine::sentence(user, &attached),
            Err(e) => {
                tracing::warn!(error = %e.chain(), "attached policies unreadable: AWS's quarantine policy not looked for");
                None
            }
        }
    }

    /// The CloudTrail search, unless the key is not this account's. `status` is the contain
    /// phase's.
    async fn investigate(&self, status: Status, region_hints: &[String]) -> Investigation {
        if status == Status::Rejected {
            return Investigation::NotRun {
                reason: "the key is not this account's".into(),
            };
        }
        // "After containment" only means something once something was contained (or tried).
        let contained_since =
            (status.is_contained() || status == Status::Failed).then_some(self.contained_at);
        let ctx = self.ctx;
        let (regions, source) = investigation::regions(self.iam, ctx.config, region_hints).await;
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
            store: self.records.enabled.then_some(self.home),
            account: self.account.as_str(),
        };
        investigation::investigate(
            self.iam,
            &self.incident.key,
            &regions,
            source,
            window,
            budget,
        )
        .await
    }

    /// Loads the incident record and notes in it what this pass found (saved after the notice).
    async fn note(
        &self,
        report: &mut Report,
        quarantined: Option<Quarantined>,
        removed: Option<Removed>,
    ) -> Option<IncidentRecord> {
        let mut record = self.records.load(&self.account, &self.incident.key).await;
        if let Some(r) = &record {
            r.report_trust(report);
        }
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
            (Some(_) | None, None) => {}
        }
        record
    }

    /// Sends the full notice, once per incident. Returns the claim it goes under.
    async fn notify(&self, report: &mut Report, record: Option<&IncidentRecord>) -> String {
        // A dry run's report is not the real one: it never silences it.
        let claim = format!(
            "full:{}{}",
            self.incident.id,
            if report.dry_run { ":dry-run" } else { "" }
        );
        if report.status == Status::KeyNotFound && !self.ctx.config.page_key_not_found {
            info!(step = "notify", outcome = "suppressed", "key not found");
            report.notification = Notification::Suppressed {
                reason: "IAM knows no such key, and a command-line request pages nobody for that (--notify-not-found does)".into(),
            };
        } else if !notify_once(
            self.home,
            &self.records,
            record,
            &claim,
            // An outcome that needs a human is never silenced by an earlier notice.
            report.status.needs_a_human(),
            report,
        )
        .await
        {
            info!(
                step = "notify",
                outcome = "suppressed",
                "full report already sent"
            );
            report.notification = Notification::Suppressed {
                reason:
                    "duplicate follow-through: the full report for this incident was already sent"
                        .into(),
            };
        }
        claim
    }

    /// Writes the record back with what the notice and the read-back leave in it.
    async fn save(&self, r: &mut IncidentRecord, claim: String, report: &mut Report) {
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
        if let Err(e) = self.records.save(r).await {
            report.record(Step::Record, Outcome::Failed, e.chain(), Utc::now());
        }
    }
}

/// Sends the notice unless an earlier delivery already claimed it (`must_tell`: whatever was
/// sent before); `false` when one did, and nothing was sent.
pub(super) async fn notify_once<H: Home>(
    home: &H,
    records: &Records<'_, H>,
    record: Option<&IncidentRecord>,
    claim: &str,
    must_tell: bool,
    report: &mut Report,
) -> bool {
    if !must_tell && !records.claim(record, claim).await {
        return false;
    }
    super::notify::notify(home, report).await;
    // Not sent (failed, or printed by --no-notify / a dry run): a later delivery must still be
    // able to send it.
    if !must_tell
        && matches!(
            report.notification,
            Notification::Failed { .. } | Notification::NotPublished { .. }
        )
    {
        records.release(record, claim).await;
    }
    true
}
