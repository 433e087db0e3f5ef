//! Behaviour of the whole response over `FakeCloud`: order, failure policy, dry run, idempotence,
//! refusals, verification, investigation pacing.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeDelta, Utc};
use killswitch::error::Error;
use killswitch::handler::{App, Phases, handle};
use killswitch::policy::{self, ROLE_POLICY_NAME, USER_POLICY_NAME};
use killswitch::ports::KeyStatus;
use killswitch::report::{Investigation, Notification, Outcome, RegionCoverage, Status};
use serde_json::{Value, json};

use crate::support::{
    FIXTURE_KEY, FIXTURE_ROLE_KEY, FakeCloud, api_call, app, config, event, responder, run,
};

fn position(calls: &[(String, String)], action: &str) -> usize {
    calls
        .iter()
        .position(|(a, _)| a == action)
        .unwrap_or_else(|| panic!("{action} not called: {calls:?}"))
}

#[tokio::test]
async fn leaked_user_key_is_deactivated_denied_verified_investigated_and_notified_in_that_order() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.add_events(
        "us-east-1",
        vec![api_call(
            "ListUsers",
            Utc::now() - TimeDelta::minutes(5),
            None,
        )],
    );
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contained);
    assert!(response.error().is_none());
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(policy::is_deny_all(
        &app.cloud.policy("user/alice", USER_POLICY_NAME).unwrap()
    ));
    let calls = app.cloud.calls();
    assert!(position(&calls, "iam:UpdateAccessKey") < position(&calls, "cloudtrail:LookupEvents"));
    assert!(position(&calls, "iam:PutUserPolicy") < position(&calls, "cloudtrail:LookupEvents"));
    // The short notice goes out before the investigation, the full report after it.
    assert!(position(&calls, "sns:Publish") < position(&calls, "cloudtrail:LookupEvents"));
    let published = app.cloud.published();
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(published[0].0.contains("CONTAINED") && published[0].0.contains("details follow"));
    assert!(published[0].1.contains("immediately after containment"));
    assert!(calls.contains(&("iam:UpdateAccessKey".into(), format!("alice {FIXTURE_KEY}"))));
    let v = report.verification.as_ref().unwrap();
    assert!(v.holds && !v.contested && v.checks.len() == 2);
    let Investigation::Ran(activity) = &report.investigation else {
        panic!()
    };
    assert_eq!(activity.total_events, 1);
    // Region hints: the key's last-used Region from IAM.
    assert_eq!(
        activity
            .regions
            .iter()
            .map(|r| r.region.as_str())
            .collect::<Vec<_>>(),
        ["us-east-1", "eu-west-1"]
    );
    let (subject, body) = &app.cloud.published().last().cloned().unwrap();
    assert!(
        subject.starts_with("[killswitch] CONTAINED: AKIAIOSFODNN7EXAMPLE (IAM user alice)"),
        "{subject}"
    );
    for needle in [
        "Key:        AKIAIOSFODNN7EXAMPLE",
        "deactivate_key",
        "iam:ListUsers",
        "update-access-key",
        "Still for a human",
    ] {
        assert!(body.contains(needle), "message lacks {needle:?}:\n{body}");
    }
}

#[tokio::test]
async fn replayed_finding_is_a_no_op_with_a_clear_outcome() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    run(&app, event("guardduty-iam-user-finding.json")).await;
    let writes_after_first = app.cloud.writes().len();
    assert_eq!(writes_after_first, 2);
    let second = run(&app, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(second.reports[0].status, Status::AlreadyContained);
    assert_eq!(
        app.cloud.writes().len(),
        writes_after_first,
        "replay wrote again"
    );
    assert!(second.error().is_none());
    // The replay finds the key contained: without an incident store it still says so.
    assert!(
        app.cloud
            .published()
            .last()
            .unwrap()
            .0
            .contains("ALREADY CONTAINED")
    );
}

