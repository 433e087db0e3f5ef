//! What the playbook needs from AWS, in domain words. `aws/` implements these with the SDK;
//! the tests implement them with a recording fake.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId};

mod identity_center;
mod organization;
mod root_access;

pub use identity_center::{Assignment, Directory, IdentityCenterAdmin, Instance};
pub use organization::{Organization, Scp, ServiceControlPolicies};
pub use root_access::{
    DELETE_ROOT_CREDENTIALS, ROOT_ACCESS_PERMISSIONS, ROOT_SESSION_CALLS, ROOT_SESSION_SECONDS,
    RootAccess, RootCredentials,
};

/// The entity an inline policy is written on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum PolicyTarget {
    User(String),
    Role(String),
}

impl std::fmt::Display for PolicyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyTarget::User(n) => write!(f, "user {n}"),
            PolicyTarget::Role(n) => write!(f, "role {n}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum KeyStatus {
    Active,
    Inactive,
    /// Any other status IAM reports (e.g. `Expired`): not usable either.
    Other,
}

/// What `GetAccessKeyLastUsed` says about a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    pub user_name: String,
    pub last_used: Option<DateTime<Utc>>,
    /// `None` when IAM says `N/A` (never used).
    pub region: Option<String>,
    pub service: Option<String>,
}

/// Result of `UpdateAccessKey`: a missing key is a state, not an error.
/// A credential of a user other than its access keys and password: a service-specific
/// credential (CodeCommit, Bedrock API key…), an SSH public key, a signing certificate or an MFA
/// device ([`MFA_DEVICE`]: `created` is when it was enabled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OtherCredential {
    pub kind: &'static str,
    pub id: String,
    pub active: bool,
    pub created: Option<DateTime<Utc>>,
}

pub const MFA_DEVICE: &str = "MFA device";

/// One access key of a user (`ListAccessKeys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: AccessKeyId,
    pub status: KeyStatus,
    pub created: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyChange {
    Deactivated,
    NotFound,
}

/// One CloudTrail management event, reduced to what the summary uses.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiCall {
    /// CloudTrail's `eventID`: what a later sweep compares against to find events that were
    /// not yet delivered on the first pass.
    pub event_id: Option<String>,
    pub time: DateTime<Utc>,
    pub event_name: String,
    pub event_source: String,
    pub region: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub read_only: Option<bool>,
    /// `requestParameters` and `responseElements` of the record, for the analysis.
    pub request_parameters: Option<serde_json::Value>,
    pub response_elements: Option<serde_json::Value>,
    /// Who signed the call (`userIdentity`): the key's real owner, whatever a request claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
}

/// A CloudTrail `userIdentity`, reduced to what tells whose key signed a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// `AssumedRole`, `IAMUser`, `FederatedUser`, `Root`, ...
    pub kind: String,
    /// The role (session issuer) of a session, or the IAM user.
    pub name: Option<String>,
    /// `AROA…:session-name` for a role session.
    pub principal_id: Option<String>,
}

impl Caller {
    fn from_identity(id: &serde_json::Value) -> Option<Self> {
        let text = |p: &str| {
            id.pointer(p)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let kind = text("/type")?;
        let name = match kind.as_str() {
            "AssumedRole" | "FederatedUser" => text("/sessionContext/sessionIssuer/userName"),
            _ => text("/userName"),
        };
        Some(Self {
            kind,
            name,
            principal_id: text("/principalId"),
        })
    }
}

impl ApiCall {
    /// Reads a CloudTrail record (the `CloudTrailEvent` string of `LookupEvents`, or a trail
    /// file entry). `None` when it lacks a time, name or source.
    pub fn from_record(record: &serde_json::Value) -> Option<Self> {
        let text = |k: &str| {
            record
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let present = |k: &str| record.get(k).filter(|v| !v.is_null()).cloned();
        Some(Self {
            event_id: text("eventID"),
            time: DateTime::parse_from_rfc3339(&text("eventTime")?)
                .ok()?
                .with_timezone(&Utc),
            event_name: text("eventName")?,
            event_source: text("eventSource")?,
            region: text("awsRegion").unwrap_or_default(),
            source_ip: text("sourceIPAddress"),
            user_agent: text("userAgent"),
            error_code: text("errorCode"),
            read_only: record
                .get("readOnly")
                .and_then(|v| v.as_bool().or_else(|| v.as_str().map(|s| s == "true"))),
            request_parameters: present("requestParameters"),
            response_elements: present("responseElements"),
            caller: record.get("userIdentity").and_then(Caller::from_identity),
        })
    }
}

/// One page of `LookupEvents`, newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivityPage {
    pub calls: Vec<ApiCall>,
    pub next_token: Option<String>,
}

/// Where a `LookupEvents` query starts and ends.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupQuery<'a> {
    pub region: &'a str,
    pub key: &'a AccessKeyId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub next_token: Option<String>,
}

