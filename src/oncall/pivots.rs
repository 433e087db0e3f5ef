//! The credentials the incident's pivots name, read again at restore time: each one still live
//! is a way back in for the key's holder through whatever the restore lifts.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt};

use super::MAX_ROLE_SESSION_HOURS;
use super::assess::Facts;
use super::user::{console_id, credential_id, dated};
use crate::analysis::{Pivot, PivotKind};
use crate::error::{AwsFailure, Error};
use crate::incident::{AccessKeyId, AccountId};
use crate::playbook::revoke_role;
use crate::ports::{Identity, KeyStatus};
use crate::record::IncidentRecord;
use crate::report::ts;

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
pub(super) async fn live_pivots<C: Identity>(
    cloud: &C,
    facts: &Facts<'_>,
    record: &IncidentRecord,
    flagged: &mut HashSet<String>,
) -> Vec<String> {
    let leaked_user = facts.state.user_name.as_deref();
    let checks = stream::iter(&record.pivots)
        .map(|p| live_pivot(cloud, &facts.account, p, leaked_user, facts.now))
        .buffered(PIVOT_CHECKS_AT_ONCE)
        .collect::<Vec<Live>>();
    let acted_on = users_acted_on(record, leaked_user);
    let sweeps = stream::iter(&acted_on)
        .map(|(u, context, all)| live_user(cloud, u, context, facts.began, *all))
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

/// The users other than the leaked key's that the holder minted credentials for or created,
/// once each: (user, what the holder did with it, whether every credential counts or only new
/// ones).
fn users_acted_on(
    record: &IncidentRecord,
    leaked_user: Option<&str>,
) -> Vec<(String, String, bool)> {
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
    acted_on
}

/// Whether one pivot's credential is still live.
async fn live_pivot<C: Identity>(
    cloud: &C,
    account: &AccountId,
    p: &Pivot,
    leaked_user: Option<&str>,
    now: DateTime<Utc>,
) -> Live {
    let user = p.principal.as_deref().or(leaked_user);
    match p.kind {
        // Covered by the user's deny, and kept revoked by the restore.
        PivotKind::UserSession => Vec::new(),
        PivotKind::AccessKey => match user {
            Some(user) => live_key(cloud, p, user).await,
            None => Vec::new(),
        },
        PivotKind::LoginProfile => match user {
            Some(user) => live_password(cloud, p, user).await,
            None => Vec::new(),
        },
        PivotKind::ServiceCredential => match user {
            Some(user) => live_service_credential(cloud, p, user).await,
            None => Vec::new(),
        },
        PivotKind::RoleSession => live_session(cloud, account, p, now).await,
        PivotKind::TrustPolicy => live_trust(cloud, p).await,
    }
}

/// A pivot's credential that could not be read: a refusal, since it could not be shown dead.
fn unreadable(p: &Pivot, what: String, e: &Error) -> Live {
    vec![(
        what.clone(),
        format!(
            "{what}, minted by the key's holder at {} ({}), could not be checked: {}",
            ts(p.time),
            p.via,
            e.chain()
        ),
    )]
}

/// An access key the holder minted, still Active.
async fn live_key<C: Identity>(cloud: &C, p: &Pivot, user: &str) -> Live {
    let Some(Ok(k)) = p.access_key_id.as_deref().map(AccessKeyId::parse) else {
        return Vec::new();
    };
    let (at, via) = (ts(p.time), &p.via);
    match cloud.key_status(user, &k).await {
        Ok(Some(KeyStatus::Active)) => vec![(
            k.to_string(),
            format!(
                "access key {k} of user {user}, minted by the key's holder at {at} ({via}), is Active: deactivate it first (aws iam update-access-key --user-name {user} --access-key-id {k} --status Inactive)"
            ),
        )],
        Ok(_) => Vec::new(),
        Err(e) if e.is(AwsFailure::NotFound) => Vec::new(),
        Err(e) => unreadable(p, format!("access key {k} of user {user}"), &e),
    }
}

/// The console password the holder set, still there (not one set later by someone else).
async fn live_password<C: Identity>(cloud: &C, p: &Pivot, user: &str) -> Live {
    let (at, via) = (ts(p.time), &p.via);
    match cloud.login_profile(user).await {
        Ok(Some(created)) if created <= p.time + TimeDelta::minutes(PASSWORD_SLACK_MINUTES) => {
            vec![(
                console_id(user),
                format!(
                    "user {user} still has the console password the key's holder set at {at} ({via}): delete it first (aws iam delete-login-profile --user-name {user})"
                ),
            )]
        }
        Ok(_) => Vec::new(),
        Err(e) if e.is(AwsFailure::NotFound) => Vec::new(),
        Err(e) => unreadable(p, format!("the console password of user {user}"), &e),
    }
}

/// A service-specific credential the holder created, still active.
async fn live_service_credential<C: Identity>(cloud: &C, p: &Pivot, user: &str) -> Live {
    let Some(id) = p.credential_id.as_deref() else {
        return Vec::new();
    };
    let (at, via) = (ts(p.time), &p.via);
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
        Err(e) if e.is(AwsFailure::NotFound) => Vec::new(),
        Err(e) => unreadable(
            p,
            format!("service-specific credential {id} of user {user}"),
            &e,
        ),
    }
}

