//! Deactivate the leaked key (never delete it: it stays searchable in CloudTrail and reversible).

use crate::error::Error;
use crate::incident::AccessKeyId;
use crate::ports::{Identity, KeyChange, KeyStatus, Operator};
use crate::report::Outcome;

pub const PERMISSIONS: &[&str] = crate::vocab::Step::DeactivateKey.permissions();

/// `before` is the key's status read in the guard's wave, when it was read for this user.
/// Without it the write goes ahead: it is idempotent, and a read would cost a round trip.
pub async fn apply<C: Identity>(
    cloud: &C,
    user: &str,
    key: &AccessKeyId,
    before: Option<Option<KeyStatus>>,
    dry_run: bool,
) -> (Outcome, String) {
    match before {
        Some(None) => {
            return (Outcome::NotFound, format!("user {user} holds no key {key}"));
        }
        Some(Some(KeyStatus::Inactive | KeyStatus::Other)) => {
            return (
                Outcome::AlreadyDone,
                format!("key {key} of user {user} was already inactive"),
            );
        }
        _ => {}
    }
    if dry_run {
        return (
            Outcome::WouldDo,
            format!("would deactivate key {key} of user {user}"),
        );
    }
    match cloud.deactivate_key(user, key).await {
        Ok(KeyChange::Deactivated) => (
            Outcome::Done,
            format!("key {key} of user {user} set to Inactive (not deleted)"),
        ),
        Ok(KeyChange::NotFound) => (Outcome::NotFound, format!("user {user} holds no key {key}")),
        Err(e) => (Outcome::Failed, e.chain()),
    }
}

/// `Some(true)` inactive or gone, `Some(false)` usable (or unreadable: assume the worst).
pub async fn read_back<C: Identity>(cloud: &C, user: &str, key: &AccessKeyId) -> (bool, String) {
    match cloud.key_status(user, key).await {
        Ok(Some(KeyStatus::Active)) => (false, "key is ACTIVE".into()),
        Ok(Some(_)) => (true, "key inactive".into()),
        Ok(None) => (true, "key no longer exists".into()),
        Err(e) => (false, format!("key status unreadable: {}", e.chain())),
    }
}

pub async fn undo<O: Operator>(op: &O, user: &str, key: &AccessKeyId) -> Result<(), Error> {
    op.reactivate_key(user, key).await
}
