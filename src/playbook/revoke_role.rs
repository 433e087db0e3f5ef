//! A role session. By default the exact session is denied (`aws:userid` =
//! `ROLE-ID:session-name`, AWS's remediation for exfiltrated instance credentials): the role's
//! other sessions keep working. When the session cannot be identified, or the role is configured
//! for it, every session of the role issued before a cutoff (`aws:TokenIssueTime`) is denied
//! instead. The cutoff never moves backwards, and moves forward only when the one in place does
//! not already cover the incident: a re-delivered finding must not revoke the role's legitimate
//! sessions again.
//!
//! Only a document that is exactly what killswitch writes counts as in place: anything else under
//! our policy names (a decoy with a condition that never matches) is replaced, and said so.
//!
//! A denied session leaves the list only through `restore` (`undo_session`): the same session
//! name comes back whenever its credentials are fetched again, so an entry never expires. Nothing
//! is pruned to keep the list small; when the role's inline quota cannot take it any more (or the
//! key's holder filled it), the deny goes into killswitch's managed policy instead (`managed`).

mod held;
mod managed;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{AwsFailure, Error};
use crate::policy::{self, CutoffDecision, ROLE_POLICY_NAME, SESSION_POLICY_NAME};
use crate::ports::{Identity, PolicyTarget};
use crate::report::Outcome;

pub use held::{InForce, in_force, read_back, read_back_session, undo, undo_managed, undo_session};
pub use managed::is_fallback;

/// Why the managed fallback is used, as every notice says it.
fn quota_full(role: &str) -> String {
    format!(
        "role {role}'s inline-policy quota (10,240 characters, all its inline policies together) is full — the key's holder may have filled it, or the list of denied sessions outgrew it"
    )
}

pub const PERMISSIONS: &[&str] = crate::vocab::Step::RevokeRoleSessions.permissions();

/// What to write, from the policy in place (read in the guard's wave), the cutoff killswitch
/// itself wrote for this role (incident record) and the incident.
pub fn decide(
    existing: Option<DateTime<Utc>>,
    ours: Option<DateTime<Utc>>,
    wanted: DateTime<Utc>,
    first_seen: Option<DateTime<Utc>>,
) -> CutoffDecision {
    match (existing, ours, first_seen) {
        // The leaked session was issued at or before the key was first seen in use, so a cutoff
        // after that moment denies it (`DateLessThan` is strict). Only a cutoff killswitch wrote
        // counts: one the key's holder planted may sit just before the sessions it still uses.
        (Some(current), Some(ours), Some(seen)) if current == ours && current > seen => {
            CutoffDecision::Keep(current)
        }
        _ => policy::decide_cutoff(existing, wanted),
    }
}

fn decoy_note(doc: &Result<Option<String>, Error>, ours: bool) -> &'static str {
    match doc {
        Ok(Some(_)) if !ours => {
            " (replaced a TAMPERED OR DECOY policy under that name: it was not exactly what killswitch writes, so it may deny nothing)"
        }
        _ => "",
    }
}

/// Returns the outcome and the cutoff in force afterwards (what verification must find).
pub async fn apply<C: Identity>(
    cloud: &C,
    role: &str,
    cutoff: DateTime<Utc>,
    existing: &Result<Option<String>, Error>,
    ours: Option<DateTime<Utc>>,
    first_seen: Option<DateTime<Utc>>,
    dry_run: bool,
) -> (Outcome, String, DateTime<Utc>) {
    let current = match existing {
        Ok(doc) => doc.as_deref().and_then(policy::revocation_cutoff),
        // Without the current cutoff we cannot promise not to move it backwards.
        Err(e) => return (Outcome::Failed, e.chain(), cutoff),
    };
    let decoy = decoy_note(existing, current.is_some());
    match decide(current, ours, cutoff, first_seen) {
        CutoffDecision::Keep(current) => (
            Outcome::AlreadyDone,
            format!(
                "{ROLE_POLICY_NAME} on role {role} already revokes sessions issued before {} (kept: it covers this incident and never moves backwards)",
                policy::format_cutoff(current)
            ),
            current,
        ),
        CutoffDecision::Write(new) if dry_run => (
            Outcome::WouldDo,
            format!(
                "would put {ROLE_POLICY_NAME} on role {role}: deny EVERY session of the role issued before {}{decoy}",
                policy::format_cutoff(new)
            ),
            new,
        ),
        CutoffDecision::Write(new) => match cloud
            .put_policy(
                &PolicyTarget::Role(role.to_owned()),
                ROLE_POLICY_NAME,
                &policy::revoke_older_sessions(new),
            )
            .await
        {
            Ok(()) => (
                Outcome::Done,
                format!(
                    "{ROLE_POLICY_NAME} put on role {role}: EVERY session of the role issued before {} is denied, whoever uses it{decoy}",
                    policy::format_cutoff(new)
                ),
                new,
            ),
            Err(e) if e.is(AwsFailure::LimitExceeded) => cutoff_to_managed(cloud, role, new).await,
            Err(e) => (Outcome::Failed, e.chain(), new),
        },
    }
}

