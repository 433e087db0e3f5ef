//! What an operator sees around `restore`: `status` names every killswitch policy left in place,
//! a refusal reads once, before the plan it stopped, with why nothing was recorded and what to do
//! next; the confirmation says it wants the key ID; an unknown key exits 4; and a restore
//! re-checks the credentials the incident's pivots name, refusing while one is live.

use chrono::{DateTime, TimeDelta, Utc};
use killswitch::analysis::{Pivot, PivotKind};
use killswitch::cli::{Output, restore};
use killswitch::handler::App;
use killswitch::incident::{AccessKeyId, AccountId};
use killswitch::oncall::{self, RestoreRequest};
use killswitch::policy::{ROLE_POLICY_NAME, SESSION_POLICY_NAME, USER_POLICY_NAME};
use killswitch::ports::{KeyStatus, OtherCredential};
use killswitch::record::Records;

use crate::support::*;

/// The key the holder minted for a user it created.
const MINTED: &str = "AKIAI44QH8DHBEXAMPLE";

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

/// What the command prints and exits with, as `killswitch restore` runs it; `answer` is what the
/// operator types at the confirmation (`None`: no terminal).
struct Ran {
    code: Result<u8, String>,
    out: String,
    err: String,
}

async fn restore_cmd(
    a: &App<FakeCloud>,
    opts: restore::Options,
    output: Output,
    answer: Option<&str>,
) -> Ran {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = restore::run(
        &a.cloud,
        &a.config,
        &key(),
        &alice(),
        &opts,
        output,
        |_| answer.map(str::to_owned),
        &mut out,
        &mut err,
    )
    .await
    .map_err(|e| e.chain());
    Ran {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn opts(yes: bool) -> restore::Options {
    restore::Options {
        reason: "rotated".into(),
        requested_by: "oncall@example.com".into(),
        yes,
        ..Default::default()
    }
}

/// The holder left a second Active key on alice: a refusal.
fn holder_key_on_alice(cloud: &FakeCloud) {
    let mut s = cloud.state.lock().unwrap();
    s.keys
        .insert(("alice".into(), MINTED.into()), KeyStatus::Active);
    s.key_created
        .insert(("alice".into(), MINTED.into()), Utc::now());
}

fn pivot(kind: PivotKind, via: &str, principal: Option<&str>, at: DateTime<Utc>) -> Pivot {
    Pivot {
        kind,
        access_key_id: None,
        credential_id: None,
        time: at,
        region: "us-east-1".into(),
        via: via.into(),
        principal: principal.map(str::to_owned),
        role_session_name: None,
    }
}

/// What the follow-through keeps of the investigation's pivots, written into the record.
async fn record_pivots(a: &App<FakeCloud>, pivots: &[Pivot]) {
    let records = Records::new(&a.cloud, &a.config);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let mut record = records.load(&account, &key()).await.unwrap();
    assert!(record.applied.is_some(), "contained first");
    record.note_pivots(pivots);
    records.save(&record).await.unwrap();
}

/// The text with its wrapping undone, for phrases that may break across lines.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn refusals(a: &App<FakeCloud>) -> Vec<String> {
    oncall::assess(&a.cloud, &a.config, &key(), &alice())
        .await
        .unwrap()
        .refusals
}

// Point 7: status after a restore.

#[tokio::test]
async fn status_text_shows_the_session_revocation_a_restore_leaves_on_the_user() {
    let a = contained().await;
    let restored = restore_alice(&a, &a.config, "oncall@example.com", "rotated").await;
    assert!(restored.failed.is_empty(), "{restored:?}");
    assert!(a.cloud.policy("user/alice", ROLE_POLICY_NAME).is_some());
    let state = oncall::status(&a.cloud, &a.config, &key(), None, None)
        .await
        .unwrap();
    // The JSON: the same fact twice, as the policy and as its cutoff.
    assert_eq!(
        state.killswitch_policies,
        vec![format!("user/alice: {ROLE_POLICY_NAME}")]
    );
    let cutoff = state.user_sessions_revoked_before.clone().unwrap();
    let text = killswitch::cli::text::status(&state, false);
    assert!(!text.contains("nothing killswitch places"), "{text}");
    assert!(
        text.contains(&format!("in place:   user/alice: {ROLE_POLICY_NAME}"))
            && text.contains(&format!("minted before {cutoff} stay denied")),
        "{text}"
    );
    // The deny itself is gone: it blocks nothing any more.
    assert!(!text.contains("the deny also blocks"), "{text}");
    // While contained, the deny is what is in place, and what it blocks is said.
    let a = contained().await;
    let state = oncall::status(&a.cloud, &a.config, &key(), None, None)
        .await
        .unwrap();
    let text = killswitch::cli::text::status(&state, false);
    assert!(
        text.contains(&format!("in place:   user/alice: {USER_POLICY_NAME}"))
            && text.contains("the deny also blocks")
            && !text.contains(ROLE_POLICY_NAME),
        "{text}"
    );
}

// Point 8: a refusal, a failed record and a wrong confirmation, as printed.

#[tokio::test]
async fn a_refusal_lists_each_reason_once_then_the_plan_not_carried_out_and_the_next_step() {
    let a = contained().await;
    holder_key_on_alice(&a.cloud);
    let ran = restore_cmd(&a, opts(false), Output::Text, None).await;
    // Refused before any question: no terminal was needed to say so.
    assert_eq!(ran.code, Ok(2), "{}{}", ran.out, ran.err);
    let all = flat(&format!("{}{}", ran.out, ran.err));
    assert_eq!(
        all.matches(MINTED).count(),
        1,
        "once:\n{}{}",
        ran.out,
        ran.err
    );
    let (why, plan, recorded, next) = (
        all.find("Refused because:").unwrap(),
        all.find("The plan, NOT carried out:").unwrap(),
        all.find("Recorded in the incident table: NO: refused: nothing was changed")
            .unwrap(),
        all.find("Next:").unwrap(),
    );
    assert!(why < plan && plan < recorded && recorded < next, "{all}");
    assert!(
        all[plan..recorded].contains(&format!("delete inline policy {USER_POLICY_NAME}")),
        "{all}"
    );
    assert!(
        all[next..].contains("run the same restore again") && all[next..].contains("--force"),
        "{all}"
    );
    assert!(
        all.contains("Notice to on-call: RESTORE REFUSED sent"),
        "{all}"
    );
    for line in ran.out.lines() {
        assert!(
            line.chars().count() <= 80 || line.trim_start().starts_with("(aws"),
            "over 80 columns: {line}"
        );
    }
    assert!(a.cloud.policy("user/alice", USER_POLICY_NAME).is_some());
    // For a script: the JSON on stdout, the same text once on stderr.
    let ran = restore_cmd(&a, opts(false), Output::Json, None).await;
    assert_eq!(ran.code, Ok(2));
    let json: serde_json::Value = serde_json::from_str(&ran.out).unwrap();
    assert_eq!(json["refused"].as_array().unwrap().len(), 1, "{json}");
    assert!(json["next_steps"].as_array().unwrap().len() == 2, "{json}");
    assert_eq!(ran.err.matches(MINTED).count(), 1, "{}", ran.err);
    // A dry run: the refusal first too, and the next step.
    let dry = restore_cmd(
        &a,
        restore::Options {
            dry_run: true,
            ..opts(false)
        },
        Output::Text,
        None,
    )
    .await;
    assert_eq!(dry.code, Ok(0));
    let all = flat(&format!("{}{}", dry.out, dry.err));
    assert_eq!(all.matches(MINTED).count(), 1, "{all}");
    assert!(
        all.find("Refused because:").unwrap() < all.find("The plan, NOT carried out").unwrap()
            && all.contains("--force")
            && all.contains("DRY RUN: nothing was changed"),
        "{all}"
    );
    // Forced: listed once, before the confirmation, and counted in the result.
    let forced = restore_cmd(
        &a,
        restore::Options {
            force: true,
            ..opts(true)
        },
        Output::Text,
        None,
    )
    .await;
    assert_eq!(forced.code, Ok(0), "{}{}", forced.out, forced.err);
    assert_eq!(
        flat(&format!("{}{}", forced.out, forced.err))
            .matches(MINTED)
            .count(),
        1,
        "{}{}",
        forced.err,
        forced.out
    );
    assert!(
        forced.err.contains("Forced past (--force):"),
        "{}",
        forced.err
    );
    assert!(
        forced.out.contains("Forced past 1 refusal(s)"),
        "{}",
        forced.out
    );
}

#[tokio::test]
async fn a_restore_that_cannot_be_recorded_says_why_and_what_to_do() {
    let a = contained().await;
    a.cloud.fail("dynamodb:PutItem", "AccessDeniedException");
    let ran = restore_cmd(&a, opts(true), Output::Text, None).await;
    assert_eq!(ran.code, Ok(1), "{}{}", ran.out, ran.err);
    let out = flat(&ran.out);
    assert!(
        out.contains("Recorded in the incident table: NO: the incident table could not be written")
            && out.contains("AccessDeniedException"),
        "{}",
        ran.out
    );
    assert!(
        out.contains("IncidentResponseRoleArn")
            && out.contains("--force")
            && out.contains("takes the restore for tampering"),
        "{}",
        ran.out
    );
    assert!(out.contains("The plan, NOT carried out:"), "{}", ran.out);
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(a.cloud.policy("user/alice", USER_POLICY_NAME).is_some());
}

#[tokio::test]
async fn a_wrong_confirmation_says_the_key_id_was_expected_and_changes_nothing() {
    let a = contained().await;
    let ran = restore_cmd(&a, opts(false), Output::Text, Some("yes")).await;
    let said = ran.code.unwrap_err();
    assert!(
        said.contains("not confirmed")
            && said.contains(&format!("the key ID {FIXTURE_KEY} typed out"))
            && said.contains("\"yes\""),
        "{said}"
    );
    // The plan was shown before the question.
    assert!(ran.err.contains("The plan:"), "{}", ran.err);
    assert!(a.cloud.policy("user/alice", USER_POLICY_NAME).is_some());
    assert!(
        !a.cloud
            .published()
            .iter()
            .any(|(s, _)| s.contains("RESTORING")),
        "nothing announced"
    );
    // The key ID itself goes ahead.
    let ran = restore_cmd(&a, opts(false), Output::Text, Some(FIXTURE_KEY)).await;
    assert_eq!(ran.code, Ok(0), "{}{}", ran.out, ran.err);
    assert!(
        ran.out.starts_with(&format!("RESTORED for {FIXTURE_KEY}.")),
        "{}",
        ran.out
    );
    assert!(a.cloud.policy("user/alice", USER_POLICY_NAME).is_none());
}

// Point 15: an unknown key.

#[tokio::test]
async fn restoring_a_key_nobody_knows_exits_4_like_status() {
    let a = lambda(FakeCloud::default());
    let ran = restore_cmd(&a, opts(true), Output::Text, None).await;
    assert_eq!(ran.code, Ok(4), "{}{}", ran.out, ran.err);
    assert!(ran.out.contains("NOT FOUND"), "{}", ran.out);
    let ran = restore_cmd(&a, opts(true), Output::Json, None).await;
    assert_eq!(ran.code, Ok(4));
    let json: serde_json::Value = serde_json::from_str(&ran.out).unwrap();
    assert_eq!(json["key_found"], false, "{json}");
    // A known key with nothing to undo is still a success.
    let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    let ran = restore_cmd(&a, opts(true), Output::Text, None).await;
    assert_eq!(ran.code, Ok(0), "{}{}", ran.out, ran.err);
    assert!(ran.out.contains("nothing to restore"), "{}", ran.out);
}

// Point 9: the pivots, checked again at restore time.

#[tokio::test]
async fn restore_refuses_while_a_user_the_holder_created_still_has_the_key_it_minted() {
    let a = contained().await;
    // The holder created backup-svc and minted it a key (STILL OPEN in the report).
    a.cloud
        .add_user_key("backup-svc", MINTED, KeyStatus::Active);
    a.cloud
        .state
        .lock()
        .unwrap()
        .key_created
        .insert(("backup-svc".into(), MINTED.into()), Utc::now());
    let minted = Pivot {
        access_key_id: Some(MINTED.into()),
        ..pivot(
            PivotKind::AccessKey,
            "CreateAccessKey",
            Some("backup-svc"),
            Utc::now() - TimeDelta::minutes(10),
        )
    };
    record_pivots(&a, &[minted]).await;
    let refused = refusals(&a).await;
    // Listed once (the minted key and the user's keys are one credential).
    assert_eq!(
        refused.iter().filter(|r| r.contains(MINTED)).count(),
        1,
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|r| r.contains("backup-svc")
            && r.contains("Active")
            && r.contains(&format!(
                "aws iam update-access-key --user-name backup-svc --access-key-id {MINTED} --status Inactive"
            ))),
        "{refused:?}"
    );
    let restored = restore_alice(&a, &a.config, "oncall@example.com", "rotated").await;
    assert!(!restored.refused.is_empty() && restored.done.is_empty());
    assert!(
        a.cloud.policy("user/alice", USER_POLICY_NAME).is_some(),
        "the deny stays while the minted key is live"
    );
    // Deactivated: the restore goes ahead.
    a.cloud
        .add_user_key("backup-svc", MINTED, KeyStatus::Inactive);
    assert!(refusals(&a).await.is_empty());
    let restored = restore_alice(&a, &a.config, "oncall@example.com", "rotated").await;
    assert!(restored.failed.is_empty(), "{restored:?}");
    assert!(a.cloud.policy("user/alice", USER_POLICY_NAME).is_none());
}

