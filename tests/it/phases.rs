//! The two phases: containment in two waves of calls, everything slow handed to the follow-up
//! queue, and the incident store that makes duplicates silent and tells restores from tampering.

use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::SqsEvent;
use chrono::{TimeDelta, Utc};
use killswitch::handler::{App, Phases, handle, handle_follow_ups};
use killswitch::policy::{self, ROLE_POLICY_NAME, USER_POLICY_NAME};
use killswitch::ports::KeyStatus;
use killswitch::report::{Investigation, Notification, Outcome, Status};
use serde_json::{Value, json};

use crate::support::{
    FIXTURE_KEY, FIXTURE_ROLE_KEY, FOLLOW_UP_QUEUE_ARN, FakeCloud, config, deliver,
    deployed_config, event, lambda, responder,
};

const RTT: Duration = Duration::from_millis(60);

fn far_away(cloud: FakeCloud) -> FakeCloud {
    cloud.state.lock().unwrap().latency = Some(RTT);
    cloud
}

/// What Lambda's event source mapping would hand the function for the queued messages.
fn sqs_event(cloud: &FakeCloud, source_arn: &str) -> SqsEvent {
    let queued = std::mem::take(&mut cloud.state.lock().unwrap().queued);
    let records: Vec<Value> = queued
        .iter()
        .enumerate()
        .map(|(i, (body, _))| {
            json!({"messageId": format!("m{i}"), "receiptHandle": "r", "body": body,
                   "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                   "eventSource": "aws:sqs", "eventSourceARN": source_arn, "awsRegion": "us-east-1"})
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

async fn follow(
    app: &App<FakeCloud>,
    event: SqsEvent,
) -> (Vec<String>, Vec<killswitch::report::Report>) {
    let (response, reports) =
        handle_follow_ups(app, event, SystemTime::now() + Duration::from_secs(120))
            .await
            .unwrap();
    let failed = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    (failed, reports)
}

/// Removes the queued sweeps and returns them: (body, delay).
fn take_sweeps(cloud: &FakeCloud) -> Vec<(String, Duration)> {
    let mut s = cloud.state.lock().unwrap();
    let (sweeps, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut s.queued)
        .into_iter()
        .partition(|(body, _)| body.contains(r#""kind":"sweep""#));
    s.queued = rest;
    sweeps
}

/// Waits past the (1 s) sweep delay and puts the sweeps back as the queue's next delivery.
async fn queue_when_due(cloud: &FakeCloud, sweeps: Vec<(String, Duration)>) {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cloud.state.lock().unwrap().queued = sweeps;
}

/// The wave (1-based round trip) in which each call of `actions` arrived, the latest one.
fn last_wave(cloud: &FakeCloud, actions: &[&str]) -> u32 {
    cloud
        .waves()
        .into_iter()
        .filter(|(a, _)| actions.contains(&a.as_str()))
        .map(|(_, w)| w)
        .max()
        .unwrap_or_else(|| panic!("none of {actions:?} called: {:?}", cloud.waves()))
}

const WRITES: [&str; 3] = [
    "iam:UpdateAccessKey",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
];

#[tokio::test(start_paused = true)]
async fn a_user_key_is_contained_with_its_writes_in_the_second_wave() {
    let app = lambda(far_away(FakeCloud::with_user("alice", FIXTURE_KEY)));
    let response = deliver(&app, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    let waves = app.cloud.waves();
    // The finding is read back at GuardDuty in the same first wave: no extra round trip.
    for read in [
        "guardduty:ListDetectors",
        "guardduty:GetFindings",
        "sts:GetAccessKeyInfo",
        "iam:GetAccessKeyLastUsed",
        "iam:ListAccessKeys",
        "iam:GetUserPolicy",
    ] {
        assert!(
            waves.iter().any(|(a, w)| a == read && *w == 1),
            "{read} not in the first wave: {waves:?}"
        );
    }
    assert_eq!(
        waves
            .iter()
            .filter(|(a, _)| WRITES.contains(&a.as_str()))
            .map(|(a, w)| (a.as_str(), *w))
            .collect::<Vec<_>>(),
        [("iam:UpdateAccessKey", 2), ("iam:PutUserPolicy", 2)],
        "{waves:?}"
    );
    // The whole invocation: reads, writes, read-back with the notice claim, then record,
    // short notice and hand-off together.
    assert_eq!(waves.iter().map(|(_, w)| *w).max(), Some(4), "{waves:?}");
    assert_eq!(
        last_wave(&app.cloud, &["sqs:SendMessage", "sns:Publish"]),
        4
    );
}

#[tokio::test(start_paused = true)]
async fn the_command_line_learns_who_it_is_in_the_same_first_wave() {
    let app = App {
        cloud: far_away(FakeCloud::with_user("alice", FIXTURE_KEY)),
        config: config(),
        responder: None,
    };
    let response = handle(
        &app,
        event("manual-request.json"),
        SystemTime::now() + Duration::from_secs(120),
        false,
        Phases::Both,
    )
    .await
    .unwrap();
    assert_eq!(response.reports[0].status, Status::Contained);
    assert_eq!(last_wave(&app.cloud, &["sts:GetCallerIdentity"]), 1);
    assert_eq!(last_wave(&app.cloud, &WRITES), 2);
}

#[tokio::test(start_paused = true)]
async fn a_role_session_is_revoked_in_the_second_wave() {
    let app = lambda(far_away(FakeCloud::default()));
    let response = deliver(&app, event("guardduty-assumed-role-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    let waves = app.cloud.waves();
    assert!(
        waves
            .iter()
            .any(|(a, w)| a == "iam:GetRolePolicy" && *w == 1),
        "{waves:?}"
    );
    assert_eq!(last_wave(&app.cloud, &["guardduty:GetFindings"]), 1);
    assert_eq!(last_wave(&app.cloud, &WRITES), 2);
}

fn health_event_with(keys: &[String]) -> Value {
    let mut e = event("health-exposed-old-shape.json");
    e["detail"]["affectedEntities"] = keys
        .iter()
        .map(|k| json!({"entityValue": k}))
        .collect::<Vec<_>>()
        .into();
    e
}

#[tokio::test(start_paused = true)]
async fn every_key_of_a_health_event_is_contained_before_anything_is_investigated() {
    let cloud = far_away(FakeCloud::default());
    let keys: Vec<String> = (0..5)
        .map(|i| format!("AKIAIOSFODNN7EXAMP{i:02}"))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        cloud.add_user_key(&format!("user{i}"), k, KeyStatus::Active);
    }
    // On the command line (both phases in one process), so the investigation runs here too.
    let app = App {
        cloud,
        config: config(),
        responder: Some(responder()),
    };
    let response = handle(
        &app,
        health_event_with(&keys),
        SystemTime::now() + Duration::from_secs(120),
        false,
        Phases::Both,
    )
    .await
    .unwrap();
    assert_eq!(response.reports.len(), 5);
    assert!(
        response
            .reports
            .iter()
            .all(|r| r.status == Status::Contained)
    );
    let calls = app.cloud.calls();
    let last_write = calls
        .iter()
        .rposition(|(a, _)| WRITES.contains(&a.as_str()))
        .unwrap();
    let first_lookup = calls
        .iter()
        .position(|(a, _)| a == "cloudtrail:LookupEvents")
        .unwrap();
    assert!(last_write < first_lookup, "{calls:?}");
    // The old Health shape names no user: the owner comes from the first wave's
    // GetAccessKeyLastUsed, so every key is written in the second wave.
    assert_eq!(last_wave(&app.cloud, &WRITES), 2);
}

#[tokio::test]
async fn the_trigger_invocation_hands_off_and_the_queue_invocation_reports_in_full() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.add_events(
        "us-east-1",
        vec![crate::support::api_call(
            "CreateUser",
            Utc::now() - TimeDelta::minutes(3),
            None,
        )],
    );
    let response = deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let contained = &response.reports[0];
    assert_eq!(contained.status, Status::Contained);
    assert!(
        contained
            .follow_through
            .as_deref()
            .unwrap()
            .starts_with("queued")
    );
    assert!(matches!(
        contained.investigation,
        Investigation::NotRun { .. }
    ));
    // The short notice is out; nothing slow ran in this invocation.
    let published = app.cloud.published();
    assert_eq!(published.len(), 1);
    assert!(published[0].0.contains("CONTAINED") && published[0].0.contains("details follow"));
    assert!(
        !app.cloud
            .calls()
            .iter()
            .any(|(a, _)| a == "cloudtrail:LookupEvents")
    );
    let queued = app.cloud.state.lock().unwrap().queued.clone();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].1, deployed_config().verify_delay);

    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty());
    let full = &reports[0];
    assert_eq!(full.status, Status::Contained);
    assert_eq!(full.verification.as_ref().unwrap().checks.len(), 2);
    let Investigation::Ran(activity) = &full.investigation else {
        panic!("{:?}", full.investigation)
    };
    assert_eq!(activity.total_events, 1);
    let published = app.cloud.published();
    assert_eq!(published.len(), 2);
    // The user the attacker created is still there: the subject says so before the key.
    assert!(
        published[1]
            .0
            .starts_with("[killswitch] CONTAINED - 1 new user: AKIAIOSFODNN7EXAMPLE"),
        "{}",
        published[1].0
    );
    assert!(published[1].1.contains("iam:CreateUser"));
    // The incident record: what was applied, verified, and the first pass's event IDs.
    let items = app.cloud.state.lock().unwrap().items.clone();
    let record: Value =
        serde_json::from_str(&items[&format!("incident#123456789012#{FIXTURE_KEY}")]).unwrap();
    assert_eq!(record["applied"]["plan"]["user"], "alice", "{record}");
    assert!(record["verified_at"].is_string(), "{record}");
    assert_eq!(
        record["first_pass_event_ids"].as_array().unwrap().len(),
        1,
        "{record}"
    );
}

#[tokio::test]
async fn a_duplicate_queue_message_sends_the_full_report_once() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let body = app.cloud.state.lock().unwrap().queued[0].clone();
    app.cloud.state.lock().unwrap().queued.push(body);
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty());
    assert_eq!(reports.len(), 2);
    let sent = reports
        .iter()
        .filter(|r| matches!(r.notification, Notification::Sent { .. }))
        .count();
    assert_eq!(sent, 1, "{reports:?}");
    assert_eq!(
        app.cloud.published().len(),
        2,
        "short notice + one full report"
    );
    assert_eq!(take_sweeps(&app.cloud).len(), 1, "one sweep per incident");
}

#[tokio::test]
async fn a_poison_message_fails_into_the_dead_letter_queue_and_foreign_ones_are_dropped() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud
        .state
        .lock()
        .unwrap()
        .queued
        .push(("{\"not\": \"a follow-up\"}".into(), Duration::ZERO));
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(failed, ["m0"]);
    assert!(reports.is_empty());

    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let writes = app.cloud.writes().len();
    let (failed, reports) = follow(
        &app,
        sqs_event(
            &app.cloud,
            "arn:aws:sqs:us-east-1:999999999999:someone-elses",
        ),
    )
    .await;
    assert!(failed.is_empty() && reports.is_empty());
    assert_eq!(app.cloud.writes().len(), writes);
}

#[tokio::test]
async fn a_failed_hand_off_follows_through_in_the_same_invocation() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.fail("sqs:SendMessage", "ServiceUnavailable");
    let response = deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained);
    assert!(
        r.follow_through.as_deref().unwrap().starts_with("inline"),
        "{:?}",
        r.follow_through
    );
    assert!(matches!(r.investigation, Investigation::Ran(_)));
    assert_eq!(app.cloud.published().len(), 2);
}

