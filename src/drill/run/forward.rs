//! Pivot events as EventBridge delivers them. On the local AWS, while the drill's handler runs,
//! the events its EventBridge double has delivered and the stack's rules would match are each
//! handed to the function's pivot-event entry (`playbook::tamper::on_payload`, as `serve` does),
//! concurrently, as separate invocations of the deployed function would run. On a real account
//! the deployed function's own rules deliver them to it: the drill does not forward them.

use std::time::{Duration, Instant, SystemTime};

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::aws::AwsClients;
use crate::aws::sandbox::local_eventbridge_events;
use crate::error::Error;
use crate::handler::App;
use crate::playbook::tamper::{self, Answer, Outcome};
use crate::trigger::{CLOUDTRAIL_API_CALL, IAM_EVENT_NAMES, STS_EVENT_NAMES};

/// How often the double is asked for newly delivered events.
const POLL: Duration = Duration::from_millis(100);
/// Each forwarded event's invocation, as the deployed function's timeout bounds it.
const INVOCATION: Duration = Duration::from_secs(120);

/// One forwarded event signed by a principal under containment, and its answer.
#[derive(Clone, Debug, Serialize)]
pub struct PivotEventAnswer {
    pub event_name: String,
    pub signed_by: String,
    /// When the drill received it from the double, from the trigger's delivery.
    pub delivered_ms: u64,
    /// When its invocation returned (a contained pivot's answer waits for its read-back).
    pub answered_ms: u64,
    /// `holds`, `reapplied`, `restored`..., or `error: ...` (Lambda would retry it).
    pub outcome: String,
    /// Credentials it minted that were contained, each with its status.
    pub contained: Vec<String>,
    /// What it claims that was not contained, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unconfirmed: Option<String>,
}

/// The pivot events of one scenario.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PivotEvents {
    /// Events the stack's rules would deliver, forwarded to the function.
    pub forwarded: u32,
    /// Those whose signer was under containment (the rest changed nothing).
    pub answered: Vec<PivotEventAnswer>,
}

/// The last event the double has delivered so far: forwarding starts after it.
pub(super) async fn cursor(endpoint: &str) -> Result<u64, Error> {
    let endpoint = endpoint.to_owned();
    let events = tokio::task::spawn_blocking(move || local_eventbridge_events(&endpoint, 0))
        .await
        .map_err(|e| Error::Usage(format!("the local EventBridge double: {e}")))??;
    Ok(events.last().map_or(0, |(seq, _)| *seq))
}

/// What the stack's rules match: a successful IAM write or STS call of the names the function
/// answers, signed with an access key (template.yaml's `pivot-iam` and `pivot-sts` rules).
fn matched(event: &Value) -> bool {
    let detail = &event["detail"];
    let name = detail["eventName"].as_str().unwrap_or_default();
    let named = match event["source"].as_str() {
        Some("aws.iam") => IAM_EVENT_NAMES.contains(&name),
        Some("aws.sts") => STS_EVENT_NAMES.contains(&name),
        _ => false,
    };
    named
        && event["detail-type"] == CLOUDTRAIL_API_CALL
        && detail.get("errorCode").is_none_or(Value::is_null)
        && detail["userIdentity"]["accessKeyId"].is_string()
}

fn ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Forwards every matched event delivered after `after` until `stop` fires (the full report
/// went out), then waits for the invocations under way.
pub(super) async fn forward(
    app: &App<AwsClients>,
    endpoint: &str,
    after: u64,
    t0: Instant,
    mut stop: oneshot::Receiver<()>,
) -> PivotEvents {
    let mut out = PivotEvents::default();
    let mut cursor = after;
    let mut inflight = FuturesUnordered::new();
    let mut stopped = false;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop, if !stopped => stopped = true,
            Some(answered) = inflight.next(), if !inflight.is_empty() => {
                if let Some(a) = answered {
                    out.answered.push(a);
                }
            }
            _ = tick.tick(), if !stopped => {
                let endpoint = endpoint.to_owned();
                let page = tokio::task::spawn_blocking(move || local_eventbridge_events(&endpoint, cursor)).await;
                let Ok(Ok(events)) = page else { continue };
                for (seq, event) in events {
                    cursor = cursor.max(seq);
                    if matched(&event) {
                        out.forwarded += 1;
                        inflight.push(invoke(app, event, t0));
                    }
                }
            }
            else => break,
        }
    }
    out.answered.sort_by_key(|a| a.delivered_ms);
    out
}

/// One event as its own invocation of the function; `None` when its signer was not under
/// containment (nothing read further, nothing written).
async fn invoke(app: &App<AwsClients>, event: Value, t0: Instant) -> Option<PivotEventAnswer> {
    let delivered_ms = ms(t0);
    let deadline = SystemTime::now() + INVOCATION;
    let me = app.responder.as_ref();
    let answered = tamper::on_payload(&app.cloud, &app.config, me, &event, deadline).await;
    let detail = &event["detail"];
    let text = |p: &str| detail.pointer(p).and_then(Value::as_str).unwrap_or("-");
    let mut a = PivotEventAnswer {
        event_name: text("/eventName").to_owned(),
        signed_by: text("/userIdentity/accessKeyId").to_owned(),
        delivered_ms,
        answered_ms: ms(t0),
        outcome: String::new(),
        contained: Vec::new(),
        unconfirmed: None,
    };
    match answered {
        Ok(Some(answer)) => {
            if let Outcome::NotUnderContainment { .. } = answer.outcome {
                return None;
            }
            describe(&answer, &mut a);
        }
        Ok(None) => return None,
        Err(e) => a.outcome = format!("error: {}", e.chain()),
    }
    Some(a)
}

fn describe(answer: &Answer, a: &mut PivotEventAnswer) {
    a.outcome = serde_json::to_value(&answer.outcome)
        .ok()
        .and_then(|v| v["outcome"].as_str().map(str::to_owned))
        .unwrap_or_default();
    a.contained = answer
        .pivots
        .iter()
        .filter_map(|p| {
            let c = p.containment.as_ref()?;
            let what = p.pivot.access_key_id.as_deref().unwrap_or(&p.pivot.via);
            Some(format!("{} {what}: {:?}", p.pivot.via, c.status))
        })
        .collect();
    a.unconfirmed.clone_from(&answer.unconfirmed);
}