#[tokio::test]
async fn every_kind_of_pivot_is_read_again_and_only_live_ones_refuse() {
    let a = contained().await;
    let at = Utc::now() - TimeDelta::minutes(10);
    {
        let mut s = a.cloud.state.lock().unwrap();
        // alice's own password, changed by the holder: its creation date is old, so only the
        // pivot tells.
        s.login_profiles
            .insert("alice".into(), Utc::now() - TimeDelta::days(300));
        s.other_credentials.insert(
            "builder".into(),
            vec![OtherCredential {
                kind: "service-specific credential",
                id: "ACCAEXAMPLEBUILDER1 (codecommit.amazonaws.com)".into(),
                active: true,
                created: Some(Utc::now() - TimeDelta::days(300)),
            }],
        );
        s.role_ids
            .insert("ops-admin".into(), "AROAOPSADMINEXAMPLE1".into());
        s.role_ids
            .insert("trusting".into(), "AROATRUSTINGEXAMPLE1".into());
    }
    let session = Pivot {
        access_key_id: Some("ASIAI44QH8DHBEXAMPLE".into()),
        role_session_name: Some("x".into()),
        ..pivot(
            PivotKind::RoleSession,
            "AssumeRole",
            Some("arn:aws:iam::123456789012:role/ops-admin"),
            at,
        )
    };
    let old_session = Pivot {
        access_key_id: Some("ASIAOLDSESSIONEXAMPL".into()),
        ..pivot(
            PivotKind::RoleSession,
            "AssumeRole",
            Some("arn:aws:iam::123456789012:role/ops-admin"),
            Utc::now() - TimeDelta::hours(13),
        )
    };
    let credential = Pivot {
        credential_id: Some("ACCAEXAMPLEBUILDER1".into()),
        ..pivot(
            PivotKind::ServiceCredential,
            "CreateServiceSpecificCredential",
            Some("builder"),
            at,
        )
    };
    let user_session = Pivot {
        access_key_id: Some("ASIAUSERSESSIONEXAM1".into()),
        ..pivot(PivotKind::UserSession, "GetSessionToken", None, at)
    };
    record_pivots(
        &a,
        &[
            pivot(
                PivotKind::LoginProfile,
                "UpdateLoginProfile",
                Some("alice"),
                at,
            ),
            session,
            old_session,
            credential,
            pivot(
                PivotKind::TrustPolicy,
                "UpdateAssumeRolePolicy",
                Some("trusting"),
                at,
            ),
            pivot(
                PivotKind::TrustPolicy,
                "UpdateAssumeRolePolicy",
                Some("deleted-role"),
                at,
            ),
            user_session,
        ],
    )
    .await;
    let refused = refusals(&a).await;
    let has = |what: &str| refused.iter().filter(|r| r.contains(what)).count();
    assert_eq!(has("console password"), 1, "{refused:?}");
    assert_eq!(has("ASIAI44QH8DHBEXAMPLE"), 1, "{refused:?}");
    assert_eq!(has("ACCAEXAMPLEBUILDER1"), 1, "{refused:?}");
    assert_eq!(has("role trusting"), 1, "{refused:?}");
    // Expired, gone, or covered by the user's revocation: nothing to say.
    assert_eq!(has("ASIAOLDSESSIONEXAMPL"), 0, "{refused:?}");
    assert_eq!(has("deleted-role"), 0, "{refused:?}");
    assert_eq!(has("ASIAUSERSESSIONEXAM1"), 0, "{refused:?}");
    assert_eq!(refused.len(), 4, "{refused:?}");
    // Closed by hand: the password deleted, the session denied, the credential deactivated,
    // the role deleted.
    {
        let mut s = a.cloud.state.lock().unwrap();
        s.login_profiles.remove("alice");
        s.other_credentials.get_mut("builder").unwrap()[0].active = false;
        s.role_ids.remove("trusting");
    }
    a.cloud.set_policy(
        "role/ops-admin",
        SESSION_POLICY_NAME,
        &killswitch::policy::deny_sessions(&["AROAOPSADMINEXAMPLE1:x".to_string()].into()),
    );
    assert!(refusals(&a).await.is_empty(), "{:?}", refusals(&a).await);
}

