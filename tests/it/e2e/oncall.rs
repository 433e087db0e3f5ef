//! On-call at the command line (piped, not a terminal): respond by flags from a profile or by an
//! event on stdin, dry runs without a topic, status, an unconfirmed restore.

use super::*;

/// The command line as on-call types it, as the function identity, from `dir`'s AWS config.
fn oncall_cli(
    w: &World,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_killswitch"));
    c.args(args)
        .env("AWS_ACCESS_KEY_ID", &w.function_key.id)
        .env("AWS_SECRET_ACCESS_KEY", &w.function_key.secret)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("KILLSWITCH_TOPIC_ARN", &w.topic_arn)
        .env("KILLSWITCH_VERIFY_DELAY_SECONDS", "1")
        .env("KILLSWITCH_WATCH_SECONDS", "0")
        .env("KILLSWITCH_INVESTIGATION_SECONDS", "15")
        .env("KILLSWITCH_REGIONS", "us-east-1")
        .env_remove("KILLSWITCH_DRY_RUN")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // An empty value unsets the variable.
    for (k, v) in env {
        if v.is_empty() {
            c.env_remove(k);
        } else {
            c.env(k, v);
        }
    }
    let mut child = c.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// A profile in another Region than the topic's: the notice still goes out. Its credentials
/// are the ones used (the profile named on the command line wins, as in the AWS CLI).
async fn responds_by_flags_from_a_profile(w: &World, user: &str, leaked: &Key) {
    let config = std::env::temp_dir().join(unique("aws-config"));
    std::fs::write(
        &config,
        format!(
            "[profile oncall]\nregion = eu-west-1\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            w.function_key.id, w.function_key.secret
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let out = oncall_cli(
        w,
        &[
            "--profile",
            "oncall",
            "respond",
            "--access-key-id",
            &leaked.id,
            "--reason",
            "pasted in a public gist",
            "--output",
            "text",
            "--no-sweep",
        ],
        &[("AWS_CONFIG_FILE", &config), ("AWS_REGION", "")],
        None,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        w.key_status(user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
    assert!(stdout.contains("[killswitch] CONTAINED"), "{stdout}");
    assert!(stdout.contains("Notice: sent to the SNS topic"), "{stdout}");
    let closing = stdout.lines().rev().take(2).collect::<Vec<_>>();
    assert!(closing[0].starts_with("== done in "), "{stdout}");
    assert!(
        closing[1].starts_with(&format!(
            "== CONTAINED {} IAM user {user}, acct ",
            leaked.id
        )),
        "{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "no color when piped: {stdout}");
    // Requested by: the caller's own identity when --requested-by is not given.
    let (_, message) = w.inbox().await;
    assert!(
        message.contains("by \"arn:aws:iam::") && message.contains("killswitch-fn-"),
        "{message}"
    );
}

/// The event on stdin; JSON when piped.
async fn responds_to_an_event_on_stdin(w: &World) {
    let user2 = unique("leaky");
    let leaked2 = create_user_with_key(&user2, &["iam:List*"]).await;
    let request = json!({"access_key_id": leaked2.id, "reason": "r", "requested_by": "oncall"});
    let out = oncall_cli(
        w,
        &["respond", "--event", "-", "--no-sweep", "--quiet"],
        &[],
        Some(&request.to_string()),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --quiet: the result only, no log lines.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reports"][0]["status"], "contained", "{report}");
    assert_eq!(
        report["reports"][0]["principal"],
        format!("IAM user {user2}")
    );
}

/// A dry run needs no topic and publishes nothing.
async fn a_dry_run_needs_no_topic(w: &World) {
    let user3 = unique("leaky");
    let leaked3 = create_user_with_key(&user3, &["iam:List*"]).await;
    let out = oncall_cli(
        w,
        &[
            "respond",
            "--access-key-id",
            &leaked3.id,
            "--reason",
            "r",
            "--dry-run",
            "--no-sweep",
        ],
        &[("KILLSWITCH_TOPIC_ARN", "")],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &report["reports"][0];
    assert_eq!(r["status"], "dry_run", "{r}");
    assert_eq!(r["notification"]["state"], "not_published", "{r}");
    assert_eq!(r["undo"], json!([]), "{r}");
    assert_eq!(
        w.key_status(&user3, &leaked3.id).await,
        Some(StatusType::Active)
    );
    // A request that asks for a dry run itself needs no topic either.
    let asks =
        json!({"access_key_id": leaked3.id, "reason": "r", "requested_by": "me", "dry_run": true});
    let out = oncall_cli(
        w,
        &["respond", "--event", "-", "--no-sweep"],
        &[("KILLSWITCH_TOPIC_ARN", "")],
        Some(&asks.to_string()),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reports"][0]["status"], "dry_run", "{report}");
    assert_eq!(
        w.key_status(&user3, &leaked3.id).await,
        Some(StatusType::Active)
    );
}

/// Status, as a person reads it: when, by which incident, what else the deny blocks. A key that
/// does not exist: exit 4.
async fn status_reads_plainly(w: &World, user: &str, leaked: &Key) {
    let second = aws_sdk_iam::Client::new(&sdk(&admin()).await)
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap()
        .access_key_id;
    let out = oncall_cli(
        w,
        &["status", "--access-key-id", &leaked.id, "--output", "text"],
        &[("KILLSWITCH_INCIDENT_TABLE", "")],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("Key {}: IAM user {user}, account ", leaked.id)),
        "{text}"
    );
    assert!(text.contains("key:        Inactive"), "{text}");
    assert!(
        text.contains(&format!("user/{user}: KillSwitchDenyAll")),
        "{text}"
    );
    assert!(
        text.contains("the deny also blocks") && text.contains(&second),
        "{text}"
    );
    // A key that does not exist: exit 4.
    let out = oncall_cli(
        w,
        &["status", "--access-key-id", "AKIAZZZZZZZZZZZZZZZZ"],
        &[],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn on_call_at_a_terminal_responds_by_flags_from_a_profile_and_reads_status() {
    let w = World::new().await;
    let user = unique("leaky");
    let leaked = create_user_with_key(&user, &["iam:List*", "sts:GetCallerIdentity"]).await;
    responds_by_flags_from_a_profile(&w, &user, &leaked).await;
    responds_to_an_event_on_stdin(&w).await;
    a_dry_run_needs_no_topic(&w).await;
    status_reads_plainly(&w, &user, &leaked).await;
    // A restore nobody confirms (no terminal, no --yes) changes nothing and says so.
    let out = oncall_cli(
        &w,
        &[
            "restore",
            "--access-key-id",
            &leaked.id,
            "--reason",
            "r",
            "--requested-by",
            "me",
            "--force",
        ],
        &[],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not confirmed"));
    assert_eq!(
        w.key_status(&user, &leaked.id).await,
        Some(StatusType::Inactive)
    );
}