#[allow(async_fn_in_trait)] // static dispatch only
pub trait Identity {
    /// `sts:GetCallerIdentity` (needs no permission): the account and ARN we act as.
    async fn caller(&self) -> Result<(AccountId, String), Error>;
    /// `sts:GetAccessKeyInfo`: the account that owns the key.
    async fn key_account(&self, key: &AccessKeyId) -> Result<AccountId, Error>;
    /// `iam:GetAccessKeyLastUsed`: owner and last use; `None` if IAM does not know the key.
    async fn key_usage(&self, key: &AccessKeyId) -> Result<Option<KeyUsage>, Error>;
    /// `iam:ListAccessKeys`: the key's status, `None` if the user does not hold it.
    async fn key_status(&self, user: &str, key: &AccessKeyId) -> Result<Option<KeyStatus>, Error>;
    /// `iam:UpdateAccessKey` to Inactive, with the explicit user name.
    async fn deactivate_key(&self, user: &str, key: &AccessKeyId) -> Result<KeyChange, Error>;
    /// `iam:GetUserPolicy` / `iam:GetRolePolicy`, URL-decoded; `None` if absent.
    async fn read_policy(&self, target: &PolicyTarget, name: &str)
    -> Result<Option<String>, Error>;
    /// `iam:PutUserPolicy` / `iam:PutRolePolicy`.
    async fn put_policy(
        &self,
        target: &PolicyTarget,
        name: &str,
        document: &str,
    ) -> Result<(), Error>;
    /// The role's unique ID (`AROA…`), `None` when the role does not exist.
    async fn role_id(&self, role: &str) -> Result<Option<String>, Error>;
    async fn attach_managed(&self, user: &str, policy_arn: &str) -> Result<(), Error>;
    async fn managed_policies(&self, user: &str) -> Result<Vec<String>, Error>;
    async fn user_keys(&self, user: &str) -> Result<Vec<KeyInfo>, Error>;
    /// When the user's console password was created, `None` when it has none.
    async fn login_profile(&self, user: &str) -> Result<Option<DateTime<Utc>>, Error>;
    /// `false` when there was no console password.
    async fn remove_login_profile(&self, user: &str) -> Result<bool, Error>;
    /// Service-specific credentials, SSH public keys, signing certificates and MFA devices.
    async fn other_credentials(&self, user: &str) -> Result<Vec<OtherCredential>, Error>;
    /// The ARN of the user's permissions boundary, if it has one.
    async fn permissions_boundary(&self, user: &str) -> Result<Option<String>, Error>;
    async fn put_boundary(&self, user: &str, policy_arn: &str) -> Result<(), Error>;
    /// `iam:GetPolicy` and `iam:GetPolicyVersion`: the managed policy's default version, URL
    /// decoded; `None` when the policy does not exist.
    async fn policy_default(&self, policy_arn: &str) -> Result<Option<PolicyVersion>, Error>;
    /// `iam:ListPolicyVersions`.
    async fn policy_versions(&self, policy_arn: &str) -> Result<Vec<VersionInfo>, Error>;
    /// `iam:CreatePolicyVersion` with `SetAsDefault`: the new version's ID.
    async fn create_policy_version(
        &self,
        policy_arn: &str,
        document: &str,
    ) -> Result<String, Error>;
    /// `iam:DeletePolicyVersion` (never the default one: IAM refuses it).
    async fn delete_policy_version(&self, policy_arn: &str, version: &str) -> Result<(), Error>;
    /// `iam:ListAttachedRolePolicies`: the ARNs of the role's managed policies.
    async fn role_managed_policies(&self, role: &str) -> Result<Vec<String>, Error>;
    /// `iam:CreatePolicy` of a customer-managed policy under `path`: its ARN.
    async fn create_managed(&self, path: &str, name: &str, doc: &str) -> Result<String, Error>;
    async fn attach_role_managed(&self, role: &str, policy_arn: &str) -> Result<(), Error>;
    /// `iam:ListRoles` under `/aws-reserved/sso.amazonaws.com/`: the permission sets' roles.
    async fn identity_center_roles(&self) -> Result<Vec<String>, Error>;
    /// `iam:TagUser` / `iam:TagRole`: one tag set (replaced when the key is there).
    async fn tag(&self, target: &PolicyTarget, key: &str, value: &str) -> Result<(), Error>;
    /// `iam:ListUserTags` / `iam:ListRoleTags`: the value of one tag, `None` when absent.
    async fn tag_value(&self, target: &PolicyTarget, key: &str) -> Result<Option<String>, Error>;
}

