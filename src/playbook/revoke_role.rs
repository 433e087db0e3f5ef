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

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::policy::{self, CutoffDecision, ROLE_POLICY_NAME, SESSION_POLICY_NAME};
use crate::ports::{Identity, Operator, PolicyTarget};
use crate::report::Outcome;

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
            Err(e) => (Outcome::Failed, e.chain(), new),
        },
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
    let denied = match existing {
        Ok(doc) => doc.as_deref().and_then(policy::denied_sessions),
        // Without the list in place we would drop sessions an earlier incident denied.
        Err(e) => return (Outcome::Failed, e.chain()),
    };
    let decoy = decoy_note(existing, denied.is_some());
    let mut ids = denied.unwrap_or_default();
    if ids.contains(session) {
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
        Err(e) => (Outcome::Failed, e.chain()),
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

/// Holds when a cutoff at or after ours is in place.
pub async fn read_back<C: Identity>(
    cloud: &C,
    role: &str,
    cutoff: DateTime<Utc>,
) -> (bool, String) {
    let doc = read_policy(cloud, role).await;
    let current = doc
        .as_ref()
        .ok()
        .and_then(|d| d.as_deref())
        .and_then(policy::revocation_cutoff);
    let ok = current.is_some_and(|c| c >= cutoff);
    let note = match (&doc, current) {
        (Ok(_), Some(c)) if ok => format!(
            "{ROLE_POLICY_NAME} in place, cutoff {}",
            policy::format_cutoff(c)
        ),
        (Ok(_), Some(c)) => format!(
            "{ROLE_POLICY_NAME} cutoff MOVED BACK to {}",
            policy::format_cutoff(c)
        ),
        (Ok(Some(_)), None) => format!("{ROLE_POLICY_NAME} ALTERED (not what killswitch wrote)"),
        (Ok(None), None) => format!("{ROLE_POLICY_NAME} MISSING"),
        (Err(e), _) => format!("policy unreadable: {}", e.chain()),
    };
    (ok, note)
}

/// Holds when the session deny in place is exactly ours and names the session.
pub async fn read_back_session<C: Identity>(
    cloud: &C,
    role: &str,
    session: &str,
) -> (bool, String) {
    match read_sessions(cloud, role).await {
        Ok(Some(doc)) => match policy::denied_sessions(&doc) {
            Some(ids) if ids.contains(session) => (
                true,
                format!("{SESSION_POLICY_NAME} in place for {session}"),
            ),
            Some(_) => (
                false,
                format!("{SESSION_POLICY_NAME} NO LONGER NAMES {session}"),
            ),
            None => (
                false,
                format!("{SESSION_POLICY_NAME} ALTERED (not what killswitch wrote)"),
            ),
        },
        Ok(None) => (false, format!("{SESSION_POLICY_NAME} MISSING")),
        Err(e) => (false, format!("policy unreadable: {}", e.chain())),
    }
}

pub async fn undo<O: Operator>(op: &O, role: &str) -> Result<(), Error> {
    op.delete_policy(&PolicyTarget::Role(role.to_owned()), ROLE_POLICY_NAME)
        .await
}

/// Removes this incident's session from the deny; the policy goes when no session is left.
/// Returns the sessions still denied.
pub async fn undo_session<C: Identity + Operator>(
    cloud: &C,
    role: &str,
    session: &str,
) -> Result<BTreeSet<String>, Error> {
    let target = PolicyTarget::Role(role.to_owned());
    let mut ids = read_sessions(cloud, role)
        .await?
        .as_deref()
        .and_then(policy::denied_sessions)
        .unwrap_or_default();
    ids.remove(session);
    if ids.is_empty() {
        cloud.delete_policy(&target, SESSION_POLICY_NAME).await?;
    } else {
        cloud
            .put_policy(&target, SESSION_POLICY_NAME, &policy::deny_sessions(&ids))
            .await?;
    }
    Ok(ids)
}
