//! The key's holder has minutes before killswitch arrives: what it can plant, claim, race or
//! flood must never turn into a CONTAINED report while it keeps access.

use chrono::{TimeDelta, Utc};
use killswitch::handler::App;
use killswitch::incident::AccessKeyId;
use killswitch::oncall::{self, RestoreRequest};
use killswitch::policy::{self, ROLE_POLICY_NAME, SESSION_POLICY_NAME, USER_POLICY_NAME};
use killswitch::ports::{Caller, KeyStatus};
use killswitch::report::Status;
use serde_json::{Value, json};

use crate::support::{
    FIXTURE_KEY, FIXTURE_ROLE_KEY, FakeCloud, api_call, app, config, event, lambda, run,
};

const SESSION: &str = "AROACKCEVSQ6C2EXAMPLE:ci-deploy-session";

fn last_notice(cloud: &FakeCloud) -> String {
    cloud
        .published()
        .pop()
        .map(|(s, m)| format!("{s}\n{m}"))
        .unwrap()
}

// 1. Decoys under our policy names.

#[tokio::test]
async fn a_decoy_user_deny_is_replaced_and_said_never_taken_as_contained() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    // Deny-all with one extra condition that never matches: IAM ANDs conditions, so it denies
    // nothing while looking like ours.
    let decoy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"KillSwitchDenyAll","Effect":"Deny","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.1/32"}}}]}"#;
    cloud.set_policy("user/alice", USER_POLICY_NAME, decoy);
    let app = app(cloud);
    let r = &run(&app, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    assert_eq!(
        app.cloud.policy("user/alice", USER_POLICY_NAME).as_deref(),
        Some(policy::deny_all().as_str())
    );
    assert!(last_notice(&app.cloud).contains("TAMPERED OR DECOY"));
}

#[tokio::test]
async fn decoy_role_policies_are_replaced_and_said() {
    // A late cutoff with a never-matching extra condition (role-wide revocation configured).
    let cloud = FakeCloud::default();
    let late = (Utc::now() + TimeDelta::days(365)).format("%Y-%m-%dT%H:%M:%SZ");
    cloud.set_policy(
        "role/ci-deployer",
        ROLE_POLICY_NAME,
        &format!(r#"{{"Statement":[{{"Effect":"Deny","Action":"*","Resource":"*","Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{late}"}},"StringEquals":{{"aws:RequestedRegion":"xx-nowhere-1"}}}}}}]}}"#),
    );
    let mut a = app(cloud);
    a.config.role_wide = vec!["ci-deployer".into()];
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    let cutoff = policy::revocation_cutoff(
        &a.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .unwrap(),
    );
    assert!(
        cutoff.is_some_and(|c| c <= Utc::now() + TimeDelta::seconds(2)),
        "{cutoff:?}"
    );
    assert!(last_notice(&a.cloud).contains("TAMPERED OR DECOY"));

    // A session deny naming our session but with an extra condition.
    let cloud = FakeCloud::default();
    cloud.set_policy(
        "role/ci-deployer",
        SESSION_POLICY_NAME,
        &format!(r#"{{"Statement":[{{"Effect":"Deny","Action":"*","Resource":"*","Condition":{{"StringEquals":{{"aws:userid":"{SESSION}","aws:SourceVpc":"vpc-none"}}}}}}]}}"#),
    );
    let a = app(cloud);
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    assert_eq!(
        policy::denied_sessions(
            &a.cloud
                .policy("role/ci-deployer", SESSION_POLICY_NAME)
                .unwrap()
        ),
        Some([SESSION.to_string()].into())
    );
    assert!(last_notice(&a.cloud).contains("TAMPERED OR DECOY"));
}

// 2. The exact session, not the whole role.

#[tokio::test]
async fn a_role_finding_denies_exactly_the_leaked_session_and_keeps_earlier_ones() {
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), "AROACKCEVSQ6C2EXAMPLE".into());
    let a = app(cloud);
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    assert!(
        a.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .is_none(),
        "no role-wide cutoff by default"
    );
    let notice = last_notice(&a.cloud);
    assert!(
        notice.contains(&format!("Only session {SESSION}")),
        "{notice}"
    );
    assert!(notice.contains("instance's own workload"), "{notice}");
    // A second session of the same role leaks: both stay denied.
    let mut second = event("guardduty-assumed-role-finding.json");
    second["detail"]["id"] = json!("another-finding");
    second["detail"]["resource"]["accessKeyDetails"]["principalId"] =
        json!("AROACKCEVSQ6C2EXAMPLE:i-0123456789abcdef0");
    run(&a, second).await;
    assert_eq!(
        policy::denied_sessions(
            &a.cloud
                .policy("role/ci-deployer", SESSION_POLICY_NAME)
                .unwrap()
        ),
        Some(
            [
                SESSION.to_string(),
                "AROACKCEVSQ6C2EXAMPLE:i-0123456789abcdef0".to_string()
            ]
            .into()
        )
    );
    // A re-delivery finds it in place.
    let again = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(again.status, Status::AlreadyContained);
}