/// The cutoff in killswitch's managed policy, when the inline one does not fit. Never moves the
/// cutoff already there backwards.
async fn cutoff_to_managed<C: Identity>(
    cloud: &C,
    role: &str,
    wanted: DateTime<Utc>,
) -> (Outcome, String, DateTime<Utc>) {
    let full = quota_full(role);
    let found = match managed::find(cloud, ROLE_POLICY_NAME, role).await {
        Ok(f) => f,
        Err(e) => {
            return (
                Outcome::Failed,
                format!(
                    "{full}, and killswitch's managed deny could not be read: {}",
                    e.chain()
                ),
                wanted,
            );
        }
    };
    let current = found
        .document
        .as_deref()
        .and_then(policy::revocation_cutoff)
        .filter(|_| found.attached);
    let arn = &found.arn;
    match policy::decide_cutoff(current, wanted) {
        CutoffDecision::Keep(c) => (
            Outcome::AlreadyDone,
            format!(
                "{full}: killswitch's managed deny {arn}, attached to the role, already revokes every session issued before {} (kept: it never moves backwards)",
                policy::format_cutoff(c)
            ),
            c,
        ),
        CutoffDecision::Write(new) => {
            // Never backwards, also over a cutoff written meanwhile.
            let at_least = |current: Option<&str>| {
                let there = current.and_then(policy::revocation_cutoff);
                policy::revoke_older_sessions(there.map_or(new, |c| c.max(new)))
            };
            match managed::write(cloud, ROLE_POLICY_NAME, role, &found, at_least).await {
                Ok(()) => (
                    Outcome::Done,
                    format!(
                        "{full}, so {ROLE_POLICY_NAME} could not be put: killswitch's managed policy {arn} (the same condition) is attached to the role instead: EVERY session of the role issued before {} is denied, whoever uses it",
                        policy::format_cutoff(new)
                    ),
                    new,
                ),
                Err(e) => (
                    Outcome::Failed,
                    format!(
                        "{full}, and killswitch's managed deny {arn} could not be written or attached: {}",
                        e.chain()
                    ),
                    new,
                ),
            }
        }
    }
}

/// Adds `session` to the role's session deny, keeping the sessions already denied there.
pub async fn apply_session<C: Identity>(
    cloud: &C,
    role: &str,
    session: &str,
    existing: &Result<Option<String>, Error>,
    dry_run: bool,
) -> (Outcome, String) {
    let (mut ids, ours) = match existing {
        Ok(doc) => listed_sessions(doc.as_deref(), session),
        // Without the list in place we would drop sessions an earlier incident denied.
        Err(e) => return (Outcome::Failed, e.chain()),
    };
    let decoy = decoy_note(existing, ours);
    if ours && ids.contains(session) {
        return (
            Outcome::AlreadyDone,
            format!("{SESSION_POLICY_NAME} on role {role} already denies session {session}"),
        );
    }
    ids.insert(session.to_owned());
    if dry_run {
        return (
            Outcome::WouldDo,
            format!(
                "would put {SESSION_POLICY_NAME} on role {role}: deny session {session} (aws:userid){decoy}"
            ),
        );
    }
    match cloud
        .put_policy(
            &PolicyTarget::Role(role.to_owned()),
            SESSION_POLICY_NAME,
            &policy::deny_sessions(&ids),
        )
        .await
    {
        Ok(()) => (
            Outcome::Done,
            format!(
                "{SESSION_POLICY_NAME} put on role {role}: session {session} is denied (aws:userid), also when it fetches fresh credentials; the role's other sessions keep working{decoy}"
            ),
        ),
        Err(e) if e.is(AwsFailure::LimitExceeded) => session_to_managed(cloud, role, session).await,
        Err(e) => (Outcome::Failed, e.chain()),
    }
}

