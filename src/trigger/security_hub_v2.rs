//! Security Hub's `Findings Imported V2` events: GuardDuty findings in OCSF (snake_case), one
//! finding per event. Shapes: the Security Hub user guide's *EventBridge event formats* (the
//! envelope) and *OCSF findings in Security Hub* (the finding); the access key is a resource of
//! type `AWS::IAM::AccessKey` whose `uid` is the key ID, the principal the finding's evidence
//! actor (`evidences[].actor.user`, whose `credential_uid` is the key).
//!
//! The finding is read back at GuardDuty, where it was raised, like an ASFF import
//! (`playbook::source`): only findings whose `finding_info.uid` is GuardDuty's finding ARN are
//! accepted, so the read-back always has a finding to ask for.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::incident::{
    AccessKeyId, AccountId, FindingRef, Incident, Received, SampleFinding, Trigger, truncate,
};

use super::guardduty::{AccessKeyDetails, custom_reason, guardduty_principal};
use super::{is_placeholder_key_id, optional_account, within_key_cap};

/// The OCSF resource type of an IAM access key.
pub const OCSF_ACCESS_KEY: &str = "AWS::IAM::AccessKey";

/// OCSF `status_id` 1: New. Anything else (in progress, suppressed, resolved, archived) is a
/// finding someone already handled.
const STATUS_NEW: i64 = 1;
/// OCSF `activity_id` 3: Close.
const ACTIVITY_CLOSE: i64 = 3;

#[derive(Deserialize)]
struct V2Detail {
    findings: Vec<OcsfFinding>,
}

#[derive(Deserialize)]
struct OcsfFinding {
    activity_id: Option<i64>,
    status_id: Option<i64>,
    finding_info: FindingInfo,
    metadata: Metadata,
    cloud: Cloud,
    #[serde(default)]
    resources: Vec<OcsfResource>,
    #[serde(default)]
    evidences: Vec<Evidence>,
}

#[derive(Deserialize)]
struct FindingInfo {
    uid: String,
    #[serde(default)]
    types: Vec<String>,
    modified_time_dt: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    product: Product,
}

#[derive(Deserialize)]
struct Product {
    name: Option<String>,
    uid: Option<String>,
}

#[derive(Deserialize)]
struct Cloud {
    account: Option<CloudAccount>,
    region: Option<String>,
}

#[derive(Deserialize)]
struct CloudAccount {
    uid: Option<String>,
}

#[derive(Deserialize)]
struct OcsfResource {
    #[serde(rename = "type")]
    kind: String,
    uid: Option<String>,
}

#[derive(Deserialize)]
struct Evidence {
    actor: Option<Actor>,
}

#[derive(Deserialize)]
struct Actor {
    user: Option<ActorUser>,
}

#[derive(Deserialize)]
struct ActorUser {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    uid: Option<String>,
    credential_uid: Option<String>,
}

/// A `Findings Imported V2` event: GuardDuty's new, open findings about access keys only.
pub(super) fn security_hub_v2(event: EventBridgeEvent<Value>) -> Result<Received, Error> {
    let detail: V2Detail = serde_json::from_value(event.detail)
        .map_err(|e| Error::BadEvent(format!("Security Hub V2 (OCSF) finding detail: {e}")))?;
    let keys = detail
        .findings
        .iter()
        .flat_map(|f| &f.resources)
        .filter(|r| r.kind == OCSF_ACCESS_KEY)
        .count();
    within_key_cap(keys, "Security Hub V2 event")?;
    let mut incidents = Vec::new();
    let mut not_new = Vec::new();
    for f in &detail.findings {
        if let Some(why) = not_new_and_open(f) {
            not_new.push(why);
            continue;
        }
        check_guardduty(f)?;
        let finding_type = finding_type(f)?;
        let keys: Vec<&str> = f
            .resources
            .iter()
            .filter(|r| r.kind == OCSF_ACCESS_KEY)
            .map(|r| r.uid.as_deref().unwrap_or_default())
            .collect();
        if keys.iter().any(|k| is_placeholder_key_id(k)) {
            return Ok(Received::Sample(SampleFinding {
                finding_id: truncate(&f.finding_info.uid, 256),
                finding_type: truncate(&finding_type, 128),
                account: f.account().map(str::to_owned).or(event.account.clone()),
            }));
        }
        let account = optional_account(f.account().or(event.account.as_deref()))?;
        for key in keys {
            incidents.push(incident(f, key, &finding_type, account.as_ref())?);
        }
    }
    if incidents.is_empty() && !not_new.is_empty() {
        return Err(Error::BadEvent(format!(
            "Security Hub V2 finding(s) not new and open, not acted on: {}",
            not_new.join(", ")
        )));
    }
    if incidents.is_empty() {
        return Err(Error::BadEvent(format!(
            "Security Hub V2 event has no resource of type {OCSF_ACCESS_KEY}"
        )));
    }
    Ok(Received::Incidents(incidents))
}

impl OcsfFinding {
    fn account(&self) -> Option<&str> {
        self.cloud.account.as_ref().and_then(|a| a.uid.as_deref())
    }
}

