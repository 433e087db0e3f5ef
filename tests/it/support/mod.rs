//! Test doubles and fixtures.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use killswitch::config::Config;
use killswitch::error::Error;
use killswitch::handler::{App, Phases, Response, handle};
use killswitch::incident::{AccessKeyId, AccountId, FindingRef};
use killswitch::playbook::Responder;
use killswitch::ports::{
    Accounts, ActivityLog, ActivityPage, ApiCall, Entered, Findings, FollowUpQueue, Identity,
    IncidentStore, KeyChange, KeyInfo, KeyStatus, KeyUsage, LookupQuery, Notifier, Operator,
    Organization, OtherCredential, PolicyTarget, Scp, ServiceControlPolicies,
};
use killswitch::ports::{
    Assignment, Directory, IdentityCenterAdmin, Instance, PolicyVersion, VersionInfo,
};

pub const ACCOUNT: &str = "123456789012";
/// The key every fixture in events/ names.
pub const FIXTURE_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const FIXTURE_ROLE_KEY: &str = "ASIAIOSFODNN7EXAMPLE";

/// Reads a payload from events/, the single source of fixtures.
pub fn event(name: &str) -> serde_json::Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&raw).unwrap()
}

pub const FOLLOW_UP_QUEUE: &str =
    "https://sqs.us-east-1.amazonaws.com/123456789012/killswitch-follow-up";
pub const FOLLOW_UP_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:killswitch-follow-up";

/// The deployed shape: a follow-up queue and an incident table.
pub fn deployed_config() -> Config {
    let mut c = config();
    c.follow_up_queue_url = Some(FOLLOW_UP_QUEUE.into());
    c.incident_table = Some("killswitch-incidents".into());
    c
}

/// The command line's shape: its identity known, no queue, no incident table.
pub fn app(cloud: FakeCloud) -> App<FakeCloud> {
    App {
        cloud,
        config: config(),
        responder: Some(responder()),
    }
}

/// The deployed shape: a follow-up queue and an incident table.
pub fn lambda(cloud: FakeCloud) -> App<FakeCloud> {
    App {
        cloud,
        config: deployed_config(),
        responder: Some(responder()),
    }
}

/// A trigger invocation as Lambda runs it: contain, then hand the follow-through to the queue.
pub async fn deliver(app: &App<FakeCloud>, payload: serde_json::Value) -> Response {
    handle(
        app,
        payload,
        std::time::SystemTime::now() + Duration::from_secs(120),
        false,
        Phases::HandOff,
    )
    .await
    .unwrap()
}

/// Both phases in this process, as the command line runs them.
pub async fn run(app: &App<FakeCloud>, payload: serde_json::Value) -> Response {
    handle(
        app,
        payload,
        std::time::SystemTime::now() + Duration::from_secs(120),
        false,
        Phases::Both,
    )
    .await
    .unwrap()
}

/// An operator's `killswitch restore` of alice's fixture key, as the command line runs it:
/// assess with `config` (the operator's environment), then restore without `--force`.
pub async fn restore_alice(
    a: &App<FakeCloud>,
    config: &Config,
    by: &str,
    reason: &str,
) -> killswitch::oncall::Restored {
    let key = AccessKeyId::parse(FIXTURE_KEY).unwrap();
    let req = killswitch::oncall::RestoreRequest {
        user_name: Some("alice".into()),
        ..Default::default()
    };
    let assessment = killswitch::oncall::assess(&a.cloud, config, &key, &req)
        .await
        .unwrap();
    killswitch::oncall::restore(&a.cloud, config, &key, &assessment, by, reason, false).await
}

pub fn config() -> Config {
    let mut c = Config::from_lookup(|k| {
        (k == "KILLSWITCH_TOPIC_ARN").then(|| format!("arn:aws:sns:us-east-1:{ACCOUNT}:killswitch"))
    })
    .unwrap();
    c.verify_delay = Duration::ZERO;
    c.investigation_budget = Duration::from_secs(30);
    c
}

