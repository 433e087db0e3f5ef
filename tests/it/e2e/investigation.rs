//! The investigation: pivots made with the leaked key are found and followed, and a pivot
//! CloudTrail delivers late is caught by the sweep.

use super::*;

/// What the attacker does with the leaked key: a second key of `user` for persistence, and a
/// session of `role`.
async fn pivot(leaked: &Key, user: &str, role: &str) -> (Key, Key) {
    let attacker = sdk(leaked).await;
    let second = aws_sdk_iam::Client::new(&attacker)
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let session = aws_sdk_sts::Client::new(&attacker)
        .assume_role()
        .role_arn(format!("arn:aws:iam::123456789012:role/{role}"))
        .role_session_name("pivot")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let second = Key {
        id: second.access_key_id,
        secret: second.secret_access_key,
        token: None,
    };
    let session = Key {
        id: session.access_key_id,
        secret: session.secret_access_key,
        token: Some(session.session_token),
    };
    (second, session)
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn pivots_made_with_the_leaked_key_are_found_and_followed() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(
        &user,
        &[
            "iam:List*",
            "iam:CreateAccessKey",
            "sts:AssumeRole",
            "sts:GetCallerIdentity",
        ],
    )
    .await;
    let role = unique("pivot-role");
    create_role(&role, &format!("arn:aws:iam::123456789012:user/{user}")).await;

    // The attacker, with the leaked key: a second key for persistence, and a role hop.
    let (second, session) = pivot(&leaked, &user, &role).await;
    assert_eq!(attacker_call(&second).await, "ok");
    assert_eq!(attacker_call(&session).await, "ok");

    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[("KILLSWITCH_FOLLOW_PIVOTS", "true".into())],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    let act = &r["investigation"];
    assert_eq!(
        act["regions"].as_array().unwrap().len(),
        17,
        "every enabled Region is searched"
    );
    assert!(
        act["region_source"]
            .as_str()
            .unwrap()
            .contains("every Region enabled for the account")
    );
    let pivots = act["pivots"].as_array().unwrap();
    let by_key = |k: &str| {
        pivots
            .iter()
            .find(|p| p["access_key_id"] == k)
            .unwrap_or_else(|| panic!("{k} not found in {pivots:?}"))
    };
    assert_eq!(by_key(&second.id)["kind"], "access_key");
    assert_eq!(by_key(&second.id)["containment"]["status"], "contained");
    assert_eq!(by_key(&session.id)["kind"], "role_session");
    assert_eq!(by_key(&session.id)["containment"]["status"], "contained");

    // Everything the attacker holds is refused now.
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
    assert_eq!(attacker_call(&second).await, "InvalidClientTokenId");
    assert_eq!(attacker_call(&session).await, "AccessDenied");
    assert_eq!(
        w.key_status(&user, &second.id).await,
        Some(StatusType::Inactive)
    );
    let (_, message) = w.inbox().await;
    assert!(
        message.contains("Credentials it minted and access it opened (2)"),
        "{message}"
    );
    assert!(
        message.contains(&second.id) && message.contains(&session.id),
        "{message}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_pivot_cloudtrail_delivers_late_is_missed_by_the_first_pass_and_caught_by_the_sweep() {
    let w = World::new().await;
    let user = unique("late");
    let leaked = create_user_with_key(&user, &["sts:GetCallerIdentity"]).await;
    // The backdoor key the attacker made 2 minutes before the trigger (its CloudTrail record is
    // seeded below with that time: the double records calls when they are made).
    let backdoor = w
        .iam
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let made = chrono::Utc::now() - chrono::TimeDelta::minutes(2);
    // Event history delivers this key's events 150 s after they happen: the backdoor becomes
    // visible ~30 s from now, after the first pass and before the sweep.
    control(
        "/_killswitch/cloudtrail/lag",
        &json!({"key": leaked.id, "seconds": 150}),
    );
    control(
        "/_killswitch/cloudtrail/events",
        &json!({"events": [{
            "eventTime": made.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
            "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.66", "readOnly": false,
            "userIdentity": {"type": "IAMUser", "accessKeyId": leaked.id, "userName": user},
            "requestParameters": {"userName": user},
            "responseElements": {"accessKey": {"accessKeyId": backdoor.access_key_id,
                                               "userName": user, "status": "Active"}}
        }]}),
    );
    let (_, _, table) = follow_up_queue_and_table(&w).await;
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[
            ("KILLSWITCH_FOLLOW_PIVOTS", "true".into()),
            ("KILLSWITCH_SWEEP_SECONDS", "45".into()),
            ("KILLSWITCH_REGIONS", "us-east-1".into()),
            ("KILLSWITCH_INCIDENT_TABLE", table),
            // The other end-to-end tests share this account's LookupEvents rate (2 per second)
            // and back off on it: the budget must not be what this test measures.
            ("KILLSWITCH_INVESTIGATION_SECONDS", "180".into()),
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let first = &report["reports"][0];
    assert_eq!(first["status"], "contained", "{first}");
    assert!(
        first["investigation"]["pivots"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the first pass cannot see it yet: {first}"
    );
    assert_eq!(first["sweep"]["scheduled"], true, "{first}");
    assert!(
        stderr.contains("waiting for the CloudTrail sweep at"),
        "{stderr}"
    );
    let (_, first_notice) = w.inbox().await;
    assert!(
        first_notice.contains("second CloudTrail search (the sweep) runs at"),
        "{first_notice}"
    );

    let sweep = &report["sweeps"][0];
    assert_eq!(sweep["sweep_result"]["new_pivots"], 1, "{sweep}");
    assert_eq!(sweep["sweep_result"]["closed"], true, "{sweep}");
    let pivot = &sweep["investigation"]["pivots"][0];
    assert_eq!(pivot["access_key_id"], backdoor.access_key_id.as_str());
    assert_eq!(pivot["containment"]["status"], "contained", "{pivot}");
    assert_eq!(
        w.key_status(&user, &backdoor.access_key_id).await,
        Some(StatusType::Inactive)
    );
    let (subject, last) = w.inbox().await;
    assert!(subject.contains("FINAL"), "{subject}");
    assert!(last.contains(&backdoor.access_key_id), "{last}");
    assert!(last.contains("The search is now CLOSED"), "{last}");
}