#[tokio::test]
async fn a_redelivered_role_finding_keeps_the_cutoff_that_already_covers_it() {
    let mut app = lambda(FakeCloud::default());
    app.config.role_wide = vec!["*".into()];
    let first = deliver(&app, event("guardduty-assumed-role-finding.json")).await;
    assert_eq!(first.reports[0].status, Status::Contained);
    let cutoff = |c: &FakeCloud| {
        policy::revocation_cutoff(&c.policy("role/ci-deployer", ROLE_POLICY_NAME).unwrap()).unwrap()
    };
    let before = cutoff(&app.cloud);
    // GuardDuty re-emits the finding 6 hours later (same first-seen time, later update).
    let mut again = event("guardduty-assumed-role-finding.json");
    again["detail"]["updatedAt"] = json!((Utc::now() + TimeDelta::hours(6)).to_rfc3339());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = deliver(&app, again).await;
    assert_eq!(second.reports[0].status, Status::AlreadyContained);
    assert_eq!(
        cutoff(&app.cloud),
        before,
        "legitimate sessions revoked again"
    );
    assert_eq!(
        app.cloud
            .calls()
            .iter()
            .filter(|(a, _)| a == "iam:PutRolePolicy")
            .count(),
        1
    );
    // A finding first seen after the cutoff is not covered: the cutoff moves forward.
    let mut later = event("guardduty-assumed-role-finding.json");
    later["detail"]["service"]["eventFirstSeen"] =
        json!((Utc::now() + TimeDelta::seconds(5)).to_rfc3339());
    later["detail"]["updatedAt"] = json!((Utc::now() + TimeDelta::hours(7)).to_rfc3339());
    let third = deliver(&app, later).await;
    assert_eq!(third.reports[0].status, Status::Contained);
    assert!(cutoff(&app.cloud) > before);
}

