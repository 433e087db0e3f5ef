//! What a restore refuses beyond new keys and passwords: an MFA device enabled since the incident
//! began (IAM dates it), and the changes IAM keeps no date for, read from the holder's own calls
//! in CloudTrail (a key set back to Active, a password changed in place, a service credential
//! reset, an MFA device enabled), each refusal saying how late CloudTrail shows calls.

use chrono::{DateTime, TimeDelta, Utc};
use killswitch::analysis::{Pivot, PivotKind};
use killswitch::handler::App;
use killswitch::incident::{AccessKeyId, AccountId};
use killswitch::oncall::{self, RestoreRequest};
use killswitch::ports::{ApiCall, KeyStatus, MFA_DEVICE, OtherCredential};
use killswitch::record::Records;
use serde_json::json;

use crate::support::*;

/// A key the holder minted for another user.
const MINTED: &str = "AKIAI44QH8DHBEXAMPLE";
/// alice's second key, from long before the incident.
const OLD_KEY: &str = "AKIAJ7OLDKEYEXAMPLE1";
const LAG: &str = "CloudTrail shows calls about 5 minutes late, up to about 15";

fn key() -> AccessKeyId {
    AccessKeyId::parse(FIXTURE_KEY).unwrap()
}

fn alice() -> RestoreRequest {
    RestoreRequest {
        user_name: Some("alice".into()),
        ..Default::default()
    }
}

/// alice's fixture key contained by the GuardDuty finding, with the incident table.
async fn contained() -> App<FakeCloud> {
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    run(&a, event("guardduty-iam-user-finding.json")).await;
    a
}

async fn assessment(a: &App<FakeCloud>) -> oncall::Assessment {
    oncall::assess(&a.cloud, &a.config, &key(), &alice())
        .await
        .unwrap()
}

async fn refusals(a: &App<FakeCloud>) -> Vec<String> {
    assessment(a).await.refusals
}

fn credential(kind: &'static str, id: &str, at: DateTime<Utc>) -> OtherCredential {
    OtherCredential {
        kind,
        id: id.into(),
        active: true,
        created: Some(at),
    }
}

/// An IAM call CloudTrail recorded, signed by `signer`, delivered after the investigation read
/// CloudTrail (as it is, minutes late).
fn signed(
    a: &App<FakeCloud>,
    signer: &str,
    name: &str,
    at: DateTime<Utc>,
    params: serde_json::Value,
) {
    let mut call: ApiCall = api_call(name, at, None);
    call.read_only = Some(false);
    call.request_parameters = Some(params);
    a.cloud
        .state
        .lock()
        .unwrap()
        .key_events
        .entry((signer.into(), "us-east-1".into()))
        .or_default()
        .push(call);
}

async fn record_pivots(a: &App<FakeCloud>, pivots: &[Pivot]) {
    let records = Records::new(&a.cloud, &a.config);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let mut record = records.load(&account, &key()).await.unwrap();
    record.note_pivots(pivots);
    records.save(&record).await.unwrap();
}

fn minted_for_bob(at: DateTime<Utc>) -> Pivot {
    Pivot {
        kind: PivotKind::AccessKey,
        access_key_id: Some(MINTED.into()),
        credential_id: None,
        time: at,
        region: "us-east-1".into(),
        via: "CreateAccessKey".into(),
        principal: Some("bob".into()),
        role_session_name: None,
    }
}

fn with(refused: &[String], what: &str) -> Vec<String> {
    refused
        .iter()
        .filter(|r| r.contains(what))
        .cloned()
        .collect()
}

