//! Trigger payloads (GuardDuty via EventBridge, AWS Health `RISK` events, manual requests) become
//! [`Incident`]s here, and nowhere else; CloudTrail events of IAM and STS calls become
//! [`ApiCallEvent`]s ([`api_call`]), claims about a call that `playbook::tamper` weighs. Shapes: ../shared/AWS-FACTS.md §2.
//!
//! EventBridge delivers GuardDuty findings in camelCase; the PascalCase of `GetFindings` never
//! appears here. Sample findings are recognised before anything else so they can never reach a
//! write, and only by the finding's sample marker or its placeholder key ID: never by a user name
//! or principal ID, which the key's holder can choose.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

mod cloudtrail;
mod guardduty;
mod health;
mod job;
mod manual;
mod security_hub;
mod security_hub_v2;

pub use cloudtrail::{
    ApiCallEvent, CLOUDTRAIL_API_CALL, IAM_EVENT_NAMES, STS_EVENT_NAMES, Signer, Touched, api_call,
};
pub use health::CONSOLE_COMPROMISE_STEPS;
pub use job::{JOB_FIELD, Job, job};
pub use security_hub_v2::OCSF_ACCESS_KEY;

use guardduty::guardduty;
use health::health;
use manual::manual;
use security_hub::security_hub;
use security_hub_v2::security_hub_v2;

use crate::config::accepts::Accepts;
use crate::error::Error;
use crate::incident::{AccountId, Received, Trigger, truncate};

/// Larger inputs are refused before parsing; Lambda's own async limit is 1 MB.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// At most this many keys are acted on per event. Every producer sends one key per event (a
/// GuardDuty finding, a Security Hub finding, a Health event's `publicKey`), a few at most for a
/// Health event listing several affected entities; a payload naming more is refused whole as
/// bad input before any call. Refused rather than cut to the first ten: ten thousand keys in a
/// forged 1 MiB payload would otherwise cost ten thousand guard reads, and a refusal is loud
/// (a Lambda error, retried, then the failed-invocation queue and its alarm), so a real event
/// of that size is never silently half-handled.
pub const MAX_KEYS_PER_EVENT: usize = 10;

/// AWS Health's `RISK` event codes about credentials, all six routed by the template. The first
/// five name access keys and are contained; [`HEALTH_CONSOLE_COMPROMISE`] is answered without a
/// write (`trigger::health`).
pub const HEALTH_RISK_CODES: [&str; 6] = [
    "AWS_RISK_CREDENTIALS_EXPOSED",
    "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED",
    "AWS_RISK_CREDENTIALS_COMPROMISED",
    "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED",
    "AWS_RISK_IAM_QUARANTINE",
    HEALTH_CONSOLE_COMPROMISE,
];

/// The console-compromise code: AWS publishes no sample of it, so what it names is unknown.
pub const HEALTH_CONSOLE_COMPROMISE: &str = "AWS_RISK_ACCOUNT_CONSOLE_COMPROMISE";

/// How GuardDuty's sample placeholders begin (`GeneratedFindingAccessKeyId`).
const SAMPLE_PLACEHOLDER_PREFIX: &str = "GeneratedFinding";

/// A sample's placeholder access key ID. A real key ID (`AKIA…`/`ASIA…`) never starts this way,
/// so only the key ID is tested: a user name or principal ID with the prefix is the holder's
/// choice (it can rename its user) and never makes a finding a sample.
fn is_placeholder_key_id(key_id: &str) -> bool {
    key_id.starts_with(SAMPLE_PLACEHOLDER_PREFIX)
}

/// Parses raw bytes (the CLI's event file).
pub fn parse_bytes(raw: &[u8]) -> Result<Received, Error> {
    if raw.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::BadEvent(format!(
            "payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES}",
            raw.len()
        )));
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| Error::BadEvent(format!("payload is not valid JSON: {e}")))?;
    parse(value)
}

