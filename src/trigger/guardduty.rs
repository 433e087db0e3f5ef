//! GuardDuty findings as EventBridge delivers them (camelCase), samples recognised by their
//! marker or their placeholder key ID, never by a name. A finding names one access key
//! (`resource.accessKeyDetails`), or, an attack sequence, every credential of the sequence
//! (`attack_sequence`).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::incident::{
    AccessKeyId, AccountId, FindingRef, Incident, Principal, Received, SampleFinding, Trigger,
    truncate,
};

use super::{iam_name, is_placeholder_key_id, optional_account};

mod attack_sequence;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Finding {
    id: String,
    arn: Option<String>,
    #[serde(rename = "type")]
    finding_type: String,
    account_id: Option<String>,
    region: Option<String>,
    severity: Option<f64>,
    updated_at: Option<String>,
    /// Set when a customer's own detection rule raised the finding.
    custom_detection_rule_name: Option<String>,
    resource: FindingResource,
    #[serde(default)]
    service: FindingService,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FindingResource {
    resource_type: Option<String>,
    access_key_details: Option<AccessKeyDetails>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AccessKeyDetails {
    pub(super) access_key_id: Option<String>,
    pub(super) principal_id: Option<String>,
    pub(super) user_name: Option<String>,
    pub(super) user_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FindingService {
    additional_info: Option<Value>,
    count: Option<u64>,
    action: Option<Value>,
    event_first_seen: Option<String>,
    /// Extended Threat Detection's `sequence`, in an attack sequence finding.
    detection: Option<Value>,
}

pub(super) fn guardduty(event: EventBridgeEvent<Value>) -> Result<Received, Error> {
    let finding: Finding = serde_json::from_value(event.detail)
        .map_err(|e| Error::BadEvent(format!("GuardDuty finding detail: {e}")))?;
    let resource_type = finding.resource.resource_type.as_deref().unwrap_or("");
    // Only a key ID can be a placeholder: user names and principal IDs are the holder's to
    // choose (`iam:UpdateUser`), so they are never evidence of a sample.
    let placeholder = finding
        .resource
        .access_key_details
        .as_ref()
        .and_then(|d| d.access_key_id.as_deref())
        .is_some_and(is_placeholder_key_id)
        || (resource_type == attack_sequence::RESOURCE_TYPE
            && attack_sequence::names_placeholder(finding.service.detection.as_ref()));
    if placeholder || is_sample_marker(finding.service.additional_info.as_ref()) {
        return Ok(Received::Sample(SampleFinding {
            finding_id: truncate(&finding.id, 128),
            finding_type: truncate(&finding.finding_type, 128),
            account: finding.account_id.or(event.account),
        }));
    }
    let keys = match resource_type {
        "AccessKey" => vec![access_key(&finding)?],
        attack_sequence::RESOURCE_TYPE => attack_sequence::credentials(
            &finding.id,
            &finding.finding_type,
            finding.service.detection.as_ref(),
        )?,
        other => {
            return Err(Error::BadEvent(format!(
                "GuardDuty finding {} has resourceType {:?}; only AccessKey findings and {} attack sequences are acted on",
                truncate(&finding.id, 64),
                truncate(other, 32),
                attack_sequence::CREDENTIALS_TYPE
            )));
        }
    };
    let account = optional_account(finding.account_id.as_deref().or(event.account.as_deref()))?;
    let one_key = keys.len() == 1 && resource_type == "AccessKey";
    let region = finding.region.clone().or(event.region);
    Ok(Received::Incidents(
        keys.into_iter()
            .map(|(key, principal)| {
                // Several keys of one finding are several incidents, each with its own record.
                let suffix = (!one_key).then(|| key.to_string());
                incident(&finding, key, principal, &account, region.clone(), suffix)
            })
            .collect(),
    ))
}

/// The one key of an `AccessKey` finding, and its holder.
fn access_key(finding: &Finding) -> Result<(AccessKeyId, Principal), Error> {
    let details = finding
        .resource
        .access_key_details
        .as_ref()
        .ok_or_else(|| {
            Error::BadEvent("GuardDuty finding has no resource.accessKeyDetails".into())
        })?;
    let key = AccessKeyId::parse(details.access_key_id.as_deref().unwrap_or(""))?;
    Ok((key, guardduty_principal(details)?))
}

fn incident(
    finding: &Finding,
    key: AccessKeyId,
    principal: Principal,
    account: &Option<AccountId>,
    region: Option<String>,
    id_suffix: Option<String>,
) -> Incident {
    let remote_ip = finding
        .service
        .action
        .as_ref()
        .and_then(|a| a.pointer("/awsApiCallAction/remoteIpDetails/ipAddressV4"))
        .and_then(Value::as_str)
        .map(|s| truncate(s, 64));
    let version = finding
        .updated_at
        .clone()
        .or_else(|| finding.service.count.map(|c| c.to_string()))
        .unwrap_or_default();
    let mut id = format!(
        "guardduty:{}:{}",
        truncate(&finding.id, 128),
        truncate(&version, 40)
    );
    if let Some(suffix) = id_suffix {
        id = format!("{id}:{suffix}");
    }
    Incident {
        id,
        trigger: Trigger::GuardDuty {
            finding_id: truncate(&finding.id, 128),
            finding_type: truncate(&finding.finding_type, 128),
            severity: finding.severity,
            count: finding.service.count,
            updated_at: finding.updated_at.as_deref().map(|s| truncate(s, 40)),
            region: region.map(|s| truncate(&s, 32)),
            remote_ip,
            custom: custom_reason(
                &finding.finding_type,
                finding.custom_detection_rule_name.as_deref(),
            ),
        },
        key,
        principal,
        account: account.clone(),
        dry_run: false,
        first_seen: finding
            .service
            .event_first_seen
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        finding: finding.arn.as_deref().and_then(|arn| {
            FindingRef::for_guardduty(arn, &finding.id, account.as_ref().map(AccountId::as_str))
        }),
        source: None,
    }
}

/// Why a finding is one someone other than the key's holder can cause on purpose: a `…Custom`
/// type (a match on a threat list the account's own admins upload), a customer's detection rule,
/// or a guardrail's verdict on a prompt (`PromptInjection.Direct`).
pub(super) fn custom_reason(finding_type: &str, rule: Option<&str>) -> Option<String> {
    if let Some(rule) = rule.filter(|r| !r.is_empty()) {
        return Some(format!(
            "raised by the account's own detection rule {:?}",
            truncate(rule, 64)
        ));
    }
    if finding_type.ends_with(".Custom") {
        return Some(format!(
            "type {} matches a threat list the account's own admins upload",
            truncate(finding_type, 128)
        ));
    }
    // A guardrail's verdict on a prompt: whoever can send prompts through an application that
    // invokes models as this identity raises it at will, without holding the credential.
    (finding_type == PROMPT_INJECTION).then(|| {
        format!(
            "type {PROMPT_INJECTION}: a Bedrock guardrail's verdict on a prompt, which anyone who can send prompts to an application using this identity can draw"
        )
    })
}

/// AI Protection's finding on a prompt a guardrail caught (notify-only by default).
const PROMPT_INJECTION: &str = "Impact:IAMUser/PromptInjection.Direct";

/// GuardDuty marks samples as `"sample": true` and/or `"value": "{\"sample\":true}"`.
pub(super) fn is_sample_marker(info: Option<&Value>) -> bool {
    let Some(info) = info else { return false };
    let truthy = |v: &Value| v.as_bool() == Some(true) || v.as_str() == Some("true");
    if info.get("sample").is_some_and(truthy) {
        return true;
    }
    info.get("value")
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .is_some_and(|v| v.get("sample").is_some_and(truthy))
}

pub(super) fn guardduty_principal(d: &AccessKeyDetails) -> Result<Principal, Error> {
    let user_name = d.user_name.as_deref().filter(|s| !s.is_empty());
    Ok(match d.user_type.as_deref() {
        Some("IAMUser") => match user_name {
            Some(name) => Principal::IamUser {
                user_name: iam_name(name, 128, "userName")?,
            },
            None => Principal::Unresolved,
        },
        Some("AssumedRole") => {
            let raw = user_name.ok_or_else(|| {
                Error::BadEvent("AssumedRole finding without accessKeyDetails.userName".into())
            })?;
            // GuardDuty puts the role name here; some producers write "Role/Session".
            let (role, session_in_name) = match raw.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (raw, None),
            };
            let from_id = d.principal_id.as_deref().and_then(|p| p.split_once(':'));
            let session = from_id
                .map(|(_, s)| s)
                .or(session_in_name)
                .filter(|s| super::is_session_name(s))
                .map(str::to_owned);
            Principal::AssumedRole {
                role_name: iam_name(role, 64, "role name")?,
                role_id: from_id
                    .map(|(id, _)| id)
                    .filter(|id| super::is_role_id(id))
                    .map(str::to_owned),
                session_name: session,
            }
        }
        Some("Root") => Principal::Root,
        Some(other) => Principal::Other {
            user_type: truncate(other, 32),
        },
        None => Principal::Other {
            user_type: "unknown".into(),
        },
    })
}
