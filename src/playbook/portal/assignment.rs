//! The Identity Center side of a portal containment: the user's identity store ID, and the
//! optional removal of their account assignment (put back by `killswitch restore`).

use chrono::Utc;

use super::permission_set_name;
use crate::config::IdentityCenter;
use crate::error::Error;
use crate::playbook::Step;
use crate::ports::{Assignment, Directory, IdentityCenterAdmin};
use crate::record::Removed;
use crate::report::{Outcome, Report};

/// How long the contain phase waits for the identity store: the `aws:userid` deny goes out
/// without the user ID rather than late.
const LOOKUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// The user's identity store ID for the contain phase, or `None` (the step says why).
pub async fn lookup<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    user_name: &str,
    incident: &crate::incident::Incident,
    report: &mut Report,
) -> Option<String> {
    let session = crate::playbook::locate::session_name(incident);
    let found = tokio::time::timeout(
        LOOKUP_BUDGET,
        resolve_user(home, config, user_name, &session),
    )
    .await;
    let (outcome, detail, id) = match found {
        Ok(Ok(id)) => (
            Outcome::Done,
            format!(
                "Identity Center user {user_name} is identitystore:UserId {id}: denied with every permission set that references the deny policy"
            ),
            Some(id),
        ),
        Ok(Err(e)) => (
            Outcome::Failed,
            format!(
                "Identity Center user {user_name} NOT looked up ({}): only this permission set's sessions (aws:userid) are denied",
                e.chain()
            ),
            None,
        ),
        Err(_) => (
            Outcome::Failed,
            format!(
                "Identity Center did not answer within {} s: only this permission set's sessions (aws:userid) are denied",
                LOOKUP_BUDGET.as_secs()
            ),
            None,
        ),
    };
    report.record(Step::ResolveOwner, outcome, detail, Utc::now());
    id
}

/// Identity Center through `role` (the responder's, or the operators' Restore role), in its
/// home Region.
async fn enter<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    role: &str,
    session_name: &str,
) -> Result<H::Directory, Error> {
    home.enter_identity_center(
        role,
        &config.external_id,
        session_name,
        config.region.as_deref(),
    )
    .await
}

/// The user's identity store ID, through the Identity Center role.
pub async fn resolve_user<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    user_name: &str,
    session_name: &str,
) -> Result<String, Error> {
    let dir = enter(home, config, &config.role_arn, session_name).await?;
    let instance = dir.instance().await?;
    dir.user_id(&instance.identity_store_id, user_name)
        .await?
        .ok_or_else(|| Error::BadEvent(format!("the identity store has no user named {user_name}")))
}

/// Removes the user's direct assignment of the role's permission set to the account (new portal
/// sessions stop; the deny already covers those and the running ones). Group assignments are
/// reported, never removed: they give access to everyone in the group.
#[allow(clippy::too_many_arguments)]
pub async fn remove_assignment<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    account: &str,
    role: &str,
    user_id: &str,
    user_name: &str,
    session_name: &str,
    report: &mut Report,
) -> Option<Removed> {
    let at = Utc::now();
    let result = remove_direct(
        home,
        config,
        account,
        role,
        user_id,
        user_name,
        session_name,
    )
    .await;
    let (outcome, detail, removed) = match result {
        Ok(Removal {
            removed: Some(removed),
            permission_set,
            groups,
        }) => (
            Outcome::Done,
            format!(
                "removed {user_name}'s direct assignment of permission set {permission_set} to account {account} (recorded: killswitch restore puts it back).{}",
                groups_note(&groups, user_name)
            ),
            Some(removed),
        ),
        Ok(Removal {
            removed: None,
            permission_set,
            groups,
        }) => (
            Outcome::Skipped,
            format!(
                "{user_name} has no direct assignment of permission set {permission_set} to account {account}: nothing removed.{}",
                groups_note(&groups, user_name)
            ),
            None,
        ),
        Err(e) => (
            Outcome::Failed,
            format!(
                "the assignment was NOT removed (the deny stands): {}",
                e.chain()
            ),
            None,
        ),
    };
    report.record(Step::RemoveAssignment, outcome, detail, at);
    removed
}

