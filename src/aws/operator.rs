//! `Operator` over IAM: the writes that undo containment, for `killswitch restore` only.

use aws_sdk_iam::types::StatusType;

use super::{AwsClients, aws_err, is_failure};
use crate::error::{AwsFailure, Error};
use crate::incident::AccessKeyId;
use crate::ports::{Operator, PolicyTarget};

impl Operator for AwsClients {
    async fn untag(&self, target: &PolicyTarget, key: &str) -> Result<(), Error> {
        self.iam_untag(target, key).await
    }

    async fn delete_boundary(&self, user: &str) -> Result<(), Error> {
        match self
            .iam
            .delete_user_permissions_boundary()
            .user_name(user)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(()),
            Err(e) => Err(aws_err("iam:DeleteUserPermissionsBoundary")(e)),
        }
    }

    async fn detach_managed(&self, user: &str, policy_arn: &str) -> Result<(), Error> {
        match self
            .iam
            .detach_user_policy()
            .user_name(user)
            .policy_arn(policy_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(()),
            Err(e) => Err(aws_err("iam:DetachUserPolicy")(e)),
        }
    }

    async fn detach_role_managed(&self, role: &str, policy_arn: &str) -> Result<(), Error> {
        match self
            .iam
            .detach_role_policy()
            .role_name(role)
            .policy_arn(policy_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(()),
            Err(e) => Err(aws_err("iam:DetachRolePolicy")(e)),
        }
    }

    async fn delete_managed_policy(&self, policy_arn: &str) -> Result<(), Error> {
        // IAM deletes a policy only once its other versions are gone.
        let versions = match self
            .iam
            .list_policy_versions()
            .policy_arn(policy_arn)
            .send()
            .await
        {
            Ok(out) => out.versions().to_vec(),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => return Ok(()),
            Err(e) => return Err(aws_err("iam:ListPolicyVersions")(e)),
        };
        for v in versions.iter().filter(|v| !v.is_default_version()) {
            if let Some(id) = v.version_id() {
                self.iam
                    .delete_policy_version()
                    .policy_arn(policy_arn)
                    .version_id(id)
                    .send()
                    .await
                    .map_err(aws_err("iam:DeletePolicyVersion"))?;
            }
        }
        match self.iam.delete_policy().policy_arn(policy_arn).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(()),
            Err(e) => Err(aws_err("iam:DeletePolicy")(e)),
        }
    }

    async fn reactivate_key(&self, user: &str, key: &AccessKeyId) -> Result<(), Error> {
        self.iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key.as_str())
            .status(StatusType::Active)
            .send()
            .await
            .map(|_| ())
            .map_err(aws_err("iam:UpdateAccessKey"))
    }

    async fn delete_policy(&self, target: &PolicyTarget, name: &str) -> Result<(), Error> {
        match target {
            PolicyTarget::User(user) => self
                .iam
                .delete_user_policy()
                .user_name(user)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam:DeleteUserPolicy")),
            PolicyTarget::Role(role) => self
                .iam
                .delete_role_policy()
                .role_name(role)
                .policy_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(aws_err("iam:DeleteRolePolicy")),
        }
    }
}