/// A managed policy's default version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version: String,
    pub document: String,
}

/// One version of a managed policy (`ListPolicyVersions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: String,
    pub default: bool,
    pub created: Option<DateTime<Utc>>,
}

#[allow(async_fn_in_trait)]
pub trait ActivityLog {
    /// One `cloudtrail:LookupEvents` call by `AccessKeyId` in one Region.
    async fn lookup_page(&self, query: LookupQuery<'_>) -> Result<ActivityPage, Error>;
    /// `account:ListRegions`: the Regions enabled for the account.
    async fn enabled_regions(&self) -> Result<Vec<String>, Error>;
}

/// Undo writes, for operators only (`killswitch restore`); never granted to the function. A
/// restore first reads CloudTrail for changes of the key's holder that IAM keeps no date for.
#[allow(async_fn_in_trait)]
pub trait Operator: ActivityLog {
    /// `iam:UpdateAccessKey` to Active.
    async fn reactivate_key(&self, user: &str, key: &AccessKeyId) -> Result<(), Error>;
    /// `iam:DeleteUserPolicy` / `iam:DeleteRolePolicy`.
    async fn delete_policy(&self, target: &PolicyTarget, name: &str) -> Result<(), Error>;
    async fn detach_managed(&self, user: &str, policy_arn: &str) -> Result<(), Error>;
    async fn delete_boundary(&self, user: &str) -> Result<(), Error>;
    async fn detach_role_managed(&self, role: &str, policy_arn: &str) -> Result<(), Error>;
    /// `iam:DeletePolicy` (its versions other than the default deleted first).
    async fn delete_managed_policy(&self, policy_arn: &str) -> Result<(), Error>;
    /// `iam:UntagUser` / `iam:UntagRole`.
    async fn untag(&self, target: &PolicyTarget, key: &str) -> Result<(), Error>;
}

/// An item of the incident table as a scan lists it: its ID, and when it was claimed (a claim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub claimed_at: Option<DateTime<Utc>>,
}

