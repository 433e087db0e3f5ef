//! What the attacker did: classifies CloudTrail management events and extracts pivots (keys and
//! sessions the attacker minted). Pure and streaming: one event at a time, bounded memory.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::incident::truncate;
use crate::ports::ApiCall;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// New users, keys, login profiles, policies, roles, trust changes.
    Persistence,
    /// Temporary credentials and role hops.
    CredentialMinting,
    /// Blinding logging and detection, or removing our containment.
    DefenceEvasion,
    /// Spending money or exposing data: instances, functions, buckets, model invocations.
    Impact,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Persistence,
        Category::CredentialMinting,
        Category::DefenceEvasion,
        Category::Impact,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Category::Persistence => "persistence",
            Category::CredentialMinting => "credential minting / pivots",
            Category::DefenceEvasion => "defence evasion",
            Category::Impact => "cost / impact",
        }
    }
}

/// Classifies an event by source and name. Lambda's CloudTrail names carry an API version
/// suffix (`CreateFunction20150331`), so those match by prefix.
pub fn categorize(source: &str, name: &str) -> Option<Category> {
    let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    let is = |names: &[&str]| names.contains(&name);
    match service {
        "iam"
            if is(&[
                "CreateAccessKey",
                "CreateUser",
                "CreateLoginProfile",
                "UpdateLoginProfile",
                "AttachUserPolicy",
                "AttachRolePolicy",
                "AttachGroupPolicy",
                "PutUserPolicy",
                "PutRolePolicy",
                "PutGroupPolicy",
                "CreateRole",
                "UpdateAssumeRolePolicy",
                "CreatePolicyVersion",
                "SetDefaultPolicyVersion",
                "CreatePolicy",
                "AddUserToGroup",
                "UpdateAccessKey",
                "CreateVirtualMFADevice",
                "EnableMFADevice",
            ]) =>
        {
            Some(Category::Persistence)
        }
        "iam"
            if is(&[
                "DeleteUserPolicy",
                "DeleteRolePolicy",
                "DetachUserPolicy",
                "DetachRolePolicy",
            ]) =>
        {
            Some(Category::DefenceEvasion)
        }
        "sts"
            if is(&[
                "GetSessionToken",
                "GetFederationToken",
                "AssumeRole",
                "AssumeRoleWithSAML",
                "AssumeRoleWithWebIdentity",
                "AssumeRoot",
            ]) =>
        {
            Some(Category::CredentialMinting)
        }
        "cloudtrail"
            if is(&[
                "StopLogging",
                "DeleteTrail",
                "UpdateTrail",
                "PutEventSelectors",
                "PutInsightSelectors",
                "DeleteEventDataStore",
            ]) =>
        {
            Some(Category::DefenceEvasion)
        }
        "guardduty"
            if is(&[
                "DeleteDetector",
                "UpdateDetector",
                "DisassociateFromMasterAccount",
                "DisassociateFromAdministratorAccount",
                "DeleteMembers",
                "CreateIPSet",
                "UpdateIPSet",
                "CreateFilter",
                "UpdateFilter",
            ]) =>
        {
            Some(Category::DefenceEvasion)
        }
        "securityhub"
            if is(&[
                "DisableSecurityHub",
                "BatchDisableStandards",
                "DisableImportFindingsForProduct",
            ]) =>
        {
            Some(Category::DefenceEvasion)
        }
        "config"
            if is(&[
                "StopConfigurationRecorder",
                "DeleteConfigurationRecorder",
                "DeleteDeliveryChannel",
            ]) =>
        {
            Some(Category::DefenceEvasion)
        }
        "ec2" if is(&["DeleteFlowLogs"]) => Some(Category::DefenceEvasion),
        "logs" if is(&["DeleteLogGroup", "DeleteLogStream"]) => Some(Category::DefenceEvasion),
        "ec2"
            if is(&[
                "RunInstances",
                "RequestSpotInstances",
                "CreateFleet",
                "RequestSpotFleet",
            ]) =>
        {
            Some(Category::Impact)
        }
        "lambda"
            if name.starts_with("CreateFunction")
                || name.starts_with("UpdateFunctionCode")
                || name.starts_with("AddPermission") =>
        {
            Some(Category::Impact)
        }
        "s3" if is(&[
            "CreateBucket",
            "PutBucketPolicy",
            "PutBucketAcl",
            "DeleteBucket",
            "DeleteBucketPolicy",
            "PutBucketPublicAccessBlock",
            "DeleteBucketPublicAccessBlock",
            "PutBucketReplication",
        ]) =>
        {
            Some(Category::Impact)
        }
        "bedrock"
            if is(&[
                "InvokeModel",
                "InvokeModelWithResponseStream",
                "Converse",
                "ConverseStream",
                "PutUseCaseForModelAccess",
                "CreateFoundationModelAgreement",
            ]) =>
        {
            Some(Category::Impact)
        }
        "sagemaker"
            if is(&[
                "CreateNotebookInstance",
                "CreateTrainingJob",
                "CreateEndpoint",
            ]) =>
        {
            Some(Category::Impact)
        }
        _ => None,
    }
}