#[tokio::test]
async fn the_role_wide_cutoff_is_used_only_when_the_session_cannot_be_named_or_is_configured() {
    // The principal ID is not this role's (IAM's RoleId differs): a deny naming it would deny
    // nobody.
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), "AROAOTHERROLEID12345".into());
    let a = app(cloud);
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained);
    assert!(
        a.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .is_some()
    );
    assert!(
        a.cloud
            .policy("role/ci-deployer", SESSION_POLICY_NAME)
            .is_none()
    );
    assert!(last_notice(&a.cloud).contains("EVERY session of role ci-deployer"));
    // No session in the trigger (a manual request naming only the role, no CloudTrail yet).
    let a = app(FakeCloud::default());
    let manual = json!({"access_key_id": FIXTURE_ROLE_KEY, "role_name": "ci-deployer", "reason": "r", "requested_by": "me"});
    run(&a, manual).await;
    assert!(
        a.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .is_some()
    );
    // Configured for the role.
    let mut a = app(FakeCloud::default());
    a.config.role_wide = vec!["CI-DEPLOYER".into()];
    run(&a, event("guardduty-assumed-role-finding.json")).await;
    assert!(
        a.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .is_some()
    );
    assert!(
        a.cloud
            .policy("role/ci-deployer", SESSION_POLICY_NAME)
            .is_none()
    );
}

// 3. A manual request is not proof of ownership.

fn signed_by(cloud: &FakeCloud, kind: &str, name: &str, principal_id: &str) {
    let mut call = api_call(
        "GetCallerIdentity",
        Utc::now() - TimeDelta::minutes(3),
        None,
    );
    call.caller = Some(Caller {
        kind: kind.into(),
        name: Some(name.into()),
        principal_id: Some(principal_id.into()),
    });
    cloud.add_events("us-east-1", vec![call]);
}

#[tokio::test]
async fn a_manual_request_naming_the_wrong_owner_is_rejected_before_any_write() {
    let cloud = FakeCloud::with_user("bob", "AKIAI44QH8DHBEXAMPLE");
    signed_by(
        &cloud,
        "AssumedRole",
        "web-tier",
        "AROAWEBTIER123456789:i-0abc",
    );
    let a = app(cloud);
    let manual = json!({"access_key_id": FIXTURE_ROLE_KEY, "user_name": "bob", "reason": "r", "requested_by": "me"});
    let response = run(&a, manual).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Rejected, "{}", r.summary);
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
    let notice = last_notice(&a.cloud);
    assert!(
        notice.contains("REJECTED") || notice.contains("Rejected"),
        "{notice}"
    );
    assert!(
        notice.contains("IAM user bob") && notice.contains("web-tier"),
        "{notice}"
    );
    assert!(response.error().is_some());
}

#[tokio::test]
async fn a_manual_request_whose_owner_lookup_fails_is_rejected_with_nothing_written() {
    let a = app(FakeCloud::default());
    a.cloud
        .fail("cloudtrail:LookupEvents", "ThrottlingException");
    let manual = json!({"access_key_id": FIXTURE_ROLE_KEY, "user_name": "bob", "reason": "r", "requested_by": "me"});
    let response = run(&a, manual).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Rejected, "{}", r.summary);
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
    assert!(
        r.summary.contains("send the request again"),
        "{}",
        r.summary
    );
}