#[tokio::test]
async fn dry_run_makes_no_mutating_calls_from_any_of_its_three_switches() {
    // The payload's own flag.
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let r = run(&a, event("manual-request-dry-run.json")).await;
    assert_eq!(r.reports[0].status, Status::DryRun);
    assert!(
        r.reports[0]
            .steps
            .iter()
            .any(|s| s.outcome == Outcome::WouldDo)
    );
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
    // KILLSWITCH_DRY_RUN.
    let mut b = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    b.config.dry_run = true;
    run(&b, event("guardduty-iam-user-finding.json")).await;
    assert!(b.cloud.writes().is_empty());
    // --dry-run on the command line.
    let c = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    handle(
        &c,
        event("manual-request.json"),
        SystemTime::now() + Duration::from_secs(60),
        true,
        Phases::Both,
    )
    .await
    .unwrap();
    assert!(c.cloud.writes().is_empty());
    assert_eq!(
        c.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Active)
    );
    assert!(
        c.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .1
            .contains("DRY RUN")
    );
}

#[tokio::test]
async fn cloudtrail_down_still_contains_and_notifies() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.fail("cloudtrail:LookupEvents", "InternalFailure");
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contained);
    assert!(response.error().is_none());
    let Investigation::Ran(a) = &report.investigation else {
        panic!()
    };
    assert!(
        a.regions
            .iter()
            .all(|r| matches!(r.coverage, RegionCoverage::Failed { .. }))
    );
    let body = &app.cloud.published().last().cloned().unwrap().1;
    assert!(
        body.contains("FAILED") && body.contains("INCOMPLETE"),
        "{body}"
    );
}

#[tokio::test]
async fn iam_down_notifies_and_returns_an_error_for_lambda_to_retry() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.fail("iam:UpdateAccessKey", "ServiceFailure");
    app.cloud.fail("iam:PutUserPolicy", "ServiceFailure");
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Failed);
    assert!(matches!(
        response.error(),
        Some(Error::ContainmentFailed(_))
    ));
    let (subject, body) = &app.cloud.published().last().cloned().unwrap();
    assert!(subject.contains("CONTAINMENT FAILED"), "{subject}");
    assert!(
        body.contains("iam:UpdateAccessKey failed (ServiceFailure)"),
        "{body}"
    );
    // The deny policy was still attempted after the deactivation failed.
    assert!(
        app.cloud
            .calls()
            .iter()
            .any(|(a, _)| a == "iam:PutUserPolicy")
    );
}

#[tokio::test]
async fn account_check_failure_changes_nothing_and_errors() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.fail("sts:GetAccessKeyInfo", "Throttling");
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Failed);
    assert!(app.cloud.writes().is_empty());
    assert!(matches!(
        response.error(),
        Some(Error::ContainmentFailed(_))
    ));
    // Told at once, and again with the full report.
    assert_eq!(app.cloud.published().len(), 2);
    assert!(app.cloud.published()[0].0.contains("CONTAINMENT FAILED"));
}

#[tokio::test]
async fn sns_down_keeps_containment_and_reports_the_notification_error() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.fail("sns:Publish", "AuthorizationError");
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(matches!(
        response.reports[0].notification,
        Notification::Failed { .. }
    ));
    assert!(matches!(response.error(), Some(Error::NotifyFailed(_))));
}

#[tokio::test]
async fn refusals_make_zero_writes_and_still_notify() {
    type Setup = Box<dyn Fn(&mut App<FakeCloud>)>;
    let cases: Vec<(Value, &str, Setup)> = vec![
        (
            event("guardduty-root-finding.json"),
            "root user",
            Box::new(|_| {}),
        ),
        (
            event("guardduty-iam-user-finding.json"),
            "KILLSWITCH_PROTECTED_PRINCIPALS",
            Box::new(|a| a.config.protected = vec!["alice".into()]),
        ),
        (
            event("guardduty-iam-user-finding.json"),
            "KILLSWITCH_PROTECTED_PRINCIPALS",
            Box::new(|a| {
                a.config.protected = vec!["arn:aws:iam::123456789012:user/team/alice".into()]
            }),
        ),
        (
            role_finding("killswitch-fn-role"),
            "own role",
            Box::new(|_| {}),
        ),
        (
            role_finding("AWSServiceRoleForSupport"),
            "service-linked",
            Box::new(|_| {}),
        ),
        (
            role_finding("AWSReservedSSO_AdministratorAccess_0123456789abcdef"),
            "Identity Center",
            Box::new(|_| {}),
        ),
        (
            json!({"access_key_id": FIXTURE_ROLE_KEY, "reason": "r", "requested_by": "me"}),
            "cannot be traced",
            Box::new(|_| {}),
        ),
    ];
    for (payload, why, setup) in cases {
        let mut a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
        setup(&mut a);
        let response = run(&a, payload).await;
        let report = &response.reports[0];
        assert_eq!(report.status, Status::Refused, "{why}: {report:?}");
        assert!(report.summary.contains(why), "{why}: {}", report.summary);
        assert!(a.cloud.writes().is_empty(), "{why}: {:?}", a.cloud.writes());
        assert!(response.error().is_none(), "{why}");
        assert!(
            a.cloud
                .published()
                .last()
                .cloned()
                .unwrap()
                .0
                .contains("NOT CONTAINED (refused)"),
            "{why}"
        );
    }
}

