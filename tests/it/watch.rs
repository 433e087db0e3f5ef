//! The first minute after containment, over `FakeCloud` with a round trip on every call: a holder
//! who undoes containment is met at once and paged within a second, a holder who keeps undoing it
//! is never reported as held, and nothing read inside IAM's propagation window is called "holds".

use std::time::Duration;

use chrono::Utc;
use killswitch::policy::USER_POLICY_NAME;
use killswitch::ports::KeyStatus;
use killswitch::report::{Outcome, Status};
use killswitch::vocab::Step;

use crate::support::{FIXTURE_KEY, FakeCloud, app, deliver, event, lambda, run};

const RTT: Duration = Duration::from_millis(30);

fn watched(cloud: FakeCloud) -> killswitch::handler::App<FakeCloud> {
    cloud.state.lock().unwrap().latency = Some(RTT);
    let mut a = app(cloud);
    a.config.watch = Duration::from_secs(60);
    a.config.verify_delay = Duration::from_secs(5);
    a
}

/// The instant of the n-th `iam:ListAccessKeys` and of each publish, from the fake's clock.
fn instants(cloud: &FakeCloud, action: &str) -> Vec<tokio::time::Instant> {
    let s = cloud.state.lock().unwrap();
    s.arrivals
        .iter()
        .filter(|(a, _)| a == action)
        .map(|(_, t)| *t)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_holder_undoing_containment_in_the_first_minute_is_paged_within_a_second_and_met_at_once()
{
    let app = watched(FakeCloud::with_user("alice", FIXTURE_KEY));
    // Reads: the guard's, the immediate read-back, then the watch's; the holder strikes at the
    // watch's fourth round.
    app.cloud.state.lock().unwrap().tamper_on_key_read = Some(6);
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contested, "{}", report.summary);
    let v = report.verification.as_ref().unwrap();
    assert!(v.contested && v.holds && v.settled, "{v:?}");
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(app.cloud.policy("user/alice", USER_POLICY_NAME).is_some());

    let published = app.cloud.published();
    let contested_at = published
        .iter()
        .position(|(s, _)| s.contains("CONTESTED"))
        .unwrap_or_else(|| panic!("no CONTESTED page: {published:?}"));
    assert!(
        contested_at < published.len() - 1,
        "CONTESTED was paged only in the full report: {published:?}"
    );
    let page = &published[contested_at].1;
    assert!(page.contains("was set Active again"), "{page}");
    assert!(
        !page.contains("containment holds") && !page.contains("re-contained"),
        "said from inside the window: {page}"
    );

    let struck = app.cloud.state.lock().unwrap().tampered_at[0];
    let paged = instants(&app.cloud, "sns:Publish")
        .into_iter()
        .find(|t| *t > struck)
        .unwrap();
    assert!(
        paged - struck <= Duration::from_secs(1),
        "paged {:?} after the undoing",
        paged - struck
    );
    // The read that says "holds" comes a propagation window after the last write.
    let last = v.checks.last().unwrap();
    assert!(last.settled && last.holds, "{last:?}");
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.step == Step::Verify && s.detail.contains("undone 1 time(s)")),
        "{:?}",
        report.steps
    );
}

#[tokio::test(start_paused = true)]
async fn a_holder_who_keeps_undoing_it_is_never_reported_as_held_and_fails_for_a_retry() {
    let app = watched(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.state.lock().unwrap().tamper_from_key_read = Some(4);
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Failed, "{}", report.summary);
    let v = report.verification.as_ref().unwrap();
    assert!(!v.holds, "{v:?}");
    assert!(response.error().is_some(), "Lambda must retry");
    for (subject, body) in app.cloud.published() {
        assert!(!subject.contains("re-contained"), "{subject}");
        assert!(
            !body.contains("containment holds"),
            "{subject}: claims it holds: {body}"
        );
    }
    // The watch met every undoing at once, within its call budget.
    let reapplied = app
        .cloud
        .calls()
        .iter()
        .filter(|(a, _)| a == "iam:PutUserPolicy")
        .count();
    assert!(reapplied >= 60, "re-applied only {reapplied} times");
    let reads = instants(&app.cloud, "iam:ListAccessKeys").len();
    assert!(reads <= 2 * 520, "{reads} reads");
}

#[tokio::test(start_paused = true)]
async fn a_key_minted_on_the_contained_user_during_the_watch_is_deactivated() {
    let app = watched(FakeCloud::with_user("alice", FIXTURE_KEY));
    let minted = "AKIAI44QH8DHBEXAMPLE";
    app.cloud.add_user_key("alice", minted, KeyStatus::Active);
    app.cloud.state.lock().unwrap().key_created.insert(
        ("alice".into(), minted.into()),
        Utc::now() + chrono::TimeDelta::seconds(1),
    );
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(
        app.cloud.key_state("alice", minted),
        Some(KeyStatus::Inactive)
    );
    assert_eq!(report.status, Status::Contested, "{}", report.summary);
    assert!(
        report.steps.iter().any(|s| s.step == Step::DeactivateKey
            && s.outcome == Outcome::Done
            && s.detail.contains(minted)),
        "{:?}",
        report.steps
    );
}

#[tokio::test(start_paused = true)]
async fn the_containment_tag_goes_out_in_the_denys_wave() {
    let app = watched(FakeCloud::with_user("alice", FIXTURE_KEY));
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contained, "{}", report.summary);
    let waves = app.cloud.waves();
    let wave = |action: &str| {
        waves
            .iter()
            .find(|(a, _)| a == action)
            .map(|(_, w)| *w)
            .unwrap_or_else(|| panic!("{action} not called: {waves:?}"))
    };
    assert_eq!(wave("iam:TagUser"), wave("iam:PutUserPolicy"));
    assert_eq!(
        app.cloud
            .state
            .lock()
            .unwrap()
            .tags
            .get(&("user/alice".into(), "killswitch-contained".into()))
            .cloned(),
        Some(report.incident_id.clone())
    );
}

#[tokio::test(start_paused = true)]
async fn with_the_watch_on_the_follow_through_is_queued_to_start_at_once() {
    let mut a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.watch = Duration::from_secs(60);
    a.config.verify_delay = Duration::from_secs(10);
    deliver(&a, event("guardduty-iam-user-finding.json")).await;
    let queued = a.cloud.state.lock().unwrap().queued.clone();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].1, Duration::ZERO);

    let mut b = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    b.config.watch = Duration::ZERO;
    b.config.verify_delay = Duration::from_secs(10);
    deliver(&b, event("guardduty-iam-user-finding.json")).await;
    let queued = b.cloud.state.lock().unwrap().queued.clone();
    assert_eq!(queued[0].1, Duration::from_secs(10));
}
