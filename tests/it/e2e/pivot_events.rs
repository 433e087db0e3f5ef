//! Pivot events on the local AWS: it emits `AWS API Call via CloudTrail` events for the IAM and
//! STS calls it serves (`GET /_killswitch/eventbridge/events`, after
//! `KILLSWITCH_EVENTBRIDGE_DELAY_SECONDS`); the test forwards them to the function as EventBridge
//! would and measures event delivered -> pivot contained.

use std::time::{Duration, Instant, SystemTime};

use killswitch::config::Config;
use killswitch::handler::App;
use killswitch::playbook::tamper::{Outcome, on_payload};
use killswitch::report::Status;

use super::*;

/// Events the local AWS has delivered so far after `seq`, whose call `key` signed and named
/// `name`: the first one, with its sequence number.
fn delivered_call(after: u64, key: &str, name: &str) -> Option<(u64, Value)> {
    let page = control_get(&format!("/_killswitch/eventbridge/events?after={after}"));
    page["events"].as_array()?.iter().find_map(|e| {
        let event = &e["event"];
        (event["detail"]["eventName"] == name
            && event["detail"]["userIdentity"]["accessKeyId"] == key)
            .then(|| (e["seq"].as_u64().unwrap_or_default(), event.clone()))
    })
}

/// Polls the local AWS until the event is delivered (its EventBridge delay is seconds).
fn wait_for_call(key: &str, name: &str) -> (Instant, Value) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((_, event)) = delivered_call(0, key, name) {
            return (Instant::now(), event);
        }
        assert!(
            Instant::now() < until,
            "the local AWS delivered no {name} event signed by {key}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_key_minted_by_a_contained_holder_is_contained_from_its_cloudtrail_event() {
    let w = World::new().await;
    let (_, _, table) = follow_up_queue_and_table(&w).await;
    let holder = unique("holder");
    let bob = unique("bob");
    let leaked = create_user_with_key(&holder, &["iam:*"]).await;
    create_user_with_key(&bob, &["s3:ListAllMyBuckets"]).await;
    let first_seen = chrono::Utc::now() - chrono::TimeDelta::seconds(60);
    // The holder mints a key on another user; GuardDuty's finding (first seen a minute earlier)
    // arrives after it, and the CloudTrail event of the mint after the containment.
    let minted = aws_sdk_iam::Client::new(&sdk(&leaked).await)
        .create_access_key()
        .user_name(&bob)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap()
        .access_key_id;
    let mut finding = unraised_fixture("guardduty-iam-user-finding.json", &leaked.id, &holder);
    finding["detail"]["service"]["eventFirstSeen"] = json!(first_seen.to_rfc3339());
    raise(&finding);
    let table_env = [("KILLSWITCH_INCIDENT_TABLE", table.clone())];
    let (code, report, stderr) = w.respond_with(&finding, &[], &table_env);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");

    let (delivered, event) = wait_for_call(&leaked.id, "CreateAccessKey");
    let config = Config::from_lookup(|k| match k {
        "KILLSWITCH_TOPIC_ARN" => Some(w.topic_arn.clone()),
        "KILLSWITCH_INCIDENT_TABLE" => Some(table.clone()),
        "KILLSWITCH_FOLLOW_PIVOTS" => Some("true".into()),
        "KILLSWITCH_VERIFY_DELAY_SECONDS" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    let app = App {
        cloud: AwsClients::for_config(&sdk(&w.function_key).await, &config),
        config,
        responder: None,
    };
    let admin_iam = aws_sdk_iam::Client::new(&sdk(&admin()).await);
    let deadline = SystemTime::now() + Duration::from_secs(60);
    let respond = on_payload(&app.cloud, &app.config, None, &event, deadline);
    let watch = async {
        loop {
            let keys = admin_iam
                .list_access_keys()
                .user_name(&bob)
                .send()
                .await
                .unwrap();
            let inactive = keys.access_key_metadata().iter().any(|k| {
                k.access_key_id() == Some(minted.as_str())
                    && k.status() == Some(&StatusType::Inactive)
            });
            if inactive {
                return delivered.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (answer, contained_after) = tokio::join!(respond, watch);
    let answer = answer
        .unwrap_or_else(|e| panic!("{e}: {event}"))
        .expect("a CloudTrail event");
    eprintln!(
        "pivot event delivered -> minted key Inactive: {} ms",
        contained_after.as_millis()
    );
    assert_eq!(answer.incident_key.as_deref(), Some(leaked.id.as_str()));
    assert_eq!(answer.outcome, Outcome::Holds, "{answer:?}");
    assert_eq!(
        answer.pivots[0].containment.as_ref().map(|c| c.status),
        Some(Status::Contained),
        "{answer:?}"
    );
    assert_eq!(
        w.key_status(&bob, &minted).await,
        Some(StatusType::Inactive)
    );
    // Within one event, well inside the propagation window's few seconds.
    assert!(
        contained_after < Duration::from_secs(2),
        "{contained_after:?}"
    );
}
