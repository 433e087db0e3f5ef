//! Security Hub's `Findings Imported V2` (OCSF): GuardDuty's new, open access-key findings
//! become incidents, anything else is refused naming what is wrong, and every one is read back at
//! GuardDuty, where it was raised, before any write.

use killswitch::error::Error;
use killswitch::incident::{Principal, Received, Trigger};
use killswitch::report::Status;
use killswitch::trigger::{OCSF_ACCESS_KEY, parse};
use serde_json::{Value, json};

use crate::support::{FIXTURE_KEY, FakeCloud, app, deliver_unraised, event};

const USER_FINDING: &str = "securityhub-v2-guardduty-user-finding.json";

fn finding(e: &mut Value) -> &mut Value {
    &mut e["detail"]["findings"][0]
}

fn bad(value: Value) -> String {
    match parse(value) {
        Err(Error::BadEvent(msg)) => msg,
        other => panic!("expected BadEvent, got {other:?}"),
    }
}

#[test]
fn a_guardduty_finding_names_its_key_user_and_guardduty_finding() {
    let Received::Incidents(list) = parse(event(USER_FINDING)).unwrap() else {
        panic!("not incidents");
    };
    assert_eq!(list.len(), 1);
    let i = &list[0];
    assert_eq!(i.key.as_str(), FIXTURE_KEY);
    assert_eq!(
        i.principal,
        Principal::IamUser {
            user_name: "alice".into()
        }
    );
    assert_eq!(i.account.as_ref().map(|a| a.as_str()), Some("123456789012"));
    // An import's ID: read back at GuardDuty by the finding ARN.
    assert!(
        i.id.starts_with("securityhub:arn:aws:guardduty:us-east-1:"),
        "{}",
        i.id
    );
    let Trigger::GuardDuty {
        finding_type,
        region,
        ..
    } = &i.trigger
    else {
        panic!("{:?}", i.trigger);
    };
    assert_eq!(
        finding_type,
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
    );
    assert_eq!(region.as_deref(), Some("us-east-1"));
    let f = i.finding.as_ref().unwrap();
    assert!(f.id.ends_with("/finding/5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11"));
    assert_eq!(
        f.product_arn,
        "arn:aws:securityhub:us-east-1::product/aws/guardduty"
    );
}

#[test]
fn the_asff_path_form_of_the_type_is_read_too() {
    let mut e = event(USER_FINDING);
    finding(&mut e)["finding_info"]["types"] =
        json!(["TTPs/Initial Access/UnauthorizedAccess:IAMUser-TorIPCaller"]);
    let Received::Incidents(list) = parse(e).unwrap() else {
        panic!()
    };
    let Trigger::GuardDuty { finding_type, .. } = &list[0].trigger else {
        panic!()
    };
    assert_eq!(finding_type, "UnauthorizedAccess:IAMUser/TorIPCaller");
}

#[test]
fn a_sample_is_recognised_by_its_placeholder_key_only() {
    assert!(matches!(
        parse(event("securityhub-v2-guardduty-sample-finding.json")).unwrap(),
        Received::Sample(_)
    ));
    // A placeholder user name next to a real key is the holder's choice, never a sample.
    let mut e = event(USER_FINDING);
    finding(&mut e)["evidences"][0]["actor"]["user"]["name"] = json!("GeneratedFindingUserName");
    assert!(matches!(parse(e), Ok(Received::Incidents(_))));
}

#[test]
fn only_new_open_findings_are_acted_on() {
    for (field, value) in [
        ("status_id", json!(2)),
        ("status_id", json!(3)),
        ("status_id", json!(4)),
        ("status_id", Value::Null),
        ("activity_id", json!(3)),
        ("activity_id", Value::Null),
    ] {
        let mut e = event(USER_FINDING);
        finding(&mut e)[field] = value.clone();
        let msg = bad(e);
        assert!(msg.contains("not new and open"), "{field}={value}: {msg}");
    }
    let mut e = event(USER_FINDING);
    finding(&mut e)["activity_id"] = json!(2);
    assert!(
        matches!(parse(e), Ok(Received::Incidents(_))),
        "an update of a new finding"
    );
}