/// Per-incident state in a table of the responder's own stack, which the key's holder cannot
/// write (unlike tags on the principal). The playbook uses it only when a table is configured.
#[allow(async_fn_in_trait)]
pub trait IncidentStore {
    /// `dynamodb:GetItem`.
    async fn load_record(&self, id: &str) -> Result<Option<String>, Error>;
    /// `dynamodb:PutItem`.
    async fn save_record(&self, id: &str, record: &str) -> Result<(), Error>;
    /// `dynamodb:PutItem` if absent: `true` when this call took the claim, `false` when an
    /// earlier one holds it. Makes a once-only action (a notice) safe under duplicate deliveries.
    async fn claim(&self, id: &str) -> Result<bool, Error>;
    /// `dynamodb:DeleteItem`: gives a claim back when the action it guarded failed.
    async fn release(&self, id: &str) -> Result<(), Error>;
    /// `dynamodb:PutItem` if absent, expiring at `expires` (Unix seconds, the table's TTL):
    /// one `LookupEvents` slot, shared by every invocation that searches at once.
    async fn claim_slot(&self, id: &str, expires: i64) -> Result<bool, Error>;
    /// `dynamodb:Scan` (every page) of the IDs starting with `prefix`: the watchdog's read. A few
    /// items per incident: a scan stays small, where an index would cost every write.
    async fn scan(&self, prefix: &str) -> Result<Vec<Listed>, Error>;
    /// Whether records are sealed (a record key is configured).
    fn seals(&self) -> bool {
        false
    }
    /// `kms:GenerateMac` (HMAC_SHA_256) of a record's text with the record key
    /// (`KILLSWITCH_RECORD_KEY_ARN`), hex; `None` when no record key is configured.
    async fn seal(&self, _text: &str) -> Result<Option<String>, Error> {
        Ok(None)
    }
    /// `kms:VerifyMac` of a record's text against its seal; `None` when no record key is
    /// configured.
    async fn verify_seal(&self, _text: &str, _mac: &str) -> Result<Option<bool>, Error> {
        Ok(None)
    }
}

/// The durable queue the slow half of the response runs from (SQS, consumed by this function).
#[allow(async_fn_in_trait)]
pub trait FollowUpQueue {
    /// `sqs:SendMessage` with `DelaySeconds`.
    async fn hand_off(&self, body: &str, delay: std::time::Duration) -> Result<(), Error>;
}

#[allow(async_fn_in_trait)]
pub trait Notifier {
    /// `sns:Publish` to the configured topic.
    async fn publish(&self, subject: &str, body: &str) -> Result<(), Error>;

    /// `false` when there is no topic to publish to (the command line's `--no-notify`, or a dry
    /// run without `KILLSWITCH_TOPIC_ARN`): notices are printed, never sent.
    fn publishes(&self) -> bool {
        true
    }

    /// `sns:Publish` of the chat card (`report::chat`) to the chat topic, when one is set.
    async fn publish_chat(&self, _card: &str) -> Result<(), Error> {
        Ok(())
    }

    /// `false` without a chat topic (`KILLSWITCH_CHAT_TOPIC_ARN`).
    fn chats(&self) -> bool {
        false
    }
}

/// Security Hub's view of the incident. There is no way to suppress a finding here: killswitch
/// only ever moves it to NOTIFIED and adds notes.
#[allow(async_fn_in_trait)]
pub trait Findings {
    /// `securityhub:BatchUpdateFindings` in the finding's Region: workflow NOTIFIED when
    /// `notified`, and the note. `false` when Security Hub does not hold that finding
    /// (`UnprocessedFindings`: not enabled there, or not imported).
    async fn update_finding(
        &self,
        finding: &crate::incident::FindingRef,
        notified: bool,
        note: &str,
    ) -> Result<bool, Error>;
}

/// Credentials for another account of the organization, through its member role.
pub struct Entered<M> {
    pub clients: M,
    /// The assumed-role ARN, to recognise (and never touch) the member role.
    pub arn: String,
}

#[allow(async_fn_in_trait)]
pub trait Accounts {
    type Member: Identity + ActivityLog;
    /// `sts:AssumeRole` with the external ID the member role's trust policy demands.
    async fn enter(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
    ) -> Result<Entered<Self::Member>, Error>;
}

/// GuardDuty, where findings are raised, read back before a finding is believed: a payload
/// shaped like a finding is only a claim (anyone who may invoke the function can send one). The
/// finding comes back in the shape its EventBridge event carries, so one parser reads both.
#[allow(async_fn_in_trait)]
pub trait FindingSource {
    /// `guardduty:ListDetectors` in `region`: the detector this account has there, `None` when
    /// GuardDuty is not enabled there.
    async fn detector(&self, region: &str) -> Result<Option<String>, Error>;
    /// `guardduty:GetFindings` of one ID with that detector, in `region`: the finding as
    /// EventBridge's `detail` carries it (camelCase); `None` when the detector holds no such
    /// finding.
    async fn guardduty_finding(
        &self,
        region: &str,
        detector: &str,
        finding_id: &str,
    ) -> Result<Option<serde_json::Value>, Error>;
}
