//! The sweep: CloudTrail Event history delivers a call about 5 minutes after it happens,
//! sometimes 15, so the first search cannot see the attacker's last minutes before detection,
//! where the `CreateAccessKey` or `AssumeRole` that outlive the key sit. The sweep searches every
//! Region again, from the first search's end minus `KILLSWITCH_CLOUDTRAIL_LAG_MINUTES` up to the
//! sweep time, reports only events the first pass did not (by event ID, kept in the incident
//! store), contains new pivots under the same guards, and sends the final notice that closes
//! the search.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{Instrument, info, info_span};

use super::contain::Home;
pub use super::follow::Origin;
use super::verify::{self, Later};
use super::{Context, Plan, Responder, Step, guard, locate, pivots};
use crate::analysis::PivotKind;
use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId, Incident};
use crate::investigation::{self, Window};
use crate::pacing::Budget;
use crate::ports::{ActivityLog, Identity};
use crate::record::{IncidentRecord, Records};
use crate::report::{
    Investigation, Notification, Outcome, RegionCoverage, Report, Status, SweepResult,
    SweepSchedule, ts,
};

pub use crate::report::pending::{Kind, Sweep};

/// The sweep a first report promises, if its search ran.
pub fn after_first_pass(
    incident: &Incident,
    plan: Option<&Plan>,
    member_account: Option<&AccountId>,
    region_hints: &[String],
    contained_at: DateTime<Utc>,
    report: &Report,
    ctx: &Context<'_>,
) -> Option<Sweep> {
    let Investigation::Ran(a) = &report.investigation else {
        return None;
    };
    if matches!(report.status, Status::Rejected | Status::Sample) {
        return None;
    }
    let now = Utc::now();
    let pivot_keys = a
        .pivots
        .iter()
        .filter(|p| matches!(p.pivot.kind, PivotKind::AccessKey | PivotKind::RoleSession))
        .filter_map(|p| Some((p.pivot.access_key_id.clone()?, p.pivot.region.clone())))
        .take(MAX_CARRIED_PIVOTS)
        .collect();
    let known_pivots = a.pivot_ids.iter().cloned().collect();
    let first_pass_gaps = a
        .regions
        .iter()
        .filter(|r| r.coverage != RegionCoverage::Complete)
        .map(|r| r.region.clone())
        .collect();
    Some(Sweep {
        kind: Kind::Sweep,
        version: Sweep::VERSION,
        incident: incident.clone(),
        plan: plan.cloned(),
        member_account: member_account.cloned(),
        region_hints: region_hints.to_vec(),
        contained_at,
        first_pass_end: a.window_end.unwrap_or(now),
        first_report_at: now,
        due_at: now + TimeDelta::from_std(ctx.config.sweep_after).unwrap_or(TimeDelta::minutes(15)),
        first_status: report.status,
        dry_run: report.dry_run,
        operator: report.operator.clone(),
        pivot_keys,
        known_pivots,
        first_pass_gaps,
    })
}

/// Pivot keys the sweep searches again (each a search in two Regions).
const MAX_CARRIED_PIVOTS: usize = 10;

pub fn encode(sweep: &Sweep) -> String {
    serde_json::to_string(sweep).unwrap_or_default()
}

