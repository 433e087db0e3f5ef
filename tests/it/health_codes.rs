//! Every AWS Health `RISK` code about credentials: the five that name a key are contained like
//! any Health event, the console compromise is refused with its manual steps, and AWS's own
//! quarantine policy is named by version and never detached by a restore.

use killswitch::error::Error;
use killswitch::incident::{Principal, Received, Trigger};
use killswitch::ports::Identity;
use killswitch::report::Status;
use killswitch::report::words::aws_quarantine;
use killswitch::trigger::{CONSOLE_COMPROMISE_STEPS, HEALTH_RISK_CODES, parse};
use serde_json::json;

use crate::support::{FIXTURE_KEY, FakeCloud, event, lambda, restore_alice, run};

/// (fixture, code, key): the second fixture names another user's key.
const KEY_CODES: [(&str, &str, &str); 5] = [
    (
        "health-exposed-new-shape.json",
        "AWS_RISK_CREDENTIALS_EXPOSED",
        FIXTURE_KEY,
    ),
    (
        "health-exposure-suspected.json",
        "AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED",
        "AKIAI44QH8DHBEXAMPLE",
    ),
    (
        "health-compromised.json",
        "AWS_RISK_CREDENTIALS_COMPROMISED",
        FIXTURE_KEY,
    ),
    (
        "health-compromise-suspected.json",
        "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED",
        FIXTURE_KEY,
    ),
    (
        "health-iam-quarantine.json",
        "AWS_RISK_IAM_QUARANTINE",
        FIXTURE_KEY,
    ),
];

const QUARANTINE_V3: &str = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";

#[test]
fn all_six_codes_are_known_and_routed_by_the_template() {
    assert_eq!(HEALTH_RISK_CODES.len(), 6);
    assert!(HEALTH_RISK_CODES.contains(&"AWS_RISK_ACCOUNT_CONSOLE_COMPROMISE"));
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    let rule = template
        .split("HealthCredentialRiskRule:")
        .nth(1)
        .and_then(|r| r.split("Targets:").next())
        .unwrap();
    for code in HEALTH_RISK_CODES {
        assert!(rule.contains(&format!("- {code}")), "{code} not routed");
    }
}

#[test]
fn each_key_code_names_its_key_and_code() {
    for (file, code, key) in KEY_CODES {
        let Received::Incidents(list) = parse(event(file)).unwrap() else {
            panic!("{file}: not incidents");
        };
        assert_eq!(list.len(), 1, "{file}");
        let i = &list[0];
        assert_eq!(i.key.as_str(), key, "{file}");
        match &i.trigger {
            Trigger::Health {
                event_type_code, ..
            } => assert_eq!(event_type_code, code),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn the_console_compromise_is_a_notice_with_the_manual_steps() {
    let advisory = match parse(event("health-console-compromise.json")) {
        Ok(Received::Advisory(a)) => a,
        other => panic!("expected an advisory, got {other:?}"),
    };
    assert_eq!(
        advisory.event_type_code,
        "AWS_RISK_ACCOUNT_CONSOLE_COMPROMISE"
    );
    assert!(advisory.summary.contains("changed nothing"), "{advisory:?}");
    assert_eq!(advisory.steps, CONSOLE_COMPROMISE_STEPS);
    assert!(advisory.steps.contains("aws iam delete-login-profile"));
    // Even one that names a key: no public sample says what it names, so it is never acted on.
    let mut e = event("health-console-compromise.json");
    e["detail"]["affectedEntities"] = json!([{"entityValue": FIXTURE_KEY}]);
    e["resources"] = json!([FIXTURE_KEY]);
    assert!(matches!(parse(e), Ok(Received::Advisory(a)) if a.steps == CONSOLE_COMPROMISE_STEPS));
    // An account that is not an account ID is bad input, as anywhere.
    let mut e = event("health-console-compromise.json");
    e["account"] = json!("12345");
    e["detail"]["affectedAccount"] = json!("12345");
    assert!(matches!(parse(e), Err(Error::BadEvent(_))));
}

#[tokio::test]
async fn the_console_compromise_pages_the_steps_and_changes_nothing() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let response = killswitch::handler::handle(
        &a,
        event("health-console-compromise.json"),
        std::time::SystemTime::now() + std::time::Duration::from_secs(60),
        false,
        killswitch::handler::Phases::HandOff,
    )
    .await
    .unwrap();
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Refused, "{r:?}");
    let calls = a.cloud.calls();
    assert!(
        calls.iter().all(|(op, _)| op == "sns:Publish"),
        "only the notice: {calls:?}"
    );
    let published = a.cloud.state.lock().unwrap().published.clone();
    assert_eq!(published.len(), 1, "{published:?}");
    let (subject, body) = &published[0];
    assert!(subject.contains("NOT CONTAINED"), "{subject}");
    assert!(body.contains("aws iam delete-login-profile"), "{body}");
    assert!(
        body.contains("AWS_RISK_ACCOUNT_CONSOLE_COMPROMISE"),
        "{body}"
    );
}

#[tokio::test]
async fn a_quarantine_event_is_contained_fully_and_a_restore_leaves_aws_policy_attached() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    // What AWS did before the event reached us.
    a.cloud
        .attach_managed("alice", QUARANTINE_V3)
        .await
        .unwrap();
    let response = run(&a, event("health-iam-quarantine.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
    // The notice says AWS's policy is there, by the version IAM lists.
    assert!(
        r.next_steps.iter().any(|s| s
            .contains("AWS attached its quarantine policy AWSCompromisedKeyQuarantineV3 to alice")),
        "{r:?}"
    );
    // Contained as if AWS's policy were absent: the deny on the user is killswitch's own.
    assert!(a.cloud.policy("user/alice", "KillSwitchDenyAll").is_some());
    let attached = a.cloud.managed_policies("alice").await.unwrap();
    assert_eq!(
        aws_quarantine::version(&attached),
        Some("AWSCompromisedKeyQuarantineV3")
    );

    let restored = restore_alice(&a, &a.config, "oncall@example.com", "rotated").await;
    assert!(!restored.done.is_empty(), "{restored:?}");
    for line in restored.plan.iter().chain(&restored.done) {
        assert!(!line.contains("AWSCompromisedKeyQuarantine"), "{line}");
    }
    assert!(
        !a.cloud
            .calls()
            .iter()
            .any(|(op, arg)| op == "iam:DetachUserPolicy" && arg.contains("Quarantine")),
        "AWS's policy was detached"
    );
    let attached = a.cloud.managed_policies("alice").await.unwrap();
    assert!(attached.iter().any(|p| p == QUARANTINE_V3), "{attached:?}");
    assert!(a.cloud.policy("user/alice", "KillSwitchDenyAll").is_none());
}

#[test]
fn a_quarantine_event_names_no_user_it_does_not_know() {
    // The fixture's description names alice; the event is word only, so IAM gives the owner.
    let Received::Incidents(list) = parse(event("health-iam-quarantine.json")).unwrap() else {
        panic!("not incidents");
    };
    assert_eq!(list[0].principal, Principal::Unresolved);
}
