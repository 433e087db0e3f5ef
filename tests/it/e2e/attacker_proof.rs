//! Attacker-proof containment, through the local AWS (its moto patches evaluate aws:userid,
//! cap a user's inline policies at 2,048 characters and offer AWSDenyAll, as IAM does).

use super::*;

/// The role's unique ID, as IAM holds it (the first half of a session's `aws:userid`).
async fn role_id(role: &str) -> String {
    let iam = aws_sdk_iam::Client::new(&sdk(&admin()).await);
    iam.get_role()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .role_id
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn the_leaked_role_session_is_denied_and_the_roles_other_sessions_keep_working() {
    let w = World::new().await;
    let role = unique("web");
    let sts = aws_sdk_sts::Client::new(&sdk(&admin()).await);
    let caller = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    create_role(&role, &caller).await;
    let arn = format!("arn:aws:iam::123456789012:role/{role}");
    let stolen = assume(&admin(), &arn, "i-0stolen", None).await.unwrap();
    let healthy = assume(&admin(), &arn, "i-0healthy", None).await.unwrap();
    let mut finding = fixture("guardduty-assumed-role-finding.json", &stolen.id, &role);
    let session = format!("{}:i-0stolen", role_id(&role).await);
    finding["detail"]["resource"]["accessKeyDetails"]["principalId"] = json!(session);
    raise(&finding);
    let (code, report, stderr) = w.respond(&finding, &[]);
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    let denied = policy::denied_sessions(
        &w.policy(
            PolicyTarget::Role(role.clone()),
            policy::SESSION_POLICY_NAME,
        )
        .await,
    );
    assert_eq!(denied, Some([session.clone()].into()));
    assert_eq!(attacker_call(&stolen).await, "AccessDenied");
    assert_eq!(
        attacker_call(&healthy).await,
        "ok",
        "the role's other sessions keep working"
    );
    // Credentials fetched again under the same session name are denied too.
    let again = assume(&admin(), &arn, "i-0stolen", None).await.unwrap();
    assert_eq!(attacker_call(&again).await, "AccessDenied");
    let (_, message) = w.inbox().await;
    assert!(
        message.contains(&format!("Only session {session}")),
        "{message}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_planted_decoy_deny_is_replaced_and_the_key_is_refused() {
    let w = World::new().await;
    let user = unique("decoyed");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    // The holder plants a "deny" under killswitch's own policy name that never matches.
    let iam = aws_sdk_iam::Client::new(&sdk(&admin()).await);
    iam.put_user_policy()
        .user_name(&user)
        .policy_name(policy::USER_POLICY_NAME)
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":"nobody-at-all"}}}]}"#)
        .send()
        .await
        .unwrap();
    // Deactivated, the key would be refused anyway: show that the decoy denies nothing, first.
    let (code, report, stderr) = w.respond(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    assert!(policy::is_deny_all(
        &w.policy(PolicyTarget::User(user.clone()), policy::USER_POLICY_NAME)
            .await
    ));
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
    let (_, message) = w.inbox().await;
    assert!(message.contains("TAMPERED OR DECOY"), "{message}");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_user_whose_inline_quota_is_full_gets_aws_deny_all_and_its_sessions_are_refused() {
    let w = World::new().await;
    let user = unique("filled");
    let leaked = create_user_with_key(&user, &["iam:List*", "sts:GetSessionToken"]).await;
    let iam = aws_sdk_iam::Client::new(&sdk(&admin()).await);
    // The holder fills the user's 2,048-character inline quota first.
    let used: usize = {
        let names = iam
            .list_user_policies()
            .user_name(&user)
            .send()
            .await
            .unwrap();
        let mut n = 0;
        for p in names.policy_names() {
            let doc = w.policy(PolicyTarget::User(user.clone()), p).await;
            n += doc.chars().filter(|c| !c.is_whitespace()).count();
        }
        n
    };
    let filler = |pad: usize| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}"}}]}}"#,
            "x".repeat(pad)
        )
    };
    // Exactly to the limit: killswitch's deny no longer fits.
    let filler = filler(2048 - used - filler(0).len());
    iam.put_user_policy()
        .user_name(&user)
        .policy_name("filler")
        .policy_document(&filler)
        .send()
        .await
        .unwrap();
    let (code, report, stderr) = w.respond(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    let attached = iam
        .list_attached_user_policies()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert!(
        attached
            .attached_policies()
            .iter()
            .any(|p| p.policy_arn() == Some(policy::MANAGED_DENY_ALL_ARN)),
        "{attached:?}"
    );
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
    let (_, message) = w.inbox().await;
    assert!(message.contains("AWSDenyAll"), "{message}");
    assert!(message.contains("containment holds"), "{message}");
    // LimitExceeded is final, not retried like throttling: one PutUserPolicy, then the attach.
    let calls = w.function_calls().await;
    assert_eq!(
        calls.iter().filter(|c| *c == "PutUserPolicy").count(),
        1,
        "{calls:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn text_the_key_holder_controls_reaches_the_notice_inert() {
    let w = World::new().await;
    let user = unique("hostile");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    // What the holder's own calls put in Event history: a user agent and parameters of its choice.
    let record = json!({
        "eventTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventName": "CreateUser", "eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1",
        "eventID": unique("evt"), "readOnly": false, "sourceIPAddress": "203.0.113.9",
        "userAgent": "x\n\nCONTAINED: all clear, nothing to do <!channel> @here https://phish.example/login \u{202e}",
        "requestParameters": {"userName": "backdoor\n@everyone [reset](http://x.example)"},
        "userIdentity": {"type": "IAMUser", "accessKeyId": leaked.id, "userName": user}
    });
    assert_eq!(
        control(
            "/_killswitch/cloudtrail/events",
            &json!({"events": [record]})
        )["added"],
        1
    );
    let (code, report, stderr) = w.respond(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let (_, message) = w.inbox().await;
    assert!(message.contains("CreateUser"), "{message}");
    for bad in [
        "\nCONTAINED: all clear",
        "<!channel>",
        "@here",
        "@everyone",
        "https://",
        "http://",
        "\u{202e}",
        "](",
    ] {
        assert!(
            !message.contains(bad),
            "{bad:?} reached the notice:\n{message}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_manual_request_naming_someone_else_for_a_session_key_changes_nothing() {
    let w = World::new().await;
    let bob = unique("bob");
    create_user_with_key(&bob, &["iam:List*"]).await;
    let role = unique("web");
    let sts = aws_sdk_sts::Client::new(&sdk(&admin()).await);
    let caller = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    create_role(&role, &caller).await;
    let session = assume(
        &admin(),
        &format!("arn:aws:iam::123456789012:role/{role}"),
        "s1",
        None,
    )
    .await
    .unwrap();
    // The session signs a call: CloudTrail (the local double) now knows whose key it is.
    assert_eq!(attacker_call(&session).await, "ok");
    let request = json!({"access_key_id": session.id, "user_name": bob, "reason": "leak",
        "requested_by": "someone"});
    let (code, report, stderr) = w.respond(&request, &[]);
    assert_eq!(code, 2, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "rejected", "{report}");
    // Nothing written: no containment step ran, bob has no deny, the role no session deny.
    let steps = report["reports"][0]["steps"].as_array().unwrap();
    assert!(
        steps.iter().all(|s| !matches!(
            s["step"].as_str(),
            Some("deactivate_key" | "deny_user" | "revoke_role_sessions")
        )),
        "{report}"
    );
    let role_policies = w
        .iam
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(
        !role_policies
            .policy_names()
            .iter()
            .any(|p| p.starts_with("KillSwitch")),
        "{role_policies:?}"
    );
    let policies = w
        .iam
        .list_user_policies()
        .user_name(&bob)
        .send()
        .await
        .unwrap();
    assert!(
        !policies
            .policy_names()
            .iter()
            .any(|p| p == policy::USER_POLICY_NAME)
    );
    let (subject, message) = w.inbox_any().await;
    assert!(subject.contains("REJECTED"), "{subject}");
    // CloudTrail names the role's session as the signer; when the lookup is throttled (tests in
    // parallel share the double's 2 calls per second) the request is refused all the same.
    assert!(
        message.contains(&bob)
            && (message.contains(&role) || message.contains("lookup that checks who signs")),
        "{message}"
    );
}

/// An insider allowed `lambda:InvokeFunction` sends a "GuardDuty finding" GuardDuty never raised:
/// its own key, the admin's name. Against the strict local GuardDuty: nothing is written, the
/// page says the payload looked forged, and the admin keeps working.
#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_finding_guardduty_never_raised_puts_no_deny_on_the_admin_it_names() {
    let w = World::new().await;
    let admin = unique("admin");
    let admin_key = create_user_with_key(&admin, &["iam:List*"]).await;
    let insider = unique("insider");
    let insider_key = create_user_with_key(&insider, &["iam:List*"]).await;
    let forged = unraised_fixture("guardduty-iam-user-finding.json", &insider_key.id, &admin);
    let (code, report, stderr) = w.respond(&forged, &[]);
    assert_ne!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "rejected", "{report}");
    assert!(
        r["summary"].as_str().unwrap().contains("looked forged"),
        "{report}"
    );
    assert_eq!(
        w.function_calls()
            .await
            .iter()
            .filter(|c| WRITES.contains(&c.as_str()))
            .count(),
        0
    );
    assert_eq!(
        w.key_status(&admin, &admin_key.id).await,
        Some(StatusType::Active)
    );
    assert_eq!(
        w.key_status(&insider, &insider_key.id).await,
        Some(StatusType::Active)
    );
    assert_eq!(attacker_call(&admin_key).await, "ok");
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("looked forged"), "{subject}");
}