#[tokio::test]
async fn keys_of_another_account_are_rejected_as_bad_input_with_zero_writes() {
    // The key's owner per sts:GetAccessKeyInfo.
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.cloud
        .state
        .lock()
        .unwrap()
        .key_account
        .insert(FIXTURE_KEY.into(), "999999999999".into());
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Rejected);
    assert!(
        matches!(response.error(), Some(Error::BadEvent(m)) if m.contains("belongs to account 999999999999"))
    );
    assert!(a.cloud.writes().is_empty());
    assert!(
        !a.cloud
            .calls()
            .iter()
            .any(|(c, _)| c == "cloudtrail:LookupEvents")
    );
    // The account the trigger itself names: rejected before any IAM or STS call.
    let b = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let payload = json!({"access_key_id": FIXTURE_KEY, "account_id": "999999999999", "reason": "r", "requested_by": "me"});
    let response = run(&b, payload).await;
    assert_eq!(response.reports[0].status, Status::Rejected);
    assert!(
        matches!(response.error(), Some(Error::BadEvent(m)) if m.contains("trigger is for account 999999999999"))
    );
    assert!(b.cloud.iam_calls().is_empty(), "{:?}", b.cloud.iam_calls());
    assert!(
        b.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .0
            .contains("REJECTED")
    );
}

fn role_finding(role: &str) -> Value {
    let mut e = event("guardduty-assumed-role-finding.json");
    e["detail"]["resource"]["accessKeyDetails"]["userName"] = json!(role);
    e
}

#[tokio::test]
async fn sample_finding_makes_no_iam_call_and_says_sample() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let response = run(&app, event("guardduty-sample-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Sample);
    assert!(
        app.cloud.iam_calls().is_empty(),
        "{:?}",
        app.cloud.iam_calls()
    );
    assert!(
        app.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .0
            .contains("SAMPLE")
    );
}

#[tokio::test]
async fn bad_input_is_an_error_and_touches_nothing() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let result = handle(
        &app,
        json!({"access_key_id": "nope", "reason": "r", "requested_by": "me"}),
        SystemTime::now(),
        false,
        Phases::Both,
    )
    .await;
    assert!(matches!(result, Err(Error::BadEvent(_))));
    assert!(app.cloud.calls().is_empty());
}

/// The payload size limit holds on the Lambda path too, not only for the command line's file:
/// a real finding padded past it is refused before any call.
#[tokio::test]
async fn an_oversized_payload_through_lambda_is_refused_and_touches_nothing() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let mut padded = event("guardduty-iam-user-finding.json");
    padded["detail"]["padding"] = json!("x".repeat(killswitch::trigger::MAX_PAYLOAD_BYTES));
    let result = handle(&app, padded, SystemTime::now(), false, Phases::Both).await;
    assert!(
        matches!(&result, Err(Error::BadEvent(m)) if m.contains("the limit is")),
        "{:?}",
        result.map(|r| r.reports.len())
    );
    assert!(app.cloud.calls().is_empty());
}

