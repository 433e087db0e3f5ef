//! Fault injection into every AWS call the function makes, alone and in pairs: every run ends
//! contained and notified, or with a loud failure. Zero silent outcomes.

use std::time::{Duration, SystemTime};

use killswitch::handler::{App, Phases, handle};
use killswitch::policy::{self, SESSION_POLICY_NAME, USER_POLICY_NAME};
use killswitch::ports::KeyStatus;
use killswitch::report::{Investigation, RegionCoverage, Status};
use serde_json::Value;

use crate::support::{FIXTURE_KEY, FakeCloud, config, event, responder};

/// Service error, throttling, and a failure without a service code (what the SDK returns for a
/// timeout or a refused connection once its own timeouts and retries are exhausted).
const KINDS: [(&str, &str); 3] = [
    ("service error", "ServiceFailure"),
    ("throttling", "Throttling"),
    ("timeout/conn", ""),
];

const USER_ACTIONS: [&str; 9] = [
    "sts:GetAccessKeyInfo",
    "iam:GetAccessKeyLastUsed",
    "iam:ListAccessKeys",
    "iam:UpdateAccessKey",
    "iam:GetUserPolicy",
    "iam:PutUserPolicy",
    "account:ListRegions",
    "cloudtrail:LookupEvents",
    "sns:Publish",
];

const ROLE_ACTIONS: [&str; 7] = [
    "sts:GetAccessKeyInfo",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
    "account:ListRegions",
    "cloudtrail:LookupEvents",
    "sns:Publish",
];

fn fault_sets(actions: &[&'static str]) -> Vec<Vec<&'static str>> {
    let mut sets: Vec<Vec<&str>> = actions.iter().map(|a| vec![*a]).collect();
    for (i, a) in actions.iter().enumerate() {
        for b in &actions[i + 1..] {
            sets.push(vec![*a, *b]);
        }
    }
    sets
}

struct Row {
    faults: String,
    contained: bool,
    notified: bool,
    error: Option<&'static str>,
    verdict: Result<&'static str, String>,
}

async fn run(payload: &Value, faults: &[&str], code: &str, role: bool) -> Row {
    let cloud = if role {
        FakeCloud::default()
    } else {
        FakeCloud::with_user("alice", FIXTURE_KEY)
    };
    for f in faults {
        cloud.fail(f, code);
    }
    let app = App {
        cloud,
        config: config(),
        responder: Some(responder()),
    };
    app.cloud.raise(payload);
    let response = handle(
        &app,
        payload.clone(),
        SystemTime::now() + Duration::from_secs(120),
        false,
        Phases::Both,
    )
    .await
    .unwrap();
    let contained = if role {
        // The finding names the session: exactly that session is denied.
        app.cloud
            .policy("role/ci-deployer", SESSION_POLICY_NAME)
            .and_then(|d| policy::denied_sessions(&d))
            .is_some_and(|ids| ids.contains("AROACKCEVSQ6C2EXAMPLE:ci-deploy-session"))
    } else {
        app.cloud.key_state("alice", FIXTURE_KEY) == Some(KeyStatus::Inactive)
            && app.cloud.policy("user/alice", USER_POLICY_NAME).is_some()
    };
    let notified = !app.cloud.published().is_empty();
    let error = response.error().map(|e| e.kind());
    let report = &response.reports[0];
    let sns_down = faults.contains(&"sns:Publish");
    let verdict = if !contained && error.is_none() {
        Err(format!(
            "SILENT: not contained, no error (status {:?})",
            report.status
        ))
    } else if !sns_down && !notified {
        Err("no notice although SNS works".into())
    } else if sns_down && error.is_none() {
        Err("SNS failed but no error was returned".into())
    } else if report.status == Status::Contained && !contained {
        Err("report claims contained, state disagrees".into())
    } else if contained && notified && error.is_none() {
        Ok("contained + notified")
    } else if contained && error.is_some() {
        Ok("contained, loud error")
    } else if notified {
        Ok("not contained, loud error + notice")
    } else {
        Ok("not contained, loud error (SNS down)")
    };
    Row {
        faults: faults.join(" + "),
        contained,
        notified,
        error,
        verdict,
    }
}

async fn matrix(payload: Value, actions: &[&'static str], role: bool) {
    let mut rows = Vec::new();
    for (kind, code) in KINDS {
        for set in fault_sets(actions) {
            let mut row = run(&payload, &set, code, role).await;
            row.faults = format!("{kind}: {}", row.faults);
            rows.push(row);
        }
    }
    let mut table = String::from(
        "| faults | contained | notified | error | verdict |\n|---|---|---|---|---|\n",
    );
    for r in &rows {
        let verdict = match &r.verdict {
            Ok(v) => v.to_string(),
            Err(e) => format!("FAIL: {e}"),
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {verdict} |\n",
            r.faults,
            r.contained,
            r.notified,
            r.error.unwrap_or("-")
        ));
    }
    eprintln!("{table}");
    let failures: Vec<_> = rows.iter().filter(|r| r.verdict.is_err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} runs broke the failure policy:\n{table}",
        failures.len(),
        rows.len()
    );
    // The matrix really exercised both outcomes.
    assert!(rows.iter().any(|r| r.verdict == Ok("contained + notified")));
    assert!(
        rows.iter()
            .any(|r| r.verdict == Ok("not contained, loud error + notice"))
    );
}

#[tokio::test(start_paused = true)]
async fn every_fault_on_a_user_key_ends_contained_and_notified_or_loud() {
    matrix(
        event("guardduty-iam-user-finding.json"),
        &USER_ACTIONS,
        false,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn every_fault_on_a_role_session_ends_contained_and_notified_or_loud() {
    matrix(
        event("guardduty-assumed-role-finding.json"),
        &ROLE_ACTIONS,
        true,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn with_almost_no_time_left_containment_and_notice_still_happen() {
    let app = App {
        cloud: FakeCloud::with_user("alice", FIXTURE_KEY),
        config: config(),
        responder: Some(responder()),
    };
    app.cloud.state.lock().unwrap().enabled_regions =
        Some(vec!["us-east-1".into(), "eu-west-1".into()]);
    app.cloud.raise(&event("guardduty-iam-user-finding.json"));
    let response = handle(
        &app,
        event("guardduty-iam-user-finding.json"),
        SystemTime::now() + Duration::from_secs(2),
        false,
        Phases::Both,
    )
    .await
    .unwrap();
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contained);
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    // The short notice, then the full report.
    assert_eq!(app.cloud.published().len(), 2);
    let Investigation::Ran(a) = &report.investigation else {
        panic!()
    };
    assert!(a.regions.iter().all(|r| matches!(&r.coverage, RegionCoverage::Partial { reason, .. } if reason.contains("time budget"))), "{:?}", a.regions);
    assert!(
        app.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .1
            .contains("PARTIAL")
    );
}
