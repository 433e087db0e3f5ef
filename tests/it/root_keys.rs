//! Root access keys: notify-only with the manual steps unless `KILLSWITCH_ROOT_KEYS=delete`, and
//! then deleted through a root session only on a GuardDuty finding read back at GuardDuty, only
//! the finding's key, with the notice naming what was removed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use killswitch::config::{Config, Quarantine, RootKeys};
use killswitch::error::Error;
use killswitch::incident::{AccessKeyId, AccountId, Incident, Received, SourceCheck, Trigger};
use killswitch::playbook::guard::root::delete_root_key;
use killswitch::playbook::{Context, respond};
use killswitch::ports::{
    DELETE_ROOT_CREDENTIALS, KeyInfo, KeyStatus, ROOT_ACCESS_PERMISSIONS, RootAccess,
    RootCredentials,
};
use killswitch::report::{Report, Status};
use killswitch::trigger::parse;

use crate::support::{FakeCloud, app, config, deliver, deliver_unraised, event, responder};

const ROOT_KEY: &str = "AKIAI44QH8DHBEXAMPLE";
/// A threat finding on the root key: what `delete` acts on.
const THREAT: &str = "guardduty-root-key-malicious-ip-finding.json";
const OTHER_ROOT_KEY: &str = "AKIAIOSFODNN7OTHERKY";

/// Organizations' centralized root access, recorded: the root user's keys and every call.
#[derive(Clone, Default)]
struct RootFake {
    keys: Arc<Mutex<Vec<&'static str>>>,
    calls: Arc<Mutex<Vec<String>>>,
    refuse_root_sessions: bool,
}

impl RootAccess for RootFake {
    type Session = Self;
    async fn assume_root(
        &self,
        role_arn: &str,
        _external_id: &str,
        account: &AccountId,
    ) -> Result<Self, Error> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("AssumeRoot {role_arn} {account}"));
        if self.refuse_root_sessions {
            return Err(Error::Aws {
                op: "sts:AssumeRoot",
                code: Some("AccessDenied".into()),
                source: "centralized root access is not enabled".into(),
            });
        }
        Ok(self.clone())
    }
}

impl RootCredentials for RootFake {
    async fn root_keys(&self) -> Result<Vec<KeyInfo>, Error> {
        self.calls.lock().unwrap().push("ListAccessKeys".into());
        Ok(self
            .keys
            .lock()
            .unwrap()
            .iter()
            .map(|k| KeyInfo {
                id: AccessKeyId::parse(k).unwrap(),
                status: KeyStatus::Active,
                created: None,
            })
            .collect())
    }

    async fn delete_root_key(&self, key: &AccessKeyId) -> Result<bool, Error> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("DeleteAccessKey {key}"));
        let mut keys = self.keys.lock().unwrap();
        let before = keys.len();
        keys.retain(|k| *k != key.as_str());
        Ok(keys.len() < before)
    }
}