/// Parses a payload Lambda already decoded. The size limit holds here too: Lambda accepts
/// synchronous payloads up to 6 MB, and a flood of padded payloads must not cost more to read
/// than a real finding.
pub fn parse(value: Value) -> Result<Received, Error> {
    let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
    if size > MAX_PAYLOAD_BYTES {
        return Err(Error::BadEvent(format!(
            "payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )));
    }
    let Value::Object(map) = &value else {
        return Err(Error::BadEvent(
            "payload must be a JSON object (an EventBridge event or a manual request)".into(),
        ));
    };
    if map.contains_key("detail-type") {
        let event: EventBridgeEvent<Value> = serde_json::from_value(value)
            .map_err(|e| Error::BadEvent(format!("EventBridge envelope: {e}")))?;
        match (event.source.as_str(), event.detail_type.as_str()) {
            ("aws.guardduty", "GuardDuty Finding") => guardduty(event),
            ("aws.health", "AWS Health Event" | "AWS Health Abuse Event") => health(event),
            (
                "aws.securityhub",
                "Security Hub Findings - Imported" | "Security Hub Findings - Custom Action",
            ) => security_hub(event),
            ("aws.securityhub", "Findings Imported V2") => security_hub_v2(event),
            // Answered before this parser (`api_call`, the trigger function's pivot events): a
            // CloudTrail event names a call, never a key to contain on its own.
            ("aws.iam" | "aws.sts", CLOUDTRAIL_API_CALL) => Err(Error::BadEvent(
                "a CloudTrail API call event is not an incident: the trigger function answers it as a pivot event (playbook::tamper)".into(),
            )),
            (source, detail_type) => Err(Error::BadEvent(format!(
                "unsupported event: source {:?}, detail-type {:?}",
                truncate(source, 64),
                truncate(detail_type, 64)
            ))),
        }
    } else if map.contains_key("access_key_id") {
        manual(value)
    } else {
        Err(Error::BadEvent(
            "neither an EventBridge event (no \"detail-type\") nor a manual request (no \"access_key_id\")"
                .into(),
        ))
    }
}

/// The payload, if this function answers its kind (`KILLSWITCH_ACCEPTS`): checked before any
/// call, so a flood of the other kind costs this function nothing but the parse.
pub fn accepted(received: Received, accepts: Accepts) -> Result<Received, Error> {
    let manual = match &received {
        Received::Sample(_) | Received::Advisory(_) => false,
        Received::Incidents(list) => list
            .iter()
            .any(|i| matches!(i.trigger, Trigger::Manual { .. })),
    };
    accepts.check(manual)?;
    Ok(received)
}

/// A GuardDuty finding as `GetFindings` returned it (the EventBridge `detail` shape), through the
/// same parser as the payload.
pub fn guardduty_reread(detail: Value, region: &str) -> Result<Received, Error> {
    guardduty(reread_event(
        "aws.guardduty",
        "GuardDuty Finding",
        region,
        detail,
    )?)
}

fn reread_event(
    source: &str,
    detail_type: &str,
    region: &str,
    detail: Value,
) -> Result<EventBridgeEvent<Value>, Error> {
    serde_json::from_value(serde_json::json!({
        "version": "0",
        "detail-type": detail_type,
        "source": source,
        "region": region,
        "resources": [],
        "detail": detail,
    }))
    .map_err(|e| Error::BadEvent(format!("finding read back: {e}")))
}

/// Refuses an event naming more keys than [`MAX_KEYS_PER_EVENT`].
fn within_key_cap(keys: usize, what: &str) -> Result<(), Error> {
    if keys > MAX_KEYS_PER_EVENT {
        return Err(Error::BadEvent(format!(
            "{what} names {keys} access keys; at most {MAX_KEYS_PER_EVENT} are acted on per event (real events name one or a few), so nothing was changed: contain real keys one by one (killswitch respond)"
        )));
    }
    Ok(())
}

fn optional_account(raw: Option<&str>) -> Result<Option<AccountId>, Error> {
    Ok(raw.map(AccountId::parse).transpose()?)
}

/// IAM user and role names: `[\w+=,.@-]+`, bounded length.
fn iam_name(raw: &str, max: usize, what: &str) -> Result<String, Error> {
    let ok = !raw.is_empty()
        && raw.len() <= max
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Error::BadEvent(format!(
            "{what} {:?} is not a valid IAM name ([\\w+=,.@-]{{1,{max}}})",
            truncate(raw, 64)
        )))
    }
}

/// STS role session names: `[\w+=,.@-]{2,64}`.
pub(crate) fn is_session_name(raw: &str) -> bool {
    (2..=64).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// A role's unique ID: `AROA` and upper-case letters and digits.
pub(crate) fn is_role_id(raw: &str) -> bool {
    (16..=128).contains(&raw.len())
        && raw.starts_with("AROA")
        && raw
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}
