//! Classification and pivot extraction over the realistic records in events/cloudtrail/.

use killswitch::analysis::{Category, PivotKind, categorize, examine};
use killswitch::incident::AccessKeyId;
use killswitch::investigation::containment_request;
use killswitch::ports::ApiCall;
use killswitch::report::Activity;

fn records() -> Vec<(String, ApiCall)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events/cloudtrail");
    let mut out: Vec<(String, ApiCall)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let record: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let call = ApiCall::from_record(&record)
                .unwrap_or_else(|| panic!("{name} is not a readable record"));
            (name, call)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_fixture_is_classified_by_its_pattern() {
    let all = records();
    assert!(all.len() >= 25, "{} fixtures", all.len());
    for (name, call) in &all {
        let expected = match name.split('-').next().unwrap() {
            "persistence" | "denied" => Some(Category::Persistence),
            "minting" => Some(Category::CredentialMinting),
            "evasion" => Some(Category::DefenceEvasion),
            "response" => Some(Category::AgainstResponse),
            "impact" => Some(Category::Impact),
            "benign" => None,
            other => panic!("fixture {name}: unknown pattern {other}"),
        };
        assert_eq!(
            categorize(&call.event_source, &call.event_name),
            expected,
            "{name}"
        );
        let (notable, _) = examine(call);
        assert_eq!(notable.map(|n| n.category), expected, "{name}");
    }
}

#[test]
fn minted_credentials_become_pivots_with_their_principal() {
    let all = records();
    let pivot = |name: &str| {
        let call = &all.iter().find(|(n, _)| n == name).unwrap().1;
        examine(call).1
    };
    let key = pivot("persistence-create-access-key").unwrap();
    assert_eq!(
        (
            key.kind,
            key.access_key_id.as_deref().unwrap_or_default(),
            key.principal.as_deref()
        ),
        (PivotKind::AccessKey, "AKIAI44QH8DHBEXAMPLE", Some("alice"))
    );
    let role = pivot("minting-assume-role").unwrap();
    assert_eq!(role.kind, PivotKind::RoleSession);
    assert_eq!(role.access_key_id.as_deref(), Some("ASIAQNKBOK6UEXAMPLE2"));
    assert_eq!(role.role_in("123456789012").as_deref(), Some("ci-deployer"));
    assert_eq!(
        role.role_session_name.as_deref(),
        Some("botocore-session-1763867165")
    );
    let foreign = pivot("minting-assume-role-cross-account").unwrap();
    assert_eq!(
        foreign.role_in("123456789012"),
        None,
        "a role in another account is not ours to contain"
    );
    assert_eq!(
        pivot("minting-get-session-token").unwrap().kind,
        PivotKind::UserSession
    );
    assert_eq!(
        pivot("minting-get-federation-token").unwrap().kind,
        PivotKind::UserSession
    );
    // Refused calls mint nothing; other calls are not pivots.
    assert!(pivot("denied-create-user").is_none());
    assert!(pivot("impact-run-instances").is_none());
}

#[test]
fn notable_details_carry_the_parameters_to_act_on() {
    let all = records();
    let details = |name: &str| {
        examine(&all.iter().find(|(n, _)| n == name).unwrap().1)
            .0
            .unwrap()
            .details
    };
    assert!(
        details("persistence-attach-user-policy")
            .contains("policyArn=arn:aws:iam::aws:policy/AdministratorAccess")
    );
    assert!(details("impact-run-instances").contains("instanceType=p4d.24xlarge"));
    assert!(details("impact-run-instances").contains("count=20"));
    assert!(
        details("persistence-create-access-key").contains("newAccessKeyId=AKIAI44QH8DHBEXAMPLE")
    );
    assert!(details("evasion-delete-user-policy").contains("policyName=KillSwitchDenyAll"));
    assert!(details("impact-invoke-model").contains("modelId=anthropic."));
}

