//! What the attacker did: classifies CloudTrail management events and extracts pivots (keys and
//! sessions the attacker minted). Pure and streaming: one event at a time, bounded memory.

mod categories;

pub use categories::categorize;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::incident::truncate;
use crate::ports::ApiCall;
use crate::vocab::Arn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Calls that disable or blind the response itself: this function, its rules, topic, queue
    /// and key, CloudTrail and GuardDuty. Listed first.
    AgainstResponse,
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
    pub const ALL: [Category; 5] = [
        Category::AgainstResponse,
        Category::Persistence,
        Category::CredentialMinting,
        Category::DefenceEvasion,
        Category::Impact,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Category::AgainstResponse => {
                "ATTACKS ON THE RESPONSE (detection, alerting, this function)"
            }
            Category::Persistence => "persistence",
            Category::CredentialMinting => "credential minting / pivots",
            Category::DefenceEvasion => "defence evasion",
            Category::Impact => "cost / impact",
        }
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
    /// `iam:CreateLoginProfile` / `UpdateLoginProfile`: a console password the attacker knows.
    LoginProfile,
    /// `iam:UpdateAssumeRolePolicy`: a trust policy that may now let the attacker in. Reported
    /// with the command to put the reviewed policy back, never reverted automatically.
    TrustPolicy,
    /// `iam:CreateServiceSpecificCredential`: a CodeCommit, Keyspaces or Bedrock credential.
    ServiceCredential,
}

impl PivotKind {
    /// Covered by the leaked key's own user deny: listed, never a reason to crowd others out.
    pub fn covered_by_user_deny(self) -> bool {
        self == PivotKind::UserSession
    }
}

/// Credentials the attacker minted, or access it opened, with the leaked key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pivot {
    pub kind: PivotKind,
    /// The minted key (access keys and sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The service-specific credential's ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    pub time: DateTime<Utc>,
    pub region: String,
    pub via: String,
    /// Owner user (access keys, login profiles, service credentials), role ARN (sessions) or
    /// role name (trust policies); `None` means the leaked key's own user.
    pub principal: Option<String>,
    pub role_session_name: Option<String>,
}

impl Pivot {
    /// What makes two pivots the same one.
    pub fn identity(&self) -> (PivotKind, Option<&str>, Option<&str>) {
        (
            self.kind,
            self.access_key_id
                .as_deref()
                .or(self.credential_id.as_deref()),
            self.principal.as_deref(),
        )
    }

    /// The account of a role session's role (`None` for other kinds or an unreadable ARN).
    pub fn role_account(&self) -> Option<&str> {
        (self.kind == PivotKind::RoleSession)
            .then(|| Arn::parse(self.principal.as_deref()?).map(|arn| arn.account))
            .flatten()
    }

    /// The role's name when the role lives in `account`.
    pub fn role_in(&self, account: &str) -> Option<String> {
        let arn = Arn::parse(self.principal.as_deref()?)?;
        (arn.service == "iam" && arn.account == account)
            .then(|| arn.of_type("role"))
            .flatten()
            .map(|_| arn.name().to_owned())
    }
}

/// Per-category caps keep memory bounded whatever the number of events; the most severe are kept.
pub const MAX_NOTABLE_PER_CATEGORY: usize = 25;
/// Sessions of the leaked key's own user (covered by its deny) listed; the rest are counted.
pub const MAX_COVERED_PIVOTS: usize = 20;
/// Pivots that need containment are all kept; this only bounds memory against an absurd flood.
pub const MAX_PIVOTS: usize = 1000;

