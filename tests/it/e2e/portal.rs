//! A leaked Identity Center portal session, contained through the deny policy and undone by
//! restore.

use killswitch::playbook::portal::{Entry, parse};

use super::*;

/// The harness as Identity Center's administrator would set it up: a permission set that
/// references the deny policy, a user assigned to it (directly, or through a group), provisioned
/// to the function's account.
fn seed_portal_user(permission_set: &str, user: &str, via_group: bool) -> Value {
    let seeded = control(
        "/_killswitch/identitycenter/seed",
        &json!({"account": "123456789012", "permission_set": permission_set,
                "user_name": user, "via_group": via_group}),
    );
    assert!(seeded["role_name"].is_string(), "{seeded}");
    seeded
}

/// What the portal hands the user (`aws configure export-credentials`): their credentials, or
/// the portal's refusal (`Null`).
fn portal_credentials(seeded: &Value, user: &str) -> Option<(Key, String)> {
    let c = control(
        "/_killswitch/identitycenter/portal-credentials",
        &json!({"account": "123456789012", "permission_set_arn": seeded["permission_set_arn"],
                "user_name": user}),
    );
    let id = c["AccessKeyId"].as_str()?;
    Some((
        Key {
            id: id.to_owned(),
            secret: c["SecretAccessKey"].as_str().unwrap().to_owned(),
            token: c["SessionToken"].as_str().map(str::to_owned),
        },
        c["PrincipalId"].as_str().unwrap().to_owned(),
    ))
}

/// The deny policy's default document, as the account's admin reads it.
async fn deny_policy_document() -> String {
    let clients = AwsClients::from_sdk_config(&sdk(&admin()).await, "");
    clients
        .policy_default("arn:aws:iam::123456789012:policy/KillSwitchDeny")
        .await
        .unwrap()
        .expect("identity-center-policy.yaml is deployed by the harness")
        .document
}

/// identity-center-role.yaml deployed in the management account, trusting the responder role
/// and the operator: (the function's environment as the responder role, the operator's).
async fn identity_center_deployed(
    w: &World,
) -> (Vec<(&'static str, String)>, Vec<(&'static str, String)>) {
    let (_, management) = member_admin();
    let responder_role = unique("killswitch-responder");
    let session = responder_session(w, &responder_role).await;
    let external_id = unique("ext");
    let operator = aws_sdk_sts::Client::new(&sdk(&admin()).await)
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let role_name = unique("KsIdc");
    deploy_stack(
        &management,
        "identity-center-role.yaml",
        &[
            ("SecurityAccountId", "123456789012"),
            ("ResponderRoleName", &responder_role),
            ("ExternalId", &external_id),
            ("RoleName", &role_name),
            ("RemoveAssignments", "true"),
            ("OperatorRoleArns", &operator),
        ],
    )
    .await;
    let (account, _) = member_admin();
    let idc_role = format!("arn:aws:iam::{account}:role/{role_name}");
    let (_, _, table) = follow_up_queue_and_table(w).await;
    let idc_env = vec![
        ("KILLSWITCH_IDENTITY_CENTER_ROLE_ARN", idc_role.clone()),
        (
            "KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID",
            external_id.clone(),
        ),
        (
            "KILLSWITCH_IDENTITY_CENTER_REMOVE_ASSIGNMENTS",
            "true".into(),
        ),
        ("KILLSWITCH_INCIDENT_TABLE", table.clone()),
    ];
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", session.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", session.secret.clone()),
        ("AWS_SESSION_TOKEN", session.token.clone().unwrap()),
    ];
    env.extend(idc_env.iter().cloned());
    let mut operator_env = idc_env;
    operator_env.push((
        "KILLSWITCH_IDENTITY_CENTER_RESTORE_ROLE_ARN",
        format!("arn:aws:iam::{account}:role/{role_name}Restore"),
    ));
    (env, operator_env)
}

/// IAM itself refuses to edit the permission set's role: that is why the policy is the way.
async fn iam_refuses_to_edit_the_role(w: &World, role: &str) {
    let put = w
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name("x")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#)
        .send()
        .await;
    assert!(format!("{put:?}").contains("UnmodifiableEntity"), "{put:?}");
}

/// GuardDuty's finding of the portal session `stolen` of `principal_id` in `role`.
fn portal_finding(stolen: &Key, principal_id: &str, role: &str) -> Value {
    let mut finding: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/events/guardduty-identity-center-session-finding.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    finding["detail"]["resource"]["accessKeyDetails"] = json!({
        "accessKeyId": stolen.id, "principalId": principal_id,
        "userType": "AssumedRole", "userName": role});
    finding["detail"]["id"] = json!(unique("finding"));
    raise(&finding);
    finding
}

