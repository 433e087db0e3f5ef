//! Each check passes on a healthy stack and fails (or warns) on the one thing that breaks it.

use super::fake::*;
use super::{Check, Options, Report, Verdict, run};

fn opts() -> Options {
    Options {
        function: "killswitch-fn".into(),
        ..Options::default()
    }
}

fn doctor(fake: &Fake) -> Report {
    doctor_with(fake, &opts())
}

fn doctor_with(fake: &Fake, opts: &Options) -> Report {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(run(fake, opts))
}

/// The checks that are not ok, as (name, verdict).
fn not_ok(r: &Report) -> Vec<(&'static str, Verdict)> {
    r.checks
        .iter()
        .filter(|c| c.verdict != Verdict::Ok)
        .map(|c| (c.name, c.verdict))
        .collect()
}

fn the<'a>(r: &'a Report, name: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {:#?}", r.checks))
}

#[test]
fn a_healthy_stack_passes_every_check_in_order() {
    let r = doctor(&Fake::healthy());
    assert_eq!(not_ok(&r), vec![], "{:#?}", r.checks);
    let names: Vec<&str> = r.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "identity",
            "function",
            "environment",
            "dry_run",
            "protected_principals",
            "concurrency",
            "rule",
            "guardduty_rule",
            "topic",
            "kms_key",
            "kms_key",
            "guardduty",
            "cloudtrail",
            "permissions"
        ]
    );
    assert_eq!(r.caller, OPERATOR);
    assert!(the(&r, "identity").detail.contains(OPERATOR));
    assert_eq!(r.worst(), Verdict::Ok);
}

#[test]
fn an_unknown_function_stops_the_run() {
    let mut fake = Fake::healthy();
    fake.function = None;
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("function", Verdict::Fail)]);
    assert_eq!(
        r.checks.len(),
        2,
        "nothing else can be read: {:#?}",
        r.checks
    );
}

#[test]
fn a_failed_last_update_fails_the_function() {
    let mut fake = Fake::healthy();
    if let Some(f) = fake.function.as_mut() {
        f.last_update = Some("Failed".into());
        f.last_update_reason = Some("KMS key disabled".into());
    }
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("function", Verdict::Fail)]);
    assert!(the(&r, "function").detail.contains("KMS key disabled"));
}

#[test]
fn an_environment_lambda_will_not_decrypt_fails_and_names_the_key() {
    let mut fake = Fake::healthy();
    if let Some(f) = fake.function.as_mut() {
        f.environment_error = Some("AccessDeniedException: kms:Decrypt".into());
    }
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("environment", Verdict::Fail)]);
    assert!(
        the(&r, "environment")
            .fix
            .as_deref()
            .unwrap()
            .contains(KEY_ARN)
    );
}

#[test]
fn a_setting_the_function_would_refuse_fails_the_environment() {
    let r = doctor(&Fake::healthy().env("KILLSWITCH_DRY_RUN", "maybe"));
    assert_eq!(not_ok(&r), [("environment", Verdict::Fail)]);
    assert!(the(&r, "environment").detail.contains("KILLSWITCH_DRY_RUN"));
}

#[test]
fn dry_run_in_the_live_environment_fails() {
    let r = doctor(&Fake::healthy().env("KILLSWITCH_DRY_RUN", "true"));
    assert_eq!(not_ok(&r), [("dry_run", Verdict::Fail)]);
    assert!(
        the(&r, "dry_run")
            .fix
            .as_deref()
            .unwrap()
            .contains("DryRun=false")
    );
}