#[tokio::test]
async fn a_manual_request_without_cloudtrail_evidence_acts_and_says_owner_unconfirmed() {
    let a = app(FakeCloud::default());
    let manual = json!({"access_key_id": FIXTURE_ROLE_KEY, "role_name": "ci-deployer", "session_name": "build-42", "reason": "r", "requested_by": "me"});
    let r = &run(&a, manual).await.reports[0];
    assert_eq!(r.status, Status::Contained);
    assert!(last_notice(&a.cloud).contains("owner UNCONFIRMED"));
}

#[tokio::test]
async fn a_confirmed_manual_request_denies_the_session_cloudtrail_saw() {
    let cloud = FakeCloud::default();
    signed_by(&cloud, "AssumedRole", "ci-deployer", SESSION);
    let a = app(cloud);
    let manual = json!({"access_key_id": FIXTURE_ROLE_KEY, "role_name": "CI-Deployer", "reason": "r", "requested_by": "me"});
    let r = &run(&a, manual).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    assert!(last_notice(&a.cloud).contains("owner confirmed"));
    assert!(
        a.cloud
            .policy("role/CI-Deployer", SESSION_POLICY_NAME)
            .and_then(|d| policy::denied_sessions(&d))
            .is_some_and(|ids| ids.contains(SESSION))
    );
}

#[tokio::test]
async fn the_command_line_names_its_operator_in_report_and_notice() {
    let a = App {
        cloud: FakeCloud::with_user("alice", FIXTURE_KEY),
        config: config(),
        responder: None,
    };
    let r = &run(&a, event("manual-request.json")).await.reports[0];
    assert!(
        r.operator
            .as_deref()
            .is_some_and(|o| o.starts_with("arn:aws:sts::")),
        "{:?}",
        r.operator
    );
    assert!(last_notice(&a.cloud).contains("Operator:"));
}

// 4. Restore must not re-arm the attacker.

fn key() -> AccessKeyId {
    AccessKeyId::parse(FIXTURE_KEY).unwrap()
}

async fn assess(a: &App<FakeCloud>, key: &AccessKeyId, req: &RestoreRequest) -> oncall::Assessment {
    oncall::assess(&a.cloud, &a.config, key, req).await.unwrap()
}

async fn restore(
    a: &App<FakeCloud>,
    key: &AccessKeyId,
    assessment: &oncall::Assessment,
    by: &str,
    reason: &str,
    force: bool,
) -> oncall::Restored {
    oncall::restore(&a.cloud, &a.config, key, assessment, by, reason, force).await
}