/// Why a finding is not acted on, when it is not new (`status_id` 1) and open (not closed).
fn not_new_and_open(f: &OcsfFinding) -> Option<String> {
    if f.status_id == Some(STATUS_NEW) && f.activity_id.is_some_and(|a| a != ACTIVITY_CLOSE) {
        return None;
    }
    let shown = |v: Option<i64>| v.map_or_else(|| "missing".to_owned(), |v| v.to_string());
    Some(format!(
        "{} (status_id {}, activity_id {})",
        truncate(&f.finding_info.uid, 128),
        shown(f.status_id),
        shown(f.activity_id)
    ))
}

/// Only GuardDuty's findings, whose ID is GuardDuty's finding ARN (what is read back).
fn check_guardduty(f: &OcsfFinding) -> Result<(), Error> {
    let product = &f.metadata.product;
    let is_guardduty = product.name.as_deref() == Some("GuardDuty")
        || product
            .uid
            .as_deref()
            .is_some_and(|u| u.ends_with("/aws/guardduty"));
    if !is_guardduty {
        return Err(Error::BadEvent(format!(
            "Security Hub V2 finding from {:?}; only GuardDuty findings are acted on",
            truncate(
                product
                    .uid
                    .as_deref()
                    .or(product.name.as_deref())
                    .unwrap_or("an unnamed product"),
                128
            )
        )));
    }
    if !f.finding_info.uid.contains(":guardduty:") || !f.finding_info.uid.contains("/finding/") {
        return Err(Error::BadEvent(format!(
            "Security Hub V2 finding_info.uid {:?} is not GuardDuty's finding ARN, so it cannot be read back at GuardDuty",
            truncate(&f.finding_info.uid, 128)
        )));
    }
    Ok(())
}

/// GuardDuty's finding type from `finding_info.types`: either the type itself
/// (`UnauthorizedAccess:IAMUser/TorIPCaller`) or ASFF's path form
/// (`TTPs/…/UnauthorizedAccess:IAMUser-TorIPCaller`).
fn finding_type(f: &OcsfFinding) -> Result<String, Error> {
    let raw = f
        .finding_info
        .types
        .iter()
        .find(|t| t.contains(':'))
        .ok_or_else(|| {
            Error::BadEvent(format!(
                "Security Hub V2 finding {} has no GuardDuty type in finding_info.types",
                truncate(&f.finding_info.uid, 128)
            ))
        })?;
    let start = raw[..raw.find(':').unwrap_or(0)]
        .rfind('/')
        .map_or(0, |i| i + 1);
    let tail = &raw[start..];
    Ok(if tail.contains('/') {
        tail.to_owned()
    } else {
        tail.replacen('-', "/", 1)
    })
}

/// The evidence actor whose credential is the key: the principal GuardDuty named.
fn actor_of<'a>(f: &'a OcsfFinding, key: &str) -> Result<&'a ActorUser, Error> {
    f.evidences
        .iter()
        .filter_map(|e| e.actor.as_ref().and_then(|a| a.user.as_ref()))
        .find(|u| u.credential_uid.as_deref() == Some(key))
        .ok_or_else(|| {
            Error::BadEvent(format!(
                "Security Hub V2 finding {} names no actor for key {} (evidences[].actor.user.credential_uid)",
                truncate(&f.finding_info.uid, 128),
                truncate(key, 32)
            ))
        })
}

fn incident(
    f: &OcsfFinding,
    raw_key: &str,
    finding_type: &str,
    account: Option<&AccountId>,
) -> Result<Incident, Error> {
    let key = AccessKeyId::parse(raw_key)?;
    let user = actor_of(f, raw_key)?;
    let principal = guardduty_principal(&AccessKeyDetails {
        access_key_id: Some(key.to_string()),
        principal_id: user.uid.clone(),
        user_name: user.name.clone(),
        user_type: user.kind.clone(),
    })?;
    let uid = &f.finding_info.uid;
    let finding_id = uid.rsplit_once("/finding/").map_or("", |(_, id)| id);
    let updated_at = f.finding_info.modified_time_dt.as_deref();
    Ok(Incident {
        // An import's ID (`playbook::source` reads it back at GuardDuty by its ARN).
        id: format!(
            "securityhub:{}:{}",
            truncate(uid, 256),
            truncate(updated_at.unwrap_or(""), 40)
        ),
        trigger: Trigger::GuardDuty {
            finding_id: truncate(uid, 256),
            finding_type: truncate(finding_type, 128),
            severity: None,
            count: None,
            updated_at: updated_at.map(|u| truncate(u, 40)),
            region: f.cloud.region.as_deref().map(|r| truncate(r, 32)),
            remote_ip: None,
            custom: custom_reason(finding_type, None),
        },
        key,
        principal,
        account: account.cloned(),
        dry_run: false,
        first_seen: None,
        finding: FindingRef::for_guardduty(uid, finding_id, account.map(AccountId::as_str)),
        source: None,
    })
}
