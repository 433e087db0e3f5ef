//! Every payload in events/ parses into what the responder must act on; bad input is refused.

use killswitch::error::Error;
use killswitch::incident::{KeyKind, Principal, Received, Trigger};
use killswitch::trigger::{parse, parse_bytes};
use serde_json::json;

use crate::support::{FIXTURE_KEY, FIXTURE_ROLE_KEY, event};

fn incidents(name: &str) -> Vec<killswitch::incident::Incident> {
    match parse(event(name)).unwrap() {
        Received::Incidents(list) => list,
        other => panic!("{name}: expected incidents, got {other:?}"),
    }
}

fn bad(value: serde_json::Value) -> String {
    match parse(value) {
        Err(Error::BadEvent(msg)) => msg,
        other => panic!("expected BadEvent, got {other:?}"),
    }
}

#[test]
fn guardduty_iam_user_finding_names_user_and_key() {
    let list = incidents("guardduty-iam-user-finding.json");
    assert_eq!(list.len(), 1);
    let i = &list[0];
    assert_eq!(i.key.as_str(), FIXTURE_KEY);
    assert_eq!(i.key.kind(), KeyKind::LongTerm);
    assert_eq!(
        i.principal,
        Principal::IamUser {
            user_name: "alice".into()
        }
    );
    assert_eq!(i.account.as_ref().map(|a| a.as_str()), Some("123456789012"));
    assert_eq!(
        i.id,
        "guardduty:5ec9c1b2f6a04e3d8a2f1b7c3d9e0a11:2026-11-23T03:10:02.114Z"
    );
    match &i.trigger {
        Trigger::GuardDuty {
            finding_type,
            remote_ip,
            count,
            ..
        } => {
            assert_eq!(
                finding_type,
                "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
            );
            assert_eq!(remote_ip.as_deref(), Some("203.0.113.77"));
            assert_eq!(*count, Some(3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn guardduty_assumed_role_finding_names_role_and_session() {
    let i = &incidents("guardduty-assumed-role-finding.json")[0];
    assert_eq!(i.key.as_str(), FIXTURE_ROLE_KEY);
    assert_eq!(i.key.kind(), KeyKind::Temporary);
    assert_eq!(
        i.principal,
        Principal::AssumedRole {
            role_name: "ci-deployer".into(),
            session_name: Some("ci-deploy-session".into()),
            role_id: Some("AROACKCEVSQ6C2EXAMPLE".into()),
        }
    );
}

#[test]
fn role_slash_session_user_names_are_tolerated() {
    let mut e = event("guardduty-assumed-role-finding.json");
    e["detail"]["resource"]["accessKeyDetails"]["userName"] = json!("ci-deployer/other-session");
    e["detail"]["resource"]["accessKeyDetails"]["principalId"] = json!("AROACKCEVSQ6C2EXAMPLE");
    let Received::Incidents(list) = parse(e).unwrap() else {
        panic!()
    };
    assert_eq!(
        list[0].principal,
        Principal::AssumedRole {
            role_name: "ci-deployer".into(),
            session_name: Some("other-session".into()),
            role_id: None,
        }
    );
}

#[test]
fn sample_findings_are_recognised_by_either_marker_or_placeholders() {
    assert!(matches!(
        parse(event("guardduty-sample-finding.json")).unwrap(),
        Received::Sample(_)
    ));
    // Only the JSON-in-a-string marker, with a real-looking key.
    let mut e = event("guardduty-iam-user-finding.json");
    e["detail"]["service"]["additionalInfo"] =
        json!({"value": "{\"sample\":true}", "type": "default"});
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
    // Only the boolean marker.
    let mut e = event("guardduty-iam-user-finding.json");
    e["detail"]["service"]["additionalInfo"] = json!({"sample": true});
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
    // Only placeholders, no marker: the placeholder key ID decides.
    let mut e = event("guardduty-sample-finding.json");
    e["detail"]["service"]["additionalInfo"] = json!({});
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
}

#[test]
fn root_and_other_principal_types_become_notify_only_incidents() {
    assert_eq!(
        incidents("guardduty-root-finding.json")[0].principal,
        Principal::Root
    );
    for t in ["FederatedUser", "AWSService", "AWSAccount", "SomethingNew"] {
        let mut e = event("guardduty-iam-user-finding.json");
        e["detail"]["resource"]["accessKeyDetails"]["userType"] = json!(t);
        let Received::Incidents(list) = parse(e).unwrap() else {
            panic!()
        };
        assert_eq!(
            list[0].principal,
            Principal::Other {
                user_type: t.into()
            }
        );
    }
}

#[test]
fn health_events_of_both_shapes_and_all_codes_name_the_key() {
    let old = &incidents("health-exposed-old-shape.json")[0];
    assert_eq!(old.key.as_str(), FIXTURE_KEY);
    assert_eq!(old.principal, Principal::Unresolved);
    let new = &incidents("health-exposed-new-shape.json")[0];
    assert_eq!(new.key.as_str(), FIXTURE_KEY);
    assert_eq!(
        new.principal,
        Principal::IamUser {
            user_name: "alice".into()
        }
    );
    match &new.trigger {
        Trigger::Health {
            start_time,
            exposed_url,
            ..
        } => {
            assert_eq!(
                start_time.map(|t| t.to_rfc3339()),
                Some("2026-11-23T02:41:54+00:00".into())
            );
            assert!(
                exposed_url
                    .as_deref()
                    .unwrap()
                    .starts_with("https://github.com/")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        incidents("health-iam-quarantine.json")[0].key.as_str(),
        FIXTURE_KEY
    );
    for code in killswitch::trigger::HEALTH_RISK_CODES {
        let mut e = event("health-exposed-old-shape.json");
        e["detail"]["eventTypeCode"] = json!(code);
        assert!(parse(e).is_ok(), "{code}");
    }
}

#[test]
fn health_event_with_several_keys_becomes_one_incident_per_key() {
    let mut e = event("health-exposed-new-shape.json");
    e["detail"]["affectedEntities"] =
        json!([{"entityValue": FIXTURE_KEY}, {"entityValue": "AKIAI44QH8DHBEXAMPLE"}]);
    let Received::Incidents(list) = parse(e).unwrap() else {
        panic!()
    };
    let keys: Vec<_> = list.iter().map(|i| i.key.as_str().to_owned()).collect();
    assert_eq!(keys, vec![FIXTURE_KEY, "AKIAI44QH8DHBEXAMPLE"]);
    // userName belongs to publicKey only; the other key's owner is resolved through IAM.
    assert_eq!(list[1].principal, Principal::Unresolved);
    assert_ne!(list[0].id, list[1].id);
}

#[test]
fn manual_requests_parse_with_and_without_dry_run() {
    let i = &incidents("manual-request.json")[0];
    assert_eq!(
        i.principal,
        Principal::IamUser {
            user_name: "alice".into()
        }
    );
    assert!(!i.dry_run);
    assert_eq!(i.id, "manual:INC-2026-1123-01");
    let d = &incidents("manual-request-dry-run.json")[0];
    assert!(d.dry_run);
    assert_eq!(d.principal, Principal::Unresolved);
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    assert!(bad(json!([1, 2])).contains("JSON object"));
    assert!(bad(json!({"hello": "world"})).contains("neither"));
    assert!(bad(json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}})).contains("unsupported event"));
    let mut e = event("guardduty-iam-user-finding.json");
    e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!("AKIA-not-a-key");
    assert!(bad(e).contains("does not match"));
    let mut e = event("guardduty-iam-user-finding.json");
    e["detail"]["resource"]["resourceType"] = json!("S3Bucket");
    assert!(bad(e).contains("resourceType"));
    let mut e = event("health-exposed-old-shape.json");
    e["detail"]["service"] = json!("ABUSE");
    assert!(bad(e).contains("RISK"));
    let mut e = event("health-exposed-old-shape.json");
    e["detail"]["eventTypeCode"] = json!("AWS_EC2_MAINTENANCE_SCHEDULED");
    assert!(bad(e).contains("not a credential-risk"));
    let mut e = event("health-exposed-old-shape.json");
    e["detail"]["affectedEntities"] = json!([{"entityValue": "i-0123456789"}]);
    assert!(bad(e).contains("names no access key"));
    let mut m = event("manual-request.json");
    m["dryrun"] = json!(true);
    assert!(bad(m).contains("unknown field"));
    let mut m = event("manual-request.json");
    m["role_name"] = json!("x");
    assert!(bad(m).contains("not both"));
    let mut m = event("manual-request.json");
    m["user_name"] = json!("bad name/with slash");
    assert!(bad(m).contains("not a valid IAM name"));
    let mut m = event("manual-request.json");
    m["account_id"] = json!("12345");
    assert!(bad(m).contains("12 digits"));
    let mut m = event("manual-request.json");
    m.as_object_mut().unwrap().remove("requested_by");
    assert!(bad(m).contains("requested_by"));
}

#[test]
fn hostile_bytes_never_panic() {
    let deep = "[".repeat(100_000);
    for raw in [
        &b""[..],
        b"not json",
        b"\xff\xfe",
        deep.as_bytes(),
        b"{\"detail-type\": 5}",
        b"{\"access_key_id\": null}",
        b"{\"detail-type\":\"GuardDuty Finding\",\"source\":\"aws.guardduty\",\"detail\":{\"id\":\"x\",\"type\":\"t\",\"resource\":{}}}",
    ] {
        assert!(matches!(parse_bytes(raw), Err(Error::BadEvent(_))), "{:?}", String::from_utf8_lossy(&raw[..raw.len().min(40)]));
    }
    let huge = vec![b' '; killswitch::trigger::MAX_PAYLOAD_BYTES + 1];
    assert!(matches!(parse_bytes(&huge), Err(Error::BadEvent(m)) if m.contains("limit")));
}

#[test]
fn security_hub_imported_guardduty_findings_are_read_from_asff() {
    let i = &incidents("securityhub-guardduty-user-finding.json")[0];
    assert_eq!(i.key.as_str(), FIXTURE_KEY);
    assert_eq!(
        i.principal,
        Principal::IamUser {
            user_name: "alice".into()
        }
    );
    assert_eq!(i.account.as_ref().map(|a| a.as_str()), Some("123456789012"));
    match &i.trigger {
        Trigger::GuardDuty { finding_type, .. } => {
            assert_eq!(
                finding_type,
                "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(i.id.starts_with("securityhub:arn:aws:guardduty:"));
    assert!(matches!(
        parse(event("securityhub-guardduty-sample-finding.json")).unwrap(),
        Received::Sample(_)
    ));
    // Other products are not acted on.
    let mut e = event("securityhub-guardduty-user-finding.json");
    e["detail"]["findings"][0]["ProductArn"] =
        json!("arn:aws:securityhub:us-east-1::product/aws/inspector");
    assert!(bad(e).contains("only GuardDuty"));
    let mut e = event("securityhub-guardduty-user-finding.json");
    e["detail"]["findings"][0]["Resources"][0]["Type"] = json!("AwsEc2Instance");
    assert!(bad(e).contains("no AwsIamAccessKey"));
}

#[test]
fn health_backup_copies_are_marked() {
    let mut e = event("health-exposed-new-shape.json");
    e["detail"]["backupEvent"] = json!(true);
    match &incidents_of(e)[0].trigger {
        Trigger::Health { backup_event, .. } => assert!(*backup_event),
        other => panic!("{other:?}"),
    }
    match &incidents("health-exposed-new-shape.json")[0].trigger {
        Trigger::Health { backup_event, .. } => assert!(!*backup_event),
        other => panic!("{other:?}"),
    }
}

fn incidents_of(v: serde_json::Value) -> Vec<killswitch::incident::Incident> {
    match parse(v).unwrap() {
        Received::Incidents(list) => list,
        other => panic!("{other:?}"),
    }
}

#[test]
fn security_hub_findings_act_only_while_new_and_active() {
    // Resolving or suppressing the finding (e.g. after a restore) sends another "Imported"
    // event: it must not contain the key again.
    for (path, value) in [
        ("/detail/findings/0/Workflow/Status", "RESOLVED"),
        ("/detail/findings/0/Workflow/Status", "SUPPRESSED"),
        ("/detail/findings/0/Workflow/Status", "NOTIFIED"),
        ("/detail/findings/0/RecordState", "ARCHIVED"),
    ] {
        let mut e = event("securityhub-guardduty-user-finding.json");
        *e.pointer_mut(path).unwrap() = json!(value);
        assert!(bad(e).contains("not NEW and ACTIVE"), "{path} = {value}");
    }
    let mut e = event("securityhub-guardduty-user-finding.json");
    e["detail"]["findings"][0]
        .as_object_mut()
        .unwrap()
        .remove("Workflow");
    assert!(bad(e).contains("not NEW and ACTIVE"));
}

#[test]
fn guardduty_finding_types_are_not_an_exact_list() {
    // A type GuardDuty adds or renames tomorrow is still an access-key finding.
    let mut e = event("guardduty-iam-user-finding.json");
    e["detail"]["type"] = json!("Exfiltration:IAMUser/SomethingNew.Variant2");
    assert_eq!(incidents_of(e)[0].key.as_str(), FIXTURE_KEY);
    // The template's rule matches by the `*:IAMUser/*` shape, not by an exact list.
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    assert!(template.contains(r#"- wildcard: "*:IAMUser/*""#));
}

#[test]
fn manual_requests_may_name_the_role_session_to_deny() {
    let e = json!({"access_key_id": FIXTURE_ROLE_KEY, "role_name": "web", "session_name": "i-0abc123",
        "reason": "leak", "requested_by": "me"});
    assert_eq!(
        incidents_of(e)[0].principal,
        Principal::AssumedRole {
            role_name: "web".into(),
            session_name: Some("i-0abc123".into()),
            role_id: None,
        }
    );
    for bad_req in [
        json!({"access_key_id": FIXTURE_ROLE_KEY, "session_name": "i-0abc123", "reason": "r", "requested_by": "me"}),
        json!({"access_key_id": FIXTURE_ROLE_KEY, "role_name": "web", "session_name": "has space", "reason": "r", "requested_by": "me"}),
    ] {
        assert!(bad(bad_req).contains("session_name"));
    }
}

/// Issue 26: a holder that can rename its user (`iam:UpdateUser`) must not turn a real finding
/// into a "sample". Only the sample marker or the placeholder key ID say "sample".
#[test]
fn user_names_and_principal_ids_never_make_a_guardduty_finding_a_sample() {
    // Renamed IAM user, real key, no marker.
    let mut e = event("guardduty-iam-user-finding.json");
    e["detail"]["resource"]["accessKeyDetails"]["userName"] = json!("GeneratedFindingUserName");
    let list = incidents_of(e);
    assert_eq!(list[0].key.as_str(), FIXTURE_KEY);
    assert_eq!(
        list[0].principal,
        Principal::IamUser {
            user_name: "GeneratedFindingUserName".into()
        }
    );
    // A principal ID with the prefix (with and without the renamed user).
    for user in ["alice", "GeneratedFindingX"] {
        let mut e = event("guardduty-iam-user-finding.json");
        e["detail"]["resource"]["accessKeyDetails"]["userName"] = json!(user);
        e["detail"]["resource"]["accessKeyDetails"]["principalId"] =
            json!("GeneratedFindingPrincipalId");
        assert_eq!(incidents_of(e)[0].key.as_str(), FIXTURE_KEY, "{user}");
    }
    // A role named, and a session named, like a placeholder.
    let mut e = event("guardduty-assumed-role-finding.json");
    e["detail"]["resource"]["accessKeyDetails"]["userName"] = json!("GeneratedFindingRole");
    e["detail"]["resource"]["accessKeyDetails"]["principalId"] =
        json!("AROACKCEVSQ6C2EXAMPLE:GeneratedFindingSession");
    assert_eq!(
        incidents_of(e)[0].principal,
        Principal::AssumedRole {
            role_name: "GeneratedFindingRole".into(),
            session_name: Some("GeneratedFindingSession".into()),
            role_id: Some("AROACKCEVSQ6C2EXAMPLE".into()),
        }
    );
}

#[test]
fn a_placeholder_key_id_alone_still_makes_a_guardduty_sample() {
    // The placeholder can never be a real key ID: a sample, not an error, whoever it names.
    let mut e = event("guardduty-iam-user-finding.json");
    e["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] =
        json!("GeneratedFindingAccessKeyId");
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
    // The marker alone, with real names, is a sample too (covered above); and both.
    assert!(matches!(
        parse(event("guardduty-sample-finding.json")).unwrap(),
        Received::Sample(_)
    ));
}

#[test]
fn user_names_never_make_a_security_hub_finding_a_sample() {
    // Details naming a renamed user, real key ID, no marker.
    let mut e = event("securityhub-guardduty-user-finding.json");
    let r = &mut e["detail"]["findings"][0]["Resources"][0];
    r["Details"]["AwsIamAccessKey"]["PrincipalName"] = json!("GeneratedFindingUserName");
    r["Details"]["AwsIamAccessKey"]["PrincipalId"] = json!("GeneratedFindingPrincipalId");
    let list = incidents_of(e.clone());
    assert_eq!(list[0].key.as_str(), FIXTURE_KEY);
    assert_eq!(
        list[0].principal,
        Principal::IamUser {
            user_name: "GeneratedFindingUserName".into()
        }
    );
    // Another resource of the finding whose ID names the renamed user is not a key ID either.
    e["detail"]["findings"][0]["Resources"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "Type": "AwsIamUser",
            "Id": "arn:aws:iam::123456789012:user/GeneratedFindingUserName",
            "Partition": "aws",
            "Region": "us-east-1"
        }));
    let list = incidents_of(e);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].key.as_str(), FIXTURE_KEY);
}

#[test]
fn security_hub_samples_come_from_the_marker_or_the_placeholder_key_id() {
    // The placeholder key ID alone (no marker, real names): a sample, not an error.
    let mut e = event("securityhub-guardduty-user-finding.json");
    e["detail"]["findings"][0]["Resources"][0]["Id"] =
        json!("AWS::IAM::AccessKey:GeneratedFindingAccessKeyId");
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
    // The marker alone, with a real key ID.
    let mut e = event("securityhub-guardduty-user-finding.json");
    e["detail"]["findings"][0]["ProductFields"]["aws/guardduty/service/additionalInfo/sample"] =
        json!("true");
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
    // The sample fixture without its marker: its placeholder key ID still says sample.
    let mut e = event("securityhub-guardduty-sample-finding.json");
    e["detail"]["findings"][0]["ProductFields"]
        .as_object_mut()
        .unwrap()
        .remove("aws/guardduty/service/additionalInfo/sample");
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
}
