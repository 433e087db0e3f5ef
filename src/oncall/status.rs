//! `status`: what killswitch placed for a key that is there now, and what the incident record
//! says about it.

use crate::config::Config;
use crate::error::{AwsFailure, Error};
use crate::incident::{AccessKeyId, AccountId, KeyKind};
use crate::playbook::portal::{self, Removed};
use crate::playbook::quarantine::{self, Quarantined, Standing};
use crate::playbook::{Plan, revoke_role};
use crate::policy;
use crate::ports::{Identity, IncidentStore, KeyStatus, KeyUsage, Organization, PolicyTarget};
use crate::record::{IncidentRecord, Records};
use crate::report::ts;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct KeyState {
    pub access_key_id: String,
    pub user_name: Option<String>,
    pub key_status: Option<KeyStatus>,
    pub last_used: Option<KeyUsage>,
    /// Policies killswitch placed that are there now (exactly as it writes them), including the
    /// session revocation a restore leaves on a user (`user/NAME: KillSwitchRevokeOlderSessions`).
    pub killswitch_policies: Vec<String>,
    pub role_name: Option<String>,
    /// The session cutoff on the role, if killswitch revoked all its sessions.
    pub role_sessions_revoked_before: Option<String>,
    /// The role sessions (`aws:userid`) killswitch denies.
    pub role_sessions_denied: Vec<String>,
    /// The user's permissions boundary (`AWSDenyAll` after a lock-out).
    pub permissions_boundary: Option<String>,
    /// Sessions the user minted before this are denied (left by a restore; harmless once they
    /// expired, 36 h later, and deletable then).
    pub user_sessions_revoked_before: Option<String>,
    /// The account the key belongs to (`sts:GetAccessKeyInfo`), when it could be read.
    pub account: Option<String>,
    /// IAM knows the key (or, for a session key, a role was named): `false` exits non-zero.
    pub exists: bool,
    /// The incident record's last containment: when, by which incident and trigger.
    pub contained: Option<ContainedBy>,
    /// Operators' restores, oldest first.
    pub restores: Vec<crate::record::Restore>,
    /// What the user's deny blocks besides the leaked key: its other access keys.
    pub also_blocked: Vec<String>,
    /// The org-level quarantine the incident record holds, read back when the quarantine role
    /// is configured here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<QuarantineState>,
    /// The Identity Center user the incident record says killswitch denies, read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_center: Option<PortalState>,
}

#[derive(Debug, Serialize)]
pub struct PortalState {
    pub user: String,
    pub user_id: Option<String>,
    pub role: String,
    pub policy_arn: String,
    /// The deny policy's default version denies the user exactly, and the role has it attached.
    pub denied: bool,
    pub read_back: String,
    /// The account assignment killswitch removed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment_removed: Option<Removed>,
}

#[derive(Debug, Serialize)]
pub struct QuarantineState {
    #[serde(flatten)]
    pub placed: Quarantined,
    /// `stands`, `lifted`, or why it could not be read.
    pub read_back: String,
}

/// The containment the incident record holds for a key.
#[derive(Debug, Serialize)]
pub struct ContainedBy {
    pub incident_id: String,
    pub trigger: String,
    pub at: String,
    pub verified_at: Option<String>,
    /// `false` once an operator restored it (a later generation).
    pub current: bool,
}

/// The key's state, owner, our policies, what the incident record says and last use.
pub async fn status<C: Identity + IncidentStore + Organization>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    user: Option<&str>,
    role: Option<&str>,
) -> Result<KeyState, Error> {
    let (usage, account) = tokio::join!(cloud.key_usage(key), cloud.key_account(key));
    let usage = usage?;
    let account = account.ok();
    let record = match &account {
        Some(a) => Records::new(cloud, config).load(a, key).await,
        None => None,
    };
    let user_name = user
        .map(str::to_owned)
        .or_else(|| usage.as_ref().map(|u| u.user_name.clone()));
    let mut state = KeyState::new(key, user_name.clone(), usage, account.as_ref());
    state.role_name = role.map(str::to_owned);
    if let Some(r) = record {
        read_record(cloud, config, r, &mut state).await;
    }
    if let Some(u) = &user_name {
        read_user(cloud, key, u, &mut state).await?;
    }
    state.exists = state.exists
        || state.key_status.is_some()
        || (role.is_some() && key.kind() == KeyKind::Temporary);
    if let Some(r) = role {
        read_role(cloud, r, &mut state).await?;
    }
    Ok(state)
}

impl KeyState {
    /// Nothing read yet but the key's last use and account.
    fn new(
        key: &AccessKeyId,
        user_name: Option<String>,
        last_used: Option<KeyUsage>,
        account: Option<&AccountId>,
    ) -> Self {
        KeyState {
            access_key_id: key.to_string(),
            user_name,
            key_status: None,
            last_used,
            killswitch_policies: Vec::new(),
            role_name: None,
            role_sessions_revoked_before: None,
            role_sessions_denied: Vec::new(),
            permissions_boundary: None,
            user_sessions_revoked_before: None,
            account: account.map(ToString::to_string),
            exists: false,
            contained: None,
            quarantine: None,
            identity_center: None,
            also_blocked: Vec::new(),
            restores: Vec::new(),
        }
    }
}

