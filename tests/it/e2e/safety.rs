//! What keeps killswitch from doing harm or going quiet: samples and dry runs write nothing, a
//! replay is a no-op, bad input and missing configuration stop it before any call, protected
//! principals are refused, concurrent deliveries agree, and refused or hanging endpoints end
//! contained or loud.

use super::*;

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn sample_finding_and_dry_run_make_zero_iam_writes() {
    let w = World::new().await;
    let (code, report, stderr) = w.respond(
        &fixture("guardduty-sample-finding.json", "unused", "unused"),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "sample");
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("SAMPLE"), "{subject}");

    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let (code, report, stderr) = w.respond(
        &fixture("manual-request-dry-run.json", &leaked.id, &user),
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "dry_run", "{report}");
    let (code, _, _) = w.respond(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &["--dry-run"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Active)
    );
    assert_eq!(attacker_call(&leaked).await, "ok");

    let calls = w.function_calls().await;
    assert!(calls.iter().any(|c| c == "Publish"), "{calls:?}");
    let writes: Vec<_> = calls
        .iter()
        .filter(|c| WRITES.contains(&c.as_str()))
        .collect();
    assert!(writes.is_empty(), "the function wrote: {writes:?}");
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn replay_is_a_no_op_and_bad_input_exits_2_without_calls() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let event = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    assert_eq!(w.respond(&event, &[]).0, 0);
    let writes_once = w
        .function_calls()
        .await
        .iter()
        .filter(|c| WRITES.contains(&c.as_str()))
        .count();
    assert_eq!(writes_once, 2);
    let (code, report, _) = w.respond(&event, &[]);
    assert_eq!(code, 0);
    assert_eq!(report["reports"][0]["status"], "already_contained");
    let writes_twice = w
        .function_calls()
        .await
        .iter()
        .filter(|c| WRITES.contains(&c.as_str()))
        .count();
    assert_eq!(writes_twice, writes_once, "the replay wrote again");

    let before = w.function_calls().await.len();
    let (code, _, stderr) = w.respond(
        &json!({"access_key_id": "AKIA-nope", "reason": "r", "requested_by": "me"}),
        &[],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("does not match"), "{stderr}");
    assert_eq!(
        w.function_calls().await.len(),
        before,
        "bad input reached AWS"
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn protected_principal_is_refused_with_zero_writes() {
    let w = World::new().await;
    let user = unique("break-glass");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let (code, report, stderr) = w.respond_with(
        &fixture("manual-request.json", &leaked.id, &user),
        &[],
        // IAM names are unique regardless of case: a differently-cased entry protects it too.
        &[(
            "KILLSWITCH_PROTECTED_PRINCIPALS",
            format!("someone-else,{}", user.to_uppercase()),
        )],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "refused");
    assert_eq!(attacker_call(&leaked).await, "ok");
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("refused"), "{subject}");
    assert!(
        !w.function_calls()
            .await
            .iter()
            .any(|c| WRITES.contains(&c.as_str()))
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn missing_configuration_fails_at_start_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args([
            "respond",
            "--event",
            concat!(env!("CARGO_MANIFEST_DIR"), "/events/manual-request.json"),
        ])
        .env_remove("KILLSWITCH_TOPIC_ARN")
        .env("AWS_ENDPOINT_URL", endpoint())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KILLSWITCH_TOPIC_ARN"));
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn concurrent_deliveries_to_real_processes_leave_one_consistent_state() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let event = fixture("guardduty-iam-user-finding.json", &leaked.id, &user);
    let path = std::env::temp_dir().join(format!("{}.json", unique("event")));
    std::fs::write(&path, event.to_string()).unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_killswitch"))
                .args(["respond", "--no-sweep", "--event"])
                .arg(&path)
                .env("AWS_ACCESS_KEY_ID", &w.function_key.id)
                .env("AWS_SECRET_ACCESS_KEY", &w.function_key.secret)
                .env("AWS_ENDPOINT_URL", endpoint())
                .env("AWS_REGION", "us-east-1")
                .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
                .env("KILLSWITCH_REGIONS", "us-east-1")
                .env("KILLSWITCH_VERIFY_DELAY_SECONDS", "1")
                .env("KILLSWITCH_WATCH_SECONDS", "0")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let status = report["reports"][0]["status"].as_str().unwrap().to_owned();
        assert!(
            status == "contained" || status == "already_contained",
            "{status}"
        );
    }
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    let policies = w
        .iam
        .list_user_policies()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    let mut names = policies.policy_names().to_vec();
    names.sort();
    assert_eq!(
        names,
        [policy::USER_POLICY_NAME, "drill-canary"],
        "no stacking"
    );
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");
}

/// A port nothing listens on (connection refused).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn refused_and_hanging_endpoints_end_contained_or_loud() {
    let w = World::new().await;

    // SNS refuses connections: the key is still contained, the exit code says the notice failed.
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let sns_down = format!("http://127.0.0.1:{}", closed_port());
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[
            ("AWS_ENDPOINT_URL_SNS", sns_down),
            ("KILLSWITCH_REGIONS", "us-east-1".into()),
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "contained");
    assert_eq!(report["reports"][0]["notification"]["state"], "failed");
    assert_eq!(attacker_call(&leaked).await, "InvalidClientTokenId");

    // IAM refuses connections: nothing contained, exit 1, and the notice still goes out.
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let iam_down = format!("http://127.0.0.1:{}", closed_port());
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[
            ("AWS_ENDPOINT_URL_IAM", iam_down),
            ("KILLSWITCH_REGIONS", "us-east-1".into()),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["reports"][0]["status"], "failed");
    assert!(stderr.contains("containment incomplete"), "{stderr}");
    let (subject, _) = w.inbox().await;
    assert!(subject.contains("CONTAINMENT FAILED"), "{subject}");

    // CloudTrail accepts connections and never answers: the SDK's timeouts end each call, the
    // search is reported incomplete, containment and the notice are unaffected.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://{}", hang.local_addr().unwrap());
    let _holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hang.incoming().flatten() {
            held.push(s);
        }
    });
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*"]).await;
    let (code, report, stderr) = w.respond_with(
        &fixture("guardduty-iam-user-finding.json", &leaked.id, &user),
        &[],
        &[
            ("AWS_ENDPOINT_URL_CLOUDTRAIL", hang_url),
            ("KILLSWITCH_REGIONS", "us-east-1".into()),
            ("KILLSWITCH_INVESTIGATION_SECONDS", "8".into()),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let r = &report["reports"][0];
    assert_eq!(r["status"], "contained");
    let regions = r["investigation"]["regions"].as_array().unwrap();
    assert!(
        regions.iter().all(|g| g["coverage"]["state"] != "complete"),
        "{regions:?}"
    );
    let (subject, message) = w.inbox().await;
    assert!(subject.contains("CONTAINED"), "{subject}");
    assert!(message.contains("INCOMPLETE"), "{message}");
}
