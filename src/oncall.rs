//! On-call commands: `status` (what killswitch did to a key) and `restore` (undo exactly that).
//! They run with the engineer's own credentials; their write permissions are never granted to
//! the function.
//!
//! A restore must not re-arm the key's holder: without `--force` it refuses to lift a user's deny
//! while the user has an Active key or a console password created since the incident began (the
//! holder's persistence), while a credential the incident's pivots name is still live (a key the
//! holder minted, a user it created, a password it set, a session, a trust policy it changed), or
//! when the named user is not IAM's owner of the key. Reactivating the leaked key itself is its
//! own flag. A role restore removes this incident's session only, and
//! lifts a role-wide cutoff only when no other open incident relies on it.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::analysis::{Pivot, PivotKind};
use crate::config::Config;
use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId};
use crate::playbook::deny_user::Deny;
use crate::playbook::portal::{self, Removed};
use crate::playbook::quarantine::{self, Quarantined, Standing};
use crate::playbook::{Plan, deactivate_key, deny_user, revoke_role};
use crate::policy;
use crate::ports::{
    Findings, Identity, IdentityCenterAdmin, IncidentStore, KeyStatus, KeyUsage, Notifier,
    Operator, Organization, PolicyTarget,
};
use crate::record::{IncidentRecord, Records, Restore};
use crate::report::{sanitize_subject, ts};

/// Actions `restore` needs (operator-only), beyond the reads of `status`.
pub const OPERATOR_PERMISSIONS: [&str; 32] = [
    "iam:GetAccessKeyLastUsed",
    "iam:ListAccessKeys",
    "iam:GetUserPolicy",
    "iam:GetRolePolicy",
    "iam:ListAttachedUserPolicies",
    "iam:GetLoginProfile",
    "iam:ListServiceSpecificCredentials",
    "iam:ListSSHPublicKeys",
    "iam:ListSigningCertificates",
    "iam:GetUser",
    // The roles the incident's pivots name: a minted session's role, a changed trust policy.
    "iam:GetRole",
    "iam:PutUserPermissionsBoundary",
    "iam:DeleteUserPermissionsBoundary",
    "iam:UpdateAccessKey",
    "iam:PutUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    // Identity Center: the user out of the deny policy (a new default version).
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListPolicyVersions",
    "iam:CreatePolicyVersion",
    "iam:ListAttachedRolePolicies",
    "sts:GetCallerIdentity",
    // The incident record, the role index and the restore log (`KILLSWITCH_INCIDENT_TABLE`).
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    // The quarantine lease, given back after lifting.
    "dynamodb:DeleteItem",
    "sns:Publish",
    // The 5-version limit when taking the user out again.
    "iam:DeletePolicyVersion",
    // The note on the Security Hub finding; the quarantine role (`OperatorRoleArns`).
    "securityhub:BatchUpdateFindings",
    "sts:AssumeRole",
];

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
    let mut state = KeyState {
        access_key_id: key.to_string(),
        user_name: user_name.clone(),
        key_status: None,
        last_used: usage,
        killswitch_policies: Vec::new(),
        role_name: role.map(str::to_owned),
        role_sessions_revoked_before: None,
        role_sessions_denied: Vec::new(),
        permissions_boundary: None,
        user_sessions_revoked_before: None,
        account: account.as_ref().map(ToString::to_string),
        exists: false,
        contained: record.as_ref().and_then(|r| {
            r.applied.as_ref().map(|a| ContainedBy {
                incident_id: a.incident_id.clone(),
                trigger: a.trigger.clone(),
                at: ts(a.at),
                verified_at: r.verified_at.map(ts),
                current: a.generation == r.generation,
            })
        }),
        quarantine: None,
        identity_center: None,
        also_blocked: Vec::new(),
        restores: Vec::new(),
    };
    if let Some(r) = record {
        if let Some(q) = r.quarantine.clone() {
            let read_back = match &config.quarantine {
                Some(c) => match quarantine::read(cloud, c, &q).await {
                    Ok(Standing::Stands) => "stands".to_owned(),
                    Ok(Standing::Lifted) => "lifted".to_owned(),
                    Err(e) => format!("could not be read: {}", e.chain()),
                },
                None => "not read: set KILLSWITCH_QUARANTINE_ROLE_ARN and KILLSWITCH_QUARANTINE_EXTERNAL_ID to read it back".to_owned(),
            };
            state.quarantine = Some(QuarantineState {
                placed: q,
                read_back,
            });
        }
        if let Some(Plan::Portal {
            role,
            user,
            session,
            user_id,
            policy_arn,
        }) = r
            .applied
            .as_ref()
            .filter(|a| a.generation == r.generation)
            .map(|a| &a.plan)
        {
            let wanted = portal::entries(session, user_id.as_deref());
            let (denied, read_back) = portal::read_back(cloud, role, policy_arn, &wanted).await;
            state.identity_center = Some(PortalState {
                user: user.clone(),
                user_id: user_id.clone(),
                role: role.clone(),
                policy_arn: policy_arn.clone(),
                denied,
                read_back,
                assignment_removed: r.assignment.clone(),
            });
            state.exists = true;
        }
        state.restores = r.restores;
    }
    if let Some(u) = &user_name {
        state.key_status = cloud.key_status(u, key).await?;
        state.also_blocked = match cloud.user_keys(u).await {
            Ok(keys) => keys,
            // A name that is not (or no longer) a user: nothing else to block.
            Err(e) if e.aws_code() == Some("NoSuchEntity") => Vec::new(),
            Err(e) => return Err(e),
        }
        .into_iter()
        .filter(|k| &k.id != key)
        .map(|k| format!("access key {} ({:?})", k.id, k.status))
        .collect();
        if let Some(doc) = cloud
            .read_policy(&PolicyTarget::User(u.clone()), policy::USER_POLICY_NAME)
            .await?
            && policy::is_deny_all(&doc)
        {
            state
                .killswitch_policies
                .push(format!("user/{u}: {}", policy::USER_POLICY_NAME));
        }
        state.permissions_boundary = cloud.permissions_boundary(u).await?;
        // Left by an earlier restore: the sessions minted before it stay denied.
        if let Some(cutoff) = cloud
            .read_policy(&PolicyTarget::User(u.clone()), policy::ROLE_POLICY_NAME)
            .await?
            .as_deref()
            .and_then(policy::revocation_cutoff)
        {
            state
                .killswitch_policies
                .push(format!("user/{u}: {}", policy::ROLE_POLICY_NAME));
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
                .push(format!("user/{u}: {}", policy::MANAGED_DENY_ALL_ARN));
        }
    }
    state.exists = state.exists
        || state.key_status.is_some()
        || (role.is_some() && !key.as_str().starts_with("AKIA"));
    if let Some(r) = role {
        if let Some(cutoff) = revoke_role::read_policy(cloud, r)
            .await?
            .as_deref()
            .and_then(policy::revocation_cutoff)
        {
            state
                .killswitch_policies
                .push(format!("role/{r}: {}", policy::ROLE_POLICY_NAME));
            state.role_sessions_revoked_before = Some(ts(cutoff));
        }
        if let Some(ids) = revoke_role::read_sessions(cloud, r)
            .await?
            .as_deref()
            .and_then(policy::denied_sessions)
        {
            state
                .killswitch_policies
                .push(format!("role/{r}: {}", policy::SESSION_POLICY_NAME));
            state.role_sessions_denied = ids.into_iter().collect();
        }
    }
    Ok(state)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RestoreAction {
    ReactivateKey {
        user_name: String,
        access_key_id: String,
    },
    DeletePolicy {
        target: PolicyTarget,
        policy_name: String,
    },
    DetachManaged {
        user_name: String,
        policy_arn: String,
    },
    RemoveSession {
        role_name: String,
        session: String,
    },
    DeleteBoundary {
        user_name: String,
    },
    /// The boundary the lock-out replaced with AWSDenyAll.
    PutBoundaryBack {
        user_name: String,
        policy_arn: String,
    },
    /// Before a user's deny goes: the sessions it minted before now (GetSessionToken,
    /// GetFederationToken — the holder's, up to 36 h) stay denied.
    RevokeUserSessions {
        user_name: String,
        cutoff: DateTime<Utc>,
    },
    /// The principal out of the account's quarantine SCP (the last one out deletes it).
    LiftQuarantine {
        quarantined: Quarantined,
    },
    /// The Identity Center user out of the deny policy (a new default version without them).
    LiftPortalDeny {
        user: String,
        policy_arn: String,
        entries: Vec<portal::Entry>,
    },
    /// The account assignment killswitch removed, created again (the operators' Restore role).
    PutAssignmentBack {
        removed: Removed,
    },
}