#[test]
fn other_products_and_ids_that_are_not_guarddutys_are_refused() {
    let mut e = event(USER_FINDING);
    finding(&mut e)["metadata"]["product"] = json!({"name": "Inspector", "uid": "arn:aws:securityhub:us-east-1::productv2/aws/inspector"});
    assert!(bad(e).contains("only GuardDuty findings"));
    let mut e = event(USER_FINDING);
    finding(&mut e)["finding_info"]["uid"] = json!("5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11");
    assert!(bad(e).contains("not GuardDuty's finding ARN"));
}

#[test]
fn a_missing_field_is_named() {
    for (path, field) in [
        ("finding_info", "finding_info"),
        ("metadata", "metadata"),
        ("cloud", "cloud"),
    ] {
        let mut e = event(USER_FINDING);
        finding(&mut e).as_object_mut().unwrap().remove(path);
        let msg = bad(e);
        assert!(msg.contains(field), "{msg}");
    }
    let mut e = event(USER_FINDING);
    finding(&mut e)["evidences"] = json!([]);
    assert!(bad(e).contains("evidences[].actor.user.credential_uid"));
    let mut e = event(USER_FINDING);
    finding(&mut e)["finding_info"]["types"] = json!([]);
    assert!(bad(e).contains("finding_info.types"));
    let mut e = event(USER_FINDING);
    finding(&mut e)["resources"] = json!([{"type": "AWS::IAM::User", "uid": "alice"}]);
    assert!(bad(e).contains(OCSF_ACCESS_KEY));
    let mut e = event(USER_FINDING);
    finding(&mut e)["resources"][0]["uid"] = json!("not-a-key");
    assert!(matches!(parse(e), Err(Error::BadEvent(_))));
}

#[test]
fn more_keys_than_the_cap_are_refused_whole() {
    let mut e = event(USER_FINDING);
    let resource = finding(&mut e)["resources"][0].clone();
    finding(&mut e)["resources"] = Value::Array(vec![resource; 11]);
    assert!(bad(e).contains("at most 10"));
}

#[tokio::test]
async fn it_is_read_back_at_guardduty_before_any_write() {
    let payload = event(USER_FINDING);
    // GuardDuty never raised it: rejected, nothing written.
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    let r = &deliver_unraised(&a, payload.clone()).await.reports[0];
    assert_eq!(r.status, Status::Rejected, "{r:?}");
    assert!(a.cloud.writes().is_empty());
    // GuardDuty holds the finding its ID names: contained.
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.cloud.raise(&event("guardduty-iam-user-finding.json"));
    let r = &deliver_unraised(&a, payload.clone()).await.reports[0];
    assert_eq!(r.status, Status::Contained, "{r:?}");
    assert!(
        a.cloud
            .calls()
            .iter()
            .any(|(op, id)| op == "guardduty:GetFindings"
                && id == "5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11")
    );
    // An event naming another user than GuardDuty's finding does: rejected.
    let a = app(FakeCloud::with_user("alice", FIXTURE_KEY));
    a.cloud.raise(&event("guardduty-iam-user-finding.json"));
    let mut renamed = payload;
    finding(&mut renamed)["evidences"][0]["actor"]["user"]["name"] = json!("admin");
    let r = &deliver_unraised(&a, renamed).await.reports[0];
    assert_eq!(r.status, Status::Rejected, "{r:?}");
    assert!(a.cloud.writes().is_empty());
}

#[test]
fn the_template_routes_new_open_guardduty_access_key_findings() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    let rule = template
        .split("SecurityHubV2FindingRule:")
        .nth(1)
        .and_then(|r| r.split("Targets:").next())
        .expect("a rule for Findings Imported V2");
    for needle in [
        "Condition: SecurityHubTrigger",
        "detail-type: [\"Findings Imported V2\"]",
        "name: [\"GuardDuty\"]",
        "status_id: [1]",
        "activity_id: [{\"anything-but\": 3}]",
        "type: [\"AWS::IAM::AccessKey\"]",
    ] {
        assert!(rule.contains(needle), "{needle} missing from the V2 rule");
    }
    assert!(template.contains("SourceArn: !GetAtt SecurityHubV2FindingRule.Arn"));
}
