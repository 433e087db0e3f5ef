//! The org-level quarantine: one SCP per account holds every quarantined principal, written
//! idempotently, read back, inside Organizations' limits, never on the management account,
//! shown by status and lifted by restore; its trouble never touches the IAM containment.

use chrono::{TimeZone, Utc};
use killswitch::config::Quarantine;
use killswitch::handler::App;
use killswitch::incident::AccessKeyId;
use killswitch::oncall;
use killswitch::playbook::Step;
use killswitch::playbook::quarantine::{Entry, MAX_SCP_CHARS, document, parse, policy_name};
use killswitch::ports::KeyStatus;
use killswitch::report::{Outcome, Report, Status};
use serde_json::{Value, json};

use crate::support::*;

fn quarantined(cloud: FakeCloud) -> App<FakeCloud> {
    let mut a = lambda(cloud);
    a.config.quarantine = Some(Quarantine {
        role_arn: "arn:aws:iam::999999999999:role/KillSwitchQuarantine".into(),
        external_id: "ext-123".into(),
    });
    a.cloud.state.lock().unwrap().org_management = "999999999999".into();
    a
}

fn scp(cloud: &FakeCloud) -> Option<(String, String)> {
    let s = cloud.state.lock().unwrap();
    s.scps
        .iter()
        .find(|(_, (n, _))| *n == policy_name(ACCOUNT))
        .map(|(id, (_, c))| (id.clone(), c.clone()))
}

fn attached(cloud: &FakeCloud) -> Vec<String> {
    cloud
        .state
        .lock()
        .unwrap()
        .scp_targets
        .get(ACCOUNT)
        .cloned()
        .unwrap_or_default()
}

fn step(r: &Report) -> Option<(Outcome, String)> {
    r.steps
        .iter()
        .find(|s| s.step == Step::Quarantine)
        .map(|s| (s.outcome.clone(), s.detail.clone()))
}

#[test]
fn the_document_round_trips_and_keeps_what_is_not_ours() {
    let entries = vec![
        Entry::User {
            name: "alice".into(),
        },
        Entry::Session {
            userid: "AROAEXAMPLEID:i-0abc".into(),
        },
        Entry::RoleBefore {
            name: "ci-deployer".into(),
            cutoff: Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
        },
    ];
    let theirs =
        json!({"Sid": "OrgAdminAddition", "Effect": "Deny", "Action": "s3:*", "Resource": "*"});
    let doc = document("aws", ACCOUNT, &entries, std::slice::from_ref(&theirs));
    assert!(!doc.contains(' ') && !doc.contains('\n'), "compact: {doc}");
    let back = parse(&doc, "aws", ACCOUNT);
    let mut want = entries.clone();
    want.sort();
    assert_eq!(back.entries, want);
    assert_eq!(back.others, vec![theirs]);
    assert!(!back.tampered);
    let v: Value = serde_json::from_str(&doc).unwrap();
    let users = &v["Statement"][1]["Condition"]["ArnLike"]["aws:PrincipalArn"];
    // With or without a path, and nothing else (`*/alice` cannot match `malice`).
    assert_eq!(
        users,
        &json!([
            format!("arn:aws:iam::{ACCOUNT}:user/alice"),
            format!("arn:aws:iam::{ACCOUNT}:user/*/alice")
        ])
    );
    assert_eq!(
        v["Statement"][2]["Condition"]["StringEquals"]["aws:userid"],
        json!(["AROAEXAMPLEID:i-0abc"])
    );
    assert_eq!(
        v["Statement"][3]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        "2026-12-03T12:00:00Z"
    );
    for st in v["Statement"].as_array().unwrap().iter().skip(1) {
        assert_eq!(st["Effect"], "Deny");
        assert_eq!(st["Action"], "*");
    }
}

