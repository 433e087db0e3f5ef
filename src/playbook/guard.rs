//! Everything that can refuse an incident, and whose key it is. The reads go out in one
//! concurrent wave; the checks on their answers make no call.

use chrono::{DateTime, TimeDelta, Utc};
use tracing::warn;

use super::{Context, Plan, Step};
use crate::config::Config;
use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId, Incident, KeyKind, Principal, Trigger};
use crate::policy;
use crate::ports::{ActivityLog, Caller, Identity, KeyStatus, KeyUsage, LookupQuery, PolicyTarget};
use crate::record::IncidentRecord;
use crate::report::{Outcome, Report, Status};

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
    let ruled_out = matches!(
        incident.principal,
        Principal::Root | Principal::Other { .. }
    ) || matches!((&incident.account, me), (Some(a), Some(m)) if a != m);
    if ruled_out {
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
        async {
            match &incident.principal {
                Principal::AssumedRole { role_name, .. } => {
                    let (cutoff, sessions, role_id) = tokio::join!(
                        super::revoke_role::read_policy(cloud, role_name),
                        super::revoke_role::read_sessions(cloud, role_name),
                        cloud.role_id(role_name)
                    );
                    Some(RoleBefore {
                        cutoff,
                        sessions,
                        role_id,
                    })
                }
                _ => None,
            }
        },
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
        before.exists = Some(match cloud.user_keys(&before.user).await {
            Ok(_) => Ok(true),
            Err(e) if e.aws_code() == Some("NoSuchEntity") => Ok(false),
            Err(e) => Err(e),
        });
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

/// Whether CloudTrail's signer is the principal a request names (names are unique regardless
/// of case).
fn is_named(principal: &Principal, seen: &Caller) -> bool {
    let name = seen.name.as_deref().unwrap_or("");
    match principal {
        Principal::AssumedRole {
            role_name,
            session_name,
            ..
        } => {
            // A named session must be the one that signs: denying another session of the role
            // would leave the leaked one working.
            let session_ok = session_name.as_deref().is_none_or(|wanted| {
                seen.principal_id
                    .as_deref()
                    .and_then(|p| p.split_once(':'))
                    .is_some_and(|(_, s)| s == wanted)
            });
            seen.kind == "AssumedRole" && name.eq_ignore_ascii_case(role_name) && session_ok
        }
        Principal::IamUser { user_name } => {
            matches!(seen.kind.as_str(), "IAMUser" | "FederatedUser")
                && name.eq_ignore_ascii_case(user_name)
        }
        _ => false,
    }
}

fn describe(seen: &Caller) -> String {
    let name = crate::report::quoted(seen.name.as_deref().unwrap_or("?"));
    match seen.kind.as_str() {
        "AssumedRole" => format!("role {name}"),
        "IAMUser" => format!("IAM user {name}"),
        other => format!("{} {name}", crate::report::quoted(other)),
    }
}

pub fn refuse(report: &mut Report, step: Step, reason: String, now: DateTime<Utc>) {
    warn!(reason = %reason, "refused");
    report.status = Status::Refused;
    report.summary = format!("Not contained: {reason}. A human must decide.");
    report.record(step, Outcome::Skipped, reason, now);
}

/// Input that names another account's key: an error for the caller, nothing changed.
pub fn reject(report: &mut Report, reason: String, now: DateTime<Utc>) {
    // The report says it; a warning would say it a third time on an operator's terminal.
    tracing::info!(reason = %reason, "rejected");
    report.status = Status::Rejected;
    report.summary = format!("Rejected: {reason}. Nothing was changed.");
    report.record(Step::CheckAccount, Outcome::Skipped, reason, now);
}

/// Decides on the reads: a plan, or `None` with the report saying why.
pub fn decide(
    incident: &Incident,
    reads: &Reads,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Plan> {
    let me = ctx.responder;
    let now = ctx.now;
    match &incident.principal {
        Principal::Root => {
            refuse(report, Step::ResolveOwner, "the key belongs to the root user, which IAM policies cannot restrict; delete or deactivate root keys from the root user or with sts:AssumeRoot from the management account".into(), now);
            return None;
        }
        Principal::Other { user_type } => {
            refuse(
                report,
                Step::ResolveOwner,
                format!("principal type {user_type} is not something killswitch contains"),
                now,
            );
            return None;
        }
        _ => {}
    }
    if let Some(acct) = &incident.account
        && acct != &me.account
    {
        reject(
            report,
            format!(
                "the trigger is for account {acct}, this function runs in {}",
                me.account
            ),
            now,
        );
        return None;
    }
    match &reads.account {
        Some(Ok(owner)) if owner == &me.account => {
            report.record(
                Step::CheckAccount,
                Outcome::Done,
                format!("key belongs to this account ({owner})"),
                now,
            );
        }
        Some(Ok(owner)) => {
            reject(
                report,
                format!("the key belongs to account {owner}, not to {}", me.account),
                now,
            );
            return None;
        }
        Some(Err(e)) => {
            report.record(Step::CheckAccount, Outcome::Failed, e.chain(), now);
            report.status = Status::Failed;
            report.summary = "Could not confirm the key belongs to this account, so nothing was changed; Lambda will retry.".into();
            return None;
        }
        None => {
            report.record(
                Step::CheckAccount,
                Outcome::Failed,
                "the key's account was not read",
                now,
            );
            report.status = Status::Failed;
            report.summary = "Could not confirm the key belongs to this account, so nothing was changed; Lambda will retry.".into();
            return None;
        }
    }
    let usage = match &reads.usage {
        None => None,
        Some(Ok(u)) => u.clone(),
        Some(Err(e)) => {
            report.record(Step::ResolveOwner, Outcome::Failed, e.chain(), now);
            None
        }
    };
    if matches!(incident.principal, Principal::AssumedRole { .. })
        && incident.key.kind() == KeyKind::LongTerm
    {
        // A long-term key belongs to an IAM user: a role named for it is a mistake (or a way to
        // put a deny on a role while the key stays active).
        reject(
            report,
            format!(
                "{} names a role, but {} is a long-term (AKIA) key of an IAM user: name the user, or no principal and IAM will tell",
                incident.principal, incident.key
            ),
            now,
        );
        return None;
    }
    let mut session_seen = None;
    match &reads.owner_seen {
        None => {}
        Some(Ok(Some(seen))) if is_named(&incident.principal, seen) => {
            report.record(
                Step::ResolveOwner,
                Outcome::Done,
                format!(
                    "owner confirmed: CloudTrail shows the key signing calls as {}",
                    describe(seen)
                ),
                now,
            );
            session_seen = seen.principal_id.clone();
        }
        Some(Ok(Some(seen))) => {
            reject(
                report,
                format!(
                    "the request names {} but CloudTrail shows key {} signing calls as {}: a request is not proof of ownership",
                    incident.principal,
                    incident.key,
                    describe(seen)
                ),
                now,
            );
            return None;
        }
        Some(Ok(None)) => report.record(
            Step::ResolveOwner,
            Outcome::Done,
            format!("owner UNCONFIRMED: no CloudTrail event of this key yet (Event history lags minutes), so acting on the request's word that it is {}", incident.principal),
            now,
        ),
        Some(Err(e)) => report.record(
            Step::ResolveOwner,
            Outcome::Done,
            format!(
                "owner UNCONFIRMED: the CloudTrail lookup failed ({}), so acting on the request's word that it is {}",
                e.chain(),
                incident.principal
            ),
            now,
        ),
    }
    let plan = match (&incident.principal, incident.key.kind()) {
        (
            Principal::AssumedRole {
                role_name,
                session_name,
                role_id,
            },
            _,
        ) => {
            // The session CloudTrail saw, when the request did not name one.
            let seen = session_seen
                .as_deref()
                .and_then(|p| p.split_once(':'))
                .filter(|(id, s)| {
                    crate::trigger::is_role_id(id) && crate::trigger::is_session_name(s)
                });
            let (session, id) = match (seen, session_name) {
                (Some((id, s)), _) => (Some(s), Some(id)),
                (None, Some(s)) => (Some(s.as_str()), role_id.as_deref()),
                (None, None) => (None, role_id.as_deref()),
            };
            if super::portal::is_identity_center_role(role_name) {
                portal_plan(role_name, session, id, reads, ctx, report)?
            } else {
                role_plan(role_name, session, id, reads, ctx, report)
            }
        }
        // IAM knows no such key, and the named user holds none: deleted with its user (the
        // same outcome whatever the trigger), or deleted by the key's holder.
        (Principal::IamUser { user_name }, KeyKind::LongTerm)
            if matches!(reads.usage, Some(Ok(None)))
                && matches!(
                    reads.user_before.as_ref().and_then(|b| b.key.as_ref()),
                    Some(Ok(None))
                ) =>
        {
            // A manual request's word is no proof the key was that user's: a made-up key ID
            // must not put a deny on whoever the request names. AWS's own findings are.
            let manual = matches!(incident.trigger, Trigger::Manual { .. });
            match reads.user_before.as_ref().and_then(|b| b.exists.as_ref()) {
                Some(Ok(false)) => {
                    key_not_found(report, &format!(" and user {user_name} is gone"), now);
                    return None;
                }
                Some(Ok(true)) if manual => {
                    key_not_found(
                        report,
                        &format!(
                            " (user {user_name} exists, but a manual request is not proof the key was theirs: if it was and sessions minted with it may live, deny the user by hand)"
                        ),
                        now,
                    );
                    return None;
                }
                // The key is gone but its user is not: sessions minted with the key outlive it
                // (GetSessionToken, GetFederationToken: up to 36 h) and only the user's deny
                // stops them.
                Some(Ok(true)) => {
                    report.record(
                        Step::ResolveOwner,
                        Outcome::Done,
                        format!("IAM no longer knows the key, but user {user_name} exists: denying the user, since sessions minted with the key outlive it (up to 36 h)"),
                        now,
                    );
                    Plan::User {
                        user: user_name.clone(),
                        deactivate: false,
                        deny: Default::default(),
                        replaced_boundary: None,
                    }
                }
                Some(Err(e)) => {
                    report.record(Step::ResolveOwner, Outcome::Failed, e.chain(), now);
                    report.status = Status::Failed;
                    report.summary = format!(
                        "IAM does not know the key and whether user {user_name} still exists could not be read, so nothing was changed; Lambda will retry."
                    );
                    return None;
                }
                None => {
                    report.status = Status::Failed;
                    report.summary = format!(
                        "IAM does not know the key and whether user {user_name} still exists was not read, so nothing was changed; Lambda will retry."
                    );
                    return None;
                }
            }
        }
        (Principal::IamUser { user_name }, kind) => {
            // IAM knows the owner for sure; the trigger's name is only a hint.
            let user = match &usage {
                Some(u) if &u.user_name != user_name => {
                    report.record(Step::ResolveOwner, Outcome::Done, format!("trigger named user {user_name}, IAM says the key belongs to {}; using IAM's answer", u.user_name), now);
                    u.user_name.clone()
                }
                _ => user_name.clone(),
            };
            Plan::User {
                user,
                deactivate: kind == KeyKind::LongTerm,
                deny: Default::default(),
                replaced_boundary: None,
            }
        }
        (Principal::Unresolved, KeyKind::LongTerm) => match &usage {
            Some(u) => {
                report.record(
                    Step::ResolveOwner,
                    Outcome::Done,
                    format!("IAM says the key belongs to user {}", u.user_name),
                    now,
                );
                Plan::User {
                    user: u.user_name.clone(),
                    deactivate: true,
                    deny: Default::default(),
                    replaced_boundary: None,
                }
            }
            None if report.steps.iter().any(|s| s.outcome == Outcome::Failed) => {
                report.status = Status::Failed;
                report.summary = "Could not find out whose key this is, so nothing was changed; Lambda will retry.".into();
                return None;
            }
            None => {
                key_not_found(report, "", now);
                return None;
            }
        },
        (Principal::Unresolved, KeyKind::Temporary) => {
            refuse(report, Step::ResolveOwner, "a temporary (ASIA) key cannot be traced to its role or user through IAM; send a manual request with role_name or user_name".into(), now);
            return None;
        }
        (Principal::Root | Principal::Other { .. }, _) => return None,
    };
    // Refused or not, the notice names whose key it is as IAM says.
    report.principal = plan.principal();
    if let Some(reason) = protected_reason(&plan, ctx) {
        refuse(report, Step::ResolveOwner, reason, now);
        return None;
    }
    if matches!(&plan, Plan::User { user, .. } if user.eq_ignore_ascii_case("root") || user == "<root_account>")
    {
        refuse(
            report,
            Step::ResolveOwner,
            "the key belongs to the root user, which IAM policies cannot restrict".into(),
            now,
        );
        return None;
    }
    Some(plan)
}

/// IAM does not know the key: nothing to contain, nothing to retry.
fn key_not_found(report: &mut Report, also: &str, now: DateTime<Utc>) {
    report.status = Status::KeyNotFound;
    if report.principal == Principal::Unresolved.to_string() {
        report.principal = "owner unknown: IAM does not know the key".into();
    }
    report.summary = "IAM does not know this key in this account: it was deleted (perhaps with its user) or never existed here. Nothing to contain.".into();
    report.record(
        Step::ResolveOwner,
        Outcome::NotFound,
        format!("GetAccessKeyLastUsed does not know the key{also}"),
        now,
    );
}

/// The exact session when it can be named, the role-wide cutoff otherwise (or when configured).
fn role_plan(
    role: &str,
    session_name: Option<&str>,
    trigger_role_id: Option<&str>,
    reads: &Reads,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Plan {
    let now = ctx.now;
    let iam_role_id = match reads.role_before.as_ref().map(|r| &r.role_id) {
        Some(Ok(Some(id))) => Some(id.as_str()),
        _ => None,
    };
    let role_wide = |report: &mut Report, why: String| {
        report.record(
            Step::ResolveOwner,
            Outcome::Done,
            format!("revoking EVERY session of role {role}: {why}"),
            now,
        );
        Plan::Role {
            role: role.to_owned(),
            cutoff: Some(policy::cutoff_for(now)),
            session: None,
        }
    };
    if ctx.config.role_wide(role) {
        return role_wide(
            report,
            "KILLSWITCH_ROLE_WIDE_REVOCATION asks for it for this role".into(),
        );
    }
    let Some(session) = session_name else {
        return role_wide(report, "the trigger does not name the session".into());
    };
    let id = match (trigger_role_id, iam_role_id) {
        (Some(t), Some(i)) if t != i => {
            return role_wide(
                report,
                format!("the trigger's principal ID {t} is not role {role}'s ID {i} in IAM"),
            );
        }
        (_, Some(i)) => i,
        (Some(t), None) => t,
        (None, None) => {
            return role_wide(
                report,
                "the role's unique ID could not be read (iam:GetRole), so the session's aws:userid is unknown".into(),
            );
        }
    };
    Plan::Role {
        role: role.to_owned(),
        cutoff: None,
        session: Some(format!("{id}:{session}")),
    }
}

/// A portal session of an Identity Center role: the user's deny in the customer-managed policy,
/// never an edit of the role. Without the set-up, or without the user's name, on-call gets the
/// manual steps instead.
fn portal_plan(
    role: &str,
    session_name: Option<&str>,
    trigger_role_id: Option<&str>,
    reads: &Reads,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Option<Plan> {
    let now = ctx.now;
    let account = ctx.responder.account.to_string();
    let manual = super::portal::manual_steps(role, session_name, &account);
    let Some(ic) = &ctx.config.identity_center else {
        refuse(
            report,
            Step::ResolveOwner,
            format!("{manual} (KILLSWITCH_IDENTITY_CENTER_ROLE_ARN is not set)"),
            now,
        );
        return None;
    };
    let Some(user) = session_name else {
        refuse(
            report,
            Step::ResolveOwner,
            format!(
                "the trigger does not name the session, which is the Identity Center user: {manual}"
            ),
            now,
        );
        return None;
    };
    let iam_role_id = match reads.role_before.as_ref().map(|r| &r.role_id) {
        Some(Ok(Some(id))) => Some(id.as_str()),
        _ => None,
    };
    let id = match (trigger_role_id, iam_role_id) {
        (Some(t), Some(i)) if t != i => {
            refuse(
                report,
                Step::ResolveOwner,
                format!(
                    "the trigger's principal ID {t} is not role {role}'s ID {i} in IAM: {manual}"
                ),
                now,
            );
            return None;
        }
        (_, Some(i)) => i,
        (Some(t), None) => t,
        (None, None) => {
            refuse(
                report,
                Step::ResolveOwner,
                format!("the role's unique ID could not be read (iam:GetRole): {manual}"),
                now,
            );
            return None;
        }
    };
    let partition = ctx.responder.arn.split(':').nth(1).unwrap_or("aws");
    Some(Plan::Portal {
        role: role.to_owned(),
        user: user.to_owned(),
        session: format!("{id}:{user}"),
        user_id: None,
        policy_arn: super::portal::policy_arn(partition, &account, &ic.policy_name),
    })
}

/// Why a plan must not be carried out, if it must not. Also checked again before the
/// follow-through re-applies anything.
pub fn protected_reason(plan: &Plan, ctx: &Context<'_>) -> Option<String> {
    // IAM names are unique regardless of case: `Admin` and `admin` are one principal.
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let starts =
        |name: &str, prefix: &str| name.get(..prefix.len()).is_some_and(|h| same(h, prefix));
    let listed = |kind: &str, name: &str| {
        ctx.config.protected.iter().any(|p| {
            if p.starts_with("arn:") {
                let resource = p.splitn(6, ':').nth(5).unwrap_or("");
                resource.starts_with(&format!("{kind}/"))
                    && resource.rsplit('/').next().is_some_and(|n| same(n, name))
            } else {
                same(p, name)
            }
        })
    };
    match plan {
        Plan::Portal { role, user, .. } => {
            if listed("role", role) {
                Some(format!(
                    "role {role} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else if listed("user", user) {
                Some(format!(
                    "Identity Center user {user} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else {
                None
            }
        }
        Plan::User { user, .. } => {
            if ctx
                .responder
                .user_name
                .as_deref()
                .is_some_and(|me| same(me, user))
            {
                Some(format!("user {user} is killswitch's own identity"))
            } else if listed("user", user) {
                Some(format!(
                    "user {user} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else {
                None
            }
        }
        Plan::Role { role, .. } => {
            if ctx
                .responder
                .role_name
                .as_deref()
                .is_some_and(|me| same(me, role))
            {
                Some(format!("role {role} is killswitch's own role"))
            } else if starts(role, "AWSServiceRoleFor") {
                Some(format!(
                    "role {role} is a service-linked role: AWS does not allow its policies to be changed"
                ))
            } else if starts(role, super::portal::ROLE_PREFIX) {
                // Identity Center sessions are contained through the deny policy (Plan::Portal).
                Some(format!(
                    "role {role} belongs to IAM Identity Center: killswitch never edits it through IAM"
                ))
            } else if listed("role", role) {
                Some(format!(
                    "role {role} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else {
                None
            }
        }
    }
}

/// Regions the trigger or IAM point at, searched in any case.
pub fn region_hints(incident: &Incident, reads: &Reads) -> Vec<String> {
    let usage_region = match &reads.usage {
        Some(Ok(Some(u))) => u.region.clone(),
        _ => None,
    };
    usage_region
        .into_iter()
        .chain(match &incident.trigger {
            Trigger::GuardDuty { region, .. } => region.clone(),
            _ => None,
        })
        .collect()
}
