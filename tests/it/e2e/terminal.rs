//! On-call at a real terminal: `respond`, `status` and `restore` in a pseudo-terminal 80 columns
//! wide (scripts/pty_run.py), with an email topic and a chat topic subscribed to queues, so that
//! what reaches people is read where they read it.

use super::*;

/// What a terminal showed, and the exit code.
struct Screen {
    code: i32,
    text: String,
}

impl Screen {
    /// Lines as a person sees them: escape sequences (colour, the countdown's line erase) do
    /// not take columns.
    fn visible_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for raw in self.text.split('\n') {
            let raw = raw.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
            let mut line = String::new();
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                } else {
                    line.push(c);
                }
            }
            out.push(line);
        }
        out
    }

    fn assert_fits(&self, columns: usize) {
        for line in self.visible_lines() {
            assert!(
                line.chars().count() <= columns,
                "{} columns: {line:?}\n{}",
                line.chars().count(),
                self.text
            );
        }
    }
}

/// The on-call engineer's terminal: the function identity's credentials and the two topics.
struct Terminal {
    env: Vec<(String, String)>,
}

impl Terminal {
    fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Screen {
        self.run_keys(args, extra_env, &[])
    }

    /// `keys`: pty_run.py's key presses (`--interrupt-on TEXT`, `--eof-on TEXT`).
    fn run_keys(&self, args: &[&str], extra_env: &[(&str, &str)], keys: &[&str]) -> Screen {
        let script = format!("{}/scripts/pty_run.py", env!("CARGO_MANIFEST_DIR"));
        let mut c = Command::new("python3");
        c.arg(script)
            .args(["--cols", "80", "--rows", "50", "--timeout", "120"])
            .args(keys)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_killswitch"))
            .args(args)
            .env_remove("KILLSWITCH_DRY_RUN")
            .env_remove("NO_COLOR")
            .env("TERM", "xterm");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        for (k, v) in extra_env {
            if v.is_empty() {
                c.env_remove(k);
            } else {
                c.env(k, v);
            }
        }
        let out = c.output().unwrap();
        Screen {
            code: out.status.code().unwrap_or(-1),
            text: String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
        }
    }
}

/// The screen with what changes from run to run (key IDs, times, the user, the duration)
/// replaced by values of the same width, from the first report line on: wrapping is part of
/// what is compared.
fn normalized(screen: &Screen, user: &str) -> String {
    let mut out = Vec::new();
    let mut started = false;
    let mut operator = false;
    for line in screen.visible_lines() {
        started |= line.starts_with("[killswitch] ");
        if !started {
            continue;
        }
        // The responder's own user has a name of varying width.
        if line.starts_with("Operator:") {
            operator = true;
            out.push("Operator:   (the profile's identity)".to_owned());
            continue;
        }
        if operator && line.starts_with("            ") {
            continue;
        }
        operator = false;
        let mut l = line.replace(user, &"U".repeat(user.len()));
        for (pattern, with) in [
            (r"AKIA[A-Z0-9]{16}", "AKIAXXXXXXXXXXXXXXXX"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "2026-01-01T00:00:00Z"),
            (r"done in [0-9.]+ s", "done in 0.0 s"),
        ] {
            l = regex_lite::Regex::new(pattern)
                .unwrap()
                .replace_all(&l, with)
                .into_owned();
        }
        out.push(l);
    }
    out.join("\n") + "\n"
}

/// Compares with the stored snapshot; `KILLSWITCH_UPDATE_SNAPSHOTS=1` rewrites it.
fn assert_snapshot(name: &str, got: &str) {
    let path = format!(
        "{}/tests/it/e2e/snapshots/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var("KILLSWITCH_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (KILLSWITCH_UPDATE_SNAPSHOTS=1 writes it)"));
    assert_eq!(
        got, want,
        "the 80-column screen changed; review it and update {path}"
    );
}

/// Everything waiting in a queue (SNS deliveries), emptied.
async fn drain(queue: &str) -> Vec<(String, String)> {
    let sandbox = sandbox().await;
    let mut got = Vec::new();
    while let Some(m) = sandbox.receive(queue, 1).await.unwrap() {
        got.push(m);
    }
    got
}

/// The on-call engineer at the terminal, the key they respond to, and the queue the chat topic
/// delivers to (the email topic's is the world's).
struct OnCall<'a> {
    w: &'a World,
    term: Terminal,
    chat_queue: String,
    user: String,
    leaked: Key,
    /// The engineer's AWS config and credentials files, removed at the end.
    files: Vec<std::path::PathBuf>,
}

