//! Floods cannot starve real containment: a payload names at most ten keys, the trigger and the
//! manual function each refuse the other's kind before any call, and REJECTED / KEY NOT FOUND
//! pages are limited per window, the rest counted and summarised.

use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use killswitch::config::Config;
use killswitch::config::accepts::Accepts;
use killswitch::error::Error;
use killswitch::handler::{App, Phases, handle};
use killswitch::playbook::notify::flood::{self, Admission, Limited};
use killswitch::report::{Notification, Status};
use serde_json::{Value, json};

use crate::support::{ACCOUNT, FIXTURE_KEY, FakeCloud, deliver, deliver_unraised, event, lambda};

/// A distinct, well-formed key ID IAM does not know.
fn key(n: usize) -> String {
    format!("AKIAFLOOD{n:011}")
}

fn manual(key: &str, n: usize) -> Value {
    json!({"access_key_id": key, "reason": "flood test", "requested_by": "oncall@example.com",
           "request_id": format!("flood-{n}")})
}

/// A finding GuardDuty never raised, about `key`: REJECTED as forged.
fn forged(key: &str) -> Value {
    let mut e = event("guardduty-iam-user-finding.json");
    e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!(key);
    e
}

async fn invoke(
    a: &App<FakeCloud>,
    payload: Value,
) -> Result<killswitch::handler::Response, Error> {
    handle(
        a,
        payload,
        std::time::SystemTime::now() + Duration::from_secs(120),
        false,
        Phases::HandOff,
    )
    .await
}

/// Deliveries of one test must fall in one 10-minute window: wait out the last 30 s of one.
async fn clear_of_the_window_edge() {
    let into = Utc::now().timestamp().rem_euclid(flood::WINDOW_SECONDS);
    if into > flood::WINDOW_SECONDS - 30 {
        let left = u64::try_from(flood::WINDOW_SECONDS - into + 1).unwrap();
        tokio::time::sleep(Duration::from_secs(left)).await;
    }
}

fn held_back(n: &Notification) -> bool {
    matches!(n, Notification::Suppressed { reason } if reason == flood::HELD_BACK)
}

// ---- at most ten keys per event ------------------------------------------------------------

#[tokio::test]
async fn a_health_event_naming_eleven_keys_is_refused_before_any_call() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let mut e = event("health-exposed-new-shape.json");
    let keys: Vec<String> = (0..11).map(key).collect();
    e["detail"]["affectedEntities"] = json!(
        keys.iter()
            .map(|k| json!({"entityValue": k}))
            .collect::<Vec<_>>()
    );
    e["resources"] = json!(keys);
    let err = invoke(&a, e.clone()).await.unwrap_err();
    assert_eq!(err.kind(), "KillSwitch.BadEvent", "{err}");
    assert!(err.to_string().contains("at most 10"), "{err}");
    assert!(a.cloud.calls().is_empty(), "{:?}", a.cloud.calls());
    // Ten are acted on: one incident each (the metadata's key is one of the eleven above).
    let ten: Vec<String> = keys[..9].to_vec();
    e["detail"]["affectedEntities"] = json!(
        ten.iter()
            .map(|k| json!({"entityValue": k}))
            .collect::<Vec<_>>()
    );
    e["resources"] = json!(ten);
    match killswitch::trigger::parse(e).unwrap() {
        killswitch::incident::Received::Incidents(list) => assert_eq!(list.len(), 10),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_security_hub_event_naming_eleven_keys_is_refused_before_any_call() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let mut e = event("securityhub-guardduty-user-finding.json");
    let resource = e["detail"]["findings"][0]["Resources"][0].clone();
    let resources: Vec<Value> = (0..11)
        .map(|n| {
            let mut r = resource.clone();
            r["Id"] = json!(format!("AWS::IAM::AccessKey:{}", key(n)));
            r
        })
        .collect();
    e["detail"]["findings"][0]["Resources"] = json!(resources);
    let err = invoke(&a, e).await.unwrap_err();
    assert_eq!(err.kind(), "KillSwitch.BadEvent", "{err}");
    assert!(err.to_string().contains("11 access keys"), "{err}");
    assert!(a.cloud.calls().is_empty(), "{:?}", a.cloud.calls());
}

// ---- each function answers its own kind --------------------------------------------------------