fn root_fake(keys: &[&'static str]) -> RootFake {
    RootFake {
        keys: Arc::new(Mutex::new(keys.to_vec())),
        ..Default::default()
    }
}

fn root_incident(source: Option<SourceCheck>) -> Incident {
    let mut incident = match parse(event(THREAT)).unwrap() {
        Received::Incidents(mut list) => list.remove(0),
        other => panic!("{other:?}"),
    };
    incident.source = source;
    incident
}

fn verified() -> Option<SourceCheck> {
    Some(SourceCheck::Verified("read back at GuardDuty".into()))
}

fn deleting() -> Config {
    let mut c = config();
    c.root_keys = RootKeys::Delete;
    c.quarantine = Some(Quarantine {
        role_arn: "arn:aws:iam::111122223333:role/KillSwitchQuarantine".into(),
        external_id: "ext".into(),
    });
    c
}

async fn run(cloud: &RootFake, incident: &Incident, cfg: &Config, dry_run: bool) -> Report {
    let me = responder();
    let pacer = killswitch::pacing::Pacer::new();
    let ctx = Context {
        config: cfg,
        responder: &me,
        now: Utc::now(),
        investigation_deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        force_dry_run: dry_run,
        hand_off: false,
        operator: None,
        pacer: &pacer,
    };
    let mut report = Report::new(incident, dry_run, ctx.now);
    delete_root_key(cloud, incident, &ctx, &mut report).await;
    report
}

fn steps_text(report: &Report) -> String {
    serde_json::to_string(&report.steps).unwrap()
}

#[tokio::test]
async fn a_root_key_is_notify_only_by_default_with_the_manual_steps() {
    let cloud = root_fake(&[ROOT_KEY]);
    let report = run(&cloud, &root_incident(verified()), &config(), false).await;

    assert_eq!(report.status, Status::Refused);
    assert!(cloud.calls.lock().unwrap().is_empty(), "no call by default");
    for needed in [
        "aws sts assume-root",
        "--target-principal 123456789012",
        DELETE_ROOT_CREDENTIALS,
        "aws iam delete-access-key --access-key-id AKIAI44QH8DHBEXAMPLE",
        "Security credentials",
    ] {
        assert!(steps_text(&report).contains(needed), "{needed}: {report:?}");
    }
}

#[tokio::test]
async fn with_delete_a_verified_finding_deletes_only_its_root_key_and_says_which_and_when() {
    let cloud = root_fake(&[ROOT_KEY, OTHER_ROOT_KEY]);
    let report = run(&cloud, &root_incident(verified()), &deleting(), false).await;

    assert_eq!(report.status, Status::Contained, "{report:?}");
    assert_eq!(*cloud.keys.lock().unwrap(), vec![OTHER_ROOT_KEY]);
    assert_eq!(
        *cloud.calls.lock().unwrap(),
        vec![
            "AssumeRoot arn:aws:iam::111122223333:role/KillSwitchQuarantine 123456789012"
                .to_string(),
            "ListAccessKeys".into(),
            format!("DeleteAccessKey {ROOT_KEY}"),
        ]
    );
    // The time IAM answered the delete, in the step and in the notice's words.
    let step = report.steps.last().unwrap();
    assert!(step.at >= report.started_at, "{step:?}");
    assert!(
        step.detail.contains(&format!(
            "DELETED root access key {ROOT_KEY} of account 123456789012 at {}",
            step.at.to_rfc3339()
        )),
        "{step:?}"
    );
    assert!(report.summary.contains("DELETED"), "{}", report.summary);
}

#[tokio::test]
async fn only_a_finding_read_back_at_guardduty_deletes_a_root_key() {
    for source in [
        None,
        Some(SourceCheck::Unchecked("GetFindings failed".into())),
    ] {
        let cloud = root_fake(&[ROOT_KEY]);
        let report = run(&cloud, &root_incident(source.clone()), &deleting(), false).await;

        assert_eq!(report.status, Status::Refused, "{source:?}");
        assert!(cloud.calls.lock().unwrap().is_empty(), "{source:?}");
        assert_eq!(*cloud.keys.lock().unwrap(), vec![ROOT_KEY]);
    }
}

#[tokio::test]
async fn a_dry_run_deletes_no_root_key() {
    let cloud = root_fake(&[ROOT_KEY]);
    let report = run(&cloud, &root_incident(verified()), &deleting(), true).await;

    assert_eq!(report.status, Status::DryRun);
    assert!(cloud.calls.lock().unwrap().is_empty());
    assert!(
        report.summary.contains("would DELETE"),
        "{}",
        report.summary
    );
}

#[tokio::test]
async fn without_a_root_session_it_fails_loudly_with_the_manual_steps() {
    let cloud = RootFake {
        refuse_root_sessions: true,
        ..root_fake(&[ROOT_KEY])
    };
    let report = run(&cloud, &root_incident(verified()), &deleting(), false).await;

    assert_eq!(report.status, Status::Failed);
    assert!(
        report.summary.contains("aws sts assume-root"),
        "{}",
        report.summary
    );
    assert_eq!(*cloud.keys.lock().unwrap(), vec![ROOT_KEY]);
}

#[tokio::test]
async fn a_key_the_root_user_does_not_hold_is_not_deleted() {
    let cloud = root_fake(&[OTHER_ROOT_KEY]);
    let report = run(&cloud, &root_incident(verified()), &deleting(), false).await;

    assert_eq!(report.status, Status::KeyNotFound);
    assert_eq!(*cloud.keys.lock().unwrap(), vec![OTHER_ROOT_KEY]);
    assert!(
        !cloud
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("DeleteAccessKey"))
    );
}

#[tokio::test]
async fn the_guard_refuses_a_root_key_with_the_manual_steps() {
    let cloud = FakeCloud::default();
    let cfg = config();
    let me = responder();
    let pacer = killswitch::pacing::Pacer::new();
    let ctx = Context {
        config: &cfg,
        responder: &me,
        now: Utc::now(),
        investigation_deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        force_dry_run: false,
        hand_off: false,
        operator: None,
        pacer: &pacer,
    };
    let report = respond(&cloud, &root_incident(None), &ctx).await;

    assert_eq!(report.status, Status::Refused);
    assert!(
        steps_text(&report).contains("aws sts assume-root"),
        "{report:?}"
    );
}