/// How urgent a flagged call is: what a human must look at first when the list is cut.
pub fn severity(n: &Notable) -> u8 {
    let base = match n.category {
        Category::AgainstResponse => 40,
        Category::Persistence => 30,
        Category::DefenceEvasion => 30,
        Category::Impact => 20,
        Category::CredentialMinting => 10,
    };
    let grave = matches!(
        n.event_name.as_str(),
        "CreateAccessKey"
            | "CreateLoginProfile"
            | "UpdateLoginProfile"
            | "UpdateAssumeRolePolicy"
            | "CreateUser"
            | "AttachUserPolicy"
            | "AttachRolePolicy"
            | "PutUserPolicy"
            | "PutRolePolicy"
            | "DeleteUserPolicy"
            | "DeleteRolePolicy"
            | "StopLogging"
            | "DeleteTrail"
            | "DeleteDetector"
            | "DeleteFunction20150331"
            | "ScheduleKeyDeletion"
            | "AssumeRole"
            | "RunInstances"
    );
    let succeeded = n.error_code.is_none();
    base + if grave { 5 } else { 0 } + if succeeded { 3 } else { 0 }
}

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
    let text = |v: Option<&Value>, p: &str| {
        v.and_then(|v| v.pointer(p))
            .and_then(Value::as_str)
            // IAM ARNs and names reach 2,048 characters (role paths): cut shorter, a role name
            // read from the ARN would be made up.
            .map(|s| truncate(s, 2048))
    };
    let mut credential_id = None;
    let (kind, key, principal) = match call.event_name.as_str() {
        "CreateAccessKey" => (
            PivotKind::AccessKey,
            Some(text(
                call.response_elements.as_ref(),
                "/accessKey/accessKeyId",
            )?),
            text(call.response_elements.as_ref(), "/accessKey/userName")
                .or_else(|| text(req, "/userName")),
        ),
        "AssumeRole" | "AssumeRoleWithSAML" | "AssumeRoleWithWebIdentity" => (
            PivotKind::RoleSession,
            Some(text(
                call.response_elements.as_ref(),
                "/credentials/accessKeyId",
            )?),
            text(req, "/roleArn"),
        ),
        // A root session in a member account: no IAM policy can deny root, so it is listed for a
        // human (an SCP or the account's root credentials), never followed.
        "AssumeRoot" => (
            PivotKind::RoleSession,
            Some(text(
                call.response_elements.as_ref(),
                "/credentials/accessKeyId",
            )?),
            text(req, "/targetPrincipal").map(|t| format!("arn:aws:iam::{t}:root")),
        ),
        "GetSessionToken" | "GetFederationToken" => (
            PivotKind::UserSession,
            Some(text(
                call.response_elements.as_ref(),
                "/credentials/accessKeyId",
            )?),
            None,
        ),
        // Without a user name these act on the caller: the leaked key's own user, whose console
        // is already covered by its deny.
        "CreateLoginProfile" | "UpdateLoginProfile" => {
            (PivotKind::LoginProfile, None, Some(text(req, "/userName")?))
        }
        "UpdateAssumeRolePolicy" => (PivotKind::TrustPolicy, None, Some(text(req, "/roleName")?)),
        "CreateServiceSpecificCredential" => {
            credential_id = text(
                call.response_elements.as_ref(),
                "/serviceSpecificCredential/serviceSpecificCredentialId",
            );
            (
                PivotKind::ServiceCredential,
                None,
                text(
                    call.response_elements.as_ref(),
                    "/serviceSpecificCredential/userName",
                )
                .or_else(|| text(req, "/userName")),
            )
        }
        _ => return None,
    };
    if let Some(key) = &key {
        crate::incident::AccessKeyId::parse(key).ok()?;
    }
    Some(Pivot {
        kind,
        access_key_id: key,
        credential_id,
        time: call.time,
        region: call.region.clone(),
        via: call.event_name.clone(),
        principal,
        role_session_name: text(req, "/roleSessionName"),
    })
}

/// Longest value a notable's details keep (longer ones end in `...`).
pub const DETAIL_CHARS: usize = 120;

/// The few request/response fields that identify what a call touched.
fn details(call: &ApiCall) -> String {
    const FIELDS: [&str; 22] = [
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
        "topicArn",
        "subscriptionArn",
        "keyId",
        "queueUrl",
        "uUID",
        "eventBusName",
    ];
    let mut parts = Vec::new();
    if let Some(params @ Value::Object(req)) = &call.request_parameters {
        for f in FIELDS {
            if let Some(v) = req.get(f) {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                parts.push(format!("{f}={}", truncate(&v, DETAIL_CHARS)));
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