impl<'a> OnCall<'a> {
    /// The engineer's own profile holds the responder's key; the environment holds another
    /// identity's (a leftover export), which must not be the one that acts.
    async fn new(w: &'a World) -> Self {
        let (chat_topic, chat_queue) = sandbox().await.create_inbox(&unique("chat")).await.unwrap();
        let (_, _, table) = follow_up_queue_and_table(w).await;
        let user = unique("leaky");
        let leaked = create_user_with_key(&user, &["iam:List*", "sts:GetCallerIdentity"]).await;
        let bystander =
            create_user_with_key(&unique("bystander"), &["sts:GetCallerIdentity"]).await;
        let credentials = std::env::temp_dir().join(unique("credentials"));
        std::fs::write(
            &credentials,
            format!(
                "[oncall]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                w.function_key.id, w.function_key.secret
            ),
        )
        .unwrap();
        let config = std::env::temp_dir().join(unique("config"));
        std::fs::write(&config, "[profile oncall]\nregion = us-east-1\n").unwrap();
        let term = Terminal {
            env: vec![
                ("AWS_ACCESS_KEY_ID".into(), bystander.id.clone()),
                ("AWS_SECRET_ACCESS_KEY".into(), bystander.secret.clone()),
                ("AWS_ENDPOINT_URL".into(), endpoint()),
                ("AWS_REGION".into(), "us-east-1".into()),
                (
                    "AWS_SHARED_CREDENTIALS_FILE".into(),
                    credentials.to_string_lossy().into_owned(),
                ),
                (
                    "AWS_CONFIG_FILE".into(),
                    config.to_string_lossy().into_owned(),
                ),
                ("KILLSWITCH_TOPIC_ARN".into(), w.topic_arn.clone()),
                ("KILLSWITCH_CHAT_TOPIC_ARN".into(), chat_topic.clone()),
                ("KILLSWITCH_INCIDENT_TABLE".into(), table.clone()),
                ("KILLSWITCH_VERIFY_DELAY_SECONDS".into(), "1".into()),
                ("KILLSWITCH_WATCH_SECONDS".into(), "0".into()),
                ("KILLSWITCH_INVESTIGATION_SECONDS".into(), "15".into()),
                ("KILLSWITCH_REGIONS".into(), "us-east-1".into()),
            ],
        };
        Self {
            w,
            term,
            chat_queue,
            user,
            leaked,
            files: vec![credentials, config],
        }
    }

    /// `respond` to the leaked key as the profile, with `extra` flags.
    fn respond(&self, extra: &[&str]) -> Screen {
        let mut args = vec![
            "--profile",
            "oncall",
            "respond",
            "--access-key-id",
            self.leaked.id.as_str(),
            "--reason",
            "pasted in a public gist",
            "--no-sweep",
        ];
        args.extend_from_slice(extra);
        self.term.run(&args, &[])
    }

    /// Nothing reached the email topic's queue, nor the chat topic's.
    async fn assert_nobody_paged(&self) {
        assert!(drain(&self.w.queue_url).await.is_empty());
        assert!(drain(&self.chat_queue).await.is_empty());
    }

    /// A profile nobody defined: one line, exit 2, before any call; nothing contained.
    async fn an_unknown_profile_is_one_line(&self) {
        let w = self.w;
        let term = &self.term;
        let leaked = &self.leaked;
        let user = self.user.as_str();
        let typo = term.run(
            &[
                "--profile",
                "oncal",
                "respond",
                "--access-key-id",
                &leaked.id,
                "--reason",
                "r",
                "--no-sweep",
            ],
            &[],
        );
        assert_eq!(typo.code, 2, "{}", typo.text);
        assert_eq!(typo.text.trim().lines().count(), 1, "{}", typo.text);
        assert!(typo.text.contains("--profile oncal"), "{}", typo.text);
        assert_eq!(
            w.key_status(user, &leaked.id).await,
            Some(StatusType::Active)
        );
    }

