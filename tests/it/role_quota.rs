//! A role whose inline-policy quota is full (10,240 characters, all its inline policies
//! together) is denied by killswitch's own managed policy with the same condition, read back,
//! shown by `status` and removed by `restore`; and a denied session leaves the list only through
//! a restore: a tampered list is rewritten with its entries, a full one overflows into the
//! managed policy, nothing is pruned.

use std::collections::BTreeSet;

use chrono::{TimeDelta, Utc};
use killswitch::handler::App;
use killswitch::incident::AccessKeyId;
use killswitch::oncall::{self, RestoreAction, RestoreRequest};
use killswitch::policy::{self, ROLE_POLICY_NAME, SESSION_POLICY_NAME};
use killswitch::report::{Outcome, Status};
use serde_json::{Value, json};

use crate::support::*;

const ROLE_ID: &str = "AROACKCEVSQ6C2EXAMPLE";
const SESSION: &str = "AROACKCEVSQ6C2EXAMPLE:ci-deploy-session";

fn managed_arn(inline: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:policy/killswitch/{inline}-ci-deployer")
}

/// An inline policy of about `size` characters the key's holder put on the role.
fn filler(size: usize) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{}", "x".repeat(size.saturating_sub(100)))}]})
    .to_string()
}

/// The role, its inline quota filled by the holder.
fn full_role() -> FakeCloud {
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), ROLE_ID.into());
    cloud.set_policy("role/ci-deployer", "HolderFiller", &filler(10_200));
    cloud
}

/// The managed policy's default document, and whether the role has it attached.
fn managed(cloud: &FakeCloud, arn: &str) -> Option<(String, bool)> {
    let s = cloud.state.lock().unwrap();
    let doc = s
        .managed
        .get(arn)?
        .iter()
        .find(|(_, _, default)| *default)?
        .1
        .clone();
    let attached = s
        .role_attached
        .get("ci-deployer")
        .is_some_and(|l| l.iter().any(|a| a == arn));
    Some((doc, attached))
}

fn contained_hours_ago(cloud: &FakeCloud, key: &str, hours: i64) {
    let mut state = cloud.state.lock().unwrap();
    let id = format!("incident#{ACCOUNT}#{key}");
    let mut record: Value = serde_json::from_str(state.items.get(&id).unwrap()).unwrap();
    record["applied"]["at"] = json!((Utc::now() - TimeDelta::hours(hours)).to_rfc3339());
    state.items.insert(id, record.to_string());
}

fn role_req() -> RestoreRequest {
    RestoreRequest {
        role_name: Some("ci-deployer".into()),
        ..Default::default()
    }
}

async fn restore_role(a: &App<FakeCloud>) -> (oncall::Assessment, oncall::Restored) {
    let key = AccessKeyId::parse(FIXTURE_ROLE_KEY).unwrap();
    let assessment = oncall::assess(&a.cloud, &a.config, &key, &role_req())
        .await
        .unwrap();
    let restored = oncall::restore(
        &a.cloud,
        &a.config,
        &key,
        &assessment,
        "oncall",
        "fixed",
        false,
    )
    .await;
    (assessment, restored)
}

fn sessions(n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{ROLE_ID}:i-{i:017x}")).collect()
}