pub fn responder() -> Responder {
    Responder::from_arn(
        AccountId::parse(ACCOUNT).unwrap(),
        &format!("arn:aws:sts::{ACCOUNT}:assumed-role/killswitch-fn-role/killswitch"),
    )
}

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
    /// user -> service-specific credentials, SSH keys, signing certificates.
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
    /// Identity Center: user name -> identity store user ID.
    pub idc_users: HashMap<String, String>,
    /// Permission set name -> ARN.
    pub idc_permission_sets: HashMap<String, String>,
    /// (account, permission set ARN, principal type, principal ID).
    pub idc_assignments: Vec<(String, String, String, String)>,
}

/// In-memory IAM/STS/CloudTrail/SNS that records every call and can fail any of them.
#[derive(Clone, Default)]
pub struct FakeCloud {
    pub state: Arc<Mutex<State>>,
}

fn target_key(t: &PolicyTarget) -> String {
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

    /// A leaked Identity Center portal session of alice@example.com (`FIXTURE_ROLE_KEY`, the
    /// identity-center fixture): the permission set's role references the deny policy, which
    /// holds only the set-up placeholder; alice is directly assigned.
    pub fn with_portal_session() -> Self {
        let cloud = Self::default();
        {
            let mut s = cloud.state.lock().unwrap();
            s.role_ids
                .insert(PORTAL_ROLE.into(), "AROACKCEVSQ6C3EXAMPLE".into());
            s.managed.insert(
                portal_policy_arn(),
                vec![("v1".into(), PORTAL_PLACEHOLDER.into(), true)],
            );
            s.role_attached
                .insert(PORTAL_ROLE.into(), vec![portal_policy_arn()]);
            s.idc_users
                .insert("alice@example.com".into(), ALICE_USER_ID.into());
            s.idc_permission_sets
                .insert("Developer".into(), PORTAL_PERMISSION_SET.into());
            s.idc_assignments.push((
                ACCOUNT.into(),
                PORTAL_PERMISSION_SET.into(),
                "USER".into(),
                ALICE_USER_ID.into(),
            ));
        }
        cloud
    }

    /// The deny policy's default document now.
    pub fn portal_policy(&self) -> String {
        let s = self.state.lock().unwrap();
        s.managed[&portal_policy_arn()]
            .iter()
            .find(|v| v.2)
            .map(|v| v.1.clone())
            .unwrap()
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
    async fn rtt(&self) {
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

    fn enter(
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

impl Identity for FakeCloud {
    async fn caller(&self) -> Result<(AccountId, String), Error> {
        self.rtt().await;
        let s = self.enter("sts:GetCallerIdentity", "")?;
        let account = s.account.clone().unwrap_or_else(|| ACCOUNT.into());
        Ok((
            AccountId::parse(&account).unwrap(),
            format!("arn:aws:sts::{account}:assumed-role/killswitch-fn-role/killswitch"),
        ))
    }

    async fn key_account(&self, key: &AccessKeyId) -> Result<AccountId, Error> {
        self.rtt().await;
        let s = self.enter("sts:GetAccessKeyInfo", key.as_str())?;
        let own = s.account.clone().unwrap_or_else(|| ACCOUNT.into());
        Ok(AccountId::parse(s.key_account.get(key.as_str()).unwrap_or(&own)).unwrap())
    }

    async fn key_usage(&self, key: &AccessKeyId) -> Result<Option<KeyUsage>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetAccessKeyLastUsed", key.as_str())?;
        Ok(s.owners.get(key.as_str()).map(|(user, region)| KeyUsage {
            user_name: user.clone(),
            last_used: None,
            region: region.clone(),
            service: None,
        }))
    }

    async fn key_status(&self, user: &str, key: &AccessKeyId) -> Result<Option<KeyStatus>, Error> {
        self.rtt().await;
        // Let concurrent deliveries interleave at every call, as they do against IAM.
        tokio::task::yield_now().await;
        let mut s = self.enter("iam:ListAccessKeys", user)?;
        s.key_reads += 1;
        if s.tamper_on_key_read == Some(s.key_reads) {
            // The attacker, still holding valid credentials for a moment, undoes containment.
            for ((u, _), status) in s.keys.iter_mut() {
                if u == user {
                    *status = KeyStatus::Active;
                }
            }
            s.policies.retain(|(t, _), _| t != &format!("user/{user}"));
            s.tampered.insert(user.to_owned());
        }
        Ok(s.keys.get(&(user.into(), key.as_str().into())).copied())
    }

    async fn deactivate_key(&self, user: &str, key: &AccessKeyId) -> Result<KeyChange, Error> {
        self.rtt().await;
        // Let concurrent deliveries interleave at every call, as they do against IAM.
        tokio::task::yield_now().await;
        let mut s = self.enter("iam:UpdateAccessKey", format!("{user} {key}"))?;
        match s.keys.get_mut(&(user.into(), key.as_str().into())) {
            Some(status) => {
                *status = KeyStatus::Inactive;
                Ok(KeyChange::Deactivated)
            }
            None => Ok(KeyChange::NotFound),
        }
    }

    async fn read_policy(
        &self,
        target: &PolicyTarget,
        name: &str,
    ) -> Result<Option<String>, Error> {
        self.rtt().await;
        tokio::task::yield_now().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:GetUserPolicy",
            PolicyTarget::Role(_) => "iam:GetRolePolicy",
        };
        let s = self.enter(action, target_key(target))?;
        Ok(s.policies.get(&(target_key(target), name.into())).cloned())
    }

    async fn put_policy(
        &self,
        target: &PolicyTarget,
        name: &str,
        document: &str,
    ) -> Result<(), Error> {
        self.rtt().await;
        tokio::task::yield_now().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:PutUserPolicy",
            PolicyTarget::Role(_) => "iam:PutRolePolicy",
        };
        let mut s = self.enter(action, format!("{} {name}", target_key(target)))?;
        s.policies
            .insert((target_key(target), name.into()), document.into());
        Ok(())
    }

    async fn role_id(&self, role: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetRole", role)?;
        Ok(s.role_ids.get(role).cloned())
    }

    async fn attach_managed(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:AttachUserPolicy", format!("{user} {policy_arn}"))?;
        let list = s.attached.entry(user.into()).or_default();
        if !list.iter().any(|a| a == policy_arn) {
            list.push(policy_arn.into());
        }
        Ok(())
    }

    async fn managed_policies(&self, user: &str) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListAttachedUserPolicies", user)?;
        Ok(s.attached.get(user).cloned().unwrap_or_default())
    }

    async fn user_keys(&self, user: &str) -> Result<Vec<KeyInfo>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListAccessKeys", user)?;
        let mut keys: Vec<KeyInfo> = s
            .keys
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|((u, k), status)| KeyInfo {
                id: AccessKeyId::parse(k).unwrap(),
                status: *status,
                created: Some(
                    s.key_created
                        .get(&(u.clone(), k.clone()))
                        .copied()
                        .unwrap_or(DateTime::UNIX_EPOCH),
                ),
            })
            .collect();
        keys.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        // A user nothing is known of does not exist, as IAM answers for a deleted one.
        let known = !keys.is_empty()
            || s.policies.keys().any(|(t, _)| t == &format!("user/{user}"))
            || s.attached.contains_key(user)
            || s.login_profiles.contains_key(user)
            || s.boundaries.contains_key(user)
            || s.other_credentials.contains_key(user);
        if !known {
            return Err(Error::Aws {
                op: "iam:ListAccessKeys",
                code: Some("NoSuchEntity".into()),
                source: format!("The user with name {user} cannot be found.").into(),
            });
        }
        Ok(keys)
    }

    async fn login_profile(&self, user: &str) -> Result<Option<DateTime<Utc>>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetLoginProfile", user)?;
        Ok(s.login_profiles.get(user).copied())
    }

    async fn other_credentials(&self, user: &str) -> Result<Vec<OtherCredential>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListServiceSpecificCredentials", user)?;
        Ok(s.other_credentials.get(user).cloned().unwrap_or_default())
    }

    async fn permissions_boundary(&self, user: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetUser", user)?;
        Ok(s.boundaries.get(user).cloned())
    }

    async fn put_boundary(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter(
            "iam:PutUserPermissionsBoundary",
            format!("{user} {policy_arn}"),
        )?;
        s.boundaries.insert(user.into(), policy_arn.into());
        Ok(())
    }

    async fn policy_default(&self, policy_arn: &str) -> Result<Option<PolicyVersion>, Error> {
        self.rtt().await;
        let s = self.enter("iam:GetPolicy", policy_arn)?;
        Ok(s.managed.get(policy_arn).and_then(|versions| {
            versions
                .iter()
                .find(|(_, _, default)| *default)
                .map(|(v, d, _)| PolicyVersion {
                    version: v.clone(),
                    document: d.clone(),
                })
        }))
    }

    async fn policy_versions(&self, policy_arn: &str) -> Result<Vec<VersionInfo>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListPolicyVersions", policy_arn)?;
        let Some(versions) = s.managed.get(policy_arn) else {
            return Err(iam_error(
                "iam:ListPolicyVersions",
                "NoSuchEntity",
                policy_arn,
            ));
        };
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        Ok(versions
            .iter()
            .enumerate()
            .map(|(i, (v, _, default))| VersionInfo {
                version: v.clone(),
                default: *default,
                created: Some(t0 + chrono::TimeDelta::seconds(i as i64)),
            })
            .collect())
    }

    async fn create_policy_version(
        &self,
        policy_arn: &str,
        document: &str,
    ) -> Result<String, Error> {
        self.rtt().await;
        let mut s = self.enter("iam:CreatePolicyVersion", policy_arn)?;
        let size = document.chars().filter(|c| !c.is_whitespace()).count();
        let s = &mut *s;
        let Some(versions) = s.managed.get_mut(policy_arn) else {
            return Err(iam_error(
                "iam:CreatePolicyVersion",
                "NoSuchEntity",
                policy_arn,
            ));
        };
        if versions.len() >= 5 {
            return Err(iam_error(
                "iam:CreatePolicyVersion",
                "LimitExceeded",
                "A managed policy can have up to 5 versions",
            ));
        }
        if size > 6144 {
            return Err(iam_error(
                "iam:CreatePolicyVersion",
                "LimitExceeded",
                "Cannot exceed quota for PolicySize: 6144",
            ));
        }
        let serial = s.managed_serial.entry(policy_arn.into()).or_insert(1);
        *serial += 1;
        let id = format!("v{serial}");
        for v in versions.iter_mut() {
            v.2 = false;
        }
        versions.push((id.clone(), document.into(), true));
        Ok(id)
    }

    async fn delete_policy_version(&self, policy_arn: &str, version: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DeletePolicyVersion", format!("{policy_arn} {version}"))?;
        let Some(versions) = s.managed.get_mut(policy_arn) else {
            return Err(iam_error(
                "iam:DeletePolicyVersion",
                "NoSuchEntity",
                policy_arn,
            ));
        };
        match versions.iter().position(|(v, _, _)| v == version) {
            None => Err(iam_error(
                "iam:DeletePolicyVersion",
                "NoSuchEntity",
                version,
            )),
            Some(i) if versions[i].2 => Err(iam_error(
                "iam:DeletePolicyVersion",
                "DeleteConflict",
                "Cannot delete the default version of a policy",
            )),
            Some(i) => {
                versions.remove(i);
                Ok(())
            }
        }
    }

    async fn role_managed_policies(&self, role: &str) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListAttachedRolePolicies", role)?;
        Ok(s.role_attached.get(role).cloned().unwrap_or_default())
    }

    async fn identity_center_roles(&self) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let s = self.enter("iam:ListRoles", "/aws-reserved/sso.amazonaws.com/")?;
        let mut roles: Vec<String> = s
            .role_ids
            .keys()
            .chain(s.role_attached.keys())
            .filter(|r| r.starts_with("AWSReservedSSO_"))
            .cloned()
            .collect();
        roles.sort();
        roles.dedup();
        Ok(roles)
    }

    async fn remove_login_profile(&self, user: &str) -> Result<bool, Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DeleteLoginProfile", user)?;
        Ok(s.login_profiles.remove(user).is_some())
    }
}

