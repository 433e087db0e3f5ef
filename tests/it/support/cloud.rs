//! The in-memory cloud: its state, the calls it records and the failures it injects. The ports
//! it plays are implemented by port in the sibling modules.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use killswitch::error::Error;
use killswitch::ports::{ApiCall, KeyStatus, OtherCredential, PolicyTarget};

/// A recorded call: the IAM action and its main argument.
pub type Call = (String, String);

/// Mutating IAM actions.
pub const WRITES: [&str; 6] = [
    "iam:PutUserPermissionsBoundary",
    "iam:UpdateAccessKey",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:AttachUserPolicy",
    "iam:DeleteLoginProfile",
];

#[derive(Default)]
pub struct State {
    pub key_account: HashMap<String, String>,
    /// (user, key) -> status
    pub keys: HashMap<(String, String), KeyStatus>,
    /// key -> (owner, last-used Region)
    pub owners: HashMap<String, (String, Option<String>)>,
    /// ("user/alice" | "role/x", policy name) -> document
    pub policies: HashMap<(String, String), String>,
    pub calls: Vec<Call>,
    /// action -> error code to fail with
    pub fail: HashMap<String, String>,
    pub events: HashMap<String, Vec<ApiCall>>,
    pub lookups: Vec<(String, tokio::time::Instant)>,
    pub published: Vec<(String, String)>,
    /// Chat cards published to the chat topic (`chat_topic` set).
    pub chat_cards: Vec<String>,
    pub chat_topic: bool,
    /// Security Hub findings by ID: workflow status and notes, newest last. Absent = not held.
    pub findings: HashMap<String, (String, Vec<String>)>,
    /// The organization: its management account, SCPs by ID (name, content) and the SCPs
    /// attached directly to each account (`p-FullAWSAccess` always, as AWS does).
    pub org_management: String,
    pub scps: std::collections::BTreeMap<String, (String, String)>,
    pub scp_targets: HashMap<String, Vec<String>>,
    /// Regions `account:ListRegions` answers; `None` = the call fails.
    pub enabled_regions: Option<Vec<String>>,
    /// region -> error codes to answer LookupEvents with, one per call, before answering normally.
    pub lookup_faults: HashMap<String, Vec<String>>,
    /// Undo containment (key Active, policies gone) when `ListAccessKeys` is called for the n-th time.
    pub tamper_on_key_read: Option<usize>,
    /// A holder that keeps undoing containment: at every key read from this one on.
    pub tamper_from_key_read: Option<usize>,
    /// When the holder last undid containment.
    pub tampered_at: Vec<tokio::time::Instant>,
    pub key_reads: usize,
    pub tampered: HashSet<String>,
    /// The account this cloud plays; `None` = `ACCOUNT`.
    pub account: Option<String>,
    /// account -> that account's cloud, entered with `sts:AssumeRole`.
    pub members: HashMap<String, FakeCloud>,
    /// The external ID the member roles' trust policies demand.
    pub member_external_id: String,
    /// The incident store: id -> item (records and claims).
    pub items: HashMap<String, String>,
    /// Follow-up messages handed to the queue: (body, delay).
    pub queued: Vec<(String, Duration)>,
    /// A round trip added to every call (with a paused clock, calls of one wave arrive at the
    /// same instant).
    pub latency: Option<Duration>,
    /// When each call reached the "server": (action, instant).
    pub arrivals: Vec<(String, tokio::time::Instant)>,
    /// role -> unique ID (`iam:GetRole`); unknown roles answer `None`.
    pub role_ids: HashMap<String, String>,
    /// user -> attached managed policy ARNs.
    pub attached: HashMap<String, Vec<String>>,
    /// (user, key) -> creation time (unset: long ago).
    pub key_created: HashMap<(String, String), DateTime<Utc>>,
    /// user -> console password creation time.
    pub login_profiles: HashMap<String, DateTime<Utc>>,
    /// user -> permissions boundary ARN.
    pub boundaries: HashMap<String, String>,
    /// (`user/NAME` or `role/NAME`, tag key) -> tag value.
    pub tags: HashMap<(String, String), String>,
    /// user -> service-specific credentials, SSH keys, signing certificates, MFA devices.
    pub other_credentials: HashMap<String, Vec<OtherCredential>>,
    /// (access key, Region) -> the events signed by that key; a key without an entry is
    /// answered from `events` (the Region's).
    pub key_events: HashMap<(String, String), Vec<ApiCall>>,
    /// `LookupEvents` slots claimed in the store (see `killswitch::pacing`).
    pub slots: HashSet<String>,
    /// Lookups answered (not throttled), per Region: the strict limiter's window.
    pub lookups_accepted: Vec<(String, tokio::time::Instant)>,
    /// Lookups the strict limiter refused: (Region, instant).
    pub lookups_throttled: Vec<(String, tokio::time::Instant)>,
    /// No topic configured (`--no-notify`, a dry run without one): notices are not published.
    pub no_topic: bool,
    /// Customer-managed policies: ARN -> versions (ID, document, default), oldest first.
    pub managed: HashMap<String, Vec<(String, String, bool)>>,
    /// Versions ever created per policy (IAM never reuses a version ID).
    pub managed_serial: HashMap<String, u32>,
    /// role -> attached managed policy ARNs.
    pub role_attached: HashMap<String, Vec<String>>,
    /// The record key's secret (the fake KMS HMAC key); `None` = records are not sealed.
    pub record_key: Option<String>,
    /// GuardDuty findings raised (EventBridge `detail` shape), newest last.
    pub raised: Vec<serde_json::Value>,
    /// The account's GuardDuty detector: unset = the fixtures' detector in every Region;
    /// `Some(None)` = GuardDuty not enabled.
    pub detector: Option<Option<String>>,
    /// Identity Center: user name -> identity store user ID.
    pub idc_users: HashMap<String, String>,
    /// Permission set name -> ARN.
    pub idc_permission_sets: HashMap<String, String>,
    /// (account, permission set ARN, principal type, principal ID).
    pub idc_assignments: Vec<(String, String, String, String)>,
    /// account -> its root user's access keys, reachable through `sts:AssumeRoot`.
    pub root_keys: HashMap<String, Vec<String>>,
}