#[tokio::test]
async fn restore_refuses_while_the_holder_left_a_key_or_password_behind() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    // The holder created a key and a console password before we arrived (the finding's
    // eventFirstSeen is the incident's start).
    {
        let mut s = a.cloud.state.lock().unwrap();
        s.keys.insert(
            ("alice".into(), "AKIAI44QH8DHBEXAMPLE".into()),
            KeyStatus::Active,
        );
        s.key_created.insert(
            ("alice".into(), "AKIAI44QH8DHBEXAMPLE".into()),
            Utc::now() - TimeDelta::minutes(5),
        );
        s.login_profiles
            .insert("alice".into(), Utc::now() - TimeDelta::minutes(4));
    }
    // And a CodeCommit credential: service-specific credentials outlive the deny too.
    a.cloud.state.lock().unwrap().other_credentials.insert(
        "alice".into(),
        vec![killswitch::ports::OtherCredential {
            kind: "service-specific credential",
            id: "ACCAEXAMPLE (codecommit.amazonaws.com)".into(),
            active: true,
            created: Some(Utc::now() - TimeDelta::minutes(3)),
        }],
    );
    let req = RestoreRequest {
        user_name: Some("alice".into()),
        ..Default::default()
    };
    let assessment = assess(&a, &key(), &req).await;
    assert_eq!(assessment.refusals.len(), 3, "{:?}", assessment.refusals);
    assert!(
        assessment
            .refusals
            .iter()
            .any(|r| r.contains("ACCAEXAMPLE"))
    );
    let published = a.cloud.published().len();
    let refused = restore(&a, &key(), &assessment, "eve", "trust me", false).await;
    assert_eq!(refused.refused.len(), 3);
    assert!(refused.done.is_empty());
    assert!(
        a.cloud.policy("user/alice", USER_POLICY_NAME).is_some(),
        "nothing lifted"
    );
    let (subject, _) = a.cloud.published().pop().unwrap();
    assert!(subject.contains("RESTORE REFUSED"), "{subject}");
    assert_eq!(a.cloud.published().len(), published + 1);
    // --force goes ahead, says so before acting, and the key stays Inactive without
    // --reactivate-key.
    let forced = restore(&a, &key(), &assessment, "oncall", "checked both", true).await;
    assert!(
        forced.failed.is_empty() && forced.announced && forced.notified,
        "{forced:?}"
    );
    assert!(a.cloud.policy("user/alice", USER_POLICY_NAME).is_none());
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    let notices = a.cloud.published();
    let n = notices.len();
    assert!(
        notices[n - 2].0.contains("RESTORING") && notices[n - 2].1.contains("Forced past"),
        "{:?}",
        notices[n - 2]
    );
    assert!(notices[n - 1].0.contains("RESTORED") && notices[n - 1].1.contains("stays Inactive"));
    // The restore log names the operator's identity.
    let log = a
        .cloud
        .state
        .lock()
        .unwrap()
        .items
        .iter()
        .find(|(k, _)| k.starts_with("restores#"))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(log.contains("arn:aws:sts::"), "{log}");
}

#[tokio::test]
async fn restore_refuses_a_user_name_that_is_not_the_keys_owner_and_reactivates_only_on_request() {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let wrong = RestoreRequest {
        user_name: Some("mallory".into()),
        ..Default::default()
    };
    let assessment = assess(&a, &key(), &wrong).await;
    assert!(
        assessment
            .refusals
            .iter()
            .any(|r| r.contains("not the owner")),
        "{:?}",
        assessment.refusals
    );
    let right = RestoreRequest {
        user_name: Some("alice".into()),
        reactivate_key: true,
        ..Default::default()
    };
    let assessment = assess(&a, &key(), &right).await;
    assert!(assessment.refusals.is_empty(), "{:?}", assessment.refusals);
    let done = restore(&a, &key(), &assessment, "oncall", "rotated", false).await;
    assert!(done.failed.is_empty(), "{done:?}");
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Active)
    );
}

