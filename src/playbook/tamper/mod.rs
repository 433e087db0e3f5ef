//! Pivot events: a CloudTrail event of an IAM write or an STS call, delivered in seconds by
//! EventBridge, answered while the holder of a contained key is still racing IAM's propagation
//! window. Such an event is a claim like any other payload, so what it may cause is bounded:
//!
//! - **Only for a principal under containment.** The incident record (the responder's own
//!   table, which the key's holder cannot write) must hold a containment of this generation for
//!   the key that signed the call, or, for an IAM user's other key or session, for one of the
//!   keys IAM lists for that user. Anything else — an admin's key, a key never contained, one
//!   restored since — changes nothing and pages nobody: `not under containment`.
//! - **Re-applied, never widened.** What the record says was decided for that principal is read
//!   back at once and written again where it was undone (`verify::later`, the follow-through's
//!   own read-back): the event chooses nothing of what is written.
//! - **Something new only when IAM confirms it** ([`confirm`]): a key or a console password the
//!   call created, found in IAM with a creation date inside the incident, is contained through
//!   `pivots::follow_pivots` — the investigation's own path, with its guards (protected
//!   principals refused, `KILLSWITCH_FOLLOW_PIVOTS` to contain).
//! - **A role session on the event's word, narrowly.** IAM cannot date a session and
//!   CloudTrail's own record comes minutes late, so an `AssumeRole` signed by a principal under
//!   containment is contained when IAM confirms the role's ID is the prefix of the event's
//!   `assumedRoleId`: one session name of one role is denied (`aws:userid`), paged, restorable.
//!   Roles and trust policies wait for CloudTrail's own record, which the follow-through and the
//!   sweep read (5 to 15 minutes late), and are named in the answer.

mod confirm;
mod words;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::contain::Home;
use super::{Context, Plan, Responder, dry_run, pivots, verify};
use crate::analysis::{self, Pivot};
use crate::config::Config;
use crate::error::Error;
use crate::incident::{AccessKeyId, Incident, Principal, Trigger};
use crate::pacing::Pacer;
use crate::ports::{ActivityLog, ApiCall};
use crate::record::{Applied, IncidentRecord, Records};
use crate::report::{Activity, Investigation, PivotReport, Report, Verification, defang};
use crate::trigger::{ApiCallEvent, Signer};

pub use confirm::{CONFIRM_TOLERANCE, Confirmed};

/// What one pivot event came to.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The signer is not a key or session under containment: nothing read further, nothing
    /// written, no page.
    NotUnderContainment { reason: String },
    /// The containment recorded for the signer's principal was read back in place.
    Holds,
    /// It was found undone and written again; `holds` is the read-back after that.
    Reapplied { holds: bool },
    /// Found undone, and an operator's restore recorded since explains it: left alone.
    Restored { by: String },
    /// Dry run: read back only; `holds` is what it found.
    DryRun { holds: bool },
}

/// The answer to one pivot event (the invocation's result and its log line).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Answer {
    pub event_id: String,
    pub event_name: String,
    pub signed_by: AccessKeyId,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The contained key whose incident record decided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_key: Option<String>,
    /// Credentials the call created that IAM confirmed, each with its containment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pivots: Vec<PivotReport>,
    /// What the event claims that IAM cannot confirm, left to CloudTrail's own record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unconfirmed: Option<String>,
    /// The subject of the notice sent, if one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl Answer {
    fn new(call: &ApiCallEvent, outcome: Outcome) -> Self {
        Answer {
            event_id: call.event_id.clone(),
            event_name: call.event_name.clone(),
            signed_by: call.signer.key.clone(),
            outcome,
            incident_key: None,
            pivots: Vec::new(),
            unconfirmed: None,
            notice: None,
        }
    }

    /// Containment that does not hold after this event: an error for Lambda (retried, alarmed).
    pub fn failed(&self) -> bool {
        let pivot_failed = self.pivots.iter().any(|p| {
            p.containment
                .as_ref()
                .is_some_and(|c| c.status == crate::report::Status::Failed)
        });
        pivot_failed || self.outcome == Outcome::Reapplied { holds: false }
    }
}

