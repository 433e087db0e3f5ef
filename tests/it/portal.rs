//! Identity Center portal sessions: contained through the customer-managed deny policy every
//! permission set references (never an edit of the AWSReservedSSO role), by identity store user
//! ID and the finding's exact session, inside IAM's version and size limits, read back, shown by
//! status and lifted by restore; notify-only with the manual steps when not set up.

use killswitch::handler::App;
use killswitch::incident::AccessKeyId;
use killswitch::oncall;
use killswitch::playbook::Step;
use killswitch::playbook::portal::{Entry, document_for, entries, parse, permission_set_name};
use killswitch::report::{Outcome, Report, Status};
use serde_json::{Value, json};

use crate::support::*;

fn finding() -> Value {
    event("guardduty-identity-center-session-finding.json")
}

fn set_up(cloud: FakeCloud, remove_assignments: bool) -> App<FakeCloud> {
    let mut a = lambda(cloud);
    a.config = with_identity_center(a.config, remove_assignments);
    a
}

/// The first step of that kind.
fn step(r: &Report, which: Step) -> Option<(Outcome, String)> {
    r.steps
        .iter()
        .find(|s| s.step == which)
        .map(|s| (s.outcome.clone(), s.detail.clone()))
}

fn denied(cloud: &FakeCloud) -> Vec<Entry> {
    let p = parse(&cloud.portal_policy());
    assert!(!p.tampered, "{}", cloud.portal_policy());
    p.entries
}

fn both() -> Vec<Entry> {
    let mut e = entries(PORTAL_SESSION, Some(ALICE_USER_ID));
    e.sort();
    e
}

fn role_writes(cloud: &FakeCloud) -> Vec<Call> {
    cloud
        .calls()
        .into_iter()
        .filter(|(a, _)| a.starts_with("iam:") && a.contains("Role") && !a.starts_with("iam:List"))
        .filter(|(a, _)| !a.starts_with("iam:Get"))
        .collect()
}

#[test]
fn the_document_round_trips_keeps_what_is_not_ours_and_flags_decoys() {
    let theirs = json!({"Sid": "KillSwitchNobodyYet", "Effect": "Deny", "Action": "*", "Resource": "*",
                        "Condition": {"StringEquals": {"aws:userid": "killswitch-nobody"}}});
    let doc = document_for(&both(), std::slice::from_ref(&theirs));
    assert!(!doc.contains(' '), "compact: {doc}");
    let back = parse(&doc);
    assert_eq!(back.entries, both());
    assert_eq!(back.others, vec![theirs]);
    assert!(!back.tampered);
    // A statement under our Sid that denies nothing (an extra never-matching condition, ANDed)
    // is a decoy: never counted as standing.
    let mut v: Value = serde_json::from_str(&doc).unwrap();
    v["Statement"][1]["Condition"]["StringEquals"]["aws:SourceIp"] = json!("203.0.113.9");
    assert!(parse(&v.to_string()).tampered);
    // A wildcard user ID would deny everyone: not an entry of ours.
    let wild = document_for(
        &[Entry::User {
            user_id: "*".into(),
        }],
        &[],
    );
    let p = parse(&wild);
    assert!(p.entries.is_empty() && p.tampered, "{p:?}");
    assert_eq!(
        permission_set_name("AWSReservedSSO_Data_Eng_0123456789abcdef"),
        Some("Data_Eng")
    );
    assert_eq!(permission_set_name("AWSReservedSSO_Developer"), None);
}

#[tokio::test]
async fn a_portal_session_is_denied_by_user_id_and_exact_session_without_touching_the_role() {
    let a = set_up(FakeCloud::with_portal_session(), false);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:#?}");
    assert_eq!(denied(&a.cloud), both());
    let (outcome, detail) = step(r, Step::DenyPortalUser).unwrap();
    assert_eq!(outcome, Outcome::Done, "{detail}");
    assert!(
        detail.contains("attached to AWSReservedSSO_Developer"),
        "{detail}"
    );
    // The set-up's placeholder is kept; the role itself is never written.
    assert!(a.cloud.portal_policy().contains("KillSwitchNobodyYet"));
    assert!(
        role_writes(&a.cloud).is_empty(),
        "{:?}",
        role_writes(&a.cloud)
    );
    assert!(
        r.principal
            .contains("Identity Center user alice@example.com"),
        "{}",
        r.principal
    );
    assert!(r.verification.as_ref().unwrap().holds, "{r:#?}");
    let (_, body) = a.cloud.published().last().cloned().unwrap();
    assert!(body.contains("identitystore:UserId"), "{body}");
    assert!(body.contains("Disable user access"), "{body}");
    // Assignment removal is off by default.
    assert!(
        !a.cloud
            .calls()
            .iter()
            .any(|(c, _)| c == "sso:DeleteAccountAssignment")
    );
}

