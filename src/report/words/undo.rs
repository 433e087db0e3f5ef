//! How to lift containment once the key's owner has rotated: the checked `killswitch restore`
//! first, then the raw commands for each kind of containment. Pure.

use crate::policy::{
    MANAGED_DENY_ALL_ARN, ROLE_POLICY_NAME, SESSION_POLICY_NAME, USER_POLICY_NAME,
};
use crate::vocab::{Deny, Plan};

/// The separator between a command and the note after it.
const NOTE: &str = "   (";

/// The raw commands that lift what a plan wrote.
pub(super) fn for_plan(plan: &Plan, key: &str) -> Vec<String> {
    match plan {
        Plan::User {
            user,
            deactivate,
            deny,
            ..
        } => deactivate
            .then(|| reactivate_key(user, key))
            .into_iter()
            .chain([lift_user_deny(user, *deny)])
            .collect(),
        Plan::Role {
            role,
            session: Some(session),
            ..
        } => vec![lift_session_deny(role, session)],
        Plan::Portal {
            user, policy_arn, ..
        } => vec![format!(
            "aws iam create-policy-version --policy-arn {policy_arn} --set-as-default --policy-document <the current document without {user}'s entries>{NOTE}killswitch restore does exactly that)"
        )],
        Plan::Role { role, .. } => vec![format!(
            "{}{NOTE}only if the revocation itself causes an outage)",
            lift_role_revocation(role)
        )],
    }
}

/// The first undo command: the checked one.
pub(super) fn restore(key: &str) -> String {
    format!(
        "killswitch restore --access-key-id {key} --requested-by YOU --reason WHY{NOTE}refuses while the holder left a key or password behind and revokes the sessions it minted first; the raw commands below skip those checks)"
    )
}

pub fn reactivate_key(user: &str, key: &str) -> String {
    format!("aws iam update-access-key --user-name {user} --access-key-id {key} --status Active")
}

pub fn lift_user_deny(user: &str, deny: Deny) -> String {
    match deny {
        Deny::Inline => format!(
            "aws iam delete-user-policy --user-name {user} --policy-name {USER_POLICY_NAME}"
        ),
        Deny::Managed => format!(
            "aws iam detach-user-policy --user-name {user} --policy-arn {MANAGED_DENY_ALL_ARN}"
        ),
        Deny::LockedOut => format!(
            "reactivate each key you trust: aws iam update-access-key --user-name {user} --access-key-id KEY --status Active; set a new console password: aws iam create-login-profile --user-name {user} --password-reset-required --password ..."
        ),
        Deny::LockedOutBounded => format!(
            "aws iam delete-user-permissions-boundary --user-name {user}; then {}",
            lift_user_deny(user, Deny::LockedOut)
        ),
    }
}

pub fn lift_role_revocation(role: &str) -> String {
    format!("aws iam delete-role-policy --role-name {role} --policy-name {ROLE_POLICY_NAME}")
}

pub fn lift_session_deny(role: &str, session: &str) -> String {
    format!(
        "killswitch restore --role-name {role} --session '{session}' (removes only this session from {SESSION_POLICY_NAME})"
    )
}

/// The first undo command as a card shows it: the command, and what its note says that holds
/// without the raw commands beside it (the email lists them "below"; the card does not, so it
/// says where they are). `raw`: how many raw commands follow it.
pub fn for_card(first: &str, raw: usize) -> (&str, Vec<String>) {
    let (command, note) = match first.split_once(NOTE) {
        Some((command, note)) => (command.trim_end(), note.strip_suffix(')').unwrap_or(note)),
        None => (first, ""),
    };
    let mut said: Vec<String> = note
        .split("; ")
        .filter(|c| !c.is_empty() && !c.contains("below") && !c.contains("above"))
        .map(str::to_owned)
        .collect();
    match raw {
        0 => {}
        1 => said.push("the raw command in the email report skips those checks".into()),
        _ => said.push("the raw commands in the email report skip those checks".into()),
    }
    (command, said)
}
