//! The organization's quarantine SCP outlasts the account's own admin, and restore lifts it.

use killswitch::playbook::quarantine::{Entry, parse};

use super::*;

/// Deploys quarantine-role.yaml in the organization's management account (111122223333 on the
/// local AWS), trusting the responder role; returns the role's ARN.
async fn deploy_quarantine_role(
    management: &Key,
    responder_role: &str,
    external_id: &str,
) -> String {
    let role = unique("KillSwitchQuarantine");
    deploy_stack(
        management,
        "quarantine-role.yaml",
        &[
            ("SecurityAccountId", "123456789012"),
            ("ResponderRoleName", responder_role),
            ("ExternalId", external_id),
            ("QuarantineRoleName", &role),
        ],
    )
    .await;
    let (account, _) = member_admin();
    format!("arn:aws:iam::{account}:role/{role}")
}

/// The account's quarantine SCP as the management account sees it: (ID, content, attached).
async fn quarantine_scp(management: &Key) -> Option<(String, String, bool)> {
    use aws_sdk_organizations::types::PolicyType;
    let org = aws_sdk_organizations::Client::new(&sdk(management).await);
    let policies = org
        .list_policies()
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let id = policies
        .policies()
        .iter()
        .find(|p| p.name() == Some("killswitch-quarantine-123456789012"))?
        .id()?
        .to_owned();
    let content = org
        .describe_policy()
        .policy_id(&id)
        .send()
        .await
        .unwrap()
        .policy()?
        .content()?
        .to_owned();
    let attached = org
        .list_policies_for_target()
        .target_id("123456789012")
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap()
        .policies()
        .iter()
        .any(|p| p.id() == Some(id.as_str()));
    Some((id, content, attached))
}

/// The function as the responder role, with the quarantine role deployed in the management
/// account: (the management account's admin, the function's environment).
pub(super) async fn quarantine_deployed(w: &World) -> (Key, Vec<(&'static str, String)>) {
    let (_, management) = member_admin();
    let responder_role = unique("killswitch-responder");
    let session = responder_session(w, &responder_role).await;
    let external_id = unique("ext");
    let quarantine_role = deploy_quarantine_role(&management, &responder_role, &external_id).await;
    let (_, _, table) = follow_up_queue_and_table(w).await;
    let env = vec![
        ("AWS_ACCESS_KEY_ID", session.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", session.secret.clone()),
        ("AWS_SESSION_TOKEN", session.token.clone().unwrap()),
        ("KILLSWITCH_QUARANTINE_ROLE_ARN", quarantine_role.clone()),
        ("KILLSWITCH_QUARANTINE_EXTERNAL_ID", external_id.clone()),
        ("KILLSWITCH_INCIDENT_TABLE", table.clone()),
    ];
    (management, env)
}

/// A second request for the same key: the entry is there, nothing is written twice.
async fn a_second_request_writes_nothing(
    w: &World,
    env: &[(&str, String)],
    management: &Key,
    user: &str,
    leaked: &Key,
    id: &str,
) {
    let entry = Entry::User { name: user.into() };
    let (code, report, _) =
        w.respond_with(&fixture("manual-request.json", &leaked.id, user), &[], env);
    assert_eq!(code, 0, "{report}");
    let step = report["reports"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "quarantine")
        .cloned()
        .unwrap();
    assert_eq!(step["outcome"], "already_done", "{step}");
    let (same, content_again, _) = quarantine_scp(management).await.unwrap();
    assert_eq!(same, id);
    assert_eq!(
        parse(&content_again, "aws", "123456789012")
            .entries
            .iter()
            .filter(|e| **e == entry)
            .count(),
        1
    );
}

/// The account's own admin (the holder's other credential) deletes the inline deny and tries to
/// lift the SCP: IAM lets it, Organizations does not.
async fn the_accounts_own_admin_cannot_lift_it(management: &Key, user: &str, id: &str) {
    let entry = Entry::User { name: user.into() };
    let admin_sdk = sdk(&admin()).await;
    aws_sdk_iam::Client::new(&admin_sdk)
        .delete_user_policy()
        .user_name(user)
        .policy_name(policy::USER_POLICY_NAME)
        .send()
        .await
        .unwrap();
    let org = aws_sdk_organizations::Client::new(&admin_sdk);
    let detach = org
        .detach_policy()
        .policy_id(id)
        .target_id("123456789012")
        .send()
        .await;
    assert!(detach.is_err(), "a member account detached the quarantine");
    let update = org
        .update_policy()
        .policy_id(id)
        .content(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await;
    assert!(update.is_err(), "a member account rewrote the quarantine");
    let (_, content_now, attached) = quarantine_scp(management).await.unwrap();
    assert!(
        attached
            && parse(&content_now, "aws", "123456789012")
                .entries
                .contains(&entry)
    );
}

/// `killswitch` at the command line with `env` (the function's), without a terminal.
fn cli(w: &World, env: &[(&str, String)], args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// What `status` read back of the quarantine: "stands", "lifted"...
fn read_back(out: std::process::Output) -> String {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v["quarantine"]["read_back"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn the_org_quarantine_outlasts_the_accounts_own_admin_and_restore_lifts_it() {
    let w = World::new().await;
    let (management, env) = quarantine_deployed(&w).await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let entry = Entry::User { name: user.clone() };

    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &env,
    );
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    let step = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "quarantine")
        .unwrap_or_else(|| panic!("no quarantine step: {r}"));
    assert_eq!(step["outcome"], "done", "{step}");
    let (id, content, attached) = quarantine_scp(&management).await.unwrap();
    assert!(attached);
    assert!(
        parse(&content, "aws", "123456789012")
            .entries
            .contains(&entry),
        "{content}"
    );
    let (_, message) = w.inbox().await;
    assert!(
        message.contains("does not restrict the management account"),
        "{message}"
    );

    a_second_request_writes_nothing(&w, &env, &management, &user, &leaked, &id).await;
    the_accounts_own_admin_cannot_lift_it(&management, &user, &id).await;

    // status shows it standing; restore lifts it.
    let cli = |args: &[&str]| cli(&w, &env, args);
    assert_eq!(
        read_back(cli(&["status", "--access-key-id", &leaked.id])),
        "stands"
    );
    let restored = cli(&[
        "restore",
        "--access-key-id",
        &leaked.id,
        "--requested-by",
        "oncall@example.com",
        "--reason",
        "drill over",
        "--yes",
    ]);
    assert_eq!(
        restored.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&restored.stdout),
        String::from_utf8_lossy(&restored.stderr)
    );
    let left = quarantine_scp(&management).await;
    assert!(
        left.as_ref()
            .is_none_or(|(_, c, _)| !parse(c, "aws", "123456789012").entries.contains(&entry)),
        "{left:?}"
    );
    assert_eq!(
        read_back(cli(&["status", "--access-key-id", &leaked.id])),
        "lifted"
    );
}
