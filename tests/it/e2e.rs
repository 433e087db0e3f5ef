//! End to end against the local AWS (moto with IAM auth enforced and Inactive keys refused, plus
//! the CloudTrail LookupEvents double), started by `scripts/test.sh`. These run the real
//! `killswitch respond` binary and check the end state through the APIs.
//!
//! Ignored in a bare `cargo test`; the README's test command runs them with `--include-ignored`
//! and they fail loudly if the local AWS is not there.

use std::io::{Read, Write};
use std::process::Command;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_iam::config::Credentials;
use aws_sdk_iam::types::StatusType;
use killswitch::aws::AwsClients;
use killswitch::aws::sandbox::{AttackerAction, Creds, Sandbox};
use killswitch::incident::AccessKeyId;
use killswitch::policy;
use killswitch::ports::{Identity, PolicyTarget};
use serde_json::{Value, json};

use crate::support::{FIXTURE_KEY, FIXTURE_ROLE_KEY};

mod terminal;

const NEEDS: &str = "needs the local AWS: run scripts/test.sh";

fn endpoint() -> String {
    std::env::var("KILLSWITCH_LOCAL_AWS")
        .unwrap_or_else(|_| panic!("KILLSWITCH_LOCAL_AWS is not set: {NEEDS}"))
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

#[derive(Clone)]
struct Key {
    id: String,
    secret: String,
    token: Option<String>,
}

async fn sdk(key: &Key) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            &key.id,
            &key.secret,
            key.token.clone(),
            None,
            "e2e",
        ))
        .region("us-east-1")
        .endpoint_url(endpoint())
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

fn admin() -> Key {
    Key {
        id: std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| panic!("{NEEDS}")),
        secret: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| panic!("{NEEDS}")),
        token: None,
    }
}

/// One test's world: its own function identity, topic, inbox queue.
struct World {
    iam: aws_sdk_iam::Client,
    sqs: aws_sdk_sqs::Client,
    function_key: Key,
    topic_arn: String,
    queue_url: String,
}