#[tokio::test]
async fn assumed_role_gets_a_session_cutoff_that_never_moves_backwards() {
    let mut app = app(FakeCloud::default());
    app.config.role_wide = vec!["ci-deployer".into()];
    let before = Utc::now();
    let first = run(&app, event("guardduty-assumed-role-finding.json")).await;
    assert_eq!(first.reports[0].status, Status::Contained);
    let doc = app
        .cloud
        .policy("role/ci-deployer", ROLE_POLICY_NAME)
        .unwrap();
    let cutoff = policy::revocation_cutoff(&doc).unwrap();
    assert!(
        cutoff >= before && cutoff <= Utc::now() + TimeDelta::seconds(1),
        "{cutoff}"
    );
    assert!(
        app.cloud
            .calls()
            .iter()
            .all(|(a, _)| a != "iam:UpdateAccessKey"),
        "ASIA keys are not IAM keys"
    );

    // A later cutoff already in place (a newer delivery won the race): it is kept.
    let future: DateTime<Utc> = Utc::now() + TimeDelta::hours(1);
    app.cloud.set_policy(
        "role/ci-deployer",
        ROLE_POLICY_NAME,
        &policy::revoke_older_sessions(future),
    );
    let again = run(&app, event("guardduty-assumed-role-finding.json")).await;
    assert_eq!(again.reports[0].status, Status::AlreadyContained);
    let kept = policy::revocation_cutoff(
        &app.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        Some(kept),
        policy::revocation_cutoff(&policy::revoke_older_sessions(future))
    );
    assert!(kept > Utc::now());
}

#[tokio::test]
async fn temporary_key_of_a_user_gets_the_deny_policy_only() {
    let app = app(FakeCloud::default());
    let payload = json!({"access_key_id": FIXTURE_ROLE_KEY, "user_name": "bob", "reason": "r", "requested_by": "me"});
    let response = run(&app, payload).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    assert_eq!(
        app.cloud.writes(),
        vec![(
            "iam:PutUserPolicy".to_string(),
            format!("user/bob {USER_POLICY_NAME}")
        )]
    );
}

#[tokio::test]
async fn health_event_without_user_resolves_the_owner_through_iam() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let response = run(&app, event("health-exposed-old-shape.json")).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(
        response.reports[0]
            .steps
            .iter()
            .any(|s| s.detail.contains("IAM says the key belongs to user alice"))
    );
}

#[tokio::test]
async fn unknown_key_is_reported_not_found() {
    let app = app(FakeCloud::default());
    let response = run(&app, event("health-exposed-old-shape.json")).await;
    assert_eq!(response.reports[0].status, Status::KeyNotFound);
    assert!(app.cloud.writes().is_empty());
    assert!(response.error().is_none());
}

#[tokio::test]
async fn undone_containment_is_reapplied_once_and_flagged_contested() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    // 1st read: before deactivation; 2nd: immediate check; 3rd: after the delay -> tampered first.
    app.cloud.state.lock().unwrap().tamper_on_key_read = Some(3);
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contested);
    let v = report.verification.as_ref().unwrap();
    assert!(v.contested && v.reapplied && v.holds);
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(app.cloud.policy("user/alice", USER_POLICY_NAME).is_some());
    assert!(
        app.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .0
            .contains("CONTESTED")
    );
    assert!(response.error().is_none());
}

#[tokio::test]
async fn a_full_inline_quota_gets_the_managed_deny_all_verified_and_restorable() {
    // The key's holder filled the user's 2,048-character inline quota first.
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    app.cloud.fail("iam:PutUserPolicy", "LimitExceeded");
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contained, "{}", report.summary);
    assert_eq!(
        app.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert_eq!(
        app.cloud
            .state
            .lock()
            .unwrap()
            .attached
            .get("alice")
            .cloned(),
        Some(vec![policy::MANAGED_DENY_ALL_ARN.to_string()])
    );
    let deny = report
        .steps
        .iter()
        .find(|s| s.step == killswitch::playbook::Step::DenyUser)
        .unwrap();
    assert!(
        deny.detail.contains("inline-policy quota is full") && deny.detail.contains("AWSDenyAll"),
        "{}",
        deny.detail
    );
    // Verified like the inline deny: read back, and re-attached when detached.
    let v = report.verification.as_ref().unwrap();
    assert!(
        v.holds
            && v.checks
                .iter()
                .all(|c| c.detail.contains("AWSDenyAll attached")),
        "{v:?}"
    );
    assert!(
        report.undo.iter().any(|u| u.contains("detach-user-policy")),
        "{:?}",
        report.undo
    );
    let (_, message) = app.cloud.published().pop().unwrap();
    assert!(message.contains("AWSDenyAll"), "{message}");
}