#[tokio::test]
async fn with_a_store_duplicates_and_re_emits_are_silent_no_ops() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let responses = futures::future::join_all(
        (0..20).map(|_| deliver(&app, event("guardduty-iam-user-finding.json"))),
    )
    .await;
    assert!(responses.iter().all(|r| r.reports[0].status.is_contained()));
    assert_eq!(
        app.cloud.published().len(),
        1,
        "one short notice for 20 deliveries"
    );
    assert_eq!(
        app.cloud.state.lock().unwrap().queued.len(),
        1,
        "one follow-through"
    );
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(app.cloud.published().len(), 2);
    assert_eq!(take_sweeps(&app.cloud).len(), 1, "the sweep is queued");

    // Six hours later GuardDuty re-emits the finding with a new updatedAt.
    let mut re_emit = event("guardduty-iam-user-finding.json");
    re_emit["detail"]["updatedAt"] = json!((Utc::now() + TimeDelta::hours(6)).to_rfc3339());
    let writes = app.cloud.writes().len();
    let r = deliver(&app, re_emit).await;
    assert_eq!(r.reports[0].status, Status::AlreadyContained);
    assert!(matches!(
        r.reports[0].notification,
        Notification::Suppressed { .. }
    ));
    assert_eq!(app.cloud.writes().len(), writes);
    assert_eq!(app.cloud.published().len(), 2);
    assert!(app.cloud.state.lock().unwrap().queued.is_empty());
}