/// The sessions a document under our name lists, and whether it is exactly ours. From one that
/// is not (a decoy, an edit), the sessions of this role it names are kept: an entry leaves the
/// list only through a restore, and rewriting a tampered list must not drop earlier incidents'.
fn listed_sessions(doc: Option<&str>, session: &str) -> (BTreeSet<String>, bool) {
    let Some(doc) = doc else {
        return (BTreeSet::new(), true);
    };
    if let Some(ids) = policy::denied_sessions(doc) {
        return (ids, true);
    }
    let role_id = session.split_once(':').map_or(session, |(id, _)| id);
    let prefix = format!("{role_id}:");
    let mut kept = BTreeSet::new();
    let parsed: Value = serde_json::from_str(doc).unwrap_or(Value::Null);
    let statements = match parsed.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    for condition in statements
        .iter()
        .filter_map(|s| s.get("Condition")?.as_object())
    {
        for keys in condition.values().filter_map(Value::as_object) {
            for (key, values) in keys {
                if !key.eq_ignore_ascii_case("aws:userid") {
                    continue;
                }
                let values: Vec<&str> = match values {
                    Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                    Value::String(one) => vec![one.as_str()],
                    Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => {
                        Vec::new()
                    }
                };
                kept.extend(
                    values
                        .into_iter()
                        .filter(|v| {
                            v.strip_prefix(&prefix)
                                .is_some_and(crate::trigger::is_session_name)
                        })
                        .map(str::to_owned),
                );
            }
        }
    }
    (kept, false)
}

/// The session in killswitch's managed policy, when the inline list does not fit.
async fn session_to_managed<C: Identity>(
    cloud: &C,
    role: &str,
    session: &str,
) -> (Outcome, String) {
    let full = quota_full(role);
    let found = match managed::find(cloud, SESSION_POLICY_NAME, role).await {
        Ok(f) => f,
        Err(e) => {
            return (
                Outcome::Failed,
                format!(
                    "{full}, and killswitch's managed deny could not be read: {}",
                    e.chain()
                ),
            );
        }
    };
    let arn = &found.arn;
    let (mut ids, ours) = listed_sessions(found.document.as_deref(), session);
    if ours && found.attached && ids.contains(session) {
        return (
            Outcome::AlreadyDone,
            format!(
                "{full}: killswitch's managed deny {arn}, attached to the role, already denies session {session}"
            ),
        );
    }
    ids.insert(session.to_owned());
    let with_session = |current: Option<&str>| {
        let mut all = listed_sessions(current, session).0;
        all.extend(ids.iter().cloned());
        policy::deny_sessions(&all)
    };
    match managed::write(cloud, SESSION_POLICY_NAME, role, &found, with_session).await {
        Ok(()) => (
            Outcome::Done,
            format!(
                "{full}, so {SESSION_POLICY_NAME} could not take session {session}: killswitch's managed policy {arn} (the same condition) is attached to the role instead and denies it (aws:userid), also when it fetches fresh credentials; the role's other sessions keep working"
            ),
        ),
        Err(e) => (
            Outcome::Failed,
            format!(
                "{full}, and killswitch's managed deny {arn} could not be written or attached (a role takes 10 managed policies; the managed policy 6,144 characters): {}",
                e.chain()
            ),
        ),
    }
}

pub async fn read_policy<C: Identity>(cloud: &C, role: &str) -> Result<Option<String>, Error> {
    cloud
        .read_policy(&PolicyTarget::Role(role.to_owned()), ROLE_POLICY_NAME)
        .await
}

pub async fn read_sessions<C: Identity>(cloud: &C, role: &str) -> Result<Option<String>, Error> {
    cloud
        .read_policy(&PolicyTarget::Role(role.to_owned()), SESSION_POLICY_NAME)
        .await
}
