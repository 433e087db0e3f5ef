//! The one place that knows Lambda: the runtime loop, the response shape, errors as `Diagnostic`.
//! `handle` is shared with the CLI so both modes run the same playbook.
//!
//! A trigger (GuardDuty, Health, Security Hub, manual) runs the contain phase and hands the
//! follow-through to the queue; a batch from that queue (an SQS event) runs the follow-through.

use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::Utc;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::{Config, queue_arn};
use crate::error::Error;
use crate::incident::{Incident, Received};
use crate::pacing::Pacer;
use crate::playbook::contain::{Contained, Home};
use crate::playbook::follow::Origin;
use crate::playbook::guard::Reads;
use crate::playbook::handoff::Message;
use crate::playbook::{self, Context, Responder, guard, handoff, sweep};
use crate::ports::ActivityLog;
use crate::record::Records;
use crate::report::Notification;
use crate::report::Report;
use crate::trigger;
use crate::vocab::Arn;

/// Kept free at the end of an invocation for verification's last read and the SNS publish.
pub const NOTIFY_RESERVE: Duration = Duration::from_secs(8);

mod logs;

pub use logs::{init_tracing, init_tracing_at, init_tracing_cli};

/// Everything built once per process (Lambda init or CLI start).
pub struct App<C> {
    pub cloud: C,
    pub config: Config,
    /// Learnt at Lambda init; on the command line it is learnt in the guard's first wave.
    pub responder: Option<Responder>,
}

/// Whether the follow-through runs in this process or from the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phases {
    /// Contain, then follow through in the same process (the command line, or no queue).
    Both,
    /// Contain, then hand the follow-through to `KILLSWITCH_FOLLOW_UP_QUEUE_URL`.
    HandOff,
}

/// What one invocation returns: one report per key in the trigger.
#[derive(Debug, Serialize)]
pub struct Response {
    pub reports: Vec<Report>,
    /// The final reports of the sweeps this process ran itself (the command line).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<Report>,
}

impl Response {
    /// The error Lambda (or the CLI's exit code) must reflect, if any.
    pub fn error(&self) -> Option<Error> {
        playbook::outcome_error(&self.reports).or_else(|| playbook::outcome_error(&self.sweeps))
    }

    /// The sweeps this process promised to run itself.
    pub fn pending_sweeps(&self) -> Vec<sweep::Sweep> {
        self.reports
            .iter()
            .filter_map(|r| r.pending_sweep.as_deref().cloned())
            .collect()
    }
}

/// Waits for this process's sweeps and runs them (the command line without a queue), adding
/// their final reports to the response.
pub async fn run_pending_sweeps<C>(app: &App<C>, response: &mut Response)
where
    C: Cloud,
    C::Member: ActivityLog,
{
    let pending = response.pending_sweeps();
    if pending.is_empty() {
        return;
    }
    let me = match responder(app).await {
        Ok(me) => me,
        Err(e) => {
            error!(error = %e.chain(), "sweep: could not learn who we are");
            return;
        }
    };
    let pacer = Pacer::new();
    let reports = futures::future::join_all(pending.into_iter().map(|s| {
        let (me, pacer) = (&me, &pacer);
        async move {
            if let Ok(wait) = (s.due_at - Utc::now()).to_std() {
                tokio::time::sleep(wait).await;
            }
            let ctx = Context {
                config: &app.config,
                responder: me,
                now: Utc::now(),
                investigation_deadline: Instant::now() + app.config.investigation_budget,
                force_dry_run: false,
                hand_off: false,
                operator: app.responder.is_none().then_some(me.arn.as_str()),
                pacer,
            };
            sweep::run(&app.cloud, s, &ctx, sweep::Origin::Inline).await
        }
    }))
    .await;
    for r in reports {
        match r {
            Ok(Some(report)) => response.sweeps.push(report),
            Ok(None) => {}
            Err(e) => error!(error = %e.chain(), "sweep not run"),
        }
    }
}

/// What a cloud must offer for the whole response.
pub trait Cloud: Home + ActivityLog {}
impl<T: Home + ActivityLog> Cloud for T where T::Member: ActivityLog {}

fn investigation_deadline(config: &Config, deadline: SystemTime) -> Instant {
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(NOTIFY_RESERVE + config.verify_delay);
    Instant::now() + remaining
}