#[tokio::test]
async fn a_recorded_restore_is_left_alone_and_tampering_is_re_contained() {
    // Restore: the operator lifts the containment with `killswitch restore` before the
    // follow-through's re-check.
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let key = killswitch::incident::AccessKeyId::parse(FIXTURE_KEY).unwrap();
    let plan = killswitch::oncall::assess(&app.cloud, &app.config, &key, &reactivate("alice"))
        .await
        .unwrap();
    let restored = killswitch::oncall::restore(
        &app.cloud,
        &app.config,
        &key,
        &plan,
        "bob@example.com",
        "false positive",
        false,
    )
    .await;
    assert!(
        restored.recorded && restored.failed.is_empty(),
        "{restored:?}"
    );
    let writes = app.cloud.writes().len();
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty());
    assert_eq!(reports[0].status, Status::Restored);
    assert!(reports[0].summary.contains("bob@example.com"));
    assert_eq!(app.cloud.writes().len(), writes, "a restore was undone");
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Active)
    );

    // Tampering: the key's holder deletes the deny; no restore is recorded.
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    app.cloud.state.lock().unwrap().policies.clear();
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty());
    assert_eq!(reports[0].status, Status::Contested);
    assert!(policy::is_deny_all(
        &app.cloud.policy("user/alice", USER_POLICY_NAME).unwrap()
    ));
}

#[tokio::test]
async fn a_follow_through_that_cannot_restore_containment_fails_for_sqs_to_retry() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    app.cloud.state.lock().unwrap().policies.clear();
    app.cloud.fail("iam:PutUserPolicy", "AccessDenied");
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(failed, ["m0"]);
    assert_eq!(reports[0].status, Status::Failed);
    assert!(
        app.cloud
            .published()
            .last()
            .unwrap()
            .0
            .contains("CONTAINMENT FAILED")
    );
}

