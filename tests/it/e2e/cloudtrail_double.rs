//! The local AWS's CloudTrail LookupEvents double behaves as Event history does: pages, newest
//! first, validation, throttling.

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};

use super::*;

/// A CloudTrail client of `region`, as the local AWS's admin, without the SDK's retries.
async fn cloudtrail_in(region: &'static str) -> aws_sdk_cloudtrail::Client {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            admin().id,
            admin().secret,
            None,
            None,
            "e2e",
        ))
        .region(region)
        .endpoint_url(endpoint())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    aws_sdk_cloudtrail::Client::new(&sdk)
}

/// Seeds `Call0` (now) .. `Call119` (119 s ago), signed by `key` in `region`.
fn seed_120_events(key: &str, region: &str) {
    let now = chrono::Utc::now();
    let events: Vec<Value> = (0..120)
        .map(|i| {
            json!({"eventTime": (now - chrono::TimeDelta::seconds(i)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                   "eventName": format!("Call{i}"), "eventSource": "ec2.amazonaws.com", "awsRegion": region,
                   "userIdentity": {"type": "IAMUser", "accessKeyId": key, "userName": "x"}, "readOnly": true})
        })
        .collect();
    assert_eq!(
        control("/_killswitch/cloudtrail/events", &json!({"events": events}))["added"],
        120
    );
}

/// Every event matching `attr`, 50 a page, paced under the limit: (names in order, pages).
async fn page_through(
    ct: &aws_sdk_cloudtrail::Client,
    attr: &LookupAttribute,
) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(550)).await;
        let page = ct
            .lookup_events()
            .lookup_attributes(attr.clone())
            .max_results(50)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.events().len() <= 50);
        names.extend(
            page.events()
                .iter()
                .map(|e| e.event_name().unwrap().to_owned()),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return (names, pages);
        }
    }
}

/// Two lookup attributes and more than 50 results are refused; a burst of 6 calls is throttled.
async fn validates_and_throttles(ct: &aws_sdk_cloudtrail::Client, attr: &LookupAttribute) {
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let code = |e: &aws_sdk_cloudtrail::error::SdkError<_, _>| {
        aws_sdk_cloudtrail::error::ProvideErrorMetadata::code(e).map(str::to_owned)
    };
    let two = ct
        .lookup_events()
        .lookup_attributes(attr.clone())
        .lookup_attributes(attr.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&two).as_deref(),
        Some("InvalidLookupAttributesException")
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let big = ct.lookup_events().max_results(51).send().await.unwrap_err();
    assert_eq!(code(&big).as_deref(), Some("InvalidMaxResultsException"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut throttled = 0;
    for _ in 0..6 {
        if let Err(e) = ct
            .lookup_events()
            .lookup_attributes(attr.clone())
            .max_results(1)
            .send()
            .await
        {
            assert_eq!(code(&e).as_deref(), Some("ThrottlingException"));
            throttled += 1;
        }
    }
    assert!(
        throttled >= 3,
        "a burst of 6 calls in one Region got only {throttled} throttles"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn lookup_events_double_pages_newest_first_validates_and_throttles() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let key = format!("AKIA{:016}", nanos % 10_u128.pow(16));
    let region = "me-central-1";
    seed_120_events(&key, region);
    let ct = cloudtrail_in(region).await;
    let attr = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::AccessKeyId)
        .attribute_value(&key)
        .build()
        .unwrap();
    let (names, pages) = page_through(&ct, &attr).await;
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..120).map(|i| format!("Call{i}")).collect();
    assert_eq!(
        names, expected,
        "not newest first, or pages lost/duplicated"
    );

    // Nothing in another Region (one no other test searches: the limit is per account and Region).
    let other = aws_sdk_cloudtrail::Client::from_conf(
        ct.config()
            .to_builder()
            .region(aws_sdk_cloudtrail::config::Region::new("il-central-1"))
            .build(),
    );
    assert!(
        other
            .lookup_events()
            .lookup_attributes(attr.clone())
            .send()
            .await
            .unwrap()
            .events()
            .is_empty()
    );

    validates_and_throttles(&ct, &attr).await;
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn the_double_refuses_a_third_lookup_within_any_second() {
    let ct = cloudtrail_in("af-south-1").await;
    // Exactly 500 ms apart, which a token bucket allows: the third arrives within 1 s of the
    // first (arrival jitter makes it so on a real network) and is refused.
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = ct.lookup_events().max_results(1).send().await;
        codes.push(
            r.err()
                .and_then(|e| e.into_service_error().meta().code().map(str::to_owned)),
        );
        tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    }
    assert_eq!(codes[0], None);
    assert_eq!(codes[1], None);
    assert_eq!(
        codes[2].as_deref(),
        Some("ThrottlingException"),
        "{codes:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn iam_writes_reach_the_eventbridge_double_after_its_delay_without_secrets() {
    // The main pass runs without a propagation lag: a new key works at once.
    assert_eq!(control_get("/_killswitch/iam/lag")["seconds"], json!(0.0));
    let delay = control_get("/_killswitch/eventbridge/delay")["seconds"]
        .as_f64()
        .unwrap();
    let start = control_get("/_killswitch/eventbridge/events?after=0")["events"]
        .as_array()
        .unwrap()
        .last()
        .map_or(0, |e| e["seq"].as_u64().unwrap());
    let user = unique("eventbridge");
    let t0 = std::time::Instant::now();
    let key = create_user_with_key(&user, &["iam:ListUsers"]).await;
    assert_eq!(attacker_call(&key).await, "ok");
    let created = loop {
        let events = control_get(&format!("/_killswitch/eventbridge/events?after={start}"));
        let found: Vec<Value> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].clone())
            .filter(|e| {
                e["detail"]["responseElements"]["accessKey"]["accessKeyId"] == key.id.as_str()
            })
            .collect();
        if !found.is_empty() {
            break found;
        }
        assert!(
            t0.elapsed().as_secs_f64() < delay + 3.0,
            "no CreateAccessKey event"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(t0.elapsed().as_secs_f64() >= delay - 0.5);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["source"], "aws.iam");
    assert_eq!(created[0]["detail"]["eventName"], "CreateAccessKey");
    assert!(!created[0].to_string().contains(&key.secret));
}
