//! A member account's key, contained through the member role template.

use super::*;

/// Deploys member-role.yaml, as a StackSet instance would, through CloudFormation in the member
/// account; returns the member role's name.
async fn deploy_member_role(member: &Key, responder_role: &str, external_id: &str) -> String {
    let role = unique("KillSwitchMember");
    deploy_stack(
        member,
        "member-role.yaml",
        &[
            ("SecurityAccountId", "123456789012"),
            ("ResponderRoleName", responder_role),
            ("ExternalId", external_id),
            ("MemberRoleName", &role),
        ],
    )
    .await;
    role
}

/// The function's environment as the responder role, entering member accounts with `ext`.
fn as_function(
    session: &Key,
    member_role: &str,
    member_account: &str,
    ext: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", session.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", session.secret.clone()),
        ("AWS_SESSION_TOKEN", session.token.clone().unwrap()),
        ("KILLSWITCH_MEMBER_ROLE_NAME", member_role.to_owned()),
        ("KILLSWITCH_MEMBER_EXTERNAL_ID", ext.to_owned()),
        ("KILLSWITCH_MEMBER_ACCOUNTS", member_account.to_owned()),
    ]
}

/// The member role cannot be turned against itself, and only the responder role may enter it:
/// the function's plain user key may not.
async fn the_member_role_is_locked(
    w: &World,
    session: &Key,
    member_role_arn: &str,
    member_role: &str,
    external_id: &str,
) {
    let as_member_role = assume(session, member_role_arn, "probe", Some(external_id))
        .await
        .unwrap();
    let iam = aws_sdk_iam::Client::new(&sdk(&as_member_role).await);
    let widened = iam
        .put_role_policy()
        .role_name(member_role)
        .policy_name("widen")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await;
    assert!(widened.is_err(), "the member role could edit itself");
    let refused = assume(&w.function_key, member_role_arn, "probe", Some(external_id)).await;
    assert!(
        refused.is_err(),
        "a principal other than the responder role entered"
    );
}

/// A finding of the deployment's own account, same configuration (`env`): handled without
/// AssumeRole.
async fn an_own_account_finding_assumes_no_role(w: &World, session: &Key, env: &[(&str, String)]) {
    let assume_roles = |calls: &[(String, Option<String>)]| {
        calls
            .iter()
            .filter(|(name, _)| name == "AssumeRole")
            .count()
    };
    let before = lookup(&session.id).await;
    let own_user = unique("leaky");
    let own = create_user_with_key(&own_user, &["iam:List*"]).await;
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &own.id, &own_user),
        &[],
        env,
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    assert_eq!(report["reports"][0]["status"], "contained");
    assert_eq!(attacker_call(&own).await, "InvalidClientTokenId");
    let calls = lookup(&session.id).await;
    assert!(
        calls.len() > before.len(),
        "the function's calls were not recorded"
    );
    let assumed = assume_roles(&calls) - assume_roles(&before);
    assert_eq!(assumed, 0, "own-account finding assumed a role: {calls:?}");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_member_accounts_key_is_contained_through_the_member_role_template() {
    let w = World::new().await;
    let (member_account, member) = member_admin();
    let responder_role = unique("killswitch-responder");
    let session = responder_session(&w, &responder_role).await;
    let external_id = unique("ext");
    let member_role = deploy_member_role(&member, &responder_role, &external_id).await;

    let member_iam = aws_sdk_iam::Client::new(&sdk(&member).await);
    let user = unique("leaky");
    let leaked: Key = Sandbox::new(&sdk(&member).await)
        .create_user(&user, &["iam:List*"])
        .await
        .unwrap()
        .into();
    assert_eq!(attacker_call(&leaked).await, "ok");
    let event = fixture("guardduty-member-account-finding.json", &leaked.id, &user);
    assert_eq!(event["detail"]["accountId"], member_account.as_str());
    let as_function = |ext: &str| as_function(&session, &member_role, &member_account, ext);

    // A wrong external ID: the member role refuses, nothing changes, humans are told, Lambda retries.
    let (code, report, stderr) = w.respond_with(&event, &[], &as_function("not-the-external-id"));
    assert_eq!(code, 1, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["steps"][0]["step"], "enter_account", "{r}");
    assert!(
        r["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{r}"
    );
    assert_eq!(
        attacker_call(&leaked).await,
        "ok",
        "nothing may change on a failed entry"
    );
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("CONTAINMENT FAILED"), "{subject}");

    // The right one: contained in the member account, reported in the security account.
    let (code, report, stderr) = w.respond_with(&event, &[], &as_function(&external_id));
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    assert_eq!(r["account"], member_account.as_str());
    assert_eq!(r["verification"]["holds"], true, "{r}");
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
    let member_key = member_iam
        .list_access_keys()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(
        member_key.access_key_metadata()[0].status(),
        Some(&StatusType::Inactive)
    );
    let (subject, message) = w.inbox().await;
    assert!(subject.starts_with("[killswitch] CONTAINED: "), "{subject}");
    assert!(message.contains(&member_account), "{message}");
    // The attacker's call, found in the member account's CloudTrail.
    assert!(message.contains("iam:ListUsers"), "{message}");

    // The member role cannot be turned against itself, and only the responder role enters it.
    let member_role_arn = format!("arn:aws:iam::{member_account}:role/{member_role}");
    the_member_role_is_locked(&w, &session, &member_role_arn, &member_role, &external_id).await;
    an_own_account_finding_assumes_no_role(&w, &session, &as_function(&external_id)).await;
}
