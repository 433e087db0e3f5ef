//! The last wave of the contain phase: the record, the short notice and the hand-off of the
//! follow-through go out together.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{error, info};

use super::settle::Settling;
use super::{Contained, Home};
use crate::error::Error;
use crate::playbook::follow::FollowUp;
use crate::playbook::{Context, Plan, Step, handoff, notify, portal};
use crate::record::{IncidentRecord, Records};
use crate::report::{Notification, Outcome};

/// Records the incident, announces it and hands the follow-through off, all at once. What
/// follows through here is returned when the hand-off did not happen.
pub(super) async fn record_announce_hand_off<H: Home>(
    s: Settling,
    home: &H,
    records: &Records<'_, H>,
    ctx: &Context<'_>,
    claim: &str,
) -> Contained {
    let Settling {
        incident,
        mut report,
        member_account,
        account,
        plan,
        mut record,
        contained_at,
        hints,
        announce,
        ..
    } = s;
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
    let body = handoff::encode(&follow_up);
    let queue = ctx.hand_off && (record.is_some() || !records.enabled);
    if queue && let Some(r) = record.as_mut() {
        r.note_hand_off(&body);
    }
    let claim_taken = announce && records.enabled && record.is_some();
    let index = record
        .as_ref()
        .filter(|r| r.applied.is_some())
        .and(follow_up.plan.as_ref())
        .and_then(incident_index);
    // The last wave: record, short notice and hand-off together.
    let (saved, (), handed) = tokio::join!(
        save(
            records,
            record.as_ref(),
            &account,
            index.as_deref(),
            &follow_up
        ),
        async {
            if announce {
                notify::announce(home, &mut report).await;
            }
        },
        hand_off(home, queue.then_some(body.as_str()), ctx)
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
        records.release(record.as_ref(), claim).await;
    }
    follow_up.report.notification = report.notification.clone();
    follow_through(report, follow_up, handed, ctx)
}

/// Every key contained on a role is indexed there: a restore for one key must not lift a cutoff
/// or a session deny another open incident relies on. An Identity Center user's entries are
/// shared by every key of theirs.
fn incident_index(plan: &Plan) -> Option<String> {
    match plan {
        Plan::Role { role, .. } => Some(role.clone()),
        Plan::Portal { user, .. } => Some(portal::index_name(user)),
        Plan::User { .. } => None,
    }
}

/// The record, and the incident noted in its role's (or user's) index beside it.
async fn save<H: Home>(
    records: &Records<'_, H>,
    record: Option<&IncidentRecord>,
    account: &crate::incident::AccountId,
    index: Option<&str>,
    follow_up: &FollowUp,
) -> Result<(), Error> {
    let Some(r) = record else {
        return Ok(());
    };
    let (saved, indexed) = tokio::join!(records.save(r), async {
        match index {
            Some(role) => {
                records
                    .note_role_incident(account, role, &follow_up.incident.key)
                    .await
            }
            None => Ok(()),
        }
    });
    saved.and(indexed)
}

/// The follow-through queued, when it is to be (`body`).
async fn hand_off<H: Home>(
    home: &H,
    body: Option<&str>,
    ctx: &Context<'_>,
) -> Option<Result<(), Error>> {
    let body = body?;
    // The first-minute watch starts at once; without it the follow-through starts with the
    // read-back after IAM's propagation window.
    let delay = if ctx.config.watch.is_zero() {
        ctx.config.verify_delay.min(handoff::MAX_DELAY)
    } else {
        std::time::Duration::ZERO
    };
    Some(home.hand_off(body, delay).await)
}

/// Where the follow-through runs: queued, or here when the hand-off failed or was not made.
fn follow_through(
    mut report: crate::report::Report,
    mut follow_up: FollowUp,
    handed: Option<Result<(), Error>>,
    ctx: &Context<'_>,
) -> Contained {
    match handed {
        Some(Ok(())) => {
            info!(step = "hand_off", outcome = "done", "follow-through queued");
            report.follow_through = Some(if ctx.config.watch.is_zero() {
                format!(
                    "queued: re-check after {}s, CloudTrail and the full report follow",
                    ctx.config.verify_delay.as_secs()
                )
            } else {
                format!(
                    "queued: watched for {}s, re-checked {}s after the last write, CloudTrail and the full report follow",
                    ctx.config.watch.as_secs(),
                    ctx.config.verify_delay.as_secs()
                )
            });
            Contained::done(report)
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

fn not_before(contained_at: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    contained_at + chrono::TimeDelta::from_std(delay).unwrap_or_default()
}