/// In-memory IAM/STS/CloudTrail/SNS that records every call and can fail any of them.
#[derive(Clone, Default)]
pub struct FakeCloud {
    pub state: Arc<Mutex<State>>,
}

pub(super) fn target_key(t: &PolicyTarget) -> String {
    match t {
        PolicyTarget::User(u) => format!("user/{u}"),
        PolicyTarget::Role(r) => format!("role/{r}"),
    }
}

impl FakeCloud {
    /// A user `alice` holding `FIXTURE_KEY`, Active.
    pub fn with_user(user: &str, key: &str) -> Self {
        let cloud = Self::default();
        cloud.add_user_key(user, key, KeyStatus::Active);
        cloud
    }

    pub fn add_user_key(&self, user: &str, key: &str, status: KeyStatus) {
        let mut s = self.state.lock().unwrap();
        s.keys.insert((user.into(), key.into()), status);
        s.owners
            .insert(key.into(), (user.into(), Some("eu-west-1".into())));
    }

    /// Another account of the organization, reachable through its member role.
    pub fn add_member(&self, account: &str, external_id: &str) -> FakeCloud {
        let member = FakeCloud::default();
        member.state.lock().unwrap().account = Some(account.into());
        let mut s = self.state.lock().unwrap();
        s.member_external_id = external_id.into();
        s.members.insert(account.into(), member.clone());
        member
    }

    pub fn fail(&self, action: &str, code: &str) {
        self.state
            .lock()
            .unwrap()
            .fail
            .insert(action.into(), code.into());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn writes(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|(a, _)| WRITES.contains(&a.as_str()))
            .collect()
    }

    pub fn iam_calls(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|(a, _)| a.starts_with("iam:") || a.starts_with("sts:"))
            .collect()
    }

    pub fn policy(&self, target: &str, name: &str) -> Option<String> {
        self.state
            .lock()
            .unwrap()
            .policies
            .get(&(target.into(), name.into()))
            .cloned()
    }

    pub fn set_policy(&self, target: &str, name: &str, doc: &str) {
        self.state
            .lock()
            .unwrap()
            .policies
            .insert((target.into(), name.into()), doc.into());
    }

    pub fn key_state(&self, user: &str, key: &str) -> Option<KeyStatus> {
        self.state
            .lock()
            .unwrap()
            .keys
            .get(&(user.into(), key.into()))
            .copied()
    }

    pub fn published(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().published.clone()
    }

    pub fn add_events(&self, region: &str, calls: Vec<ApiCall>) {
        self.state
            .lock()
            .unwrap()
            .events
            .entry(region.into())
            .or_default()
            .extend(calls);
    }

    /// Waits one round trip when the cloud plays a far-away AWS.
    pub(super) async fn rtt(&self) {
        let latency = self.state.lock().unwrap().latency;
        if let Some(l) = latency {
            tokio::time::sleep(l).await;
        }
    }

    /// The waves of calls: the n-th round trip each call arrived in (1-based), by action.
    pub fn waves(&self) -> Vec<(String, u32)> {
        let s = self.state.lock().unwrap();
        let l = s.latency.expect("waves need a latency");
        let t0 = s.arrivals.first().map(|(_, t)| *t - l).unwrap();
        s.arrivals
            .iter()
            .map(|(a, t)| (a.clone(), ((*t - t0).as_millis() / l.as_millis()) as u32))
            .collect()
    }

    pub(super) fn enter(
        &self,
        action: &str,
        arg: impl Into<String>,
    ) -> Result<std::sync::MutexGuard<'_, State>, Error> {
        let mut s = self.state.lock().unwrap();
        s.calls.push((action.into(), arg.into()));
        s.arrivals
            .push((action.into(), tokio::time::Instant::now()));
        if let Some(code) = s.fail.get(action) {
            // An empty code stands for what the SDK reports for a timeout or a refused
            // connection: a dispatch failure without a service error code.
            return Err(Error::Aws {
                op: leak(action),
                code: (!code.is_empty()).then(|| code.clone()),
                source: format!(
                    "injected {}",
                    if code.is_empty() {
                        "timeout/connection failure"
                    } else {
                        code
                    }
                )
                .into(),
            });
        }
        Ok(s)
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}
