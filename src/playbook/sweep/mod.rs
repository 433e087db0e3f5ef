//! The sweep: CloudTrail Event history delivers a call about 5 minutes after it happens,
//! sometimes 15, so the first search cannot see the attacker's last minutes before detection,
//! where the `CreateAccessKey` or `AssumeRole` that outlive the key sit. The sweep searches every
//! Region again, from the first search's end minus `KILLSWITCH_CLOUDTRAIL_LAG_MINUTES` up to the
//! sweep time, reports only events the first pass did not (by event ID, kept in the incident
//! store), contains new pivots under the same guards, and sends the final notice that closes
//! the search.

mod close;
mod schedule;

use std::collections::HashSet;

use chrono::{TimeDelta, Utc};
use tracing::{Instrument, info, info_span};

use super::contain::Home;
pub use super::follow::Origin;
use super::follow::notify_once;
use super::verify::{self, Later};
use super::{Context, Plan, Responder, Step, guard, locate, pivots};
use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId};
use crate::investigation::{self, Window};
use crate::pacing::Budget;
use crate::ports::{ActivityLog, Identity};
use crate::record::Records;
use crate::report::{Investigation, Notification, Outcome, Report, Status, Verification};
use schedule::delay_until;
pub use schedule::{after_first_pass, encode, lookup_commands, schedule};

pub use crate::report::pending::{Kind, Sweep};

/// Runs a due sweep and returns its final report; `Ok(None)` when it is not due yet and was
/// queued again. An error means nothing was done (not this function's sweep).
pub async fn run<C: Home + ActivityLog>(
    cloud: &C,
    sweep: Sweep,
    ctx: &Context<'_>,
    origin: Origin<'_>,
) -> Result<Option<Report>, Error>
where
    C::Member: ActivityLog,
{
    let span =
        info_span!("sweep", incident_id = %sweep.incident.id, access_key_id = %sweep.incident.key);
    async {
        let records = Records::new(cloud, ctx.config);
        let account = sweep
            .member_account
            .clone()
            .unwrap_or_else(|| ctx.responder.account.clone());
        if let Origin::Queue(body) = origin {
            if !records.handed_off(&account, &sweep.incident.key, body).await {
                return Err(Error::BadEvent(
                    "sweep not scheduled by this function (no matching digest in the incident record): nothing done".into(),
                ));
            }
            if sweep.due_at > Utc::now() + TimeDelta::seconds(5) {
                cloud.hand_off(body, delay_until(sweep.due_at)).await?;
                info!(due_at = %sweep.due_at, "sweep not due yet: queued again");
                return Ok(None);
            }
        } else if let Ok(wait) = (sweep.due_at - Utc::now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        let Some(member) = sweep.member_account.clone() else {
            return Ok(Some(sweep_in(cloud, cloud, sweep, ctx).await));
        };
        let Some(members) = ctx.config.members.as_ref().filter(|m| m.allows(&member)) else {
            return Err(Error::BadEvent(format!(
                "sweep for account {member}, which KILLSWITCH_MEMBER_* does not allow: nothing done"
            )));
        };
        let role_arn = locate::member_role_arn(&member, members, ctx);
        let session = locate::session_name(&sweep.incident);
        let entered = cloud
            .enter(&role_arn, &members.external_id, &session)
            .await?;
        let responder = Responder::from_arn(member, &entered.arn);
        let member_ctx = Context {
            responder: &responder,
            ..*ctx
        };
        Ok(Some(sweep_in(&entered.clients, cloud, sweep, &member_ctx).await))
    }
    .instrument(span)
    .await
}

/// What every step of one sweep reads.
struct Pass<'a, I, H> {
    iam: &'a I,
    home: &'a H,
    ctx: &'a Context<'a>,
    records: Records<'a, H>,
    /// The account the key lives in: its record, its CloudTrail.
    account: AccountId,
    s: &'a Sweep,
}

