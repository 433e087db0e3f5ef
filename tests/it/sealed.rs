//! Incident records are sealed with a key only the responder may sign with (a KMS HMAC key): a
//! record written by anyone else — a PartiQL write, an operator's role, a record from before
//! sealing — is reported and never trusted by containment, a follow-through or a restore.

use killswitch::incident::AccessKeyId;
use killswitch::oncall::{self, RestoreRequest};
use killswitch::ports::KeyStatus;
use killswitch::report::{Outcome, Status};
use killswitch::vocab::Step;
use serde_json::Value;

use crate::support::{FIXTURE_KEY, FakeCloud, deliver, deployed_config, event, lambda};

const RECORD: &str = "incident#123456789012#AKIAIOSFODNN7EXAMPLE";

fn sealing(cloud: &FakeCloud) {
    cloud.state.lock().unwrap().record_key = Some("record-key-secret".into());
}

fn stored(cloud: &FakeCloud) -> Value {
    let text = cloud
        .state
        .lock()
        .unwrap()
        .items
        .get(RECORD)
        .cloned()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// What an operator's restore of alice's key would refuse, as the deployed stack is set up.
async fn restore_refusals(a: &killswitch::handler::App<FakeCloud>) -> Vec<String> {
    let key = AccessKeyId::parse(FIXTURE_KEY).unwrap();
    let req = RestoreRequest {
        user_name: Some("alice".into()),
        ..Default::default()
    };
    oncall::assess(&a.cloud, &deployed_config(), &key, &req)
        .await
        .unwrap()
        .refusals
}

fn not_trusted(r: &killswitch::report::Report) -> bool {
    r.steps.iter().any(|s| {
        s.step == Step::Record && s.outcome == Outcome::Failed && s.detail.contains("NOT TRUSTED")
    })
}

#[tokio::test]
async fn the_function_seals_every_record_it_writes_and_trusts_its_own() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    sealing(&cloud);
    let a = lambda(cloud);
    let first = deliver(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(first.reports[0].status, Status::Contained);
    let item = stored(&a.cloud);
    assert!(
        item["sealed"].is_string() && item["mac"].is_string(),
        "{item}"
    );
    assert!(a.cloud.calls().iter().any(|(c, _)| c == "kms:GenerateMac"));
    // Re-delivered: the sealed record is read, verified and used (a silent duplicate).
    let again = deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &again.reports[0];
    assert_eq!(r.status, Status::AlreadyContained, "{r:?}");
    assert!(!not_trusted(r), "{:?}", r.steps);
    assert!(a.cloud.calls().iter().any(|(c, _)| c == "kms:VerifyMac"));
}

#[tokio::test]
async fn a_record_someone_else_wrote_is_reported_and_never_trusted() {
    // A genuine record, then its text changed in the table with the seal kept (a PartiQL
    // update): the seal no longer verifies.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    sealing(&cloud);
    let a = lambda(cloud);
    deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let mut item = stored(&a.cloud);
    let forged = item["sealed"].as_str().unwrap().replace("alice", "nobody");
    item["sealed"] = Value::String(forged);
    a.cloud
        .state
        .lock()
        .unwrap()
        .items
        .insert(RECORD.into(), item.to_string());
    // The holder undid containment meanwhile.
    a.cloud
        .add_user_key("alice", FIXTURE_KEY, KeyStatus::Active);
    let again = deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &again.reports[0];
    assert!(not_trusted(r), "{:?}", r.steps);
    assert!(r.status.is_contained(), "{r:?}");
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
}

#[tokio::test]
async fn an_unsealed_record_is_not_trusted_once_records_are_sealed() {
    // Written before sealing was configured (or by anyone, unsealed).
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let a = lambda(cloud);
    deliver(&a, event("guardduty-iam-user-finding.json")).await;
    assert!(stored(&a.cloud)["sealed"].is_null());
    sealing(&a.cloud);
    let again = deliver(&a, event("guardduty-iam-user-finding.json")).await;
    assert!(
        not_trusted(&again.reports[0]),
        "{:?}",
        again.reports[0].steps
    );
    // The function's next write seals it.
    assert!(stored(&a.cloud)["sealed"].is_string());
}

#[tokio::test]
async fn a_restore_refuses_on_a_record_that_is_not_trusted() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    sealing(&cloud);
    let a = lambda(cloud);
    deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let mut item = stored(&a.cloud);
    item["mac"] = Value::String("00".repeat(32));
    a.cloud
        .state
        .lock()
        .unwrap()
        .items
        .insert(RECORD.into(), item.to_string());
    let refusals = restore_refusals(&a).await;
    assert!(
        refusals.iter().any(|r| r.contains("NOT TRUSTED")),
        "{refusals:?}"
    );
}

#[tokio::test]
async fn another_keys_sealed_record_copied_under_this_key_is_not_trusted() {
    // Both keys contained, each with its sealed record; key B's record is copied over key A's.
    let other = "AKIAI44QH8DHBEXAMPLE";
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("bob", other, KeyStatus::Active);
    sealing(&cloud);
    let a = lambda(cloud);
    deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let mut second = event("guardduty-iam-user-finding.json");
    second["detail"]["id"] = serde_json::json!("6fd0d2c3a7b15f4e9b3a2c8d4e0f1b22");
    second["detail"]["arn"] = serde_json::json!(
        "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/6fd0d2c3a7b15f4e9b3a2c8d4e0f1b22"
    );
    second["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = serde_json::json!(other);
    second["detail"]["resource"]["accessKeyDetails"]["userName"] = serde_json::json!("bob");
    deliver(&a, second).await;
    let copied = a
        .cloud
        .state
        .lock()
        .unwrap()
        .items
        .get(&format!("incident#123456789012#{other}"))
        .cloned()
        .unwrap();
    a.cloud
        .state
        .lock()
        .unwrap()
        .items
        .insert(RECORD.into(), copied);
    let again = deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &again.reports[0];
    assert!(not_trusted(r), "{:?}", r.steps);
    assert!(
        r.steps
            .iter()
            .any(|s| s.detail.contains(&format!("sealed record of key {other}"))),
        "{:?}",
        r.steps
    );
}

#[tokio::test]
async fn a_sealed_record_read_without_the_key_is_not_trusted_and_says_which_setting() {
    // An operator's shell without KILLSWITCH_RECORD_KEY_ARN cannot check a seal: it does not
    // take the record on trust.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    sealing(&cloud);
    let a = lambda(cloud);
    deliver(&a, event("guardduty-iam-user-finding.json")).await;
    a.cloud.state.lock().unwrap().record_key = None;
    let refusals = restore_refusals(&a).await;
    assert!(
        refusals
            .iter()
            .any(|r| r.contains("NOT TRUSTED") && r.contains("KILLSWITCH_RECORD_KEY_ARN")),
        "{refusals:?}"
    );
}
