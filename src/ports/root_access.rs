//! Organizations' centralized root access: a short root session in a member account, scoped by
//! an AWS-managed root-task policy (`sts:AssumeRoot`, AWS-FACTS §16).

use crate::error::Error;
use crate::incident::{AccessKeyId, AccountId};

use super::KeyInfo;

/// The task policy that lets a root session list and delete the root user's credentials. Its
/// document (v1, 2024-11-06) allows `iam:DeleteAccessKey` but not `iam:UpdateAccessKey`: a root
/// key can be deleted this way, never deactivated.
pub const DELETE_ROOT_CREDENTIALS: &str =
    "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials";

/// `AssumeRoot` grants at most 15 minutes; a response needs seconds.
pub const ROOT_SESSION_SECONDS: i32 = 900;

/// What the role the root session is started from must grant (`root-access-role.yaml`).
pub const ROOT_ACCESS_PERMISSIONS: [&str; 1] = ["sts:AssumeRoot"];

/// What the root session itself calls, all inside the task policy.
pub const ROOT_SESSION_CALLS: [&str; 2] = ["iam:ListAccessKeys", "iam:DeleteAccessKey"];

/// Starts root sessions in member accounts.
#[allow(async_fn_in_trait)]
pub trait RootAccess {
    type Session: RootCredentials;
    /// `sts:AssumeRole` on the organization role (the quarantine role, which
    /// `root-access-role.yaml` lets call `AssumeRoot`), then `sts:AssumeRoot` on a Regional STS
    /// endpoint with `TargetPrincipal` = `account` and [`DELETE_ROOT_CREDENTIALS`].
    async fn assume_root(
        &self,
        role_arn: &str,
        external_id: &str,
        account: &AccountId,
    ) -> Result<Self::Session, Error>;
}

/// The root user's access keys, through a root session (no `UserName`: the session's own user).
#[allow(async_fn_in_trait)]
pub trait RootCredentials {
    /// `iam:ListAccessKeys`.
    async fn root_keys(&self) -> Result<Vec<KeyInfo>, Error>;
    /// `iam:DeleteAccessKey`: irreversible. `false`: IAM had no such key (already gone).
    async fn delete_root_key(&self, key: &AccessKeyId) -> Result<bool, Error>;
}