impl ActivityLog for FakeCloud {
    async fn enabled_regions(&self) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let s = self.enter("account:ListRegions", "")?;
        s.enabled_regions.clone().ok_or_else(|| Error::Aws {
            op: "account:ListRegions",
            code: Some("AccessDeniedException".into()),
            source: "not allowed".into(),
        })
    }

    async fn lookup_page(&self, q: LookupQuery<'_>) -> Result<ActivityPage, Error> {
        self.rtt().await;
        let mut s = self.enter("cloudtrail:LookupEvents", q.region)?;
        s.lookups
            .push((q.region.to_owned(), tokio::time::Instant::now()));
        if let Some(codes) = s.lookup_faults.get_mut(q.region)
            && !codes.is_empty()
        {
            let code = codes.remove(0);
            return Err(Error::Aws {
                op: "cloudtrail:LookupEvents",
                code: Some(code.clone()),
                source: code.into(),
            });
        }
        // The strictest reading of "2 calls per second": never a third within any 1 s window.
        let now = tokio::time::Instant::now();
        let recent = s
            .lookups_accepted
            .iter()
            .filter(|(r, at)| r == q.region && now.duration_since(*at) <= Duration::from_secs(1))
            .count();
        if recent >= 2 {
            s.lookups_throttled.push((q.region.to_owned(), now));
            return Err(Error::Aws {
                op: "cloudtrail:LookupEvents",
                code: Some("ThrottlingException".into()),
                source: "Rate exceeded".into(),
            });
        }
        s.lookups_accepted.push((q.region.to_owned(), now));
        let by_key = s
            .key_events
            .get(&(q.key.to_string(), q.region.to_owned()))
            .cloned();
        let mut all: Vec<ApiCall> = by_key
            .or_else(|| s.events.get(q.region).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.time >= q.start && c.time <= q.end)
            .collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.time));
        let offset: usize = q.next_token.as_deref().map_or(0, |t| t.parse().unwrap());
        let page: Vec<ApiCall> = all.iter().skip(offset).take(50).cloned().collect();
        let next = (offset + 50 < all.len()).then(|| (offset + 50).to_string());
        Ok(ActivityPage {
            calls: page,
            next_token: next,
        })
    }
}