#[tokio::test]
async fn an_mfa_device_enabled_since_the_incident_began_refuses_the_restore() {
    let a = contained().await;
    let holders = "arn:aws:iam::123456789012:mfa/holder";
    let owners = "arn:aws:iam::123456789012:mfa/alice-phone";
    a.cloud.state.lock().unwrap().other_credentials.insert(
        "alice".into(),
        vec![
            credential(MFA_DEVICE, holders, Utc::now() - TimeDelta::minutes(10)),
            credential(MFA_DEVICE, owners, Utc::now() - TimeDelta::days(300)),
        ],
    );
    let refused = refusals(&a).await;
    let mfa = with(&refused, "mfa/");
    assert_eq!(mfa.len(), 1, "{refused:?}");
    assert!(
        mfa[0].contains(holders) && mfa[0].contains("MFA device") && mfa[0].contains(" enabled "),
        "IAM dates an MFA device by when it was enabled: {mfa:?}"
    );
    // Taken off the user: the restore goes ahead.
    a.cloud
        .state
        .lock()
        .unwrap()
        .other_credentials
        .get_mut("alice")
        .unwrap()
        .remove(0);
    assert!(refusals(&a).await.is_empty(), "{:?}", refusals(&a).await);
}

#[tokio::test]
async fn a_password_the_holder_changed_in_place_with_a_minted_key_refuses_the_restore() {
    let a = contained().await;
    // The holder minted bob a key (deactivated since) and, with it, changed alice's password: its
    // creation date is old, and the leaked key never made the call.
    a.cloud.add_user_key("bob", MINTED, KeyStatus::Inactive);
    a.cloud
        .state
        .lock()
        .unwrap()
        .login_profiles
        .insert("alice".into(), Utc::now() - TimeDelta::days(300));
    record_pivots(&a, &[minted_for_bob(Utc::now() - TimeDelta::minutes(20))]).await;
    signed(
        &a,
        MINTED,
        "UpdateLoginProfile",
        Utc::now() - TimeDelta::minutes(15),
        json!({"userName": "alice"}),
    );
    // A failed call changed nothing.
    let mut failed = api_call("UpdateLoginProfile", Utc::now(), Some("AccessDenied"));
    failed.request_parameters = Some(json!({"userName": "carol"}));
    a.cloud
        .state
        .lock()
        .unwrap()
        .key_events
        .get_mut(&(MINTED.into(), "us-east-1".into()))
        .unwrap()
        .push(failed);
    let refused = refusals(&a).await;
    let password = with(&refused, "console password of user alice");
    assert_eq!(password.len(), 1, "{refused:?}");
    assert!(
        password[0].contains("changed in place")
            && password[0].contains("UpdateLoginProfile")
            && password[0].contains(MINTED)
            && password[0].contains(LAG)
            && password[0].contains("aws iam delete-login-profile --user-name alice"),
        "{password:?}"
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    // Deleted: nothing of the holder's is left.
    a.cloud.state.lock().unwrap().login_profiles.remove("alice");
    assert!(refusals(&a).await.is_empty());
}

#[tokio::test]
async fn a_key_the_holder_set_back_to_active_refuses_the_restore() {
    let a = contained().await;
    // alice's old key, reactivated with the leaked key; CloudTrail showed the call only after the
    // investigation had read it.
    a.cloud.add_user_key("alice", OLD_KEY, KeyStatus::Active);
    let at = Utc::now() - TimeDelta::minutes(12);
    signed(
        &a,
        FIXTURE_KEY,
        "UpdateAccessKey",
        at,
        json!({"userName": "alice", "accessKeyId": OLD_KEY, "status": "Active"}),
    );
    signed(
        &a,
        FIXTURE_KEY,
        "UpdateAccessKey",
        at,
        json!({"userName": "alice", "accessKeyId": FIXTURE_KEY, "status": "Inactive"}),
    );
    let refused = refusals(&a).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains(OLD_KEY)
            && refused[0].contains("set back to Active")
            && refused[0].contains(LAG)
            && refused[0].contains(&format!(
                "aws iam update-access-key --user-name alice --access-key-id {OLD_KEY} --status Inactive"
            )),
        "{refused:?}"
    );
    a.cloud.add_user_key("alice", OLD_KEY, KeyStatus::Inactive);
    assert!(refusals(&a).await.is_empty());
}

