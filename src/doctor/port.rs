//! What `doctor` reads from AWS, in its own words: `aws::DoctorClients` reads it with the SDK, the
//! unit tests with a fake. Every read is read-only.

use std::collections::BTreeMap;

use crate::error::Error;

/// The function as Lambda runs it now (`lambda:GetFunctionConfiguration`), not as the template
/// declares it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Function {
    pub arn: String,
    /// The execution role's ARN.
    pub role_arn: String,
    /// `Active`, `Pending`, `Inactive` or `Failed`.
    pub state: Option<String>,
    /// `Successful`, `Failed` or `InProgress`.
    pub last_update: Option<String>,
    pub last_update_reason: Option<String>,
    /// The key that encrypts the environment (the member external ID lives there).
    pub kms_key_arn: Option<String>,
    pub environment: BTreeMap<String, String>,
    /// Why Lambda could not decrypt the environment for this caller, when it could not.
    pub environment_error: Option<String>,
}

/// An EventBridge rule and where it sends events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub enabled: bool,
    /// `ENABLED`, `DISABLED`, or what EventBridge says.
    pub state: String,
    pub event_pattern: Option<String>,
    /// The targets' ARNs.
    pub targets: Vec<String>,
}

/// A KMS key (`kms:DescribeKey`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Key {
    pub arn: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, …
    pub state: String,
}

/// An SNS topic (`sns:GetTopicAttributes`, `sns:ListSubscriptionsByTopic`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topic {
    /// `KmsMasterKeyId`: a key ID, ARN or alias.
    pub kms_key: Option<String>,
    pub subscriptions: Vec<Subscription>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
    /// SNS lists an unconfirmed one with `PendingConfirmation` for its ARN.
    pub confirmed: bool,
}

/// A GuardDuty detector of one Region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detector {
    pub id: String,
    pub enabled: bool,
}

/// A CloudTrail trail as its home Region reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trail {
    pub name: String,
    pub home_region: String,
    pub multi_region: bool,
    pub logging: bool,
    /// Which management events it logs (`cloudtrail:GetEventSelectors`); `None` when they
    /// could not be read.
    pub management: Option<ManagementEvents>,
}

/// The management events a trail's selectors include: the pivot rules need the writes (IAM)
/// and the reads (`sts:AssumeRole` is a read-only event).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ManagementEvents {
    pub writes: bool,
    pub reads: bool,
}

/// Actions simulated on one resource with the condition keys the code's calls carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    pub actions: Vec<&'static str>,
    pub resource: String,
    /// (condition key, value), each a single string.
    pub context: Vec<(&'static str, String)>,
}

/// `iam:SimulatePrincipalPolicy`'s answer for one action on one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: String,
    pub resource: String,
    pub decided: Decided,
    /// Condition keys the policies use that the probe did not supply.
    pub missing_context: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    Allowed,
    ImplicitDeny,
    ExplicitDeny,
}

impl Decided {
    pub fn as_str(self) -> &'static str {
        match self {
            Decided::Allowed => "allowed",
            Decided::ImplicitDeny => "implicitDeny",
            Decided::ExplicitDeny => "explicitDeny",
        }
    }
}

/// The reads, in the caller's account (or, through [`Preflight::enter`], a member account's).
#[allow(async_fn_in_trait)] // static dispatch only
pub trait Preflight {
    type Member: Preflight;

    /// Who runs these reads (`sts:GetCallerIdentity`): the ARN.
    async fn caller(&self) -> Result<String, Error>;
    /// `None`: no such function.
    async fn function(&self, name: &str) -> Result<Option<Function>, Error>;
    /// The reserved concurrency; `None` when none is reserved.
    async fn reserved_concurrency(&self, name: &str) -> Result<Option<i32>, Error>;
    /// The names of the rules (default bus) that have this ARN as a target.
    async fn rules_targeting(&self, arn: &str) -> Result<Vec<String>, Error>;
    /// `None`: no such rule.
    async fn rule(&self, name: &str) -> Result<Option<Rule>, Error>;
    /// A key by ID, ARN or alias, in `region` (the topic's, or the function's); `None`: no such key.
    async fn key(&self, key: &str, region: &str) -> Result<Option<Key>, Error>;
    /// `None`: no such topic.
    async fn topic(&self, arn: &str) -> Result<Option<Topic>, Error>;
    async fn enabled_regions(&self) -> Result<Vec<String>, Error>;
    async fn detectors(&self, region: &str) -> Result<Vec<Detector>, Error>;
    /// Every trail that applies to the caller's Region (shadow trails included), with its status.
    async fn trails(&self) -> Result<Vec<Trail>, Error>;
    async fn simulate(&self, principal_arn: &str, probe: &Probe) -> Result<Vec<Decision>, Error>;
    /// A session of a member account's role: the reads as that role, and the session's ARN.
    async fn enter(
        &self,
        role_arn: &str,
        external_id: &str,
    ) -> Result<(Self::Member, String), Error>;
}