#[tokio::test]
async fn without_the_identity_center_role_it_is_notify_only_with_the_manual_steps() {
    let a = lambda(FakeCloud::with_portal_session());
    let response = run(&a, finding()).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Refused, "{r:#?}");
    assert!(r.summary.contains("identitystore:UserId"), "{}", r.summary);
    assert!(
        r.summary.contains("KILLSWITCH_IDENTITY_CENTER_ROLE_ARN"),
        "{}",
        r.summary
    );
    assert!(r.summary.contains("Developer"), "{}", r.summary);
    assert_eq!(a.cloud.portal_policy(), PORTAL_PLACEHOLDER);
    assert!(
        !a.cloud
            .calls()
            .iter()
            .any(|(c, _)| c == "iam:CreatePolicyVersion" || c == "sts:AssumeRole")
    );
    assert!(role_writes(&a.cloud).is_empty());
    assert!(!a.cloud.published().is_empty(), "on-call is told");
}

#[tokio::test]
async fn redelivery_finds_it_contained_and_writes_no_new_version() {
    let a = set_up(FakeCloud::with_portal_session(), false);
    run(&a, finding()).await;
    let versions = |c: &FakeCloud| c.state.lock().unwrap().managed[&portal_policy_arn()].len();
    let after_first = versions(&a.cloud);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::AlreadyContained, "{r:#?}");
    assert_eq!(versions(&a.cloud), after_first);
    assert_eq!(denied(&a.cloud), both());
}

#[tokio::test]
async fn five_versions_make_room_by_deleting_the_oldest_non_default() {
    let cloud = FakeCloud::with_portal_session();
    {
        let mut s = cloud.state.lock().unwrap();
        let versions = s.managed.get_mut(&portal_policy_arn()).unwrap();
        versions[0].2 = false;
        for v in 2..=5 {
            versions.push((format!("v{v}"), PORTAL_PLACEHOLDER.into(), v == 3));
        }
        s.managed_serial.insert(portal_policy_arn(), 5);
    }
    let a = set_up(cloud, false);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:#?}");
    assert!(
        a.cloud.calls().contains(&(
            "iam:DeletePolicyVersion".into(),
            format!("{} v1", portal_policy_arn())
        )),
        "{:?}",
        a.cloud.calls()
    );
    let s = a.cloud.state.lock().unwrap();
    let ids: Vec<&str> = s.managed[&portal_policy_arn()]
        .iter()
        .map(|v| v.0.as_str())
        .collect();
    assert_eq!(ids, ["v2", "v3", "v4", "v5", "v6"]);
}

#[tokio::test]
async fn a_full_policy_is_containment_failed_and_loud() {
    let cloud = FakeCloud::with_portal_session();
    let many: Vec<Entry> = (0..150)
        .map(|i| Entry::Session {
            userid: format!("AROACKCEVSQ6C3EXAMPLE:user{i:03}@example.com"),
        })
        .collect();
    cloud.state.lock().unwrap().managed.insert(
        portal_policy_arn(),
        vec![("v1".into(), document_for(&many, &[]), true)],
    );
    let a = set_up(cloud, false);
    let response = run(&a, finding()).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    let (_, detail) = step(r, Step::DenyPortalUser).unwrap();
    assert!(detail.contains("6144"), "{detail}");
    assert!(response.error().is_some(), "Lambda retries");
    assert!(r.next_steps[0].starts_with("CONTAINMENT FAILED: disable Identity Center user"));
}

#[tokio::test]
async fn a_permission_set_without_the_reference_is_containment_failed() {
    let cloud = FakeCloud::with_portal_session();
    cloud.state.lock().unwrap().role_attached.clear();
    let a = set_up(cloud, false);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    let (_, detail) = step(r, Step::DenyPortalUser).unwrap();
    assert!(detail.contains("NOT attached"), "{detail}");
}

#[tokio::test]
async fn a_missing_deny_policy_is_containment_failed_naming_the_template() {
    let cloud = FakeCloud::with_portal_session();
    cloud.state.lock().unwrap().managed.clear();
    let a = set_up(cloud, false);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    let (_, detail) = step(r, Step::DenyPortalUser).unwrap();
    assert!(detail.contains("identity-center-policy.yaml"), "{detail}");
}

