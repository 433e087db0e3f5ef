//! Trigger payloads (GuardDuty via EventBridge, AWS Health `RISK` events, manual requests) become
//! [`Incident`]s here, and nowhere else. Shapes: ../shared/AWS-FACTS.md §2.
//!
//! EventBridge delivers GuardDuty findings in camelCase; the PascalCase of `GetFindings` never
//! appears here. Sample findings are recognised before anything else so they can never reach a
//! write.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::incident::{
    AccessKeyId, AccountId, Incident, Principal, Received, SampleFinding, Trigger, truncate,
};

/// Larger inputs are refused before parsing; Lambda's own async limit is 1 MB.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// The Health event codes that mean "this key is out there".
pub const HEALTH_RISK_CODES: [&str; 5] = [
    "AWS_RISK_CREDENTIALS_EXPOSED",
    "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED",
    "AWS_RISK_CREDENTIALS_COMPROMISED",
    "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED",
    "AWS_RISK_IAM_QUARANTINE",
];

const SAMPLE_PLACEHOLDER_PREFIX: &str = "GeneratedFinding";

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

/// Parses a payload Lambda already decoded.
pub fn parse(value: Value) -> Result<Received, Error> {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Finding {
    id: String,
    #[serde(rename = "type")]
    finding_type: String,
    account_id: Option<String>,
    region: Option<String>,
    severity: Option<f64>,
    updated_at: Option<String>,
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
struct AccessKeyDetails {
    access_key_id: Option<String>,
    principal_id: Option<String>,
    user_name: Option<String>,
    user_type: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FindingService {
    additional_info: Option<Value>,
    count: Option<u64>,
    action: Option<Value>,
    event_first_seen: Option<String>,
}

fn guardduty(event: EventBridgeEvent<Value>) -> Result<Received, Error> {
    let finding: Finding = serde_json::from_value(event.detail)
        .map_err(|e| Error::BadEvent(format!("GuardDuty finding detail: {e}")))?;
    let details = finding.resource.access_key_details.as_ref();
    let placeholder = details.is_some_and(|d| {
        [&d.access_key_id, &d.user_name, &d.principal_id]
            .iter()
            .any(|f| {
                f.as_deref()
                    .is_some_and(|v| v.starts_with(SAMPLE_PLACEHOLDER_PREFIX))
            })
    });
    if placeholder || is_sample_marker(finding.service.additional_info.as_ref()) {
        return Ok(Received::Sample(SampleFinding {
            finding_id: truncate(&finding.id, 128),
            finding_type: truncate(&finding.finding_type, 128),
            account: finding.account_id.or(event.account),
        }));
    }
    let resource_type = finding.resource.resource_type.as_deref().unwrap_or("");
    if resource_type != "AccessKey" {
        return Err(Error::BadEvent(format!(
            "GuardDuty finding {} has resourceType {:?}; only AccessKey findings are acted on",
            truncate(&finding.id, 64),
            truncate(resource_type, 32)
        )));
    }
    let details = details.ok_or_else(|| {
        Error::BadEvent("GuardDuty finding has no resource.accessKeyDetails".into())
    })?;
    let key = AccessKeyId::parse(details.access_key_id.as_deref().unwrap_or(""))?;
    let principal = guardduty_principal(details)?;
    let account = optional_account(finding.account_id.as_deref().or(event.account.as_deref()))?;
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
    Ok(Received::Incidents(vec![Incident {
        id: format!(
            "guardduty:{}:{}",
            truncate(&finding.id, 128),
            truncate(&version, 40)
        ),
        trigger: Trigger::GuardDuty {
            finding_id: truncate(&finding.id, 128),
            finding_type: truncate(&finding.finding_type, 128),
            severity: finding.severity,
            count: finding.service.count,
            updated_at: finding.updated_at.map(|s| truncate(&s, 40)),
            region: finding.region.or(event.region).map(|s| truncate(&s, 32)),
            remote_ip,
        },
        key,
        principal,
        account,
        dry_run: false,
        first_seen: finding
            .service
            .event_first_seen
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
    }]))
}

/// GuardDuty marks samples as `"sample": true` and/or `"value": "{\"sample\":true}"`.
fn is_sample_marker(info: Option<&Value>) -> bool {
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

fn guardduty_principal(d: &AccessKeyDetails) -> Result<Principal, Error> {
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
            let session = d
                .principal_id
                .as_deref()
                .and_then(|p| p.split_once(':'))
                .map(|(_, s)| s)
                .or(session_in_name)
                .map(|s| truncate(s, 64));
            Principal::AssumedRole {
                role_name: iam_name(role, 64, "role name")?,
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

fn health(event: EventBridgeEvent<Value>) -> Result<Received, Error> {
    let detail: HealthDetail = serde_json::from_value(event.detail)
        .map_err(|e| Error::BadEvent(format!("AWS Health event detail: {e}")))?;
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
    let meta = &detail.event_metadata;
    // Newest shape first: eventMetadata.publicKey, then affectedEntities, then resources.
    let candidates = meta
        .public_key
        .iter()
        .chain(
            detail
                .affected_entities
                .iter()
                .filter_map(|e| e.entity_value.as_ref()),
        )
        .chain(event.resources.iter().flatten());
    let mut keys: Vec<AccessKeyId> = Vec::new();
    for raw in candidates {
        if let Ok(key) = AccessKeyId::parse(raw.trim())
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(Error::BadEvent(format!(
            "AWS Health event {} names no access key ID (eventMetadata.publicKey, affectedEntities, resources)",
            truncate(&detail.event_arn, 128)
        )));
    }
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
    let event_arn = truncate(&detail.event_arn, 256);
    let backup_event = detail
        .backup_event
        .as_ref()
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"));
    let incidents = keys
        .into_iter()
        .map(|key| {
            // userName describes eventMetadata.publicKey; other keys are resolved through IAM.
            let principal = match (&meta_user, public_key) {
                (Some(user), Some(pk)) if pk == key.as_str() => Principal::IamUser {
                    user_name: user.clone(),
                },
                _ => Principal::Unresolved,
            };
            Incident {
                id: format!("health:{event_arn}:{key}"),
                trigger: Trigger::Health {
                    event_arn: event_arn.clone(),
                    event_type_code: detail.event_type_code.clone(),
                    start_time,
                    exposed_url: meta.exposed_url.as_deref().map(|u| truncate(u, 256)),
                    backup_event,
                },
                key,
                principal,
                account: account.clone(),
                dry_run: false,
                first_seen: start_time,
            }
        })
        .collect();
    Ok(Received::Incidents(incidents))
}

/// Security Hub's envelope: ASFF findings, PascalCase (not GuardDuty's EventBridge camelCase).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecurityHubDetail {
    findings: Vec<AsffFinding>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffFinding {
    id: String,
    product_arn: String,
    aws_account_id: Option<String>,
    region: Option<String>,
    #[serde(default)]
    types: Vec<String>,
    updated_at: Option<String>,
    #[serde(default)]
    product_fields: serde_json::Map<String, Value>,
    #[serde(default)]
    resources: Vec<AsffResource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffResource {
    #[serde(rename = "Type")]
    kind: String,
    id: String,
    #[serde(default)]
    details: Value,
}

/// Security Hub findings imported from GuardDuty (optional trigger). Only GuardDuty's product
/// is acted on; its samples are recognised by the flattened `additionalInfo/sample` field or the
/// placeholders, like the native finding.
fn security_hub(event: EventBridgeEvent<Value>) -> Result<Received, Error> {
    let detail: SecurityHubDetail = serde_json::from_value(event.detail)
        .map_err(|e| Error::BadEvent(format!("Security Hub finding detail: {e}")))?;
    let mut incidents = Vec::new();
    for f in detail.findings {
        if !f.product_arn.contains("/guardduty") {
            return Err(Error::BadEvent(format!(
                "Security Hub finding from {:?}; only GuardDuty findings are acted on",
                truncate(&f.product_arn, 128)
            )));
        }
        let finding_type = f
            .types
            .first()
            .map(|t| t.rsplit('/').next().unwrap_or(t).replacen('-', "/", 1))
            .unwrap_or_default();
        let sample = f
            .product_fields
            .iter()
            .any(|(k, v)| k.ends_with("additionalInfo/sample") && v.as_str() == Some("true"))
            || f.resources
                .iter()
                .any(|r| r.id.contains(SAMPLE_PLACEHOLDER_PREFIX));
        if sample {
            return Ok(Received::Sample(SampleFinding {
                finding_id: truncate(&f.id, 256),
                finding_type: truncate(&finding_type, 128),
                account: f.aws_account_id.or(event.account),
            }));
        }
        let account = optional_account(f.aws_account_id.as_deref().or(event.account.as_deref()))?;
        for r in f.resources.iter().filter(|r| r.kind == "AwsIamAccessKey") {
            let details = r.details.get("AwsIamAccessKey");
            let text = |k: &str| details.and_then(|d| d.get(k)).and_then(Value::as_str);
            let raw_key =
                r.id.rsplit_once("AWS::IAM::AccessKey:")
                    .map(|(_, k)| k)
                    .unwrap_or(&r.id);
            let key = AccessKeyId::parse(raw_key)?;
            let name = text("PrincipalName").or_else(|| text("UserName"));
            let principal = guardduty_principal(&AccessKeyDetails {
                access_key_id: Some(key.to_string()),
                principal_id: text("PrincipalId").map(str::to_owned),
                user_name: name.map(str::to_owned),
                user_type: text("PrincipalType").map(str::to_owned),
            })?;
            incidents.push(Incident {
                id: format!(
                    "securityhub:{}:{}",
                    truncate(&f.id, 256),
                    truncate(f.updated_at.as_deref().unwrap_or(""), 40)
                ),
                trigger: Trigger::GuardDuty {
                    finding_id: truncate(&f.id, 256),
                    finding_type: truncate(&finding_type, 128),
                    severity: None,
                    count: None,
                    updated_at: f.updated_at.as_deref().map(|u| truncate(u, 40)),
                    region: f.region.as_deref().map(|r| truncate(r, 32)),
                    remote_ip: None,
                },
                key,
                principal,
                account: account.clone(),
                dry_run: false,
                first_seen: None,
            });
        }
    }
    if incidents.is_empty() {
        return Err(Error::BadEvent(
            "Security Hub event has no AwsIamAccessKey resource".into(),
        ));
    }
    Ok(Received::Incidents(incidents))
}

/// The manual request, for the Lambda payload and `killswitch respond` alike.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualRequest {
    access_key_id: String,
    user_name: Option<String>,
    role_name: Option<String>,
    account_id: Option<String>,
    reason: String,
    requested_by: String,
    dry_run: Option<bool>,
    request_id: Option<String>,
}

fn manual(value: Value) -> Result<Received, Error> {
    let req: ManualRequest = serde_json::from_value(value).map_err(|e| {
        Error::BadEvent(format!(
            "manual request: {e} (fields: access_key_id, reason, requested_by, optional user_name, role_name, account_id, dry_run, request_id)"
        ))
    })?;
    let key = AccessKeyId::parse(req.access_key_id.trim())?;
    let requested_by = req.requested_by.trim();
    let reason = req.reason.trim();
    if requested_by.is_empty() || reason.is_empty() {
        return Err(Error::BadEvent(
            "manual request: requested_by and reason must not be empty".into(),
        ));
    }
    let principal = match (req.user_name.as_deref(), req.role_name.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(Error::BadEvent(
                "manual request: give user_name or role_name, not both".into(),
            ));
        }
        (Some(user), None) => Principal::IamUser {
            user_name: iam_name(user, 128, "user_name")?,
        },
        (None, Some(role)) => Principal::AssumedRole {
            role_name: iam_name(role, 64, "role_name")?,
            session_name: None,
        },
        (None, None) => Principal::Unresolved,
    };
    let account = optional_account(req.account_id.as_deref())?;
    let request_id = req
        .request_id
        .map(|r| truncate(&r, 128))
        .unwrap_or_else(|| format!("{key}:{}", truncate(requested_by, 64)));
    Ok(Received::Incidents(vec![Incident {
        id: format!("manual:{request_id}"),
        trigger: Trigger::Manual {
            request_id,
            requested_by: truncate(requested_by, 128),
            reason: truncate(reason, 512),
        },
        key,
        principal,
        account,
        dry_run: req.dry_run.unwrap_or(false),
        first_seen: None,
    }]))
}

fn optional_account(raw: Option<&str>) -> Result<Option<AccountId>, Error> {
    raw.map(AccountId::parse).transpose()
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