/// A trust policy the holder changed, on a role that still exists: killswitch cannot tell
/// whether it was put back.
async fn live_trust<C: Identity>(cloud: &C, p: &Pivot) -> Live {
    let Some(role) = p.principal.as_deref() else {
        return Vec::new();
    };
    let (at, via) = (ts(p.time), &p.via);
    match cloud.role_id(role).await {
        Ok(None) => Vec::new(),
        Ok(Some(_)) => vec![(
            format!("trust:{}", role.to_ascii_lowercase()),
            format!(
                "the trust policy of role {role}, changed by the key's holder at {at} ({via}), may still let the holder in, and killswitch cannot tell whether it was put back: review it (aws iam get-role --role-name {role} --query Role.AssumeRolePolicyDocument) and put it back, then restore with --force"
            ),
        )],
        Err(e) => unreadable(p, format!("the trust policy of role {role}"), &e),
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
    // Inline or in killswitch's managed fallback (the role's inline quota full): either denies.
    let (id, held) = tokio::join!(cloud.role_id(&role), revoke_role::in_force(cloud, &role));
    let id = match id {
        Ok(None) => return Vec::new(),
        Ok(Some(id)) => id,
        Err(e) => return live(format!(" and could not be checked ({})", e.chain())),
    };
    let held = match held {
        Ok(held) => held,
        Err(e) => return live(format!(" and could not be checked ({})", e.chain())),
    };
    let revoked = held.cutoff().is_some_and(|cutoff| cutoff > p.time);
    let denied = p
        .role_session_name
        .as_deref()
        .is_some_and(|name| held.sessions().contains(&format!("{id}:{name}")));
    if revoked || denied {
        Vec::new()
    } else {
        live(format!(", and role {role} does not deny it{command}"))
    }
}

/// A user the holder minted credentials for (or created): every credential of it created (an MFA
/// device: enabled) since the incident began is the holder's until shown otherwise.
async fn live_user<C: Identity>(
    cloud: &C,
    user: &str,
    context: &str,
    began: DateTime<Utc>,
    every_credential: bool,
) -> Live {
    let gone = |e: &Error| e.is(AwsFailure::NotFound);
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
    let held = match (keys, unless_gone(console), unless_gone(others)) {
        // The user is gone, and everything it held with it.
        (Err(e), ..) if gone(&e) => return Vec::new(),
        (Ok(keys), Ok(console), Ok(others)) => Held {
            keys,
            console,
            others,
        },
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return could_not(e),
    };
    held.new_since(user, context, began, every_credential)
}

/// Nothing, when the user is gone (and everything it held with it).
fn unless_gone<T: Default>(read: Result<T, Error>) -> Result<T, Error> {
    match read {
        Err(e) if e.is(AwsFailure::NotFound) => Ok(T::default()),
        other => other,
    }
}

/// What a user holds, read.
struct Held {
    keys: Vec<crate::ports::KeyInfo>,
    console: Option<DateTime<Utc>>,
    others: Vec<crate::ports::OtherCredential>,
}

impl Held {
    /// Each credential created (an MFA device: enabled) since `began`; every one when the holder
    /// created the user (nothing there is from before it).
    fn new_since(self, user: &str, context: &str, began: DateTime<Utc>, every: bool) -> Live {
        let new = |t: Option<DateTime<Utc>>| every || t.is_none_or(|c| c >= began);
        let since = |what: &str, t: Option<DateTime<Utc>>| {
            format!(
                "{what} {} (since the incident began at {})",
                t.map(ts).unwrap_or_else(|| "at an unknown time".into()),
                ts(began)
            )
        };
        let mut out = Vec::new();
        for k in self.keys {
            if k.status == KeyStatus::Active && new(k.created) {
                out.push((
                    k.id.to_string(),
                    format!(
                        "{context} has an Active key {} {}: deactivate it first (aws iam update-access-key --user-name {user} --access-key-id {} --status Inactive), or delete the user",
                        k.id,
                        since("created", k.created),
                        k.id
                    ),
                ));
            }
        }
        if let Some(created) = self.console.filter(|c| new(Some(*c))) {
            out.push((
                console_id(user),
                format!(
                    "{context} has a console password {}: delete it first (aws iam delete-login-profile --user-name {user})",
                    since("created", Some(created))
                ),
            ));
        }
        for c in self.others {
            if c.active && new(c.created) {
                out.push((
                    credential_id(&c.id).to_owned(),
                    format!(
                        "{context} has an active {} {} {}: deactivate or delete it first",
                        c.kind,
                        c.id,
                        since(dated(c.kind), c.created)
                    ),
                ));
            }
        }
        out
    }
}