#[tokio::test]
async fn the_trigger_function_refuses_manual_requests_before_any_call() {
    let mut a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.accepts = Accepts::Findings;
    let err = invoke(&a, manual(FIXTURE_KEY, 1)).await.unwrap_err();
    assert_eq!(err.kind(), "KillSwitch.BadEvent", "{err}");
    assert!(err.to_string().contains("manual function"), "{err}");
    assert!(a.cloud.calls().is_empty(), "{:?}", a.cloud.calls());
    let response = deliver(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Contained);
}

#[tokio::test]
async fn the_manual_function_refuses_findings_and_samples_before_any_call() {
    let mut a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.accepts = Accepts::Manual;
    for e in [
        event("guardduty-iam-user-finding.json"),
        event("guardduty-sample-finding.json"),
        event("health-exposed-new-shape.json"),
    ] {
        a.cloud.raise(&e);
        let err = invoke(&a, e).await.unwrap_err();
        assert_eq!(err.kind(), "KillSwitch.BadEvent", "{err}");
        assert!(err.to_string().contains("trigger function"), "{err}");
    }
    assert!(a.cloud.calls().is_empty(), "{:?}", a.cloud.calls());
    let response = invoke(&a, manual(FIXTURE_KEY, 1)).await.unwrap();
    assert_eq!(response.reports[0].status, Status::Contained);
}

#[test]
fn accepts_is_findings_manual_or_all_and_all_by_default() {
    let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:killswitch");
    let with = |v: Option<&str>| {
        Config::from_lookup(|k| match k {
            "KILLSWITCH_TOPIC_ARN" => Some(topic.clone()),
            "KILLSWITCH_ACCEPTS" => v.map(str::to_owned),
            _ => None,
        })
    };
    assert_eq!(with(None).unwrap().accepts, Accepts::All);
    assert_eq!(with(Some("findings")).unwrap().accepts, Accepts::Findings);
    assert_eq!(with(Some("manual")).unwrap().accepts, Accepts::Manual);
    match with(Some("everything")) {
        Err(Error::Config { name, .. }) => assert_eq!(name, "KILLSWITCH_ACCEPTS"),
        other => panic!("{other:?}"),
    }
}

// ---- REJECTED and KEY NOT FOUND pages per window ------------------------------------------