/// Parses a trigger and responds to every incident in it: all are contained (concurrently)
/// before any follow-through starts.
pub async fn handle<C>(
    app: &App<C>,
    payload: Value,
    deadline: SystemTime,
    force_dry_run: bool,
    phases: Phases,
) -> Result<Response, Error>
where
    C: Cloud,
    C::Member: ActivityLog,
{
    let received = trigger::parse(payload)
        .and_then(|r| trigger::accepted(r, app.config.accepts))
        .inspect_err(|e| error!(error = %e, kind = e.kind(), "rejected input"))?;
    let now = Utc::now();
    let incidents = match received {
        Received::Sample(sample) => {
            return Ok(Response {
                reports: vec![playbook::respond_to_sample(&app.cloud, &sample, now).await],
                sweeps: Vec::new(),
            });
        }
        Received::Advisory(advisory) => {
            return Ok(Response {
                reports: vec![playbook::respond_to_advisory(&app.cloud, &advisory, now).await],
                sweeps: Vec::new(),
            });
        }
        Received::Incidents(incidents) => incidents,
    };
    // Wave 1: every guard read of every incident, every finding read back at its source, and
    // our own identity if not known yet.
    let (me, reads, checks) = tokio::join!(
        responder(app),
        guard_reads(app, &incidents),
        playbook::source::check_all(&app.cloud, &incidents)
    );
    let me = me?;
    let incidents: Vec<Incident> = incidents
        .into_iter()
        .zip(checks)
        .map(|(i, c)| playbook::source::settle(i, c))
        .collect();
    let pacer = Pacer::new();
    let ctx = Context {
        config: &app.config,
        responder: &me,
        now,
        investigation_deadline: investigation_deadline(&app.config, deadline),
        force_dry_run,
        hand_off: phases == Phases::HandOff && app.config.follow_up_queue_url.is_some(),
        operator: app.responder.is_none().then_some(me.arn.as_str()),
        pacer: &pacer,
    };
    let contained =
        playbook::contain_delivery(&app.cloud, incidents.into_iter().zip(reads).collect(), &ctx)
            .await;
    Ok(Response {
        reports: follow_through_inline(app, contained, &ctx).await,
        sweeps: Vec::new(),
    })
}

/// Who this process acts as: learnt at Lambda init, or asked of STS now.
async fn responder<C>(app: &App<C>) -> Result<Responder, Error>
where
    C: Cloud,
    C::Member: ActivityLog,
{
    match &app.responder {
        Some(r) => Ok(r.clone()),
        None => app
            .cloud
            .caller()
            .await
            .map(|(account, arn)| Responder::from_arn(account, &arn)),
    }
}

/// The guard's reads of every incident, concurrently.
async fn guard_reads<C>(app: &App<C>, incidents: &[Incident]) -> Vec<Reads>
where
    C: Cloud,
    C::Member: ActivityLog,
{
    let known = app.responder.as_ref().map(|r| &r.account);
    futures::future::join_all(incidents.iter().map(|i| async {
        let records = Records::new(&app.cloud, &app.config);
        match known {
            // The record of a key of this account, in the same wave: it tells whether a
            // role cutoff in place is killswitch's own.
            Some(account) if records.enabled => {
                let (mut reads, record) = tokio::join!(
                    guard::read(&app.cloud, i, known, &app.config),
                    records.load(account, &i.key)
                );
                if reads
                    .account
                    .as_ref()
                    .is_some_and(|a| a.as_ref().ok() == Some(account))
                {
                    reads.record = Some(record);
                }
                reads
            }
            _ => guard::read(&app.cloud, i, known, &app.config).await,
        }
    }))
    .await
}

/// Whatever was not handed off (the command line, no queue, a failed hand-off) follows
/// through here, after every incident of the delivery is contained.
async fn follow_through_inline<C>(
    app: &App<C>,
    contained: Vec<Contained>,
    ctx: &Context<'_>,
) -> Vec<Report>
where
    C: Cloud,
    C::Member: ActivityLog,
{
    futures::future::join_all(contained.into_iter().map(|c| async {
        let Contained { report, follow_up } = c;
        match follow_up {
            Some(f) => {
                let how = f
                    .report
                    .follow_through
                    .clone()
                    .unwrap_or_else(|| "inline".into());
                match playbook::follow_through(&app.cloud, f, ctx, Origin::Inline).await {
                    Ok(mut full) => {
                        full.follow_through = Some(how);
                        full
                    }
                    // Inline follow-ups come from this very process: nothing to refuse.
                    Err(e) => {
                        let mut r = report;
                        r.follow_through = Some(format!("not run: {}", e.chain()));
                        r
                    }
                }
            }
            None => report,
        }
    }))
    .await
}

/// A batch from the follow-up queue: each message is one incident's follow-through. Messages
/// whose containment does not hold are reported as failures, so SQS delivers them again (and
/// after `maxReceiveCount`, to the dead-letter queue, which alarms).
pub async fn handle_follow_ups<C>(
    app: &App<C>,
    event: SqsEvent,
    deadline: SystemTime,
) -> Result<(SqsBatchResponse, Vec<Report>), Error>
where
    C: Cloud,
    C::Member: ActivityLog,
{
    let me = responder(app).await?;
    let expected = app
        .config
        .follow_up_queue_url
        .as_deref()
        .and_then(queue_arn);
    let pacer = Pacer::new();
    let ctx = Context {
        config: &app.config,
        responder: &me,
        now: Utc::now(),
        investigation_deadline: investigation_deadline(&app.config, deadline),
        force_dry_run: false,
        hand_off: false,
        operator: None,
        pacer: &pacer,
    };
    let (work, mut failures) = accept_messages(event, expected.as_deref());
    let ctx = &ctx;
    let results = futures::future::join_all(work.into_iter().map(|(id, body, m)| async move {
        let result = match m {
            Message::FollowUp(f) => {
                playbook::follow_through(&app.cloud, *f, ctx, Origin::Queue(&body))
                    .await
                    .map(Some)
            }
            Message::Sweep(s) => sweep::run(&app.cloud, *s, ctx, sweep::Origin::Queue(&body)).await,
        };
        (id, result)
    }))
    .await;
    let reports = judge(results, &mut failures);
    Ok((batch_response(failures), reports))
}