#[tokio::test]
async fn with_both_policy_quotas_full_every_key_and_the_console_password_go() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("alice", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    cloud
        .state
        .lock()
        .unwrap()
        .login_profiles
        .insert("alice".into(), Utc::now());
    cloud.fail("iam:PutUserPolicy", "LimitExceeded");
    cloud.fail("iam:AttachUserPolicy", "LimitExceeded");
    let app = app(cloud);
    let response = run(&app, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contained, "{}", report.summary);
    for key in [FIXTURE_KEY, "AKIAI44QH8DHBEXAMPLE"] {
        assert_eq!(
            app.cloud.key_state("alice", key),
            Some(KeyStatus::Inactive),
            "{key}"
        );
    }
    assert!(app.cloud.state.lock().unwrap().login_profiles.is_empty());
    let (_, message) = app.cloud.published().pop().unwrap();
    assert!(
        message.contains("EVERY access key") && message.contains("console password DELETED"),
        "{message}"
    );
    assert!(report.verification.as_ref().unwrap().holds);
    // Deactivated keys leave the sessions they minted alive: AWSDenyAll becomes the boundary.
    assert_eq!(
        app.cloud
            .state
            .lock()
            .unwrap()
            .boundaries
            .get("alice")
            .map(String::as_str),
        Some(policy::MANAGED_DENY_ALL_ARN)
    );
    assert!(message.contains("permissions boundary"), "{message}");

    // A boundary already there (the holder may have planted it to keep ours out) is replaced,
    // and the notice names it: restore puts it back.
    let cloud = FakeCloud::with_user("bob", FIXTURE_KEY);
    cloud.state.lock().unwrap().boundaries.insert(
        "bob".into(),
        "arn:aws:iam::123456789012:policy/dev-boundary".into(),
    );
    cloud.fail("iam:PutUserPolicy", "LimitExceeded");
    cloud.fail("iam:AttachUserPolicy", "LimitExceeded");
    let bob = crate::support::app(cloud);
    let manual = json!({"access_key_id": FIXTURE_KEY, "user_name": "bob", "reason": "r", "requested_by": "me"});
    run(&bob, manual).await;
    assert_eq!(
        bob.cloud
            .state
            .lock()
            .unwrap()
            .boundaries
            .get("bob")
            .map(String::as_str),
        Some(policy::MANAGED_DENY_ALL_ARN)
    );
    let (_, message) = bob.cloud.published().pop().unwrap();
    assert!(
        message.contains("in place of arn:aws:iam::123456789012:policy/dev-boundary"),
        "{message}"
    );
}

