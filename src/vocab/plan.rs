//! What containment writes for each kind of principal. Persisted in the incident record: the
//! serde names are frozen (records written by earlier releases must load).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What containment writes, once guards have passed. Travels to the follow-through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Plan {
    User {
        user: String,
        deactivate: bool,
        /// What denies the user (the inline deny, or a fallback when its quota is full).
        #[serde(default)]
        deny: Deny,
        /// The permissions boundary the lock-out replaced with `AWSDenyAll`: restore puts it back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced_boundary: Option<String>,
    },
    Role {
        role: String,
        /// Role-wide: every session of the role issued before this is denied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cutoff: Option<DateTime<Utc>>,
        /// Exact: this session (`aws:userid` = `ROLE-ID:session-name`) is denied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// An IAM Identity Center portal session: the role is never edited (IAM refuses), the
    /// customer-managed deny policy every permission set references is (`portal`).
    Portal {
        /// `AWSReservedSSO_<PermissionSet>_…`.
        role: String,
        /// The Identity Center user name (the session name).
        user: String,
        /// `ROLE-ID:user-name`: the finding's principal.
        session: String,
        /// The user's identity store ID, once looked up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        policy_arn: String,
    },
}

/// What denies the user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deny {
    /// Inline `KillSwitchDenyAll`.
    #[default]
    Inline,
    /// The inline quota was full: `AWSDenyAll` attached.
    Managed,
    /// Both quotas were full: every access key deactivated, console access removed.
    LockedOut,
    /// As `LockedOut`, and `AWSDenyAll` set as the user's permissions boundary (which counts
    /// against no quota): the sessions the user minted die too.
    LockedOutBounded,
}

/// Identity Center's roles in every account: `AWSReservedSSO_<PermissionSet>_<16 hex>`.
pub const IDENTITY_CENTER_ROLE_PREFIX: &str = "AWSReservedSSO_";

/// `AWSReservedSSO_<PermissionSetName>_<16 hex>` → the permission set's name.
pub fn permission_set_name(role: &str) -> Option<&str> {
    let rest = role.get(IDENTITY_CENTER_ROLE_PREFIX.len()..)?;
    let (name, suffix) = rest.rsplit_once('_')?;
    (!name.is_empty() && suffix.len() == 16 && suffix.chars().all(|c| c.is_ascii_hexdigit()))
        .then_some(name)
}

impl Plan {
    /// The principal the writes act on, as every notice names it: IAM's owner of the key, not
    /// the trigger's claim.
    pub fn principal(&self) -> String {
        match self {
            Plan::User { user, .. } => format!("IAM user {user}"),
            Plan::Role {
                role,
                session: Some(session),
                ..
            } => {
                let name = session.split_once(':').map_or(session.as_str(), |(_, s)| s);
                format!("role {role} (session {name})")
            }
            Plan::Role { role, .. } => format!("role {role} (every session)"),
            Plan::Portal { role, user, .. } => format!(
                "Identity Center user {user} (permission set {}, role {role})",
                permission_set_name(role).unwrap_or("?")
            ),
        }
    }

    /// The IAM user the plan acts on, if it acts on one.
    pub fn user(&self) -> Option<&str> {
        match self {
            Plan::User { user, .. } => Some(user),
            Plan::Role { .. } | Plan::Portal { .. } => None,
        }
    }

    /// The role the plan denies (a role plan), or whose sessions it names (a portal plan).
    pub fn role(&self) -> Option<&str> {
        match self {
            Plan::Role { role, .. } | Plan::Portal { role, .. } => Some(role),
            Plan::User { .. } => None,
        }
    }

    /// The exact session the plan denies (`ROLE-ID:session-name`), when it denies one.
    pub fn session(&self) -> Option<&str> {
        match self {
            Plan::Role { session, .. } => session.as_deref(),
            Plan::Portal { session, .. } => Some(session),
            Plan::User { .. } => None,
        }
    }

    /// A role plan that denies every session of the role issued before a cutoff.
    pub fn is_role_wide(&self) -> bool {
        match self {
            Plan::Role { session, .. } => session.is_none(),
            Plan::User { .. } | Plan::Portal { .. } => false,
        }
    }

    /// The plan for an Identity Center portal session.
    pub fn is_portal(&self) -> bool {
        match self {
            Plan::Portal { .. } => true,
            Plan::User { .. } | Plan::Role { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written by the current release (`kind` tags and field names) still load.
    #[test]
    fn persisted_names_are_frozen() {
        let user: Plan = serde_json::from_str(
            r#"{"kind":"user","user":"u","deactivate":true,"deny":"locked_out_bounded","replaced_boundary":"arn:aws:iam::aws:policy/B"}"#,
        )
        .unwrap();
        assert_eq!(user.user(), Some("u"));
        let role: Plan = serde_json::from_str(
            r#"{"kind":"role","role":"r","cutoff":"2026-01-01T00:00:00Z","session":"AROA:s"}"#,
        )
        .unwrap();
        assert_eq!(role.session(), Some("AROA:s"));
        let portal: Plan = serde_json::from_str(
            r#"{"kind":"portal","role":"AWSReservedSSO_Admin_0123456789abcdef","user":"ann","session":"AROA:ann","policy_arn":"arn:aws:iam::1:policy/p"}"#,
        )
        .unwrap();
        assert!(portal.is_portal());
        for deny in ["inline", "managed", "locked_out", "locked_out_bounded"] {
            serde_json::from_value::<Deny>(serde_json::Value::String(deny.into())).unwrap();
        }
    }
}
