//! End to end against the local AWS (moto with IAM auth enforced and Inactive keys refused, plus
//! the CloudTrail LookupEvents double), started by `scripts/test.sh`. These run the real
//! `killswitch respond` binary and check the end state through the APIs.
//!
//! Ignored in a bare `cargo test`; the README's test command runs them with `--include-ignored`
//! and they fail loudly if the local AWS is not there.
//!
//! Shared here: the local AWS's endpoint and admin, `Key`, fixtures and the harness's control
//! API; one test's `World` and the principals tests plant and attack with (`world`); the deployed
//! shape and the project's templates (`deployment`). The tests, one module per scenario family.

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

mod attack_sequence;
mod attacker_proof;
mod chat;
mod cloudtrail_double;
mod containment;
mod deployment;
mod doctor;
mod drills;
mod investigation;
mod lagged;
mod lambda;
mod member_account;
mod oncall;
mod pivot_events;
mod portal;
mod quarantine;
mod restore;
mod root_keys;
mod safety;
mod sealed;
mod security_hub_v2;
mod terminal;
mod watchdog;
mod world;

use deployment::*;
use world::*;

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

/// A payload from events/ about `key` of `principal`. A finding in it gets an ID of its own (tests
/// run at once) and is raised in the local GuardDuty or Security Hub, as the service would have
/// raised it: the function reads findings back before believing them.
fn fixture(name: &str, key: &str, principal: &str) -> Value {
    let payload = unraised_fixture(name, key, principal);
    raise(&payload);
    payload
}

/// As [`fixture`], but no service raised it: only the invoker's claim.
fn unraised_fixture(name: &str, key: &str, principal: &str) -> Value {
    let raw =
        std::fs::read_to_string(format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut raw = raw
        .replace(FIXTURE_KEY, key)
        .replace(FIXTURE_ROLE_KEY, key)
        .replace("\"alice\"", &format!("\"{principal}\""))
        .replace("\"ci-deployer\"", &format!("\"{principal}\""))
        .replace("\"deploy-bot\"", &format!("\"{principal}\""));
    let parsed: Value = serde_json::from_str(&raw).unwrap();
    if let Some(id) = finding_id(&parsed) {
        raw = raw.replace(&id, &finding_id_for(name, key, principal));
    }
    serde_json::from_str(&raw).unwrap()
}

/// The GuardDuty finding ID a payload carries (native, or inside a Security Hub import's ID).
fn finding_id(payload: &Value) -> Option<String> {
    if let Some(id) = payload.pointer("/detail/id").and_then(Value::as_str) {
        return Some(id.to_owned());
    }
    let id = payload
        .pointer("/detail/findings/0/Id")
        .and_then(Value::as_str)?;
    id.rsplit_once("/finding/").map(|(_, f)| f.to_owned())
}

/// A finding ID of its own for each (fixture, key, principal), the same when asked again (a
/// re-emit is the same finding): keys are unique per test.
fn finding_id_for(name: &str, key: &str, principal: &str) -> String {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, name, key, principal).hash(&mut h);
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

/// GuardDuty raises the payload's finding(s) in the local AWS (a Security Hub import: the
/// GuardDuty finding it came from).
fn raise(payload: &Value) {
    match payload.get("source").and_then(Value::as_str) {
        Some("aws.guardduty") => {
            let answer = control(
                "/_killswitch/guardduty/findings",
                &json!({"finding": payload["detail"]}),
            );
            assert!(answer.get("raised").is_some(), "{answer}");
        }
        Some("aws.securityhub") => {
            // Read back where it was raised: GuardDuty.
            for f in payload["detail"]["findings"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let detail = crate::support::guardduty_detail_of(f);
                let answer = control(
                    "/_killswitch/guardduty/findings",
                    &json!({"finding": detail}),
                );
                assert!(answer.get("raised").is_some(), "{answer}");
            }
        }
        _ => {}
    }
}

const WRITES: [&str; 5] = [
    "UpdateAccessKey",
    "PutUserPolicy",
    "PutRolePolicy",
    "DeleteUserPolicy",
    "DeleteAccessKey",
];

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

/// Raw GET from the harness's control API (test infrastructure only).
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
