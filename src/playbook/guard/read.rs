//! The guard's single wave of reads: the key's account, its owner, the state the writes will
//! change and, for a manual request, who CloudTrail says signs with the key.

use chrono::{TimeDelta, Utc};

use crate::config::Config;
use crate::error::{AwsFailure, Error};
use crate::incident::{AccessKeyId, AccountId, Incident, KeyKind, Principal, Trigger};
use crate::playbook::revoke_role;
use crate::policy;
use crate::ports::{ActivityLog, Caller, Identity, KeyStatus, KeyUsage, LookupQuery, PolicyTarget};
use crate::record::IncidentRecord;

/// The state before containment of the user the trigger names: it decides nothing, it only
/// lets the report say "already contained" without a read on the write path.
pub struct UserBefore {
    pub user: String,
    pub key: Option<Result<Option<KeyStatus>, Error>>,
    pub policy: Result<Option<String>, Error>,
    /// Read only when IAM knows neither the key nor the user's holding it: whether the user
    /// is still there (`iam:ListAccessKeys` answers NoSuchEntity for a deleted user).
    pub exists: Option<Result<bool, Error>>,
}

/// A user's state before containment, in one wave: the key's status (long-term keys only) and
/// the deny policy under killswitch's name.
pub async fn read_user<C: Identity>(cloud: &C, user: &str, key: &AccessKeyId) -> UserBefore {
    let target = PolicyTarget::User(user.to_owned());
    let (status, policy) = tokio::join!(
        async {
            if key.kind() == KeyKind::LongTerm {
                Some(cloud.key_status(user, key).await)
            } else {
                None
            }
        },
        cloud.read_policy(&target, policy::USER_POLICY_NAME)
    );
    UserBefore {
        user: user.to_owned(),
        key: status,
        policy,
        exists: None,
    }
}

/// A role's state before containment: the revocation cutoff (never moved backwards), the
/// session deny (sessions of earlier incidents are kept) and the role's unique ID (the session's
/// `aws:userid` must start with it, or the deny would name nobody).
pub struct RoleBefore {
    pub cutoff: Result<Option<String>, Error>,
    pub sessions: Result<Option<String>, Error>,
    pub role_id: Result<Option<String>, Error>,
}

/// The answers of the guard's single wave of reads.
pub struct Reads {
    /// `None`: not asked (the trigger already rules the incident out).
    pub account: Option<Result<AccountId, Error>>,
    pub usage: Option<Result<Option<KeyUsage>, Error>>,
    pub user_before: Option<UserBefore>,
    /// The role's policies now and its unique ID.
    pub role_before: Option<RoleBefore>,
    /// Who CloudTrail says signs with a session key a manual request names an owner for: a
    /// request is not proof of ownership. `None`: not asked.
    pub owner_seen: Option<Result<Option<Caller>, Error>>,
    /// The incident record, when it was read in this wave (the function's own account, with a
    /// table): `Some(None)` = read, nothing usable.
    pub record: Option<Option<IncidentRecord>>,
}

/// One concurrent wave: the key's account, its owner, and the state the writes will change.
/// `me` is `None` when our own identity is being learnt in the same wave.
pub async fn read<C: Identity + ActivityLog>(
    cloud: &C,
    incident: &Incident,
    me: Option<&AccountId>,
    config: &Config,
) -> Reads {
    if is_ruled_out(incident, me) {
        return Reads {
            account: None,
            usage: None,
            user_before: None,
            role_before: None,
            owner_seen: None,
            record: None,
        };
    }
    let key = &incident.key;
    let long_term = key.kind() == KeyKind::LongTerm;
    let confirm_owner = matches!(incident.trigger, Trigger::Manual { .. })
        && !long_term
        && matches!(
            incident.principal,
            Principal::AssumedRole { .. } | Principal::IamUser { .. }
        );
    let (account, usage, user_before, role_before, owner_seen) = tokio::join!(
        cloud.key_account(key),
        async {
            if long_term {
                Some(cloud.key_usage(key).await)
            } else {
                None
            }
        },
        async {
            let Principal::IamUser { user_name } = &incident.principal else {
                return None;
            };
            Some(read_user(cloud, user_name, key).await)
        },
        read_role(cloud, &incident.principal),
        async {
            if confirm_owner {
                Some(owner_in_cloudtrail(cloud, key, config).await)
            } else {
                None
            }
        }
    );
    let mut user_before = user_before;
    // IAM knows no such key and the named user does not hold it: deleted with its user, or
    // deleted by the key's holder after minting sessions with it (they outlive the key, up to
    // 36 h). Only the user's existence tells: one more read, only in this rare case.
    if let (Some(Ok(None)), Some(before)) = (&usage, user_before.as_mut())
        && matches!(before.key, Some(Ok(None)))
    {
        before.exists = Some(user_exists(cloud, &before.user).await);
    }
    Reads {
        account: Some(account),
        usage,
        user_before,
        role_before,
        owner_seen,
        record: None,
    }
}

/// The trigger alone rules the incident out (root, a principal type killswitch does not
/// contain, another account's trigger): nothing to read.
fn is_ruled_out(incident: &Incident, me: Option<&AccountId>) -> bool {
    matches!(
        incident.principal,
        Principal::Root | Principal::Other { .. }
    ) || matches!((&incident.account, me), (Some(a), Some(m)) if a != m)
}

/// The role's state before containment, when the trigger names a role.
async fn read_role<C: Identity>(cloud: &C, principal: &Principal) -> Option<RoleBefore> {
    match principal {
        Principal::AssumedRole { role_name, .. } => {
            let (cutoff, sessions, role_id) = tokio::join!(
                revoke_role::read_policy(cloud, role_name),
                revoke_role::read_sessions(cloud, role_name),
                cloud.role_id(role_name)
            );
            Some(RoleBefore {
                cutoff,
                sessions,
                role_id,
            })
        }
        Principal::IamUser { .. }
        | Principal::Root
        | Principal::Other { .. }
        | Principal::Unresolved => None,
    }
}

/// Whether the user is still there (`iam:ListAccessKeys` answers NoSuchEntity for a deleted
/// user).
async fn user_exists<C: Identity>(cloud: &C, user: &str) -> Result<bool, Error> {
    match cloud.user_keys(user).await {
        Ok(_) => Ok(true),
        Err(e) if e.is(AwsFailure::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The identity of any call the key signed, one page per Region at once: the Regions
/// configured, else us-east-1 (global STS and IAM calls) and the function's own.
async fn owner_in_cloudtrail<C: ActivityLog>(
    cloud: &C,
    key: &AccessKeyId,
    config: &Config,
) -> Result<Option<Caller>, Error> {
    let mut regions: Vec<String> = if config.regions.is_empty() {
        vec!["us-east-1".into()]
    } else {
        config.regions.clone()
    };
    if let Ok(own) = std::env::var("AWS_REGION")
        && !regions.contains(&own)
    {
        regions.push(own);
    }
    let end = Utc::now();
    let start = end - TimeDelta::from_std(config.lookback).unwrap_or(TimeDelta::hours(24));
    let pages = futures::future::join_all(regions.iter().map(|region| {
        cloud.lookup_page(LookupQuery {
            region,
            key,
            start,
            end,
            next_token: None,
        })
    }))
    .await;
    let mut first_error = None;
    for page in pages {
        match page {
            Ok(p) => {
                if let Some(c) = p.calls.into_iter().find_map(|c| c.caller) {
                    return Ok(Some(c));
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}
