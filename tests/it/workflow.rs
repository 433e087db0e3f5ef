//! The Security Hub workflow: the incident's finding goes to NOTIFIED with a note once
//! containment holds, never before, never suppressed; a restore adds a note; Security Hub
//! trouble never touches containment; our own update, imported again, contains nothing.

use killswitch::playbook::Step;
use killswitch::ports::KeyStatus;
use killswitch::report::{Outcome, Status};
use serde_json::json;

use crate::support::*;

const GUARDDUTY_FINDING: &str = "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11";

fn holding_finding(cloud: FakeCloud) -> FakeCloud {
    cloud
        .state
        .lock()
        .unwrap()
        .findings
        .insert(GUARDDUTY_FINDING.into(), ("NEW".into(), Vec::new()));
    cloud
}

fn finding(cloud: &FakeCloud) -> (String, Vec<String>) {
    cloud.state.lock().unwrap().findings[GUARDDUTY_FINDING].clone()
}

fn step(r: &killswitch::report::Report) -> Option<Outcome> {
    r.steps
        .iter()
        .find(|s| s.step == Step::UpdateFinding)
        .map(|s| s.outcome.clone())
}

#[tokio::test]
async fn guardduty_and_security_hub_incidents_mark_the_finding_notified_once_it_holds() {
    for fixture in [
        "guardduty-iam-user-finding.json",
        "securityhub-guardduty-user-finding.json",
    ] {
        let a = lambda(holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY)));
        let response = run(&a, event(fixture)).await;
        let r = &response.reports[0];
        assert_eq!(r.status, Status::Contained, "{fixture}");
        assert_eq!(step(r), Some(Outcome::Done), "{fixture}: {:?}", r.steps);
        let (workflow, notes) = finding(&a.cloud);
        assert_eq!(workflow, "NOTIFIED", "{fixture}");
        assert_eq!(notes.len(), 1, "{fixture}");
        for fact in [
            "CONTAINED",
            FIXTURE_KEY,
            "IAM user alice",
            "deactivate_key, deny_user",
            "verified at",
            &r.incident_id,
        ] {
            assert!(
                notes[0].contains(fact),
                "{fixture}: {fact} not in {}",
                notes[0]
            );
        }
        // Only after the delayed read-back: the update is the last call before the notice.
        let calls = a.cloud.calls();
        let update = calls
            .iter()
            .position(|(a, _)| a == "securityhub:BatchUpdateFindings")
            .unwrap();
        let last_read_back = calls
            .iter()
            .rposition(|(a, _)| a == "iam:GetUserPolicy")
            .unwrap();
        assert!(update > last_read_back, "{fixture}: {calls:?}");
        // The full report says so.
        let (_, body) = a.cloud.published().pop().unwrap();
        assert!(body.contains("update_finding"), "{body}");
    }
}

#[tokio::test]
async fn a_finding_security_hub_does_not_hold_or_an_outage_never_touches_containment() {
    // Not held (Security Hub off in that Region).
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let r = &run(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained);
    assert_eq!(step(r), Some(Outcome::NotFound));
    // Security Hub down.
    let a = lambda(holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY)));
    a.cloud
        .fail("securityhub:BatchUpdateFindings", "InternalException");
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained);
    assert!(
        response.error().is_none(),
        "no retry for Security Hub trouble"
    );
    assert_eq!(step(r), Some(Outcome::Failed));
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(a.cloud.policy("user/alice", "KillSwitchDenyAll").is_some());
}

#[tokio::test]
async fn no_update_when_containment_fails_in_a_dry_run_or_when_turned_off() {
    // Containment fails: the finding stays NEW for a human.
    let a = lambda(holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY)));
    a.cloud.fail("iam:PutUserPolicy", "AccessDenied");
    let r = &run(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Failed);
    assert_eq!(finding(&a.cloud).0, "NEW");
    // Turned off.
    let mut a = lambda(holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY)));
    a.config.security_hub_updates = false;
    run(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(finding(&a.cloud), ("NEW".into(), Vec::new()));
    // A dry run.
    let mut a = lambda(holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY)));
    a.config.dry_run = true;
    run(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(finding(&a.cloud), ("NEW".into(), Vec::new()));
    assert!(
        !a.cloud
            .calls()
            .iter()
            .any(|(c, _)| c == "securityhub:BatchUpdateFindings")
    );
}