#[tokio::test]
async fn a_pivot_that_cannot_be_read_refuses_and_a_record_without_pivots_still_loads() {
    let a = contained().await;
    let session = Pivot {
        access_key_id: Some("ASIAI44QH8DHBEXAMPLE".into()),
        ..pivot(
            PivotKind::RoleSession,
            "AssumeRole",
            Some("arn:aws:iam::123456789012:role/ops-admin"),
            Utc::now() - TimeDelta::minutes(10),
        )
    };
    record_pivots(&a, &[session]).await;
    a.cloud.fail("iam:GetRole", "Throttling");
    let refused = refusals(&a).await;
    assert!(
        refused.len() == 1
            && refused[0].contains("ASIAI44QH8DHBEXAMPLE")
            && refused[0].contains("could not be checked"),
        "{refused:?}"
    );
    // A record written before pivots were kept (and one with a pivot this release cannot
    // read) loads, with what it can read.
    let id = format!("incident#{ACCOUNT}#{FIXTURE_KEY}");
    let stored = a.cloud.state.lock().unwrap().items[&id].clone();
    let mut record: serde_json::Value = serde_json::from_str(&stored).unwrap();
    record["pivots"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"kind": "a_kind_from_the_future"}));
    a.cloud
        .state
        .lock()
        .unwrap()
        .items
        .insert(id.clone(), record.to_string());
    let records = Records::new(&a.cloud, &a.config);
    let account = AccountId::parse(ACCOUNT).unwrap();
    let loaded = records.load(&account, &key()).await.unwrap();
    assert!(loaded.applied.is_some());
    assert_eq!(loaded.pivots.len(), 1);
    record.as_object_mut().unwrap().remove("pivots");
    a.cloud
        .state
        .lock()
        .unwrap()
        .items
        .insert(id, record.to_string());
    let loaded = records.load(&account, &key()).await.unwrap();
    assert!(loaded.applied.is_some() && loaded.pivots.is_empty());
}