#[tokio::test]
async fn a_role_whose_inline_quota_is_full_is_denied_by_killswitchs_managed_policy_until_restored()
{
    let a = lambda(full_role());
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{:#?}", r.steps);
    let arn = managed_arn(SESSION_POLICY_NAME);
    let (doc, attached) = managed(&a.cloud, &arn).expect("the managed deny");
    assert!(attached);
    assert_eq!(
        policy::denied_sessions(&doc),
        Some([SESSION.to_string()].into())
    );
    assert!(
        a.cloud
            .policy("role/ci-deployer", SESSION_POLICY_NAME)
            .is_none()
    );
    assert!(
        r.steps
            .iter()
            .any(|s| s.detail.contains("inline-policy quota") && s.detail.contains(&arn)),
        "{:#?}",
        r.steps
    );
    // Read back where it was written: verification holds, nothing re-applied.
    let v = r.verification.as_ref().unwrap();
    assert!(v.holds && !v.reapplied && !v.contested, "{v:?}");
    // `status` shows it.
    let key = AccessKeyId::parse(FIXTURE_ROLE_KEY).unwrap();
    let state = oncall::status(&a.cloud, &a.config, &key, None, Some("ci-deployer"))
        .await
        .unwrap();
    assert_eq!(state.role_sessions_denied, vec![SESSION.to_string()]);
    assert!(
        state
            .killswitch_policies
            .contains(&format!("role/ci-deployer: {arn}")),
        "{:?}",
        state.killswitch_policies
    );
    // The restore takes the session out: the last one out detaches and deletes the policy; the
    // holder's filler is not killswitch's to touch.
    contained_hours_ago(&a.cloud, FIXTURE_ROLE_KEY, 13);
    let (assessment, restored) = restore_role(&a).await;
    assert!(assessment.refusals.is_empty(), "{:?}", assessment.refusals);
    assert!(restored.failed.is_empty(), "{restored:?}");
    assert!(managed(&a.cloud, &arn).is_none(), "deleted");
    assert!(a.cloud.policy("role/ci-deployer", "HolderFiller").is_some());
}

#[tokio::test]
async fn a_role_wide_cutoff_that_does_not_fit_goes_into_the_managed_policy_and_restore_detaches_it()
{
    let mut a = lambda(full_role());
    a.config.role_wide = vec!["*".into()];
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{:#?}", r.steps);
    let arn = managed_arn(ROLE_POLICY_NAME);
    let (doc, attached) = managed(&a.cloud, &arn).expect("the managed cutoff");
    let cutoff = policy::revocation_cutoff(&doc).expect("exactly killswitch's cutoff");
    assert!(attached && cutoff >= r.started_at - TimeDelta::seconds(1));
    assert!(r.verification.as_ref().unwrap().holds);
    contained_hours_ago(&a.cloud, FIXTURE_ROLE_KEY, 13);
    let (assessment, restored) = restore_role(&a).await;
    assert!(
        assessment.plan.iter().any(|p| matches!(p,
            RestoreAction::DetachRoleDeny { policy_arn, .. } if *policy_arn == arn)),
        "{:?}",
        assessment.plan
    );
    assert!(
        !assessment
            .plan
            .iter()
            .any(|p| matches!(p, RestoreAction::DeletePolicy { .. })),
        "no inline cutoff to delete: {:?}",
        assessment.plan
    );
    assert!(restored.failed.is_empty(), "{restored:?}");
    // A later follow-through reads the recorded restore as what undid the deny.
    assert!(
        restored.done.iter().any(|d| d.starts_with("detach ")),
        "{:?}",
        restored.done
    );
    assert!(managed(&a.cloud, &arn).is_none());
}

#[tokio::test]
async fn a_tampered_session_list_is_rewritten_with_this_roles_sessions_it_named() {
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), ROLE_ID.into());
    // An earlier incident's session, in a list the holder turned into a decoy (an extra
    // condition that never matches), with another role's session slipped in.
    let decoy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "KillSwitchDenySessions",
        "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {
            "StringEquals": {"aws:userid": [format!("{ROLE_ID}:i-0earlier"), "AROAOTHERROLEEXAMPL1:x"]},
            "IpAddress": {"aws:SourceIp": "192.0.2.1/32"}}}]});
    cloud.set_policy("role/ci-deployer", SESSION_POLICY_NAME, &decoy.to_string());
    let a = lambda(cloud);
    run(&a, event("guardduty-assumed-role-finding.json")).await;
    let doc = a
        .cloud
        .policy("role/ci-deployer", SESSION_POLICY_NAME)
        .unwrap();
    assert_eq!(
        policy::denied_sessions(&doc),
        Some([format!("{ROLE_ID}:i-0earlier"), SESSION.to_string()].into()),
        "{doc}"
    );
}

#[tokio::test]
async fn a_session_list_the_inline_quota_cannot_hold_overflows_and_nothing_is_pruned() {
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ci-deployer".into(), ROLE_ID.into());
    // Earlier incidents' sessions, some from long ago: the same session name comes back when its
    // instance fetches credentials again, so none of them expires.
    let earlier = sessions(229);
    let doc = policy::deny_sessions(&earlier);
    assert!(
        doc.len() < 10_240 && doc.len() > 10_240 - 50,
        "{}",
        doc.len()
    );
    cloud.set_policy("role/ci-deployer", SESSION_POLICY_NAME, &doc);
    let a = lambda(cloud);
    let r = &run(&a, event("guardduty-assumed-role-finding.json"))
        .await
        .reports[0];
    assert_eq!(r.status, Status::Contained, "{:#?}", r.steps);
    let inline = a
        .cloud
        .policy("role/ci-deployer", SESSION_POLICY_NAME)
        .unwrap();
    assert_eq!(policy::denied_sessions(&inline), Some(earlier.clone()));
    let (managed_doc, attached) = managed(&a.cloud, &managed_arn(SESSION_POLICY_NAME)).unwrap();
    assert!(attached);
    assert_eq!(
        policy::denied_sessions(&managed_doc),
        Some([SESSION.to_string()].into())
    );
    // Restoring this incident takes out its session only.
    contained_hours_ago(&a.cloud, FIXTURE_ROLE_KEY, 13);
    let (_, restored) = restore_role(&a).await;
    assert!(restored.failed.is_empty(), "{restored:?}");
    assert!(managed(&a.cloud, &managed_arn(SESSION_POLICY_NAME)).is_none());
    assert_eq!(
        policy::denied_sessions(
            &a.cloud
                .policy("role/ci-deployer", SESSION_POLICY_NAME)
                .unwrap()
        ),
        Some(earlier)
    );
    assert!(
        r.steps.iter().all(|s| s.outcome != Outcome::Failed),
        "{:#?}",
        r.steps
    );
}