#[test]
fn root_keys_are_notify_only_unless_set_to_delete() {
    let topic = |k: &str| {
        (k == "KILLSWITCH_TOPIC_ARN").then(|| "arn:aws:sns:us-east-1:123456789012:t".to_string())
    };
    assert_eq!(
        Config::from_lookup(topic).unwrap().root_keys,
        RootKeys::Notify
    );
    let with = |v: &'static str| {
        Config::from_lookup(move |k| {
            if k == "KILLSWITCH_ROOT_KEYS" {
                Some(v.to_string())
            } else {
                topic(k)
            }
        })
    };
    assert_eq!(with("delete").unwrap().root_keys, RootKeys::Delete);
    assert!(matches!(
        with("deactivate"),
        Err(Error::Config {
            name: "KILLSWITCH_ROOT_KEYS",
            ..
        })
    ));
}

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

#[test]
fn the_root_access_role_grants_assume_root_for_the_delete_task_policy_only() {
    let text = repo_file("root-access-role.yaml");
    let actions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Action:") || l.starts_with("- sts:") || l.starts_with("- iam:"))
        .collect();
    assert_eq!(actions, [format!("Action: {}", ROOT_ACCESS_PERMISSIONS[0])]);
    assert_eq!(text.matches("Effect: Allow").count(), 1);
    assert!(!text.contains("Effect: Deny"));
    assert!(
        text.contains(&format!("sts:TaskPolicyArn: \"{DELETE_ROOT_CREDENTIALS}\"")),
        "the grant is scoped to the delete task policy"
    );
}

#[test]
fn the_template_defaults_root_keys_to_notify() {
    let text = repo_file("template.yaml");
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "  RootKeys:")
        .take(5)
        .collect();
    assert_eq!(block.get(2).map(|l| l.trim()), Some("Default: notify"));
    assert_eq!(
        block.get(3).map(|l| l.trim()),
        Some("AllowedValues: [notify, delete]")
    );
}

const MEMBER: &str = "444455556666";

/// The root finding of a member account, delivered to an app that deletes root keys and may
/// act in that account; the member's root user holds the finding's key and one more.
fn member_root_delivery() -> (killswitch::handler::App<FakeCloud>, serde_json::Value) {
    let cloud = FakeCloud::default();
    cloud
        .state
        .lock()
        .unwrap()
        .root_keys
        .insert(MEMBER.into(), vec![ROOT_KEY.into(), OTHER_ROOT_KEY.into()]);
    // Entered only by the common path a forged payload takes.
    cloud.add_member(MEMBER, "ext");
    let mut a = app(cloud);
    a.config = deleting();
    a.config.members = Some(killswitch::config::Members {
        role_name: "KillSwitchMember".into(),
        external_id: "ext".into(),
        accounts: vec![AccountId::parse(MEMBER).unwrap()],
    });
    let mut payload = event(THREAT);
    payload["account"] = serde_json::json!(MEMBER);
    payload["detail"]["accountId"] = serde_json::json!(MEMBER);
    payload["detail"]["resource"]["accessKeyDetails"]["principalId"] = serde_json::json!(MEMBER);
    (a, payload)
}

fn calls(a: &killswitch::handler::App<FakeCloud>) -> Vec<(String, String)> {
    a.cloud.state.lock().unwrap().calls.clone()
}

#[tokio::test]
async fn delivered_a_raised_member_root_finding_deletes_that_key_through_a_root_session_and_pages_it()
 {
    let (a, payload) = member_root_delivery();
    let response = deliver(&a, payload.clone()).await;

    let report = &response.reports[0];
    assert_eq!(report.status, Status::Contained, "{report:?}");
    assert!(
        report
            .summary
            .contains("DELETED root access key AKIAI44QH8DHBEXAMPLE of account 444455556666"),
        "{report:?}"
    );
    let made = calls(&a);
    assert!(
        made.contains(&("sts:AssumeRoot".into(), MEMBER.into())),
        "{made:?}"
    );
    assert!(
        made.contains(&("root:iam:DeleteAccessKey".into(), ROOT_KEY.into())),
        "{made:?}"
    );
    for write in crate::support::WRITES {
        assert!(
            !made.iter().any(|(c, _)| c == write),
            "{write} on a root key: {made:?}"
        );
    }
    assert!(
        report.undo.is_empty(),
        "a deleted key has no undo: {report:?}"
    );
    assert!(
        !report
            .next_steps
            .iter()
            .any(|s| s.contains("update-access-key")),
        "{report:?}"
    );
    let left = a.cloud.state.lock().unwrap().root_keys[MEMBER].clone();
    assert_eq!(
        left,
        vec![OTHER_ROOT_KEY.to_owned()],
        "only the finding's key goes"
    );
    let published = a.cloud.state.lock().unwrap().published.clone();
    assert!(
        published
            .iter()
            .any(|(subject, body)| subject.contains("CONTAINED")
                && body.contains("DELETED root access key")),
        "{published:?}"
    );

    // GuardDuty re-emits the finding: the key is gone, nothing more is deleted.
    let again = deliver(&a, payload).await;
    assert_eq!(
        again.reports[0].status,
        Status::KeyNotFound,
        "{:?}",
        again.reports[0]
    );
    let deletes = calls(&a)
        .iter()
        .filter(|(c, _)| c == "root:iam:DeleteAccessKey")
        .count();
    assert_eq!(deletes, 1);
}