#[test]
fn protected_principals_are_shown_and_an_unexpected_one_fails() {
    let fake = Fake::healthy().env("KILLSWITCH_PROTECTED_PRINCIPALS", "break-glass,alice");
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("protected_principals", Verdict::Warn)]);
    assert!(
        the(&r, "protected_principals")
            .detail
            .contains("alice, break-glass")
    );
    let expecting = |list: &[&str]| Options {
        expect_protected: Some(list.iter().map(|s| (*s).to_owned()).collect()),
        ..opts()
    };
    let r = doctor_with(&fake, &expecting(&["break-glass"]));
    assert_eq!(not_ok(&r), [("protected_principals", Verdict::Fail)]);
    let check = the(&r, "protected_principals");
    assert!(
        check
            .detail
            .starts_with("protected but not expected: alice"),
        "{}",
        check.detail
    );
    let r = doctor_with(&fake, &expecting(&["alice", "break-glass"]));
    assert_eq!(not_ok(&r), []);
    let r = doctor_with(&fake, &expecting(&["alice", "break-glass", "bob"]));
    assert_eq!(not_ok(&r), [("protected_principals", Verdict::Warn)]);
}

#[test]
fn zero_reserved_concurrency_fails_and_none_reserved_warns() {
    let mut fake = Fake::healthy();
    fake.concurrency = Some(0);
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("concurrency", Verdict::Fail)]);
    assert!(
        the(&r, "concurrency")
            .fix
            .as_deref()
            .unwrap()
            .contains("--reserved-concurrent-executions 25")
    );
    fake.concurrency = None;
    assert_eq!(not_ok(&doctor(&fake)), [("concurrency", Verdict::Warn)]);
}

#[test]
fn a_disabled_rule_fails_and_no_guardduty_finding_reaches_the_function() {
    let mut fake = Fake::healthy();
    if let Some(rule) = fake.rules.get_mut(RULE) {
        rule.enabled = false;
        rule.state = "DISABLED".into();
    }
    let r = doctor(&fake);
    assert_eq!(
        not_ok(&r),
        [("rule", Verdict::Fail), ("guardduty_rule", Verdict::Fail)]
    );
    assert_eq!(the(&r, "rule").subject.as_deref(), Some(RULE));
    assert!(
        the(&r, "rule")
            .fix
            .as_deref()
            .unwrap()
            .contains(&format!("enable-rule --name {RULE}"))
    );
}

#[test]
fn a_rule_retargeted_elsewhere_fails_when_named() {
    let mut fake = Fake::healthy();
    if let Some(rule) = fake.rules.get_mut(RULE) {
        rule.targets = vec!["arn:aws:lambda:us-east-1:111122223333:function:other".into()];
    }
    // No longer targeting the function, the rule is found only by its name.
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("guardduty_rule", Verdict::Fail)]);
    let r = doctor_with(
        &fake,
        &Options {
            rules: vec![RULE.into()],
            ..opts()
        },
    );
    assert_eq!(
        not_ok(&r),
        [("rule", Verdict::Fail), ("guardduty_rule", Verdict::Fail)]
    );
    assert!(the(&r, "rule").detail.contains("function:other"));
    let r = doctor_with(
        &fake,
        &Options {
            rules: vec!["gone".into()],
            ..opts()
        },
    );
    assert_eq!(
        not_ok(&r),
        [("rule", Verdict::Fail), ("guardduty_rule", Verdict::Fail)]
    );
}

#[test]
fn a_rule_of_other_events_does_not_stand_in_for_guardduty() {
    let mut fake = Fake::healthy();
    if let Some(rule) = fake.rules.get_mut(RULE) {
        rule.event_pattern = Some(r#"{"source":["aws.health"]}"#.into());
    }
    assert_eq!(not_ok(&doctor(&fake)), [("guardduty_rule", Verdict::Fail)]);
}

#[test]
fn a_disabled_or_deleted_key_fails() {
    let mut fake = Fake::healthy();
    if let Some(key) = fake.keys.get_mut(KEY_ARN) {
        key.state = "Disabled".into();
    }
    let r = doctor(&fake);
    assert_eq!(
        not_ok(&r),
        [("kms_key", Verdict::Fail), ("kms_key", Verdict::Fail)]
    );
    assert!(
        the(&r, "kms_key")
            .fix
            .as_deref()
            .unwrap()
            .contains("aws kms enable-key")
    );
    if let Some(key) = fake.keys.get_mut(KEY_ARN) {
        key.state = "PendingDeletion".into();
    }
    let r = doctor(&fake);
    assert!(
        the(&r, "kms_key")
            .fix
            .as_deref()
            .unwrap()
            .contains("cancel-key-deletion")
    );
}

#[test]
fn a_topic_nobody_confirmed_fails_and_a_missing_one_fails() {
    let mut fake = Fake::healthy();
    if let Some(topic) = fake.topics.get_mut(TOPIC_ARN) {
        topic.subscriptions[0].confirmed = false;
    }
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("topic", Verdict::Fail)]);
    assert!(the(&r, "topic").detail.contains("1 pending"));
    fake.topics.clear();
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("topic", Verdict::Fail)]);
    assert!(the(&r, "topic").detail.contains("no such topic"));
}

