//! The user's inline deny-all: stops every other credential of the user, including the sessions
//! it minted with GetSessionToken/GetFederationToken, which deactivating the key does not.

use crate::error::Error;
use crate::policy::{self, USER_POLICY_NAME};
use crate::ports::{Identity, Operator, PolicyTarget};
use crate::report::Outcome;

pub const PERMISSIONS: &[&str] = &["iam:GetUserPolicy", "iam:PutUserPolicy"];

/// `before` is the policy read in the guard's wave, when it was read for this user.
pub async fn apply<C: Identity>(
    cloud: &C,
    user: &str,
    before: Option<&Result<Option<String>, Error>>,
    dry_run: bool,
) -> (Outcome, String) {
    let target = PolicyTarget::User(user.to_owned());
    if let Some(Ok(Some(doc))) = before
        && policy::is_deny_all(doc)
    {
        return (
            Outcome::AlreadyDone,
            format!("{USER_POLICY_NAME} already on {target}"),
        );
    }
    if dry_run {
        return (
            Outcome::WouldDo,
            format!("would put inline policy {USER_POLICY_NAME} (Deny * on *) on {target}"),
        );
    }
    match cloud
        .put_policy(&target, USER_POLICY_NAME, &policy::deny_all())
        .await
    {
        Ok(()) => (
            Outcome::Done,
            format!("inline policy {USER_POLICY_NAME} (Deny * on *) put on {target}"),
        ),
        Err(e) if e.aws_code() == Some("LimitExceeded") => (
            Outcome::Failed,
            format!(
                "{target} has no room left in its inline-policy quota, so {USER_POLICY_NAME} could not be added (the key deactivation stands); attach the managed deny policy by hand: aws iam attach-user-policy --user-name {user} --policy-arn arn:aws:iam::aws:policy/AWSDenyAll"
            ),
        ),
        Err(e) => (Outcome::Failed, e.chain()),
    }
}

pub async fn read_back<C: Identity>(cloud: &C, user: &str) -> (bool, String) {
    let doc = cloud
        .read_policy(&PolicyTarget::User(user.to_owned()), USER_POLICY_NAME)
        .await;
    match doc {
        Ok(Some(d)) if policy::is_deny_all(&d) => (true, format!("{USER_POLICY_NAME} in place")),
        Ok(Some(_)) => (false, format!("{USER_POLICY_NAME} ALTERED")),
        Ok(None) => (false, format!("{USER_POLICY_NAME} MISSING")),
        Err(e) => (false, format!("policy unreadable: {}", e.chain())),
    }
}

pub async fn undo<O: Operator>(op: &O, user: &str) -> Result<(), Error> {
    op.delete_policy(&PolicyTarget::User(user.to_owned()), USER_POLICY_NAME)
        .await
}

pub fn undo_command(user: &str) -> String {
    format!("aws iam delete-user-policy --user-name {user} --policy-name {USER_POLICY_NAME}")
}