/// The whole path, from CloudTrail to the restore: needs the follow-through to keep the
/// investigation's pivots in the record (`IncidentRecord::note_pivots` in
/// `playbook/follow.rs` and `playbook/sweep.rs`).
#[tokio::test]
async fn a_key_minted_for_a_created_user_found_by_the_investigation_blocks_the_restore() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("backup-svc", MINTED, KeyStatus::Active);
    let mut created = api_call("CreateUser", Utc::now() - TimeDelta::minutes(12), None);
    created.read_only = Some(false);
    created.request_parameters = Some(serde_json::json!({"userName": "backup-svc"}));
    let mut minted = api_call("CreateAccessKey", Utc::now() - TimeDelta::minutes(11), None);
    minted.read_only = Some(false);
    minted.request_parameters = Some(serde_json::json!({"userName": "backup-svc"}));
    minted.response_elements = Some(serde_json::json!({"accessKey": {
        "accessKeyId": MINTED, "userName": "backup-svc", "status": "Active"}}));
    cloud.add_events("us-east-1", vec![created, minted]);
    let a = lambda(cloud);
    run(&a, event("guardduty-iam-user-finding.json")).await;
    let refused = refusals(&a).await;
    assert!(
        refused
            .iter()
            .any(|r| r.contains(MINTED) && r.contains("backup-svc")),
        "the minted key is not re-checked: {refused:?}"
    );
}

