//! A payload shaped like a finding is a claim: anyone with `lambda:InvokeFunction` can send one.
//! Findings are read back at GuardDuty or Security Hub before anything is written, and acted on
//! as the source holds them.

use killswitch::ports::KeyStatus;
use killswitch::report::{Outcome, Status};
use killswitch::vocab::Step;
use serde_json::{Value, json};

use crate::support::{FIXTURE_KEY, FakeCloud, app, deliver_unraised, event, lambda};

/// The holder's own user key, in a payload that names an admin as its owner.
fn naming(mut payload: Value, user: &str) -> Value {
    payload["detail"]["resource"]["accessKeyDetails"]["userName"] = json!(user);
    payload
}

fn check_finding(r: &killswitch::report::Report) -> Option<(Outcome, String)> {
    r.steps
        .iter()
        .find(|s| s.step == Step::CheckFinding)
        .map(|s| (s.outcome.clone(), s.detail.clone()))
}

#[tokio::test]
async fn a_finding_guardduty_never_raised_changes_nothing_and_is_called_forged() {
    // The insider's own session key, in a "finding" naming the admin role's session.
    let cloud = FakeCloud::default();
    cloud.add_user_key("admin", FIXTURE_KEY, KeyStatus::Active);
    let a = lambda(cloud);
    let response = deliver_unraised(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Rejected, "{r:?}");
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
    assert!(r.summary.contains("looked forged"), "{}", r.summary);
    assert!(r.summary.contains("holds no finding"), "{}", r.summary);
    let (subject, body) = a.cloud.published().pop().expect("the forgery is paged");
    assert!(
        format!("{subject}\n{body}").contains("looked forged"),
        "{subject}\n{body}"
    );
}