    /// A dry run with --no-notify publishes nowhere, chat included, and claims no containment.
    async fn a_dry_run_without_notices_publishes_nowhere(&self) {
        let w = self.w;
        let leaked = &self.leaked;
        let user = self.user.as_str();
        let dry = self.respond(&["--dry-run", "--no-notify"]);
        assert_eq!(dry.code, 0, "{}", dry.text);
        dry.assert_fits(80);
        assert!(dry.text.contains("[killswitch] DRY RUN: "), "{}", dry.text);
        assert!(!dry.text.contains("after containment"), "{}", dry.text);
        // --profile wins over the environment's credentials, and says whose they are first.
        let first = dry
            .visible_lines()
            .into_iter()
            .find(|l| !l.starts_with("  .."));
        assert!(
            first.as_deref().is_some_and(
                |l| l.starts_with("Acting as arn:aws:iam::123456789012:user/killswitch-fn-")
            ),
            "{}",
            dry.text
        );
        self.assert_nobody_paged().await;
        assert_eq!(
            w.key_status(user, &leaked.id).await,
            Some(StatusType::Active)
        );
    }

    /// The screen as a snapshot, with a user name of fixed width so that wrapping is stable.
    async fn the_screen_matches_the_snapshot(&self) {
        let term = &self.term;
        let fixed = format!(
            "oncall{:010}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 10_000_000_000
        );
        let snapshot_key = create_user_with_key(&fixed, &["iam:List*"]).await;
        let shot = term.run(
            &[
                "--profile",
                "oncall",
                "respond",
                "--access-key-id",
                &snapshot_key.id,
                "--reason",
                "pasted in a public gist",
                "--requested-by",
                "oncall@example.com",
                "--no-sweep",
                "--dry-run",
                "--no-notify",
            ],
            &[],
        );
        assert_eq!(shot.code, 0, "{}", shot.text);
        assert_snapshot("respond-dry-run", &normalized(&shot, &fixed));
    }

    /// For real, still --no-notify: contained, and still nothing published.
    async fn contained_without_notices(&self) {
        let w = self.w;
        let leaked = &self.leaked;
        let user = self.user.as_str();
        let quiet = self.respond(&["--no-notify"]);
        assert_eq!(quiet.code, 0, "{}", quiet.text);
        quiet.assert_fits(80);
        assert!(
            quiet.text.contains("[killswitch] CONTAINED: "),
            "{}",
            quiet.text
        );
        assert!(
            quiet.text.contains("Notice: NOT published"),
            "{}",
            quiet.text
        );
        // A suggested command acts as the same profile when pasted.
        assert!(
            quiet
                .text
                .contains("killswitch --profile oncall restore --access-key-id"),
            "{}",
            quiet.text
        );
        assert_eq!(
            w.key_status(user, &leaked.id).await,
            Some(StatusType::Inactive)
        );
        self.assert_nobody_paged().await;
    }

    /// The same command again, publishing: already contained, said once, nobody paged.
    async fn the_same_command_again_pages_nobody(&self) {
        let again = self.respond(&[]);
        assert_eq!(again.code, 0, "{}", again.text);
        again.assert_fits(80);
        assert_eq!(
            again
                .text
                .matches("[killswitch] ALREADY CONTAINED: ")
                .count(),
            1,
            "{}",
            again.text
        );
        assert!(!again.text.contains("CONTESTED"), "{}", again.text);
        assert!(!again.text.contains("set to Inactive"), "{}", again.text);
        self.assert_nobody_paged().await;
    }

    /// Status at 80 columns; a restore dry run at 80 columns publishes nothing either.
    async fn status_and_a_restore_dry_run_fit(&self) {
        let term = &self.term;
        let leaked = &self.leaked;
        let user = self.user.as_str();
        let status = term.run(
            &[
                "--profile",
                "oncall",
                "status",
                "--access-key-id",
                &leaked.id,
            ],
            &[],
        );
        assert_eq!(status.code, 0, "{}", status.text);
        status.assert_fits(80);
        assert!(
            status
                .text
                .contains(&format!("Key {}: IAM user {user}", leaked.id)),
            "{}",
            status.text
        );

        // A restore dry run at 80 columns publishes nothing either.
        let restore = term.run(
            &[
                "--profile",
                "oncall",
                "restore",
                "--access-key-id",
                &leaked.id,
                "--requested-by",
                "alice@example.com",
                "--reason",
                "rotated",
                "--dry-run",
            ],
            &[],
        );
        assert_eq!(restore.code, 0, "{}", restore.text);
        restore.assert_fits(80);
        assert!(restore.text.contains("DRY RUN"), "{}", restore.text);
        self.assert_nobody_paged().await;
    }