impl std::fmt::Display for RestoreAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreAction::ReactivateKey {
                user_name,
                access_key_id,
            } => write!(f, "reactivate key {access_key_id} of user {user_name}"),
            RestoreAction::DeletePolicy {
                target,
                policy_name,
            } => write!(f, "delete inline policy {policy_name} from {target}"),
            RestoreAction::DetachManaged {
                user_name,
                policy_arn,
            } => write!(f, "detach {policy_arn} from user {user_name}"),
            RestoreAction::RemoveSession { role_name, session } => write!(
                f,
                "stop denying session {session} on role {role_name} ({})",
                policy::SESSION_POLICY_NAME
            ),
            RestoreAction::DeleteBoundary { user_name } => write!(
                f,
                "detach {} as the permissions boundary of user {user_name}",
                policy::MANAGED_DENY_ALL_ARN
            ),
            RestoreAction::PutBoundaryBack {
                user_name,
                policy_arn,
            } => write!(
                f,
                "detach {} as the permissions boundary of user {user_name}, putting back {policy_arn}",
                policy::MANAGED_DENY_ALL_ARN
            ),
            RestoreAction::RevokeUserSessions { user_name, cutoff } => write!(
                f,
                "put {} on user {user_name}: sessions it minted before {} stay denied",
                policy::ROLE_POLICY_NAME,
                ts(*cutoff)
            ),
            RestoreAction::LiftQuarantine { quarantined: q } => write!(
                f,
                "take {} out of the org quarantine SCP {} on account {}",
                q.entry, q.policy_name, q.account
            ),
            RestoreAction::LiftPortalDeny {
                user, policy_arn, ..
            } => write!(f, "stop denying Identity Center user {user} ({policy_arn})"),
            RestoreAction::PutAssignmentBack { removed: r } => write!(
                f,
                "assign permission set {} to Identity Center user {} in account {} again",
                r.permission_set, r.user_name, r.account
            ),
        }
    }
}

/// What the operator asked to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreRequest {
    pub user_name: Option<String>,
    pub role_name: Option<String>,
    /// The role session to stop denying, when the incident record does not say.
    pub session: Option<String>,
    /// Also reactivate the leaked key (otherwise it stays Inactive).
    pub reactivate_key: bool,
}

/// What `restore` would change, and why it must not go ahead without `--force`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Assessment {
    pub plan: Vec<RestoreAction>,
    pub refusals: Vec<String>,
    /// What the restore could not check and does not wait for (said, never a refusal).
    pub unchecked: Vec<String>,
    /// IAM knows the key, or the incident record names what was contained (`status`'s `exists`).
    pub key_found: bool,
    /// What the incident record says killswitch applied, when there is one.
    pub recorded_plan: Option<Plan>,
    /// The Security Hub finding set to NOTIFIED: the restore adds its note there.
    pub finding: Option<crate::incident::FindingRef>,
}

/// Reads the key, its owner, the incident record and what an attacker may have left, and works
/// out the restore: only what killswitch placed, nothing else.
pub async fn assess<C: Identity + IncidentStore + Organization>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    req: &RestoreRequest,
) -> Result<Assessment, Error> {
    let (account, _) = cloud.caller().await?;
    let records = Records::new(cloud, config);
    let (state, record) = tokio::join!(
        status(
            cloud,
            config,
            key,
            req.user_name.as_deref(),
            req.role_name.as_deref()
        ),
        records.load(&account, key)
    );
    let state = state?;
    let mut a = Assessment {
        key_found: state.exists,
        recorded_plan: record
            .as_ref()
            .and_then(|r| r.applied.as_ref())
            .map(|ap| ap.plan.clone()),
        finding: record
            .as_ref()
            .and_then(|r| r.applied.as_ref())
            .and_then(|ap| ap.finding.clone()),
        ..Assessment::default()
    };
    let now = Utc::now();
    let began = incident_began(record.as_ref(), config, now);
    let applied_at = record
        .as_ref()
        .and_then(|r| r.applied.as_ref())
        .map(|ap| ap.at);
    let mut flagged = HashSet::new();
    if let Some(user) = &state.user_name {
        flagged = assess_user(
            cloud,
            key,
            req,
            &state,
            user,
            began,
            &a.recorded_plan.clone(),
            &mut a,
        )
        .await?;
    }
    match &record {
        Some(r) => {
            let leaked = state.user_name.as_deref();
            let mut live = live_pivots(cloud, &account, r, leaked, began, now, flagged).await;
            a.refusals.append(&mut live);
            if r.pivots_not_kept > 0 {
                a.unchecked.push(format!(
                    "up to {} more credential(s) the investigation found minted with the key did not fit in the incident record: check them in the incident's reports (STILL OPEN)",
                    r.pivots_not_kept
                ));
            }
        }
        None => a.unchecked.push(if config.incident_table.is_some() {
            "the incident record could not be read: the credentials the investigation found minted with the key (the reports' STILL OPEN items) are not checked".into()
        } else {
            "no incident record (KILLSWITCH_INCIDENT_TABLE not set): the credentials the investigation found minted with the key (the reports' STILL OPEN items) are not checked".into()
        }),
    }
    if let Some(q) = record.as_ref().and_then(|r| r.quarantine.clone()) {
        a.plan
            .push(RestoreAction::LiftQuarantine { quarantined: q });
    }
    if let Some(p) = &state.identity_center {
        assess_portal(&records, &account, key, p, (applied_at, now), &mut a).await?;
    }
    if let Some(role) = &state.role_name {
        assess_role(
            &records,
            &account,
            key,
            req,
            &state,
            role,
            (&a.recorded_plan.clone(), applied_at, now),
            &mut a,
        )
        .await?;
    }
    Ok(a)
}