#[tokio::test]
async fn a_contained_user_is_quarantined_once_in_the_accounts_one_policy() {
    let a = quarantined(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.cloud
        .add_user_key("bob", "AKIAI44QH8DHBEXAMPLE", KeyStatus::Active);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained);
    let (outcome, detail) = step(r).unwrap();
    assert_eq!(outcome, Outcome::Done, "{detail}");
    assert!(
        detail.contains("does not restrict the management account"),
        "{detail}"
    );
    let (id, content) = scp(&a.cloud).unwrap();
    assert_eq!(
        parse(&content, "aws", ACCOUNT).entries,
        vec![Entry::User {
            name: "alice".into()
        }]
    );
    assert!(attached(&a.cloud).contains(&id));
    // The full report carries it.
    let (_, body) = a.cloud.published().pop().unwrap();
    assert!(body.contains("quarantine"), "{body}");

    // A redelivery (a GuardDuty re-emit) and a manual request for the same key change nothing.
    let mut again = event("guardduty-iam-user-finding.json");
    again["detail"]["updatedAt"] = json!("2026-11-23T09:10:02.114Z");
    run(&a, again).await;
    let manual = json!({
        "access_key_id": FIXTURE_KEY,
        "reason": "same leak, by hand",
        "requested_by": "oncall@example.com",
    });
    let r = &run(&a, manual).await.reports[0];
    assert_eq!(
        step(r).map(|s| s.0),
        Some(Outcome::AlreadyDone),
        "{:?}",
        r.steps
    );
    assert_eq!(scp(&a.cloud).unwrap(), (id.clone(), content));
    let updates = a
        .cloud
        .calls()
        .iter()
        .filter(|(c, _)| c == "organizations:UpdatePolicy" || c == "organizations:CreatePolicy")
        .count();
    assert_eq!(updates, 1);

    // Another user of the same account joins the same policy.
    let mut bob = json!({
        "access_key_id": "AKIAI44QH8DHBEXAMPLE",
        "reason": "second leak",
        "requested_by": "oncall@example.com",
    });
    bob["user_name"] = json!("bob");
    run(&a, bob).await;
    let (same_id, content) = scp(&a.cloud).unwrap();
    assert_eq!(same_id, id);
    assert_eq!(
        parse(&content, "aws", ACCOUNT).entries.len(),
        2,
        "{content}"
    );
    assert_eq!(attached(&a.cloud).iter().filter(|p| **p == id).count(), 1);
}