/// What the incident record holds, with the org quarantine and the Identity Center deny it
/// names read back.
async fn read_record<C: Identity + Organization>(
    cloud: &C,
    config: &Config,
    r: IncidentRecord,
    state: &mut KeyState,
) {
    state.contained = r.applied.as_ref().map(|a| ContainedBy {
        incident_id: a.incident_id.clone(),
        trigger: a.trigger.clone(),
        at: ts(a.at),
        verified_at: r.verified_at.map(ts),
        current: a.generation == r.generation,
    });
    if let Some(q) = r.quarantine.clone() {
        let read_back = read_quarantine(cloud, config, &q).await;
        state.quarantine = Some(QuarantineState {
            placed: q,
            read_back,
        });
    }
    let current = r
        .applied
        .as_ref()
        .filter(|a| a.generation == r.generation)
        .map(|a| &a.plan);
    if let Some(plan) = current {
        read_portal(cloud, plan, r.assignment.clone(), state).await;
    }
    state.restores = r.restores;
}

async fn read_quarantine<C: Organization>(cloud: &C, config: &Config, q: &Quarantined) -> String {
    match &config.quarantine {
        Some(c) => match quarantine::read(cloud, c, q).await {
            Ok(Standing::Stands) => "stands".to_owned(),
            Ok(Standing::Lifted) => "lifted".to_owned(),
            Err(e) => format!("could not be read: {}", e.chain()),
        },
        None => "not read: set KILLSWITCH_QUARANTINE_ROLE_ARN and KILLSWITCH_QUARANTINE_EXTERNAL_ID to read it back".to_owned(),
    }
}

/// A portal plan's deny, read back: the key "exists" as the Identity Center user it names.
async fn read_portal<C: Identity>(
    cloud: &C,
    plan: &Plan,
    assignment_removed: Option<Removed>,
    state: &mut KeyState,
) {
    let (role, user, session, user_id, policy_arn) = match plan {
        Plan::Portal {
            role,
            user,
            session,
            user_id,
            policy_arn,
        } => (role, user, session, user_id, policy_arn),
        Plan::User { .. } | Plan::Role { .. } => return,
    };
    let wanted = portal::entries(session, user_id.as_deref());
    let (denied, read_back) = portal::read_back(cloud, role, policy_arn, &wanted).await;
    state.identity_center = Some(PortalState {
        user: user.clone(),
        user_id: user_id.clone(),
        role: role.clone(),
        policy_arn: policy_arn.clone(),
        denied,
        read_back,
        assignment_removed,
    });
    state.exists = true;
}

/// The user's key, its other keys, and the denies killswitch (or a restore) left on it.
async fn read_user<C: Identity>(
    cloud: &C,
    key: &AccessKeyId,
    u: &str,
    state: &mut KeyState,
) -> Result<(), Error> {
    state.key_status = cloud.key_status(u, key).await?;
    state.also_blocked = match cloud.user_keys(u).await {
        Ok(keys) => keys,
        // A name that is not (or no longer) a user: nothing else to block.
        Err(e) if e.is(AwsFailure::NotFound) => Vec::new(),
        Err(e) => return Err(e),
    }
    .into_iter()
    .filter(|k| &k.id != key)
    .map(|k| format!("access key {} ({:?})", k.id, k.status))
    .collect();
    let target = PolicyTarget::User(u.to_owned());
    let ours = |name: &str| format!("user/{u}: {name}");
    if let Some(doc) = cloud.read_policy(&target, policy::USER_POLICY_NAME).await?
        && policy::is_deny_all(&doc)
    {
        state
            .killswitch_policies
            .push(ours(policy::USER_POLICY_NAME));
    }
    state.permissions_boundary = cloud.permissions_boundary(u).await?;
    // Left by an earlier restore: the sessions minted before it stay denied.
    if let Some(cutoff) = cloud
        .read_policy(&target, policy::ROLE_POLICY_NAME)
        .await?
        .as_deref()
        .and_then(policy::revocation_cutoff)
    {
        state
            .killswitch_policies
            .push(ours(policy::ROLE_POLICY_NAME));
        state.user_sessions_revoked_before = Some(ts(cutoff));
    }
    if cloud
        .managed_policies(u)
        .await?
        .iter()
        .any(|a| a == policy::MANAGED_DENY_ALL_ARN)
    {
        state
            .killswitch_policies
            .push(ours(policy::MANAGED_DENY_ALL_ARN));
    }
    Ok(())
}

/// The role's cutoff and the sessions it denies by name, inline or in killswitch's managed
/// fallback (the role's inline quota was full).
async fn read_role<C: Identity>(cloud: &C, r: &str, state: &mut KeyState) -> Result<(), Error> {
    let held = revoke_role::in_force(cloud, r).await?;
    state.role_sessions_revoked_before = held.cutoff().map(ts);
    state.role_sessions_denied = held.sessions().into_iter().collect();
    state.killswitch_policies.extend(
        held.policies()
            .into_iter()
            .map(|p| format!("role/{r}: {p}")),
    );
    Ok(())
}
