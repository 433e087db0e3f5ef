//! What a restore does, one step at a time: in the plan shown, the notices and the record.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::playbook::org_tag;
use crate::playbook::portal::{self, Removed};
use crate::playbook::quarantine::Quarantined;
use crate::policy;
use crate::ports::PolicyTarget;
use crate::report::ts;

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
    /// killswitch's managed role deny (the role's inline quota was full), detached and deleted.
    DetachRoleDeny {
        role_name: String,
        policy_arn: String,
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
    /// One session out of the role's guarded tag, which other open incidents keep on the role.
    UntagSession {
        role_name: String,
        session: String,
    },
    /// The containment tag an org guard keys on (`org_tag`), off the user or the role.
    RemoveTag {
        target: PolicyTarget,
        tag_key: String,
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
                "stop denying session {session} on role {role_name} ({}, or killswitch's managed deny where the role's inline quota sent it)",
                policy::SESSION_POLICY_NAME
            ),
            // "detach " first: the follow-through reads a recorded restore's actions by prefix.
            RestoreAction::DetachRoleDeny {
                role_name,
                policy_arn,
            } => write!(
                f,
                "detach killswitch's managed deny {policy_arn} from role {role_name}, and delete it"
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
            RestoreAction::UntagSession { role_name, session } => write!(
                f,
                "take session {session} out of the {} tag of role {role_name}",
                org_tag::GUARDED_TAG_KEY
            ),
            RestoreAction::RemoveTag { target, tag_key } => {
                write!(f, "remove tag {tag_key} from {target}")
            }
            RestoreAction::PutAssignmentBack { removed: r } => write!(
                f,
                "assign permission set {} to Identity Center user {} in account {} again",
                r.permission_set, r.user_name, r.account
            ),
        }
    }
}