/// The start of the incident: the trigger's first sighting, else the containment time minus the
/// investigation's lookback (a key the holder created before we arrived must count).
fn incident_began(
    record: Option<&IncidentRecord>,
    config: &Config,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let lookback = TimeDelta::from_std(config.lookback).unwrap_or(TimeDelta::hours(24));
    // GuardDuty's first sighting can be later than the holder's first use: whichever is earlier.
    match record.and_then(|r| r.applied.as_ref()) {
        Some(applied) => {
            let window = applied.at - lookback;
            applied.first_seen.map_or(window, |seen| seen.min(window))
        }
        None => now - lookback,
    }
}

#[allow(clippy::too_many_arguments)]
async fn assess_user<C: Identity>(
    cloud: &C,
    key: &AccessKeyId,
    req: &RestoreRequest,
    state: &KeyState,
    user: &str,
    began: DateTime<Utc>,
    recorded: &Option<Plan>,
    a: &mut Assessment,
) -> Result<HashSet<String>, Error> {
    // What is refused here, so the pivots' re-check does not list it twice.
    let mut flagged = HashSet::new();
    if let (Some(named), Some(owner)) = (&req.user_name, &state.last_used)
        && !named.eq_ignore_ascii_case(&owner.user_name)
    {
        a.refusals.push(format!(
            "--user-name {named} is not the owner of {key}: IAM says it belongs to {}",
            owner.user_name
        ));
    }
    let (keys, console, others) = tokio::join!(
        cloud.user_keys(user),
        cloud.login_profile(user),
        cloud.other_credentials(user)
    );
    for c in others? {
        if c.active && c.created.is_none_or(|t| t >= began) {
            flagged.insert(credential_id(&c.id).to_owned());
            a.refusals.push(format!(
                "user {user} has an active {} {} created {} (since the incident began at {}): it may be the holder's",
                c.kind,
                c.id,
                c.created.map(ts).unwrap_or_else(|| "at an unknown time".into()),
                ts(began)
            ));
        }
    }
    // A named user that does not exist holds nothing (IAM answers NoSuchEntity).
    let keys = match keys {
        Err(e) if e.aws_code() == Some("NoSuchEntity") => Vec::new(),
        other => other?,
    };
    for k in keys {
        if k.id != *key && k.status == KeyStatus::Active && k.created.is_none_or(|c| c >= began) {
            flagged.insert(k.id.to_string());
            a.refusals.push(format!(
                "user {user} has an Active key {} created {} (since the incident began at {}): it may be the holder's; deactivate it or check it first",
                k.id,
                k.created.map(ts).unwrap_or_else(|| "at an unknown time".into()),
                ts(began)
            ));
        }
    }
    if let Some(created) = console?
        && created >= began
    {
        flagged.insert(console_id(user));
        a.refusals.push(format!(
            "user {user} has a console password created {} (since the incident began at {}): it may be the holder's",
            ts(created),
            ts(began)
        ));
    }
    if matches!(state.key_status, Some(KeyStatus::Inactive)) && req.reactivate_key {
        a.plan.push(RestoreAction::ReactivateKey {
            user_name: user.to_owned(),
            access_key_id: key.to_string(),
        });
    }
    let ours = |p: &str| {
        state
            .killswitch_policies
            .iter()
            .any(|x| x == &format!("user/{user}: {p}"))
    };
    let (recorded_deny, replaced_boundary) = match recorded {
        Some(Plan::User {
            user: u,
            deny,
            replaced_boundary,
            ..
        }) if u.eq_ignore_ascii_case(user) => (Some(*deny), replaced_boundary.clone()),
        _ => (None, None),
    };
    // AWSDenyAll may have been attached or set as boundary by someone else (AWS itself, another
    // tool): lifted only when the record says killswitch put it there.
    let ours_managed = ours(policy::MANAGED_DENY_ALL_ARN) && recorded_deny == Some(Deny::Managed);
    let ours_boundary = state.permissions_boundary.as_deref() == Some(policy::MANAGED_DENY_ALL_ARN)
        && recorded_deny == Some(Deny::LockedOutBounded);
    let lifts_deny = ours(policy::USER_POLICY_NAME) || ours_managed || ours_boundary;
    if lifts_deny {
        // First, and the deny stays if it fails: lifting it would revive every session the
        // holder minted with the key.
        a.plan.push(RestoreAction::RevokeUserSessions {
            user_name: user.to_owned(),
            cutoff: policy::cutoff_for(Utc::now()),
        });
    }
    if ours(policy::USER_POLICY_NAME) {
        a.plan.push(RestoreAction::DeletePolicy {
            target: PolicyTarget::User(user.to_owned()),
            policy_name: policy::USER_POLICY_NAME.into(),
        });
    }
    if ours_managed {
        a.plan.push(RestoreAction::DetachManaged {
            user_name: user.to_owned(),
            policy_arn: policy::MANAGED_DENY_ALL_ARN.into(),
        });
    }
    if ours_boundary {
        match replaced_boundary {
            None => a.plan.push(RestoreAction::DeleteBoundary {
                user_name: user.to_owned(),
            }),
            // It was AWSDenyAll before killswitch came: not ours to lift.
            Some(arn) if arn == policy::MANAGED_DENY_ALL_ARN => {}
            Some(arn) => a.plan.push(RestoreAction::PutBoundaryBack {
                user_name: user.to_owned(),
                policy_arn: arn,
            }),
        }
    }
    Ok(flagged)
}

/// A service-specific credential's ID without the service IAM names after it.
fn credential_id(listed: &str) -> &str {
    listed.split_whitespace().next().unwrap_or(listed)
}

fn console_id(user: &str) -> String {
    format!("console:{}", user.to_ascii_lowercase())
}

/// Pivots read again at restore time this many at a time.
const PIVOT_CHECKS_AT_ONCE: usize = 4;