/// A containment of this generation, for the principal that signed the call.
pub(super) struct UnderContainment {
    pub(super) key: AccessKeyId,
    record: IncidentRecord,
    pub(super) applied: Applied,
}

impl UnderContainment {
    /// When the incident began: the trigger's first sight of the key, or the containment.
    fn start(&self) -> DateTime<Utc> {
        self.applied
            .first_seen
            .map_or(self.applied.at, |f| f.min(self.applied.at))
    }

    /// The contained key's incident, as the pivots it minted are followed from.
    fn incident(&self, call: &ApiCallEvent) -> Incident {
        Incident {
            id: self.applied.incident_id.clone(),
            trigger: Trigger::Pivot {
                parent_key: self.key.to_string(),
                via: format!("CloudTrail event {} {}", call.event_name, call.event_id),
            },
            key: self.key.clone(),
            principal: principal_of(&self.applied.plan),
            account: Some(call.account.clone()),
            dry_run: false,
            first_seen: self.applied.first_seen,
            finding: None,
            source: None,
        }
    }
}

fn principal_of(plan: &Plan) -> Principal {
    match plan {
        Plan::User { user, .. } => Principal::IamUser {
            user_name: user.clone(),
        },
        Plan::Role { role, session, .. } => Principal::AssumedRole {
            role_name: role.clone(),
            session_name: session.clone(),
            role_id: None,
        },
        Plan::Portal { role, user, .. } => Principal::AssumedRole {
            role_name: role.clone(),
            session_name: Some(user.clone()),
            role_id: None,
        },
    }
}

/// Whether a recorded plan is the principal that signed: the same IAM user, or a session of
/// the same role (the same session, when the plan names one).
fn signed_by(plan: &Plan, signer: &Signer) -> bool {
    let name = signer.name.as_deref().unwrap_or_default();
    let session_is = |session: &str| {
        signer
            .principal_id
            .as_deref()
            .and_then(|p| p.split_once(':'))
            .is_some_and(|(_, s)| s == session)
    };
    match plan {
        Plan::User { user, .. } => signer.kind == "IAMUser" && user.eq_ignore_ascii_case(name),
        // An exact session deny names the whole `aws:userid` (`ROLE-ID:session-name`), which is
        // the signer's principal ID.
        Plan::Role { role, session, .. } => {
            signer.kind == "AssumedRole"
                && role.eq_ignore_ascii_case(name)
                && session
                    .as_deref()
                    .is_none_or(|s| signer.principal_id.as_deref() == Some(s))
        }
        Plan::Portal { role, session, .. } => {
            signer.kind == "AssumedRole"
                && role.eq_ignore_ascii_case(name)
                && session.split_once(':').is_some_and(|(_, s)| session_is(s))
        }
    }
}

/// Kept free at the end of the invocation for the last read-back (as the handler keeps it).
const RESERVE: Duration = Duration::from_secs(8);

/// The pivot event in a payload, answered; `None` when the payload is not a CloudTrail event.
/// `known`: who the function runs as, when learnt at start-up.
pub async fn on_payload<C>(
    cloud: &C,
    config: &Config,
    known: Option<&Responder>,
    payload: &serde_json::Value,
    deadline: SystemTime,
) -> Result<Option<Answer>, Error>
where
    C: Home + ActivityLog,
    C::Member: ActivityLog,
{
    let Some(call) = crate::trigger::api_call(payload)
        .inspect_err(|e| warn!(error = %e, kind = e.kind(), "rejected input"))?
    else {
        return Ok(None);
    };
    let me = match known {
        Some(r) => r.clone(),
        None => {
            let (account, arn) = cloud.caller().await?;
            Responder::from_arn(account, &arn)
        }
    };
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(RESERVE + config.verify_delay);
    answer(cloud, config, &me, Instant::now() + left, &call)
        .await
        .map(Some)
}

