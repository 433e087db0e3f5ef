//! The sweep a first report promises: what it carries, and where it is queued (or who runs it).

use chrono::{DateTime, TimeDelta, Utc};

use super::{Kind, Sweep};
use crate::analysis::PivotKind;
use crate::error::Error;
use crate::incident::{AccountId, Incident};
use crate::playbook::contain::Home;
use crate::playbook::{Context, Plan};
use crate::record::{IncidentRecord, Records};
use crate::report::{Investigation, RegionCoverage, Report, Status, SweepSchedule, ts};

/// Pivot keys the sweep searches again (each a search in two Regions).
const MAX_CARRIED_PIVOTS: usize = 10;

/// Whether a first report with this status promises a sweep: not for another account's key,
/// nor for a sample.
fn promises_a_sweep(status: Status) -> bool {
    match status {
        Status::Rejected | Status::Sample => false,
        Status::Contained
        | Status::AlreadyContained
        | Status::Contested
        | Status::Failed
        | Status::Refused
        | Status::DryRun
        | Status::KeyNotFound
        | Status::Restored => true,
    }
}

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
    if !promises_a_sweep(report.status) {
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
    let schedule = if ctx.config.follow_up_queue_url.is_some() {
        queue(home, records, record, &sweep).await
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

/// Queues the sweep once per incident, its digest recorded first.
async fn queue<H: Home>(
    home: &H,
    records: &Records<'_, H>,
    record: Option<&mut IncidentRecord>,
    sweep: &Sweep,
) -> SweepSchedule {
    let due_at = sweep.due_at;
    let claim = format!("sweep-scheduled:{}", sweep.incident.id);
    let snapshot = record.as_deref().cloned();
    let record_for_release = snapshot.as_ref();
    let body = encode(sweep);
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
pub(super) fn delay_until(due_at: DateTime<Utc>) -> std::time::Duration {
    (due_at - Utc::now())
        .to_std()
        .unwrap_or_default()
        .min(crate::playbook::handoff::MAX_DELAY)
}