/// Queues the sweep (its digest goes into the record first, so only this function's own
/// sweeps are carried out), or leaves it to this process, and says which in the report.
pub async fn schedule<H: Home>(
    home: &H,
    records: &Records<'_, H>,
    record: Option<&mut IncidentRecord>,
    sweep: Sweep,
    report: &mut Report,
    ctx: &Context<'_>,
) {
    let due_at = sweep.due_at;
    let by_hand = lookup_commands(&sweep);
    let claim = format!("sweep-scheduled:{}", sweep.incident.id);
    let snapshot = record.as_deref().cloned();
    let record_for_release = snapshot.as_ref();
    let schedule = if ctx.config.follow_up_queue_url.is_some() {
        let body = encode(&sweep);
        let first = records.claim(snapshot.as_ref(), &claim).await;
        let recorded = match record {
            _ if !first => Err(None),
            Some(r) => {
                r.note_hand_off(&body);
                records.save(r).await.map_err(Some)
            }
            None if records.enabled => Err(Some(Error::BadEvent(
                "the incident record could not be read".into(),
            ))),
            None => Ok(()),
        };
        match recorded {
            // An earlier delivery of this follow-up queued it: one sweep per incident.
            Err(None) => SweepSchedule {
                due_at,
                scheduled: true,
                how: "queued by an earlier delivery of this follow-up".into(),
            },
            Err(Some(e)) => {
                records.release(record_for_release, &claim).await;
                SweepSchedule {
                    due_at,
                    scheduled: false,
                    how: format!(
                        "NOT scheduled: the incident store could not record it ({})",
                        e.chain()
                    ),
                }
            }
            Ok(()) => match home.hand_off(&body, delay_until(due_at)).await {
                Ok(()) => SweepSchedule {
                    due_at,
                    scheduled: true,
                    how: "queued (KILLSWITCH_FOLLOW_UP_QUEUE_URL)".into(),
                },
                Err(e) => {
                    records.release(record_for_release, &claim).await;
                    SweepSchedule {
                        due_at,
                        scheduled: false,
                        how: format!("NOT scheduled: the queue refused it ({})", e.chain()),
                    }
                }
            },
        }
    } else if ctx.config.sweep_inline {
        report.pending_sweep = Some(Box::new(sweep));
        SweepSchedule {
            due_at,
            scheduled: true,
            how: "this process waits and runs it (killswitch respond without --no-sweep)".into(),
        }
    } else {
        SweepSchedule {
            due_at,
            scheduled: false,
            how: "this run did not wait for it (--no-sweep) and no follow-up queue is configured"
                .into(),
        }
    };
    let key = &report.access_key_id;
    report.next_steps.push(if schedule.scheduled {
        format!(
            "Event history delivers calls minutes late: a second CloudTrail search (the sweep) runs at {} and its FINAL notice says what is new and closes the search. Data events are only in your trail (S3/Athena).",
            ts(due_at)
        )
    } else {
        format!(
            "NO second CloudTrail search will run: {}. Event history delivers calls up to 15 minutes late: after {}, search again in each Region {key} was used in:\n{}",
            schedule.how.trim_start_matches("NOT scheduled: "),
            ts(due_at),
            by_hand.join("\n")
        )
    });
    report.sweep = Some(schedule);
}

/// The searches the sweep would make, as commands a person can paste: one per Region the key
/// was seen in (REGION when none was), from a lag before the first search ended.
pub fn lookup_commands(sweep: &Sweep) -> Vec<String> {
    let since = sweep.first_pass_end - TimeDelta::minutes(15);
    let mut regions = sweep.region_hints.clone();
    if regions.is_empty() {
        regions.push("REGION".into());
    }
    regions
        .iter()
        .map(|region| {
            format!(
                "aws cloudtrail lookup-events --region {region} --start-time {} --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={}",
                since.format("%Y-%m-%dT%H:%M:%SZ"),
                sweep.incident.key
            )
        })
        .collect()
}

/// SQS delays a message by 15 minutes at most: a later sweep is queued again when it arrives.
fn delay_until(due_at: DateTime<Utc>) -> std::time::Duration {
    (due_at - Utc::now())
        .to_std()
        .unwrap_or_default()
        .min(super::handoff::MAX_DELAY)
}

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

