//! The README's first box, "Important — what it changes in your account", is the paragraph an
//! operator reads before deploying. Each policy it names for a kind of credential is the policy
//! the code writes for that kind with the default configuration; the role-wide cutoff is named
//! only after the settings that choose it, and those settings do write it. The sample run's
//! timing (docs/on-call.md) is the default propagation wait's.

use std::time::Duration;

use killswitch::config::Config;
use killswitch::handler::App;
use killswitch::policy::{ROLE_POLICY_NAME, SESSION_POLICY_NAME, USER_POLICY_NAME};
use killswitch::ports::KeyStatus;
use killswitch::report::Status;
use serde_json::json;

use crate::support::*;

/// A file of the crate's docs (`README.md`, `docs/on-call.md`).
fn doc(file: &str) -> String {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The doc that holds the on-call sample run ("What an 80-column terminal shows").
const SAMPLE_RUN: &str = "docs/on-call.md";

/// The box's first paragraph (what it changes), its quoted lines joined.
fn important_box() -> String {
    let text = doc("README.md");
    let start = text
        .find("> **Important — what it changes in your account.**")
        .expect("README.md: the box \"Important — what it changes in your account\"");
    text[start..]
        .lines()
        .map_while(|l| l.strip_prefix('>'))
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the box says about one kind of credential: from its marker to the next kind's.
fn said_of<'a>(text: &'a str, marker: &str, next: Option<&str>) -> &'a str {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("the box no longer says {marker:?}: {text}"));
    let rest = &text[start..];
    match next.and_then(|n| rest.find(n)) {
        Some(end) => &rest[..end],
        None => rest,
    }
}

/// The policy names (`` `KillSwitch…` ``) a stretch of text names, in order, with where.
fn policy_names(text: &str) -> Vec<(usize, &str)> {
    text.match_indices("`KillSwitch")
        .filter_map(|(at, _)| {
            let name = &text[at + 1..];
            let end = name.find('`')?;
            Some((at, &name[..end]))
        })
        .collect()
}

/// The default configuration, as deployed: nothing set but the topic.
fn default_config() -> Config {
    Config::from_lookup(|k| {
        (k == "KILLSWITCH_TOPIC_ARN").then(|| format!("arn:aws:sns:us-east-1:{ACCOUNT}:killswitch"))
    })
    .unwrap()
}

/// The `KillSwitch…` inline policies the code wrote on `target` (`user/alice`, `role/x`) for
/// one trigger, with `config` (its propagation wait skipped).
async fn written(
    cloud: FakeCloud,
    mut config: Config,
    trigger: serde_json::Value,
    target: &str,
) -> (Vec<String>, App<FakeCloud>) {
    config.verify_delay = Duration::ZERO;
    config.investigation_budget = Duration::from_secs(30);
    let a = App {
        cloud,
        config,
        responder: Some(responder()),
    };
    let r = run(&a, trigger).await.reports[0].clone();
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    let mut names: Vec<String> = a
        .cloud
        .state
        .lock()
        .unwrap()
        .policies
        .keys()
        .filter(|(t, name)| t == target && name.starts_with("KillSwitch"))
        .map(|(_, name)| name.clone())
        .collect();
    names.sort();
    (names, a)
}

fn role_cloud() -> FakeCloud {
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), "AROACKCEVSQ6C2EXAMPLE".into());
    cloud
}

const USER_KEY: &str = "**long-term key (`AKIA…`) of an IAM user**";
const ROLE_SESSION: &str = "**role session (`ASIA…`)**";
const USER_SESSION: &str = "An `ASIA…` key of a user";

#[test]
fn the_box_names_only_policies_the_code_has() {
    let text = important_box();
    let names = policy_names(&text);
    assert!(!names.is_empty(), "{text}");
    for (_, name) in names {
        assert!(
            [USER_POLICY_NAME, SESSION_POLICY_NAME, ROLE_POLICY_NAME].contains(&name),
            "the box names {name}, which killswitch never writes"
        );
    }
}

#[tokio::test]
async fn what_the_box_says_of_a_users_long_term_key_is_what_the_code_does() {
    let text = important_box();
    let said = said_of(&text, USER_KEY, Some(ROLE_SESSION));
    let (names, a) = written(
        FakeCloud::with_user("alice", FIXTURE_KEY),
        default_config(),
        event("guardduty-iam-user-finding.json"),
        "user/alice",
    )
    .await;
    assert_eq!(names, [USER_POLICY_NAME]);
    let claimed: Vec<&str> = policy_names(said).into_iter().map(|(_, n)| n).collect();
    assert_eq!(claimed, [USER_POLICY_NAME], "{said}");
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(said.contains("**Inactive**"), "{said}");
}

