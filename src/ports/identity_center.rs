//! IAM Identity Center's administration, through the Identity Center role.

use crate::error::Error;

/// The organization's IAM Identity Center instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub arn: String,
    pub identity_store_id: String,
}

/// Who an account assignment is for: `USER` or `GROUP` and the identity store ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub principal_type: String,
    pub principal_id: String,
}

impl Assignment {
    pub fn user(id: &str) -> Self {
        Self {
            principal_type: "USER".into(),
            principal_id: id.to_owned(),
        }
    }
}

/// IAM Identity Center's administration API, through the Identity Center role.
#[allow(async_fn_in_trait)]
pub trait Directory {
    /// `sso:ListInstances`: the organization's instance.
    async fn instance(&self) -> Result<Instance, Error>;
    /// `identitystore:GetUserId` by `UserName`; `None` when there is no such user.
    async fn user_id(&self, identity_store: &str, user_name: &str)
    -> Result<Option<String>, Error>;
    /// `sso:ListPermissionSets` and `sso:DescribePermissionSet`: the ARN of the set of that name.
    async fn permission_set(&self, instance: &str, name: &str) -> Result<Option<String>, Error>;
    /// `sso:ListAccountAssignments` of one permission set in one account.
    async fn assignments(
        &self,
        instance: &str,
        account: &str,
        permission_set: &str,
    ) -> Result<Vec<Assignment>, Error>;
    /// `sso:DeleteAccountAssignment`, then `sso:DescribeAccountAssignmentDeletionStatus` until
    /// it succeeded (an error when it failed or did not finish in time).
    async fn delete_assignment(
        &self,
        instance: &str,
        account: &str,
        permission_set: &str,
        who: &Assignment,
    ) -> Result<(), Error>;
    /// `sso:CreateAccountAssignment` and its status (restore only, the operators' role).
    async fn create_assignment(
        &self,
        instance: &str,
        account: &str,
        permission_set: &str,
        who: &Assignment,
    ) -> Result<(), Error>;
}

/// Identity Center's administrator account, entered through the Identity Center role
/// (`identity-center-role.yaml`).
#[allow(async_fn_in_trait)]
pub trait IdentityCenterAdmin {
    type Directory: Directory;
    /// `sts:AssumeRole` with the external ID; Identity Center's API in `region` (its home
    /// Region), or ours.
    async fn enter_identity_center(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
        region: Option<&str>,
    ) -> Result<Self::Directory, Error>;
}
