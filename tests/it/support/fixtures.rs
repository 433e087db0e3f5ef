//! Fixtures and the app's shapes: the payloads of events/, the configuration, the command line
//! and the deployed function around a `FakeCloud`.

use std::time::Duration;

use killswitch::config::Config;
use killswitch::handler::{App, Phases, Response, handle};
use killswitch::incident::{AccessKeyId, AccountId};
use killswitch::playbook::Responder;

use super::FakeCloud;

pub const ACCOUNT: &str = "123456789012";
/// The key every fixture in events/ names.
pub const FIXTURE_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const FIXTURE_ROLE_KEY: &str = "ASIAIOSFODNN7EXAMPLE";

/// Reads a payload from events/, the single source of fixtures.
pub fn event(name: &str) -> serde_json::Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&raw).unwrap()
}

pub const FOLLOW_UP_QUEUE: &str =
    "https://sqs.us-east-1.amazonaws.com/123456789012/killswitch-follow-up";
pub const FOLLOW_UP_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:killswitch-follow-up";

/// The deployed shape: a follow-up queue and an incident table.
pub fn deployed_config() -> Config {
    let mut c = config();
    c.follow_up_queue_url = Some(FOLLOW_UP_QUEUE.into());
    c.incident_table = Some("killswitch-incidents".into());
    c
}

/// The command line's shape: its identity known, no queue, no incident table.
pub fn app(cloud: FakeCloud) -> App<FakeCloud> {
    App {
        cloud,
        config: config(),
        responder: Some(responder()),
    }
}

/// The deployed shape: a follow-up queue and an incident table.
pub fn lambda(cloud: FakeCloud) -> App<FakeCloud> {
    App {
        cloud,
        config: deployed_config(),
        responder: Some(responder()),
    }
}

/// A trigger invocation as Lambda runs it: contain, then hand the follow-through to the queue.
/// A finding in the payload is one GuardDuty (or Security Hub) raised.
pub async fn deliver(app: &App<FakeCloud>, payload: serde_json::Value) -> Response {
    app.cloud.raise(&payload);
    deliver_unraised(app, payload).await
}

/// As [`deliver`], for a payload no service raised: only the invoker's claim.
pub async fn deliver_unraised(app: &App<FakeCloud>, payload: serde_json::Value) -> Response {
    handle(
        app,
        payload,
        std::time::SystemTime::now() + Duration::from_secs(120),
        false,
        Phases::HandOff,
    )
    .await
    .unwrap()
}

/// Both phases in this process, as the command line runs them. A finding in the payload is
/// one GuardDuty (or Security Hub) raised.
pub async fn run(app: &App<FakeCloud>, payload: serde_json::Value) -> Response {
    app.cloud.raise(&payload);
    handle(
        app,
        payload,
        std::time::SystemTime::now() + Duration::from_secs(120),
        false,
        Phases::Both,
    )
    .await
    .unwrap()
}

/// An operator's `killswitch restore` of alice's fixture key, as the command line runs it:
/// assess with `config` (the operator's environment), then restore without `--force`.
pub async fn restore_alice(
    a: &App<FakeCloud>,
    config: &Config,
    by: &str,
    reason: &str,
) -> killswitch::oncall::Restored {
    let key = AccessKeyId::parse(FIXTURE_KEY).unwrap();
    let req = killswitch::oncall::RestoreRequest {
        user_name: Some("alice".into()),
        ..Default::default()
    };
    let assessment = killswitch::oncall::assess(&a.cloud, config, &key, &req)
        .await
        .unwrap();
    killswitch::oncall::restore(&a.cloud, config, &key, &assessment, by, reason, false).await
}

pub fn config() -> Config {
    let mut c = Config::from_lookup(|k| {
        (k == "KILLSWITCH_TOPIC_ARN").then(|| format!("arn:aws:sns:us-east-1:{ACCOUNT}:killswitch"))
    })
    .unwrap();
    c.verify_delay = Duration::ZERO;
    // The first-minute watch is for the tests that race it.
    c.watch = Duration::ZERO;
    c.investigation_budget = Duration::from_secs(30);
    c
}

pub fn responder() -> Responder {
    Responder::from_arn(
        AccountId::parse(ACCOUNT).unwrap(),
        &format!("arn:aws:sts::{ACCOUNT}:assumed-role/killswitch-fn-role/killswitch"),
    )
}