/// A flagged call, with the parameters an engineer needs to undo or chase it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notable {
    pub time: DateTime<Utc>,
    pub region: String,
    pub category: Category,
    pub event_source: String,
    pub event_name: String,
    pub error_code: Option<String>,
    pub details: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PivotKind {
    /// `iam:CreateAccessKey`: a long-term key the attacker holds.
    AccessKey,
    /// `sts:AssumeRole*`: a role session the attacker holds.
    RoleSession,
    /// `sts:GetSessionToken` / `GetFederationToken`: the user's deny policy already covers these.
    UserSession,
}

/// Credentials the attacker minted with the leaked key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pivot {
    pub kind: PivotKind,
    pub access_key_id: String,
    pub time: DateTime<Utc>,
    pub region: String,
    pub via: String,
    /// Owner user (access keys) or role ARN (sessions); `None` means the leaked key's own user.
    pub principal: Option<String>,
    pub role_session_name: Option<String>,
}

impl Pivot {
    /// The role's name when the role lives in `account`.
    pub fn role_in(&self, account: &str) -> Option<String> {
        let arn = self.principal.as_deref()?;
        let mut parts = arn.splitn(6, ':');
        let (_, _, service, _, acct, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        (service == "iam" && acct == account)
            .then(|| resource.strip_prefix("role/"))
            .flatten()
            .and_then(|r| r.rsplit('/').next())
            .map(str::to_owned)
    }
}

/// Per-category caps keep memory bounded whatever the number of events.
pub const MAX_NOTABLE_PER_CATEGORY: usize = 25;
pub const MAX_PIVOTS: usize = 20;

/// Extracts the notable facts of one call: its category and any credentials it minted.
pub fn examine(call: &ApiCall) -> (Option<Notable>, Option<Pivot>) {
    let Some(category) = categorize(&call.event_source, &call.event_name) else {
        return (None, None);
    };
    let notable = Notable {
        time: call.time,
        region: call.region.clone(),
        category,
        event_source: call.event_source.clone(),
        event_name: call.event_name.clone(),
        error_code: call.error_code.clone(),
        details: details(call),
    };
    let pivot = if call.error_code.is_none() {
        pivot(call)
    } else {
        None
    };
    (Some(notable), pivot)
}

fn pivot(call: &ApiCall) -> Option<Pivot> {
    let req = call.request_parameters.as_ref();
    let resp = call.response_elements.as_ref()?;
    let text = |v: Option<&Value>, p: &str| {
        v.and_then(|v| v.pointer(p))
            .and_then(Value::as_str)
            .map(|s| truncate(s, 256))
    };
    let (kind, key, principal) = match call.event_name.as_str() {
        "CreateAccessKey" => (
            PivotKind::AccessKey,
            text(Some(resp), "/accessKey/accessKeyId")?,
            text(Some(resp), "/accessKey/userName").or_else(|| text(req, "/userName")),
        ),
        "AssumeRole" | "AssumeRoleWithSAML" | "AssumeRoleWithWebIdentity" => (
            PivotKind::RoleSession,
            text(Some(resp), "/credentials/accessKeyId")?,
            text(req, "/roleArn"),
        ),
        "GetSessionToken" | "GetFederationToken" => (
            PivotKind::UserSession,
            text(Some(resp), "/credentials/accessKeyId")?,
            None,
        ),
        _ => return None,
    };
    crate::incident::AccessKeyId::parse(&key).ok()?;
    Some(Pivot {
        kind,
        access_key_id: key,
        time: call.time,
        region: call.region.clone(),
        via: call.event_name.clone(),
        principal,
        role_session_name: text(req, "/roleSessionName"),
    })
}

/// The few request/response fields that identify what a call touched.
fn details(call: &ApiCall) -> String {
    const FIELDS: [&str; 16] = [
        "userName",
        "roleName",
        "roleArn",
        "roleSessionName",
        "policyArn",
        "policyName",
        "groupName",
        "bucketName",
        "name",
        "trailName",
        "detectorId",
        "functionName",
        "modelId",
        "instanceType",
        "imageId",
        "durationSeconds",
    ];
    let mut parts = Vec::new();
    if let Some(params @ Value::Object(req)) = &call.request_parameters {
        for f in FIELDS {
            if let Some(v) = req.get(f) {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                parts.push(format!("{f}={}", truncate(&v, 120)));
            }
        }
        if let Some(n) = params
            .pointer("/instancesSet/items/0/maxCount")
            .or_else(|| req.get("maxCount"))
        {
            parts.push(format!("count={n}"));
        }
    }
    if let Some(resp) = &call.response_elements {
        for p in ["/accessKey/accessKeyId", "/credentials/accessKeyId"] {
            if let Some(k) = resp.pointer(p).and_then(Value::as_str) {
                parts.push(format!("newAccessKeyId={}", truncate(k, 32)));
            }
        }
    }
    parts.join(" ")
}