impl IncidentStore for FakeCloud {
    async fn load_record(&self, id: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("dynamodb:GetItem", id)?;
        Ok(s.items.get(id).cloned())
    }

    async fn save_record(&self, id: &str, record: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("dynamodb:PutItem", id)?;
        s.items.insert(id.into(), record.into());
        Ok(())
    }

    async fn claim(&self, id: &str) -> Result<bool, Error> {
        self.rtt().await;
        tokio::task::yield_now().await;
        let mut s = self.enter("dynamodb:PutItem", id)?;
        if s.items.contains_key(id) {
            return Ok(false);
        }
        s.items.insert(id.into(), "claimed".into());
        Ok(true)
    }

    async fn claim_slot(&self, id: &str, _expires: i64) -> Result<bool, Error> {
        self.rtt().await;
        let mut s = self.state.lock().unwrap();
        if let Some(code) = s.fail.get("dynamodb:PutItem(slot)") {
            return Err(Error::Aws {
                op: "dynamodb:PutItem",
                code: Some(code.clone()),
                source: code.clone().into(),
            });
        }
        Ok(s.slots.insert(id.to_owned()))
    }

    async fn release(&self, id: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("dynamodb:DeleteItem", id)?;
        // One table in DynamoDB: a slot is an item like any other.
        s.items.remove(id);
        s.slots.remove(id);
        Ok(())
    }
}