#[tokio::test]
async fn a_role_session_key_is_handed_off_like_a_user_key() {
    let app = lambda(FakeCloud::default());
    let r = deliver(&app, event("guardduty-assumed-role-finding.json")).await;
    assert_eq!(r.reports[0].access_key_id, FIXTURE_ROLE_KEY);
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty());
    assert_eq!(reports[0].status, Status::Contained);
}

#[tokio::test]
async fn a_redelivery_that_finds_containment_undone_during_its_read_back_is_never_silent() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(take_sweeps(&app.cloud).len(), 1, "the sweep is queued");
    let published = app.cloud.published().len();
    // The re-emit's first wave sees containment in place; the attacker undoes it right before
    // the read-back.
    let reads = app.cloud.state.lock().unwrap().key_reads;
    app.cloud.state.lock().unwrap().tamper_on_key_read = Some(reads + 2);
    let mut re_emit = event("guardduty-iam-user-finding.json");
    re_emit["detail"]["updatedAt"] = json!((Utc::now() + TimeDelta::hours(6)).to_rfc3339());
    let r = deliver(&app, re_emit).await;
    assert_eq!(r.reports[0].status, Status::Contested, "{:?}", r.reports[0]);
    assert!(matches!(
        r.reports[0].notification,
        Notification::Sent { .. }
    ));
    assert_eq!(app.cloud.published().len(), published + 1);
    assert!(
        app.cloud
            .published()
            .last()
            .unwrap()
            .0
            .contains("CONTESTED")
    );
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
}

#[tokio::test]
async fn a_hand_crafted_follow_up_is_refused_and_changes_nothing() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud
        .add_user_key("bob", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    // Whoever may invoke the function sends an SQS-shaped event naming the real queue, with
    // a follow-up that puts a deny on bob instead.
    let (body, delay) = app.cloud.state.lock().unwrap().queued.remove(0);
    let mut forged: Value = serde_json::from_str(&body).unwrap();
    forged["plan"]["user"] = json!("bob");
    app.cloud
        .state
        .lock()
        .unwrap()
        .queued
        .push((forged.to_string(), delay));
    let writes = app.cloud.writes().len();
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(
        failed,
        ["m0"],
        "refused messages go to the dead-letter queue and alarm"
    );
    assert!(reports.is_empty());
    assert_eq!(app.cloud.writes().len(), writes);
    assert!(app.cloud.policy("user/bob", USER_POLICY_NAME).is_none());
    // The genuine one is carried out.
    app.cloud.state.lock().unwrap().queued.push((body, delay));
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty());
    assert_eq!(reports[0].status, Status::Contained);
}

#[tokio::test]
async fn a_cutoff_the_key_holder_planted_is_never_taken_as_covering_the_incident() {
    let mut app = lambda(FakeCloud::default());
    app.config.role_wide = vec!["*".into()];
    // A well-formed revocation, written by the attacker just after the finding's first-seen
    // time (2026-11-23T03:14:55Z) and before the sessions it still uses.
    let planted = policy::revoke_older_sessions(
        chrono::DateTime::parse_from_rfc3339("2026-11-23T03:20:00Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    app.cloud
        .set_policy("role/ci-deployer", ROLE_POLICY_NAME, &planted);
    let r = deliver(&app, event("guardduty-assumed-role-finding.json")).await;
    assert_eq!(r.reports[0].status, Status::Contained);
    let cutoff = policy::revocation_cutoff(
        &app.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .unwrap(),
    )
    .unwrap();
    assert!(cutoff > Utc::now() - TimeDelta::minutes(1), "{cutoff}");
}

#[tokio::test]
async fn a_new_finding_for_a_contained_key_is_reported_not_swallowed() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(take_sweeps(&app.cloud).len(), 1, "the sweep is queued");
    let published = app.cloud.published().len();
    let mut other = event("guardduty-iam-user-finding.json");
    other["detail"]["id"] = json!("a-different-finding-for-the-same-key");
    other["detail"]["type"] = json!("UnauthorizedAccess:IAMUser/TorIPCaller");
    let r = deliver(&app, other).await;
    assert_eq!(r.reports[0].status, Status::AlreadyContained);
    assert!(matches!(
        r.reports[0].notification,
        Notification::Sent { .. }
    ));
    assert_eq!(app.cloud.published().len(), published + 1);
    assert_eq!(
        app.cloud.state.lock().unwrap().queued.len(),
        1,
        "investigated again"
    );
}

#[tokio::test]
async fn an_unsent_full_report_is_retried_by_the_queue() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let message = app.cloud.state.lock().unwrap().queued[0].clone();
    app.cloud.fail("sns:Publish", "InternalError");
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(failed, ["m0"]);
    assert!(matches!(
        reports[0].notification,
        Notification::Failed { .. }
    ));
    // SQS delivers it again; SNS is back; the claim was given back, so it goes out.
    app.cloud.state.lock().unwrap().fail.clear();
    app.cloud.state.lock().unwrap().queued.push(message);
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty());
    assert!(matches!(reports[0].notification, Notification::Sent { .. }));
}

