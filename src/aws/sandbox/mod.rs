//! What drills need from AWS beyond the function's ports: planting canaries, acting as the
//! attacker, an on-call inbox (SNS -> SQS), and cleaning up. Operator-only: none of these
//! permissions are granted to the function.

use aws_config::SdkConfig;
use aws_sdk_iam::config::Credentials;
use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use super::aws_err;
use crate::error::Error;

mod local;
mod org_guard;
mod racer;
mod table;

pub use local::{
    local_cloudtrail_fault, local_cloudtrail_lag, local_eventbridge_events, local_iam_lag,
    local_portal_credentials, local_portal_seed, local_root_key_delete, local_root_key_plant,
    local_root_keys,
};
pub use racer::{Held, Holder, RaceCall, RacePlan, RaceSummary, View};

/// Credentials a drill planted or the attacker minted. The secret never appears in `Debug`.
#[derive(Clone)]
pub struct Creds {
    pub access_key_id: String,
    secret: String,
    token: Option<String>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Creds {
    pub fn new(access_key_id: String, secret: String, token: Option<String>) -> Self {
        Self {
            access_key_id,
            secret,
            token,
        }
    }

    /// For handing to a process under test (its environment), never for printing.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn session_token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

/// One attacker action, signed with the credentials under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackerAction {
    GetCallerIdentity,
    ListUsers,
    CreateUser,
    CreateAccessKey,
    AssumeRole,
}

/// What an attacker action returned: `Ok` with minted credentials if any, or the error code.
pub type AttackerResult = Result<Option<Creds>, String>;

pub struct Sandbox {
    sdk: SdkConfig,
    iam: aws_sdk_iam::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    sts: aws_sdk_sts::Client,
}

impl Sandbox {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            sdk: sdk.clone(),
            iam: aws_sdk_iam::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
        }
    }

    /// The SDK configuration of someone holding `creds`, without retries (a refusal is final).
    fn as_holder(&self, creds: &Creds) -> SdkConfig {
        self.sdk
            .to_builder()
            .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
                Credentials::new(
                    &creds.access_key_id,
                    &creds.secret,
                    creds.token.clone(),
                    None,
                    "drill",
                ),
            ))
            .retry_config(RetryConfig::disabled())
            .build()
    }

    /// The SDK configuration the function runs with when it acts as `creds` (a responder role's
    /// session): the operator's, with its retries.
    pub fn acting_as(&self, creds: &Creds) -> SdkConfig {
        self.sdk
            .to_builder()
            .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
                Credentials::new(
                    &creds.access_key_id,
                    &creds.secret,
                    creds.token.clone(),
                    None,
                    "drill-responder",
                ),
            ))
            .build()
    }

    /// A user with an inline allow policy and one access key.
    pub async fn create_user(&self, name: &str, actions: &[&str]) -> Result<Creds, Error> {
        self.iam
            .create_user()
            .user_name(name)
            .send()
            .await
            .map_err(aws_err("iam:CreateUser"))?;
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]});
        self.iam
            .put_user_policy()
            .user_name(name)
            .policy_name("drill-canary")
            .policy_document(doc.to_string())
            .send()
            .await
            .map_err(aws_err("iam:PutUserPolicy"))?;
        let key = self
            .iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .map_err(aws_err("iam:CreateAccessKey"))?
            .access_key
            .ok_or_else(|| drill_err("iam:CreateAccessKey", "no key returned"))?;
        Ok(Creds {
            access_key_id: key.access_key_id,
            secret: key.secret_access_key,
            token: None,
        })
    }

    /// A role trusting `trusted` (a principal ARN) with an inline allow policy.
    pub async fn create_role(
        &self,
        name: &str,
        trusted: &str,
        actions: &[&str],
    ) -> Result<String, Error> {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}]});
        let role = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .map_err(aws_err("iam:CreateRole"))?
            .role
            .ok_or_else(|| drill_err("iam:CreateRole", "no role returned"))?;
        let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]});
        self.iam
            .put_role_policy()
            .role_name(name)
            .policy_name("drill-canary")
            .policy_document(doc.to_string())
            .send()
            .await
            .map_err(aws_err("iam:PutRolePolicy"))?;
        Ok(role.arn)
    }

    /// Assumes a role as the drill operator (a stolen session's starting point).
    pub async fn assume_role(&self, role_arn: &str) -> Result<Creds, Error> {
        assume(&self.sts, role_arn)
            .await
            .map_err(|code| drill_err("sts:AssumeRole", &code))
    }

    /// Assumes a role as the holder of `creds` (the attacker's hop, or the responder entering a
    /// member account with its external ID); the error code when refused.
    pub async fn assume_role_as(
        &self,
        creds: &Creds,
        role_arn: &str,
        session: &str,
        external_id: Option<&str>,
    ) -> Result<Creds, String> {
        let out = aws_sdk_sts::Client::new(&self.as_holder(creds))
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session)
            .set_external_id(external_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| code_of(&e))?;
        let c = out.credentials.ok_or("no credentials")?;
        Ok(Creds::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
        ))
    }

    /// Acts as the attacker: one call signed with `creds`.
    pub async fn attack(
        &self,
        creds: &Creds,
        action: AttackerAction,
        target: &str,
    ) -> AttackerResult {
        let sdk = self.as_holder(creds);
        let iam = aws_sdk_iam::Client::new(&sdk);
        match action {
            AttackerAction::GetCallerIdentity => aws_sdk_sts::Client::new(&sdk)
                .get_caller_identity()
                .send()
                .await
                .map(|_| None)
                .map_err(|e| code_of(&e)),
            AttackerAction::ListUsers => iam
                .list_users()
                .send()
                .await
                .map(|_| None)
                .map_err(|e| code_of(&e)),
            AttackerAction::CreateUser => iam
                .create_user()
                .user_name(target)
                .send()
                .await
                .map(|_| None)
                .map_err(|e| code_of(&e)),
            AttackerAction::CreateAccessKey => iam
                .create_access_key()
                .user_name(target)
                .send()
                .await
                .map_err(|e| code_of(&e))
                .map(|out| {
                    out.access_key.map(|k| Creds {
                        access_key_id: k.access_key_id,
                        secret: k.secret_access_key,
                        token: None,
                    })
                }),
            AttackerAction::AssumeRole => assume(&aws_sdk_sts::Client::new(&sdk), target)
                .await
                .map(Some),
        }
    }

    /// An on-call inbox: an SNS topic delivering to an SQS queue.
    pub async fn create_inbox(&self, name: &str) -> Result<(String, String), Error> {
        let topic = self
            .sns
            .create_topic()
            .name(name)
            .send()
            .await
            .map_err(aws_err("sns:CreateTopic"))?;
        let topic_arn = topic.topic_arn.unwrap_or_default();
        let queue = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(aws_err("sqs:CreateQueue"))?;
        let queue_url = queue.queue_url.unwrap_or_default();
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(aws_err("sqs:GetQueueAttributes"))?;
        let queue_arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        self.sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .map_err(aws_err("sns:Subscribe"))?;
        Ok((topic_arn, queue_url))
    }

    /// The first summary delivered to the inbox: (subject, message), waiting up to `seconds`.
    pub async fn receive(
        &self,
        queue_url: &str,
        seconds: i32,
    ) -> Result<Option<(String, String)>, Error> {
        let got = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .wait_time_seconds(seconds)
            .send()
            .await
            .map_err(aws_err("sqs:ReceiveMessage"))?;
        Ok(got.messages().first().and_then(|m| {
            let envelope: Value = serde_json::from_str(m.body()?).ok()?;
            Some((
                envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                envelope["Message"].as_str().unwrap_or_default().to_owned(),
            ))
        }))
    }

    /// Every message in the inbox, oldest first, waiting up to `seconds` for the first:
    /// (subject, message, when SNS published it as its envelope says).
    pub async fn receive_all(
        &self,
        queue_url: &str,
        seconds: i32,
    ) -> Result<Vec<(String, String, String)>, Error> {
        let mut all = Vec::new();
        let mut wait = seconds;
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait)
                .send()
                .await
                .map_err(aws_err("sqs:ReceiveMessage"))?;
            if got.messages().is_empty() {
                return Ok(all);
            }
            for m in got.messages() {
                let envelope: Value =
                    serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default();
                let text = |k: &str| envelope[k].as_str().unwrap_or_default().to_owned();
                all.push((text("Subject"), text("Message"), text("Timestamp")));
            }
            wait = 0;
        }
    }

    /// Removes a user and everything on it (a racing holder's console password and attached
    /// policies too); missing pieces are fine.
    pub async fn delete_user(&self, user: &str) {
        let _ = self.iam.delete_login_profile().user_name(user).send().await;
        if let Ok(p) = self
            .iam
            .list_attached_user_policies()
            .user_name(user)
            .send()
            .await
        {
            for arn in p.attached_policies().iter().filter_map(|a| a.policy_arn()) {
                let _ = self
                    .iam
                    .detach_user_policy()
                    .user_name(user)
                    .policy_arn(arn)
                    .send()
                    .await;
            }
        }
        if let Ok(keys) = self.iam.list_access_keys().user_name(user).send().await {
            for k in keys.access_key_metadata() {
                if let Some(id) = k.access_key_id() {
                    let _ = self
                        .iam
                        .delete_access_key()
                        .user_name(user)
                        .access_key_id(id)
                        .send()
                        .await;
                }
            }
        }
        if let Ok(p) = self.iam.list_user_policies().user_name(user).send().await {
            for name in p.policy_names() {
                let _ = self
                    .iam
                    .delete_user_policy()
                    .user_name(user)
                    .policy_name(name)
                    .send()
                    .await;
            }
        }
        let _ = self.iam.delete_user().user_name(user).send().await;
    }

    pub async fn delete_role(&self, role: &str) {
        if let Ok(p) = self
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
        {
            for arn in p.attached_policies().iter().filter_map(|a| a.policy_arn()) {
                let _ = self
                    .iam
                    .detach_role_policy()
                    .role_name(role)
                    .policy_arn(arn)
                    .send()
                    .await;
            }
        }
        if let Ok(p) = self.iam.list_role_policies().role_name(role).send().await {
            for name in p.policy_names() {
                let _ = self
                    .iam
                    .delete_role_policy()
                    .role_name(role)
                    .policy_name(name)
                    .send()
                    .await;
            }
        }
        let _ = self.iam.delete_role().role_name(role).send().await;
    }

    pub async fn delete_inbox(&self, topic_arn: &str, queue_url: &str) {
        let _ = self.sns.delete_topic().topic_arn(topic_arn).send().await;
        let _ = self.sqs.delete_queue().queue_url(queue_url).send().await;
    }
}

async fn assume(sts: &aws_sdk_sts::Client, role_arn: &str) -> Result<Creds, String> {
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("drill-session")
        .send()
        .await
        .map_err(|e| code_of(&e))?;
    let c = out.credentials.ok_or("no credentials")?;
    Ok(Creds {
        access_key_id: c.access_key_id,
        secret: c.secret_access_key,
        token: Some(c.session_token),
    })
}

/// The error code of a refused call. The local AWS answers authentication failures in a shape
/// the SDK's query parser does not read, so the raw body is consulted too.
fn code_of<E: ProvideErrorMetadata + std::fmt::Debug>(e: &E) -> String {
    if let Some(code) = e.code() {
        return code.to_owned();
    }
    let text = format!("{e:?}");
    text.split("<Code>")
        .nth(1)
        .and_then(|t| t.split("</Code>").next())
        .unwrap_or("Unknown")
        .to_owned()
}

fn drill_err(op: &'static str, what: &str) -> Error {
    Error::Aws {
        op,
        code: None,
        source: what.to_owned().into(),
    }
}
