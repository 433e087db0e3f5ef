//! A role session: deny every session of the role issued before a cutoff (`aws:TokenIssueTime`).
//! The cutoff never moves backwards, and moves forward only when the one in place does not
//! already cover the incident: a re-delivered finding must not revoke the role's legitimate
//! sessions again.

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::policy::{self, CutoffDecision, ROLE_POLICY_NAME};
use crate::ports::{Identity, Operator, PolicyTarget};
use crate::report::Outcome;

pub const PERMISSIONS: &[&str] = &["iam:GetRolePolicy", "iam:PutRolePolicy"];

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
    let existing = match existing {
        Ok(doc) => doc.as_deref().and_then(policy::revocation_cutoff),
        // Without the current cutoff we cannot promise not to move it backwards.
        Err(e) => return (Outcome::Failed, e.chain(), cutoff),
    };
    match decide(existing, ours, cutoff, first_seen) {
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
                "would put {ROLE_POLICY_NAME} on role {role}: deny sessions issued before {}",
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
                    "{ROLE_POLICY_NAME} put on role {role}: every session issued before {} is denied",
                    policy::format_cutoff(new)
                ),
                new,
            ),
            Err(e) => (Outcome::Failed, e.chain(), new),
        },
    }
}

pub async fn read_policy<C: Identity>(cloud: &C, role: &str) -> Result<Option<String>, Error> {
    cloud
        .read_policy(&PolicyTarget::Role(role.to_owned()), ROLE_POLICY_NAME)
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
        (Ok(_), None) => format!("{ROLE_POLICY_NAME} MISSING"),
        (Err(e), _) => format!("policy unreadable: {}", e.chain()),
    };
    (ok, note)
}

pub async fn undo<O: Operator>(op: &O, role: &str) -> Result<(), Error> {
    op.delete_policy(&PolicyTarget::Role(role.to_owned()), ROLE_POLICY_NAME)
        .await
}

pub fn undo_command(role: &str) -> String {
    format!("aws iam delete-role-policy --role-name {role} --policy-name {ROLE_POLICY_NAME}")
}