#[tokio::test]
async fn a_root_finding_guardduty_never_raised_deletes_nothing() {
    let (a, payload) = member_root_delivery();
    let response = deliver_unraised(&a, payload).await;

    assert_eq!(
        response.reports[0].status,
        Status::Rejected,
        "{:?}",
        response.reports[0]
    );
    assert!(
        !calls(&a)
            .iter()
            .any(|(c, _)| c.starts_with("sts:AssumeRoot") || c.starts_with("root:"))
    );
    assert_eq!(a.cloud.state.lock().unwrap().root_keys[MEMBER].len(), 2);
}

#[tokio::test]
async fn delivered_in_notify_mode_a_root_finding_starts_no_root_session() {
    let (mut a, payload) = member_root_delivery();
    a.config.root_keys = RootKeys::Notify;
    let response = deliver(&a, payload).await;

    assert_eq!(
        response.reports[0].status,
        Status::Refused,
        "{:?}",
        response.reports[0]
    );
    assert!(steps_text(&response.reports[0]).contains("aws sts assume-root"));
    assert!(!calls(&a).iter().any(|(c, _)| c == "sts:AssumeRoot"));
}

#[tokio::test]
async fn without_a_root_session_the_page_gives_the_root_steps_not_an_iam_users() {
    let (a, payload) = member_root_delivery();
    a.cloud.fail("sts:AssumeRoot", "AccessDenied");
    let response = deliver(&a, payload).await;

    let report = &response.reports[0];
    assert_eq!(report.status, Status::Failed, "{report:?}");
    let next = report.next_steps.join(" ");
    assert!(
        next.contains("aws sts assume-root") && next.contains("Security credentials"),
        "{next}"
    );
    assert!(!next.contains("update-access-key"), "{next}");
    assert_eq!(a.cloud.state.lock().unwrap().root_keys[MEMBER].len(), 2);
}

#[tokio::test]
async fn with_delete_root_usage_a_custom_finding_or_a_session_key_deletes_nothing() {
    let cloud = root_fake(&[ROOT_KEY]);
    let cfg = deleting();

    // RootCredentialUsage says the root user was used, as its owner does too.
    let mut usage = match parse(event("guardduty-root-finding.json")).unwrap() {
        Received::Incidents(mut list) => list.remove(0),
        other => panic!("{other:?}"),
    };
    usage.source = verified();
    let r = run(&cloud, &usage, &cfg, false).await;
    assert_eq!(r.status, Status::Refused, "{r:?}");
    assert!(
        r.summary.contains("not that its key is compromised"),
        "{}",
        r.summary
    );

    // A finding an insider can raise on purpose (their threat list or detection rule).
    let mut custom = root_incident(verified());
    if let Trigger::GuardDuty { custom: c, .. } = &mut custom.trigger {
        *c = Some("raised from a customer threat list".into());
    }
    let r = run(&cloud, &custom, &cfg, false).await;
    assert_eq!(r.status, Status::Refused, "{r:?}");
    assert!(r.summary.contains("customer threat list"), "{}", r.summary);

    // A root session's temporary key is in no key list: refused with what to do instead.
    let mut session = root_incident(verified());
    session.key = AccessKeyId::parse("ASIAI44QH8DHBEXAMPLE").unwrap();
    let r = run(&cloud, &session, &cfg, false).await;
    assert_eq!(r.status, Status::Refused, "{r:?}");
    assert!(
        r.summary.contains("Reset the root password and MFA"),
        "{}",
        r.summary
    );

    assert!(
        cloud.calls.lock().unwrap().is_empty(),
        "no root session for any of them"
    );
    assert_eq!(*cloud.keys.lock().unwrap(), vec![ROOT_KEY]);
}
