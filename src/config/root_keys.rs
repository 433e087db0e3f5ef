//! `KILLSWITCH_ROOT_KEYS`: what a verified finding on a root access key does.

use super::parse::Vars;
use crate::error::Error;

/// `KILLSWITCH_ROOT_KEYS`: a root key can only be deleted through centralized root access (the
/// root-task policy has no `iam:UpdateAccessKey`), so acting on one is opt-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKeys {
    /// Notify with the manual steps; no IAM write.
    Notify,
    /// Delete the finding's root key through `sts:AssumeRoot` (irreversible).
    Delete,
}

pub(super) fn root_keys(vars: &Vars<'_>) -> Result<RootKeys, Error> {
    match vars.text("KILLSWITCH_ROOT_KEYS").as_deref() {
        None | Some("notify") => Ok(RootKeys::Notify),
        Some("delete") => Ok(RootKeys::Delete),
        Some(other) => super::bad(
            "KILLSWITCH_ROOT_KEYS",
            format!("{other:?}: expected `notify` or `delete`"),
        ),
    }
}
