//! Domain values parsed at the edge: key IDs, accounts, principals, the incident itself.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::vocab::{AccessKeyId, AccountId, KeyKind, truncate};
use crate::vocab::{Arn, is_region_name};

/// Who holds the key, as far as the trigger (or IAM) tells us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Principal {
    IamUser {
        user_name: String,
    },
    AssumedRole {
        role_name: String,
        session_name: Option<String>,
        /// The role's unique ID (`AROA…`) from the trigger's `principalId`: with the session
        /// name it is the session's `aws:userid`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role_id: Option<String>,
    },
    Root,
    /// FederatedUser, AWSService, AWSAccount or a type we do not know: notify only.
    Other {
        user_type: String,
    },
    /// The trigger did not say; IAM is asked (`GetAccessKeyLastUsed`).
    Unresolved,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::IamUser { user_name } => write!(f, "IAM user {user_name}"),
            Principal::AssumedRole {
                role_name,
                session_name: Some(s),
                ..
            } => write!(f, "role {role_name} (session {s})"),
            Principal::AssumedRole { role_name, .. } => write!(f, "role {role_name}"),
            Principal::Root => f.write_str("root user"),
            Principal::Other { user_type } => write!(f, "{user_type} principal"),
            Principal::Unresolved => f.write_str("owner unknown"),
        }
    }
}

/// What delivered the incident, with the fields an on-call engineer needs to find it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    GuardDuty {
        finding_id: String,
        finding_type: String,
        severity: Option<f64>,
        count: Option<u64>,
        updated_at: Option<String>,
        region: Option<String>,
        remote_ip: Option<String>,
        /// Why this finding is one an insider can cause on purpose (custom threat list or
        /// detection rule): notify-only unless `KILLSWITCH_ACT_ON_CUSTOM_FINDINGS`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom: Option<String>,
    },
    Health {
        event_arn: String,
        event_type_code: String,
        start_time: Option<DateTime<Utc>>,
        exposed_url: Option<String>,
        /// The copy AWS Health also sends through us-west-2; containment is idempotent, so it
        /// acts (in case the primary was lost) and reports what it found.
        backup_event: bool,
    },
    Manual {
        request_id: String,
        requested_by: String,
        reason: String,
    },
    /// Credentials the attacker minted with another leaked key (found in CloudTrail).
    Pivot { parent_key: String, via: String },
}

/// One leaked key to respond to. A trigger naming several keys becomes several incidents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable across re-deliveries of the same trigger, for correlating duplicates.
    pub id: String,
    pub trigger: Trigger,
    pub key: AccessKeyId,
    pub principal: Principal,
    /// The account the trigger says the key belongs to, when it says.
    pub account: Option<AccountId>,
    /// The trigger asked for a dry run.
    pub dry_run: bool,
    /// When the trigger first saw the key in use (GuardDuty `eventFirstSeen`, Health
    /// `startTime`): a role cutoff at or after it already covers the incident.
    #[serde(default)]
    pub first_seen: Option<DateTime<Utc>>,
    /// The Security Hub finding for this incident (its own, or GuardDuty's as imported), whose
    /// workflow is set to NOTIFIED once containment holds.
    #[serde(default)]
    pub finding: Option<FindingRef>,
    /// What reading the finding back at its source said; `None` for triggers that are not
    /// findings (manual requests, Health events, pivots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceCheck>,
}

/// A GuardDuty or Security Hub finding read back where it was raised, before anything is
/// written: the payload is only a claim (anyone allowed to invoke the function can send one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "detail", rename_all = "snake_case")]
pub enum SourceCheck {
    /// The source holds the finding with the same identity fields; the incident is built
    /// from the source's copy. The detail says where it was read.
    Verified(String),
    /// The source holds no such finding, or holds it with other identity fields: the payload
    /// looked forged. The detail says what differed.
    Forged(String),
    /// The source could not be read: the payload is acted on as word only (the key, and the
    /// owner IAM establishes for it). The detail says what could not be checked.
    Unchecked(String),
}

/// A Security Hub finding's identifiers for `BatchUpdateFindings`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRef {
    pub id: String,
    pub product_arn: String,
    /// The Region whose Security Hub holds it.
    pub region: String,
}

impl FindingRef {
    /// GuardDuty's finding ARN is the finding's ID in Security Hub, under GuardDuty's product.
    /// Only the finding the event is about: its account and its ID must be in the ARN, so a
    /// forged event cannot aim the update at another finding.
    pub fn for_guardduty(arn: &str, finding_id: &str, account: Option<&str>) -> Option<Self> {
        let a = Arn::parse(arn).filter(|a| !a.resource.contains(':'))?;
        let ok = a.service == "guardduty"
            && is_region_name(a.region)
            && account.is_some_and(|acct| acct == a.account)
            && a.resource.starts_with("detector/")
            && a.resource.ends_with(&format!("/finding/{finding_id}"))
            && !finding_id.is_empty()
            && arn.len() <= 512;
        ok.then(|| Self {
            id: arn.to_owned(),
            product_arn: format!(
                "arn:{}:securityhub:{}::product/aws/guardduty",
                a.partition, a.region
            ),
            region: a.region.to_owned(),
        })
    }

    /// An imported GuardDuty finding's own identifiers: GuardDuty's product in the finding's
    /// Region, and an ID that is GuardDuty's finding ARN in the finding's account.
    pub fn from_asff(
        id: &str,
        product_arn: &str,
        region: Option<&str>,
        account: Option<&str>,
    ) -> Option<Self> {
        let region = region.filter(|r| is_region_name(r))?;
        let partition = Arn::parse(product_arn).map_or("aws", |a| a.partition);
        let guardduty = format!("arn:{partition}:securityhub:{region}::product/aws/guardduty");
        let finding = Arn::parse(id).filter(|a| !a.resource.contains(':'));
        (product_arn == guardduty
            && id.len() <= 512
            && finding.is_some_and(|f| {
                f.service == "guardduty"
                    && f.region == region
                    && account.is_some_and(|acct| acct == f.account)
            }))
        .then(|| Self {
            id: id.to_owned(),
            product_arn: product_arn.to_owned(),
            region: region.to_owned(),
        })
    }
}

impl Incident {
    /// The trigger's identity across re-deliveries: GuardDuty's 6-hourly re-emits (a new
    /// `updatedAt`), retries, the Health backup copy and Security Hub updates share it.
    pub fn dedupe_key(&self) -> String {
        match &self.trigger {
            Trigger::GuardDuty { finding_id, .. } => format!("finding:{finding_id}:{}", self.key),
            Trigger::Health { event_arn, .. } => format!("health:{event_arn}:{}", self.key),
            Trigger::Manual { request_id, .. } => format!("manual:{request_id}"),
            Trigger::Pivot { .. } => self.id.clone(),
        }
    }
}

/// A GuardDuty sample finding: reported, never acted on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleFinding {
    pub finding_id: String,
    pub finding_type: String,
    pub account: Option<String>,
}

/// An event about a credential that is not an access key, which killswitch cannot contain:
/// a notice with the manual steps, no call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Advisory {
    /// The event's own ID (AWS Health: its ARN), for correlating duplicates.
    pub id: String,
    pub event_type_code: String,
    pub account: Option<String>,
    /// What it is about and why nothing was changed.
    pub summary: String,
    pub steps: String,
}

/// What a trigger payload turned into.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    Incidents(Vec<Incident>),
    Sample(SampleFinding),
    Advisory(Advisory),
}
