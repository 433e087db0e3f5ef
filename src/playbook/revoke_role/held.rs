//! What the role's denies hold now, inline and in killswitch's managed fallback, read back by
//! verification, `status` and the pivots' re-check; and their undo, for `restore` only.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::managed;
use super::{read_policy, read_sessions};
use crate::error::Error;
use crate::policy::{self, ROLE_POLICY_NAME, SESSION_POLICY_NAME};
use crate::ports::{Identity, Operator, PolicyTarget};

/// The role's denies as killswitch wrote them (a document that is not exactly ours counts as
/// absent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InForce {
    /// `KillSwitchRevokeOlderSessions`'s cutoff.
    pub inline_cutoff: Option<DateTime<Utc>>,
    /// The sessions `KillSwitchDenySessions` names.
    pub inline_sessions: Option<BTreeSet<String>>,
    /// The managed fallback of the cutoff, attached: its ARN and cutoff.
    pub managed_cutoff: Option<(String, DateTime<Utc>)>,
    /// The managed fallback of the session list, attached: its ARN and sessions.
    pub managed_sessions: Option<(String, BTreeSet<String>)>,
}

impl InForce {
    /// The latest cutoff in force (every deny applies).
    pub fn cutoff(&self) -> Option<DateTime<Utc>> {
        self.inline_cutoff
            .into_iter()
            .chain(self.managed_cutoff.as_ref().map(|(_, c)| *c))
            .max()
    }

    /// Every session denied by name.
    pub fn sessions(&self) -> BTreeSet<String> {
        self.inline_sessions
            .iter()
            .flatten()
            .chain(self.managed_sessions.iter().flat_map(|(_, ids)| ids))
            .cloned()
            .collect()
    }

    /// What holds them, as `status` lists it: the inline policy's name or the managed one's ARN.
    pub fn policies(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.inline_cutoff.is_some() {
            out.push(ROLE_POLICY_NAME.to_owned());
        }
        if let Some((arn, _)) = &self.managed_cutoff {
            out.push(arn.clone());
        }
        if self.inline_sessions.is_some() {
            out.push(SESSION_POLICY_NAME.to_owned());
        }
        if let Some((arn, _)) = &self.managed_sessions {
            out.push(arn.clone());
        }
        out
    }
}

pub async fn in_force<C: Identity>(cloud: &C, role: &str) -> Result<InForce, Error> {
    let (cutoff, sessions, managed_cutoff, managed_sessions) = tokio::join!(
        read_policy(cloud, role),
        read_sessions(cloud, role),
        managed::attached(cloud, ROLE_POLICY_NAME, role),
        managed::attached(cloud, SESSION_POLICY_NAME, role)
    );
    Ok(InForce {
        inline_cutoff: cutoff?.as_deref().and_then(policy::revocation_cutoff),
        inline_sessions: sessions?.as_deref().and_then(policy::denied_sessions),
        managed_cutoff: managed_cutoff?
            .and_then(|(arn, doc)| Some((arn, policy::revocation_cutoff(&doc)?))),
        managed_sessions: managed_sessions?
            .and_then(|(arn, doc)| Some((arn, policy::denied_sessions(&doc)?))),
    })
}

/// Holds when a cutoff at or after ours is in place, inline or (the inline quota full) in the
/// managed fallback.
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
    if !ok
        && let Ok(Some((arn, managed))) = managed::attached(cloud, ROLE_POLICY_NAME, role).await
        && let Some(c) = policy::revocation_cutoff(&managed).filter(|c| *c >= cutoff)
    {
        return (
            true,
            format!("{arn} attached, cutoff {}", policy::format_cutoff(c)),
        );
    }
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

/// Holds when a session deny in place is exactly ours and names the session: the inline one or
/// (the inline quota full) the managed fallback.
pub async fn read_back_session<C: Identity>(
    cloud: &C,
    role: &str,
    session: &str,
) -> (bool, String) {
    let inline = match read_sessions(cloud, role).await {
        Ok(Some(doc)) => match policy::denied_sessions(&doc) {
            Some(ids) if ids.contains(session) => {
                return (
                    true,
                    format!("{SESSION_POLICY_NAME} in place for {session}"),
                );
            }
            Some(_) => format!("{SESSION_POLICY_NAME} NO LONGER NAMES {session}"),
            None => format!("{SESSION_POLICY_NAME} ALTERED (not what killswitch wrote)"),
        },
        Ok(None) => format!("{SESSION_POLICY_NAME} MISSING"),
        Err(e) => format!("policy unreadable: {}", e.chain()),
    };
    if let Ok(Some((arn, doc))) = managed::attached(cloud, SESSION_POLICY_NAME, role).await
        && policy::denied_sessions(&doc).is_some_and(|ids| ids.contains(session))
    {
        return (true, format!("{arn} attached, denies {session}"));
    }
    (false, inline)
}

/// The role-wide cutoff's inline policy off the role.
pub async fn undo<O: Operator>(op: &O, role: &str) -> Result<(), Error> {
    op.delete_policy(&PolicyTarget::Role(role.to_owned()), ROLE_POLICY_NAME)
        .await
}

/// One of killswitch's managed fallbacks off the role, and deleted.
pub async fn undo_managed<O: Operator>(op: &O, role: &str, policy_arn: &str) -> Result<(), Error> {
    managed::remove(op, role, policy_arn).await
}

/// Removes this incident's session from the deny, inline and in the managed fallback; a policy
/// goes when no session is left in it. Returns the sessions still denied.
pub async fn undo_session<C: Identity + Operator>(
    cloud: &C,
    role: &str,
    session: &str,
) -> Result<BTreeSet<String>, Error> {
    let target = PolicyTarget::Role(role.to_owned());
    let (inline, fallback) = tokio::join!(
        read_sessions(cloud, role),
        managed::attached(cloud, SESSION_POLICY_NAME, role)
    );
    let mut left = BTreeSet::new();
    if let Some(mut ids) = inline?.as_deref().and_then(policy::denied_sessions) {
        if ids.remove(session) {
            if ids.is_empty() {
                cloud.delete_policy(&target, SESSION_POLICY_NAME).await?;
            } else {
                cloud
                    .put_policy(&target, SESSION_POLICY_NAME, &policy::deny_sessions(&ids))
                    .await?;
            }
        }
        left.extend(ids);
    }
    if let Some((arn, doc)) = fallback?
        && let Some(mut ids) = policy::denied_sessions(&doc)
    {
        if ids.remove(session) {
            if ids.is_empty() {
                managed::remove(cloud, role, &arn).await?;
            } else {
                managed::new_version(cloud, &arn, &policy::deny_sessions(&ids)).await?;
            }
        }
        left.extend(ids);
    }
    Ok(left)
}
