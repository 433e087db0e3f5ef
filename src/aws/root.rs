//! `RootAccess`: a root session in a member account (`sts:AssumeRoot`) and the root user's keys
//! through it.

use aws_sdk_sts::types::PolicyDescriptorType;

use super::{AwsClients, aws_err, is_failure};
use crate::error::{AwsFailure, Error};
use crate::incident::{AccessKeyId, AccountId};
use crate::ports::{
    DELETE_ROOT_CREDENTIALS, KeyInfo, ROOT_SESSION_SECONDS, RootAccess, RootCredentials,
};

/// The root user's IAM, through a root session.
pub struct RootSession {
    iam: aws_sdk_iam::Client,
}

impl RootAccess for AwsClients {
    type Session = RootSession;

    async fn assume_root(
        &self,
        role_arn: &str,
        external_id: &str,
        account: &AccountId,
    ) -> Result<RootSession, Error> {
        let (org, _) = self
            .assume(role_arn, external_id, "killswitch-root-keys")
            .await?;
        // The SDK for Rust addresses STS's Regional endpoint unless told otherwise; AssumeRoot
        // is refused on the global one.
        let out = aws_sdk_sts::Client::new(&org)
            .assume_root()
            .target_principal(account.as_str())
            .task_policy_arn(
                PolicyDescriptorType::builder()
                    .arn(DELETE_ROOT_CREDENTIALS)
                    .build(),
            )
            .duration_seconds(ROOT_SESSION_SECONDS)
            .send()
            .await
            .map_err(aws_err("sts:AssumeRoot"))?;
        let c = out.credentials().ok_or_else(|| Error::Aws {
            op: "sts:AssumeRoot",
            code: None,
            source: "response without Credentials".into(),
        })?;
        let sdk = super::member::session_sdk(&org, c, "killswitch-root-session");
        Ok(RootSession {
            iam: aws_sdk_iam::Client::new(&sdk),
        })
    }
}

impl RootCredentials for RootSession {
    async fn root_keys(&self) -> Result<Vec<KeyInfo>, Error> {
        // No UserName: a root session acts on the root user, and the task policy denies any
        // other user.
        let out = self
            .iam
            .list_access_keys()
            .send()
            .await
            .map_err(aws_err("iam:ListAccessKeys"))?;
        Ok(super::iam::key_infos(out.access_key_metadata()))
    }

    async fn delete_root_key(&self, key: &AccessKeyId) -> Result<bool, Error> {
        match self
            .iam
            .delete_access_key()
            .access_key_id(key.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_failure(&e, AwsFailure::NotFound) => Ok(false),
            Err(e) => Err(aws_err("iam:DeleteAccessKey")(e)),
        }
    }
}