#[test]
fn the_summary_puts_pivots_and_persistence_first_and_stays_bounded() {
    let mut activity = Activity::default();
    for (_, call) in records() {
        activity.add(&call);
    }
    // Keys, sessions, two console passwords, a trust policy and a service credential.
    assert_eq!(activity.pivots.len(), 9);
    assert_eq!(
        activity.notable_counts.get(&Category::Persistence),
        Some(&11)
    );
    assert_eq!(
        activity.notable_counts.get(&Category::DefenceEvasion),
        Some(&2)
    );
    assert_eq!(
        activity.notable_counts.get(&Category::AgainstResponse),
        Some(&11)
    );
    // Thousands of the same flagged call: the list is capped, the count is exact.
    let (_, create_user) = records()
        .into_iter()
        .find(|(n, _)| n == "persistence-create-user")
        .unwrap();
    for _ in 0..10_000 {
        activity.add(&create_user);
    }
    assert!(
        activity.notable[&Category::Persistence].len()
            <= killswitch::analysis::MAX_NOTABLE_PER_CATEGORY
    );
    assert_eq!(activity.notable_counts[&Category::Persistence], 10_011);
    for (cat, list) in &activity.notable {
        for n in list {
            assert!(
                list.iter().filter(|x| x.event_name == n.event_name).count() <= 5,
                "{cat:?}: {} listed more than 5 times",
                n.event_name
            );
        }
    }
    // The flood did not push the grave calls out: they are listed first.
    let kept: Vec<&str> = activity.notable[&Category::Persistence]
        .iter()
        .map(|n| n.event_name.as_str())
        .collect();
    for grave in [
        "CreateAccessKey",
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "UpdateAssumeRolePolicy",
        "AttachUserPolicy",
        "PutUserPolicy",
    ] {
        assert!(kept.contains(&grave), "{grave} crowded out: {kept:?}");
    }
    assert!(
        kept.iter().position(|n| *n == "CreateAccessKey").unwrap()
            < kept.iter().position(|n| *n == "CreateRole").unwrap(),
        "{kept:?}"
    );
}

#[test]
fn new_pivot_kinds_carry_what_contains_them() {
    let all = records();
    let pivot = |name: &str| {
        examine(&all.iter().find(|(n, _)| n == name).unwrap().1)
            .1
            .unwrap_or_else(|| panic!("{name}: no pivot"))
    };
    let password = pivot("persistence-update-login-profile");
    assert_eq!(password.kind, PivotKind::LoginProfile);
    assert_eq!(password.principal.as_deref(), Some("admin-jane"));
    let trust = pivot("persistence-update-assume-role-policy");
    assert_eq!(trust.kind, PivotKind::TrustPolicy);
    assert_eq!(trust.principal.as_deref(), Some("ci-deployer"));
    let cred = pivot("persistence-create-service-specific-credential");
    assert_eq!(cred.kind, PivotKind::ServiceCredential);
    assert_eq!(cred.credential_id.as_deref(), Some("ACCA4XMPLESERVICECRED"));
    let key = AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap();
    let revert = containment_request(&trust, &key, "123456789012");
    assert!(
        revert["command"]
            .as_str()
            .unwrap()
            .starts_with("aws iam update-assume-role-policy --role-name ci-deployer"),
        "{revert}"
    );
    assert!(revert["why_not_automatic"].is_string());
    let off = containment_request(&cred, &key, "123456789012");
    assert!(
        off["command"]
            .as_str()
            .unwrap()
            .contains("--service-specific-credential-id ACCA4XMPLESERVICECRED --status Inactive"),
        "{off}"
    );
    // A password set on the caller itself (no userName) is the leaked user's: covered, no pivot.
    let (_, mut own) = all
        .iter()
        .find(|(n, _)| n == "persistence-create-login-profile")
        .cloned()
        .unwrap();
    own.request_parameters = Some(serde_json::json!({"passwordResetRequired": false}));
    assert!(examine(&own).1.is_none());
}

#[test]
fn session_tokens_newer_than_a_key_never_crowd_it_out() {
    let all = records();
    let call = |name: &str| all.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let mut activity = Activity::default();
    // Newest first, as LookupEvents returns them: 25 session tokens, then the backdoor key.
    for i in 0..25 {
        let mut token = call("minting-get-session-token");
        token.response_elements = Some(serde_json::json!({
            "credentials": {"accessKeyId": format!("ASIA4XMPLESESSION{i:03}")}
        }));
        activity.add(&token);
    }
    activity.add(&call("persistence-create-access-key"));
    assert!(
        activity
            .pivots
            .iter()
            .any(|p| p.pivot.kind == PivotKind::AccessKey),
        "the backdoor key was crowded out"
    );
    assert_eq!(activity.covered_pivots, 25);
    assert_eq!(
        activity
            .pivots
            .iter()
            .filter(|p| p.pivot.kind == PivotKind::UserSession)
            .count(),
        killswitch::analysis::MAX_COVERED_PIVOTS
    );
}