#[tokio::test]
async fn a_service_credential_the_holder_reset_refuses_the_restore() {
    let a = contained().await;
    let id = "ACCAEXAMPLEALICE0001";
    a.cloud.state.lock().unwrap().other_credentials.insert(
        "alice".into(),
        vec![credential(
            "service-specific credential",
            &format!("{id} (codecommit.amazonaws.com)"),
            Utc::now() - TimeDelta::days(300),
        )],
    );
    signed(
        &a,
        FIXTURE_KEY,
        "ResetServiceSpecificCredential",
        Utc::now() - TimeDelta::minutes(8),
        json!({"userName": "alice", "serviceSpecificCredentialId": id}),
    );
    let refused = refusals(&a).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains(id) && refused[0].contains("was reset") && refused[0].contains(LAG),
        "{refused:?}"
    );
    a.cloud
        .state
        .lock()
        .unwrap()
        .other_credentials
        .get_mut("alice")
        .unwrap()[0]
        .active = false;
    assert!(refusals(&a).await.is_empty());
}

#[tokio::test]
async fn an_mfa_device_both_iam_and_cloudtrail_show_is_listed_once() {
    let a = contained().await;
    let serial = "arn:aws:iam::123456789012:mfa/holder";
    let at = Utc::now() - TimeDelta::minutes(9);
    a.cloud
        .state
        .lock()
        .unwrap()
        .other_credentials
        .insert("alice".into(), vec![credential(MFA_DEVICE, serial, at)]);
    signed(
        &a,
        FIXTURE_KEY,
        "EnableMFADevice",
        at,
        json!({"userName": "alice", "serialNumber": serial}),
    );
    let refused = refusals(&a).await;
    assert_eq!(with(&refused, serial).len(), 1, "{refused:?}");
}

#[tokio::test]
async fn cloudtrail_out_of_reach_refuses_and_the_lag_is_always_said() {
    let a = contained().await;
    let said = assessment(&a).await;
    assert!(said.refusals.is_empty(), "{:?}", said.refusals);
    assert!(
        said.unchecked.iter().any(|u| u.contains(LAG)),
        "a restore says that the holder's latest changes may not be in CloudTrail yet: {:?}",
        said.unchecked
    );
    a.cloud
        .fail("cloudtrail:LookupEvents", "AccessDeniedException");
    let refused = refusals(&a).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains(FIXTURE_KEY)
            && refused[0].contains("could not be read from CloudTrail")
            && refused[0].contains("AccessDeniedException")
            && refused[0].contains("--force"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_holders_session_the_roles_managed_deny_names_is_not_live() {
    let a = contained().await;
    let session = Pivot {
        kind: PivotKind::RoleSession,
        access_key_id: Some("ASIAI44QH8DHBEXAMPLE".into()),
        credential_id: None,
        time: Utc::now() - TimeDelta::minutes(10),
        region: "us-east-1".into(),
        via: "AssumeRole".into(),
        principal: Some(format!("arn:aws:iam::{ACCOUNT}:role/ops-admin")),
        role_session_name: Some("x".into()),
    };
    a.cloud
        .state
        .lock()
        .unwrap()
        .role_ids
        .insert("ops-admin".into(), "AROAOPSADMINEXAMPLE1".into());
    record_pivots(&a, &[session]).await;
    assert_eq!(with(&refusals(&a).await, "ASIAI44QH8DHBEXAMPLE").len(), 1);
    // The role's inline quota was full: killswitch denied the session in its managed policy.
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/killswitch/KillSwitchDenySessions-ops-admin");
    {
        let mut s = a.cloud.state.lock().unwrap();
        let doc = killswitch::policy::deny_sessions(&["AROAOPSADMINEXAMPLE1:x".to_string()].into());
        s.managed
            .insert(arn.clone(), vec![("v1".into(), doc, true)]);
        s.role_attached.insert("ops-admin".into(), vec![arn]);
    }
    let refused = refusals(&a).await;
    assert!(
        with(&refused, "ASIAI44QH8DHBEXAMPLE").is_empty(),
        "{refused:?}"
    );
}
