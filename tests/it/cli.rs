//! The command line without AWS: what a person gets before any call (help, version, completions,
//! the man page, and errors that say what kind they are).

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn killswitch(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_killswitch"));
    c.args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "KILLSWITCH_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:killswitch",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn plain_killswitch_outside_lambda_prints_help_instead_of_starting_the_runtime() {
    let out = killswitch(&[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stdout).contains("Usage: killswitch"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("AWS_LAMBDA_RUNTIME_API"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_names_the_commit_and_every_help_has_an_example() {
    let out = killswitch(&["--version"], None);
    assert!(out.status.success());
    let v = text(&out.stdout);
    assert!(
        v.starts_with("killswitch 0.") && v.contains("(commit "),
        "{v}"
    );
    assert!(!v.contains("commit )"), "{v}");
    for sub in [
        vec!["--help"],
        vec!["respond", "--help"],
        vec!["status", "--help"],
        vec!["restore", "--help"],
        vec!["drill", "--help"],
        vec!["completions", "--help"],
        vec!["man", "--help"],
    ] {
        let out = killswitch(&sub, None);
        assert!(out.status.success(), "{sub:?}");
        assert!(
            text(&out.stdout).contains("Examples:\n  "),
            "{sub:?}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = killswitch(&["completions", shell], None);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(
            script.contains("respond") && script.contains("access-key-id"),
            "{shell}"
        );
    }
    let out = killswitch(&["man"], None);
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(page.contains(".TH killswitch 1"), "{page}");
    assert!(
        page.contains("respond") && page.contains("restore"),
        "{page}"
    );
}

#[test]
fn errors_say_what_kind_they_are() {
    // A file that is not there is not an event problem.
    let out = killswitch(&["respond", "--event", "/nonexistent/finding.json"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot read event file /nonexistent/finding.json"),
        "{err}"
    );
    assert!(!err.contains("event not understood"), "{err}");
    // Nothing on stdin.
    let out = killswitch(&["respond", "--event", "-"], Some(""));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("stdin is empty"),
        "{}",
        text(&out.stderr)
    );
    // A typo'd field gets a suggestion.
    let typo = r#"{"access_key_id":"AKIAIOSFODNN7EXAMPLE","user_nmae":"alice","reason":"r","requested_by":"me"}"#;
    let out = killswitch(&["respond", "--event", "-"], Some(typo));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(r#"did you mean "user_name" for "user_nmae"?"#),
        "{}",
        text(&out.stderr)
    );
    // A bad key from the flags fails before any AWS call.
    let out = killswitch(
        &["respond", "--access-key-id", "AKIA123", "--reason", "r"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("does not match"),
        "{}",
        text(&out.stderr)
    );
    // A flag without what it needs is the parser's error.
    let out = killswitch(
        &["respond", "--access-key-id", "AKIAIOSFODNN7EXAMPLE"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--reason"),
        "{}",
        text(&out.stderr)
    );
    // No Region anywhere: one clear error, not the SDK's search for one.
    let out = killswitch(&["status", "--access-key-id", "AKIAIOSFODNN7EXAMPLE"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("no AWS Region: pass --region"), "{err}");
    assert!(!err.contains("IMDS"), "{err}");
    let out = killswitch(
        &[
            "--region",
            "mars-1",
            "status",
            "--access-key-id",
            "AKIAIOSFODNN7EXAMPLE",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not an AWS Region name"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn text_or_json_is_chosen_by_the_terminal_unless_asked() {
    use killswitch::cli::Output;
    assert_eq!(Output::resolve(None, true), Output::Text);
    assert_eq!(Output::resolve(None, false), Output::Json);
    assert_eq!(Output::resolve(Some(Output::Json), true), Output::Json);
    assert_eq!(Output::resolve(Some(Output::Text), false), Output::Text);
}

#[test]
fn help_fits_an_80_column_terminal_and_the_man_page_examples_paste_as_typed() {
    for sub in [
        vec!["--help"],
        vec!["respond", "--help"],
        vec!["status", "--help"],
        vec!["restore", "--help"],
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_killswitch"));
        let out = c.args(&sub).env("COLUMNS", "80").output().unwrap();
        let help = text(&out.stdout);
        for line in help.lines() {
            assert!(line.chars().count() <= 80, "{sub:?}: {line:?}");
        }
    }
    let out = killswitch(&["man"], None);
    let page = text(&out.stdout);
    assert!(!page.contains(".SH EXTRA"), "{page}");
    assert!(!page.contains('\u{2010}'), "a Unicode hyphen: {page}");
    let examples = page
        .split(".SH EXAMPLES\n")
        .nth(1)
        .expect("an EXAMPLES section");
    assert!(examples.starts_with(".nf\n"), "not filled: {examples}");
    assert!(
        examples.contains("killswitch respond \\-\\-access\\-key\\-id AKIAIOSFODNN7EXAMPLE"),
        "{examples}"
    );
    assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
}

#[test]
fn a_bad_key_id_is_a_flag_error_with_a_hint_not_an_event_problem() {
    for (key, hint) in [
        ("AKIA123", "7 characters long; a key ID is 20"),
        ("akiaiosfodnn7example", "upper case"),
        ("wJalrXUtnFEMI/K7MDENG", "starts with AKIA"),
    ] {
        let out = killswitch(&["respond", "--access-key-id", key, "--reason", "r"], None);
        assert_eq!(out.status.code(), Some(2), "{key}");
        let err = text(&out.stderr);
        assert!(!err.contains("event"), "{key}: {err}");
        assert!(err.contains(hint), "{key}: {err}");
        // A pasted secret access key is not printed back.
        assert!(!err.contains("wJalrXUtnFEMI"), "{key}: {err}");
    }
}

#[test]
fn an_unknown_profile_is_one_line_and_exit_2_before_any_call() {
    let config = std::env::temp_dir().join(format!("ks-config-{}", std::process::id()));
    std::fs::write(&config, "[profile oncall]\nregion = us-east-1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(["--profile", "oncal", "respond", "--access-key-id"])
        .args(["AKIAIOSFODNN7EXAMPLE", "--reason", "r", "--no-sweep"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        // Credentials in the environment must not stand in for the profile, and a call would
        // fail on this closed port instead of printing the profile's name.
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env(
            "KILLSWITCH_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:k",
        )
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&config);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--profile oncal: no such profile") && err.contains("oncall"),
        "{err}"
    );
}

#[test]
fn help_examples_are_never_rewrapped_so_a_pasted_line_is_a_whole_command() {
    use clap::CommandFactory;
    let root = killswitch::cli::Cli::command();
    let mut commands = vec![root.clone()];
    commands.extend(root.get_subcommands().cloned());
    for cmd in commands {
        let after = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        let lines: Vec<&str> = after.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            // Under 80 columns, clap leaves the line as written.
            assert!(line.chars().count() <= 78, "{}: {line:?}", cmd.get_name());
            // A command that goes on says so, and its next line is indented under it.
            if line.trim_start().starts_with("killswitch ") && line.ends_with('\\') {
                assert!(
                    lines[i + 1].starts_with("      "),
                    "{}: {line:?}",
                    cmd.get_name()
                );
            }
        }
    }
}