#[tokio::test(start_paused = true)]
async fn investigation_pages_at_two_calls_per_second_per_region_and_reports_caps() {
    let mut a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.max_events_per_region = 100;
    let now = Utc::now();
    a.cloud.add_events(
        "us-east-1",
        (0..260)
            .map(|i| api_call("GetUser", now - TimeDelta::seconds(i), None))
            .collect(),
    );
    a.cloud.add_events(
        "eu-west-1",
        (0..90)
            .map(|i| {
                api_call(
                    "ListRoles",
                    now - TimeDelta::seconds(i),
                    Some("AccessDenied"),
                )
            })
            .collect(),
    );
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let Investigation::Ran(act) = &response.reports[0].investigation else {
        panic!()
    };
    let us = act
        .regions
        .iter()
        .find(|r| r.region == "us-east-1")
        .unwrap();
    assert!(
        matches!(&us.coverage, RegionCoverage::Partial { reason, .. } if reason.contains("100 events"))
    );
    assert_eq!(us.events, 100);
    let eu = act
        .regions
        .iter()
        .find(|r| r.region == "eu-west-1")
        .unwrap();
    assert_eq!(eu.coverage, RegionCoverage::Complete);
    assert_eq!(eu.events, 90);
    assert_eq!(eu.calls_made, 2);
    assert_eq!(act.denied.get("ListRoles"), Some(&90));
    let lookups = a.cloud.state.lock().unwrap().lookups.clone();
    for region in ["us-east-1", "eu-west-1"] {
        let times: Vec<_> = lookups
            .iter()
            .filter(|(r, _)| r == region)
            .map(|(_, t)| *t)
            .collect();
        assert!(times.len() >= 2);
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_millis(500),
                "{region}: calls {:?} apart",
                w[1] - w[0]
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn investigation_stops_at_the_deadline_and_says_partial() {
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let now = Utc::now();
    a.cloud.add_events(
        "us-east-1",
        (0..5000)
            .map(|i| api_call("GetUser", now - TimeDelta::seconds(i), None))
            .collect(),
    );
    let mut cfg = a.config.clone();
    cfg.max_events_per_region = 100_000;
    cfg.investigation_budget = Duration::from_secs(3);
    let a = App { config: cfg, ..a };
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let report = &response.reports[0];
    let Investigation::Ran(act) = &report.investigation else {
        panic!()
    };
    let us = &act.regions[0];
    assert!(
        matches!(&us.coverage, RegionCoverage::Partial { reason, .. } if reason.contains("time budget")),
        "{us:?}"
    );
    assert!(us.events > 0 && us.events < 5000);
    assert_eq!(report.status, Status::Contained);
    assert!(
        a.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .1
            .contains("PARTIAL")
    );
}

const MEMBER: &str = "111122223333";

fn org_app(cloud: FakeCloud, allow: &str) -> App<FakeCloud> {
    let mut config = config();
    config.members = Some(killswitch::config::Members {
        role_name: "KillSwitchMember".into(),
        external_id: "ext-id-1".into(),
        accounts: allow
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| killswitch::incident::AccountId::parse(a).unwrap())
            .collect(),
    });
    App {
        cloud,
        config,
        responder: Some(responder()),
    }
}

#[tokio::test]
async fn a_member_accounts_key_is_contained_there_through_its_role_and_reported_here() {
    let home = FakeCloud::default();
    let member = home.add_member(MEMBER, "ext-id-1");
    member.add_user_key("deploy-bot", FIXTURE_KEY, KeyStatus::Active);
    member.add_events(
        "us-east-1",
        vec![api_call(
            "ListBuckets",
            Utc::now() - TimeDelta::minutes(3),
            None,
        )],
    );
    let a = org_app(home, MEMBER);
    let response = run(&a, event("guardduty-member-account-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    assert!(response.error().is_none());
    assert_eq!(r.account.as_deref(), Some(MEMBER));
    assert_eq!(r.steps[0].outcome, Outcome::Done);
    assert!(
        r.steps[0].detail.contains("KillSwitchMember"),
        "{:?}",
        r.steps[0]
    );
    // The finding is read back in our own account (the GuardDuty administrator's holds its
    // members' findings); the member account is entered before anything is read there.
    let home_calls: Vec<_> = a
        .cloud
        .calls()
        .into_iter()
        .filter(|(action, _)| !action.starts_with("guardduty:"))
        .collect();
    assert_eq!(
        home_calls[0],
        (
            "sts:AssumeRole".into(),
            format!("arn:aws:iam::{MEMBER}:role/KillSwitchMember")
        )
    );
    // IAM writes and CloudTrail reads happen in the member account, the notice at home.
    assert!(a.cloud.writes().is_empty());
    assert_eq!(
        member.key_state("deploy-bot", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(member.policy("user/deploy-bot", USER_POLICY_NAME).is_some());
    assert!(
        member
            .calls()
            .iter()
            .any(|(c, _)| c == "cloudtrail:LookupEvents")
    );
    let Investigation::Ran(activity) = &r.investigation else {
        panic!("{:?}", r.investigation)
    };
    assert_eq!(activity.total_events, 1);
    assert!(member.published().is_empty());
    assert_eq!(a.cloud.published().len(), 2);
    assert!(
        a.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .1
            .contains(MEMBER)
    );
}

#[tokio::test]
async fn a_member_account_that_refuses_the_role_is_a_containment_failure_told_to_humans() {
    let home = FakeCloud::default();
    let member = home.add_member(MEMBER, "the-real-external-id");
    member.add_user_key("deploy-bot", FIXTURE_KEY, KeyStatus::Active);
    let a = org_app(home, MEMBER);
    let response = run(&a, event("guardduty-member-account-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Failed);
    assert!(matches!(
        response.error(),
        Some(Error::ContainmentFailed(_))
    ));
    assert!(r.summary.contains("Could not assume"), "{}", r.summary);
    assert!(member.calls().is_empty() && a.cloud.writes().is_empty());
    let (subject, body) = &a.cloud.published().last().cloned().unwrap();
    assert!(subject.contains("FAILED"), "{subject}");
    assert!(body.contains("AccessDenied"), "{body}");
}

#[tokio::test]
async fn accounts_outside_the_allow_list_are_rejected_without_assuming_anything() {
    let home = FakeCloud::default();
    home.add_member(MEMBER, "ext-id-1");
    let a = org_app(home, "444455556666");
    let response = run(&a, event("guardduty-member-account-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Rejected);
    assert!(
        matches!(response.error(), Some(Error::BadEvent(m)) if m.contains("not listed in KILLSWITCH_MEMBER_ACCOUNTS"))
    );
    assert!(a.cloud.iam_calls().is_empty(), "{:?}", a.cloud.iam_calls());
    assert!(
        a.cloud
            .published()
            .last()
            .cloned()
            .unwrap()
            .0
            .contains("REJECTED")
    );
}

#[tokio::test]
async fn the_deployments_own_account_never_assumes_a_role() {
    let home = FakeCloud::with_user("alice", FIXTURE_KEY);
    home.add_member(MEMBER, "ext-id-1");
    let a = org_app(home, MEMBER);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    assert!(!a.cloud.calls().iter().any(|(c, _)| c == "sts:AssumeRole"));
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
}

#[tokio::test]
async fn the_member_role_itself_is_never_touched() {
    let home = FakeCloud::default();
    let member = home.add_member(MEMBER, "ext-id-1");
    let a = org_app(home, MEMBER);
    let payload = json!({
        "access_key_id": FIXTURE_ROLE_KEY, "role_name": "KillSwitchMember",
        "account_id": MEMBER, "reason": "test", "requested_by": "me"
    });
    let response = run(&a, payload).await;
    assert_eq!(response.reports[0].status, Status::Refused);
    assert!(response.reports[0].summary.contains("own role"));
    assert!(member.writes().is_empty());
}

#[tokio::test]
async fn a_manual_request_without_account_finds_the_keys_account_through_sts() {
    let home = FakeCloud::default();
    let member = home.add_member(MEMBER, "ext-id-1");
    member.add_user_key("deploy-bot", FIXTURE_KEY, KeyStatus::Active);
    home.state
        .lock()
        .unwrap()
        .key_account
        .insert(FIXTURE_KEY.into(), MEMBER.into());
    let a = org_app(home, MEMBER);
    let payload = json!({"access_key_id": FIXTURE_KEY, "reason": "seen in a public repo", "requested_by": "oncall"});
    let response = run(&a, payload).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    assert_eq!(
        member.key_state("deploy-bot", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
}

#[tokio::test]
async fn a_health_backup_copy_acts_but_is_silent_when_the_primary_already_contained_the_key() {
    let app = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let primary = event("health-exposed-new-shape.json");
    let mut backup = primary.clone();
    backup["region"] = json!("us-west-2");
    backup["detail"]["backupEvent"] = json!(true);

    // The backup arrives first (the primary was lost or late): it contains and notifies.
    let first = run(&app, backup.clone()).await;
    assert_eq!(first.reports[0].status, Status::Contained);
    assert_eq!(app.cloud.published().len(), 2);
    // The primary then finds it contained and says so (no incident store to tell it that the
    // backup already reported).
    let second = run(&app, primary).await;
    assert_eq!(second.reports[0].status, Status::AlreadyContained);
    assert_eq!(app.cloud.published().len(), 4);
    // A backup copy of a handled event: checked, nothing to do, no third notice.
    let third = run(&app, backup).await;
    assert_eq!(third.reports[0].status, Status::AlreadyContained);
    assert!(matches!(
        third.reports[0].notification,
        Notification::Suppressed { .. }
    ));
    assert_eq!(app.cloud.published().len(), 4);
    assert!(third.error().is_none());
}