impl Operator for FakeCloud {
    async fn delete_boundary(&self, user: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DeleteUserPermissionsBoundary", user)?;
        s.boundaries.remove(user);
        Ok(())
    }

    async fn detach_managed(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:DetachUserPolicy", format!("{user} {policy_arn}"))?;
        if let Some(list) = s.attached.get_mut(user) {
            list.retain(|a| a != policy_arn);
        }
        Ok(())
    }

    async fn reactivate_key(&self, user: &str, key: &AccessKeyId) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("iam:UpdateAccessKey", format!("{user} {key} Active"))?;
        if let Some(status) = s.keys.get_mut(&(user.into(), key.as_str().into())) {
            *status = KeyStatus::Active;
        }
        Ok(())
    }

    async fn delete_policy(&self, target: &PolicyTarget, name: &str) -> Result<(), Error> {
        self.rtt().await;
        let action = match target {
            PolicyTarget::User(_) => "iam:DeleteUserPolicy",
            PolicyTarget::Role(_) => "iam:DeleteRolePolicy",
        };
        let mut s = self.enter(action, target_key(target))?;
        s.policies.remove(&(target_key(target), name.into()));
        Ok(())
    }
}

impl Findings for FakeCloud {
    async fn update_finding(
        &self,
        finding: &FindingRef,
        notified: bool,
        note: &str,
    ) -> Result<bool, Error> {
        self.rtt().await;
        let mut s = self.enter("securityhub:BatchUpdateFindings", finding.id.clone())?;
        assert!(!note.is_empty() && note.chars().count() <= 512, "{note}");
        Ok(match s.findings.get_mut(&finding.id) {
            Some((workflow, notes)) => {
                if notified {
                    *workflow = "NOTIFIED".into();
                }
                notes.push(note.into());
                true
            }
            None => false,
        })
    }
}

