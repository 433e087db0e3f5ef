//! Pivot events (issue 27 point 4): CloudTrail events of IAM and STS calls delivered by
//! EventBridge. A contained holder's pivot is contained from one event, an undone deny is
//! re-applied, and nothing in an event moves anyone who is not under containment. The rules in
//! template.yaml are held to the parser's list and to the fixtures in events/.

use crate::template_guard::yaml;

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use killswitch::error::Error;
use killswitch::handler::App;
use killswitch::playbook::tamper::{Answer, Outcome, on_payload};
use killswitch::policy::USER_POLICY_NAME;
use killswitch::ports::KeyStatus;
use killswitch::report::Status;
use killswitch::trigger::{IAM_EVENT_NAMES, STS_EVENT_NAMES, api_call};
use serde_json::{Value, json};

use crate::support::*;

const MINTED: &str = "AKIAI44QH8DHBEXAMPLE";
const ADMIN_KEY: &str = "AKIAADMINADMINEXAMPL";

/// The deployed function, alice's leaked key contained from a GuardDuty finding, recorded.
async fn contained_alice() -> App<FakeCloud> {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("bob", "AKIABOBBOBBOBBOBBOB1", KeyStatus::Active);
    cloud.add_user_key("admin", ADMIN_KEY, KeyStatus::Active);
    let mut a = lambda(cloud);
    a.config.follow_pivots = true;
    let r = deliver(&a, event("guardduty-iam-user-finding.json")).await;
    assert_eq!(r.reports[0].status, Status::Contained, "{:?}", r.reports[0]);
    a
}

/// A fixture of events/ as the call it names happened now.
fn now_event(name: &str, at: DateTime<Utc>) -> Value {
    let mut e = event(name);
    e["detail"]["eventTime"] = json!(at.to_rfc3339());
    e["time"] = json!(at.to_rfc3339());
    e
}

async fn answer(a: &App<FakeCloud>, payload: &Value) -> Result<Answer, Error> {
    let deadline = SystemTime::now() + Duration::from_secs(120);
    let got = on_payload(&a.cloud, &a.config, a.responder.as_ref(), payload, deadline).await?;
    Ok(got.expect("a CloudTrail event"))
}

/// The holder mints a key on another user, `at`.
fn mint_on_bob(a: &App<FakeCloud>, at: DateTime<Utc>) {
    a.cloud.add_user_key("bob", MINTED, KeyStatus::Active);
    let mut s = a.cloud.state.lock().unwrap();
    s.key_created.insert(("bob".into(), MINTED.into()), at);
}

#[tokio::test]
async fn a_key_the_contained_holder_mints_on_another_user_is_contained_from_one_event() {
    let a = contained_alice().await;
    let at = Utc::now();
    mint_on_bob(&a, at);
    let got = answer(&a, &now_event("cloudtrail-create-access-key.json", at))
        .await
        .unwrap();
    assert_eq!(got.incident_key.as_deref(), Some(FIXTURE_KEY), "{got:?}");
    assert_eq!(got.outcome, Outcome::Holds, "{got:?}");
    assert_eq!(a.cloud.key_state("bob", MINTED), Some(KeyStatus::Inactive));
    assert!(a.cloud.policy("user/bob", USER_POLICY_NAME).is_some());
    let pivot = &got.pivots[0];
    assert_eq!(pivot.pivot.access_key_id.as_deref(), Some(MINTED));
    assert_eq!(
        pivot.containment.as_ref().map(|c| c.status),
        Some(Status::Contained)
    );
    // bob's own key is bob's: only the minted one is deactivated.
    assert_eq!(
        a.cloud.key_state("bob", "AKIABOBBOBBOBBOBBOB1"),
        Some(KeyStatus::Active)
    );
    assert!(
        a.cloud
            .published()
            .iter()
            .any(|(s, _)| s.contains("pivot contained") && s.contains("CreateAccessKey")),
        "{:?}",
        a.cloud.published()
    );
}