async fn sweep_in<I, H>(iam: &I, home: &H, s: Sweep, ctx: &Context<'_>) -> Report
where
    I: Identity + ActivityLog,
    H: Home,
    H::Member: ActivityLog,
{
    let records = Records::new(home, ctx.config);
    let account = s
        .member_account
        .clone()
        .unwrap_or_else(|| ctx.responder.account.clone());
    let record = records.load(&account, &s.incident.key).await;
    let seen: HashSet<String> = record
        .as_ref()
        .map(|r| r.first_pass_event_ids.iter().cloned().collect())
        .unwrap_or_default();
    let known: HashSet<String> = s.known_pivots.iter().cloned().collect();
    let mut report = Report::new(&s.incident, s.dry_run, ctx.now);
    report.operator.clone_from(&s.operator);
    report.status = s.first_status;
    report.account = Some(account.to_string());
    if let Some(plan) = &s.plan {
        report.principal = plan.principal();
    }
    // A plan the guards would refuse today (the protected list grew) is not re-applied.
    let plan = s
        .plan
        .clone()
        .filter(|p| guard::protected_reason(p, ctx).is_none());

    // Is containment still in place? Re-applied if undone, unless an operator restored it.
    let containment = async {
        let plan = plan.as_ref().filter(|_| !s.dry_run)?;
        let mut v = crate::report::Verification::default();
        let later = verify::later(
            iam,
            &s.incident.key,
            plan,
            "at the sweep",
            &mut v,
            |undone: verify::Undone| {
                let (records, account, key) = (&records, &account, &s.incident.key);
                async move {
                    let r = records.load(account, key).await?;
                    r.restored_since(s.contained_at)
                        .filter(|x| undone.explained_by(&x.actions))
                        .map(|x| (x.by.clone(), x.reason.clone()))
                }
            },
        )
        .await;
        Some((later, v))
    };
    let (regions, source) = investigation::regions(iam, ctx.config, &s.region_hints).await;
    let lag = TimeDelta::from_std(ctx.config.cloudtrail_lag).unwrap_or(TimeDelta::minutes(15));
    let window = Window {
        start: s.first_pass_end - lag,
        end: ctx.now,
        contained_at: (s.first_status.is_contained() || s.first_status == Status::Failed)
            .then_some(s.contained_at),
        seen: Some(&seen),
        known_pivots: Some(&known),
        ..Window::new(ctx.config, ctx.now, ctx.investigation_deadline)
    };
    let budget = Budget {
        pacer: ctx.pacer,
        store: records.enabled.then_some(home),
        account: account.as_str(),
    };
    // The keys and sessions the first pass found, searched again over the same window: what
    // they did (a key made with a role session) was not delivered either.
    let carried = async {
        let searches = s.pivot_keys.iter().filter_map(|(key, minted_in)| {
            let key = AccessKeyId::parse(key).ok()?;
            let mut where_ = vec![investigation::HOME_REGION.to_owned()];
            if minted_in != investigation::HOME_REGION {
                where_.push(minted_in.clone());
            }
            Some(async move {
                let found = investigation::investigate(
                    iam,
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
    };
    let (checked, activity, carried) = tokio::join!(
        containment,
        investigation::investigate(iam, &s.incident.key, &regions, source, window, budget),
        carried
    );
    let mut activity = activity;
    let mut pivot_searches_complete = true;
    if let Investigation::Ran(a) = &mut activity {
        for (key, found) in carried {
            let Investigation::Ran(sub) = found else {
                pivot_searches_complete = false;
                continue;
            };
            pivot_searches_complete &= sub.complete() && sub.pivot_searches_complete();
            for mut p in sub.pivots.into_iter().map(|p| p.pivot) {
                p.via = format!("{} (by pivot {key})", p.via);
                investigation::keep_pivot(a, p);
            }
        }
    }
    let containment_text = match checked {
        None => "not checked (nothing was applied, or a dry run)".to_string(),
        Some((Later::Holds, v)) => {
            report.verification = Some(v);
            if !report.status.is_contained() {
                report.status = Status::Contained;
            }
            "holds (read back at the sweep)".into()
        }
        Some((Later::Restored { by, reason }, _)) => {
            report.status = Status::Restored;
            format!("lifted by {by} with killswitch restore ({reason}): not re-applied")
        }
        Some((Later::Reapplied { holds }, v)) => {
            report.verification = Some(v);
            report.record(
                Step::Verify,
                Outcome::Done,
                "containment was undone before the sweep and has been re-applied",
                Utc::now(),
            );
            report.status = if holds {
                Status::Contested
            } else {
                Status::Failed
            };
            if holds {
                "was UNDONE before the sweep and has been re-applied".into()
            } else {
                "was UNDONE and could NOT be re-applied: act by hand now".into()
            }
        }
    };
    // Only what the sweep itself saw fail needs a human again (and SQS to retry).
    let must_tell = matches!(report.status, Status::Failed | Status::Contested)
        && containment_text.starts_with("was UNDONE");
    report.investigation = activity;
    // GuardDuty sends its findings to Security Hub minutes later: the first attempt often finds
    // nothing there yet, so the sweep sets NOTIFIED again (idempotent) once it holds.
    super::finding::notified(home, ctx.config, &s.incident, &mut report).await;
    let home_here = s.member_account.is_none().then_some(home);
    pivots::follow_pivots(iam, home_here, &s.incident, ctx, &mut report, plan.as_ref()).await;

    let (new_events, already, new_pivots, uncontained, searched_all) = match &report.investigation {
        Investigation::Ran(a) => {
            let listed: Vec<_> = a
                .pivots
                .iter()
                .filter(|p| !p.pivot.kind.covered_by_user_deny())
                .collect();
            (
                a.total_events,
                a.already_reported,
                listed.len(),
                listed
                    .iter()
                    .filter(|p| {
                        !p.containment
                            .as_ref()
                            .is_some_and(|c| c.status.is_contained())
                    })
                    .count(),
                a.complete() && a.pivot_searches_complete(),
            )
        }
        Investigation::NotRun { .. } => (0, 0, 0, 0, false),
    };
    let closed = searched_all && pivot_searches_complete && s.first_pass_gaps.is_empty();
    let key = &s.incident.key;
    let mut summary = if new_events == 0 && new_pivots == 0 {
        format!(
            "FINAL for {key}: nothing new. CloudTrail delivered no event of this key between {} and {} beyond the {already} already reported.",
            ts(window.start),
            ts(window.end)
        )
    } else {
        format!(
            "FINAL for {key}: {new_events} event(s) the first report could not see, {new_pivots} new pivot(s) ({uncontained} NOT contained); read them below."
        )
    };
    if let Investigation::Ran(a) = &report.investigation
        && let Some(line) = a.after_containment.line(true)
    {
        summary.push(' ');
        summary.push_str(&line);
    }
    if closed {
        summary.push_str(" The search is now CLOSED: every Region, and every key it minted, was read to the end.");
    } else {
        let mut why = Vec::new();
        if !s.first_pass_gaps.is_empty() {
            why.push(format!(
                "the first search did not read {} to the end and the sweep re-reads only the last minutes",
                s.first_pass_gaps.join(", ")
            ));
        }
        if !searched_all || !pivot_searches_complete {
            why.push("some Regions or minted keys were not read to the end (see below)".into());
        }
        summary.push_str(&format!(
            " The search could NOT be closed: {}. Search by hand.",
            why.join("; ")
        ));
    }
    if report.status == Status::Failed {
        summary = format!("CONTAINMENT FAILED at the sweep. {summary}");
    }
    report.summary = summary;
    report.sweep_result = Some(SweepResult {
        first_report_at: s.first_report_at,
        searched_from: window.start,
        searched_to: window.end,
        new_events,
        already_reported: already,
        new_pivots,
        uncontained_pivots: uncontained,
        closed,
        containment: containment_text,
    });
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
    if must_tell || records.claim(record.as_ref(), &claim).await {
        super::notify::notify(home, &mut report).await;
        if !must_tell
            && matches!(
                report.notification,
                Notification::Failed { .. } | Notification::NotPublished { .. }
            )
        {
            records.release(record.as_ref(), &claim).await;
        }
    } else {
        report.notification = Notification::Suppressed {
            reason: "duplicate sweep: its final notice was already sent".into(),
        };
    }
    // Read again just before writing: the search took minutes, and a new trigger for the key
    // may have written the record meanwhile.
    if let Some(mut r) = records.load(&account, &s.incident.key).await {
        r.swept_at = Some(Utc::now());
        if let Investigation::Ran(a) = &report.investigation {
            r.note_pivots(a.pivots.iter().map(|p| &p.pivot));
            r.note_created_users(crate::report::open::created_users(a));
        }
        if let Notification::Sent { .. } = report.notification {
            r.notices.push(claim);
        }
        if let Err(e) = records.save(&r).await {
            report.record(Step::Record, Outcome::Failed, e.chain(), Utc::now());
        }
    }
    report
}