fn org_error(op: &'static str, code: &str, reason: &str) -> Error {
    Error::Aws {
        op,
        code: Some(code.into()),
        source: format!("{code}: {reason}").into(),
    }
}

fn iam_error(op: &'static str, code: &str, reason: &str) -> Error {
    Error::Aws {
        op,
        code: Some(code.into()),
        source: format!("{code}: {reason}").into(),
    }
}

pub const PORTAL_ROLE: &str = "AWSReservedSSO_Developer_0123456789abcdef";
pub const PORTAL_PERMISSION_SET: &str =
    "arn:aws:sso:::permissionSet/ssoins-0000000000000001/ps-0123456789abcdef";
pub const ALICE_USER_ID: &str = "9067c7f5a1-0c3b1a2e-1f2d-4c5b-8a9e-0d1c2b3a4f5e";
pub const PORTAL_SESSION: &str = "AROACKCEVSQ6C3EXAMPLE:alice@example.com";
/// What `identity-center-policy.yaml` creates.
pub const PORTAL_PLACEHOLDER: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"KillSwitchNobodyYet","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:userid":"killswitch-nobody"}}}]}"#;

pub fn portal_policy_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/KillSwitchDeny")
}

/// Identity Center set up: the role, its external ID, assignment removal as asked.
pub fn with_identity_center(mut c: Config, remove_assignments: bool) -> Config {
    c.identity_center = Some(killswitch::config::IdentityCenter {
        role_arn: "arn:aws:iam::111122223333:role/KillSwitchIdentityCenter".into(),
        external_id: "ks-idc-external".into(),
        region: None,
        policy_name: "KillSwitchDeny".into(),
        remove_assignments,
        restore_role_arn: Some(
            "arn:aws:iam::111122223333:role/KillSwitchIdentityCenterRestore".into(),
        ),
    });
    c
}

pub const IDC_INSTANCE: &str = "arn:aws:sso:::instance/ssoins-0000000000000001";
pub const IDC_STORE: &str = "d-0000000001";

impl IdentityCenterAdmin for FakeCloud {
    type Directory = FakeCloud;

    async fn enter_identity_center(
        &self,
        role_arn: &str,
        _external_id: &str,
        _session_name: &str,
        _region: Option<&str>,
    ) -> Result<FakeCloud, Error> {
        self.rtt().await;
        drop(self.enter("sts:AssumeRole", role_arn)?);
        Ok(self.clone())
    }
}