#[tokio::test]
async fn a_deleted_deny_is_reapplied_from_the_holders_delete_user_policy_event() {
    let a = contained_alice().await;
    // The holder races the propagation window: the deny is gone, its key active again.
    {
        let mut s = a.cloud.state.lock().unwrap();
        s.policies
            .remove(&("user/alice".to_owned(), USER_POLICY_NAME.to_owned()));
        s.keys
            .insert(("alice".into(), FIXTURE_KEY.into()), KeyStatus::Active);
    }
    let got = answer(
        &a,
        &now_event("cloudtrail-delete-user-policy.json", Utc::now()),
    )
    .await
    .unwrap();
    assert_eq!(got.outcome, Outcome::Reapplied { holds: true }, "{got:?}");
    assert!(a.cloud.policy("user/alice", USER_POLICY_NAME).is_some());
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    assert!(
        a.cloud
            .published()
            .iter()
            .any(|(s, _)| s.contains("CONTESTED, re-applied")),
        "{:?}",
        a.cloud.published()
    );
    // The next revert is re-applied too, without a second page for the same fight.
    let pages = a.cloud.published().len();
    a.cloud
        .state
        .lock()
        .unwrap()
        .policies
        .remove(&("user/alice".to_owned(), USER_POLICY_NAME.to_owned()));
    let mut again = now_event("cloudtrail-delete-user-policy.json", Utc::now());
    again["detail"]["eventID"] = json!("9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a");
    let got = answer(&a, &again).await.unwrap();
    assert_eq!(got.outcome, Outcome::Reapplied { holds: true });
    assert!(a.cloud.policy("user/alice", USER_POLICY_NAME).is_some());
    assert_eq!(a.cloud.published().len(), pages);
}

#[tokio::test]
async fn a_forged_event_naming_an_uncontained_admin_changes_nothing() {
    let a = contained_alice().await;
    let at = Utc::now();
    mint_on_bob(&a, at);
    let before = a.cloud.writes().len();
    let pages = a.cloud.published().len();
    for name in [
        "cloudtrail-create-access-key.json",
        "cloudtrail-delete-user-policy.json",
        "cloudtrail-assume-role.json",
    ] {
        let mut forged = now_event(name, at);
        forged["detail"]["userIdentity"] = json!({
            "type": "IAMUser",
            "principalId": "AIDAADMINADMINEXAMPLE",
            "arn": "arn:aws:iam::123456789012:user/admin",
            "accountId": ACCOUNT,
            "accessKeyId": ADMIN_KEY,
            "userName": "admin"
        });
        let got = answer(&a, &forged).await.unwrap();
        assert!(
            matches!(got.outcome, Outcome::NotUnderContainment { .. }),
            "{name}: {got:?}"
        );
        assert!(got.pivots.is_empty(), "{name}: {got:?}");
    }
    assert_eq!(a.cloud.writes().len(), before, "{:?}", a.cloud.writes());
    assert_eq!(a.cloud.published().len(), pages);
    assert_eq!(
        a.cloud.key_state("admin", ADMIN_KEY),
        Some(KeyStatus::Active)
    );
    assert_eq!(a.cloud.key_state("bob", MINTED), Some(KeyStatus::Active));
    assert!(a.cloud.policy("user/admin", USER_POLICY_NAME).is_none());
}

#[tokio::test]
async fn a_key_the_event_claims_but_iam_does_not_date_inside_the_incident_is_not_contained() {
    let a = contained_alice().await;
    // The admin's own key, made long before the incident, named as if the holder minted it:
    // the contained holder's containment is read back, the admin is left alone.
    let mut claim = now_event("cloudtrail-create-access-key.json", Utc::now());
    claim["detail"]["responseElements"]["accessKey"]["userName"] = json!("admin");
    claim["detail"]["responseElements"]["accessKey"]["accessKeyId"] = json!(ADMIN_KEY);
    claim["detail"]["requestParameters"]["userName"] = json!("admin");
    let got = answer(&a, &claim).await.unwrap();
    assert_eq!(got.outcome, Outcome::Holds, "{got:?}");
    assert!(got.pivots.is_empty(), "{got:?}");
    assert!(
        got.unconfirmed
            .as_deref()
            .is_some_and(|u| u.contains("not created inside the incident")),
        "{got:?}"
    );
    assert_eq!(
        a.cloud.key_state("admin", ADMIN_KEY),
        Some(KeyStatus::Active)
    );
    assert!(a.cloud.policy("user/admin", USER_POLICY_NAME).is_none());
}

