//! Adapters: the only code that speaks the AWS SDK. Each file implements one port.

use std::fmt::Debug;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

use crate::error::{AwsFailure, Error};

mod cloudtrail;
mod doctor;
pub use doctor::DoctorClients;
mod iam;
mod iam_tags;
mod identity_center;
pub use identity_center::IdcClient;
mod member;
mod operator;
mod organizations;
pub use organizations::OrgClient;
mod root;
pub use root::RootSession;
mod guardduty;
#[cfg(feature = "drill")]
pub mod sandbox;
mod securityhub;
mod sns;
mod store;

/// The production implementation of every port, built once at start-up from one `SdkConfig`.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub account: aws_sdk_account::Client,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    pub sns: aws_sdk_sns::Client,
    /// Per-Region clients are derived from this one (LookupEvents is Regional).
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub topic_arn: String,
    /// `KILLSWITCH_CHAT_TOPIC_ARN`: the topic the chat integration reads (cards, not email text).
    pub chat_topic_arn: Option<String>,
    /// SNS in the chat topic's own Region.
    pub chat_sns: aws_sdk_sns::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Per-Region clients are derived from this one (a finding lives in its Region).
    pub securityhub: aws_sdk_securityhub::Client,
    /// Per-Region clients are derived from this one (a finding lives in its Region).
    pub guardduty: aws_sdk_guardduty::Client,
    pub kms: aws_sdk_kms::Client,
    /// `KILLSWITCH_RECORD_KEY_ARN`: the KMS HMAC key that seals incident records.
    pub record_key_arn: Option<String>,
    /// `KILLSWITCH_INCIDENT_TABLE`, `KILLSWITCH_FOLLOW_UP_QUEUE_URL`.
    pub incident_table: Option<String>,
    pub follow_up_queue_url: Option<String>,
    /// Kept to derive member-account clients with other credentials.
    pub sdk: aws_config::SdkConfig,
    /// The findings a drill stages where GuardDuty would hold them (GuardDuty cannot be made to
    /// raise a real finding on demand). The drill harness only: the deployed build has no way
    /// to answer a read-back from anything but the service.
    #[cfg(feature = "drill")]
    pub staged: guardduty::Staged,
}

/// SNS answers for a topic only in the topic's own Region: the client publishes there, whatever
/// Region the profile or the function runs in.
fn sns_client(sdk: &aws_config::SdkConfig, topic_arn: &str) -> aws_sdk_sns::Client {
    match topic_region(topic_arn) {
        Some(region) => aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(sdk)
                .region(aws_config::Region::new(region.to_owned()))
                .build(),
        ),
        None => aws_sdk_sns::Client::new(sdk),
    }
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME` → `REGION`.
pub fn topic_region(topic_arn: &str) -> Option<&str> {
    crate::vocab::Arn::parse(topic_arn)
        .filter(|a| a.service == "sns" && crate::vocab::is_region_name(a.region))
        .map(|a| a.region)
}

impl AwsClients {
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        let topic_arn = topic_arn.into();
        Self {
            account: aws_sdk_account::Client::new(sdk),
            iam: iam_client(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            sns: sns_client(sdk, &topic_arn),
            cloudtrail: aws_sdk_cloudtrail::Client::new(sdk),
            topic_arn,
            chat_topic_arn: None,
            chat_sns: aws_sdk_sns::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            securityhub: aws_sdk_securityhub::Client::new(sdk),
            guardduty: aws_sdk_guardduty::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            record_key_arn: None,
            incident_table: None,
            follow_up_queue_url: None,
            sdk: sdk.clone(),
            #[cfg(feature = "drill")]
            staged: guardduty::Staged::default(),
        }
    }

    /// The clients the function itself runs with: the settings' topic, table and queue.
    pub fn for_config(sdk: &aws_config::SdkConfig, config: &crate::config::Config) -> Self {
        Self {
            incident_table: config.incident_table.clone(),
            record_key_arn: config.record_key_arn.clone(),
            follow_up_queue_url: config.follow_up_queue_url.clone(),
            chat_topic_arn: config.chat_topic_arn.clone(),
            chat_sns: sns_client(sdk, config.chat_topic_arn.as_deref().unwrap_or_default()),
            ..Self::from_sdk_config(sdk, config.topic_arn.clone())
        }
    }

    /// Who the function runs as (`sts:GetCallerIdentity` needs no permission).
    pub async fn caller_identity(&self) -> Result<(String, String), Error> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(aws_err("sts:GetCallerIdentity"))?;
        match (out.account(), out.arn()) {
            (Some(a), Some(arn)) => Ok((a.to_owned(), arn.to_owned())),
            _ => Err(Error::Aws {
                op: "sts:GetCallerIdentity",
                code: None,
                source: "response without Account or Arn".into(),
            }),
        }
    }
}

impl AwsClients {
    /// Opens pooled connections to IAM and the incident table during Lambda init. The reads
    /// fail harmlessly (no such key or item); only the connections matter.
    pub async fn warm_up(&self) {
        const PLACEHOLDER_KEY: &str = "AKIAKILLSWITCHWARMUP";
        let iam = (0..3).map(|_| async {
            let _ = self
                .iam
                .get_access_key_last_used()
                .access_key_id(PLACEHOLDER_KEY)
                .send()
                .await;
        });
        let table = async {
            if let Some(table) = &self.incident_table {
                let _ = self
                    .dynamodb
                    .get_item()
                    .table_name(table)
                    .key(
                        "pk",
                        aws_sdk_dynamodb::types::AttributeValue::S("warm-up".into()),
                    )
                    .send()
                    .await;
            }
        };
        tokio::join!(futures::future::join_all(iam), table);
    }
}

/// IAM throttles bursts of writes per account (limits unpublished, `Throttling: Rate exceeded`).
/// A burst of leaks (200 keys of one `.env`) must back off and retry rather than fail and wait a
/// minute for Lambda's own retry: five attempts with the SDK's exponential, jittered back-off,
/// within a 30-second operation budget.
fn iam_client(sdk: &aws_config::SdkConfig) -> aws_sdk_iam::Client {
    const IAM_ATTEMPTS: u32 = 5;
    let timeouts = sdk
        .timeout_config()
        .map(|t| t.to_builder())
        .unwrap_or_default()
        .operation_timeout(std::time::Duration::from_secs(30))
        .build();
    let config = aws_sdk_iam::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(IAM_ATTEMPTS))
        .timeout_config(timeouts)
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// Maps an SDK error to ours, keeping the error code and the whole chain.
pub(crate) fn aws_err<E, R>(op: &'static str) -> impl FnOnce(SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    move |e| Error::Aws {
        op,
        code: e.code().map(str::to_owned),
        source: Box::new(e),
    }
}

/// Whether an SDK error is this kind of failure, by the one table of codes in `crate::error`.
pub(crate) fn is_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, kind: AwsFailure) -> bool {
    e.code().map(AwsFailure::of) == Some(kind)
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