#[tokio::test]
async fn a_restore_that_cannot_be_recorded_changes_nothing_without_force() {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let key = killswitch::incident::AccessKeyId::parse(FIXTURE_KEY).unwrap();
    let plan = killswitch::oncall::assess(&app.cloud, &app.config, &key, &reactivate("alice"))
        .await
        .unwrap();
    app.cloud.fail("dynamodb:PutItem", "AccessDeniedException");
    let refused = killswitch::oncall::restore(
        &app.cloud,
        &app.config,
        &key,
        &plan,
        "bob@example.com",
        "oops",
        false,
    )
    .await;
    assert!(!refused.recorded && refused.done.is_empty(), "{refused:?}");
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    let forced = killswitch::oncall::restore(
        &app.cloud,
        &app.config,
        &key,
        &plan,
        "bob@example.com",
        "oops",
        true,
    )
    .await;
    assert!(!forced.recorded && forced.failed.is_empty(), "{forced:?}");
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Active)
    );
}

fn reactivate(user: &str) -> killswitch::oncall::RestoreRequest {
    killswitch::oncall::RestoreRequest {
        user_name: Some(user.into()),
        reactivate_key: true,
        ..Default::default()
    }
}

/// A `CreateAccessKey` by the leaked key, made `minutes_ago` before now.
fn backdoor_key_event(minutes_ago: i64) -> killswitch::ports::ApiCall {
    let mut c = crate::support::api_call(
        "CreateAccessKey",
        Utc::now() - TimeDelta::minutes(minutes_ago),
        None,
    );
    c.read_only = Some(false);
    c.request_parameters = Some(json!({"userName": "mallory-backdoor"}));
    c.response_elements = Some(json!({"accessKey": {
        "accessKeyId": "AKIA4XMPLEBACKDOOR01", "userName": "mallory-backdoor", "status": "Active"}}));
    c
}