/// A console password the holder set counts as theirs unless it was created later than this
/// after the holder's call (IAM's creation time and CloudTrail's event time differ by seconds).
const PASSWORD_SLACK_MINUTES: i64 = 5;

/// What one check found: the credential's identity (to list it once) and why it blocks.
type Live = Vec<(String, String)>;

/// The credentials the incident's pivots name, read again now. Each one still live is a
/// refusal: the holder keeps that way in whatever the restore lifts. A read that fails is a
/// refusal too (it could not be shown dead). Users the holder minted credentials for are read
/// whole: every Active key, console password or other credential created since the incident
/// began. Sessions the user's deny covers are not listed (the restore keeps them revoked).
async fn live_pivots<C: Identity>(
    cloud: &C,
    account: &AccountId,
    record: &IncidentRecord,
    leaked_user: Option<&str>,
    began: DateTime<Utc>,
    now: DateTime<Utc>,
    mut flagged: HashSet<String>,
) -> Vec<String> {
    let is_leaked = |u: &str| leaked_user.is_some_and(|l| l.eq_ignore_ascii_case(u));
    let mut users: Vec<(String, &Pivot)> = Vec::new();
    for p in &record.pivots {
        if let (
            PivotKind::AccessKey | PivotKind::LoginProfile | PivotKind::ServiceCredential,
            Some(u),
        ) = (p.kind, &p.principal)
            && !is_leaked(u)
            && !users.iter().any(|(seen, _)| seen.eq_ignore_ascii_case(u))
        {
            users.push((u.clone(), p));
        }
    }
    let checks = stream::iter(&record.pivots)
        .map(|p| live_pivot(cloud, account, p, leaked_user, now))
        .buffered(PIVOT_CHECKS_AT_ONCE)
        .collect::<Vec<Live>>();
    // (user, what the holder did with it, whether every credential counts or only new ones)
    let mut acted_on: Vec<(String, String, bool)> = users
        .iter()
        .map(|(u, p)| {
            let context = format!(
                "user {u}, on which the key's holder acted ({} at {})",
                p.via,
                ts(p.time)
            );
            (u.clone(), context, false)
        })
        .collect();
    // Users it created: any credential there is the holder's way back in, whoever made it.
    for (u, at) in &record.created_users {
        if !is_leaked(u)
            && !acted_on
                .iter()
                .any(|(seen, _, _)| seen.eq_ignore_ascii_case(u))
        {
            let context = format!(
                "user {u}, which the key's holder created (CreateUser at {})",
                ts(*at)
            );
            acted_on.push((u.clone(), context, true));
        }
    }
    let sweeps = stream::iter(&acted_on)
        .map(|(u, context, all)| live_user(cloud, u, context, began, *all))
        .buffered(PIVOT_CHECKS_AT_ONCE)
        .collect::<Vec<Live>>();
    let (checks, sweeps) = tokio::join!(checks, sweeps);
    let mut out = Vec::new();
    for (id, why) in checks.into_iter().chain(sweeps).flatten() {
        if flagged.insert(id) {
            out.push(why);
        }
    }
    out
}

/// Whether one pivot's credential is still live.
async fn live_pivot<C: Identity>(
    cloud: &C,
    account: &AccountId,
    p: &Pivot,
    leaked_user: Option<&str>,
    now: DateTime<Utc>,
) -> Live {
    let at = ts(p.time);
    let via = &p.via;
    let user = p.principal.as_deref().or(leaked_user);
    let unreadable = |what: String, e: Error| {
        vec![(
            what.clone(),
            format!(
                "{what}, minted by the key's holder at {at} ({via}), could not be checked: {}",
                e.chain()
            ),
        )]
    };
    match p.kind {
        // Covered by the user's deny, and kept revoked by the restore.
        PivotKind::UserSession => Vec::new(),
        PivotKind::AccessKey => {
            let (Some(user), Some(Ok(k))) =
                (user, p.access_key_id.as_deref().map(AccessKeyId::parse))
            else {
                return Vec::new();
            };
            match cloud.key_status(user, &k).await {
                Ok(Some(KeyStatus::Active)) => vec![(
                    k.to_string(),
                    format!(
                        "access key {k} of user {user}, minted by the key's holder at {at} ({via}), is Active: deactivate it first (aws iam update-access-key --user-name {user} --access-key-id {k} --status Inactive)"
                    ),
                )],
                Ok(_) => Vec::new(),
                Err(e) if e.aws_code() == Some("NoSuchEntity") => Vec::new(),
                Err(e) => unreadable(format!("access key {k} of user {user}"), e),
            }
        }
        PivotKind::LoginProfile => {
            let Some(user) = user else { return Vec::new() };
            match cloud.login_profile(user).await {
                Ok(Some(created))
                    if created <= p.time + TimeDelta::minutes(PASSWORD_SLACK_MINUTES) =>
                {
                    vec![(
                        console_id(user),
                        format!(
                            "user {user} still has the console password the key's holder set at {at} ({via}): delete it first (aws iam delete-login-profile --user-name {user})"
                        ),
                    )]
                }
                Ok(_) => Vec::new(),
                Err(e) if e.aws_code() == Some("NoSuchEntity") => Vec::new(),
                Err(e) => unreadable(format!("the console password of user {user}"), e),
            }
        }
        PivotKind::ServiceCredential => {
            let (Some(user), Some(id)) = (user, p.credential_id.as_deref()) else {
                return Vec::new();
            };
            match cloud.other_credentials(user).await {
                Ok(creds) if creds.iter().any(|c| c.active && credential_id(&c.id) == id) => {
                    vec![(
                        id.to_owned(),
                        format!(
                            "service-specific credential {id} of user {user}, created by the key's holder at {at} ({via}), is Active: deactivate it first (aws iam update-service-specific-credential --user-name {user} --service-specific-credential-id {id} --status Inactive)"
                        ),
                    )]
                }
                Ok(_) => Vec::new(),
                Err(e) if e.aws_code() == Some("NoSuchEntity") => Vec::new(),
                Err(e) => unreadable(
                    format!("service-specific credential {id} of user {user}"),
                    e,
                ),
            }
        }
        PivotKind::RoleSession => live_session(cloud, account, p, now).await,
        PivotKind::TrustPolicy => {
            let Some(role) = p.principal.as_deref() else {
                return Vec::new();
            };
            match cloud.role_id(role).await {
                Ok(None) => Vec::new(),
                Ok(Some(_)) => vec![(
                    format!("trust:{}", role.to_ascii_lowercase()),
                    format!(
                        "the trust policy of role {role}, changed by the key's holder at {at} ({via}), may still let the holder in, and killswitch cannot tell whether it was put back: review it (aws iam get-role --role-name {role} --query Role.AssumeRolePolicyDocument) and put it back, then restore with --force"
                    ),
                )],
                Err(e) => unreadable(format!("the trust policy of role {role}"), e),
            }
        }
    }
}