#[tokio::test]
async fn a_forged_role_session_finding_puts_no_deny_on_the_role() {
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), "AROACKCEVSQ6C2EXAMPLE".into());
    let a = lambda(cloud);
    let response = deliver_unraised(&a, event("guardduty-assumed-role-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Rejected, "{r:?}");
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
}

#[tokio::test]
async fn a_real_finding_with_another_principal_written_in_is_rejected() {
    // GuardDuty raised a finding about mallory's key; the payload sent names the admin.
    let cloud = FakeCloud::default();
    cloud.add_user_key("mallory", FIXTURE_KEY, KeyStatus::Active);
    cloud.add_user_key("admin", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    let real = naming(event("guardduty-iam-user-finding.json"), "mallory");
    cloud.raise(&real);
    let a = lambda(cloud);
    let response = deliver_unraised(&a, naming(real, "admin")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Rejected, "{r:?}");
    assert!(r.summary.contains("another principal"), "{}", r.summary);
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
}

#[tokio::test]
async fn a_re_emitted_finding_is_the_same_finding() {
    // GuardDuty re-emits every 6 h with a new count and updatedAt: not identity fields.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let mut raised = event("guardduty-iam-user-finding.json");
    raised["detail"]["service"]["count"] = json!(9);
    raised["detail"]["updatedAt"] = json!("2026-11-23T09:10:02.114Z");
    cloud.raise(&raised);
    let a = lambda(cloud);
    let response = deliver_unraised(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
    let (outcome, detail) = check_finding(r).unwrap();
    assert_eq!(outcome, Outcome::Done);
    assert!(
        detail.contains("read back at GuardDuty detector"),
        "{detail}"
    );
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
}

#[tokio::test]
async fn the_detector_is_the_accounts_own_not_the_payloads() {
    // A payload naming another detector is read back with the account's own detector: GuardDuty
    // refuses a detector the account does not own, and the account's holds the finding.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.raise(&event("guardduty-iam-user-finding.json"));
    let mut payload = event("guardduty-iam-user-finding.json");
    payload["detail"]["arn"] = json!(
        "arn:aws:guardduty:us-east-1:123456789012:detector/ffffffffffffffffffffffffffffffff/finding/5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11"
    );
    let a = lambda(cloud);
    let response = deliver_unraised(&a, payload).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    let asked: Vec<String> = a
        .cloud
        .calls()
        .into_iter()
        .filter(|(action, _)| action == "guardduty:GetFindings")
        .map(|(_, arg)| arg)
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
}

#[tokio::test]
async fn a_finding_that_cannot_be_read_back_contains_the_key_and_iams_owner_only() {
    // GuardDuty does not answer: the payload is word only. The key is contained, with the deny
    // on the owner IAM gives for it (mallory), never on the admin the payload names; the page
    // says what could not be checked.
    let cloud = FakeCloud::default();
    cloud.add_user_key("mallory", FIXTURE_KEY, KeyStatus::Active);
    cloud.add_user_key("admin", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    cloud.fail("guardduty:GetFindings", "AccessDeniedException");
    let a = lambda(cloud);
    let response = deliver_unraised(
        &a,
        naming(event("guardduty-iam-user-finding.json"), "admin"),
    )
    .await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
    assert_eq!(
        a.cloud.key_state("mallory", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(
        a.cloud
            .policy("user/mallory", "KillSwitchDenyAll")
            .is_some()
    );
    assert!(a.cloud.policy("user/admin", "KillSwitchDenyAll").is_none());
    let (outcome, detail) = check_finding(r).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert!(detail.contains("NOT CHECKED"), "{detail}");
    let (subject, body) = a.cloud.published().pop().unwrap();
    assert!(
        format!("{subject}\n{body}").contains("NOT CHECKED"),
        "the page says what could not be checked:\n{subject}\n{body}"
    );
}

#[tokio::test]
async fn a_session_finding_that_cannot_be_read_back_denies_no_role_and_is_retried() {
    // A session key's owner is only the payload's word when GuardDuty cannot be asked (the
    // holder deleted the detector, or throttles GuardDuty's API): no role is denied on it, and
    // the invocation fails so that Lambda retries and humans are paged.
    let cloud = FakeCloud::default();
    cloud.set_detector(None);
    let a = lambda(cloud);
    let response = deliver_unraised(&a, event("guardduty-assumed-role-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Failed, "{r:?}");
    assert!(
        response.error().is_some(),
        "Lambda must see an error to retry"
    );
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
    assert!(!a.cloud.published().is_empty(), "humans are told");
}

#[tokio::test]
async fn an_archived_finding_sent_again_is_rejected() {
    // GuardDuty never delivers archived findings: a payload of one replays it.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let mut archived = event("guardduty-iam-user-finding.json");
    archived["detail"]["service"]["archived"] = json!(true);
    cloud.raise(&archived);
    let a = lambda(cloud);
    let r = &deliver_unraised(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Rejected, "{r:?}");
    assert!(r.summary.contains("ARCHIVED"), "{}", r.summary);
    assert!(a.cloud.writes().is_empty());
}

#[tokio::test]
async fn a_health_event_naming_a_user_beside_a_session_key_denies_nobody() {
    // Health events cannot be read back: a user name beside a session key (the insider's own,
    // from GetSessionToken) would otherwise deny whoever it names.
    let cloud = FakeCloud::default();
    cloud.add_user_key("admin", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    let a = lambda(cloud);
    let mut health = event("health-exposed-new-shape.json");
    let session_key = "ASIAIOSFODNN7EXAMPLE";
    let raw = health.to_string().replace(FIXTURE_KEY, session_key);
    health = serde_json::from_str(&raw).unwrap();
    health["detail"]["eventMetadata"]["userName"] = json!("admin");
    let response = deliver_unraised(&a, health).await;
    assert!(
        response
            .reports
            .iter()
            .all(|r| r.status != Status::Contained),
        "{:?}",
        response.reports
    );
    assert!(a.cloud.policy("user/admin", "KillSwitchDenyAll").is_none());
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
}

#[tokio::test]
async fn a_sample_at_the_source_is_never_acted_on_whatever_the_payload_says() {
    // The payload dropped the sample marker GuardDuty's copy carries.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let mut raised = event("guardduty-iam-user-finding.json");
    raised["detail"]["service"]["additionalInfo"] =
        json!({"value": "{\"sample\":true}", "type": "default"});
    cloud.raise(&raised);
    let a = lambda(cloud);
    let response = deliver_unraised(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Rejected);
    assert!(response.reports[0].summary.contains("sample"));
    assert!(a.cloud.writes().is_empty());
}

#[tokio::test]
async fn custom_threat_list_findings_are_notify_only_unless_configured() {
    let custom = |cloud: &FakeCloud| {
        let mut e = event("guardduty-iam-user-finding.json");
        e["detail"]["type"] = json!("UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom");
        cloud.raise(&e);
        e
    };
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let payload = custom(&cloud);
    let a = lambda(cloud);
    let r = &deliver_unraised(&a, payload).await.reports[0];
    assert_eq!(r.status, Status::Refused, "{r:?}");
    assert!(r.summary.contains("notify-only"), "{}", r.summary);
    assert!(a.cloud.writes().is_empty());

    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let payload = custom(&cloud);
    let mut a = lambda(cloud);
    a.config.act_on_custom_findings = true;
    let r = &deliver_unraised(&a, payload).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
}

#[tokio::test]
async fn a_security_hub_import_is_read_back_at_guardduty() {
    let payload = event("securityhub-guardduty-user-finding.json");
    // GuardDuty never raised it: rejected.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let a = app(cloud);
    let r = &deliver_unraised(&a, payload.clone()).await.reports[0];
    assert_eq!(r.status, Status::Rejected, "{r:?}");
    assert!(a.cloud.writes().is_empty());
    // GuardDuty raised it (the import's ID is its ARN): the same finding.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.raise(&event("guardduty-iam-user-finding.json"));
    let a = app(cloud);
    let r = &deliver_unraised(&a, payload.clone()).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
    // An import naming another user than GuardDuty's finding does: rejected.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.raise(&event("guardduty-iam-user-finding.json"));
    let a = app(cloud);
    let mut renamed = payload;
    renamed["detail"]["findings"][0]["Resources"][0]["Details"]["AwsIamAccessKey"]["PrincipalName"] =
        json!("admin");
    let r = &deliver_unraised(&a, renamed).await.reports[0];
    assert_eq!(r.status, Status::Rejected, "{r:?}");
}

#[tokio::test]
async fn a_finding_naming_another_user_than_iam_acts_on_iams_owner_and_says_so() {
    // The holder renamed its user before the finding was raised and gave the old name to an
    // admin: GuardDuty's copy names the admin, IAM knows whose key it is.
    let cloud = FakeCloud::default();
    cloud.add_user_key("mallory", FIXTURE_KEY, KeyStatus::Active);
    cloud.add_user_key("alice", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    let a = lambda(cloud);
    let response = crate::support::deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
    assert!(
        a.cloud
            .policy("user/mallory", "KillSwitchDenyAll")
            .is_some()
    );
    assert!(a.cloud.policy("user/alice", "KillSwitchDenyAll").is_none());
    assert!(
        r.steps.iter().any(|s| s
            .detail
            .contains("trigger named user alice, IAM says the key belongs to mallory")),
        "{:?}",
        r.steps
    );
}

#[tokio::test]
async fn a_session_whose_role_id_is_not_the_roles_in_iam_revokes_the_role_wide_and_says_so() {
    // The finding's principal ID (AROACKCEVSQ6C2EXAMPLE) is not the role's ID in IAM: the role
    // was deleted and made again under the same name, so no exact session deny can name the
    // leaked session; every session of the role issued before now is revoked instead.
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), "AROAZZZZZZZZZZZZEXAMPLE".into());
    let a = lambda(cloud);
    let response = crate::support::deliver(&a, event("guardduty-assumed-role-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
    assert!(
        a.cloud
            .policy("role/ci-deployer", killswitch::policy::ROLE_POLICY_NAME)
            .is_some(),
        "a role-wide cutoff"
    );
    assert!(
        r.steps.iter().any(|s| s.detail.contains(
            "the trigger's principal ID AROACKCEVSQ6C2EXAMPLE is not role ci-deployer's ID AROAZZZZZZZZZZZZEXAMPLE in IAM"
        )),
        "{:?}",
        r.steps
    );
}