#[tokio::test]
async fn the_sixth_rejected_in_a_window_is_held_back_and_the_summary_counts_it() {
    clear_of_the_window_edge().await;
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let t0 = Utc::now();
    // Five keys of another account page REJECTED; then two forged findings and one more
    // foreign key are held back.
    for n in 0..8 {
        a.cloud
            .state
            .lock()
            .unwrap()
            .key_account
            .insert(key(n), "999999999999".into());
    }
    let mut reports = Vec::new();
    for n in 0..5 {
        reports.push(invoke(&a, manual(&key(n), n)).await.unwrap());
    }
    reports.push(deliver_unraised(&a, forged(&key(5))).await);
    reports.push(deliver_unraised(&a, forged(&key(6))).await);
    reports.push(invoke(&a, manual(&key(7), 7)).await.unwrap());
    let reports: Vec<_> = reports.into_iter().map(|r| r.reports[0].clone()).collect();
    assert!(
        reports.iter().all(|r| r.status == Status::Rejected),
        "{reports:?}"
    );
    for r in &reports[..5] {
        assert!(
            matches!(r.notification, Notification::Sent { .. }),
            "{:?}",
            r.notification
        );
    }
    for r in &reports[5..] {
        assert!(held_back(&r.notification), "{:?}", r.notification);
    }
    assert_eq!(a.cloud.published().len(), 5, "{:?}", a.cloud.published());
    // CONTAINED is never held back, whatever the window holds.
    let real = deliver(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(real.reports[0].status, Status::Contained);
    assert!(matches!(
        real.reports[0].notification,
        Notification::Sent { .. }
    ));
    let before = a.cloud.published().len();
    // Once the window has closed, one summary: how many, how many looked forged, which keys.
    let later = t0 + TimeDelta::minutes(11);
    let sent =
        flood::publish_held_back(&a.cloud, &Limited::ALL, t0 - TimeDelta::minutes(10), later).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let s = &sent[0];
    assert_eq!(
        (s.kind, s.held_back, s.looked_forged, s.sent),
        (Limited::Rejected, 3, 2, true)
    );
    assert_eq!(s.last_keys, vec![key(5), key(6), key(7)]);
    let published = a.cloud.published();
    assert_eq!(published.len(), before + 1);
    let (subject, body) = published.last().unwrap();
    assert!(
        subject.contains("3 REJECTED notices held back"),
        "{subject}"
    );
    assert!(
        body.contains("2 of them LOOKED FORGED") && body.contains(&key(7)),
        "{body}"
    );
    // Sent once, whoever asks again.
    assert!(
        flood::publish_held_back(&a.cloud, &Limited::ALL, t0, later)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_sixth_key_not_found_in_a_window_is_held_back_without_a_follow_through() {
    clear_of_the_window_edge().await;
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let mut statuses = Vec::new();
    for n in 0..6 {
        let r = invoke(&a, manual(&key(100 + n), n)).await.unwrap();
        statuses.push((r.reports[0].status, r.reports[0].notification.clone()));
    }
    assert!(
        statuses.iter().all(|(s, _)| *s == Status::KeyNotFound),
        "{statuses:?}"
    );
    assert!(
        statuses[..5].iter().all(|(_, n)| !held_back(n)),
        "{statuses:?}"
    );
    assert!(held_back(&statuses[5].1), "{statuses:?}");
    // The five paged ones follow through (their full notice); the held-back one costs nothing more.
    assert_eq!(a.cloud.state.lock().unwrap().queued.len(), 5);
}

#[tokio::test]
async fn the_next_allowed_notice_sends_the_summary_of_the_window_before() {
    let cloud = FakeCloud::default();
    let t = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
    let admit = |kind, secs, n: usize, forged| {
        let cloud = cloud.clone();
        async move { flood::admit(&cloud, kind, t + TimeDelta::seconds(secs), &key(n), forged).await }
    };
    for n in 0..5 {
        assert_eq!(
            admit(Limited::Rejected, n as i64, n, false).await,
            Admission::Send
        );
    }
    assert_eq!(
        admit(Limited::Rejected, 10, 5, true).await,
        Admission::HeldBack
    );
    // Each kind has its own allowance.
    assert_eq!(
        admit(Limited::KeyNotFound, 11, 6, false).await,
        Admission::Send
    );
    // Twenty more at once are each counted exactly once: with a round trip on every call, all
    // twenty read the same tally before any writes it.
    cloud.state.lock().unwrap().latency = Some(Duration::from_millis(2));
    let many =
        futures::future::join_all((0..20).map(|n| admit(Limited::Rejected, 12, 200 + n, false)))
            .await;
    assert!(many.iter().all(|a| *a == Admission::HeldBack));
    // The next window lets notices out again, and its first sends the last window's summary;
    // a summary that could not be published is sent again later, with the same count.
    let next = t + TimeDelta::seconds(flood::WINDOW_SECONDS + 61);
    assert_eq!(
        admit(Limited::Rejected, flood::WINDOW_SECONDS + 61, 7, false).await,
        Admission::Send
    );
    cloud.fail("sns:Publish", "Throttling");
    let failed = flood::after_allowed(&cloud, Limited::Rejected, next).await;
    assert_eq!(failed.len(), 1);
    assert!(!failed[0].sent);
    cloud.state.lock().unwrap().fail.clear();
    let sent = flood::after_allowed(&cloud, Limited::Rejected, next).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].held_back, sent[0].looked_forged, sent[0].sent),
        (21, 1, true)
    );
    assert_eq!(sent[0].window_start, t);
    let (subject, _) = cloud.published().pop().unwrap();
    assert_eq!(
        subject,
        "[killswitch] 21 REJECTED notices held back (10:00 to 10:10 UTC)"
    );
    assert!(
        flood::after_allowed(&cloud, Limited::Rejected, next)
            .await
            .is_empty()
    );
    // KEY NOT FOUND held nothing back: no summary for it.
    assert!(
        flood::after_allowed(&cloud, Limited::KeyNotFound, next)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_watchdog_sends_the_summary_a_window_left_behind() {
    // No notice of the kind comes after the flood: the watchdog's run sums the window up.
    clear_of_the_window_edge().await;
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let t0 = Utc::now();
    for n in 0..7 {
        a.cloud
            .state
            .lock()
            .unwrap()
            .key_account
            .insert(key(n), "999999999999".into());
        invoke(&a, manual(&key(n), n)).await.unwrap();
    }
    assert_eq!(a.cloud.published().len(), 5, "{:?}", a.cloud.published());
    let watch =
        killswitch::playbook::watchdog::run(&a.cloud, &a.config, t0 + TimeDelta::minutes(11))
            .await
            .unwrap();
    assert!(
        watch
            .held_back
            .as_deref()
            .is_some_and(|h| h.starts_with("2 Rejected")),
        "{watch:?}"
    );
    let (subject, _) = a.cloud.published().pop().unwrap();
    assert!(
        subject.contains("2 REJECTED notices held back"),
        "{subject}"
    );
}