#[test]
fn guardduty_off_in_one_region_fails_naming_it() {
    let r = doctor(&Fake::healthy().detector_off("eu-west-1"));
    assert_eq!(not_ok(&r), [("guardduty", Verdict::Fail)]);
    let check = the(&r, "guardduty");
    assert!(
        check.detail.contains("1 of 2 enabled Regions (eu-west-1)"),
        "{}",
        check.detail
    );
    assert_eq!(check.subject.as_deref(), Some(ACCOUNT));
}

#[test]
fn guardduty_doctor_may_not_read_fails_with_the_grant() {
    let mut fake = Fake::healthy();
    fake.refused.insert("guardduty:ListDetectors");
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("guardduty", Verdict::Fail)]);
    let fix = the(&r, "guardduty").fix.clone().unwrap();
    assert!(
        fix.starts_with(&format!("grant guardduty:ListDetectors to {OPERATOR}")),
        "{fix}"
    );
}

#[test]
fn no_logging_trail_fails_and_a_single_region_one_warns() {
    let mut fake = Fake::healthy();
    fake.trails[0].logging = false;
    assert_eq!(not_ok(&doctor(&fake)), [("cloudtrail", Verdict::Fail)]);
    fake.trails[0].logging = true;
    fake.trails[0].multi_region = false;
    assert_eq!(not_ok(&doctor(&fake)), [("cloudtrail", Verdict::Warn)]);
}

#[test]
fn a_trail_without_management_events_fails_and_one_without_reads_warns() {
    use super::ManagementEvents;
    let mut fake = Fake::healthy();
    fake.trails[0].management = Some(ManagementEvents {
        writes: false,
        reads: false,
    });
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("cloudtrail", Verdict::Fail)]);
    assert!(the(&r, "cloudtrail").detail.contains("pivot rules"));
    fake.trails[0].management = Some(ManagementEvents {
        writes: true,
        reads: false,
    });
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("cloudtrail", Verdict::Warn)]);
    assert!(the(&r, "cloudtrail").detail.contains("AssumeRole"));
    fake.trails[0].management = None;
    assert_eq!(not_ok(&doctor(&fake)), [("cloudtrail", Verdict::Warn)]);
}

#[test]
fn a_permission_removed_from_the_role_fails_naming_it_and_its_resource() {
    let mut fake = Fake::healthy();
    fake.denied.insert("iam:UpdateAccessKey");
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("permissions", Verdict::Fail)]);
    let detail = &the(&r, "permissions").detail;
    assert!(
        detail.contains("iam:UpdateAccessKey on arn:aws:iam::111122223333:user/_killswitch-doctor-probe (implicitDeny)"),
        "{detail}"
    );
    let simulated = fake.simulated.borrow();
    assert!(simulated.iter().all(|(who, _)| who == ROLE_ARN));
    let boundary = simulated
        .iter()
        .find(|(_, p)| p.actions == ["iam:PutUserPermissionsBoundary"])
        .unwrap();
    assert_eq!(
        boundary.1.context,
        [(
            "iam:PermissionsBoundary",
            "arn:aws:iam::aws:policy/AWSDenyAll".to_owned()
        )]
    );
    let actions: std::collections::BTreeSet<&str> = simulated
        .iter()
        .flat_map(|(_, p)| p.actions.iter().copied())
        .collect();
    // Without a table, queue, record key or member accounts, the calls for them are not made;
    // the chat topic's key is the template's to know.
    let expected: std::collections::BTreeSet<&str> = crate::playbook::required_permissions()
        .into_iter()
        .filter(|a| {
            !a.starts_with("dynamodb:")
                && !a.starts_with("kms:")
                && *a != "sqs:SendMessage"
                && *a != "sts:AssumeRole"
        })
        .collect();
    assert_eq!(actions, expected);
}

