//! AWS Health `RISK` events, in both known shapes; every credential code is routed, the
//! console-compromise one refused with its manual steps.

use std::collections::HashSet;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::incident::{AccessKeyId, Advisory, Incident, Principal, Received, Trigger, truncate};

use super::{
    HEALTH_CONSOLE_COMPROMISE, HEALTH_RISK_CODES, iam_name, optional_account, within_key_cap,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthDetail {
    event_arn: String,
    service: Option<String>,
    event_type_code: String,
    start_time: Option<String>,
    #[serde(default)]
    event_metadata: HealthMetadata,
    #[serde(default)]
    affected_entities: Vec<AffectedEntity>,
    affected_account: Option<String>,
    backup_event: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct HealthMetadata {
    account_id: Option<String>,
    public_key: Option<String>,
    user_name: Option<String>,
    exposed_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AffectedEntity {
    entity_value: Option<String>,
}

pub(super) fn health(event: EventBridgeEvent<Value>) -> Result<Received, Error> {
    let detail: HealthDetail = serde_json::from_value(event.detail)
        .map_err(|e| Error::BadEvent(format!("AWS Health event detail: {e}")))?;
    check_credential_risk(&detail)?;
    if detail.event_type_code == HEALTH_CONSOLE_COMPROMISE {
        return Ok(Received::Advisory(console_compromise(
            &detail,
            event.account.as_deref(),
        )?));
    }
    let keys = exposed_keys(&detail, event.resources.iter().flatten())?;
    let meta = &detail.event_metadata;
    let account = optional_account(
        meta.account_id
            .as_deref()
            .or(detail.affected_account.as_deref())
            .or(event.account.as_deref()),
    )?;
    let meta_user = match meta.user_name.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => Some(iam_name(name, 128, "eventMetadata.userName")?),
        None => None,
    };
    let public_key = meta.public_key.as_deref().map(str::trim);
    let start_time = detail
        .start_time
        .as_deref()
        .and_then(|s| DateTime::parse_from_rfc2822(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let trigger = trigger(&detail, start_time);
    let incidents = keys
        .into_iter()
        .map(|key| {
            // userName describes eventMetadata.publicKey; other keys are resolved through IAM.
            // Only for a user's own key (AKIA), whose owner IAM confirms: a session key's owner
            // cannot be read from IAM, and a Health event is word only (it cannot be read back),
            // so a name next to a session key would deny whoever it names.
            let principal = match (&meta_user, public_key) {
                (Some(user), Some(pk))
                    if pk == key.as_str() && key.kind() == crate::incident::KeyKind::LongTerm =>
                {
                    Principal::IamUser {
                        user_name: user.clone(),
                    }
                }
                _ => Principal::Unresolved,
            };
            Incident {
                id: format!("health:{}:{key}", truncate(&detail.event_arn, 256)),
                trigger: trigger.clone(),
                key,
                principal,
                account: account.clone(),
                dry_run: false,
                first_seen: start_time,
                finding: None,
                source: None,
            }
        })
        .collect();
    Ok(Received::Incidents(incidents))
}

/// Only AWS Health's credential-risk events are acted on.
fn check_credential_risk(detail: &HealthDetail) -> Result<(), Error> {
    if let Some(service) = detail.service.as_deref().filter(|s| *s != "RISK") {
        return Err(Error::BadEvent(format!(
            "AWS Health event for service {:?}; only RISK events are acted on",
            truncate(service, 32)
        )));
    }
    if !HEALTH_RISK_CODES.contains(&detail.event_type_code.as_str()) {
        return Err(Error::BadEvent(format!(
            "AWS Health event type {:?} is not a credential-risk event",
            truncate(&detail.event_type_code, 64)
        )));
    }
    Ok(())
}

/// A console compromise is about a password, not a key, and AWS publishes no sample of the event:
/// what it names cannot be parsed with confidence, so it is never acted on: a notice with the
/// manual steps. Only the envelope's account is read (checked like any account ID).
fn console_compromise(detail: &HealthDetail, account: Option<&str>) -> Result<Advisory, Error> {
    let account = optional_account(detail.affected_account.as_deref().or(account))?;
    Ok(Advisory {
        id: truncate(&detail.event_arn, 256),
        event_type_code: HEALTH_CONSOLE_COMPROMISE.into(),
        account: account.map(|a| a.to_string()),
        summary: format!(
            "AWS Health {HEALTH_CONSOLE_COMPROMISE}: a console password, not an access key, so killswitch changed nothing"
        ),
        steps: CONSOLE_COMPROMISE_STEPS.into(),
    })
}

/// What a human does about a console compromise.
pub const CONSOLE_COMPROMISE_STEPS: &str = "Manual steps: open the event in the AWS Health Dashboard to see the affected user; remove its console password (aws iam delete-login-profile --user-name USER) and deactivate MFA devices you do not recognise; look up its ConsoleLogin events in CloudTrail (aws cloudtrail lookup-events --lookup-attributes AttributeKey=Username,AttributeValue=USER) and undo what the sessions changed; if it is the root user, reset the root password and MFA; answer the AWS Support case that came with the event.";

/// The exposed keys, each once, newest shape first: eventMetadata.publicKey, then
/// affectedEntities, then the event's resources.
fn exposed_keys<'a>(
    detail: &'a HealthDetail,
    resources: impl Iterator<Item = &'a String>,
) -> Result<Vec<AccessKeyId>, Error> {
    let candidates = detail
        .event_metadata
        .public_key
        .iter()
        .chain(
            detail
                .affected_entities
                .iter()
                .filter_map(|e| e.entity_value.as_ref()),
        )
        .chain(resources);
    // In first-seen order, each once; the set keeps a padded payload's thousands of entries
    // from costing a scan of the list each.
    let mut seen = HashSet::new();
    let keys: Vec<AccessKeyId> = candidates
        .filter_map(|raw| AccessKeyId::parse(raw.trim()).ok())
        .filter(|key| seen.insert(key.clone()))
        .collect();
    within_key_cap(keys.len(), "AWS Health event")?;
    if keys.is_empty() {
        return Err(Error::BadEvent(format!(
            "AWS Health event {} names no access key ID (eventMetadata.publicKey, affectedEntities, resources)",
            truncate(&detail.event_arn, 128)
        )));
    }
    Ok(keys)
}

/// What delivered the incidents: the same for every key of the event.
fn trigger(detail: &HealthDetail, start_time: Option<DateTime<Utc>>) -> Trigger {
    Trigger::Health {
        event_arn: truncate(&detail.event_arn, 256),
        event_type_code: detail.event_type_code.clone(),
        start_time,
        exposed_url: detail
            .event_metadata
            .exposed_url
            .as_deref()
            .map(|u| truncate(u, 256)),
        backup_event: detail
            .backup_event
            .as_ref()
            .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true")),
    }
}
