//! What the incident record keeps of the extra layers (the org quarantine, a removed Identity
//! Center assignment), for status and restore. Persisted: serde names are frozen.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::vocab::Plan;

/// One quarantined principal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// An IAM user (`aws:PrincipalArn`, with or without a path).
    User { name: String },
    /// One role session (`aws:userid` = `ROLE-ID:session-name`).
    Session { userid: String },
    /// Every session of a role issued before the cutoff (`aws:TokenIssueTime`).
    RoleBefore { name: String, cutoff: DateTime<Utc> },
}

impl Entry {
    pub fn for_plan(plan: &Plan) -> Option<Self> {
        match plan {
            Plan::User { user, .. } => Some(Entry::User { name: user.clone() }),
            Plan::Role {
                session: Some(s), ..
            } => Some(Entry::Session { userid: s.clone() }),
            Plan::Role {
                role,
                cutoff: Some(c),
                ..
            } => Some(Entry::RoleBefore {
                name: role.clone(),
                cutoff: *c,
            }),
            Plan::Role { .. } => None,
            // An SCP sees the session as its role's: the exact session, as for any role.
            Plan::Portal { session, .. } => Some(Entry::Session {
                userid: session.clone(),
            }),
        }
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::User { name } => write!(f, "user {name}"),
            Entry::Session { userid } => write!(f, "session {userid}"),
            Entry::RoleBefore { name, cutoff } => write!(
                f,
                "sessions of role {name} issued before {}",
                crate::report::ts(*cutoff)
            ),
        }
    }
}

/// What the incident record keeps of a quarantine, for status and restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub policy_id: String,
    pub policy_name: String,
    pub account: String,
    pub entry: Entry,
    pub at: DateTime<Utc>,
}

/// A direct account assignment killswitch removed: exactly what restore creates again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub instance_arn: String,
    pub account: String,
    pub permission_set_arn: String,
    pub permission_set: String,
    pub user_id: String,
    pub user_name: String,
    pub at: DateTime<Utc>,
}