impl World {
    async fn new() -> Self {
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
    fn respond(&self, payload: &Value, extra: &[&str]) -> (i32, Value, String) {
        self.respond_with(payload, extra, &[])
    }

    /// `respond` with extra environment variables for the function.
    fn respond_with(
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

    /// The function in Lambda mode (no arguments) against the Runtime API at `runtime`, as
    /// the function identity, with `env` on top of the base settings.
    fn lambda(&self, runtime: &str, env: &[(&str, &str)]) -> Command {
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
    async fn policy(&self, target: PolicyTarget, name: &str) -> String {
        let clients = AwsClients::from_sdk_config(&sdk(&admin()).await, &self.topic_arn);
        clients
            .read_policy(&target, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} missing on {target}"))
    }

    /// The next full SNS report delivered to the on-call queue: (subject, message). The short
    /// notices sent right after containment ("details follow") are passed over.
    async fn inbox(&self) -> (String, String) {
        loop {
            let (subject, message) = self.inbox_any().await;
            if !subject.contains("(details follow)") {
                return (subject, message);
            }
        }
    }

    /// The next SNS message of any kind, short notices included.
    async fn inbox_any(&self) -> (String, String) {
        let sandbox = sandbox().await;
        for _ in 0..5 {
            if let Some(got) = sandbox.receive(&self.queue_url, 2).await.unwrap() {
                return got;
            }
        }
        panic!("no SNS summary reached the on-call queue");
    }

    async fn key_status(&self, user: &str, key: &str) -> Option<StatusType> {
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
    async fn function_calls(&self) -> Vec<String> {
        lookup(&self.function_key.id)
            .await
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }
}

/// The drill harness (`killswitch::aws::sandbox`), as the local AWS's admin: the end-to-end
/// tests plant and attack with the same code the drills use.
async fn sandbox() -> Sandbox {
    Sandbox::new(&sdk(&admin()).await)
}

impl From<Creds> for Key {
    fn from(c: Creds) -> Self {
        Key {
            id: c.access_key_id.clone(),
            secret: c.secret().to_owned(),
            token: c.session_token().map(str::to_owned),
        }
    }
}

impl From<&Key> for Creds {
    fn from(k: &Key) -> Self {
        Creds::new(k.id.clone(), k.secret.clone(), k.token.clone())
    }
}

/// A user with an inline allow policy (`drill-canary`) and one access key.
async fn create_user_with_key(user: &str, actions: &[&str]) -> Key {
    sandbox()
        .await
        .create_user(user, actions)
        .await
        .unwrap()
        .into()
}

/// A session of `role_arn` assumed with `key` (and an external ID when the role demands one).
async fn assume(
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
async fn create_role(role: &str, trusted: &str) {
    sandbox()
        .await
        .create_role(role, trusted, &["iam:List*"])
        .await
        .unwrap();
}

async fn lookup(key: &str) -> Vec<(String, Option<String>)> {
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
async fn attacker_call(key: &Key) -> String {
    match sandbox()
        .await
        .attack(&key.into(), AttackerAction::ListUsers, "")
        .await
    {
        Ok(_) => "ok".into(),
        Err(code) => code,
    }
}

fn fixture(name: &str, key: &str, principal: &str) -> Value {
    let raw =
        std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let raw = raw
        .replace(FIXTURE_KEY, key)
        .replace(FIXTURE_ROLE_KEY, key)
        .replace("\"alice\"", &format!("\"{principal}\""))
        .replace("\"ci-deployer\"", &format!("\"{principal}\""))
        .replace("\"deploy-bot\"", &format!("\"{principal}\""));
    serde_json::from_str(&raw).unwrap()
}

const WRITES: [&str; 5] = [
    "UpdateAccessKey",
    "PutUserPolicy",
    "PutRolePolicy",
    "DeleteUserPolicy",
    "DeleteAccessKey",
];

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn user_key_triggers_contain_the_key_and_the_leaked_key_is_refused() {
    for name in [
        "guardduty-iam-user-finding.json",
        "health-exposed-old-shape.json",
        "health-exposed-new-shape.json",
        "health-iam-quarantine.json",
        "manual-request.json",
        "securityhub-guardduty-user-finding.json",
    ] {
        let w = World::new().await;
        let user = unique("leaky");
        let leaked =
            create_user_with_key(&user, &["iam:List*", "iam:Get*", "sts:GetCallerIdentity"]).await;
        assert_eq!(
            attacker_call(&leaked).await,
            "ok",
            "{name}: the planted key must work before containment"
        );

        let (code, report, stderr) = w.respond(&fixture(name, &leaked.id, &user), &[]);
        assert_eq!(code, 0, "{name}: {stderr}\n{report}");
        let r = &report["reports"][0];
        assert_eq!(r["status"], "contained", "{name}: {r}");
        assert_eq!(r["verification"]["holds"], true, "{name}");

        assert_eq!(
            w.key_status(&user, &leaked.id).await,
            Some(StatusType::Inactive),
            "{name}"
        );
        let decoded = w
            .policy(PolicyTarget::User(user.clone()), policy::USER_POLICY_NAME)
            .await;
        assert!(policy::is_deny_all(&decoded), "{name}: {decoded}");
        assert_eq!(
            attacker_call(&leaked).await,
            "InvalidClientTokenId",
            "{name}: leaked key still accepted"
        );

        let (subject, message) = w.inbox().await;
        assert!(
            subject.starts_with("[killswitch] CONTAINED: "),
            "{name}: {subject}"
        );
        assert!(
            message.contains(&leaked.id) && message.contains(&user),
            "{name}: {message}"
        );
        // The attacker's call before containment was found in CloudTrail.
        assert!(
            message.contains("iam:ListUsers"),
            "{name}: activity missing from\n{message}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn stolen_role_session_is_revoked_by_the_token_issue_time_deny() {
    let w = World::new().await;
    let role = unique("workload");
    let sts = aws_sdk_sts::Client::new(&sdk(&admin()).await);
    // moto does not let an account-root principal stand for its users: name the caller.
    let caller = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    create_role(&role, &caller).await;
    let session = assume(
        &admin(),
        &format!("arn:aws:iam::123456789012:role/{role}"),
        "stolen",
        None,
    )
    .await
    .unwrap();
    assert!(session.id.starts_with("ASIA"));
    assert_eq!(attacker_call(&session).await, "ok");

    let (code, report, stderr) = w.respond(
        &fixture("guardduty-assumed-role-finding.json", &session.id, &role),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    let decoded = w
        .policy(PolicyTarget::Role(role.clone()), policy::ROLE_POLICY_NAME)
        .await;
    let cutoff = policy::revocation_cutoff(&decoded).expect("cutoff");
    assert!(
        (chrono::Utc::now() - cutoff).num_seconds().abs() < 60,
        "{cutoff}"
    );
    // The finding's principal ID is not this role's (the fixture's), so the session cannot be
    // named: the role-wide cutoff. The local AWS evaluates aws:TokenIssueTime: the stolen session
    // is refused, a session issued after the cutoff works.
    assert_eq!(attacker_call(&session).await, "AccessDenied");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = assume(
        &admin(),
        &format!("arn:aws:iam::123456789012:role/{role}"),
        "fresh",
        None,
    )
    .await
    .unwrap();
    assert_eq!(attacker_call(&fresh).await, "ok");
    let (subject, _) = w.inbox().await;
    assert!(
        subject.contains("CONTAINED") && subject.contains(&role),
        "{subject}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn deactivation_alone_refuses_the_key() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let clients = AwsClients::from_sdk_config(&sdk(&w.function_key).await, &w.topic_arn);
    clients
        .deactivate_key(&user, &AccessKeyId::parse(&leaked.id).unwrap())
        .await
        .unwrap();
    assert!(
        w.iam
            .list_user_policies()
            .user_name(&user)
            .send()
            .await
            .unwrap()
            .policy_names()
            .iter()
            .all(|p| p == "drill-canary")
    );
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn deny_policy_alone_refuses_the_key() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let clients = AwsClients::from_sdk_config(&sdk(&w.function_key).await, &w.topic_arn);
    clients
        .put_policy(
            &PolicyTarget::User(user.clone()),
            policy::USER_POLICY_NAME,
            &policy::deny_all(),
        )
        .await
        .unwrap();
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Active)
    );
    assert_eq!(attacker_call(&leaked).await, "AccessDenied");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn sample_finding_and_dry_run_make_zero_iam_writes() {
    let w = World::new().await;
    let (code, report, stderr) = w.respond(
        &fixture("guardduty-sample-finding.json", "unused", "unused"),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "sample");
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("SAMPLE"), "{subject}");

    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let (code, report, stderr) = w.respond(
        &fixture("manual-request-dry-run.json", &leaked.id, &user),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "dry_run", "{report}");
    let (code, _, _) = w.respond(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &["--dry-run"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Active)
    );
    assert_eq!(attacker_call(&leaked).await, "ok");

    let calls = w.function_calls().await;
    assert!(calls.iter().any(|c| c == "Publish"), "{calls:?}");
    let writes: Vec<_> = calls
        .iter()
        .filter(|c| WRITES.contains(&c.as_str()))
        .collect();
    assert!(writes.is_empty(), "the function wrote: {writes:?}");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn replay_is_a_no_op_and_bad_input_exits_2_without_calls() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let event = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    assert_eq!(w.respond(&event, &[]).0, 0);
    let writes_once = w
        .function_calls()
        .await
        .iter()
        .filter(|c| WRITES.contains(&c.as_str()))
        .count();
    assert_eq!(writes_once, 2);
    let (code, report, _) = w.respond(&event, &[]);
    assert_eq!(code, 0);
    assert_eq!(report["reports"][0]["status"], "already_contained");
    let writes_twice = w
        .function_calls()
        .await
        .iter()
        .filter(|c| WRITES.contains(&c.as_str()))
        .count();
    assert_eq!(writes_twice, writes_once, "the replay wrote again");

    let before = w.function_calls().await.len();
    let (code, _, stderr) = w.respond(
        &json!({"access_key_id": "AKIA-nope", "reason": "r", "requested_by": "me"}),
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
    assert_eq!(
        w.function_calls().await.len(),
        before,
        "bad input reached AWS"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn protected_principal_is_refused_with_zero_writes() {
    let w = World::new().await;
    let user = unique("break-glass");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let (code, report, stderr) = w.respond_with(
        &fixture("manual-request.json", &leaked.id, &user),
        &[],
        // IAM names are unique regardless of case: a differently-cased entry protects it too.
        &[(
            "KILLSWITCH_PROTECTED_PRINCIPALS",
            format!("someone-else,{}", user.to_uppercase()),
        )],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "refused");
    assert_eq!(attacker_call(&leaked).await, "ok");
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("refused"), "{subject}");
    assert!(
        !w.function_calls()
            .await
            .iter()
            .any(|c| WRITES.contains(&c.as_str()))
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn missing_configuration_fails_at_start_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args([
            "respond",
            "--event",
            concat!(env!("CARGO_MANIFEST_DIR"), "/events/manual-request.json"),
        ])
        .env_remove("KILLSWITCH_TOPIC_ARN")
        .env("AWS_ENDPOINT_URL", endpoint())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KILLSWITCH_TOPIC_ARN"));
}

/// Raw POST to the harness's control API (test infrastructure only).
fn control(path: &str, body: &Value) -> Value {
    let url = endpoint();
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let payload = body.to_string();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("{}");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn lookup_events_double_pages_newest_first_validates_and_throttles() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let key = format!("AKIA{:016}", nanos % 10_u128.pow(16));
    let region = "me-central-1";
    let now = chrono::Utc::now();
    let events: Vec<Value> = (0..120)
        .map(|i| {
            json!({"eventTime": (now - chrono::TimeDelta::seconds(i)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                   "eventName": format!("Call{i}"), "eventSource": "ec2.amazonaws.com", "awsRegion": region,
                   "userIdentity": {"type": "IAMUser", "accessKeyId": key, "userName": "x"}, "readOnly": true})
        })
        .collect();
    assert_eq!(
        control("/_killswitch/cloudtrail/events", &json!({"events": events}))["added"],
        120
    );
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            admin().id,
            admin().secret,
            None,
            None,
            "e2e",
        ))
        .region(region)
        .endpoint_url(endpoint())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let ct = aws_sdk_cloudtrail::Client::new(&sdk);
    let attr = aws_sdk_cloudtrail::types::LookupAttribute::builder()
        .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::AccessKeyId)
        .attribute_value(&key)
        .build()
        .unwrap();
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(550)).await;
        let page = ct
            .lookup_events()
            .lookup_attributes(attr.clone())
            .max_results(50)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.events().len() <= 50);
        names.extend(
            page.events()
                .iter()
                .map(|e| e.event_name().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..120).map(|i| format!("Call{i}")).collect();
    assert_eq!(
        names, expected,
        "not newest first, or pages lost/duplicated"
    );

    // Nothing in another Region (one no other test searches: the limit is per account and Region).
    let other = aws_sdk_cloudtrail::Client::from_conf(
        ct.config()
            .to_builder()
            .region(aws_sdk_cloudtrail::config::Region::new("il-central-1"))
            .build(),
    );
    assert!(
        other
            .lookup_events()
            .lookup_attributes(attr.clone())
            .send()
            .await
            .unwrap()
            .events()
            .is_empty()
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let code = |e: &aws_sdk_cloudtrail::error::SdkError<_, _>| {
        aws_sdk_cloudtrail::error::ProvideErrorMetadata::code(e).map(str::to_owned)
    };
    let two = ct
        .lookup_events()
        .lookup_attributes(attr.clone())
        .lookup_attributes(attr.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&two).as_deref(),
        Some("InvalidLookupAttributesException")
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let big = ct.lookup_events().max_results(51).send().await.unwrap_err();
    assert_eq!(code(&big).as_deref(), Some("InvalidMaxResultsException"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut throttled = 0;
    for _ in 0..6 {
        if let Err(e) = ct
            .lookup_events()
            .lookup_attributes(attr.clone())
            .max_results(1)
            .send()
            .await
        {
            assert_eq!(code(&e).as_deref(), Some("ThrottlingException"));
            throttled += 1;
        }
    }
    assert!(
        throttled >= 3,
        "a burst of 6 calls in one Region got only {throttled} throttles"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn pivots_made_with_the_leaked_key_are_found_and_followed() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(
        &user,
        &[
            "iam:List*",
            "iam:CreateAccessKey",
            "sts:AssumeRole",
            "sts:GetCallerIdentity",
        ],
    )
    .await;
    let role = unique("pivot-role");
    create_role(&role, &format!("arn:aws:iam::123456789012:user/{user}")).await;

    // The attacker, with the leaked key: a second key for persistence, and a role hop.
    let attacker = sdk(&leaked).await;
    let second = aws_sdk_iam::Client::new(&attacker)
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let session = aws_sdk_sts::Client::new(&attacker)
        .assume_role()
        .role_arn(format!("arn:aws:iam::123456789012:role/{role}"))
        .role_session_name("pivot")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let second = Key {
        id: second.access_key_id,
        secret: second.secret_access_key,
        token: None,
    };
    let session = Key {
        id: session.access_key_id,
        secret: session.secret_access_key,
        token: Some(session.session_token),
    };
    assert_eq!(attacker_call(&second).await, "ok");
    assert_eq!(attacker_call(&session).await, "ok");

    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[("KILLSWITCH_FOLLOW_PIVOTS", "true".into())],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    let act = &r["investigation"];
    assert_eq!(
        act["regions"].as_array().unwrap().len(),
        17,
        "every enabled Region is searched"
    );
    assert!(
        act["region_source"]
            .as_str()
            .unwrap()
            .contains("every Region enabled for the account")
    );
    let pivots = act["pivots"].as_array().unwrap();
    let by_key = |k: &str| {
        pivots
            .iter()
            .find(|p| p["access_key_id"] == k)
            .unwrap_or_else(|| panic!("{k} not found in {pivots:?}"))
    };
    assert_eq!(by_key(&second.id)["kind"], "access_key");
    assert_eq!(by_key(&second.id)["containment"]["status"], "contained");
    assert_eq!(by_key(&session.id)["kind"], "role_session");
    assert_eq!(by_key(&session.id)["containment"]["status"], "contained");

    // Everything the attacker holds is refused now.
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
    assert_eq!(attacker_call(&second).await, "InvalidClientTokenId");
    assert_eq!(attacker_call(&session).await, "AccessDenied");
    assert_eq!(
        w.key_status(&user, &second.id).await,
        Some(StatusType::Inactive)
    );
    let (_, message) = w.inbox().await;
    assert!(
        message.contains("Credentials it minted and access it opened (2)"),
        "{message}"
    );
    assert!(
        message.contains(&second.id) && message.contains(&session.id),
        "{message}"
    );
}

#[cfg(feature = "drill")]
#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn every_shipped_drill_scenario_passes_and_cleans_up() {
    let reports = std::env::temp_dir().join(unique("drill-reports"));
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(["drill", "--report-dir"])
        .arg(&reports)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| scenario | result |"), "{stdout}");
    let json = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let results: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let results = results.as_array().unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/drills"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert_eq!(results.len(), shipped);
    assert!(shipped >= 10);
    for r in results {
        assert_eq!(r["passed"], true, "{r}");
        assert!(!r["cleanup"].as_array().unwrap().is_empty(), "{r}");
    }
    // Nothing the drills planted is left behind.
    let w = World::new().await;
    let users = w.iam.list_users().send().await.unwrap();
    let left: Vec<_> = users
        .users()
        .iter()
        .map(|u| u.user_name())
        .filter(|n| n.starts_with("drill-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[cfg(feature = "drill")]
#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn drills_refuse_to_run_without_the_local_aws_or_an_explicit_account() {
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(["drill", "--account-id", "999999999999", "--yes"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
    // The credentials' own account, but no terminal to confirm on and no --yes.
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(["drill", "--account-id", "123456789012"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // Not confirmed (no terminal, no --yes): exit 5.
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .arg("drill")
        .env("AWS_ENDPOINT_URL", "https://iam.amazonaws.com")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn status_and_restore_undo_only_what_killswitch_placed() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    assert_eq!(
        w.respond(&fixture("manual-request.json", &leaked.id, &user), &[])
            .0,
        0
    );
    let _ = w.inbox().await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_killswitch"))
            .args(args)
            .env("AWS_ACCESS_KEY_ID", &w.function_key.id)
            .env("AWS_SECRET_ACCESS_KEY", &w.function_key.secret)
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let status = run(&["status", "--access-key-id", &leaked.id]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let state: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(state["user_name"], user.as_str());
    assert_eq!(state["key_status"], "Inactive");
    assert_eq!(
        state["killswitch_policies"][0],
        format!("user/{user}: KillSwitchDenyAll")
    );

    // The key's holder left a second key behind: restore refuses to lift the deny while it is
    // Active, and says so on the on-call channel.
    let iam_admin = aws_sdk_iam::Client::new(&sdk(&admin()).await);
    let persisted = iam_admin
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap()
        .access_key_id;
    let refused = run(&[
        "restore",
        "--access-key-id",
        &leaked.id,
        "--reason",
        "rotated",
        "--requested-by",
        "oncall@example.com",
        "--yes",
    ]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains(&persisted));
    let (subject, _) = w.inbox_any().await;
    assert!(subject.contains("RESTORE REFUSED"), "{subject}");
    iam_admin
        .update_access_key()
        .user_name(&user)
        .access_key_id(&persisted)
        .status(StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let restore = [
        "restore",
        "--access-key-id",
        &leaked.id,
        "--reason",
        "rotated, false alarm",
        "--requested-by",
        "oncall@example.com",
        "--reactivate-key",
    ];
    // Dry run: the plan, no change.
    let dry = run(&[&restore[..], &["--dry-run"]].concat());
    assert_eq!(dry.status.code(), Some(0));
    let plan: Value = serde_json::from_slice(&dry.stdout).unwrap();
    // Reactivate, revoke the sessions minted before now, then delete the deny.
    assert_eq!(plan["plan"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    // No terminal and no --yes: not confirmed, nothing changed.
    assert_eq!(run(&restore).status.code(), Some(5));
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    // Confirmed.
    let done = run(&[&restore[..], &["--yes"]].concat());
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Active)
    );
    let policies = w
        .iam
        .list_user_policies()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    let mut names = policies.policy_names().to_vec();
    names.sort();
    assert_eq!(
        names,
        [policy::ROLE_POLICY_NAME, "drill-canary"],
        "restore must leave other policies alone, and keep the minted sessions revoked"
    );
    assert_eq!(attacker_call(&leaked).await, "ok");
    // One notice before acting, one after.
    let (before, _) = w.inbox_any().await;
    assert!(before.contains("RESTORING"), "{before}");
    let (subject, message) = w.inbox_any().await;
    assert!(
        subject.contains("RESTORED") && subject.contains("oncall@example.com"),
        "{subject}"
    );
    assert!(message.contains("rotated, false alarm"), "{message}");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn concurrent_deliveries_to_real_processes_leave_one_consistent_state() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let event = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    let path = std::env::temp_dir().join(format!("{}.json", unique("event")));
    std::fs::write(&path, event.to_string()).unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_killswitch"))
                .args(["respond", "--no-sweep", "--event"])
                .arg(&path)
                .env("AWS_ACCESS_KEY_ID", &w.function_key.id)
                .env("AWS_SECRET_ACCESS_KEY", &w.function_key.secret)
                .env("AWS_ENDPOINT_URL", endpoint())
                .env("AWS_REGION", "us-east-1")
                .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
                .env("KILLSWITCH_REGIONS", "us-east-1")
                .env("KILLSWITCH_VERIFY_DELAY_SECONDS", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let status = report["reports"][0]["status"].as_str().unwrap().to_owned();
        assert!(
            status == "contained" || status == "already_contained",
            "{status}"
        );
    }
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    let policies = w
        .iam
        .list_user_policies()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    let mut names = policies.policy_names().to_vec();
    names.sort();
    assert_eq!(
        names,
        [policy::USER_POLICY_NAME, "drill-canary"],
        "no stacking"
    );
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
}

/// A port nothing listens on (connection refused).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn refused_and_hanging_endpoints_end_contained_or_loud() {
    let w = World::new().await;

    // SNS refuses connections: the key is still contained, the exit code says the notice failed.
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let sns_down = format!("http://127.0.0.1:{}", closed_port());
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[
            ("AWS_ENDPOINT_URL_SNS", sns_down),
            ("KILLSWITCH_REGIONS", "us-east-1".into()),
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "contained");
    assert_eq!(report["reports"][0]["notification"]["state"], "failed");
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");

    // IAM refuses connections: nothing contained, exit 1, and the notice still goes out.
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let iam_down = format!("http://127.0.0.1:{}", closed_port());
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[
            ("AWS_ENDPOINT_URL_IAM", iam_down),
            ("KILLSWITCH_REGIONS", "us-east-1".into()),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "failed");
    assert!(stderr.contains("containment incomplete"), "{stderr}");
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("CONTAINMENT FAILED"), "{subject}");

    // CloudTrail accepts connections and never answers: the SDK's timeouts end each call, the
    // search is reported incomplete, containment and the notice are unaffected.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://{}", hang.local_addr().unwrap());
    let _holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hang.incoming().flatten() {
            held.push(s);
        }
    });
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", hang_url),
            ("KILLSWITCH_REGIONS", "us-east-1".into()),
            ("KILLSWITCH_INVESTIGATION_SECONDS", "8".into()),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained");
    let regions = r["investigation"]["regions"].as_array().unwrap();
    assert!(
        regions.iter().all(|g| g["coverage"]["state"] != "complete"),
        "{regions:?}"
    );
    let (subject, message) = w.inbox().await;
    assert!(subject.contains("CONTAINED"), "{subject}");
    assert!(message.contains("INCOMPLETE"), "{message}");
}

/// A minimal Lambda Runtime API: hands out `events` one per `/next`, records what the function
/// posts back, and holds the next `/next` open once the events are used up.
fn fake_runtime_api(events: Vec<Value>) -> (String, std::sync::mpsc::Receiver<(String, Value)>) {
    let (feed, source) = std::sync::mpsc::channel();
    // Handed out from the end, as before: the last event first.
    for (i, e) in events.into_iter().enumerate().rev() {
        feed.send((i, e)).unwrap();
    }
    drop(feed);
    fed_runtime_api(source)
}

/// A Lambda Runtime API that hands out the events sent to `source` (request id `req-<n>`),
/// waiting for the next one like Lambda does, and reports each posted response or error.
fn fed_runtime_api(
    source: std::sync::mpsc::Receiver<(usize, Value)>,
) -> (String, std::sync::mpsc::Receiver<(String, Value)>) {
    use std::io::BufRead;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let events = std::sync::Arc::new(std::sync::Mutex::new(source));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            let events = events.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h == "\r\n" || h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_owned();
                    if path.ends_with("/invocation/next") {
                        let next = { events.lock().unwrap().recv().ok() };
                        let Some((i, event)) = next else {
                            std::thread::sleep(std::time::Duration::from_secs(600));
                            return;
                        };
                        let payload = event.to_string();
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis()
                            + 60_000;
                        write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{i}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:killswitch\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{payload}",
                            payload.len()
                        )
                        .unwrap();
                    } else {
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        tx.send((path, value)).unwrap();
                        write!(
                            stream,
                            "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{{}}"
                        )
                        .unwrap();
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn lambda_mode_answers_the_runtime_api_with_reports_and_typed_errors() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    // Popped from the end: the finding first, then a bad payload.
    let events = vec![
        json!({"access_key_id": "not-a-key", "reason": "r", "requested_by": "me"}),
        fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
    ];
    let (runtime, posted) = fake_runtime_api(events);
    let mut child = w
        .lambda(&runtime, &[("KILLSWITCH_VERIFY_DELAY_SECONDS", "1")])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let wait = std::time::Duration::from_secs(60);
    let (path, body) = posted
        .recv_timeout(wait)
        .expect("no response from the function");
    assert_eq!(
        path, "/2018-06-01/runtime/invocation/req-1/response",
        "{body}"
    );
    assert_eq!(body["reports"][0]["status"], "contained", "{body}");
    let (path, body) = posted
        .recv_timeout(wait)
        .expect("no error from the function");
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-0/error", "{body}");
    assert_eq!(body["errorType"], "KillSwitch.BadEvent", "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{body}"
    );
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        assert!(
            !line.contains(&w.function_key.secret),
            "a secret reached the logs"
        );
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"incident_id\"")),
        "no incident span in the logs"
    );
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
}

fn member_admin() -> (String, Key) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: {NEEDS}"));
    (
        var("KILLSWITCH_LOCAL_MEMBER_ACCOUNT"),
        Key {
            id: var("KILLSWITCH_LOCAL_MEMBER_ACCESS_KEY_ID"),
            secret: var("KILLSWITCH_LOCAL_MEMBER_SECRET_ACCESS_KEY"),
            token: None,
        },
    )
}

/// The function as it runs in Lambda: a role session (member roles trust a role, not a user).
async fn responder_session(w: &World, role: &str) -> Key {
    let fn_user = aws_sdk_iam::Client::new(&sdk(&w.function_key).await)
        .get_user()
        .send()
        .await
        .unwrap()
        .user
        .unwrap()
        .arn;
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": fn_user}, "Action": "sts:AssumeRole"}]});
    w.iam
        .create_role()
        .role_name(role)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let allow = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    w.iam
        .put_role_policy()
        .role_name(role)
        .policy_name("work")
        .policy_document(allow.to_string())
        .send()
        .await
        .unwrap();
    assume(
        &w.function_key,
        &format!("arn:aws:iam::123456789012:role/{role}"),
        "killswitch",
        None,
    )
    .await
    .unwrap()
}

/// Creates a stack of one of the project's templates as `key` and checks it completed.
async fn deploy_stack(key: &Key, template: &str, params: &[(&str, &str)]) {
    use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
    let cfn = aws_sdk_cloudformation::Client::new(&sdk(key).await);
    let stack = unique(template.trim_end_matches(".yaml"));
    let body =
        std::fs::read_to_string(format!("{}/{template}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut create = cfn
        .create_stack()
        .stack_name(&stack)
        .template_body(body)
        .capabilities(Capability::CapabilityNamedIam);
    for (k, v) in params {
        create = create.parameters(
            Parameter::builder()
                .parameter_key(*k)
                .parameter_value(*v)
                .build(),
        );
    }
    create.send().await.unwrap();
    let status = cfn
        .describe_stacks()
        .stack_name(&stack)
        .send()
        .await
        .unwrap()
        .stacks()[0]
        .stack_status()
        .cloned();
    assert_eq!(status, Some(StackStatus::CreateComplete), "{template}");
}

/// Deploys member-role.yaml, as a StackSet instance would, through CloudFormation in the member
/// account; returns the member role's name.
async fn deploy_member_role(member: &Key, responder_role: &str, external_id: &str) -> String {
    let role = unique("KillSwitchMember");
    deploy_stack(
        member,
        "member-role.yaml",
        &[
            ("SecurityAccountId", "123456789012"),
            ("ResponderRoleName", responder_role),
            ("ExternalId", external_id),
            ("MemberRoleName", &role),
        ],
    )
    .await;
    role
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_member_accounts_key_is_contained_through_the_member_role_template() {
    let w = World::new().await;
    let (member_account, member) = member_admin();
    let responder_role = unique("killswitch-responder");
    let session = responder_session(&w, &responder_role).await;
    let external_id = unique("ext");
    let member_role = deploy_member_role(&member, &responder_role, &external_id).await;

    let member_iam = aws_sdk_iam::Client::new(&sdk(&member).await);
    let user = unique("leaky");
    let leaked: Key = Sandbox::new(&sdk(&member).await)
        .create_user(&user, &["iam:List*"])
        .await
        .unwrap()
        .into();
    assert_eq!(attacker_call(&leaked).await, "ok");
    let event = fixture("guardduty-member-account-finding.json", &leaked.id, &user);
    assert_eq!(event["detail"]["accountId"], member_account.as_str());
    let as_function = |ext: &str| {
        vec![
            ("AWS_ACCESS_KEY_ID", session.id.clone()),
            ("AWS_SECRET_ACCESS_KEY", session.secret.clone()),
            ("AWS_SESSION_TOKEN", session.token.clone().unwrap()),
            ("KILLSWITCH_MEMBER_ROLE_NAME", member_role.clone()),
            ("KILLSWITCH_MEMBER_EXTERNAL_ID", ext.to_owned()),
            ("KILLSWITCH_MEMBER_ACCOUNTS", member_account.clone()),
        ]
    };

    // A wrong external ID: the member role refuses, nothing changes, humans are told, Lambda retries.
    let (code, report, stderr) = w.respond_with(&event, &[], &as_function("not-the-external-id"));
    assert_eq!(code, 1, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["steps"][0]["step"], "enter_account", "{r}");
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{r}"
    );
    assert_eq!(
        attacker_call(&leaked).await,
        "ok",
        "nothing may change on a failed entry"
    );
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("CONTAINMENT FAILED"), "{subject}");

    // The right one: contained in the member account, reported in the security account.
    let (code, report, stderr) = w.respond_with(&event, &[], &as_function(&external_id));
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    assert_eq!(r["account"], member_account.as_str());
    assert_eq!(r["verification"]["holds"], true, "{r}");
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
    let member_key = member_iam
        .list_access_keys()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(
        member_key.access_key_metadata()[0].status(),
        Some(&StatusType::Inactive)
    );
    let (subject, message) = w.inbox().await;
    assert!(subject.starts_with("[killswitch] CONTAINED: "), "{subject}");
    assert!(message.contains(&member_account), "{message}");
    // The attacker's call, found in the member account's CloudTrail.
    assert!(message.contains("iam:ListUsers"), "{message}");

    // The member role cannot be turned against itself.
    let member_role_arn = format!("arn:aws:iam::{member_account}:role/{member_role}");
    let as_member_role = assume(&session, &member_role_arn, "probe", Some(&external_id))
        .await
        .unwrap();
    let iam = aws_sdk_iam::Client::new(&sdk(&as_member_role).await);
    let widened = iam
        .put_role_policy()
        .role_name(&member_role)
        .policy_name("widen")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await;
    assert!(widened.is_err(), "the member role could edit itself");
    // And only the responder role may enter: the function's plain user key may not.
    let refused = assume(
        &w.function_key,
        &member_role_arn,
        "probe",
        Some(&external_id),
    )
    .await;
    assert!(
        refused.is_err(),
        "a principal other than the responder role entered"
    );

    // A finding of the deployment's own account, same configuration: handled without AssumeRole.
    let assume_roles = |calls: &[(String, Option<String>)]| {
        calls
            .iter()
            .filter(|(name, _)| name == "AssumeRole")
            .count()
    };
    let before = lookup(&session.id).await;
    let own_user = unique("leaky");
    let own = create_user_with_key(&own_user, &["iam:List*"]).await;
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &own.id, &own_user),
        &[],
        &as_function(&external_id),
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained");
    assert_eq!(attacker_call(&own).await, "InvalidClientTokenId");
    let calls = lookup(&session.id).await;
    assert!(
        calls.len() > before.len(),
        "the function's calls were not recorded"
    );
    let assumed = assume_roles(&calls) - assume_roles(&before);
    assert_eq!(assumed, 0, "own-account finding assumed a role: {calls:?}");
}

/// The deployed shape on the local AWS: a follow-up queue and an incident table.
async fn follow_up_queue_and_table(w: &World) -> (String, String, String) {
    let name = unique("follow-up");
    let queue_url = w
        .sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = w
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let table = unique("incidents");
    aws_sdk_dynamodb::Client::new(&sdk(&admin()).await)
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (queue_url, queue_arn, table)
}

/// Plays Lambda's SQS event source mapping once: receives a message, hands it to the function
/// as an SQS event, deletes it when the function does not report it as failed.
async fn deliver_follow_up(
    w: &World,
    queue_url: &str,
    queue_arn: &str,
    feed: &std::sync::mpsc::Sender<(usize, Value)>,
    posted: &std::sync::mpsc::Receiver<(String, Value)>,
    n: usize,
) -> Value {
    let got = w
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .wait_time_seconds(10)
        .send()
        .await
        .unwrap();
    let m = got
        .messages()
        .first()
        .expect("no follow-up message on the queue");
    let event = json!({"Records": [{
        "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
        "attributes": {}, "messageAttributes": {}, "md5OfBody": m.md5_of_body(),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"}]});
    feed.send((n, event)).unwrap();
    let (path, body) = posted
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the follow-through did not answer");
    assert_eq!(
        path,
        format!("/2018-06-01/runtime/invocation/req-{n}/response"),
        "{body}"
    );
    if body["batchItemFailures"]
        .as_array()
        .is_some_and(Vec::is_empty)
    {
        w.sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    body
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_trigger_contains_and_hands_off_and_the_queue_brings_the_full_report() {
    let w = World::new().await;
    let (queue_url, queue_arn, table) = follow_up_queue_and_table(&w).await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    attacker_call(&leaked).await;
    let (feed, source) = std::sync::mpsc::channel();
    let (runtime, posted) = fed_runtime_api(source);
    let mut child = w
        .lambda(
            &runtime,
            &[
                ("KILLSWITCH_VERIFY_DELAY_SECONDS", "3"),
                // LookupEvents' 2 calls/s are shared with every test running at the same time:
                // room to back off and still read the attacker's calls.
                ("KILLSWITCH_INVESTIGATION_SECONDS", "45"),
                ("KILLSWITCH_FOLLOW_UP_QUEUE_URL", &queue_url),
                ("KILLSWITCH_INCIDENT_TABLE", &table),
            ],
        )
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait = std::time::Duration::from_secs(60);

    // The trigger's invocation: contained, short notice, follow-through queued.
    feed.send((
        0,
        fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
    ))
    .unwrap();
    let (path, body) = posted.recv_timeout(wait).expect("no response");
    assert_eq!(
        path, "/2018-06-01/runtime/invocation/req-0/response",
        "{body}"
    );
    let report = &body["reports"][0];
    assert_eq!(report["status"], "contained", "{body}");
    assert!(
        report["follow_through"]
            .as_str()
            .unwrap()
            .starts_with("queued"),
        "{body}"
    );
    assert_eq!(report["investigation"]["state"], "not_run", "{body}");
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    let (subject, _) = w.inbox_any().await;
    assert!(
        subject.contains("CONTAINED") && subject.contains("details follow"),
        "{subject}"
    );
    // The message waits out IAM's propagation window on the queue (DelaySeconds).
    let early = w
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap();
    assert!(early.messages().is_empty(), "the follow-up was not delayed");

    // The event source mapping's invocation: re-check, CloudTrail, full report.
    let answer = deliver_follow_up(&w, &queue_url, &queue_arn, &feed, &posted, 1).await;
    assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
    let (subject, message) = w.inbox().await;
    assert!(subject.starts_with("[killswitch] CONTAINED:"), "{subject}");
    assert!(message.contains("after 3s propagation delay"), "{message}");
    assert!(message.contains("Activity of this key"), "{message}");

    // The incident record, in the responder's table.
    let item = aws_sdk_dynamodb::Client::new(&sdk(&admin()).await)
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "incident#123456789012#{}",
                leaked.id
            )),
        )
        .send()
        .await
        .unwrap();
    let record: Value =
        serde_json::from_str(item.item().unwrap()["record"].as_s().unwrap()).unwrap();
    assert_eq!(record["applied"]["plan"]["user"], user.as_str(), "{record}");
    assert!(record["verified_at"].is_string(), "{record}");
    // The attacker's call, by CloudTrail event ID, for the later sweep to tell new from seen.
    assert!(
        record["first_pass_event_ids"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty()),
        "{record}"
    );

    // GuardDuty re-emits the finding: a silent no-op, nothing queued.
    let mut again = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    again["detail"]["updatedAt"] = json!("2026-11-30T09:00:00.000Z");
    feed.send((2, again)).unwrap();
    let (_, body) = posted.recv_timeout(wait).expect("no response");
    assert_eq!(body["reports"][0]["status"], "already_contained", "{body}");
    assert_eq!(
        body["reports"][0]["notification"]["state"], "suppressed",
        "{body}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let nothing = w
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .send()
        .await
        .unwrap();
    assert!(
        nothing.messages().is_empty(),
        "a re-emit was followed through again"
    );
    let _ = child.kill();
    let _ = child.wait();
}

// Attacker-proof containment, through the local AWS (its moto patches evaluate aws:userid,
// cap a user's inline policies at 2,048 characters and offer AWSDenyAll, as IAM does).

async fn role_id(role: &str) -> String {
    let iam = aws_sdk_iam::Client::new(&sdk(&admin()).await);
    iam.get_role()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .role_id
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn the_leaked_role_session_is_denied_and_the_roles_other_sessions_keep_working() {
    let w = World::new().await;
    let role = unique("web");
    let sts = aws_sdk_sts::Client::new(&sdk(&admin()).await);
    let caller = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    create_role(&role, &caller).await;
    let arn = format!("arn:aws:iam::123456789012:role/{role}");
    let stolen = assume(&admin(), &arn, "i-0stolen", None).await.unwrap();
    let healthy = assume(&admin(), &arn, "i-0healthy", None).await.unwrap();
    let mut finding = fixture("guardduty-assumed-role-finding.json", &stolen.id, &role);
    let session = format!("{}:i-0stolen", role_id(&role).await);
    finding["detail"]["resource"]["accessKeyDetails"]["principalId"] = json!(session);
    let (code, report, stderr) = w.respond(&finding, &[]);
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    let denied = policy::denied_sessions(
        &w.policy(
            PolicyTarget::Role(role.clone()),
            policy::SESSION_POLICY_NAME,
        )
        .await,
    );
    assert_eq!(denied, Some([session.clone()].into()));
    assert_eq!(attacker_call(&stolen).await, "AccessDenied");
    assert_eq!(
        attacker_call(&healthy).await,
        "ok",
        "the role's other sessions keep working"
    );
    // Credentials fetched again under the same session name are denied too.
    let again = assume(&admin(), &arn, "i-0stolen", None).await.unwrap();
    assert_eq!(attacker_call(&again).await, "AccessDenied");
    let (_, message) = w.inbox().await;
    assert!(
        message.contains(&format!("Only session {session}")),
        "{message}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_planted_decoy_deny_is_replaced_and_the_key_is_refused() {
    let w = World::new().await;
    let user = unique("decoyed");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    // The holder plants a "deny" under killswitch's own policy name that never matches.
    let iam = aws_sdk_iam::Client::new(&sdk(&admin()).await);
    iam.put_user_policy()
        .user_name(&user)
        .policy_name(policy::USER_POLICY_NAME)
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":"nobody-at-all"}}}]}"#)
        .send()
        .await
        .unwrap();
    // Deactivated, the key would be refused anyway: show that the decoy denies nothing, first.
    let (code, report, stderr) = w.respond(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    assert!(policy::is_deny_all(
        &w.policy(PolicyTarget::User(user.clone()), policy::USER_POLICY_NAME)
            .await
    ));
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
    let (_, message) = w.inbox().await;
    assert!(message.contains("TAMPERED OR DECOY"), "{message}");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_user_whose_inline_quota_is_full_gets_aws_deny_all_and_its_sessions_are_refused() {
    let w = World::new().await;
    let user = unique("filled");
    let leaked = create_user_with_key(&user, &["iam:List*", "sts:GetSessionToken"]).await;
    let iam = aws_sdk_iam::Client::new(&sdk(&admin()).await);
    // The holder fills the user's 2,048-character inline quota first.
    let used: usize = {
        let names = iam
            .list_user_policies()
            .user_name(&user)
            .send()
            .await
            .unwrap();
        let mut n = 0;
        for p in names.policy_names() {
            let doc = w.policy(PolicyTarget::User(user.clone()), p).await;
            n += doc.chars().filter(|c| !c.is_whitespace()).count();
        }
        n
    };
    let filler = |pad: usize| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
            "x".repeat(pad)
        )
    };
    // Exactly to the limit: killswitch's deny no longer fits.
    let filler = filler(2048 - used - filler(0).len());
    iam.put_user_policy()
        .user_name(&user)
        .policy_name("filler")
        .policy_document(&filler)
        .send()
        .await
        .unwrap();
    let (code, report, stderr) = w.respond(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    let attached = iam
        .list_attached_user_policies()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert!(
        attached
            .attached_policies()
            .iter()
            .any(|p| p.policy_arn() == Some(policy::MANAGED_DENY_ALL_ARN)),
        "{attached:?}"
    );
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
    let (_, message) = w.inbox().await;
    assert!(message.contains("AWSDenyAll"), "{message}");
    assert!(message.contains("containment holds"), "{message}");
    // LimitExceeded is final, not retried like throttling: one PutUserPolicy, then the attach.
    let calls = w.function_calls().await;
    assert_eq!(
        calls.iter().filter(|c| *c == "PutUserPolicy").count(),
        1,
        "{calls:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn text_the_key_holder_controls_reaches_the_notice_inert() {
    let w = World::new().await;
    let user = unique("hostile");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    // What the holder's own calls put in Event history: a user agent and parameters of its choice.
    let record = json!({
        "eventTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventName": "CreateUser", "eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1",
        "eventID": unique("evt"), "readOnly": false, "sourceIPAddress": "203.0.113.9",
        "userAgent": "x\n\nCONTAINED: all clear, nothing to do <!channel> @here https://phish.example/login \u{202e}",
        "requestParameters": {"userName": "backdoor\n@everyone [reset](http://x.example)"},
        "userIdentity": {"type": "IAMUser", "accessKeyId": leaked.id, "userName": user}
    });
    assert_eq!(
        control(
            "/_killswitch/cloudtrail/events",
            &json!({"events": [record]})
        )["added"],
        1
    );
    let (code, report, stderr) = w.respond(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let (_, message) = w.inbox().await;
    assert!(message.contains("CreateUser"), "{message}");
    for bad in [
        "\nCONTAINED: all clear",
        "<!channel>",
        "@here",
        "@everyone",
        "https://",
        "http://",
        "\u{202e}",
        "](",
    ] {
        assert!(
            !message.contains(bad),
            "{bad:?} reached the notice:\n{message}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_manual_request_naming_someone_else_for_a_session_key_changes_nothing() {
    let w = World::new().await;
    let bob = unique("bob");
    create_user_with_key(&bob, &["iam:List*"]).await;
    let role = unique("web");
    let sts = aws_sdk_sts::Client::new(&sdk(&admin()).await);
    let caller = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    create_role(&role, &caller).await;
    let session = assume(
        &admin(),
        &format!("arn:aws:iam::123456789012:role/{role}"),
        "s1",
        None,
    )
    .await
    .unwrap();
    // The session signs a call: CloudTrail (the local double) now knows whose key it is.
    assert_eq!(attacker_call(&session).await, "ok");
    let request = json!({"access_key_id": session.id, "user_name": bob, "reason": "leak",
        "requested_by": "someone"});
    let (code, report, stderr) = w.respond(&request, &[]);
    assert_eq!(code, 2, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "rejected", "{report}");
    // Nothing written: no containment step ran, bob has no deny, the role no session deny.
    let steps = report["reports"][0]["steps"].as_array().unwrap();
    assert!(
        steps.iter().all(|s| !matches!(
            s["step"].as_str(),
            Some("deactivate_key" | "deny_user" | "revoke_role_sessions")
        )),
        "{report}"
    );
    let role_policies = w
        .iam
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(
        !role_policies
            .policy_names()
            .iter()
            .any(|p| p.starts_with("KillSwitch")),
        "{role_policies:?}"
    );
    let policies = w
        .iam
        .list_user_policies()
        .user_name(&bob)
        .send()
        .await
        .unwrap();
    assert!(
        !policies
            .policy_names()
            .iter()
            .any(|p| p == policy::USER_POLICY_NAME)
    );
    let (subject, message) = w.inbox_any().await;
    assert!(subject.contains("REJECTED"), "{subject}");
    assert!(
        message.contains(&bob) && message.contains(&role),
        "{message}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_pivot_cloudtrail_delivers_late_is_missed_by_the_first_pass_and_caught_by_the_sweep() {
    let w = World::new().await;
    let user = unique("late");
    let leaked = create_user_with_key(&user, &["sts:GetCallerIdentity"]).await;
    // The backdoor key the attacker made 2 minutes before the trigger (its CloudTrail record is
    // seeded below with that time: the double records calls when they are made).
    let backdoor = w
        .iam
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let made = chrono::Utc::now() - chrono::TimeDelta::minutes(2);
    // Event history delivers this key's events 150 s after they happen: the backdoor becomes
    // visible ~30 s from now, after the first pass and before the sweep.
    control(
        "/_killswitch/cloudtrail/lag",
        &json!({"key": leaked.id, "seconds": 150}),
    );
    control(
        "/_killswitch/cloudtrail/events",
        &json!({"events": [{
            "eventTime": made.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
            "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.66", "readOnly": false,
            "userIdentity": {"type": "IAMUser", "accessKeyId": leaked.id, "userName": user},
            "requestParameters": {"userName": user},
            "responseElements": {"accessKey": {"accessKeyId": backdoor.access_key_id,
                                               "userName": user, "status": "Active"}}
        }]}),
    );
    let (_, _, table) = follow_up_queue_and_table(&w).await;
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[
            ("KILLSWITCH_FOLLOW_PIVOTS", "true".into()),
            ("KILLSWITCH_SWEEP_SECONDS", "45".into()),
            ("KILLSWITCH_REGIONS", "us-east-1".into()),
            ("KILLSWITCH_INCIDENT_TABLE", table),
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let first = &report["reports"][0];
    assert_eq!(first["status"], "contained", "{first}");
    assert!(
        first["investigation"]["pivots"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the first pass cannot see it yet: {first}"
    );
    assert_eq!(first["sweep"]["scheduled"], true, "{first}");
    assert!(
        stderr.contains("waiting for the CloudTrail sweep at"),
        "{stderr}"
    );
    let (_, first_notice) = w.inbox().await;
    assert!(
        first_notice.contains("second CloudTrail search (the sweep) runs at"),
        "{first_notice}"
    );

    let sweep = &report["sweeps"][0];
    assert_eq!(sweep["sweep_result"]["new_pivots"], 1, "{sweep}");
    assert_eq!(sweep["sweep_result"]["closed"], true, "{sweep}");
    let pivot = &sweep["investigation"]["pivots"][0];
    assert_eq!(pivot["access_key_id"], backdoor.access_key_id.as_str());
    assert_eq!(pivot["containment"]["status"], "contained", "{pivot}");
    assert_eq!(
        w.key_status(&user, &backdoor.access_key_id).await,
        Some(StatusType::Inactive)
    );
    let (subject, last) = w.inbox().await;
    assert!(subject.contains("FINAL"), "{subject}");
    assert!(last.contains(&backdoor.access_key_id), "{last}");
    assert!(last.contains("The search is now CLOSED"), "{last}");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn the_double_refuses_a_third_lookup_within_any_second() {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            admin().id,
            admin().secret,
            None,
            None,
            "e2e",
        ))
        .region("af-south-1")
        .endpoint_url(endpoint())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let ct = aws_sdk_cloudtrail::Client::new(&sdk);
    // Exactly 500 ms apart, which a token bucket allows: the third arrives within 1 s of the
    // first (arrival jitter makes it so on a real network) and is refused.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = ct.lookup_events().max_results(1).send().await;
        codes.push(
            r.err()
                .and_then(|e| e.into_service_error().meta().code().map(str::to_owned)),
        );
        tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    }
    assert_eq!(codes[0], None);
    assert_eq!(codes[1], None);
    assert_eq!(
        codes[2].as_deref(),
        Some("ThrottlingException"),
        "{codes:?}"
    );
}

/// The command line as on-call types it, as the function identity, from `dir`'s AWS config.
fn oncall_cli(
    w: &World,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_killswitch"));
    c.args(args)
        .env("AWS_ACCESS_KEY_ID", &w.function_key.id)
        .env("AWS_SECRET_ACCESS_KEY", &w.function_key.secret)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
        .env("KILLSWITCH_VERIFY_DELAY_SECONDS", "1")
        .env("KILLSWITCH_INVESTIGATION_SECONDS", "15")
        .env("KILLSWITCH_REGIONS", "us-east-1")
        .env_remove("KILLSWITCH_DRY_RUN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // An empty value unsets the variable.
    for (k, v) in env {
        if v.is_empty() {
            c.env_remove(k);
        } else {
            c.env(k, v);
        }
    }
    let mut child = c.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn on_call_at_a_terminal_responds_by_flags_from_a_profile_and_reads_status() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*", "sts:GetCallerIdentity"]).await;
    // A profile in another Region than the topic's: the notice still goes out. Its credentials
    // are the ones used (the profile named on the command line wins, as in the AWS CLI).
    let config = std::env::temp_dir().join(unique("aws-config"));
    std::fs::write(
        &config,
        format!(
            "[profile oncall]\nregion = eu-west-1\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            w.function_key.id, w.function_key.secret
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let out = oncall_cli(
        &w,
        &[
            "--profile",
            "oncall",
            "respond",
            "--access-key-id",
            &leaked.id,
            "--reason",
            "pasted in a public gist",
            "--output",
            "text",
            "--no-sweep",
        ],
        &[("AWS_CONFIG_FILE", &config), ("AWS_REGION", "")],
        None,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    assert!(stdout.contains("[killswitch] CONTAINED"), "{stdout}");
    assert!(stdout.contains("Notice: sent to the SNS topic"), "{stdout}");
    let closing = stdout.lines().rev().take(2).collect::<Vec<_>>();
    assert!(closing[0].starts_with("== done in "), "{stdout}");
    assert!(
        closing[1].starts_with(&format!(
            "== CONTAINED {} IAM user {user}, acct ",
            leaked.id
        )),
        "{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "no color when piped: {stdout}");
    // Requested by: the caller's own identity when --requested-by is not given.
    let (_, message) = w.inbox().await;
    assert!(
        message.contains("by \"arn:aws:iam::") && message.contains("killswitch-fn-"),
        "{message}"
    );

    // The event on stdin; JSON when piped.
    let user2 = unique("leaky");
    let leaked2 = create_user_with_key(&user2, &["iam:List*"]).await;
    let request = json!({"access_key_id": leaked2.id, "reason": "r", "requested_by": "oncall"});
    let out = oncall_cli(
        &w,
        &["respond", "--event", "-", "--no-sweep", "--quiet"],
        &[],
        Some(&request.to_string()),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --quiet: the result only, no log lines.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    assert_eq!(
        report["reports"][0]["principal"],
        format!("IAM user {user2}")
    );

    // A dry run needs no topic and publishes nothing.
    let user3 = unique("leaky");
    let leaked3 = create_user_with_key(&user3, &["iam:List*"]).await;
    let out = oncall_cli(
        &w,
        &[
            "respond",
            "--access-key-id",
            &leaked3.id,
            "--reason",
            "r",
            "--dry-run",
            "--no-sweep",
        ],
        &[("KILLSWITCH_TOPIC_ARN", "")],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &report["reports"][0];
    assert_eq!(r["status"], "dry_run", "{r}");
    assert_eq!(r["notification"]["state"], "not_published", "{r}");
    assert_eq!(r["undo"], json!([]), "{r}");
    assert_eq!(
        w.key_status(&user3, &leaked3.id).await,
        Some(StatusType::Active)
    );
    // A request that asks for a dry run itself needs no topic either.
    let asks =
        json!({"access_key_id": leaked3.id, "reason": "r", "requested_by": "me", "dry_run": true});
    let out = oncall_cli(
        &w,
        &["respond", "--event", "-", "--no-sweep"],
        &[("KILLSWITCH_TOPIC_ARN", "")],
        Some(&asks.to_string()),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reports"][0]["status"], "dry_run", "{report}");
    assert_eq!(
        w.key_status(&user3, &leaked3.id).await,
        Some(StatusType::Active)
    );

    // Status, as a person reads it: when, by which incident, what else the deny blocks.
    let second = aws_sdk_iam::Client::new(&sdk(&admin()).await)
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap()
        .access_key_id;
    let out = oncall_cli(
        &w,
        &["status", "--access-key-id", &leaked.id, "--output", "text"],
        &[("KILLSWITCH_INCIDENT_TABLE", "")],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("Key {}: IAM user {user}, account ", leaked.id)),
        "{text}"
    );
    assert!(text.contains("key:        Inactive"), "{text}");
    assert!(
        text.contains(&format!("user/{user}: KillSwitchDenyAll")),
        "{text}"
    );
    assert!(
        text.contains("the deny also blocks") && text.contains(&second),
        "{text}"
    );
    // A key that does not exist: exit 4.
    let out = oncall_cli(
        &w,
        &["status", "--access-key-id", "AKIAZZZZZZZZZZZZZZZZ"],
        &[],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A restore nobody confirms (no terminal, no --yes) changes nothing and says so.
    let out = oncall_cli(
        &w,
        &[
            "restore",
            "--access-key-id",
            &leaked.id,
            "--reason",
            "r",
            "--requested-by",
            "me",
            "--force",
        ],
        &[],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not confirmed"));
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
}

fn control_get(path: &str) -> Value {
    let url = endpoint();
    let host = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("{}");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn chat_cards_and_the_security_hub_workflow_reach_their_services() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    // A finding of its own (parallel tests): GuardDuty's ARN is its ID in Security Hub.
    let finding_id = unique("finding");
    let finding_arn = format!(
        "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{finding_id}"
    );
    let mut event = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    event["detail"]["id"] = json!(finding_id);
    event["detail"]["arn"] = json!(finding_arn);
    control(
        "/_killswitch/securityhub/findings",
        &json!({"account": "123456789012", "region": "us-east-1", "Id": finding_arn,
                "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty"}),
    );
    let (chat_topic, chat_queue) = sandbox().await.create_inbox(&unique("chat")).await.unwrap();
    // The incident record: the restore finds the finding there.
    let (_, _, table) = follow_up_queue_and_table(&w).await;

    let (code, report, stderr) = w.respond_with(
        &event,
        &[],
        &[
            ("KILLSWITCH_CHAT_TOPIC_ARN", chat_topic),
            ("KILLSWITCH_INCIDENT_TABLE", table.clone()),
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    assert_eq!(r["chat"]["state"], "sent", "{r}");
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");

    // The chat topic got cards (no subject), one thread; the email topic kept its text.
    let sandbox = sandbox().await;
    let mut cards = Vec::new();
    for _ in 0..6 {
        if let Some((_, message)) = sandbox.receive(&chat_queue, 2).await.unwrap() {
            cards.push(serde_json::from_str::<Value>(&message).unwrap());
            if cards.len() == 2 {
                break;
            }
        }
    }
    assert_eq!(cards.len(), 2, "{cards:?}");
    for card in &cards {
        assert_eq!(card["version"], "1.0");
        assert_eq!(card["source"], "custom");
        assert_eq!(card["content"]["textType"], "client-markdown");
        assert_eq!(
            card["metadata"]["threadId"],
            format!("killswitch-123456789012-{}", leaked.id)
        );
    }
    let full = cards
        .iter()
        .find(|c| c["metadata"]["eventType"] == "killswitch.report")
        .unwrap();
    let description = full["content"]["description"].as_str().unwrap();
    assert!(description.contains("Verified: HOLDS"), "{description}");
    assert!(description.contains(&leaked.id), "{description}");
    let (subject, message) = w.inbox().await;
    assert!(subject.starts_with("[killswitch] CONTAINED"), "{subject}");
    assert!(serde_json::from_str::<Value>(&message).is_err());

    // Security Hub: NOTIFIED with our note, through the real SDK call.
    let hub = control_get("/_killswitch/securityhub/findings");
    let finding = hub["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Id"] == finding_arn.as_str())
        .unwrap()
        .clone();
    assert_eq!(finding["Workflow"]["Status"], "NOTIFIED", "{finding}");
    let note = finding["Note"]["Text"].as_str().unwrap();
    assert!(
        note.contains(&leaked.id) && note.contains("verified at"),
        "{note}"
    );
    assert_eq!(finding["Note"]["UpdatedBy"], "killswitch");
    assert!(
        hub["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["body"].to_string().contains(&finding_id))
            .all(|c| c["body"]["Workflow"]["Status"] != "SUPPRESSED"),
        "{hub}"
    );

    // Restore adds a note; the workflow stays NOTIFIED.
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args([
            "restore",
            "--access-key-id",
            &leaked.id,
            "--requested-by",
            "oncall@example.com",
            "--reason",
            "drill over",
            "--yes",
        ])
        .env("AWS_ACCESS_KEY_ID", &w.function_key.id)
        .env("AWS_SECRET_ACCESS_KEY", &w.function_key.secret)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
        .env("KILLSWITCH_INCIDENT_TABLE", &table)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hub = control_get("/_killswitch/securityhub/findings");
    let finding = hub["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Id"] == finding_arn.as_str())
        .unwrap()
        .clone();
    assert_eq!(finding["Workflow"]["Status"], "NOTIFIED");
    assert_eq!(finding["Notes"].as_array().unwrap().len(), 2, "{finding}");
    assert!(
        finding["Note"]["Text"]
            .as_str()
            .unwrap()
            .contains("lifted by oncall@example.com"),
        "{finding}"
    );
}

/// Deploys quarantine-role.yaml in the organization's management account (111122223333 on the
/// local AWS), trusting the responder role; returns the role's ARN.
async fn deploy_quarantine_role(
    management: &Key,
    responder_role: &str,
    external_id: &str,
) -> String {
    let role = unique("KillSwitchQuarantine");
    deploy_stack(
        management,
        "quarantine-role.yaml",
        &[
            ("SecurityAccountId", "123456789012"),
            ("ResponderRoleName", responder_role),
            ("ExternalId", external_id),
            ("QuarantineRoleName", &role),
        ],
    )
    .await;
    let (account, _) = member_admin();
    format!("arn:aws:iam::{account}:role/{role}")
}

/// The account's quarantine SCP as the management account sees it: (ID, content, attached).
async fn quarantine_scp(management: &Key) -> Option<(String, String, bool)> {
    use aws_sdk_organizations::types::PolicyType;
    let org = aws_sdk_organizations::Client::new(&sdk(management).await);
    let policies = org
        .list_policies()
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let id = policies
        .policies()
        .iter()
        .find(|p| p.name() == Some("killswitch-quarantine-123456789012"))?
        .id()?
        .to_owned();
    let content = org
        .describe_policy()
        .policy_id(&id)
        .send()
        .await
        .unwrap()
        .policy()?
        .content()?
        .to_owned();
    let attached = org
        .list_policies_for_target()
        .target_id("123456789012")
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap()
        .policies()
        .iter()
        .any(|p| p.id() == Some(id.as_str()));
    Some((id, content, attached))
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn the_org_quarantine_outlasts_the_accounts_own_admin_and_restore_lifts_it() {
    use killswitch::playbook::quarantine::{Entry, parse};
    let w = World::new().await;
    let (_, management) = member_admin();
    let responder_role = unique("killswitch-responder");
    let session = responder_session(&w, &responder_role).await;
    let external_id = unique("ext");
    let quarantine_role = deploy_quarantine_role(&management, &responder_role, &external_id).await;
    let (_, _, table) = follow_up_queue_and_table(&w).await;
    let env = vec![
        ("AWS_ACCESS_KEY_ID", session.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", session.secret.clone()),
        ("AWS_SESSION_TOKEN", session.token.clone().unwrap()),
        ("KILLSWITCH_QUARANTINE_ROLE_ARN", quarantine_role.clone()),
        ("KILLSWITCH_QUARANTINE_EXTERNAL_ID", external_id.clone()),
        ("KILLSWITCH_INCIDENT_TABLE", table.clone()),
    ];
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let entry = Entry::User { name: user.clone() };

    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &env,
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    let step = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "quarantine")
        .unwrap_or_else(|| panic!("no quarantine step: {r}"));
    assert_eq!(step["outcome"], "done", "{step}");
    let (id, content, attached) = quarantine_scp(&management).await.unwrap();
    assert!(attached);
    assert!(
        parse(&content, "aws", "123456789012")
            .entries
            .contains(&entry),
        "{content}"
    );
    let (_, message) = w.inbox().await;
    assert!(
        message.contains("does not restrict the management account"),
        "{message}"
    );

    // A second request for the same key: the entry is there, nothing is written twice.
    let (code, report, _) = w.respond_with(
        &fixture("manual-request.json", &leaked.id, &user),
        &[],
        &env,
    );
    assert_eq!(code, 0, "{report}");
    let step = report["reports"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "quarantine")
        .cloned()
        .unwrap();
    assert_eq!(step["outcome"], "already_done", "{step}");
    let (same, content_again, _) = quarantine_scp(&management).await.unwrap();
    assert_eq!(same, id);
    assert_eq!(
        parse(&content_again, "aws", "123456789012")
            .entries
            .iter()
            .filter(|e| **e == entry)
            .count(),
        1
    );

    // The account's own admin (the holder's other credential) deletes the inline deny and
    // tries to lift the SCP: IAM lets it, Organizations does not.
    let admin_sdk = sdk(&admin()).await;
    aws_sdk_iam::Client::new(&admin_sdk)
        .delete_user_policy()
        .user_name(&user)
        .policy_name(policy::USER_POLICY_NAME)
        .send()
        .await
        .unwrap();
    let org = aws_sdk_organizations::Client::new(&admin_sdk);
    let detach = org
        .detach_policy()
        .policy_id(&id)
        .target_id("123456789012")
        .send()
        .await;
    assert!(detach.is_err(), "a member account detached the quarantine");
    let update = org
        .update_policy()
        .policy_id(&id)
        .content(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await;
    assert!(update.is_err(), "a member account rewrote the quarantine");
    let (_, content_now, attached) = quarantine_scp(&management).await.unwrap();
    assert!(
        attached
            && parse(&content_now, "aws", "123456789012")
                .entries
                .contains(&entry)
    );

    // status shows it standing; restore lifts it.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_killswitch"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let read_back = |out: std::process::Output| {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["quarantine"]["read_back"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        read_back(cli(&["status", "--access-key-id", &leaked.id])),
        "stands"
    );
    let restored = cli(&[
        "restore",
        "--access-key-id",
        &leaked.id,
        "--requested-by",
        "oncall@example.com",
        "--reason",
        "drill over",
        "--yes",
    ]);
    assert_eq!(
        restored.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&restored.stdout),
        String::from_utf8_lossy(&restored.stderr)
    );
    let left = quarantine_scp(&management).await;
    assert!(
        left.as_ref()
            .is_none_or(|(_, c, _)| !parse(c, "aws", "123456789012").entries.contains(&entry)),
        "{left:?}"
    );
    assert_eq!(
        read_back(cli(&["status", "--access-key-id", &leaked.id])),
        "lifted"
    );
}

/// The harness as Identity Center's administrator would set it up: a permission set that
/// references the deny policy, a user assigned to it (directly, or through a group), provisioned
/// to the function's account.
fn seed_portal_user(permission_set: &str, user: &str, via_group: bool) -> Value {
    let seeded = control(
        "/_killswitch/identitycenter/seed",
        &json!({"account": "123456789012", "permission_set": permission_set,
                "user_name": user, "via_group": via_group}),
    );
    assert!(seeded["role_name"].is_string(), "{seeded}");
    seeded
}

/// What the portal hands the user (`aws configure export-credentials`): their credentials, or
/// the portal's refusal (`Null`).
fn portal_credentials(seeded: &Value, user: &str) -> Option<(Key, String)> {
    let c = control(
        "/_killswitch/identitycenter/portal-credentials",
        &json!({"account": "123456789012", "permission_set_arn": seeded["permission_set_arn"],
                "user_name": user}),
    );
    let id = c["AccessKeyId"].as_str()?;
    Some((
        Key {
            id: id.to_owned(),
            secret: c["SecretAccessKey"].as_str().unwrap().to_owned(),
            token: c["SessionToken"].as_str().map(str::to_owned),
        },
        c["PrincipalId"].as_str().unwrap().to_owned(),
    ))
}

/// The deny policy's default document, as the account's admin reads it.
async fn deny_policy_document() -> String {
    let clients = AwsClients::from_sdk_config(&sdk(&admin()).await, "");
    clients
        .policy_default("arn:aws:iam::123456789012:policy/KillSwitchDeny")
        .await
        .unwrap()
        .expect("identity-center-policy.yaml is deployed by the harness")
        .document
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_leaked_portal_session_is_contained_through_the_deny_policy_and_restore_undoes_it() {
    use killswitch::playbook::portal::{Entry, parse};
    let w = World::new().await;
    let (_, management) = member_admin();
    let responder_role = unique("killswitch-responder");
    let session = responder_session(&w, &responder_role).await;
    let external_id = unique("ext");
    let operator = aws_sdk_sts::Client::new(&sdk(&admin()).await)
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let role_name = unique("KsIdc");
    deploy_stack(
        &management,
        "identity-center-role.yaml",
        &[
            ("SecurityAccountId", "123456789012"),
            ("ResponderRoleName", &responder_role),
            ("ExternalId", &external_id),
            ("RoleName", &role_name),
            ("RemoveAssignments", "true"),
            ("OperatorRoleArns", &operator),
        ],
    )
    .await;
    let (account, _) = member_admin();
    let idc_role = format!("arn:aws:iam::{account}:role/{role_name}");
    let (_, _, table) = follow_up_queue_and_table(&w).await;
    let idc_env = vec![
        ("KILLSWITCH_IDENTITY_CENTER_ROLE_ARN", idc_role.clone()),
        (
            "KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID",
            external_id.clone(),
        ),
        (
            "KILLSWITCH_IDENTITY_CENTER_REMOVE_ASSIGNMENTS",
            "true".into(),
        ),
        ("KILLSWITCH_INCIDENT_TABLE", table.clone()),
    ];
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", session.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", session.secret.clone()),
        ("AWS_SESSION_TOKEN", session.token.clone().unwrap()),
    ];
    env.extend(idc_env.iter().cloned());

    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let permission_set = format!("Dev{nanos}");
    let alice = format!("alice{nanos}@example.com");
    let bob = format!("bob{nanos}@example.com");
    let seeded = seed_portal_user(&permission_set, &alice, false);
    seed_portal_user(&permission_set, &bob, true);
    let role = seeded["role_name"].as_str().unwrap().to_owned();
    let alice_id = seeded["user_id"].as_str().unwrap().to_owned();
    let (stolen, principal_id) = portal_credentials(&seeded, &alice).unwrap();
    let (bobs, _) = portal_credentials(&seeded, &bob).unwrap();
    assert_eq!(attacker_call(&stolen).await, "ok");

    // IAM itself refuses to edit the permission set's role: that is why the policy is the way.
    let put = w
        .iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("x")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#)
        .send()
        .await;
    assert!(format!("{put:?}").contains("UnmodifiableEntity"), "{put:?}");

    let mut finding: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/events/guardduty-identity-center-session-finding.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    finding["detail"]["resource"]["accessKeyDetails"] = json!({
        "accessKeyId": stolen.id, "principalId": principal_id,
        "userType": "AssumedRole", "userName": role});
    finding["detail"]["id"] = json!(unique("finding"));
    let (code, report, stderr) = w.respond_with(&finding, &[], &env);
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    let entries = parse(&deny_policy_document().await).entries;
    assert!(
        entries.contains(&Entry::User {
            user_id: alice_id.clone()
        }) && entries.contains(&Entry::Session {
            userid: principal_id.clone()
        }),
        "{entries:?}"
    );
    assert_eq!(attacker_call(&stolen).await, "AccessDenied");
    assert_eq!(
        attacker_call(&bobs).await,
        "ok",
        "another user of the same permission set keeps working"
    );
    // The direct assignment is gone: the portal hands out nothing more.
    assert!(portal_credentials(&seeded, &alice).is_none());
    let removed = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "remove_assignment")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(removed["outcome"], "done", "{removed}");
    // The role was never written.
    assert!(
        w.iam
            .list_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap()
            .policy_names()
            .iter()
            .all(|p| p == "AwsSSOInlinePolicy")
    );

    // Redelivery: already contained, nothing written again.
    let before = deny_policy_document().await;
    let (code, report, _) = w.respond_with(&finding, &[], &env);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["reports"][0]["status"], "already_contained",
        "{report}"
    );
    assert_eq!(deny_policy_document().await, before);

    // status, then restore as the operator (the Restore role trusts operators only).
    let mut operator_env: Vec<(&str, String)> = idc_env.clone();
    operator_env.push((
        "KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN",
        format!("arn:aws:iam::{account}:role/{role_name}Restore"),
    ));
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_killswitch"))
            .args(args)
            .envs(operator_env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_ACCESS_KEY_ID", admin().id)
            .env("AWS_SECRET_ACCESS_KEY", admin().secret)
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let status: Value =
        serde_json::from_slice(&cli(&["status", "--access-key-id", &stolen.id]).stdout).unwrap();
    assert_eq!(status["identity_center"]["denied"], true, "{status}");
    assert!(
        status["identity_center"]["assignment_removed"].is_object(),
        "{status}"
    );
    let restored = cli(&[
        "restore",
        "--access-key-id",
        &stolen.id,
        "--requested-by",
        "oncall@example.com",
        "--reason",
        "drill over",
        "--force",
        "--yes",
    ]);
    assert_eq!(
        restored.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&restored.stdout),
        String::from_utf8_lossy(&restored.stderr)
    );
    let left = parse(&deny_policy_document().await).entries;
    assert!(
        !left.contains(&Entry::User {
            user_id: alice_id.clone()
        }) && !left.contains(&Entry::Session {
            userid: principal_id.clone()
        }),
        "{left:?}"
    );
    // Exactly the removed assignment is back: alice signs in again and works.
    let (again, _) = portal_credentials(&seeded, &alice).expect("the assignment is back");
    assert_eq!(attacker_call(&again).await, "ok");
}