#[tokio::test]
async fn the_sweep_catches_contains_and_reports_a_pivot_cloudtrail_delivered_late() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key(
        "mallory-backdoor",
        "AKIA4XMPLEBACKDOOR01",
        KeyStatus::Active,
    );
    let mut app = lambda(cloud);
    app.config.follow_pivots = true;
    app.config.sweep_after = Duration::from_secs(1);
    // What Event history had delivered when the first pass ran.
    // Inside the sweep's overlap (the last 15 minutes before the first pass ended).
    let mut early = crate::support::api_call("ListUsers", Utc::now() - TimeDelta::minutes(5), None);
    early.event_id = Some("delivered-on-time".into());
    app.cloud.add_events("us-east-1", vec![early]);

    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let (failed, first) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty());
    let Investigation::Ran(a) = &first[0].investigation else {
        panic!("{:?}", first[0].investigation)
    };
    assert!(a.pivots.is_empty(), "nothing to see yet: {:?}", a.pivots);
    let schedule = first[0]
        .sweep
        .clone()
        .expect("the first report says when the sweep runs");
    assert!(schedule.scheduled, "{schedule:?}");
    let full = app.cloud.published().last().cloned().unwrap().1;
    assert!(
        full.contains("second CloudTrail search (the sweep) runs at"),
        "{full}"
    );
    assert!(!full.contains("look again in 30 minutes"), "{full}");

    // CloudTrail now delivers the backdoor key made 2 minutes before the trigger, and a call
    // the key made after containment.
    let mut after = crate::support::api_call("GetCallerIdentity", Utc::now(), None);
    after.event_source = "sts.amazonaws.com".into();
    after.source_ip = Some("198.51.100.23".into());
    app.cloud
        .add_events("us-east-1", vec![backdoor_key_event(2), after]);
    let sweeps = take_sweeps(&app.cloud);
    assert_eq!(sweeps.len(), 1);
    assert!(
        sweeps[0].1 <= Duration::from_secs(1),
        "delay {:?}",
        sweeps[0].1
    );
    queue_when_due(&app.cloud, sweeps).await;
    let (failed, finals) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty(), "{failed:?}");
    let sweep = &finals[0];
    let result = sweep.sweep_result.clone().expect("a sweep report");
    assert_eq!(result.new_events, 2, "{result:?}");
    assert_eq!(
        result.already_reported, 1,
        "read again, not reported again: {result:?}"
    );
    assert!(result.closed);
    assert_eq!(result.new_pivots, 1);
    assert_eq!(
        app.cloud
            .key_state("mallory-backdoor", "AKIA4XMPLEBACKDOOR01"),
        Some(KeyStatus::Inactive),
        "the late pivot was contained"
    );
    let (subject, body) = app.cloud.published().last().cloned().unwrap();
    assert!(subject.contains("FINAL"), "{subject}");
    assert!(body.contains("AKIA4XMPLEBACKDOOR01"), "{body}");
    assert!(
        body.contains("STILL ACTIVE: 1 call(s) after containment"),
        "{body}"
    );
    assert!(
        body.contains("198[.]51[.]100[.]23") || body.contains("198.51.100.23"),
        "{body}"
    );
    assert!(
        body.contains("GetCallerIdentity succeeds even under an explicit deny"),
        "{body}"
    );
    assert!(body.contains("The search is now CLOSED"), "{body}");
    assert!(
        app.cloud.state.lock().unwrap().queued.is_empty(),
        "a due sweep queues nothing more"
    );
}

#[tokio::test]
async fn a_sweep_with_nothing_new_says_so_and_that_none_was_seen_after_containment() {
    let mut app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.config.sweep_after = Duration::from_secs(1);
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    let sweeps = take_sweeps(&app.cloud);
    queue_when_due(&app.cloud, sweeps.clone()).await;
    let (_, finals) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(finals[0].sweep_result.as_ref().unwrap().new_events, 0);
    let body = app.cloud.published().last().cloned().unwrap().1;
    assert!(body.contains("nothing new"), "{body}");
    assert!(
        body.contains("does not prove the attacker stopped"),
        "{body}"
    );
    // The same sweep delivered again: no second final notice.
    let published = app.cloud.published().len();
    app.cloud.state.lock().unwrap().queued = sweeps;
    let (_, again) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(matches!(
        again[0].notification,
        Notification::Suppressed { .. }
    ));
    assert_eq!(app.cloud.published().len(), published);
}

#[tokio::test]
async fn a_sweep_not_due_is_queued_again_and_a_forged_one_changes_nothing() {
    let mut app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.config.sweep_after = Duration::from_secs(3000);
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    let sweeps = take_sweeps(&app.cloud);
    // SQS delays 15 minutes at most: a 50-minute sweep comes back early and is queued again.
    assert_eq!(sweeps[0].1, Duration::from_secs(900));
    app.cloud.state.lock().unwrap().queued = sweeps.clone();
    let published = app.cloud.published().len();
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty() && reports.is_empty());
    assert_eq!(take_sweeps(&app.cloud).len(), 1, "queued again");
    assert_eq!(app.cloud.published().len(), published);

    // A sweep message this function did not schedule (a different due time): refused.
    let forged = sweeps[0]
        .0
        .replace(r#""due_at":""#, r#""due_at":"2020-01-01T00:00:00Z","x":""#);
    app.cloud.state.lock().unwrap().queued = vec![(forged, Duration::ZERO)];
    let lookups = app.cloud.state.lock().unwrap().lookups.len();
    let (failed, reports) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert_eq!(failed.len(), 1);
    assert!(reports.is_empty());
    assert_eq!(app.cloud.state.lock().unwrap().lookups.len(), lookups);
    assert_eq!(app.cloud.published().len(), published);
}