impl Directory for FakeCloud {
    async fn instance(&self) -> Result<Instance, Error> {
        self.rtt().await;
        drop(self.enter("sso:ListInstances", "")?);
        Ok(Instance {
            arn: IDC_INSTANCE.into(),
            identity_store_id: IDC_STORE.into(),
        })
    }

    async fn user_id(&self, store: &str, user_name: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("identitystore:GetUserId", user_name)?;
        assert_eq!(store, IDC_STORE);
        Ok(s.idc_users.get(user_name).cloned())
    }

    async fn permission_set(&self, instance: &str, name: &str) -> Result<Option<String>, Error> {
        self.rtt().await;
        let s = self.enter("sso:ListPermissionSets", name)?;
        assert_eq!(instance, IDC_INSTANCE);
        Ok(s.idc_permission_sets.get(name).cloned())
    }

    async fn assignments(
        &self,
        _instance: &str,
        account: &str,
        permission_set: &str,
    ) -> Result<Vec<Assignment>, Error> {
        self.rtt().await;
        let s = self.enter("sso:ListAccountAssignments", permission_set)?;
        Ok(s.idc_assignments
            .iter()
            .filter(|(a, p, _, _)| a == account && p == permission_set)
            .map(|(_, _, t, id)| Assignment {
                principal_type: t.clone(),
                principal_id: id.clone(),
            })
            .collect())
    }

    async fn delete_assignment(
        &self,
        _instance: &str,
        account: &str,
        permission_set: &str,
        who: &Assignment,
    ) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sso:DeleteAccountAssignment", who.principal_id.clone())?;
        s.idc_assignments.retain(|(a, p, t, id)| {
            !(a == account
                && p == permission_set
                && *t == who.principal_type
                && *id == who.principal_id)
        });
        Ok(())
    }

    async fn create_assignment(
        &self,
        _instance: &str,
        account: &str,
        permission_set: &str,
        who: &Assignment,
    ) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sso:CreateAccountAssignment", who.principal_id.clone())?;
        s.idc_assignments.push((
            account.into(),
            permission_set.into(),
            who.principal_type.clone(),
            who.principal_id.clone(),
        ));
        Ok(())
    }
}

impl Organization for FakeCloud {
    type Org = FakeCloud;

    async fn enter_organization(
        &self,
        role_arn: &str,
        _external_id: &str,
        _session_name: &str,
    ) -> Result<FakeCloud, Error> {
        self.rtt().await;
        drop(self.enter("sts:AssumeRole", role_arn)?);
        Ok(self.clone())
    }
}

impl ServiceControlPolicies for FakeCloud {
    async fn management_account(&self) -> Result<String, Error> {
        self.rtt().await;
        let s = self.enter("organizations:DescribeOrganization", "")?;
        Ok(s.org_management.clone())
    }

    async fn find_policy(&self, name: &str) -> Result<Option<Scp>, Error> {
        self.rtt().await;
        let s = self.enter("organizations:ListPolicies", name)?;
        Ok(s.scps
            .iter()
            .find(|(_, (n, _))| n == name)
            .map(|(id, (_, content))| Scp {
                id: id.clone(),
                content: content.clone(),
            }))
    }