#[tokio::test]
async fn a_password_the_holder_sets_on_another_user_is_removed() {
    let a = contained_alice().await;
    let at = Utc::now();
    a.cloud
        .state
        .lock()
        .unwrap()
        .login_profiles
        .insert("carol".into(), at);
    let got = answer(&a, &now_event("cloudtrail-create-login-profile.json", at))
        .await
        .unwrap();
    assert_eq!(
        got.pivots[0].containment.as_ref().map(|c| c.status),
        Some(Status::Contained),
        "{got:?}"
    );
    assert!(
        !a.cloud
            .state
            .lock()
            .unwrap()
            .login_profiles
            .contains_key("carol")
    );
}

/// The fixture's role and the session its AssumeRole event names.
const ROLE_ID: &str = "AROAQNKBOK6UEXAMPLE";
const SESSION: &str = "AROAQNKBOK6UEXAMPLE:botocore-session-1763867165";

fn role_in_iam(a: &App<FakeCloud>, id: &str) {
    let mut s = a.cloud.state.lock().unwrap();
    s.role_ids.insert("ci-deployer".into(), id.into());
}

#[tokio::test]
async fn a_session_the_contained_holder_assumes_is_denied_exactly_when_iam_confirms_the_role_id() {
    let a = contained_alice().await;
    role_in_iam(&a, ROLE_ID);
    let got = answer(&a, &now_event("cloudtrail-assume-role.json", Utc::now()))
        .await
        .unwrap();
    assert_eq!(
        got.pivots[0].containment.as_ref().map(|c| c.status),
        Some(Status::Contained),
        "{got:?}"
    );
    // One session name of one role: never the role-wide cutoff, which would cut every session.
    let deny = a
        .cloud
        .policy("role/ci-deployer", "KillSwitchDenySessions")
        .expect("the session deny");
    assert!(deny.contains(SESSION), "{deny}");
    assert!(!deny.contains("aws:TokenIssueTime"), "{deny}");
    let published = a.cloud.published();
    let (_, body) = published
        .iter()
        .find(|(s, _)| s.contains("pivot contained") && s.contains("AssumeRole"))
        .unwrap_or_else(|| panic!("{published:?}"));
    assert!(body.contains("on the CloudTrail event's word"), "{body}");
    assert!(
        body.contains(&format!(
            "killswitch restore --role-name ci-deployer --session '{SESSION}'"
        )),
        "{body}"
    );
}

#[tokio::test]
async fn a_session_whose_role_id_iam_does_not_confirm_is_not_denied() {
    let a = contained_alice().await;
    // IAM's role of that name has another ID (recreated, or a made-up event): nothing denied.
    role_in_iam(&a, "AROAOTHEROTHEROTHER1");
    let got = answer(&a, &now_event("cloudtrail-assume-role.json", Utc::now()))
        .await
        .unwrap();
    assert!(got.pivots.is_empty(), "{got:?}");
    assert!(
        got.unconfirmed
            .as_deref()
            .is_some_and(|u| u.contains("AROAOTHEROTHEROTHER1")),
        "{got:?}"
    );
    assert!(
        a.cloud
            .policy("role/ci-deployer", "KillSwitchDenySessions")
            .is_none()
    );
    // Nor an event whose assumedRoleId names another session than the request did.
    role_in_iam(&a, ROLE_ID);
    let mut e = now_event("cloudtrail-assume-role.json", Utc::now());
    e["detail"]["responseElements"]["assumedRoleUser"]["assumedRoleId"] =
        json!(format!("{ROLE_ID}:someone-else"));
    let got = answer(&a, &e).await.unwrap();
    assert!(got.pivots.is_empty(), "{got:?}");
    assert!(
        a.cloud
            .policy("role/ci-deployer", "KillSwitchDenySessions")
            .is_none()
    );
}