#[tokio::test]
async fn a_first_pass_with_gaps_never_lets_the_sweep_say_closed() {
    let mut app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.config.sweep_after = Duration::from_secs(1);
    app.cloud.state.lock().unwrap().enabled_regions =
        Some(vec!["us-east-1".into(), "eu-west-1".into()]);
    // The first pass cannot read eu-west-1; by the sweep it can.
    app.cloud
        .state
        .lock()
        .unwrap()
        .lookup_faults
        .insert("eu-west-1".into(), vec!["AccessDeniedException".into()]);
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    let sweeps = take_sweeps(&app.cloud);
    queue_when_due(&app.cloud, sweeps).await;
    let (_, finals) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    let result = finals[0].sweep_result.clone().unwrap();
    assert!(!result.closed, "{result:?}");
    let (subject, body) = app.cloud.published().last().cloned().unwrap();
    assert!(subject.contains("search NOT closed"), "{subject}");
    assert!(
        body.contains("the first search did not read eu-west-1"),
        "{body}"
    );
}

#[tokio::test]
async fn the_sweep_re_contains_what_was_undone_since_and_says_so_at_once() {
    let mut app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.config.sweep_after = Duration::from_secs(1);
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    let sweeps = take_sweeps(&app.cloud);
    // Minutes later the deny is gone (no restore recorded).
    app.cloud
        .state
        .lock()
        .unwrap()
        .policies
        .remove(&("user/alice".to_string(), USER_POLICY_NAME.to_string()));
    queue_when_due(&app.cloud, sweeps).await;
    let (failed, finals) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(
        failed.is_empty(),
        "re-applied and holding: nothing to retry"
    );
    assert_eq!(finals[0].status, Status::Contested);
    assert!(app.cloud.policy("user/alice", USER_POLICY_NAME).is_some());
    assert!(
        finals[0]
            .sweep_result
            .as_ref()
            .unwrap()
            .containment
            .contains("UNDONE"),
        "{:?}",
        finals[0].sweep_result
    );

    // A principal protected since the first report is not contained again by the sweep.
    let mut app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.config.sweep_after = Duration::from_secs(1);
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    let sweeps = take_sweeps(&app.cloud);
    app.cloud
        .state
        .lock()
        .unwrap()
        .policies
        .remove(&("user/alice".to_string(), USER_POLICY_NAME.to_string()));
    app.config.protected = vec!["alice".into()];
    queue_when_due(&app.cloud, sweeps).await;
    follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(app.cloud.policy("user/alice", USER_POLICY_NAME).is_none());
}

#[tokio::test]
async fn the_sweep_sets_notified_on_a_finding_security_hub_imported_late() {
    const FINDING: &str = "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0/finding/5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11";
    let mut app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.config.sweep_after = Duration::from_secs(1);
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    let (_, first) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    let step = |r: &killswitch::report::Report| {
        r.steps
            .iter()
            .find(|s| s.step == killswitch::playbook::Step::UpdateFinding)
            .map(|s| s.outcome.clone())
    };
    // GuardDuty has not sent it to Security Hub yet.
    assert_eq!(step(&first[0]), Some(Outcome::NotFound));
    app.cloud
        .state
        .lock()
        .unwrap()
        .findings
        .insert(FINDING.into(), ("NEW".into(), Vec::new()));
    let sweeps = take_sweeps(&app.cloud);
    queue_when_due(&app.cloud, sweeps).await;
    let (failed, finals) = follow(&app, sqs_event(&app.cloud, FOLLOW_UP_QUEUE_ARN)).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        step(&finals[0]),
        Some(Outcome::Done),
        "{:?}",
        finals[0].steps
    );
    assert_eq!(
        app.cloud.state.lock().unwrap().findings[FINDING].0,
        "NOTIFIED"
    );
}