#[tokio::test]
async fn a_role_restore_lifts_only_this_incidents_session_and_a_shared_cutoff_stays() {
    // Two leaked sessions of one role: restoring one leaves the other denied.
    let a = lambda(FakeCloud::default());
    run(&a, event("guardduty-assumed-role-finding.json")).await;
    let mut second = event("guardduty-assumed-role-finding.json");
    second["detail"]["id"] = json!("second-finding");
    second["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!("ASIAI44QH8DHBEXAMPLE");
    second["detail"]["resource"]["accessKeyDetails"]["principalId"] =
        json!("AROACKCEVSQ6C2EXAMPLE:other");
    run(&a, second).await;
    let role_key = AccessKeyId::parse(FIXTURE_ROLE_KEY).unwrap();
    let req = RestoreRequest {
        role_name: Some("ci-deployer".into()),
        ..Default::default()
    };
    // Right after containment the leaked session's own credentials are still valid: refused.
    let assessment = assess(&a, &role_key, &req).await;
    assert!(
        assessment.refusals.len() == 1 && assessment.refusals[0].contains("up to 12 h"),
        "{:?}",
        assessment.refusals
    );
    // Another incident's session, named by hand: refused too.
    let other = RestoreRequest {
        session: Some("AROACKCEVSQ6C2EXAMPLE:other".into()),
        ..req.clone()
    };
    let assessment = assess(&a, &role_key, &other).await;
    assert!(
        assessment
            .refusals
            .iter()
            .any(|r| r.contains("another incident's")),
        "{:?}",
        assessment.refusals
    );
    // Twelve hours later the credentials are dead: no refusal.
    contained_hours_ago(&a.cloud, FIXTURE_ROLE_KEY, 13);
    let assessment = assess(&a, &role_key, &req).await;
    assert!(assessment.refusals.is_empty(), "{:?}", assessment.refusals);
    let done = restore(&a, &role_key, &assessment, "oncall", "fixed", false).await;
    // The session deny, and the session out of the role's guarded tag (the other stays listed:
    // under an org guard the tag itself denies the sessions it lists).
    assert!(done.failed.is_empty() && done.done.len() == 2, "{done:?}");
    assert_eq!(
        a.cloud
            .state
            .lock()
            .unwrap()
            .tags
            .get(&("role/ci-deployer".into(), "killswitch-guarded".into()))
            .cloned(),
        Some("/AROACKCEVSQ6C2EXAMPLE:other/".to_string())
    );
    assert_eq!(
        policy::denied_sessions(
            &a.cloud
                .policy("role/ci-deployer", SESSION_POLICY_NAME)
                .unwrap()
        ),
        Some(["AROACKCEVSQ6C2EXAMPLE:other".to_string()].into())
    );

    // Role-wide: two open incidents rely on one cutoff; lifting it for one needs --force.
    let mut a = lambda(FakeCloud::default());
    a.config.role_wide = vec!["*".into()];
    run(&a, event("guardduty-assumed-role-finding.json")).await;
    let mut second = event("guardduty-assumed-role-finding.json");
    second["detail"]["id"] = json!("second-finding");
    second["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!("ASIAI44QH8DHBEXAMPLE");
    run(&a, second).await;
    contained_hours_ago(&a.cloud, FIXTURE_ROLE_KEY, 13);
    let assessment = assess(&a, &role_key, &req).await;
    assert!(
        assessment
            .refusals
            .iter()
            .any(|r| r.contains("ASIAI44QH8DHBEXAMPLE")),
        "{:?}",
        assessment.refusals
    );
    let refused = restore(&a, &role_key, &assessment, "oncall", "fixed", false).await;
    assert!(!refused.refused.is_empty());
    assert!(
        a.cloud
            .policy("role/ci-deployer", ROLE_POLICY_NAME)
            .is_some()
    );
}

// 6. Attacker-controlled text in notices.

#[tokio::test]
async fn hostile_user_agents_and_parameters_reach_the_notice_inert() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let mut call = api_call("CreateUser", Utc::now() - TimeDelta::minutes(2), None);
    call.user_agent = Some(
        "evil\n\nCONTAINED: all clear <!channel> @here https://phish.example/x \u{202E}".into(),
    );
    call.request_parameters =
        Some(json!({"userName": "backdoor\n@everyone [click](http://x.example)"}));
    cloud.add_events("us-east-1", vec![call]);
    let a = app(cloud);
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let notice = last_notice(&a.cloud);
    for bad in [
        "\nCONTAINED: all clear",
        "<!channel>",
        "@here",
        "@everyone",
        "https://",
        "http://",
        "\u{202E}",
        "](",
        "phish.example",
    ] {
        assert!(
            !notice.contains(bad),
            "notice still carries {bad:?}:\n{notice}"
        );
    }
    // User agents are shortened to three words on one line; the full one is in the JSON report.
    assert!(notice.contains("\"evil CONTAINED: all\""), "{notice}");
}

// 8. Protected principals compare case-insensitively.

#[tokio::test]
async fn protected_names_match_regardless_of_case() {
    let mut a = app(FakeCloud::default());
    a.config.protected = vec!["CI-Deployer".into()];
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Refused);
    assert!(a.cloud.writes().is_empty());
    let mut a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.protected = vec!["arn:aws:iam::123456789012:user/ALICE".into()];
    assert_eq!(
        run(&a, event("guardduty-iam-user-finding.json"))
            .await
            .reports[0]
            .status,
        Status::Refused
    );
    // killswitch's own role, spelled differently.
    let a = app(FakeCloud::default());
    let own = json!({"access_key_id": FIXTURE_ROLE_KEY, "role_name": "KILLSWITCH-FN-ROLE", "reason": "r", "requested_by": "me"});
    assert_eq!(run(&a, own).await.reports[0].status, Status::Refused);
}