    async fn create_policy(
        &self,
        name: &str,
        _description: &str,
        content: &str,
    ) -> Result<String, Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:CreatePolicy", name)?;
        if s.scps.values().any(|(n, _)| n == name) {
            return Err(org_error(
                "organizations:CreatePolicy",
                "DuplicatePolicyException",
                name,
            ));
        }
        if content.len() > 5120 {
            return Err(org_error(
                "organizations:CreatePolicy",
                "ConstraintViolationException",
                "POLICY_CONTENT_LIMIT_EXCEEDED",
            ));
        }
        let id = format!("p-{:08x}", s.scps.len() + 1);
        s.scps.insert(id.clone(), (name.into(), content.into()));
        Ok(id)
    }

    async fn update_policy(&self, id: &str, content: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:UpdatePolicy", id)?;
        if content.len() > 5120 {
            return Err(org_error(
                "organizations:UpdatePolicy",
                "ConstraintViolationException",
                "POLICY_CONTENT_LIMIT_EXCEEDED",
            ));
        }
        match s.scps.get_mut(id) {
            Some(p) => {
                p.1 = content.into();
                Ok(())
            }
            None => Err(org_error(
                "organizations:UpdatePolicy",
                "PolicyNotFoundException",
                id,
            )),
        }
    }

    async fn policies_for(&self, account: &str) -> Result<Vec<String>, Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:ListPoliciesForTarget", account)?;
        Ok(s.scp_targets
            .entry(account.into())
            .or_insert_with(|| vec!["p-FullAWSAccess".into()])
            .clone())
    }

    async fn attach_policy(&self, id: &str, account: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:AttachPolicy", format!("{id} {account}"))?;
        let attached = s
            .scp_targets
            .entry(account.into())
            .or_insert_with(|| vec!["p-FullAWSAccess".into()]);
        if attached.iter().any(|a| a == id) {
            return Err(org_error(
                "organizations:AttachPolicy",
                "DuplicatePolicyAttachmentException",
                id,
            ));
        }
        if attached.len() >= 5 {
            return Err(org_error(
                "organizations:AttachPolicy",
                "ConstraintViolationException",
                "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
            ));
        }
        attached.push(id.into());
        Ok(())
    }

    async fn detach_policy(&self, id: &str, account: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:DetachPolicy", format!("{id} {account}"))?;
        if let Some(list) = s.scp_targets.get_mut(account) {
            list.retain(|a| a != id);
        }
        Ok(())
    }

    async fn delete_policy(&self, id: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("organizations:DeletePolicy", id)?;
        if s.scp_targets.values().any(|l| l.iter().any(|a| a == id)) {
            return Err(org_error(
                "organizations:DeletePolicy",
                "PolicyInUseException",
                id,
            ));
        }
        s.scps.remove(id);
        Ok(())
    }
}

impl FollowUpQueue for FakeCloud {
    async fn hand_off(&self, body: &str, delay: Duration) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sqs:SendMessage", "")?;
        s.queued.push((body.into(), delay));
        Ok(())
    }
}

impl Notifier for FakeCloud {
    async fn publish(&self, subject: &str, body: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sns:Publish", subject)?;
        s.published.push((subject.into(), body.into()));
        Ok(())
    }

    fn publishes(&self) -> bool {
        !self.state.lock().unwrap().no_topic
    }

    async fn publish_chat(&self, card: &str) -> Result<(), Error> {
        self.rtt().await;
        let mut s = self.enter("sns:Publish", "chat")?;
        s.chat_cards.push(card.into());
        Ok(())
    }

    fn chats(&self) -> bool {
        self.state.lock().unwrap().chat_topic
    }
}

pub fn api_call(name: &str, time: DateTime<Utc>, error: Option<&str>) -> ApiCall {
    ApiCall {
        event_id: Some(format!("{name}-{}", time.timestamp_millis())),
        time,
        event_name: name.into(),
        event_source: "iam.amazonaws.com".into(),
        region: "us-east-1".into(),
        source_ip: Some("203.0.113.77".into()),
        user_agent: Some("aws-cli/2.15.0".into()),
        error_code: error.map(str::to_owned),
        read_only: Some(name.starts_with("List") || name.starts_with("Get")),
        request_parameters: None,
        response_elements: None,
        caller: None,
    }
}

impl Accounts for FakeCloud {
    type Member = FakeCloud;

    async fn enter(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
    ) -> Result<Entered<FakeCloud>, Error> {
        self.rtt().await;
        let s = self.enter("sts:AssumeRole", role_arn)?;
        let account = role_arn.split(':').nth(4).unwrap_or_default();
        let role = role_arn.rsplit('/').next().unwrap_or_default();
        let denied = || Error::Aws {
            op: "sts:AssumeRole",
            code: Some("AccessDenied".into()),
            source: format!("not authorized to perform sts:AssumeRole on {role_arn}").into(),
        };
        match s.members.get(account) {
            Some(member) if external_id == s.member_external_id => Ok(Entered {
                clients: member.clone(),
                arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{session_name}"),
            }),
            _ => Err(denied()),
        }
    }
}