/// A role session the holder minted: live until the longest a session lasts, unless its role
/// (in this account) denies it, by name or by a cutoff after it, or is gone.
async fn live_session<C: Identity>(
    cloud: &C,
    account: &AccountId,
    p: &Pivot,
    now: DateTime<Utc>,
) -> Live {
    let Some(k) = p.access_key_id.as_deref() else {
        return Vec::new();
    };
    let until = p.time + TimeDelta::hours(MAX_ROLE_SESSION_HOURS);
    if now >= until {
        return Vec::new();
    }
    let arn = p.principal.as_deref().unwrap_or("an unknown role");
    let at = ts(p.time);
    let live = |why: String| {
        vec![(
            format!("session:{k}"),
            format!(
                "session {k} of {arn}, minted by the key's holder at {at} ({}), may be valid until {} (sessions last up to {MAX_ROLE_SESSION_HOURS} h){why}",
                p.via,
                ts(until)
            ),
        )]
    };
    let Some(role) = p.role_in(account.as_str()) else {
        return live(
            ": its role is not in this account, so killswitch cannot check it from here; contain it there first".into(),
        );
    };
    let command = format!(
        ": contain it first (killswitch respond --access-key-id {k} --role-name {role}{} --reason ...)",
        p.role_session_name
            .as_deref()
            .filter(|s| crate::trigger::is_session_name(s))
            .map(|s| format!(" --session-name {s}"))
            .unwrap_or_default()
    );
    let (id, cutoff, sessions) = tokio::join!(
        cloud.role_id(&role),
        revoke_role::read_policy(cloud, &role),
        revoke_role::read_sessions(cloud, &role)
    );
    let id = match id {
        Ok(None) => return Vec::new(),
        Ok(Some(id)) => id,
        Err(e) => return live(format!(" and could not be checked ({})", e.chain())),
    };
    let revoked = match cutoff {
        Ok(doc) => doc
            .as_deref()
            .and_then(policy::revocation_cutoff)
            .is_some_and(|cutoff| cutoff > p.time),
        Err(e) => return live(format!(" and could not be checked ({})", e.chain())),
    };
    let denied = match sessions {
        Ok(doc) => p.role_session_name.as_deref().is_some_and(|name| {
            doc.as_deref()
                .and_then(policy::denied_sessions)
                .is_some_and(|ids| ids.contains(&format!("{id}:{name}")))
        }),
        Err(e) => return live(format!(" and could not be checked ({})", e.chain())),
    };
    if revoked || denied {
        Vec::new()
    } else {
        live(format!(", and role {role} does not deny it{command}"))
    }
}

