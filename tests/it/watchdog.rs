//! The watchdog and the canary over the recording fake: an overdue follow-through or sweep is
//! paged once and only when it is overdue; the canary writes on its own user alone, reads it
//! back, and fails loudly.

use std::time::{Duration, SystemTime};

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, TimeDelta, Utc};
use killswitch::error::Error;
use killswitch::handler::{App, handle_follow_ups};
use killswitch::playbook::canary::{self, POLICY_NAME};
use killswitch::playbook::jobs;
use killswitch::playbook::watchdog::{self, Due};
use killswitch::trigger::Job;
use serde_json::{Value, json};

use crate::support::{
    FIXTURE_KEY, FOLLOW_UP_QUEUE_ARN, FakeCloud, config, deliver, event, lambda, restore_alice,
};

/// What Lambda's event source mapping hands the function: every message queued so far.
async fn deliver_queued(app: &App<FakeCloud>) {
    let queued = std::mem::take(&mut app.cloud.state.lock().unwrap().queued);
    let records: Vec<Value> = queued
        .iter()
        .enumerate()
        .map(|(i, (body, _))| {
            json!({"messageId": format!("m{i}"), "receiptHandle": "r", "body": body,
                   "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                   "eventSource": "aws:sqs", "eventSourceARN": FOLLOW_UP_QUEUE_ARN,
                   "awsRegion": "us-east-1"})
        })
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
    let (response, _) = handle_follow_ups(app, event, SystemTime::now() + Duration::from_secs(120))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
}

/// A contained key whose follow-through was queued and never delivered.
async fn contained_and_queued() -> App<FakeCloud> {
    let app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(app.cloud.state.lock().unwrap().queued.len(), 1);
    app
}

fn later(minutes: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::minutes(minutes)
}