#[test]
fn a_member_account_is_checked_as_its_member_role() {
    let mut member = Fake::healthy();
    member.refused.insert("guardduty:ListDetectors");
    member.refused.insert("iam:SimulatePrincipalPolicy");
    let fake = Fake::healthy().with_member(member);
    let r = doctor(&fake);
    assert_eq!(
        not_ok(&r),
        [("guardduty", Verdict::Warn), ("permissions", Verdict::Warn)],
        "{:#?}",
        r.checks
    );
    let entered = the(&r, "member_role");
    assert_eq!(entered.subject.as_deref(), Some(MEMBER));
    assert!(
        entered
            .detail
            .contains("arn:aws:sts::444455556666:assumed-role/KillSwitchMember/killswitch-doctor")
    );
    let member_guardduty = r
        .checks
        .iter()
        .find(|c| c.name == "guardduty" && c.subject.as_deref() == Some(MEMBER))
        .unwrap();
    assert!(
        member_guardduty
            .fix
            .as_deref()
            .unwrap()
            .contains("member-role.yaml does not")
    );
    // The function's role is simulated entering the member role, for that account only.
    let simulated = fake.simulated.borrow();
    let enter = simulated
        .iter()
        .find(|(_, p)| p.actions == ["sts:AssumeRole"])
        .unwrap();
    assert_eq!(enter.1.resource, MEMBER_ROLE_ARN);
    assert_eq!(
        enter.1.context,
        [("aws:ResourceAccount", MEMBER.to_owned())]
    );
}

#[test]
fn a_member_role_refusing_the_operator_warns_and_refusing_the_function_fails() {
    let mut fake = Fake::healthy().with_member(Fake::healthy());
    fake.members.clear();
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("member_role", Verdict::Warn)]);
    fake.caller = "arn:aws:sts::111122223333:assumed-role/killswitch-responder/probe".into();
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("member_role", Verdict::Fail)]);
    assert!(
        the(&r, "member_role")
            .fix
            .as_deref()
            .unwrap()
            .contains("ResponderRoleName = killswitch-responder")
    );
}

#[test]
fn a_read_doctor_may_not_make_fails_with_the_permission_to_grant() {
    let mut fake = Fake::healthy();
    fake.refused.insert("lambda:GetFunctionConcurrency");
    let r = doctor(&fake);
    assert_eq!(not_ok(&r), [("concurrency", Verdict::Fail)]);
    assert!(
        the(&r, "concurrency")
            .fix
            .as_deref()
            .unwrap()
            .starts_with("grant lambda:GetFunctionConcurrency to")
    );
}

#[test]
fn the_docs_list_every_permission_doctor_needs_and_the_adapter_calls_only_those() {
    let docs = include_str!("../../docs/doctor.md");
    let adapter = include_str!("../aws/doctor.rs");
    for action in super::PERMISSIONS {
        assert!(
            docs.contains(&format!("`{action}`")),
            "docs/doctor.md lacks {action}"
        );
    }
    // Every operation the adapter names (aws_err("…")) is declared.
    for op in adapter.split("aws_err(\"").skip(1) {
        let op = op.split('"').next().unwrap();
        assert!(
            super::PERMISSIONS.contains(&op),
            "{op} is not in doctor::PERMISSIONS"
        );
    }
}
