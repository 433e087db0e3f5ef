//! The organization's service control policies, through the quarantine role.

use crate::error::Error;

/// A service control policy as Organizations holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scp {
    pub id: String,
    pub content: String,
}

/// The organization's service control policies, through the quarantine role.
#[allow(async_fn_in_trait)]
pub trait ServiceControlPolicies {
    /// `organizations:DescribeOrganization`: the management account, which no SCP restricts.
    async fn management_account(&self) -> Result<String, Error>;
    /// `organizations:ListPolicies` (SCPs) and `organizations:DescribePolicy`: the policy of
    /// that name, `None` when there is none.
    async fn find_policy(&self, name: &str) -> Result<Option<Scp>, Error>;
    /// `organizations:CreatePolicy` (tagged `killswitch=quarantine`): the new policy's ID.
    async fn create_policy(
        &self,
        name: &str,
        description: &str,
        content: &str,
    ) -> Result<String, Error>;
    /// `organizations:UpdatePolicy` (content only).
    async fn update_policy(&self, id: &str, content: &str) -> Result<(), Error>;
    /// `organizations:ListPoliciesForTarget` (SCPs): the IDs attached directly to the account.
    async fn policies_for(&self, account: &str) -> Result<Vec<String>, Error>;
    /// `organizations:AttachPolicy`.
    async fn attach_policy(&self, id: &str, account: &str) -> Result<(), Error>;
    /// `organizations:DetachPolicy` (restore only).
    async fn detach_policy(&self, id: &str, account: &str) -> Result<(), Error>;
    /// `organizations:DeletePolicy` (restore only, once it holds no principal).
    async fn delete_policy(&self, id: &str) -> Result<(), Error>;
}

/// The organization, entered through the quarantine role (`quarantine-role.yaml`).
#[allow(async_fn_in_trait)]
pub trait Organization {
    type Org: ServiceControlPolicies;
    /// `sts:AssumeRole` with the external ID the quarantine role's trust policy demands.
    async fn enter_organization(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
    ) -> Result<Self::Org, Error>;
}