#[tokio::test]
async fn the_management_account_is_skipped_and_said_so() {
    let a = quarantined(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.cloud.state.lock().unwrap().org_management = ACCOUNT.into();
    let r = &run(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained);
    let (outcome, detail) = step(r).unwrap();
    assert_eq!(outcome, Outcome::Skipped);
    assert!(detail.contains("management account"), "{detail}");
    assert!(scp(&a.cloud).is_none());
}

#[tokio::test]
async fn organizations_limits_and_outages_leave_the_iam_containment_standing() {
    // Five SCPs already attached to the account (FullAWSAccess and four others).
    let a = quarantined(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.cloud.state.lock().unwrap().scp_targets.insert(
        ACCOUNT.into(),
        ["p-FullAWSAccess", "p-a", "p-b", "p-c", "p-d"]
            .map(String::from)
            .to_vec(),
    );
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let r = &response.reports[0];
    assert_eq!(r.status, Status::Contained);
    assert!(response.error().is_none());
    let (outcome, detail) = step(r).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert!(detail.contains("5 SCPs attached"), "{detail}");
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );

    // The account's policy is full: the principal is not written half-way.
    let a = quarantined(FakeCloud::with_user("alice", FIXTURE_KEY));
    let crowd: Vec<Entry> = (0..200)
        .map(|i| Entry::User {
            name: format!("user-with-a-long-name-{i:04}"),
        })
        .collect();
    let full = document("aws", ACCOUNT, &crowd[..20], &[]);
    assert!(full.len() < MAX_SCP_CHARS);
    let mut n = 20;
    let mut content = full;
    while document("aws", ACCOUNT, &crowd[..n + 1], &[]).len() <= MAX_SCP_CHARS {
        n += 1;
        content = document("aws", ACCOUNT, &crowd[..n], &[]);
    }
    a.cloud
        .state
        .lock()
        .unwrap()
        .scps
        .insert("p-full".into(), (policy_name(ACCOUNT), content.clone()));
    let r = &run(&a, event("guardduty-iam-user-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained);
    let (outcome, detail) = step(r).unwrap();
    assert_eq!(outcome, Outcome::Failed);
    assert!(detail.contains("5,120"), "{detail}");
    assert_eq!(scp(&a.cloud).unwrap().1, content, "unchanged");

    // Organizations (or the role) down.
    let a = quarantined(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.cloud.fail(
        "organizations:DescribeOrganization",
        "AccessDeniedException",
    );
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(response.reports[0].status, Status::Contained);
    assert!(response.error().is_none());
    assert_eq!(step(&response.reports[0]).unwrap().0, Outcome::Failed);
}

#[tokio::test]
async fn a_role_session_is_quarantined_by_its_userid() {
    let a = quarantined(FakeCloud::default());
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert!(r.status.is_contained(), "{r:?}");
    let (_, content) = scp(&a.cloud).unwrap();
    let entries = parse(&content, "aws", ACCOUNT).entries;
    assert!(
        matches!(&entries[..], [Entry::Session { userid }] if userid.starts_with("AROA") && userid.contains(':')),
        "{entries:?}"
    );
}

#[tokio::test]
async fn status_reads_it_back_and_restore_lifts_it_and_deletes_an_empty_policy() {
    let a = quarantined(FakeCloud::with_user("alice", FIXTURE_KEY));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let key = AccessKeyId::parse(FIXTURE_KEY).unwrap();
    // The holder's other admin credential deletes the inline deny: the SCP is untouched.
    a.cloud
        .state
        .lock()
        .unwrap()
        .policies
        .remove(&("user/alice".into(), "KillSwitchDenyAll".into()));
    let state = oncall::status(&a.cloud, &a.config, &key, None, None)
        .await
        .unwrap();
    let q = state.quarantine.as_ref().unwrap();
    assert_eq!(q.read_back, "stands");
    assert_eq!(q.placed.account, ACCOUNT);
    let text = killswitch::cli::text::status(&state, false);
    assert!(
        text.contains("org SCP:") && text.contains("stands"),
        "{text}"
    );

    let restored = restore_alice(&a, &a.config, "oncall@example.com", "false positive").await;
    assert!(restored.failed.is_empty(), "{:?}", restored.failed);
    assert!(
        restored
            .done
            .iter()
            .any(|d| d.starts_with("take user alice out of the org quarantine SCP")),
        "{:?}",
        restored.done
    );
    assert!(scp(&a.cloud).is_none());
    assert_eq!(attached(&a.cloud), vec!["p-FullAWSAccess".to_string()]);
    let state = oncall::status(&a.cloud, &a.config, &key, None, None)
        .await
        .unwrap();
    assert_eq!(state.quarantine.unwrap().read_back, "lifted");
}

#[tokio::test]
async fn restore_without_the_quarantine_role_says_what_is_left() {
    let a = quarantined(FakeCloud::with_user("alice", FIXTURE_KEY));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let mut operator = a.config.clone();
    operator.quarantine = None;
    let restored = restore_alice(&a, &operator, "oncall", "fp").await;
    assert!(
        restored
            .failed
            .iter()
            .any(|f| f.contains("NOT lifted") && f.contains("KILLSWITCH_QUARANTINE_ROLE_ARN")),
        "{:?}",
        restored.failed
    );
    assert!(scp(&a.cloud).is_some());
}

#[test]
fn a_decoy_or_edited_statement_under_our_sid_is_tampering_and_wildcards_are_not_names() {
    let ours = document(
        "aws",
        ACCOUNT,
        &[Entry::User {
            name: "alice".into(),
        }],
        &[],
    );
    // One extra condition that never matches: it denies nothing.
    let mut v: Value = serde_json::from_str(&ours).unwrap();
    v["Statement"][0]["Condition"]["IpAddress"] = json!({"aws:SourceIp": "192.0.2.1/32"});
    let decoy = parse(&v.to_string(), "aws", ACCOUNT);
    assert!(decoy.tampered);
    assert_eq!(
        decoy.entries,
        vec![Entry::User {
            name: "alice".into()
        }]
    );
    // Allow instead of Deny.
    let mut v: Value = serde_json::from_str(&ours).unwrap();
    v["Statement"][0]["Effect"] = json!("Allow");
    assert!(parse(&v.to_string(), "aws", ACCOUNT).tampered);
    // A wildcard planted as a "name" never becomes an entry (it would deny the account).
    let mut v: Value = serde_json::from_str(&ours).unwrap();
    v["Statement"][0]["Condition"]["ArnLike"]["aws:PrincipalArn"] =
        json!([format!("arn:aws:iam::{ACCOUNT}:user/*")]);
    let wild = parse(&v.to_string(), "aws", ACCOUNT);
    assert!(wild.entries.is_empty() && wild.tampered, "{wild:?}");
    assert!(!parse(&ours, "aws", ACCOUNT).tampered);
}

#[tokio::test]
async fn a_tampered_quarantine_reads_lifted_and_is_rewritten_on_the_next_response() {
    let a = quarantined(FakeCloud::with_user("alice", FIXTURE_KEY));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let key = AccessKeyId::parse(FIXTURE_KEY).unwrap();
    let (id, content) = scp(&a.cloud).unwrap();
    let mut v: Value = serde_json::from_str(&content).unwrap();
    v["Statement"][0]["Condition"]["IpAddress"] = json!({"aws:SourceIp": "192.0.2.1/32"});
    a.cloud.state.lock().unwrap().scps.get_mut(&id).unwrap().1 = v.to_string();
    let state = oncall::status(&a.cloud, &a.config, &key, None, None)
        .await
        .unwrap();
    assert_eq!(state.quarantine.unwrap().read_back, "lifted");
    let manual = json!({"access_key_id": FIXTURE_KEY, "reason": "again", "requested_by": "oncall"});
    let r = &run(&a, manual).await.reports[0];
    let (outcome, detail) = step(r).unwrap();
    assert_eq!(outcome, Outcome::Done);
    assert!(detail.contains("TAMPERED OR DECOY"), "{detail}");
    assert_eq!(
        scp(&a.cloud).unwrap().1,
        content,
        "rewritten as killswitch writes it"
    );
}

#[tokio::test]
async fn a_request_naming_an_owner_nobody_confirmed_gets_no_org_quarantine() {
    // A session key with no CloudTrail event yet, a user named by the request alone: the IAM
    // side acts (an admin can undo it), the org quarantine (nobody in the account can) does not.
    let a = quarantined(FakeCloud::with_user("breakglass", "AKIAI44QH8DHBEXAMPLE"));
    let forged = json!({
        "access_key_id": "ASIAIOSFODNN7EXAMPLE",
        "user_name": "breakglass",
        "reason": "trust me",
        "requested_by": "someone",
    });
    let r = &run(&a, forged).await.reports[0];
    let (outcome, detail) = step(r).unwrap_or((Outcome::Skipped, "no step".into()));
    assert_eq!(outcome, Outcome::Skipped, "{detail}: {:?}", r.steps);
    assert!(scp(&a.cloud).is_none());
}

#[tokio::test]
async fn concurrent_incidents_of_one_account_all_end_up_in_the_policy() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let keys: Vec<String> = (0..6)
        .map(|i| format!("AKIAI44QH8DHBEXAMP{i:02}"))
        .collect();
    for (i, k) in keys.iter().enumerate() {
        cloud.add_user_key(&format!("user{i}"), k, KeyStatus::Active);
    }
    let a = quarantined(cloud);
    let runs = keys.iter().enumerate().map(|(i, k)| {
        let a = &a;
        let request = json!({"access_key_id": k, "user_name": format!("user{i}"), "reason": "burst", "requested_by": "oncall"});
        async move { run(a, request).await }
    });
    futures::future::join_all(runs).await;
    let (_, content) = scp(&a.cloud).unwrap();
    let entries = parse(&content, "aws", ACCOUNT).entries;
    assert_eq!(entries.len(), 6, "{content}");
}
