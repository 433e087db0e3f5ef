//! Each trigger contains a leaked user key or role session, and each containment step alone
//! refuses the key.

use super::*;

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn user_key_triggers_contain_the_key_and_the_leaked_key_is_refused() {
    for name in [
        "guardduty-iam-user-finding.json",
        "health-exposed-old-shape.json",
        "health-exposed-new-shape.json",
        "health-iam-quarantine.json",
        "manual-request.json",
        "securityhub-guardduty-user-finding.json",
    ] {
        let w = World::new().await;
        let user = unique("leaky");
        let leaked =
            create_user_with_key(&user, &["iam:List*", "iam:Get*", "sts:GetCallerIdentity"]).await;
        assert_eq!(
            attacker_call(&leaked).await,
            "ok",
            "{name}: the planted key must work before containment"
        );

        let (code, report, stderr) = w.respond(&fixture(name, &leaked.id, &user), &[]);
        assert_eq!(code, 0, "{name}: {stderr}\n{report}");
        let r = &report["reports"][0];
        assert_eq!(r["status"], "contained", "{name}: {r}");
        assert_eq!(r["verification"]["holds"], true, "{name}");

        assert_eq!(
            w.key_status(&user, &leaked.id).await,
            Some(StatusType::Inactive),
            "{name}"
        );
        let decoded = w
            .policy(PolicyTarget::User(user.clone()), policy::USER_POLICY_NAME)
            .await;
        assert!(policy::is_deny_all(&decoded), "{name}: {decoded}");
        assert_eq!(
            attacker_call(&leaked).await,
            "InvalidClientTokenId",
            "{name}: leaked key still accepted"
        );

        let (subject, message) = w.inbox().await;
        assert!(
            subject.starts_with("[killswitch] CONTAINED: "),
            "{name}: {subject}"
        );
        assert!(
            message.contains(&leaked.id) && message.contains(&user),
            "{name}: {message}"
        );
        // The attacker's call before containment was found in CloudTrail.
        assert!(
            message.contains("iam:ListUsers"),
            "{name}: activity missing from\n{message}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn stolen_role_session_is_revoked_by_the_token_issue_time_deny() {
    let w = World::new().await;
    let role = unique("workload");
    let sts = aws_sdk_sts::Client::new(&sdk(&admin()).await);
    // moto does not let an account-root principal stand for its users: name the caller.
    let caller = sts.get_caller_identity().send().await.unwrap().arn.unwrap();
    create_role(&role, &caller).await;
    let session = assume(
        &admin(),
        &format!("arn:aws:iam::123456789012:role/{role}"),
        "stolen",
        None,
    )
    .await
    .unwrap();
    assert!(session.id.starts_with("ASIA"));
    assert_eq!(attacker_call(&session).await, "ok");

    let (code, report, stderr) = w.respond(
        &fixture("guardduty-assumed-role-finding.json", &session.id, &role),
        &[],
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    let decoded = w
        .policy(PolicyTarget::Role(role.clone()), policy::ROLE_POLICY_NAME)
        .await;
    let cutoff = policy::revocation_cutoff(&decoded).expect("cutoff");
    assert!(
        (chrono::Utc::now() - cutoff).num_seconds().abs() < 60,
        "{cutoff}"
    );
    // The finding's principal ID is not this role's (the fixture's), so the session cannot be
    // named: the role-wide cutoff. The local AWS evaluates aws:TokenIssueTime: the stolen session
    // is refused, a session issued after the cutoff works.
    assert_eq!(attacker_call(&session).await, "AccessDenied");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = assume(
        &admin(),
        &format!("arn:aws:iam::123456789012:role/{role}"),
        "fresh",
        None,
    )
    .await
    .unwrap();
    assert_eq!(attacker_call(&fresh).await, "ok");
    let (subject, _) = w.inbox().await;
    assert!(
        subject.contains("CONTAINED") && subject.contains(&role),
        "{subject}"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn deactivation_alone_refuses_the_key() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let clients = AwsClients::from_sdk_config(&sdk(&w.function_key).await, &w.topic_arn);
    clients
        .deactivate_key(&user, &AccessKeyId::parse(&leaked.id).unwrap())
        .await
        .unwrap();
    assert!(
        w.iam
            .list_user_policies()
            .user_name(&user)
            .send()
            .await
            .unwrap()
            .policy_names()
            .iter()
            .all(|p| p == "drill-canary")
    );
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn deny_policy_alone_refuses_the_key() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let clients = AwsClients::from_sdk_config(&sdk(&w.function_key).await, &w.topic_arn);
    clients
        .put_policy(
            &PolicyTarget::User(user.clone()),
            policy::USER_POLICY_NAME,
            &policy::deny_all(),
        )
        .await
        .unwrap();
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Active)
    );
    assert_eq!(attacker_call(&leaked).await, "AccessDenied");
}