#[tokio::test]
async fn a_decoy_under_our_sid_is_rewritten_and_flagged() {
    let cloud = FakeCloud::with_portal_session();
    let decoy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "KillSwitchIdentityCenterSessions", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:userid": [PORTAL_SESSION]}, "Bool": {"aws:ViaAWSService": "true"}}}
    ]});
    cloud.state.lock().unwrap().managed.insert(
        portal_policy_arn(),
        vec![("v1".into(), decoy.to_string(), true)],
    );
    let a = set_up(cloud, false);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:#?}");
    let (_, detail) = step(r, Step::DenyPortalUser).unwrap();
    assert!(detail.contains("TAMPERED OR DECOY"), "{detail}");
    assert_eq!(denied(&a.cloud), both());
}

#[tokio::test]
async fn a_failed_lookup_still_denies_the_exact_session() {
    let cloud = FakeCloud::with_portal_session();
    cloud.fail("identitystore:GetUserId", "AccessDeniedException");
    let a = set_up(cloud, false);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:#?}");
    assert_eq!(
        denied(&a.cloud),
        vec![Entry::Session {
            userid: PORTAL_SESSION.into()
        }]
    );
    let lookup = r
        .steps
        .iter()
        .find(|s| s.step == Step::ResolveOwner && s.detail.contains("NOT looked up"))
        .unwrap();
    assert_eq!(lookup.outcome, Outcome::Failed);
}