#[tokio::test]
async fn our_own_update_imported_again_contains_nothing() {
    let a = lambda(holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY)));
    let mut imported = event("securityhub-guardduty-user-finding.json");
    imported["detail"]["findings"][0]["Workflow"] = json!({"Status": "NOTIFIED"});
    imported["detail"]["findings"][0]["Note"] =
        json!({"Text": "killswitch CONTAINED", "UpdatedBy": "killswitch"});
    let err = killswitch::handler::handle(
        &a,
        imported,
        std::time::SystemTime::now() + std::time::Duration::from_secs(60),
        false,
        killswitch::handler::Phases::HandOff,
    )
    .await;
    let text = match err {
        Err(e) => e.chain(),
        Ok(resp) => format!("{:?}", resp.error()),
    };
    assert!(text.contains("not NEW"), "{text}");
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
}

#[tokio::test]
async fn restore_adds_a_note_and_leaves_the_finding_open() {
    let a = lambda(holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY)));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let restored = restore_alice(
        &a,
        &a.config,
        "oncall@example.com",
        "false positive: CI key",
    )
    .await;
    assert!(restored.failed.is_empty(), "{:?}", restored.failed);
    assert!(
        restored
            .done
            .iter()
            .any(|d| d.starts_with("note on the Security Hub finding")),
        "{:?}",
        restored.done
    );
    let (workflow, notes) = finding(&a.cloud);
    assert_eq!(workflow, "NOTIFIED", "never resolved or suppressed by us");
    assert_eq!(notes.len(), 2);
    assert!(
        notes[1].contains("lifted by oncall@example.com")
            && notes[1].contains("false positive: CI key"),
        "{}",
        notes[1]
    );
}

#[tokio::test]
async fn a_forged_event_cannot_aim_the_update_at_another_finding() {
    // The finding the event names must be the event's own, in the event's account.
    for arn in [
        // Another account's finding.
        "arn:aws:guardduty:us-east-1:210987654321:detector/12abc34d567e8fa901bc2d34e56789f0/finding/5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11",
        // Another finding of this account.
        "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/0000000000000000000000000000beef",
    ] {
        let cloud = holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY));
        cloud
            .state
            .lock()
            .unwrap()
            .findings
            .insert(arn.into(), ("NEW".into(), Vec::new()));
        let a = lambda(cloud);
        let mut forged = event("guardduty-iam-user-finding.json");
        forged["detail"]["arn"] = json!(arn);
        let r = &run(&a, forged).await.reports[0];
        assert_eq!(r.status, Status::Contained);
        assert_eq!(step(r), None, "{arn}");
        assert_eq!(
            a.cloud.state.lock().unwrap().findings[arn].0,
            "NEW",
            "{arn}"
        );
    }
    // An ASFF finding whose ID is another account's finding is not updated either.
    let other = "arn:aws:guardduty:us-east-1:210987654321:detector/12abc34d567e8fa901bc2d34e56789f0/finding/5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11";
    let cloud = holding_finding(FakeCloud::with_user("alice", FIXTURE_KEY));
    cloud
        .state
        .lock()
        .unwrap()
        .findings
        .insert(other.into(), ("NEW".into(), Vec::new()));
    let a = lambda(cloud);
    let mut forged = event("securityhub-guardduty-user-finding.json");
    forged["detail"]["findings"][0]["Id"] = json!(other);
    let r = run(&a, forged).await;
    assert!(r.reports.iter().all(|r| step(r).is_none()));
    assert_eq!(a.cloud.state.lock().unwrap().findings[other].0, "NEW");
}