/// A user the holder minted credentials for (or created): every credential of it created since
/// the incident began is the holder's until shown otherwise.
async fn live_user<C: Identity>(
    cloud: &C,
    user: &str,
    context: &str,
    began: DateTime<Utc>,
    every_credential: bool,
) -> Live {
    // A user the holder created has nothing from before it: every credential counts.
    let new = |t: Option<DateTime<Utc>>| every_credential || t.is_none_or(|c| c >= began);
    let since = |t: Option<DateTime<Utc>>| {
        format!(
            "created {} (since the incident began at {})",
            t.map(ts).unwrap_or_else(|| "at an unknown time".into()),
            ts(began)
        )
    };
    let gone = |e: &Error| e.aws_code() == Some("NoSuchEntity");
    let could_not = |e: Error| {
        vec![(
            format!("user:{}", user.to_ascii_lowercase()),
            format!(
                "{context}: its credentials could not be checked: {}",
                e.chain()
            ),
        )]
    };
    let (keys, console, others) = tokio::join!(
        cloud.user_keys(user),
        cloud.login_profile(user),
        cloud.other_credentials(user)
    );
    let mut out = Vec::new();
    match keys {
        Ok(keys) => {
            for k in keys {
                if k.status == KeyStatus::Active && new(k.created) {
                    out.push((
                        k.id.to_string(),
                        format!(
                            "{context} has an Active key {} {}: deactivate it first (aws iam update-access-key --user-name {user} --access-key-id {} --status Inactive), or delete the user",
                            k.id,
                            since(k.created),
                            k.id
                        ),
                    ));
                }
            }
        }
        // The user is gone, and everything it held with it.
        Err(e) if gone(&e) => return Vec::new(),
        Err(e) => return could_not(e),
    }
    match console {
        Ok(Some(created)) if new(Some(created)) => out.push((
            console_id(user),
            format!(
                "{context} has a console password {}: delete it first (aws iam delete-login-profile --user-name {user})",
                since(Some(created))
            ),
        )),
        Ok(_) => {}
        Err(e) if gone(&e) => {}
        Err(e) => return could_not(e),
    }
    match others {
        Ok(creds) => {
            for c in creds {
                if c.active && new(c.created) {
                    out.push((
                        credential_id(&c.id).to_owned(),
                        format!(
                            "{context} has an active {} {} {}: deactivate or delete it first",
                            c.kind,
                            c.id,
                            since(c.created)
                        ),
                    ));
                }
            }
        }
        Err(e) if gone(&e) => {}
        Err(e) => return could_not(e),
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn assess_role<S: IncidentStore>(
    records: &Records<'_, S>,
    account: &AccountId,
    key: &AccessKeyId,
    req: &RestoreRequest,
    state: &KeyState,
    role: &str,
    (recorded, applied_at, now): (&Option<Plan>, Option<DateTime<Utc>>, DateTime<Utc>),
    a: &mut Assessment,
) -> Result<(), Error> {
    let (recorded_session, recorded_cutoff) = match recorded {
        Some(Plan::Role {
            role: r,
            session,
            cutoff,
        }) if r.eq_ignore_ascii_case(role) => (session.clone(), cutoff.is_some()),
        _ => (None, false),
    };
    if let Some(Plan::Role { role: r, .. }) = recorded
        && !r.eq_ignore_ascii_case(role)
    {
        a.refusals.push(format!(
            "--role-name {role} is not the role this key's incident contained ({r})"
        ));
    }
    if let (Some(asked), Some(recorded)) = (&req.session, &recorded_session)
        && asked != recorded
    {
        a.refusals.push(format!(
            "--session {asked} is not the session this key's incident denied ({recorded}): it may be another incident's"
        ));
    }
    let mut lifts = false;
    if let Some(session) = req.session.clone().or(recorded_session)
        && state.role_sessions_denied.contains(&session)
    {
        // Successive keys of one instance share its session name: one deny, several incidents.
        let others = records
            .others_relying(
                account,
                role,
                key,
                |p| matches!(p, Plan::Role { session: Some(s), .. } if *s == session),
            )
            .await?;
        if !others.is_empty() {
            a.refusals.push(format!(
                "session {session} on role {role} is also denied for the open incident(s) of {}: lifting it would re-arm them",
                others.join(", ")
            ));
        }
        lifts = true;
        a.plan.push(RestoreAction::RemoveSession {
            role_name: role.to_owned(),
            session,
        });
    }
    if state.role_sessions_revoked_before.is_some() && (recorded_cutoff || req.session.is_none()) {
        let others = records
            .others_relying(account, role, key, |p| {
                matches!(
                    p,
                    Plan::Role {
                        cutoff: Some(_),
                        ..
                    }
                )
            })
            .await?;
        if !others.is_empty() {
            a.refusals.push(format!(
                "the cutoff on role {role} also contains the open incident(s) of {}: lifting it would re-arm them",
                others.join(", ")
            ));
        }
        lifts = true;
        a.plan.push(RestoreAction::DeletePolicy {
            target: PolicyTarget::Role(role.to_owned()),
            policy_name: policy::ROLE_POLICY_NAME.into(),
        });
    }
    // The leaked session's own credentials live up to 12 h (a role's longest session): lifting
    // the deny before then hands them back to the holder.
    let expired = applied_at.is_some_and(|at| now - at >= TimeDelta::hours(MAX_ROLE_SESSION_HOURS));
    if lifts && !expired {
        a.refusals.push(match applied_at {
            Some(at) => format!(
                "the leaked session's credentials may still be valid until {} (role sessions last up to {MAX_ROLE_SESSION_HOURS} h; contained at {}): lifting the deny now re-arms them",
                ts(at + TimeDelta::hours(MAX_ROLE_SESSION_HOURS)),
                ts(at)
            ),
            None => format!(
                "no incident record says when the role was contained, so the leaked session's credentials may still be valid (role sessions last up to {MAX_ROLE_SESSION_HOURS} h)"
            ),
        });
    }
    Ok(())
}

/// An Identity Center user: out of the deny policy, and the removed assignment back. The
/// portal's credentials live as long as the permission set's session duration (up to 12 h), and
/// a live portal sign-in fetches fresh ones under the same `aws:userid`.
async fn assess_portal<S: IncidentStore>(
    records: &Records<'_, S>,
    account: &AccountId,
    key: &AccessKeyId,
    p: &PortalState,
    (applied_at, now): (Option<DateTime<Utc>>, DateTime<Utc>),
    a: &mut Assessment,
) -> Result<(), Error> {
    let session = match &a.recorded_plan {
        Some(Plan::Portal { session, .. }) => session.clone(),
        _ => return Ok(()),
    };
    // Always: a failed read-back (throttled, the role gone with its last assignment) must not
    // leave the user denied while the restore reports success. Lifting is idempotent.
    a.plan.push(RestoreAction::LiftPortalDeny {
        user: p.user.clone(),
        policy_arn: p.policy_arn.clone(),
        entries: portal::entries(&session, p.user_id.as_deref()),
    });
    if let Some(removed) = &p.assignment_removed {
        a.plan.push(RestoreAction::PutAssignmentBack {
            removed: removed.clone(),
        });
    }
    let user = p.user.clone();
    let others = records
        .others_relying(
            account,
            &portal::index_name(&p.user),
            key,
            |plan| matches!(plan, Plan::Portal { user: u, .. } if u.eq_ignore_ascii_case(&user)),
        )
        .await?;
    if !others.is_empty() {
        a.refusals.push(format!(
            "Identity Center user {} is also denied for the open incident(s) of {}: lifting the deny would re-arm them",
            p.user,
            others.join(", ")
        ));
    }
    let expired = applied_at.is_some_and(|at| now - at >= TimeDelta::hours(MAX_ROLE_SESSION_HOURS));
    if !expired {
        a.refusals.push(match applied_at {
            Some(at) => format!(
                "the leaked portal credentials may still be valid until {} (permission-set sessions last up to {MAX_ROLE_SESSION_HOURS} h; contained at {}), and a live portal sign-in fetches fresh ones under the same session: lifting the deny now re-arms them. Disable the user or end their Identity Center sessions first",
                ts(at + TimeDelta::hours(MAX_ROLE_SESSION_HOURS)),
                ts(at)
            ),
            None => "no incident record says when the user was contained, so the leaked portal credentials may still be valid".into(),
        });
    }
    Ok(())
}

/// The longest a role session can last (`MaxSessionDuration` up to 12 h).
pub const MAX_ROLE_SESSION_HOURS: i64 = 12;

#[derive(Debug, Serialize)]
pub struct Restored {
    pub access_key_id: String,
    pub operator_arn: Option<String>,
    pub recorded: bool,
    /// Why the restore is not in the incident record, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_recorded: Option<String>,
    /// What the restore set out to do; none of it was carried out when it was refused.
    pub plan: Vec<String>,
    pub done: Vec<String>,
    pub failed: Vec<String>,
    /// Why nothing was changed (the assessment's refusals, without `--force`).
    pub refused: Vec<String>,
    /// The assessment's refusals `--force` went past.
    pub forced_past: Vec<String>,
    /// What the restore could not check and did not wait for.
    pub unchecked: Vec<String>,
    /// The notice before acting went out.
    pub announced: bool,
    /// The notice after acting (or the refusal's) went out.
    pub notified: bool,
    /// What the operator does now.
    pub next_steps: Vec<String>,
}

/// Records the restore in the incident store (so the follow-through does not take it for
/// tampering) with the operator's own identity, tells the on-call channel before acting, applies
/// the plan and tells it again what was done. `force`: go ahead despite the assessment's
/// refusals, or when the restore cannot be recorded.
pub async fn restore<
    C: Operator + Notifier + Identity + IncidentStore + Findings + Organization + IdentityCenterAdmin,
>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    assessment: &Assessment,
    requested_by: &str,
    reason: &str,
    force: bool,
) -> Restored {
    let operator = cloud.caller().await.ok();
    let operator_arn = operator
        .as_ref()
        .map(|(_, arn)| arn.clone())
        .unwrap_or_else(|| "(unknown: sts:GetCallerIdentity failed)".into());
    let plan = &assessment.plan;
    let mut out = Restored {
        access_key_id: key.to_string(),
        operator_arn: operator.as_ref().map(|(_, arn)| arn.clone()),
        recorded: false,
        not_recorded: None,
        plan: plan.iter().map(ToString::to_string).collect(),
        done: Vec::new(),
        failed: Vec::new(),
        refused: Vec::new(),
        forced_past: if force {
            assessment.refusals.clone()
        } else {
            Vec::new()
        },
        unchecked: assessment.unchecked.clone(),
        announced: false,
        notified: false,
        next_steps: Vec::new(),
    };
    let header = |what: &str| {
        format!(
            "{what}\n\nKey:    {key}\nBy:     {requested_by}\nAs:     {operator_arn}\nReason: {reason}\n"
        )
    };
    if !assessment.refusals.is_empty() && !force {
        out.refused = assessment.refusals.clone();
        let mut body = header(&format!(
            "A restore of {key} was REFUSED: nothing was changed."
        ));
        body.push_str("\nWhy:\n");
        for r in &assessment.refusals {
            body.push_str(&format!("  - {r}\n"));
        }
        if !plan.is_empty() {
            body.push_str("\nThe plan, NOT carried out:\n");
            for action in plan {
                body.push_str(&format!("  - {action}\n"));
            }
        }
        body.push_str("\nIf this restore was not expected, someone may be trying to re-arm the key's holder.\n");
        out.not_recorded =
            Some("refused: nothing was changed, so there is nothing to record".into());
        out.next_steps = refused_next_steps();
        out.notified = publish(
            cloud,
            (operator.as_ref().map(|(a, _)| a.as_str()), key.as_str()),
            &format!("[killswitch] RESTORE REFUSED: {key} by {requested_by}"),
            &body,
        )
        .await;
        if !out.notified {
            out.next_steps.push(
                "Tell on-call yourself: the RESTORE REFUSED notice could not be sent.".into(),
            );
        }
        return out;
    }
    let records = Records::new(cloud, config);
    let recording = match &operator {
        Some((account, arn)) => {
            let restore = Restore {
                by: requested_by.to_owned(),
                operator_arn: Some(arn.clone()),
                reason: reason.to_owned(),
                at: Utc::now(),
                actions: plan.iter().map(ToString::to_string).collect(),
            };
            records.record_restore(account, key, restore).await
        }
        None => Err(Error::BadEvent(
            "sts:GetCallerIdentity failed: the restore cannot name who made it".into(),
        )),
    };
    out.recorded = recording.is_ok();
    out.not_recorded = match &recording {
        Ok(()) => None,
        Err(_) if !records.enabled => {
            Some("no incident table (KILLSWITCH_INCIDENT_TABLE is not set)".into())
        }
        Err(e) => Some(format!(
            "the incident table could not be written: {}",
            e.chain()
        )),
    };
    if recording.is_err() && records.enabled && !force {
        // Unrecorded, a follow-through still in flight would take the restore for tampering
        // and contain the key again; and the history would not say who lifted it.
        // The table's error is in `not_recorded`, said once.
        out.failed.push(
            "nothing restored: the restore could not be recorded in the incident table".into(),
        );
        out.next_steps = vec![
            "Run restore again as the incident-response role (the stack's IncidentResponseRoleArn output), which may write KILLSWITCH_INCIDENT_TABLE.".into(),
            "Or add --force to restore unrecorded: a follow-through still in flight then takes the restore for tampering and contains the key again, and the record will not say who lifted it.".into(),
        ];
        return out;
    }
    let mut before = header(&format!(
        "Containment of {key} is being undone by hand, now."
    ));
    before.push_str("\nAbout to:\n");
    for action in plan {
        before.push_str(&format!("  - {action}\n"));
    }
    if force && !assessment.refusals.is_empty() {
        before.push_str("\nForced past these warnings:\n");
        for r in &assessment.refusals {
            before.push_str(&format!("  - {r}\n"));
        }
    }
    out.announced = publish(
        cloud,
        (operator.as_ref().map(|(a, _)| a.as_str()), key.as_str()),
        &format!("[killswitch] RESTORING: {key} by {requested_by}"),
        &before,
    )
    .await;
    // A user's deny is lifted only after its minted sessions are revoked.
    let mut revoke_failed_for: Option<String> = None;
    for action in plan {
        let user_deny_of = match action {
            RestoreAction::DeletePolicy {
                target: PolicyTarget::User(u),
                ..
            }
            | RestoreAction::DetachManaged { user_name: u, .. }
            | RestoreAction::DeleteBoundary { user_name: u }
            | RestoreAction::PutBoundaryBack { user_name: u, .. } => Some(u),
            _ => None,
        };
        if let (Some(u), Some(failed)) = (user_deny_of, &revoke_failed_for)
            && u == failed
        {
            if !force {
                out.failed.push(format!(
                    "{action}: skipped, the user's minted sessions could not be revoked first (--force lifts the deny anyway: sessions the holder minted then work again)"
                ));
                continue;
            }
            out.failed.push(format!(
                "{action}: FORCED although the user's minted sessions could not be revoked first: sessions the holder minted work again"
            ));
        }
        let result = match action {
            RestoreAction::ReactivateKey { user_name, .. } => {
                deactivate_key::undo(cloud, user_name, key).await
            }
            RestoreAction::DeletePolicy {
                target: PolicyTarget::User(user),
                ..
            } => deny_user::undo(cloud, user, Deny::Inline).await,
            RestoreAction::DetachManaged { user_name, .. } => {
                deny_user::undo(cloud, user_name, Deny::Managed).await
            }
            RestoreAction::DeleteBoundary { user_name } => {
                deny_user::undo(cloud, user_name, Deny::LockedOutBounded).await
            }
            RestoreAction::PutBoundaryBack {
                user_name,
                policy_arn,
            } => cloud.put_boundary(user_name, policy_arn).await,
            RestoreAction::DeletePolicy {
                target: PolicyTarget::Role(role),
                ..
            } => revoke_role::undo(cloud, role).await,
            RestoreAction::RemoveSession { role_name, session } => {
                revoke_role::undo_session(cloud, role_name, session)
                    .await
                    .map(|_| ())
            }
            RestoreAction::LiftQuarantine { quarantined: q } => match &config.quarantine {
                Some(c) => quarantine::lift(
                    cloud,
                    config.incident_table.is_some().then_some(cloud),
                    c,
                    q,
                )
                .await
                .map(|done| {
                    tracing::info!(%done, "org quarantine lifted");
                }),
                None => Err(Error::BadEvent(format!(
                    "NOT lifted: set KILLSWITCH_QUARANTINE_ROLE_ARN and KILLSWITCH_QUARANTINE_EXTERNAL_ID and run restore again, or an organization admin takes {} out of SCP {} ({}) by hand",
                    q.entry, q.policy_name, q.policy_id
                ))),
            },
            RestoreAction::LiftPortalDeny {
                policy_arn,
                entries,
                ..
            } => {
                let account = policy_arn.split(':').nth(4).unwrap_or_default();
                let lease =
                    portal::lease(config.incident_table.is_some().then_some(cloud), account).await;
                let lifted = portal::lift(cloud, policy_arn, entries).await;
                lease.give_back().await;
                lifted.map(|done| {
                    tracing::info!(%done, "Identity Center user no longer denied");
                })
            }
            RestoreAction::PutAssignmentBack { removed } => match &config.identity_center {
                Some(c) => portal::put_back(cloud, c, removed).await.map(|done| {
                    tracing::info!(%done, "Identity Center assignment put back");
                }),
                None => Err(Error::BadEvent(format!(
                    "NOT put back: set KILLSWITCH_IDENTITY_CENTER_ROLE_ARN, KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID and KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN and run restore again, or by hand: {}",
                    portal::manual_put_back(removed)
                ))),
            },
            RestoreAction::RevokeUserSessions { user_name, cutoff } => {
                // The cutoff is when the deny goes, not when the plan was shown.
                let cutoff = (*cutoff).max(policy::cutoff_for(Utc::now()));
                let result = cloud
                    .put_policy(
                        &PolicyTarget::User(user_name.clone()),
                        policy::ROLE_POLICY_NAME,
                        &policy::revoke_older_sessions(cutoff),
                    )
                    .await;
                if result.is_err() {
                    revoke_failed_for = Some(user_name.clone());
                }
                result
            }
        };
        match result {
            Ok(()) => out.done.push(action.to_string()),
            Err(e) if e.aws_code() == Some("LimitExceeded") => out.failed.push(format!(
                "{action}: the user's inline-policy quota is full (likely filled by the key's holder): remove the policies that filled it, then run restore again"
            )),
            Err(e) => out.failed.push(format!("{action}: {}", e.chain())),
        }
    }
    // The finding stays open (NOTIFIED) for a human to resolve; it only learns why.
    // NOTIFIED with the note: a finding still NEW (our first update failed or found nothing)
    // would come back as a NEW import and, with the Security Hub trigger on, contain the key
    // again right after the restore.
    if let Some(finding) = &assessment.finding
        && !out.done.is_empty()
        && config.security_hub_updates
    {
        let note = crate::playbook::finding::restore_note(key.as_str(), requested_by, reason);
        match cloud.update_finding(finding, true, &note).await {
            Ok(true) => out.done.push(format!(
                "note on the Security Hub finding in {}",
                finding.region
            )),
            // Security Hub is not enabled there: nothing to tell, nothing failed.
            Ok(false) => {}
            Err(e) => out
                .failed
                .push(format!("note on the Security Hub finding: {}", e.chain())),
        }
    }
    let mut body = header(&format!("Containment of {key} was undone by hand."));
    body.push_str(&format!(
        "Recorded in the incident store: {}\n\nDone:\n",
        match &out.not_recorded {
            None => "yes".to_owned(),
            Some(why) => format!("NO: {why}"),
        }
    ));
    for d in &out.done {
        body.push_str(&format!("  - {d}\n"));
    }
    if !out.failed.is_empty() {
        body.push_str("Failed:\n");
        for f in &out.failed {
            body.push_str(&format!("  - {f}\n"));
        }
    }
    if !plan
        .iter()
        .any(|a| matches!(a, RestoreAction::ReactivateKey { .. }))
    {
        body.push_str(&format!(
            "\nKey {key} stays Inactive (reactivating it is its own flag: --reactivate-key).\n"
        ));
    }
    body.push_str("\nNothing else was changed. If this was not expected, contain the key again.\n");
    if !out.unchecked.is_empty() {
        body.push_str("\nNot checked:\n");
        for u in &out.unchecked {
            body.push_str(&format!("  - {u}\n"));
        }
    }
    out.notified = publish(
        cloud,
        (operator.as_ref().map(|(a, _)| a.as_str()), key.as_str()),
        &format!(
            "[killswitch] RESTORED{}: {key} by {requested_by}",
            if out.failed.is_empty() {
                ""
            } else {
                " (PARTLY)"
            }
        ),
        &body,
    )
    .await;
    out.next_steps = done_next_steps(&out, key, records.enabled, stays_inactive(plan));
    out
}

/// A user's key whose deny is lifted without `--reactivate-key`.
fn stays_inactive(plan: &[RestoreAction]) -> bool {
    !plan
        .iter()
        .any(|a| matches!(a, RestoreAction::ReactivateKey { .. }))
        && plan
            .iter()
            .any(|a| matches!(a, RestoreAction::RevokeUserSessions { .. }))
}

/// After a refusal: fix what it lists, or `--force` and what that costs.
pub fn refused_next_steps() -> Vec<String> {
    vec![
        "Deal with each refusal listed (most name the command that does it), then run the same restore again.".into(),
        "Or add --force to restore anyway: what the refusals list stays as it is (a live credential keeps working for the key's holder), and the RESTORING notice names what was forced past.".into(),
    ]
}

/// After a restore that acted: what is left to do.
fn done_next_steps(
    out: &Restored,
    key: &AccessKeyId,
    store: bool,
    stays_inactive: bool,
) -> Vec<String> {
    let mut next = Vec::new();
    if !out.failed.is_empty() {
        next.push(
            "Fix what FAILED says, then run the same restore again (what is done stays done)."
                .to_owned(),
        );
    }
    if !out.recorded && store {
        next.push(format!(
            "The restore is not in the incident record: a follow-through still in flight may contain {key} again; check with killswitch status --access-key-id {key} in a few minutes."
        ));
    }
    match (out.announced, out.notified) {
        (true, true) => {}
        (false, false) => next.push(
            "Tell on-call yourself: neither SNS notice (before, after) could be sent.".into(),
        ),
        (false, true) => {
            next.push("Tell on-call yourself: the notice before acting could not be sent.".into())
        }
        (true, false) => {
            next.push("Tell on-call yourself: the notice after acting could not be sent.".into())
        }
    }
    if stays_inactive {
        next.push(format!(
            "Key {key} stays Inactive: its owner needs a new key, not this one back."
        ));
    }
    next.push(format!(
        "See what is left in place: killswitch status --access-key-id {key}"
    ));
    next
}

/// A restore notice: email, and a card in the key's chat thread when a chat topic is set.
async fn publish<N: Notifier>(
    cloud: &N,
    thread: (Option<&str>, &str),
    subject: &str,
    body: &str,
) -> bool {
    let (account, key) = thread;
    let chat = async {
        if cloud.chats() {
            let kind = if subject.contains("REFUSED") {
                "restore-refused"
            } else {
                "restore"
            };
            let card = crate::report::chat::notice_card(account, key, subject, kind, body);
            if let Err(e) = cloud.publish_chat(&card).await {
                tracing::error!(error = %e.chain(), "could not publish the restore card");
            }
        }
    };
    let subject = sanitize_subject(subject);
    let (email, ()) = tokio::join!(cloud.publish(&subject, body), chat);
    match email {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e.chain(), "could not publish the restore notice");
            false
        }
    }
}