#[tokio::test]
async fn what_the_box_says_of_a_role_session_is_what_the_code_does() {
    let text = important_box();
    let said = said_of(&text, ROLE_SESSION, Some(USER_SESSION));
    let claimed = policy_names(said);

    // The default: the exact session, never the role-wide cutoff.
    let (names, _) = written(
        role_cloud(),
        default_config(),
        event("guardduty-assumed-role-finding.json"),
        "role/ci-deployer",
    )
    .await;
    assert_eq!(names, [SESSION_POLICY_NAME]);
    let (_, default) = claimed
        .first()
        .unwrap_or_else(|| panic!("the box names no policy for a role session: {said}"));
    assert_ne!(
        *default, ROLE_POLICY_NAME,
        "the box gives the role-wide cutoff as what a role session gets by default: {said}"
    );
    assert_eq!(*default, names[0], "{said}");

    // The role-wide cutoff: named only after the settings that choose it, and they write it.
    let role_wide = said
        .find("KILLSWITCH_ROLE_WIDE_REVOCATION")
        .unwrap_or_else(|| panic!("{said}"));
    for (at, name) in &claimed[1..] {
        assert_eq!(*name, ROLE_POLICY_NAME, "{said}");
        assert!(
            *at > role_wide,
            "{name} is named before what chooses it: {said}"
        );
    }
    let mut config = default_config();
    config.role_wide = vec!["ci-deployer".into()];
    let (names, _) = written(
        role_cloud(),
        config,
        event("guardduty-assumed-role-finding.json"),
        "role/ci-deployer",
    )
    .await;
    assert_eq!(names, [ROLE_POLICY_NAME]);
    // "when the session cannot be named": a request that names the role but no session.
    assert!(said.contains("session cannot be named"), "{said}");
    let (names, _) = written(
        role_cloud(),
        default_config(),
        json!({
            "access_key_id": FIXTURE_ROLE_KEY,
            "role_name": "ci-deployer",
            "reason": "r",
            "requested_by": "me",
        }),
        "role/ci-deployer",
    )
    .await;
    assert_eq!(names, [ROLE_POLICY_NAME]);
}

#[tokio::test]
async fn what_the_box_says_of_a_users_session_key_is_what_the_code_does() {
    let text = important_box();
    let said = said_of(&text, USER_SESSION, None);
    let mut finding = event("guardduty-iam-user-finding.json");
    finding["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!(FIXTURE_ROLE_KEY);
    let (names, _) = written(
        FakeCloud::with_user("alice", FIXTURE_KEY),
        default_config(),
        finding,
        "user/alice",
    )
    .await;
    assert_eq!(names, [USER_POLICY_NAME]);
    let claimed: Vec<&str> = policy_names(said).into_iter().map(|(_, n)| n).collect();
    assert_eq!(claimed, [USER_POLICY_NAME], "{said}");
}

/// The sample run ("What a terminal shows", in docs/on-call.md) is a default run: its
/// propagation wait is the default one, and the time it took is at least that.
#[test]
fn the_sample_run_waits_the_default_propagation_window() {
    let on_call = doc(SAMPLE_RUN);
    let start = on_call
        .find("terminal shows (the local AWS")
        .unwrap_or_else(|| panic!("{SAMPLE_RUN}: the sample run (\"What a terminal shows\")"));
    let text = &on_call[start..];
    let default = default_config().verify_delay.as_secs();
    let number_before = |marker: &str| -> f64 {
        let at = text
            .find(marker)
            .unwrap_or_else(|| panic!("{SAMPLE_RUN} no longer has {marker:?}"));
        let digits: String = text[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        digits
            .parse()
            .unwrap_or_else(|e| panic!("{marker}: {digits:?}: {e}"))
    };
    let number_after = |marker: &str| -> f64 {
        let at = text
            .find(marker)
            .unwrap_or_else(|| panic!("{SAMPLE_RUN} no longer has {marker:?}"));
        let digits: String = text[at + marker.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        digits
            .parse()
            .unwrap_or_else(|e| panic!("{marker}: {digits:?}: {e}"))
    };
    assert_eq!(number_before("s propagation delay at"), default as f64);
    assert_eq!(number_after(".. waiting "), default as f64);
    let took = number_after("== done in ");
    assert!(
        took >= default as f64,
        "done in {took} s with a {default} s wait"
    );
}