/// What [`remove_direct`] found and did.
struct Removal {
    /// The direct assignment removed, `None` when the user had none.
    removed: Option<Removed>,
    permission_set: String,
    /// Groups assigned the permission set in the account: left in place.
    groups: Vec<String>,
}

/// The group assignments left in place, as a sentence for the step (empty when none).
fn groups_note(groups: &[String], user_name: &str) -> String {
    if groups.is_empty() {
        String::new()
    } else {
        format!(
            " Group assignment(s) of this permission set to the account stay ({}): if {user_name} is in one of them they can still start sessions from the portal (denied by the policy); remove them from the group in Identity Center.",
            groups.join(", ")
        )
    }
}

async fn remove_direct<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    account: &str,
    role: &str,
    user_id: &str,
    user_name: &str,
    session_name: &str,
) -> Result<Removal, Error> {
    let Some(name) = permission_set_name(role) else {
        return Err(Error::BadEvent(format!(
            "role {role} does not name a permission set (AWSReservedSSO_NAME_HASH)"
        )));
    };
    let dir = enter(home, config, &config.role_arn, session_name).await?;
    let instance = dir.instance().await?;
    let Some(ps) = dir.permission_set(&instance.arn, name).await? else {
        return Err(Error::BadEvent(format!(
            "Identity Center has no permission set named {name}"
        )));
    };
    let assignments = dir.assignments(&instance.arn, account, &ps).await?;
    let groups: Vec<String> = assignments
        .iter()
        .filter(|a| a.principal_type == "GROUP")
        .map(|a| a.principal_id.clone())
        .collect();
    let direct = assignments
        .iter()
        .any(|a| a.principal_type == "USER" && a.principal_id == user_id);
    if direct {
        dir.delete_assignment(&instance.arn, account, &ps, &Assignment::user(user_id))
            .await?;
    }
    Ok(Removal {
        removed: direct.then(|| Removed {
            instance_arn: instance.arn.clone(),
            account: account.to_owned(),
            permission_set_arn: ps.clone(),
            permission_set: name.to_owned(),
            user_id: user_id.to_owned(),
            user_name: user_name.to_owned(),
            at: Utc::now(),
        }),
        permission_set: name.to_owned(),
        groups,
    })
}

/// Creates the removed assignment again, through the operators' Restore role.
pub async fn put_back<H: IdentityCenterAdmin>(
    home: &H,
    config: &IdentityCenter,
    removed: &Removed,
) -> Result<String, Error> {
    let Some(role) = &config.restore_role_arn else {
        return Err(Error::BadEvent(format!(
            "KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN is not set: put it back by hand: {}",
            manual_put_back(removed)
        )));
    };
    let dir = enter(home, config, role, "killswitch-restore").await?;
    let existing = dir
        .assignments(
            &removed.instance_arn,
            &removed.account,
            &removed.permission_set_arn,
        )
        .await?;
    if existing
        .iter()
        .any(|a| a.principal_type == "USER" && a.principal_id == removed.user_id)
    {
        return Ok(format!(
            "{}'s assignment of {} to {} is already there",
            removed.user_name, removed.permission_set, removed.account
        ));
    }
    dir.create_assignment(
        &removed.instance_arn,
        &removed.account,
        &removed.permission_set_arn,
        &Assignment::user(&removed.user_id),
    )
    .await?;
    Ok(format!(
        "assigned permission set {} to {} in account {} again",
        removed.permission_set, removed.user_name, removed.account
    ))
}

pub fn manual_put_back(r: &Removed) -> String {
    format!(
        "aws sso-admin create-account-assignment --instance-arn {} --target-type AWS_ACCOUNT --target-id {} --permission-set-arn {} --principal-type USER --principal-id {}",
        r.instance_arn, r.account, r.permission_set_arn, r.user_id
    )
}