#[tokio::test]
async fn a_session_assumed_by_a_key_not_under_containment_denies_nothing() {
    let a = contained_alice().await;
    role_in_iam(&a, ROLE_ID);
    let mut e = now_event("cloudtrail-assume-role.json", Utc::now());
    e["detail"]["userIdentity"]["accessKeyId"] = json!(ADMIN_KEY);
    e["detail"]["userIdentity"]["userName"] = json!("admin");
    let writes_before = a.cloud.writes().len();
    let got = answer(&a, &e).await.unwrap();
    assert!(
        matches!(got.outcome, Outcome::NotUnderContainment { .. }),
        "{got:?}"
    );
    assert_eq!(
        a.cloud.writes().len(),
        writes_before,
        "{:?}",
        a.cloud.writes()
    );
    assert!(
        a.cloud
            .policy("role/ci-deployer", "KillSwitchDenySessions")
            .is_none()
    );
}

#[tokio::test]
async fn without_containment_or_a_table_an_event_reads_nothing_further() {
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    let a = lambda(cloud);
    let got = answer(
        &a,
        &now_event("cloudtrail-delete-user-policy.json", Utc::now()),
    )
    .await
    .unwrap();
    assert!(matches!(got.outcome, Outcome::NotUnderContainment { .. }));
    assert!(a.cloud.writes().is_empty(), "{:?}", a.cloud.writes());
    // The manual function never answers them.
    let mut manual = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
    manual.config.accepts = killswitch::config::accepts::Accepts::Manual;
    assert!(matches!(
        answer(&manual, &event("cloudtrail-delete-user-policy.json")).await,
        Err(Error::BadEvent(_))
    ));
}

#[test]
fn refused_calls_and_malformed_events_are_refused_by_the_parser() {
    let refused = api_call(&event("cloudtrail-denied-delete-user-policy.json"));
    assert!(
        matches!(&refused, Err(Error::BadEvent(m)) if m.contains("errorCode")),
        "{refused:?}"
    );
    let mut no_key = event("cloudtrail-create-access-key.json");
    no_key["detail"]["responseElements"]["accessKey"]
        .as_object_mut()
        .unwrap()
        .remove("accessKeyId");
    let e = api_call(&no_key);
    assert!(
        matches!(&e, Err(Error::BadEvent(m)) if m.contains("responseElements.accessKey.accessKeyId")),
        "{e:?}"
    );
    let mut no_signer = event("cloudtrail-delete-user-policy.json");
    no_signer["detail"]["userIdentity"]
        .as_object_mut()
        .unwrap()
        .remove("accessKeyId");
    let e = api_call(&no_signer);
    assert!(
        matches!(&e, Err(Error::BadEvent(m)) if m.contains("userIdentity.accessKeyId")),
        "{e:?}"
    );
    let mut other = event("cloudtrail-delete-user-policy.json");
    other["detail"]["eventName"] = json!("ListUsers");
    assert!(matches!(api_call(&other), Err(Error::BadEvent(_))));
    let mut wrong_source = event("cloudtrail-assume-role.json");
    wrong_source["source"] = json!("aws.iam");
    assert!(matches!(api_call(&wrong_source), Err(Error::BadEvent(_))));
    // Not a CloudTrail event: not this parser's.
    assert!(
        api_call(&event("guardduty-iam-user-finding.json"))
            .unwrap()
            .is_none()
    );
    // The incident parser never takes one for an incident.
    assert!(matches!(
        killswitch::trigger::parse(event("cloudtrail-create-access-key.json")),
        Err(Error::BadEvent(_))
    ));
}