    /// A one-character typo in the key ID: said plainly, exit 4, nobody paged.
    async fn a_typo_in_the_key_pages_nobody(&self) {
        let term = &self.term;
        let leaked = &self.leaked;
        let mut typo_key = leaked.id.clone();
        let last = if typo_key.ends_with('Q') { "Z" } else { "Q" };
        typo_key.replace_range(19..20, last);
        let typo = term.run(
            &[
                "--profile",
                "oncall",
                "respond",
                "--access-key-id",
                &typo_key,
                "--reason",
                "r",
                "--no-sweep",
            ],
            &[],
        );
        assert_eq!(typo.code, 4, "{}", typo.text);
        typo.assert_fits(80);
        assert!(typo.text.contains("KEY NOT FOUND"), "{}", typo.text);
        assert!(typo.text.contains("nobody was paged"), "{}", typo.text);
        assert!(!typo.text.contains("after containment"), "{}", typo.text);
        self.assert_nobody_paged().await;
    }

    /// `--event -` at a terminal says it is reading, instead of waiting in silence.
    fn reading_the_event_says_so(&self) {
        let term = &self.term;
        let stdin = term.run_keys(
            &[
                "--profile",
                "oncall",
                "respond",
                "--event",
                "-",
                "--no-sweep",
                "--no-notify",
            ],
            &[],
            &["--eof-on", "Ctrl-D"],
        );
        assert!(
            stdin.text.contains("reading the event from this terminal"),
            "{}",
            stdin.text
        );
        assert_eq!(stdin.code, 2, "{}", stdin.text);
    }

    /// Waiting for the sweep: the wait is the last line; Ctrl-C says what will not happen and
    /// how to do it by hand.
    async fn ctrl_c_in_the_sweep_wait_says_what_is_skipped(&self) {
        let w = self.w;
        let term = &self.term;
        let user2 = unique("leaky");
        let leaked2 = create_user_with_key(&user2, &["iam:List*"]).await;
        let waiting = term.run_keys(
            &[
                "--profile",
                "oncall",
                "respond",
                "--access-key-id",
                &leaked2.id,
                "--reason",
                "r",
                "--no-notify",
            ],
            &[("KILLSWITCH_SWEEP_SECONDS", "600")],
            &["--interrupt-on", "CloudTrail sweep in "],
        );
        assert_eq!(waiting.code, 130, "{}", waiting.text);
        assert!(waiting.text.contains("Ctrl-C skips it"), "{}", waiting.text);
        assert!(
            waiting.text.contains("NO FINAL notice will be sent"),
            "{}",
            waiting.text
        );
        // The command to search by hand, continued over lines with ` \` as a shell reads it.
        let pasted = regex_lite::Regex::new(r" \\\n\s+")
            .unwrap()
            .replace_all(&waiting.visible_lines().join("\n"), " ")
            .into_owned();
        assert!(
            pasted.contains(&format!(
                "--lookup-attributes AttributeKey=AccessKeyId,AttributeValue={}",
                leaked2.id
            )),
            "{}",
            waiting.text
        );
        assert_eq!(
            w.key_status(&user2, &leaked2.id).await,
            Some(StatusType::Inactive),
            "containment is unaffected"
        );
    }

    /// Undone for real: the next run re-applies and pages CONTESTED.
    async fn undone_containment_is_contested(&self) {
        let w = self.w;
        let user = self.user.as_str();
        w.iam
            .delete_user_policy()
            .user_name(user)
            .policy_name(policy::USER_POLICY_NAME)
            .send()
            .await
            .unwrap();
        let contested = self.respond(&[]);
        assert_eq!(contested.code, 0, "{}", contested.text);
        assert!(contested.text.contains("CONTESTED"), "{}", contested.text);
        let paged = drain(&w.queue_url).await;
        assert!(
            paged.iter().any(|(s, _)| s.contains("CONTESTED")),
            "{paged:?}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn respond_status_and_restore_at_an_80_column_terminal_say_it_plainly_and_publish_only_when_asked()
 {
    let w = World::new().await;
    let on_call = OnCall::new(&w).await;
    on_call.an_unknown_profile_is_one_line().await;
    on_call.a_dry_run_without_notices_publishes_nowhere().await;
    on_call.the_screen_matches_the_snapshot().await;
    on_call.contained_without_notices().await;
    on_call.the_same_command_again_pages_nobody().await;
    on_call.status_and_a_restore_dry_run_fit().await;
    on_call.a_typo_in_the_key_pages_nobody().await;
    on_call.reading_the_event_says_so();
    on_call
        .ctrl_c_in_the_sweep_wait_says_what_is_skipped()
        .await;
    on_call.undone_containment_is_contested().await;
    for file in &on_call.files {
        let _ = std::fs::remove_file(file);
    }
}
