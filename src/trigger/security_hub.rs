//! Security Hub (ASFF) imports of GuardDuty findings, PascalCase.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::incident::{
    AccessKeyId, AccountId, FindingRef, Incident, Received, SampleFinding, Trigger, truncate,
};

use super::guardduty::{AccessKeyDetails, guardduty_principal};
use super::{is_placeholder_key_id, optional_account, within_key_cap};

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
    workflow: Option<AsffWorkflow>,
    record_state: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffWorkflow {
    status: Option<String>,
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
/// placeholder key ID, like the native finding — never by a user or principal name.
pub(super) fn security_hub(event: EventBridgeEvent<Value>) -> Result<Received, Error> {
    let detail: SecurityHubDetail = serde_json::from_value(event.detail)
        .map_err(|e| Error::BadEvent(format!("Security Hub finding detail: {e}")))?;
    // Counted before anything is parsed or read back: each key would cost a read at GuardDuty.
    let keys = detail
        .findings
        .iter()
        .flat_map(|f| &f.resources)
        .filter(|r| r.kind == ACCESS_KEY_RESOURCE)
        .count();
    within_key_cap(keys, "Security Hub event")?;
    let mut incidents = Vec::new();
    let mut not_new = Vec::new();
    for f in detail.findings {
        // Only new, active findings: an update that resolves or suppresses a finding (after a
        // restore, say) must not contain the key again.
        if let Some(why) = not_new_and_active(&f) {
            not_new.push(why);
            continue;
        }
        if !f.product_arn.contains("/guardduty") {
            return Err(Error::BadEvent(format!(
                "Security Hub finding from {:?}; only GuardDuty findings are acted on",
                truncate(&f.product_arn, 128)
            )));
        }
        let finding_type = finding_type(&f);
        if is_sample(&f) {
            return Ok(Received::Sample(SampleFinding {
                finding_id: truncate(&f.id, 256),
                finding_type: truncate(&finding_type, 128),
                account: f.aws_account_id.or(event.account),
            }));
        }
        let account = optional_account(f.aws_account_id.as_deref().or(event.account.as_deref()))?;
        for r in f.resources.iter().filter(|r| r.kind == ACCESS_KEY_RESOURCE) {
            incidents.push(incident(&f, r, &finding_type, account.as_ref())?);
        }
    }
    if incidents.is_empty() && !not_new.is_empty() {
        return Err(Error::BadEvent(format!(
            "Security Hub finding(s) not NEW and ACTIVE, not acted on: {}",
            not_new.join(", ")
        )));
    }
    if incidents.is_empty() {
        return Err(Error::BadEvent(
            "Security Hub event has no AwsIamAccessKey resource".into(),
        ));
    }
    Ok(Received::Incidents(incidents))
}

/// Why a finding is not acted on, when it is not a new, active one.
fn not_new_and_active(f: &AsffFinding) -> Option<String> {
    let status = f.workflow.as_ref().and_then(|w| w.status.as_deref());
    if status == Some("NEW") && f.record_state.as_deref() == Some("ACTIVE") {
        return None;
    }
    Some(format!(
        "{} (workflow {}, record {})",
        truncate(&f.id, 128),
        truncate(status.unwrap_or("missing"), 16),
        truncate(f.record_state.as_deref().unwrap_or("missing"), 16)
    ))
}

/// GuardDuty's finding type from the ASFF type path (`…/UnauthorizedAccess:IAMUser-X` is
/// `UnauthorizedAccess:IAMUser/X`).
fn finding_type(f: &AsffFinding) -> String {
    f.types
        .first()
        .map(|t| t.rsplit('/').next().unwrap_or(t).replacen('-', "/", 1))
        .unwrap_or_default()
}

fn is_sample(f: &AsffFinding) -> bool {
    f.product_fields
        .iter()
        .any(|(k, v)| k.ends_with("additionalInfo/sample") && v.as_str() == Some("true"))
        || f.resources
            .iter()
            .filter(|r| r.kind == ACCESS_KEY_RESOURCE)
            .any(|r| is_placeholder_key_id(key_id_part(r)))
}

const ACCESS_KEY_RESOURCE: &str = "AwsIamAccessKey";

/// The key ID of an access key resource: its `Id` is `AWS::IAM::AccessKey:<key ID>`. Only this
/// part is ever tested for a placeholder; the resource's details (user, principal) never are.
fn key_id_part(r: &AsffResource) -> &str {
    r.id.rsplit_once("AWS::IAM::AccessKey:")
        .map(|(_, k)| k)
        .unwrap_or(&r.id)
}

/// The incident of one access key resource of a finding.
fn incident(
    f: &AsffFinding,
    r: &AsffResource,
    finding_type: &str,
    account: Option<&AccountId>,
) -> Result<Incident, Error> {
    let details = r.details.get("AwsIamAccessKey");
    let text = |k: &str| details.and_then(|d| d.get(k)).and_then(Value::as_str);
    let key = AccessKeyId::parse(key_id_part(r))?;
    let name = text("PrincipalName").or_else(|| text("UserName"));
    let principal = guardduty_principal(&AccessKeyDetails {
        access_key_id: Some(key.to_string()),
        principal_id: text("PrincipalId").map(str::to_owned),
        user_name: name.map(str::to_owned),
        user_type: text("PrincipalType").map(str::to_owned),
    })?;
    Ok(Incident {
        id: format!(
            "securityhub:{}:{}",
            truncate(&f.id, 256),
            truncate(f.updated_at.as_deref().unwrap_or(""), 40)
        ),
        trigger: Trigger::GuardDuty {
            finding_id: truncate(&f.id, 256),
            finding_type: truncate(finding_type, 128),
            severity: None,
            count: None,
            updated_at: f.updated_at.as_deref().map(|u| truncate(u, 40)),
            region: f.region.as_deref().map(|r| truncate(r, 32)),
            remote_ip: None,
            custom: super::guardduty::custom_reason(finding_type, None),
        },
        key,
        principal,
        account: account.cloned(),
        dry_run: false,
        first_seen: None,
        finding: FindingRef::from_asff(
            &f.id,
            &f.product_arn,
            f.region.as_deref(),
            account.map(AccountId::as_str),
        ),
        source: None,
    })
}