/// An ARN in KILLSWITCH_PROTECTED_PRINCIPALS names one principal of one account: a user of the
/// same name in another account (one the key's holder created or renamed itself to) is not
/// protected by it, and is contained.
#[tokio::test]
async fn a_protected_arn_protects_only_in_its_own_account() {
    let mut a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.config.protected = vec!["arn:aws:iam::999999999999:user/alice".into()];
    let r = &run(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
    assert!(a.cloud.policy("user/alice", "KillSwitchDenyAll").is_some());
    let mut a = app(FakeCloud::default());
    a.config.protected = vec!["arn:aws:iam::999999999999:role/ci-deployer".into()];
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
}

// 5. The managed fallback is restorable like the inline deny.

#[tokio::test]
async fn the_attached_aws_deny_all_is_detached_by_restore_when_the_record_says_killswitch_attached_it()
 {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.fail("iam:PutUserPolicy", "LimitExceeded");
    let a = lambda(cloud);
    let r = &run(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    let req = RestoreRequest {
        user_name: Some("alice".into()),
        ..Default::default()
    };
    let assessment = assess(&a, &key(), &req).await;
    assert!(
        assessment
            .plan
            .iter()
            .any(|p| matches!(p, oncall::RestoreAction::DetachManaged { .. })),
        "{:?}",
        assessment.plan
    );
    // The quota is still full: the user's minted sessions cannot be revoked first, so the deny
    // stays, and the restore says why.
    let blocked = restore(&a, &key(), &assessment, "oncall", "rotated", false).await;
    assert!(
        blocked.failed.iter().any(|f| f.contains("quota is full")),
        "{blocked:?}"
    );
    assert_eq!(
        a.cloud.state.lock().unwrap().attached.get("alice").cloned(),
        Some(vec![policy::MANAGED_DENY_ALL_ARN.to_string()])
    );
    // The operator removes what filled the quota; the restore then goes through.
    a.cloud
        .state
        .lock()
        .unwrap()
        .fail
        .remove("iam:PutUserPolicy");
    let assessment = assess(&a, &key(), &req).await;
    let done = restore(&a, &key(), &assessment, "oncall", "rotated", false).await;
    assert!(done.failed.is_empty(), "{done:?}");
    assert!(
        a.cloud
            .state
            .lock()
            .unwrap()
            .attached
            .get("alice")
            .is_none_or(|l| l.is_empty())
    );
    // Sessions the holder minted before the restore stay dead.
    assert!(
        a.cloud
            .policy("user/alice", ROLE_POLICY_NAME)
            .and_then(|d| policy::revocation_cutoff(&d))
            .is_some()
    );

    // AWSDenyAll attached by someone else (no record of killswitch attaching it) is left alone.
    let cloud = FakeCloud::with_user("bob", FIXTURE_KEY);
    cloud
        .state
        .lock()
        .unwrap()
        .attached
        .insert("bob".into(), vec![policy::MANAGED_DENY_ALL_ARN.into()]);
    let a = lambda(cloud);
    let req = RestoreRequest {
        user_name: Some("bob".into()),
        ..Default::default()
    };
    let assessment = assess(&a, &key(), &req).await;
    assert!(assessment.plan.is_empty(), "{:?}", assessment.plan);
}

/// Moves the recorded containment time of `key` back, as if it happened `hours` ago.
fn contained_hours_ago(cloud: &FakeCloud, key: &str, hours: i64) {
    let mut state = cloud.state.lock().unwrap();
    let id = format!("incident#123456789012#{key}");
    let mut record: Value = serde_json::from_str(state.items.get(&id).unwrap()).unwrap();
    record["applied"]["at"] = json!((Utc::now() - TimeDelta::hours(hours)).to_rfc3339());
    state.items.insert(id, record.to_string());
}

#[tokio::test]
async fn a_session_denied_for_two_keys_is_not_lifted_by_the_restore_of_one() {
    // An instance's credentials rotate: two findings, two keys, one session name.
    let a = lambda(FakeCloud::default());
    run(&a, event("guardduty-assumed-role-finding.json")).await;
    let mut second = event("guardduty-assumed-role-finding.json");
    second["detail"]["id"] = json!("rotated-credentials");
    second["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!("ASIAI44QH8DHBEXAMPLE");
    let r = &run(&a, second).await.reports[0];
    assert_eq!(r.status, Status::AlreadyContained);
    contained_hours_ago(&a.cloud, FIXTURE_ROLE_KEY, 13);
    let req = RestoreRequest {
        role_name: Some("ci-deployer".into()),
        ..Default::default()
    };
    let role_key = AccessKeyId::parse(FIXTURE_ROLE_KEY).unwrap();
    let assessment = assess(&a, &role_key, &req).await;
    assert!(
        assessment
            .refusals
            .iter()
            .any(|r| r.contains("ASIAI44QH8DHBEXAMPLE")),
        "{:?}",
        assessment.refusals
    );
}

#[tokio::test]
async fn a_replaced_permissions_boundary_is_put_back_by_restore() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let planted = "arn:aws:iam::123456789012:policy/dev-boundary";
    cloud
        .state
        .lock()
        .unwrap()
        .boundaries
        .insert("alice".into(), planted.into());
    cloud.fail("iam:PutUserPolicy", "LimitExceeded");
    cloud.fail("iam:AttachUserPolicy", "LimitExceeded");
    let a = lambda(cloud);
    let r = &run(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{}", r.summary);
    assert_eq!(
        a.cloud
            .state
            .lock()
            .unwrap()
            .boundaries
            .get("alice")
            .map(String::as_str),
        Some(policy::MANAGED_DENY_ALL_ARN)
    );
    // The operator cleared what filled the quota.
    a.cloud.state.lock().unwrap().fail.clear();
    let req = RestoreRequest {
        user_name: Some("alice".into()),
        ..Default::default()
    };
    let assessment = assess(&a, &key(), &req).await;
    let done = restore(&a, &key(), &assessment, "oncall", "ok", false).await;
    assert!(done.failed.is_empty(), "{done:?}");
    assert_eq!(
        a.cloud
            .state
            .lock()
            .unwrap()
            .boundaries
            .get("alice")
            .map(String::as_str),
        Some(planted)
    );
}

#[tokio::test]
async fn restore_refuses_a_role_name_that_is_not_the_contained_role() {
    let a = lambda(FakeCloud::default());
    run(&a, event("guardduty-assumed-role-finding.json")).await;
    let role_key = AccessKeyId::parse(FIXTURE_ROLE_KEY).unwrap();
    a.cloud.set_policy(
        "role/other-role",
        SESSION_POLICY_NAME,
        &policy::deny_sessions(&[SESSION.to_string()].into()),
    );
    let req = RestoreRequest {
        role_name: Some("other-role".into()),
        ..Default::default()
    };
    let assessment = assess(&a, &role_key, &req).await;
    assert!(
        assessment
            .refusals
            .iter()
            .any(|r| r.contains("not the role this key's incident contained")),
        "{:?}",
        assessment.refusals
    );
}

#[tokio::test]
async fn a_session_name_the_holder_chose_reaches_the_notice_inert() {
    let mut finding = event("guardduty-assumed-role-finding.json");
    finding["detail"]["resource"]["accessKeyDetails"]["principalId"] =
        json!("AROACKCEVSQ6C2EXAMPLE:@here");
    let a = app(FakeCloud::default());
    let r = &run(&a, finding).await.reports[0];
    assert_eq!(r.status, Status::Contained);
    for (subject, message) in a.cloud.published() {
        assert!(!subject.contains("@here"), "{subject}");
        let body: String = message
            .lines()
            .filter(|l| !l.trim_start().starts_with("killswitch restore"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!body.contains("@here"), "{body}");
    }
}
