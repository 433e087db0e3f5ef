//! The shipped drills pass and clean up, and refuse to run against the wrong account.

use super::*;

/// Every shipped scenario but the racing holders: a race needs IAM's propagation lag, and
/// `e2e::lagged::race` plays those in the lagged pass.
#[cfg(feature = "drill")]
fn unlagged_drills() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/drills"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("racing-holder"))
        })
        .collect();
    files.sort();
    files
}

#[cfg(feature = "drill")]
#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn every_shipped_drill_scenario_passes_and_cleans_up() {
    let reports = std::env::temp_dir().join(unique("drill-reports"));
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(["drill", "--report-dir"])
        .arg(&reports)
        .args(unlagged_drills())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| scenario | result |"), "{stdout}");
    let json = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let results: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let results = results.as_array().unwrap();
    let shipped = unlagged_drills().len();
    assert_eq!(results.len(), shipped);
    assert!(shipped >= 10);
    for r in results {
        assert_eq!(r["passed"], true, "{r}");
        assert!(!r["cleanup"].as_array().unwrap().is_empty(), "{r}");
    }
    // Nothing the drills planted is left behind.
    let w = World::new().await;
    let users = w.iam.list_users().send().await.unwrap();
    let left: Vec<_> = users
        .users()
        .iter()
        .map(|u| u.user_name())
        .filter(|n| n.starts_with("drill-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[cfg(feature = "drill")]
#[tokio::test]
#[ignore = "needs the local AWS: run scripts/test.sh"]
async fn drills_refuse_to_run_without_the_local_aws_or_an_explicit_account() {
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(["drill", "--account-id", "999999999999", "--yes"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
    // The credentials' own account, but no terminal to confirm on and no --yes.
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .args(["drill", "--account-id", "123456789012"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // Not confirmed (no terminal, no --yes): exit 5.
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let out = Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .arg("drill")
        .env("AWS_ENDPOINT_URL", "https://iam.amazonaws.com")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