async fn sweep_in<I, H>(iam: &I, home: &H, s: Sweep, ctx: &Context<'_>) -> Report
where
    I: Identity + ActivityLog,
    H: Home,
    H::Member: ActivityLog,
{
    let pass = Pass {
        iam,
        home,
        ctx,
        records: Records::new(home, ctx.config),
        account: s
            .member_account
            .clone()
            .unwrap_or_else(|| ctx.responder.account.clone()),
        s: &s,
    };
    let record = pass.records.load(&pass.account, &s.incident.key).await;
    let seen: HashSet<String> = record
        .as_ref()
        .map(|r| r.first_pass_event_ids.iter().cloned().collect())
        .unwrap_or_default();
    let known: HashSet<String> = s.known_pivots.iter().cloned().collect();
    let mut report = pass.first_report();
    // A plan the guards would refuse today (the protected list grew) is not re-applied.
    let plan = s
        .plan
        .clone()
        .filter(|p| guard::protected_reason(p, &pass.account, ctx).is_none());
    let (regions, source) = investigation::regions(iam, ctx.config, &s.region_hints).await;
    let window = pass.window(&seen, &known);
    let budget = pass.budget();
    let (checked, mut activity, carried) = tokio::join!(
        pass.recheck(plan.as_ref()),
        investigation::investigate(iam, &s.incident.key, &regions, source, window, budget),
        pass.search_carried(window, budget)
    );
    let pivot_searches_complete = close::merge_carried(&mut activity, carried);
    let containment = close::settle(&mut report, checked);
    // Only what the sweep itself saw fail needs a human again (and SQS to retry).
    let must_tell = report.status.needs_a_human() && containment.starts_with("was UNDONE");
    report.investigation = activity;
    // GuardDuty sends its findings to Security Hub minutes later: the first attempt often finds
    // nothing there yet, so the sweep sets NOTIFIED again (idempotent) once it holds.
    super::finding::notified(home, ctx.config, &s.incident, &mut report).await;
    let home_here = s.member_account.is_none().then_some(home);
    pivots::follow_pivots(iam, home_here, &s.incident, ctx, &mut report, plan.as_ref()).await;
    close::close(
        &mut report,
        &s,
        window,
        pivot_searches_complete,
        containment,
    );
    super::notify::finish(
        &mut report,
        &s.incident,
        plan.as_ref(),
        s.member_account.as_ref(),
    );
    // A dry run's FINAL never silences the real one, nor does one that was only printed.
    let claim = format!(
        "sweep:{}{}",
        s.incident.id,
        if s.dry_run { ":dry-run" } else { "" }
    );
    if !notify_once(
        home,
        &pass.records,
        record.as_ref(),
        &claim,
        must_tell,
        &mut report,
    )
    .await
    {
        report.notification = Notification::Suppressed {
            reason: "duplicate sweep: its final notice was already sent".into(),
        };
    }
    pass.save(claim, &mut report).await;
    report
}

impl<I, H> Pass<'_, I, H>
where
    I: Identity + ActivityLog,
    H: Home,
{
    /// The report the FINAL notice continues: the first report's status and principal.
    fn first_report(&self) -> Report {
        let s = self.s;
        let mut report = Report::new(&s.incident, s.dry_run, self.ctx.now);
        report.operator.clone_from(&s.operator);
        report.status = s.first_status;
        report.account = Some(self.account.to_string());
        if let Some(plan) = &s.plan {
            report.principal = plan.principal();
        }
        report
    }

    /// From a lag before the first search ended up to now.
    fn window<'w>(&self, seen: &'w HashSet<String>, known: &'w HashSet<String>) -> Window<'w> {
        let (s, ctx) = (self.s, self.ctx);
        let lag = TimeDelta::from_std(ctx.config.cloudtrail_lag).unwrap_or(TimeDelta::minutes(15));
        Window {
            start: s.first_pass_end - lag,
            end: ctx.now,
            contained_at: (s.first_status.is_contained() || s.first_status == Status::Failed)
                .then_some(s.contained_at),
            seen: Some(seen),
            known_pivots: Some(known),
            ..Window::new(ctx.config, ctx.now, ctx.investigation_deadline)
        }
    }

    fn budget(&self) -> Budget<'_, H> {
        Budget {
            pacer: self.ctx.pacer,
            store: self.records.enabled.then_some(self.home),
            account: self.account.as_str(),
        }
    }

    /// Is containment still in place? Re-applied if undone, unless an operator restored it.
    async fn recheck(&self, plan: Option<&Plan>) -> Option<(Later, Verification)> {
        let s = self.s;
        let plan = plan.filter(|_| !s.dry_run)?;
        let mut v = Verification::default();
        let (records, account, key) = (&self.records, &self.account, &s.incident.key);
        let later = verify::later(
            self.iam,
            key,
            plan,
            "at the sweep",
            &mut v,
            |undone: verify::Undone| async move {
                let r = records.load(account, key).await?;
                r.restored_since(s.contained_at)
                    .filter(|x| undone.explained_by(&x.actions))
                    .map(|x| (x.by.clone(), x.reason.clone()))
            },
        )
        .await;
        Some((later, v))
    }

    /// The keys and sessions the first pass found, searched again over the same window: what
    /// they did (a key made with a role session) was not delivered either.
    async fn search_carried(
        &self,
        window: Window<'_>,
        budget: Budget<'_, H>,
    ) -> Vec<(AccessKeyId, Investigation)> {
        let searches = self.s.pivot_keys.iter().filter_map(|(key, minted_in)| {
            let key = AccessKeyId::parse(key).ok()?;
            let mut where_ = vec![investigation::HOME_REGION.to_owned()];
            if minted_in != investigation::HOME_REGION {
                where_.push(minted_in.clone());
            }
            Some(async move {
                let found = investigation::investigate(
                    self.iam,
                    &key,
                    &where_,
                    "the Region it was minted in, and us-east-1".into(),
                    window,
                    budget,
                )
                .await;
                (key, found)
            })
        });
        futures::future::join_all(searches).await
    }

    /// Notes the sweep in the record, read again just before writing: the search took minutes,
    /// and a new trigger for the key may have written the record meanwhile.
    async fn save(&self, claim: String, report: &mut Report) {
        let Some(mut r) = self.records.load(&self.account, &self.s.incident.key).await else {
            return;
        };
        r.swept_at = Some(Utc::now());
        if let Investigation::Ran(a) = &report.investigation {
            r.note_pivots(a.pivots.iter().map(|p| &p.pivot));
            r.note_created_users(crate::report::open::created_users(a));
        }
        if let Notification::Sent { .. } = report.notification {
            r.notices.push(claim);
        }
        if let Err(e) = self.records.save(&r).await {
            report.record(Step::Record, Outcome::Failed, e.chain(), Utc::now());
        }
    }
}
