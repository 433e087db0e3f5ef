//! `Accounts`: member-account clients from `sts:AssumeRole`, same timeouts and endpoints as ours.

use std::time::{Duration, SystemTime};

use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};

use super::{AwsClients, aws_err};
use crate::error::Error;
use crate::ports::{Accounts, Entered};

/// The shortest session STS grants; a response is over long before it ends.
const SESSION_SECONDS: i32 = 900;

impl AwsClients {
    /// The SDK configuration of a role session (and its ARN), same timeouts and endpoints.
    pub(super) async fn assume(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
    ) -> Result<(aws_config::SdkConfig, String), Error> {
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .external_id(external_id)
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .map_err(aws_err("sts:AssumeRole"))?;
        let missing = |what: &str| Error::Aws {
            op: "sts:AssumeRole",
            code: None,
            source: format!("response without {what}").into(),
        };
        let c = out.credentials().ok_or_else(|| missing("Credentials"))?;
        let arn = out
            .assumed_role_user()
            .map(|u| u.arn().to_owned())
            .ok_or_else(|| missing("AssumedRoleUser"))?;
        Ok((session_sdk(&self.sdk, c, "killswitch-member-role"), arn))
    }
}

/// `sdk` signing as the session STS returned (`AssumeRole`, `AssumeRoot`) until it expires.
pub(super) fn session_sdk(
    sdk: &aws_config::SdkConfig,
    c: &aws_sdk_sts::types::Credentials,
    provider: &'static str,
) -> aws_config::SdkConfig {
    let expiry = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(c.expiration().secs()).unwrap_or_default());
    let credentials = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        Some(expiry),
        provider,
    );
    sdk.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

impl Accounts for AwsClients {
    type Member = AwsClients;

    async fn enter(
        &self,
        role_arn: &str,
        external_id: &str,
        session_name: &str,
    ) -> Result<Entered<AwsClients>, Error> {
        let (sdk, arn) = self.assume(role_arn, external_id, session_name).await?;
        Ok(Entered {
            clients: AwsClients::from_sdk_config(&sdk, self.topic_arn.clone()),
            arn,
        })
    }
}