#[tokio::test]
async fn the_deny_undone_after_the_window_is_reapplied_and_reported_contested() {
    let cloud = FakeCloud::with_portal_session();
    let a = set_up(cloud, false);
    let contained = deliver(&a, finding()).await;
    assert_eq!(contained.reports[0].status, Status::Contained);
    // The holder (another admin credential) makes the placeholder the default again.
    {
        let mut s = a.cloud.state.lock().unwrap();
        let versions = s.managed.get_mut(&portal_policy_arn()).unwrap();
        for v in versions.iter_mut() {
            v.2 = v.0 == "v1";
        }
    }
    let queued = std::mem::take(&mut a.cloud.state.lock().unwrap().queued);
    let records: Vec<Value> = queued
        .iter()
        .enumerate()
        .map(|(i, (body, _))| {
            json!({"messageId": format!("m{i}"), "receiptHandle": "r", "body": body,
                   "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                   "eventSource": "aws:sqs", "eventSourceARN": FOLLOW_UP_QUEUE_ARN, "awsRegion": "us-east-1"})
        })
        .collect();
    let event = serde_json::from_value(json!({ "Records": records })).unwrap();
    let (_, followed) = killswitch::handler::handle_follow_ups(
        &a,
        event,
        std::time::SystemTime::now() + std::time::Duration::from_secs(120),
    )
    .await
    .unwrap();
    let r = &followed[0];
    assert_eq!(r.status, Status::Contested, "{r:#?}");
    assert_eq!(denied(&a.cloud), both());
}

#[tokio::test]
async fn assignment_removal_is_recorded_and_restore_puts_back_exactly_that_and_lifts_the_deny() {
    let cloud = FakeCloud::with_portal_session();
    cloud.state.lock().unwrap().idc_assignments.push((
        ACCOUNT.into(),
        PORTAL_PERMISSION_SET.into(),
        "GROUP".into(),
        "group-developers".into(),
    ));
    let a = set_up(cloud, true);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:#?}");
    let (outcome, detail) = step(r, Step::RemoveAssignment).unwrap();
    assert_eq!(outcome, Outcome::Done, "{detail}");
    assert!(
        detail.contains("group-developers"),
        "group assignments are reported: {detail}"
    );
    let assignments = |c: &FakeCloud| c.state.lock().unwrap().idc_assignments.clone();
    assert_eq!(
        assignments(&a.cloud),
        vec![(
            ACCOUNT.to_string(),
            PORTAL_PERMISSION_SET.to_string(),
            "GROUP".to_string(),
            "group-developers".to_string()
        )],
        "the group's assignment stays"
    );

    let key = AccessKeyId::parse(FIXTURE_ROLE_KEY).unwrap();
    let state = oncall::status(&a.cloud, &a.config, &key, None, None)
        .await
        .unwrap();
    let p = state.identity_center.as_ref().unwrap();
    assert!(p.denied, "{}", p.read_back);
    assert_eq!(p.user_id.as_deref(), Some(ALICE_USER_ID));
    assert!(p.assignment_removed.is_some());

    let assessment = oncall::assess(&a.cloud, &a.config, &key, &Default::default())
        .await
        .unwrap();
    assert!(
        assessment
            .refusals
            .iter()
            .any(|r| r.contains("portal credentials may still be valid")),
        "{:?}",
        assessment.refusals
    );
    let refused = oncall::restore(
        &a.cloud,
        &a.config,
        &key,
        &assessment,
        "bob",
        "drill over",
        false,
    )
    .await;
    assert!(refused.done.is_empty(), "{refused:?}");
    let restored = oncall::restore(
        &a.cloud,
        &a.config,
        &key,
        &assessment,
        "bob",
        "drill over",
        true,
    )
    .await;
    assert!(restored.failed.is_empty(), "{restored:?}");
    assert!(parse(&a.cloud.portal_policy()).entries.is_empty());
    assert!(a.cloud.portal_policy().contains("KillSwitchNobodyYet"));
    assert!(assignments(&a.cloud).contains(&(
        ACCOUNT.to_string(),
        PORTAL_PERMISSION_SET.to_string(),
        "USER".to_string(),
        ALICE_USER_ID.to_string()
    )));
    // Through the operators' Restore role, never the responder's.
    assert!(a.cloud.calls().contains(&(
        "sts:AssumeRole".into(),
        "arn:aws:iam::111122223333:role/KillSwitchIdentityCenterRestore".into()
    )));
}

#[tokio::test]
async fn another_users_entry_survives_a_restore() {
    let cloud = FakeCloud::with_portal_session();
    let bob = Entry::User {
        user_id: "9067c7f5a1-11111111-2222-3333-4444-555555555555".into(),
    };
    cloud.state.lock().unwrap().managed.insert(
        portal_policy_arn(),
        vec![(
            "v1".into(),
            document_for(std::slice::from_ref(&bob), &[]),
            true,
        )],
    );
    let a = set_up(cloud, false);
    run(&a, finding()).await;
    let key = AccessKeyId::parse(FIXTURE_ROLE_KEY).unwrap();
    let assessment = oncall::assess(&a.cloud, &a.config, &key, &Default::default())
        .await
        .unwrap();
    let restored = oncall::restore(
        &a.cloud,
        &a.config,
        &key,
        &assessment,
        "bob",
        "false positive",
        true,
    )
    .await;
    assert!(restored.failed.is_empty(), "{restored:?}");
    assert_eq!(parse(&a.cloud.portal_policy()).entries, vec![bob]);
}

#[test]
fn the_identity_center_settings_fail_at_start_naming_the_variable() {
    let with = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        killswitch::config::Config::from_lookup(move |k| {
            if k == "KILLSWITCH_TOPIC_ARN" {
                return Some("arn:aws:sns:us-east-1:123456789012:t".into());
            }
            pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    };
    let err = with(&[(
        "KILLSWITCH_IDENTITY_CENTER_ROLE_ARN",
        "arn:aws:iam::111122223333:role/KillSwitchIdentityCenter",
    )])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID"),
        "{err}"
    );
    let err = with(&[("KILLSWITCH_IDENTITY_CENTER_REMOVE_ASSIGNMENTS", "true")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("KILLSWITCH_IDENTITY_CENTER_ROLE_ARN"),
        "{err}"
    );
    let err = with(&[
        ("KILLSWITCH_IDENTITY_CENTER_ROLE_ARN", "not-an-arn"),
        ("KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID", "ext-1"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("not a role ARN"), "{err}");
    let ok = with(&[
        (
            "KILLSWITCH_IDENTITY_CENTER_ROLE_ARN",
            "arn:aws:iam::111122223333:role/KillSwitchIdentityCenter",
        ),
        ("KILLSWITCH_IDENTITY_CENTER_EXTERNAL_ID", "ext-1"),
    ])
    .unwrap();
    let ic = ok.identity_center.unwrap();
    assert_eq!(ic.policy_name, "KillSwitchDeny");
    assert!(!ic.remove_assignments, "off by default");
    assert!(
        !format!("{ic:?}").contains("ext-1"),
        "the external ID is not logged"
    );
}

#[tokio::test]
async fn restoring_one_key_refuses_while_another_key_of_the_user_relies_on_the_deny() {
    let a = set_up(FakeCloud::with_portal_session(), false);
    run(&a, finding()).await;
    // The same user's second leaked profile: another key, another finding.
    let mut second = finding();
    second["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!("ASIAIOSFODNN7EXAMPL2");
    second["detail"]["id"] = json!("c4d6e8f0a2b4c6d8e0f2a4b6c8d0e2f4");
    let r = &run(&a, second).await.reports[0];
    assert_eq!(r.status, Status::AlreadyContained, "{r:#?}");
    let key = AccessKeyId::parse(FIXTURE_ROLE_KEY).unwrap();
    let assessment = oncall::assess(&a.cloud, &a.config, &key, &Default::default())
        .await
        .unwrap();
    assert!(
        assessment
            .refusals
            .iter()
            .any(|r| r.contains("ASIAIOSFODNN7EXAMPL2") && r.contains("re-arm")),
        "{:?}",
        assessment.refusals
    );
    let refused = oncall::restore(
        &a.cloud,
        &a.config,
        &key,
        &assessment,
        "bob",
        "one key",
        false,
    )
    .await;
    assert!(refused.done.is_empty(), "{refused:?}");
    assert_eq!(denied(&a.cloud), both());
}

#[tokio::test]
async fn a_planted_allow_in_the_deny_policy_is_dropped_and_flagged() {
    let cloud = FakeCloud::with_portal_session();
    let planted = json!({"Version": "2012-10-17", "Statement": [
        serde_json::from_str::<Value>(PORTAL_PLACEHOLDER).unwrap()["Statement"][0].clone(),
        {"Sid": "Backdoor", "Effect": "Allow", "Action": "iam:*", "Resource": "*"}
    ]});
    cloud.state.lock().unwrap().managed.insert(
        portal_policy_arn(),
        vec![("v1".into(), planted.to_string(), true)],
    );
    let a = set_up(cloud, false);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:#?}");
    let (_, detail) = step(r, Step::DenyPortalUser).unwrap();
    assert!(detail.contains("TAMPERED OR DECOY"), "{detail}");
    let now = a.cloud.portal_policy();
    assert!(
        !now.contains("Backdoor") && !now.contains("\"Allow\""),
        "{now}"
    );
    assert!(now.contains("KillSwitchNobodyYet"), "{now}");
}

#[tokio::test]
async fn a_manual_request_alone_denies_only_the_named_session_and_removes_nothing() {
    let a = set_up(FakeCloud::with_portal_session(), true);
    let request = json!({
        "access_key_id": FIXTURE_ROLE_KEY,
        "role_name": PORTAL_ROLE,
        "session_name": "alice@example.com",
        "reason": "portal credentials pasted in a ticket",
        "requested_by": "oncall@example.com",
        "request_id": "INC-2026-1203-07"
    });
    let r = &run(&a, request).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:#?}");
    assert_eq!(
        denied(&a.cloud),
        vec![Entry::Session {
            userid: PORTAL_SESSION.into()
        }],
        "no user-wide deny on a request's word"
    );
    assert!(
        !a.cloud
            .calls()
            .iter()
            .any(|(c, _)| c == "identitystore:GetUserId" || c == "sso:DeleteAccountAssignment")
    );
    assert!(
        r.steps.iter().any(|s| s
            .detail
            .starts_with("owner UNCONFIRMED: Identity Center user")),
        "{r:#?}"
    );
}

#[tokio::test]
async fn a_permission_set_without_the_reference_is_named_as_still_open() {
    let cloud = FakeCloud::with_portal_session();
    cloud
        .state
        .lock()
        .unwrap()
        .role_attached
        .insert("AWSReservedSSO_Admin_fedcba9876543210".into(), Vec::new());
    let a = set_up(cloud, false);
    let r = &run(&a, finding()).await.reports[0];
    assert_eq!(
        r.status,
        Status::Contained,
        "the leaked session is denied: {r:#?}"
    );
    let open = killswitch::report::open::items(r);
    let item = open
        .iter()
        .find(|i| i.what.contains("AWSReservedSSO_Admin_fedcba9876543210"))
        .unwrap_or_else(|| panic!("{open:#?}"));
    assert!(
        item.what.contains("alice@example.com can still sign in"),
        "{}",
        item.what
    );
    assert!(item.commands[0].contains("KillSwitchDeny"));
    let (_, body) = a.cloud.published().last().cloned().unwrap();
    assert!(
        body.contains("AWSReservedSSO_Admin_fedcba9876543210"),
        "{body}"
    );
}