/// `killswitch` at the command line as the operator (the local AWS's admin), with `env`.
fn operator_cli(w: &World, env: &[(&str, String)], args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("AWS_ACCESS_KEY_ID", admin().id)
        .env("AWS_SECRET_ACCESS_KEY", admin().secret)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The portal's users of one permission set: alice (assigned directly), whose session leaked,
/// and bob (through a group).
struct Portal {
    seeded: Value,
    alice: String,
    alice_id: String,
    role: String,
    stolen: Key,
    principal_id: String,
    bobs: Key,
}

/// Seeds alice and bob, and signs both in through the portal.
fn seed_alice_and_bob() -> Portal {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let permission_set = format!("Dev{nanos}");
    let alice = format!("alice{nanos}@example.com");
    let bob = format!("bob{nanos}@example.com");
    let seeded = seed_portal_user(&permission_set, &alice, false);
    seed_portal_user(&permission_set, &bob, true);
    let role = seeded["role_name"].as_str().unwrap().to_owned();
    let alice_id = seeded["user_id"].as_str().unwrap().to_owned();
    let (stolen, principal_id) = portal_credentials(&seeded, &alice).unwrap();
    let (bobs, _) = portal_credentials(&seeded, &bob).unwrap();
    Portal {
        seeded,
        alice,
        alice_id,
        role,
        stolen,
        principal_id,
        bobs,
    }
}

/// After containment (`r`, the report): alice and her session are denied by the policy, her
/// direct assignment is removed, bob keeps working, the role itself was never written.
async fn alice_alone_is_cut_off(w: &World, p: &Portal, r: &Value) {
    let entries = parse(&deny_policy_document().await).entries;
    assert!(
        entries.contains(&Entry::User {
            user_id: p.alice_id.clone()
        }) && entries.contains(&Entry::Session {
            userid: p.principal_id.clone()
        }),
        "{entries:?}"
    );
    assert_eq!(attacker_call(&p.stolen).await, "AccessDenied");
    assert_eq!(
        attacker_call(&p.bobs).await,
        "ok",
        "another user of the same permission set keeps working"
    );
    // The direct assignment is gone: the portal hands out nothing more.
    assert!(portal_credentials(&p.seeded, &p.alice).is_none());
    let removed = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "remove_assignment")
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(removed["outcome"], "done", "{removed}");
    // The role was never written.
    assert!(
        w.iam
            .list_role_policies()
            .role_name(&p.role)
            .send()
            .await
            .unwrap()
            .policy_names()
            .iter()
            .all(|name| name == "AwsSSOInlinePolicy")
    );
}

/// After the restore: the deny's entries are gone and exactly the removed assignment is back.
async fn the_removed_assignment_is_back(p: &Portal) {
    let left = parse(&deny_policy_document().await).entries;
    assert!(
        !left.contains(&Entry::User {
            user_id: p.alice_id.clone()
        }) && !left.contains(&Entry::Session {
            userid: p.principal_id.clone()
        }),
        "{left:?}"
    );
    // Exactly the removed assignment is back: alice signs in again and works.
    let (again, _) = portal_credentials(&p.seeded, &p.alice).expect("the assignment is back");
    assert_eq!(attacker_call(&again).await, "ok");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn a_leaked_portal_session_is_contained_through_the_deny_policy_and_restore_undoes_it() {
    let w = World::new().await;
    let (env, operator_env) = identity_center_deployed(&w).await;

    let p = seed_alice_and_bob();
    assert_eq!(attacker_call(&p.stolen).await, "ok");

    iam_refuses_to_edit_the_role(&w, &p.role).await;
    let finding = portal_finding(&p.stolen, &p.principal_id, &p.role);
    let (code, report, stderr) = w.respond_with(&finding, &[], &env);
    assert_eq!(code, 0, "{stderr}\n{report}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained", "{r}");
    alice_alone_is_cut_off(&w, &p, r).await;

    // Redelivery: already contained, nothing written again.
    let before = deny_policy_document().await;
    let (code, report, _) = w.respond_with(&finding, &[], &env);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["reports"][0]["status"], "already_contained",
        "{report}"
    );
    assert_eq!(deny_policy_document().await, before);

    // status, then restore as the operator (the Restore role trusts operators only).
    let cli = |args: &[&str]| operator_cli(&w, &operator_env, args);
    let status: Value =
        serde_json::from_slice(&cli(&["status", "--access-key-id", &p.stolen.id]).stdout).unwrap();
    assert_eq!(status["identity_center"]["denied"], true, "{status}");
    assert!(
        status["identity_center"]["assignment_removed"].is_object(),
        "{status}"
    );
    let restored = cli(&[
        "restore",
        "--access-key-id",
        &p.stolen.id,
        "--requested-by",
        "oncall@example.com",
        "--reason",
        "drill over",
        "--force",
        "--yes",
    ]);
    assert_eq!(
        restored.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&restored.stdout),
        String::from_utf8_lossy(&restored.stderr)
    );
    the_removed_assignment_is_back(&p).await;
}