/// The batch's messages from our queue that parse, as (message ID, body, message); and the IDs
/// of those that do not parse, failed so that they reach the dead-letter queue.
fn accept_messages(
    event: SqsEvent,
    expected: Option<&str>,
) -> (Vec<(String, String, Message)>, Vec<String>) {
    let mut failures = Vec::new();
    let mut work = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        if !from_queue(expected, record.event_source_arn.as_deref()) {
            // Not ours: dropping it is right, retrying would not make it ours.
            warn!(message_id = %id, "message not from KILLSWITCH_FOLLOW_UP_QUEUE_URL: ignored");
            continue;
        }
        let body = record.body.unwrap_or_default();
        match handoff::parse_message(&body) {
            Ok(m) => work.push((id, body, m)),
            Err(e) => {
                // A poison message: fail it so it reaches the dead-letter queue and its alarm.
                error!(message_id = %id, error = %e, "unreadable follow-up message");
                failures.push(id);
            }
        }
    }
    (work, failures)
}

/// Whether a record came from the follow-up queue: its ARN ends in the `:ACCOUNT:NAME` the
/// queue's URL names.
fn from_queue(expected: Option<&str>, source_arn: Option<&str>) -> bool {
    match (expected, source_arn.and_then(Arn::parse)) {
        (Some(tail), Some(arn)) => format!(":{}:{}", arn.account, arn.resource) == tail,
        _ => false,
    }
}

/// The reports of the messages run, adding to `failures` the ID of each message SQS must
/// deliver again.
fn judge(
    results: Vec<(String, Result<Option<Report>, Error>)>,
    failures: &mut Vec<String>,
) -> Vec<Report> {
    let mut reports = Vec::new();
    for (id, result) in results {
        match result {
            // A sweep not due yet, queued again.
            Ok(None) => {}
            Ok(Some(report)) => {
                // Containment that does not hold, a notice that could not be sent, or a sweep
                // that could not be scheduled: SQS delivers the message again, and after three
                // tries to the dead-letter queue, which alarms.
                if report.containment_failed()
                    || matches!(report.notification, Notification::Failed { .. })
                    || report.sweep.as_ref().is_some_and(|s| !s.scheduled)
                {
                    failures.push(id);
                }
                reports.push(report);
            }
            Err(e) => {
                error!(message_id = %id, error = %e.chain(), "follow-up refused");
                failures.push(id);
            }
        }
    }
    reports
}

fn batch_response(failures: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// An SQS event, as Lambda's event source mapping delivers it.
fn as_sqs_event(payload: &Value) -> Option<SqsEvent> {
    let first = payload.get("Records")?.as_array()?.first()?;
    if first.get("eventSource").and_then(Value::as_str) != Some("aws:sqs") {
        return None;
    }
    serde_json::from_value(payload.clone()).ok()
}

/// Runs the Lambda runtime until the process is stopped.
pub async fn serve<C>(app: App<C>) -> Result<(), lambda_runtime::Error>
where
    C: Cloud,
    C::Member: ActivityLog,
{
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let caller = event.context.invoked_function_arn.clone();
        let deadline = event.context.deadline();
        info!(request_id = %event.context.request_id, function = %caller, "invocation");
        if let Some(job) = trigger::job(&event.payload)? {
            return playbook::jobs::run(&app.cloud, &app.config, job, &caller, Utc::now()).await;
        }
        let (me, ev) = (app.responder.as_ref(), &event.payload);
        let pivot = playbook::tamper::on_payload(&app.cloud, &app.config, me, ev, deadline);
        if let Some(answer) = pivot.await? {
            return Ok(serde_json::to_value(answer).unwrap_or_default());
        }
        if let Some(batch) = as_sqs_event(&event.payload) {
            let (response, reports) = handle_follow_ups(app, batch, deadline).await?;
            info!(reports = %serde_json::to_string(&reports).unwrap_or_default(), "follow-through");
            return Ok(serde_json::to_value(&response).unwrap_or_default());
        }
        let response = handle(app, event.payload, deadline, false, Phases::HandOff).await?;
        info!(report = %serde_json::to_string(&response).unwrap_or_default(), "response");
        match response.error() {
            Some(e) => Err(e),
            None => Ok(serde_json::to_value(&response).unwrap_or_default()),
        }
    }))
    .await
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.kind().to_owned(),
            error_message: e.chain(),
        }
    }
}