/// One pivot event as the trigger function answers it (never the manual function): an error
/// when containment it re-applied, or a pivot it followed, does not hold, so Lambda retries and
/// the errors alarm pages.
pub async fn answer<C>(
    cloud: &C,
    config: &Config,
    responder: &Responder,
    investigation_deadline: Instant,
    call: &ApiCallEvent,
) -> Result<Answer, Error>
where
    C: Home + ActivityLog,
    C::Member: ActivityLog,
{
    config.accepts.check(false)?;
    let pacer = Pacer::new();
    let ctx = Context {
        config,
        responder,
        now: Utc::now(),
        investigation_deadline,
        force_dry_run: false,
        hand_off: false,
        operator: None,
        pacer: &pacer,
    };
    let answer = respond(cloud, call, &ctx).await;
    if answer.failed() {
        return Err(Error::ContainmentFailed(format!(
            "pivot event {} {}: containment does not hold",
            answer.event_name, answer.event_id
        )));
    }
    Ok(answer)
}

/// Answers one pivot event. Never writes anything for a signer that is not under containment.
pub async fn respond<C>(cloud: &C, call: &ApiCallEvent, ctx: &Context<'_>) -> Answer
where
    C: Home + ActivityLog,
    C::Member: ActivityLog,
{
    let not = |reason: String| Answer::new(call, Outcome::NotUnderContainment { reason });
    if call.account != ctx.responder.account {
        return not(format!(
            "the call was made in account {}, not this function's ({}): its containment lives there",
            call.account, ctx.responder.account
        ));
    }
    let records = Records::new(cloud, ctx.config);
    if !records.enabled {
        return not(
            "no incident table (KILLSWITCH_INCIDENT_TABLE): nothing records what is under containment"
                .into(),
        );
    }
    let Some(under) = under_containment(cloud, &records, call).await else {
        info!(event = %call.event_name, key = %call.signer.key, "pivot event: signer not under containment");
        return not(format!(
            "{} ({} {}) is not under containment in this generation: nothing changed",
            call.signer.key,
            defang(&call.signer.kind),
            defang(call.signer.name.as_deref().unwrap_or("-"))
        ));
    };
    let mut answer = Answer::new(call, reapply(cloud, &records, &under, call, ctx).await);
    answer.incident_key = Some(under.key.to_string());
    follow(cloud, &under, call, ctx, &mut answer).await;
    notify(cloud, &records, &under, call, &mut answer).await;
    info!(answer = %serde_json::to_string(&answer).unwrap_or_default(), "pivot event");
    answer
}

/// The recorded containment the signer is under, if any: its own key's record, or (an IAM
/// user's other key or session) the record of a key IAM lists for that user.
async fn under_containment<C: Home>(
    cloud: &C,
    records: &Records<'_, C>,
    call: &ApiCallEvent,
) -> Option<UnderContainment> {
    let signer = &call.signer;
    let mut candidates = vec![signer.key.clone()];
    if signer.kind == "IAMUser"
        && let Some(user) = &signer.name
    {
        match cloud.user_keys(user).await {
            Ok(keys) => candidates.extend(
                keys.into_iter()
                    .map(|k| k.id)
                    .filter(|k| *k != signer.key)
                    .take(2),
            ),
            Err(e) => {
                warn!(error = %e.chain(), "pivot event: the signer's keys could not be listed")
            }
        }
    }
    let loaded =
        futures::future::join_all(candidates.iter().map(|k| records.load(&call.account, k))).await;
    candidates
        .into_iter()
        .zip(loaded)
        .find_map(|(key, record)| {
            let record = record?;
            let applied = record
                .applied
                .clone()
                .filter(|a| record.untrusted.is_none() && a.generation == record.generation)
                .filter(|a| signed_by(&a.plan, signer))?;
            Some(UnderContainment {
                key,
                record,
                applied,
            })
        })
}

/// The decided containment read back at once, and written again where it was undone.
async fn reapply<C: Home>(
    cloud: &C,
    records: &Records<'_, C>,
    under: &UnderContainment,
    call: &ApiCallEvent,
    ctx: &Context<'_>,
) -> Outcome {
    let plan = &under.applied.plan;
    let phase = format!("on CloudTrail event {} {}", call.event_name, call.event_id);
    if ctx.config.dry_run || ctx.force_dry_run {
        let c = verify::check(cloud, &under.key, plan, &phase).await;
        return Outcome::DryRun { holds: c.holds };
    }
    let mut v = Verification::default();
    let (account, key, since) = (&call.account, &under.key, under.applied.at);
    let later = verify::later(cloud, key, plan, &phase, &mut v, |undone| async move {
        let r = records.load(account, key).await?;
        r.restored_since(since)
            .filter(|x| undone.explained_by(&x.actions))
            .map(|x| (x.by.clone(), x.reason.clone()))
    })
    .await;
    match later {
        verify::Later::Holds => Outcome::Holds,
        verify::Later::Reapplied { holds } => Outcome::Reapplied { holds },
        verify::Later::Restored { by, .. } => Outcome::Restored { by },
    }
}

/// Credentials the call created: those IAM confirms are followed like the investigation's
/// pivots; the rest are named for CloudTrail's own record to settle.
async fn follow<C>(
    cloud: &C,
    under: &UnderContainment,
    call: &ApiCallEvent,
    ctx: &Context<'_>,
    answer: &mut Answer,
) where
    C: Home + ActivityLog,
    C::Member: ActivityLog,
{
    let Some(pivot) = ApiCall::from_record(&call.record).and_then(|c| analysis::examine(&c).1)
    else {
        return;
    };
    let leaked_user = under.applied.plan.user();
    match confirm::confirm(cloud, &pivot, leaked_user, under.start(), call).await {
        Confirmed::Yes(note) => {
            info!(pivot = ?pivot.identity(), note = %note, "pivot event: confirmed by IAM");
            let incident = under.incident(call);
            let mut report = Report::new(&incident, dry_run(&incident, ctx), ctx.now);
            report.investigation = Investigation::Ran(Box::new(activity_of(pivot)));
            pivots::follow_pivots(
                cloud,
                Some(cloud),
                &incident,
                ctx,
                &mut report,
                Some(&under.applied.plan),
            )
            .await;
            if let Investigation::Ran(activity) = report.investigation {
                answer.pivots = activity.pivots;
            }
        }
        Confirmed::No(why) => answer.unconfirmed = Some(why),
    }
}

fn activity_of(pivot: Pivot) -> Activity {
    Activity {
        pivots: vec![PivotReport {
            pivot,
            contain_with: serde_json::Value::Null,
            activity: None,
            containment: None,
        }],
        ..Activity::default()
    }
}

/// One notice when the event changed something: the first re-apply of a generation (the
/// follow-through and the watch page the fight as a whole), and every pivot contained (each
/// once). Nothing for an event that found containment in place.
async fn notify<C: Home>(
    cloud: &C,
    records: &Records<'_, C>,
    under: &UnderContainment,
    call: &ApiCallEvent,
    answer: &mut Answer,
) {
    let reapplied = matches!(answer.outcome, Outcome::Reapplied { .. });
    let contained: Vec<String> = answer
        .pivots
        .iter()
        .filter(|p| p.containment.is_some())
        .map(|p| {
            p.pivot
                .access_key_id
                .clone()
                .unwrap_or_else(|| p.pivot.via.clone())
        })
        .collect();
    let mut claims = Vec::new();
    if reapplied {
        claims.push("pivot-event-reapplied".to_owned());
    }
    claims.extend(answer.pivots.iter().map(|p| {
        let (kind, id, owner) = p.pivot.identity();
        format!(
            "pivot-event:{kind:?}:{}:{}",
            id.unwrap_or("-"),
            owner.unwrap_or("-").to_ascii_lowercase()
        )
    }));
    let mut due = false;
    for claim in &claims {
        due |= records.claim(Some(&under.record), claim).await;
    }
    if !due {
        return;
    }
    let (subject, body) = words::notice(under, call, answer, &contained);
    match cloud.publish(&subject, &body).await {
        Ok(()) => answer.notice = Some(subject),
        Err(e) => warn!(error = %e.chain(), "pivot event: the notice could not be sent"),
    }
}