/// The CloudTrail fixtures of events/.
fn cloudtrail_fixtures() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("cloudtrail-") && n.ends_with(".json"))
        .map(|n| {
            let v = event(&n);
            (n, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Whether an EventBridge pattern matches an event: exact values, `exists`, `prefix`, nested
/// objects (what the pivot rules use; anything else fails the test rather than guess).
fn pattern_matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        panic!("pattern {pattern} is not an object");
    };
    fields.iter().all(|(field, want)| {
        let got = event.get(field);
        match want {
            Value::Object(_) => got.is_some_and(|g| pattern_matches(want, g)),
            Value::Array(matchers) => matchers.iter().any(|m| match m {
                // The template's YAML reader keeps scalars as text.
                Value::Object(o) if o.contains_key("exists") => {
                    let exists = got.is_some_and(|g| !g.is_null());
                    o["exists"] == json!(exists) || o["exists"] == json!(exists.to_string())
                }
                Value::Object(o) if o.contains_key("prefix") => got
                    .and_then(Value::as_str)
                    .zip(o["prefix"].as_str())
                    .is_some_and(|(g, p)| g.starts_with(p)),
                Value::Object(o) => panic!("matcher {o:?} not understood"),
                exact => got == Some(exact),
            }),
            other => panic!("pattern field {field}: {other}"),
        }
    })
}

fn pivot_rules() -> Vec<(String, Value)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let t = yaml::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| name.starts_with("Pivot") && name.ends_with("Rule"))
        .map(|(n, r)| (n.clone(), r.clone()))
        .collect()
}

#[test]
fn the_pivot_rules_match_the_fixtures_and_nothing_refused() {
    let rules = pivot_rules();
    assert_eq!(rules.len(), 2, "{rules:?}");
    let names = |rule: &Value| -> Vec<String> {
        let mut n: Vec<String> = rule["Properties"]["EventPattern"]["detail"]["eventName"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    for (name, rule) in &rules {
        let p = &rule["Properties"];
        // The trigger function, never the manual one; each rule its own invoke permission.
        assert_eq!(
            p["Targets"][0]["Arn"],
            json!({"Fn::GetAtt": ["KillSwitchFunction", "Arn"]}),
            "{name}"
        );
        assert!(
            pivot_permission_exists(name),
            "{name}: no AWS::Lambda::Permission for it"
        );
        let want: Vec<&str> = if p["EventPattern"]["source"] == json!(["aws.sts"]) {
            // AssumeRole is a read-only event: only this state delivers it.
            assert_eq!(
                p["State"], "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
                "{name}"
            );
            STS_EVENT_NAMES.to_vec()
        } else {
            IAM_EVENT_NAMES.to_vec()
        };
        assert_eq!(
            names(rule),
            want,
            "{name}: the parser's list and the rule differ"
        );
    }
    let fixtures = cloudtrail_fixtures();
    assert!(fixtures.len() >= 5);
    for (file, e) in &fixtures {
        let matched = rules
            .iter()
            .filter(|(_, r)| pattern_matches(&r["Properties"]["EventPattern"], e))
            .count();
        let refused = e["detail"].get("errorCode").is_some();
        assert_eq!(matched, usize::from(!refused), "{file}");
        assert_eq!(api_call(e).is_ok(), !refused, "{file}");
    }
    // Any accepted fixture with an errorCode added, or without a signing key, matches no rule.
    for (file, e) in fixtures
        .iter()
        .filter(|(_, e)| e["detail"].get("errorCode").is_none())
    {
        let mut denied = e.clone();
        denied["detail"]["errorCode"] = json!("AccessDenied");
        let mut unsigned = e.clone();
        unsigned["detail"]["userIdentity"]
            .as_object_mut()
            .unwrap()
            .remove("accessKeyId");
        for variant in [&denied, &unsigned] {
            assert!(
                !rules
                    .iter()
                    .any(|(_, r)| pattern_matches(&r["Properties"]["EventPattern"], variant)),
                "{file}"
            );
        }
    }
}

fn pivot_permission_exists(rule: &str) -> bool {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let t = yaml::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    t["Resources"].as_object().unwrap().values().any(|r| {
        r["Type"] == "AWS::Lambda::Permission"
            && r["Properties"]["SourceArn"] == json!({"Fn::GetAtt": [rule, "Arn"]})
            && r["Properties"]["Principal"] == "events.amazonaws.com"
    })
}