fn pages(cloud: &FakeCloud) -> Vec<(String, String)> {
    cloud
        .state
        .lock()
        .unwrap()
        .published
        .iter()
        .filter(|(subject, _)| subject.contains("OVERDUE"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_overdue_follow_through_is_paged_once_with_the_command_to_run_it() {
    let app = contained_and_queued().await;

    let watch = watchdog::run(&app.cloud, &app.config, later(60))
        .await
        .unwrap();

    assert_eq!(watch.overdue.len(), 1, "{watch:?}");
    let item = &watch.overdue[0];
    assert_eq!((item.what, item.paged), (Due::FollowThrough, true));
    let pages = pages(&app.cloud);
    assert_eq!(pages.len(), 1);
    let (subject, body) = &pages[0];
    assert!(
        subject.starts_with(&format!(
            "[killswitch] OVERDUE follow-through: {FIXTURE_KEY} (IAM user alice)"
        )),
        "{subject}"
    );
    assert!(
        body.contains(&format!(
            "killswitch respond --access-key-id {FIXTURE_KEY} --account-id 123456789012 --reason \"watchdog: follow-through overdue\""
        )),
        "{body}"
    );
    assert!(body.contains("NOT read back"), "{body}");

    // The next run (or anyone who sends the payload again) pages nothing new.
    let again = watchdog::run(&app.cloud, &app.config, later(75))
        .await
        .unwrap();
    assert_eq!(again.overdue.len(), 1);
    assert!(!again.overdue[0].paged);
    assert_eq!(self::pages(&app.cloud).len(), 1);
}

#[tokio::test]
async fn a_follow_through_within_its_grace_is_not_paged() {
    let app = contained_and_queued().await;

    let watch = watchdog::run(&app.cloud, &app.config, later(29))
        .await
        .unwrap();

    assert!(watch.overdue.is_empty(), "{watch:?}");
    assert!(pages(&app.cloud).is_empty());
    // Long past the look-back, it is history, not a page.
    let watch = watchdog::run(&app.cloud, &app.config, later(8 * 24 * 60))
        .await
        .unwrap();
    assert!(watch.overdue.is_empty(), "{watch:?}");
}

#[tokio::test]
async fn a_follow_through_that_ran_is_not_paged_but_the_sweep_it_queued_is_once_overdue() {
    let app = contained_and_queued().await;
    deliver_queued(&app).await;
    // The follow-through queued the sweep, 15 minutes out.
    assert_eq!(app.cloud.state.lock().unwrap().queued.len(), 1);

    let early = watchdog::run(&app.cloud, &app.config, later(40))
        .await
        .unwrap();
    assert!(early.overdue.is_empty(), "{early:?}");

    let watch = watchdog::run(&app.cloud, &app.config, later(60))
        .await
        .unwrap();
    let what: Vec<Due> = watch.overdue.iter().map(|o| o.what).collect();
    assert_eq!(what, [Due::Sweep], "{watch:?}");
    let pages = pages(&app.cloud);
    assert_eq!(pages.len(), 1);
    assert!(
        pages[0].0.starts_with("[killswitch] OVERDUE sweep:"),
        "{}",
        pages[0].0
    );
    assert!(
        pages[0].1.contains("search is NOT closed"),
        "{}",
        pages[0].1
    );
}

#[tokio::test]
async fn an_incident_followed_through_and_swept_is_not_paged() {
    let mut app = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.config.sweep_after = Duration::from_secs(1);
    deliver(&app, event("guardduty-iam-user-finding.json")).await;
    deliver_queued(&app).await;
    // The sweep, due within the second: carried out now.
    deliver_queued(&app).await;
    assert!(
        app.cloud
            .state
            .lock()
            .unwrap()
            .published
            .iter()
            .any(|(s, _)| s.contains("FINAL"))
    );

    let watch = watchdog::run(&app.cloud, &app.config, later(120))
        .await
        .unwrap();

    assert_eq!(watch.records, 1);
    assert!(watch.overdue.is_empty(), "{watch:?}");
    assert!(pages(&app.cloud).is_empty());
}

#[tokio::test]
async fn a_restored_key_is_not_paged() {
    let app = contained_and_queued().await;
    restore_alice(&app, &app.config, "oncall@example.com", "false positive").await;

    let watch = watchdog::run(&app.cloud, &app.config, later(60))
        .await
        .unwrap();

    assert!(watch.overdue.is_empty(), "{watch:?}");
}

#[tokio::test]
async fn a_page_that_could_not_be_sent_is_sent_by_the_next_run() {
    let app = contained_and_queued().await;
    app.cloud.fail("sns:Publish", "Throttling");

    let failed = watchdog::run(&app.cloud, &app.config, later(60)).await;

    assert!(matches!(failed, Err(Error::NotifyFailed(_))), "{failed:?}");
    app.cloud.state.lock().unwrap().fail.clear();
    let watch = watchdog::run(&app.cloud, &app.config, later(61))
        .await
        .unwrap();
    assert!(watch.overdue[0].paged);
    assert_eq!(pages(&app.cloud).len(), 1);
}

#[tokio::test]
async fn an_unreadable_table_is_paged_and_an_error() {
    let app = contained_and_queued().await;
    app.cloud.fail("dynamodb:Scan", "AccessDeniedException");

    let failed = watchdog::run(&app.cloud, &app.config, later(60)).await;

    assert!(failed.is_err());
    let published = app.cloud.state.lock().unwrap().published.clone();
    assert!(
        published
            .iter()
            .any(|(s, b)| s.contains("WATCHDOG could not read") && b.contains("AccessDenied")),
        "{published:?}"
    );
}

fn with_canary(cloud: FakeCloud) -> App<FakeCloud> {
    let mut app = lambda(cloud);
    app.config.jobs.canary_user = Some("ks-canary".into());
    app
}

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:ks-fn";

#[tokio::test]
async fn the_canary_writes_on_its_own_user_alone_reads_it_back_and_beats() {
    let app = with_canary(FakeCloud::default());

    let out = jobs::run(
        &app.cloud,
        &app.config,
        Job::Canary,
        FUNCTION_ARN,
        Utc::now(),
    )
    .await
    .unwrap();

    assert_eq!(out["canary"]["user"], "ks-canary", "{out}");
    assert_eq!(
        app.cloud.writes(),
        [(
            "iam:PutUserPolicy".to_owned(),
            format!("user/ks-canary {POLICY_NAME}")
        )]
    );
    let calls: Vec<String> = app.cloud.calls().into_iter().map(|(a, _)| a).collect();
    assert_eq!(calls, ["iam:PutUserPolicy", "iam:GetUserPolicy"]);
    let written = app.cloud.policy("user/ks-canary", POLICY_NAME).unwrap();
    let doc: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(doc["Statement"][0]["Effect"], "Deny");
    assert_eq!(doc["Statement"][0]["Action"], "*");
    // The heartbeat: the metric the alarm reads, for this function, 1.
    let beat: Value = serde_json::from_str(out["canary"]["heartbeat"].as_str().unwrap()).unwrap();
    assert_eq!(beat["CanaryPassed"], 1);
    assert_eq!(beat["FunctionName"], "ks-fn");
    assert_eq!(
        beat["_aws"]["CloudWatchMetrics"][0],
        json!({"Namespace": "Killswitch", "Dimensions": [["FunctionName"]],
               "Metrics": [{"Name": "CanaryPassed", "Unit": "Count"}]})
    );
    // No notice unless asked: an hourly email is noise.
    assert!(app.cloud.state.lock().unwrap().published.is_empty());
}

#[tokio::test]
async fn a_canary_whose_write_is_refused_pages_at_once_and_fails() {
    let app = with_canary(FakeCloud::default());
    app.cloud.fail("iam:PutUserPolicy", "AccessDenied");

    let failed = canary::run(&app.cloud, &app.config, "ks-fn", Utc::now()).await;

    let Err(Error::ContainmentFailed(why)) = failed else {
        panic!("{failed:?}")
    };
    assert!(
        why.contains("iam:PutUserPolicy") && why.contains("AccessDenied"),
        "{why}"
    );
    let published = app.cloud.state.lock().unwrap().published.clone();
    assert_eq!(published.len(), 1);
    assert!(
        published[0].0.starts_with("[killswitch] CANARY FAILED"),
        "{published:?}"
    );
    assert!(published[0].1.contains("ks-canary") && published[0].1.contains("AccessDenied"));
}

#[tokio::test]
async fn a_canary_that_cannot_read_its_write_back_fails() {
    let app = with_canary(FakeCloud::default());
    app.cloud.fail("iam:GetUserPolicy", "Throttling");

    let failed = canary::run(&app.cloud, &app.config, "ks-fn", Utc::now()).await;

    assert!(
        matches!(failed, Err(Error::ContainmentFailed(_))),
        "{failed:?}"
    );
    assert_eq!(app.cloud.state.lock().unwrap().published.len(), 1);
}

#[tokio::test]
async fn a_dry_run_switched_on_fails_the_canary_without_a_write() {
    let mut app = with_canary(FakeCloud::default());
    app.config.dry_run = true;

    let failed = canary::run(&app.cloud, &app.config, "ks-fn", Utc::now()).await;

    let Err(Error::ContainmentFailed(why)) = failed else {
        panic!("{failed:?}")
    };
    assert!(why.contains("KILLSWITCH_DRY_RUN"), "{why}");
    assert!(app.cloud.writes().is_empty());
    assert_eq!(app.cloud.state.lock().unwrap().published.len(), 1);
}

#[tokio::test]
async fn the_canary_notice_is_sent_only_when_asked() {
    let mut app = with_canary(FakeCloud::default());
    app.config.jobs.canary_notice = true;

    let run = canary::run(&app.cloud, &app.config, "ks-fn", Utc::now())
        .await
        .unwrap();

    assert!(run.notice);
    let published = app.cloud.state.lock().unwrap().published.clone();
    assert_eq!(published.len(), 1);
    assert!(
        published[0].0.starts_with("[killswitch] HEARTBEAT ok"),
        "{published:?}"
    );
}

#[tokio::test]
async fn without_a_canary_user_or_a_table_the_jobs_refuse() {
    let app = App {
        cloud: FakeCloud::default(),
        config: config(),
        responder: None,
    };
    for job in Job::ALL {
        let refused = jobs::run(&app.cloud, &app.config, job, FUNCTION_ARN, Utc::now()).await;
        assert!(
            matches!(refused, Err(Error::Config { .. })),
            "{job:?}: {refused:?}"
        );
    }
    assert!(app.cloud.calls().is_empty());
}

#[test]
fn the_canary_user_must_be_a_canary() {
    let with = |user: &str| {
        killswitch::config::Config::from_lookup(|k| match k {
            "KILLSWITCH_TOPIC_ARN" => Some("arn:aws:sns:us-east-1:123456789012:t".into()),
            "KILLSWITCH_CANARY_USER" => Some(user.into()),
            _ => None,
        })
    };
    assert!(with("prod-killswitch-canary").is_ok());
    for bad in ["alice", "ci-deployer", "bad name-canary"] {
        assert!(
            matches!(
                with(bad),
                Err(Error::Config {
                    name: "KILLSWITCH_CANARY_USER",
                    ..
                })
            ),
            "{bad}"
        );
    }
}