// Point 15: `restore --session-name`, as `respond` spells it.

#[test]
fn restore_takes_session_name_like_respond() {
    use clap::Parser;
    for flag in ["--session", "--session-name"] {
        let cli = killswitch::cli::Cli::try_parse_from([
            "killswitch",
            "restore",
            "--access-key-id",
            FIXTURE_ROLE_KEY,
            "--role-name",
            "ci-deployer",
            flag,
            "AROACKCEVSQ6C3EXAMPLE:i-0abc123",
            "--reason",
            "fixed",
            "--requested-by",
            "oncall",
        ])
        .unwrap();
        match cli.command {
            Some(killswitch::cli::Command::Restore { session, .. }) => assert_eq!(
                session.as_deref(),
                Some("AROACKCEVSQ6C3EXAMPLE:i-0abc123"),
                "{flag}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

/// A user the holder created holds a key someone else made for it (another credential of the
/// holder's, say): still the holder's way back in.
#[tokio::test]
async fn a_user_the_holder_created_blocks_the_restore_whoever_made_its_key() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("bd3", MINTED, KeyStatus::Active);
    let mut created = api_call("CreateUser", Utc::now() - TimeDelta::minutes(12), None);
    created.read_only = Some(false);
    created.event_source = "iam.amazonaws.com".into();
    created.request_parameters = Some(serde_json::json!({"userName": "bd3"}));
    cloud.add_events("us-east-1", vec![created]);
    let a = lambda(cloud);
    let response = run(&a, event("guardduty-iam-user-finding.json")).await;
    let refused = refusals(&a).await;
    assert!(!response.reports[0].open.is_empty());
    assert!(
        refused
            .iter()
            .any(|r| r.contains(MINTED) && r.contains("user bd3, which the key's holder created")),
        "{refused:?}"
    );
}
