//! One test's world (its own function identity, topic and inbox) and the principals tests plant
//! and attack with.

use super::*;

/// One test's world: its own function identity, topic, inbox queue.
pub(super) struct World {
    pub(super) iam: aws_sdk_iam::Client,
    pub(super) sqs: aws_sdk_sqs::Client,
    pub(super) function_key: Key,
    pub(super) topic_arn: String,
    pub(super) queue_url: String,
}

impl World {
    pub(super) async fn new() -> Self {
        let admin_sdk = sdk(&admin()).await;
        let iam = aws_sdk_iam::Client::new(&admin_sdk);
        let sqs = aws_sdk_sqs::Client::new(&admin_sdk);
        let fn_user = unique("killswitch-fn");
        let function_key = create_user_with_key(&fn_user, &["*"]).await;
        let (topic_arn, queue_url) = sandbox()
            .await
            .create_inbox(&unique("oncall"))
            .await
            .unwrap();
        Self {
            iam,
            sqs,
            function_key,
            topic_arn,
            queue_url,
        }
    }

    /// Runs `killswitch respond` as the function identity; returns (exit code, report, stderr).
    pub(super) fn respond(&self, payload: &Value, extra: &[&str]) -> (i32, Value, String) {
        self.respond_with(payload, extra, &[])
    }

    /// `respond` with extra environment variables for the function.
    pub(super) fn respond_with(
        &self,
        payload: &Value,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> (i32, Value, String) {
        let path = std::env::temp_dir().join(format!("{}.json", unique("event")));
        std::fs::write(&path, payload.to_string()).unwrap();
        // The sweep waits minutes: only the tests that set its delay run it.
        let sweep = env.iter().any(|(k, _)| *k == "KILLSWITCH_SWEEP_SECONDS");
        let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
            .arg("respond")
            .arg("--event")
            .arg(&path)
            .args((!sweep).then_some("--no-sweep"))
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &self.function_key.id)
            .env("AWS_SECRET_ACCESS_KEY", &self.function_key.secret)
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("KILLSWITCH_TOPIC_ARN", &self.topic_arn)
            .env("KILLSWITCH_VERIFY_DELAY_SECONDS", "1")
            .env("KILLSWITCH_WATCH_SECONDS", "0")
            .env("KILLSWITCH_INVESTIGATION_SECONDS", "15")
            .env_remove("KILLSWITCH_DRY_RUN")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), report, stderr)
    }

    /// `killswitch` with `args` at the command line, as the function identity, with `env` on
    /// top and no terminal (stdin closed).
    pub(super) fn run(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_killswitch"))
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &self.function_key.id)
            .env("AWS_SECRET_ACCESS_KEY", &self.function_key.secret)
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("KILLSWITCH_TOPIC_ARN", &self.topic_arn)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// The function in Lambda mode (no arguments) against the Runtime API at `runtime`, as
    /// the function identity, with `env` on top of the base settings.
    pub(super) fn lambda(&self, runtime: &str, env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_killswitch"));
        c.env("AWS_LAMBDA_RUNTIME_API", runtime)
            .env("AWS_LAMBDA_FUNCTION_NAME", "killswitch")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_ACCESS_KEY_ID", &self.function_key.id)
            .env("AWS_SECRET_ACCESS_KEY", &self.function_key.secret)
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("KILLSWITCH_TOPIC_ARN", &self.topic_arn)
            .env("KILLSWITCH_REGIONS", "us-east-1")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null());
        c
    }

    /// An inline policy as IAM returns it, decoded by the production adapter.
    pub(super) async fn policy(&self, target: PolicyTarget, name: &str) -> String {
        let clients = AwsClients::from_sdk_config(&sdk(&admin()).await, &self.topic_arn);
        clients
            .read_policy(&target, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} missing on {target}"))
    }

    /// The next full SNS report delivered to the on-call queue: (subject, message). The short
    /// notices sent right after containment ("details follow") are passed over.
    pub(super) async fn inbox(&self) -> (String, String) {
        loop {
            let (subject, message) = self.inbox_any().await;
            if !subject.contains("(details follow)") {
                return (subject, message);
            }
        }
    }

    /// The next SNS message of any kind, short notices included.
    pub(super) async fn inbox_any(&self) -> (String, String) {
        let sandbox = sandbox().await;
        for _ in 0..5 {
            if let Some(got) = sandbox.receive(&self.queue_url, 2).await.unwrap() {
                return got;
            }
        }
        panic!("no SNS summary reached the on-call queue");
    }

    pub(super) async fn key_status(&self, user: &str, key: &str) -> Option<StatusType> {
        let out = self
            .iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .unwrap();
        out.access_key_metadata()
            .iter()
            .find(|k| k.access_key_id() == Some(key))
            .and_then(|k| k.status().cloned())
    }

    /// CloudTrail (the double) events signed with the function's own key.
    pub(super) async fn function_calls(&self) -> Vec<String> {
        lookup(&self.function_key.id)
            .await
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }
}

/// A user with an inline allow policy (`drill-canary`) and one access key.
pub(super) async fn create_user_with_key(user: &str, actions: &[&str]) -> Key {
    sandbox()
        .await
        .create_user(user, actions)
        .await
        .unwrap()
        .into()
}

/// A session of `role_arn` assumed with `key` (and an external ID when the role demands one).
pub(super) async fn assume(
    key: &Key,
    role_arn: &str,
    session: &str,
    external_id: Option<&str>,
) -> Result<Key, String> {
    sandbox()
        .await
        .assume_role_as(&key.into(), role_arn, session, external_id)
        .await
        .map(Key::from)
}

/// A role that `trusted` may assume, allowed to list IAM.
pub(super) async fn create_role(role: &str, trusted: &str) {
    sandbox()
        .await
        .create_role(role, trusted, &["iam:List*"])
        .await
        .unwrap();
}

pub(super) async fn lookup(key: &str) -> Vec<(String, Option<String>)> {
    let ct = aws_sdk_cloudtrail::Client::new(&sdk(&admin()).await);
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let attr = aws_sdk_cloudtrail::types::LookupAttribute::builder()
            .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::AccessKeyId)
            .attribute_value(key)
            .build()
            .unwrap();
        let page = loop {
            match ct
                .lookup_events()
                .lookup_attributes(attr.clone())
                .set_next_token(token.clone())
                .send()
                .await
            {
                Ok(p) => break p,
                Err(e) if format!("{e:?}").contains("Throttling") => {
                    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
                }
                Err(e) => panic!("{e:?}"),
            }
        };
        for e in page.events() {
            let detail: Value = serde_json::from_str(e.cloud_trail_event().unwrap()).unwrap();
            out.push((
                e.event_name().unwrap().to_owned(),
                detail["errorCode"].as_str().map(str::to_owned),
            ));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

/// What the attacker gets back for a call signed with `key`: "ok" or the error code.
pub(super) async fn attacker_call(key: &Key) -> String {
    match sandbox()
        .await
        .attack(&key.into(), AttackerAction::ListUsers, "")
        .await
    {
        Ok(_) => "ok".into(),
        Err(code) => code,
    }
}
