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
    // The console-compromise code is refused whatever it names (tests/it/health_codes.rs).
    for code in killswitch::trigger::HEALTH_RISK_CODES
        .into_iter()
        .filter(|c| *c != "AWS_RISK_ACCOUNT_CONSOLE_COMPROMISE")
    {
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

// --- GuardDuty attack sequences and the other credential finding types (issue 28) ---

const SEQUENCE: &str = "guardduty-attack-sequence-finding.json";
const BOB_KEY: &str = "AKIAI44QH8DHBEXAMPLE";

/// The fixture's sequence with a second actor: bob's key, named only as an actor's credential.
fn sequence_with_bob() -> serde_json::Value {
    let mut e = event(SEQUENCE);
    e["detail"]["service"]["detection"]["sequence"]["actors"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"id": "actor-bob", "user": {"name": "bob", "uid": "AIDAI44QH8DHBEXAMPLE",
            "type": "IAMUser", "credentialUid": BOB_KEY}}),
        );
    e
}

#[test]
fn an_attack_sequence_names_every_credential_with_its_holder() {
    let list = incidents(SEQUENCE);
    assert_eq!(
        list.len(),
        1,
        "one key, named as actor and as resource: {list:?}"
    );
    assert_eq!(list[0].key.as_str(), FIXTURE_KEY);
    assert_eq!(
        list[0].principal,
        Principal::IamUser {
            user_name: "alice".into()
        }
    );
    assert!(
        list[0].id.ends_with(&format!(":{FIXTURE_KEY}")),
        "{}",
        list[0].id
    );
    match &list[0].trigger {
        Trigger::GuardDuty {
            finding_type,
            custom,
            ..
        } => {
            assert_eq!(finding_type, "AttackSequence:IAM/CompromisedCredentials");
            assert_eq!(custom, &None);
        }
        other => panic!("{other:?}"),
    }
    let two = incidents_of(sequence_with_bob());
    let keys: Vec<&str> = two.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, [FIXTURE_KEY, BOB_KEY]);
    assert_eq!(
        two[1].principal,
        Principal::IamUser {
            user_name: "bob".into()
        }
    );
    assert_ne!(two[0].id, two[1].id, "each key keeps its own record");
    // A role session named as an actor: the role, its ID and the session, as GuardDuty's
    // accessKeyDetails would give them.
    let mut e = event(SEQUENCE);
    e["detail"]["service"]["detection"]["sequence"]["actors"][0]["user"] = json!({
        "name": "ci-deployer", "uid": "AROACKCEVSQ6C2EXAMPLE:ci-deploy-session",
        "type": "AssumedRole", "credentialUid": FIXTURE_ROLE_KEY});
    let list = incidents_of(e);
    assert_eq!(list[1].key.as_str(), FIXTURE_ROLE_KEY);
    assert_eq!(
        list[1].principal,
        Principal::AssumedRole {
            role_name: "ci-deployer".into(),
            role_id: Some("AROACKCEVSQ6C2EXAMPLE".into()),
            session_name: Some("ci-deploy-session".into()),
        }
    );
}

#[test]
fn an_attack_sequence_it_cannot_read_is_refused_naming_the_field() {
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut e = event(SEQUENCE);
        f(&mut e["detail"]["service"]["detection"]["sequence"]);
        bad(e)
    };
    let mut e = event(SEQUENCE);
    e["detail"]["service"]
        .as_object_mut()
        .unwrap()
        .remove("detection");
    assert!(
        bad(e).contains("has no service.detection.sequence"),
        "no sequence"
    );
    type Edit<'a> = &'a dyn Fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 7] =
        [
            (
                &|s| s["uid"] = json!(null),
                "service.detection.sequence.uid",
            ),
            (
                &|s| s["signals"] = json!([]),
                "service.detection.sequence.signals",
            ),
            (
                &|s| s["actors"][0]["user"]["credentialUid"] = json!("alice-console-session"),
                "service.detection.sequence.actors[0].user.credentialUid is not an access key ID",
            ),
            (
                &|s| {
                    s["resources"][0].as_object_mut().unwrap().remove("uid");
                },
                "service.detection.sequence.resources[0].uid is missing",
            ),
            (
                &|s| {
                    s["resources"][0].as_object_mut().unwrap().remove("data");
                },
                "service.detection.sequence.resources[0].data.accessKey is missing",
            ),
            (
                &|s| {
                    s["resources"] = json!([]);
                    s["actors"][0]["user"]
                        .as_object_mut()
                        .unwrap()
                        .remove("credentialUid");
                },
                "names no credential",
            ),
            (
                &|s| {
                    s["actors"] =
                        json!((0..11)
                    .map(|n| json!({"id": format!("a{n}"), "user": {"name": "u", "uid": "u",
                        "type": "IAMUser", "credentialUid": format!("AKIAAAAAAAAAAAAAAA{n:02}")}}))
                    .collect::<Vec<_>>());
                },
                "at most 10",
            ),
        ];
    for (f, want) in cases {
        let msg = edit(f);
        assert!(msg.contains(want), "want {want:?} in {msg:?}");
    }
    // The other sequences are about data, clusters and instances, not keys to contain.
    let mut e = event(SEQUENCE);
    e["detail"]["type"] = json!("AttackSequence:S3/CompromisedData");
    assert!(
        bad(e).contains("only AttackSequence:IAM/CompromisedCredentials"),
        "S3 sequence"
    );
}

#[test]
fn an_attack_sequence_sample_is_recognised_by_its_marker_or_a_placeholder_key_id() {
    let mut e = event(SEQUENCE);
    e["detail"]["service"]["additionalInfo"] = json!({"sample": true});
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
    let mut e = event(SEQUENCE);
    let s = &mut e["detail"]["service"]["detection"]["sequence"];
    s["actors"][0]["user"]["credentialUid"] = json!("GeneratedFindingAccessKeyId");
    s["resources"] = json!([]);
    assert!(matches!(parse(e).unwrap(), Received::Sample(_)));
    // A placeholder-looking user name is the holder's choice, never a sample marker.
    let mut e = event(SEQUENCE);
    e["detail"]["service"]["detection"]["sequence"]["actors"][0]["user"]["name"] =
        json!("GeneratedFindingUserName");
    assert!(matches!(parse(e).unwrap(), Received::Incidents(_)));
}

#[test]
fn each_credential_finding_type_is_parsed_as_decided() {
    let custom = |name: &str| match &incidents(name)[0].trigger {
        Trigger::GuardDuty { custom, .. } => custom.clone(),
        other => panic!("{other:?}"),
    };
    for name in [
        "guardduty-ai-anomalous-model-invocation.json",
        "guardduty-ai-cost-harvesting.json",
        "guardduty-compromised-credentials-finding.json",
    ] {
        assert_eq!(custom(name), None, "{name}: contained like any finding");
        assert_eq!(incidents(name)[0].key.as_str(), FIXTURE_KEY, "{name}");
    }
    let why = custom("guardduty-ai-prompt-injection.json").expect("prompt injection: notify-only");
    assert!(why.contains("guardrail"), "{why}");
    for name in [
        "guardduty-root-finding.json",
        "guardduty-root-key-malicious-ip-finding.json",
        "guardduty-short-term-root-finding.json",
    ] {
        assert_eq!(incidents(name)[0].principal, Principal::Root, "{name}");
    }
}

#[tokio::test]
async fn each_credential_finding_type_gets_its_decided_outcome() {
    use crate::support::{FakeCloud, lambda, run};
    use killswitch::report::Status;
    for (name, want) in [
        (
            "guardduty-ai-anomalous-model-invocation.json",
            Status::Contained,
        ),
        ("guardduty-ai-cost-harvesting.json", Status::Contained),
        (
            "guardduty-compromised-credentials-finding.json",
            Status::Contained,
        ),
        (SEQUENCE, Status::Contained),
        ("guardduty-ai-prompt-injection.json", Status::Refused),
        ("guardduty-root-finding.json", Status::Refused),
        (
            "guardduty-root-key-malicious-ip-finding.json",
            Status::Refused,
        ),
        ("guardduty-short-term-root-finding.json", Status::Refused),
    ] {
        let a = lambda(FakeCloud::with_user("alice", FIXTURE_KEY));
        let response = run(&a, event(name)).await;
        let r = &response.reports[0];
        assert_eq!(r.status, want, "{name}: {r:?}");
        if want == Status::Refused {
            assert!(
                a.cloud.writes().is_empty(),
                "{name}: {:?}",
                a.cloud.writes()
            );
            assert!(!a.cloud.published().is_empty(), "{name}: a human is told");
        } else {
            assert_eq!(
                a.cloud.key_state("alice", FIXTURE_KEY),
                Some(killswitch::ports::KeyStatus::Inactive),
                "{name}"
            );
        }
    }
}

#[tokio::test]
async fn an_attack_sequence_is_read_back_credential_by_credential() {
    use crate::support::{FakeCloud, deliver, deliver_unraised, lambda};
    use killswitch::ports::KeyStatus;
    use killswitch::report::Status;
    // GuardDuty's copy names both keys: both are contained.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("bob", BOB_KEY, KeyStatus::Active);
    let a = lambda(cloud);
    let response = deliver(&a, sequence_with_bob()).await;
    let statuses: Vec<_> = response.reports.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Status::Contained, Status::Contained]);
    assert_eq!(a.cloud.key_state("bob", BOB_KEY), Some(KeyStatus::Inactive));
    // GuardDuty's copy names alice's key only: a payload adding bob's is forged for bob.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("bob", BOB_KEY, KeyStatus::Active);
    cloud.raise(&event(SEQUENCE));
    let a = lambda(cloud);
    let response = deliver_unraised(&a, sequence_with_bob()).await;
    let bob = response
        .reports
        .iter()
        .find(|r| r.summary.contains(BOB_KEY) || format!("{r:?}").contains(BOB_KEY))
        .unwrap();
    assert_eq!(bob.status, Status::Rejected, "{bob:?}");
    assert!(
        bob.summary.contains(&format!("it names {FIXTURE_KEY}")),
        "{}",
        bob.summary
    );
    assert_eq!(a.cloud.key_state("bob", BOB_KEY), Some(KeyStatus::Active));
    assert_eq!(
        a.cloud.key_state("alice", FIXTURE_KEY),
        Some(KeyStatus::Inactive)
    );
    // The copy names bob's key with another holder: forged too.
    let cloud = FakeCloud::with_user("alice", FIXTURE_KEY);
    cloud.add_user_key("bob", BOB_KEY, KeyStatus::Active);
    let mut real = sequence_with_bob();
    real["detail"]["service"]["detection"]["sequence"]["actors"][1]["user"]["name"] =
        json!("mallory");
    cloud.raise(&real);
    let a = lambda(cloud);
    let response = deliver_unraised(&a, sequence_with_bob()).await;
    assert_eq!(response.reports[1].status, Status::Rejected);
    assert!(
        response.reports[1].summary.contains("another principal"),
        "{}",
        response.reports[1].summary
    );
}

/// The rule's `Pattern:` block of template.yaml as JSON: the YAML it uses (block maps, `- `
/// lists of maps, flow lists of quoted strings), read by indentation.
fn rule_pattern(template: &str, rule: &str) -> serde_json::Value {
    let block = template.split(&format!("{rule}:")).nth(1).unwrap();
    let block = block.split("Pattern:").nth(1).unwrap();
    let lines: Vec<(usize, &str)> = block
        .lines()
        .skip(1)
        .map(|l| (l.len() - l.trim_start().len(), l.trim()))
        .filter(|(_, t)| !t.is_empty() && !t.starts_with('#'))
        .collect();
    let base = lines[0].0;
    let end = lines.iter().position(|(i, _)| *i < base).unwrap();
    yaml_block(&lines[..end], &mut 0, base)
}

fn yaml_block(lines: &[(usize, &str)], at: &mut usize, indent: usize) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    let mut list = Vec::new();
    while *at < lines.len() && lines[*at].0 >= indent {
        let (i, text) = lines[*at];
        if let Some(item) = text.strip_prefix("- ") {
            // A list item: its first line sits after "- ", the rest two columns further in.
            let mut item_lines = vec![(i + 2, item)];
            *at += 1;
            while *at < lines.len() && lines[*at].0 > i {
                item_lines.push(lines[*at]);
                *at += 1;
            }
            list.push(yaml_block(&item_lines, &mut 0, i + 2));
            continue;
        }
        let (key, value) = text.split_once(':').unwrap();
        *at += 1;
        let value = value.trim();
        let parsed = if value.is_empty() {
            let inner = lines.get(*at).map_or(indent + 1, |l| l.0);
            yaml_block(lines, at, inner)
        } else {
            serde_json::from_str(value).unwrap_or_else(|_| json!(value.trim_matches('"')))
        };
        map.insert(key.to_owned(), parsed);
    }
    if list.is_empty() {
        serde_json::Value::Object(map)
    } else {
        serde_json::Value::Array(list)
    }
}

/// An event pattern as EventBridge matches it (`$or`, `wildcard`, exact values).
fn pattern_matches(pattern: &serde_json::Value, event: &serde_json::Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(k, want)| {
        if k == "$or" {
            return want
                .as_array()
                .is_some_and(|alts| alts.iter().any(|alt| pattern_matches(alt, event)));
        }
        let got = &event[k];
        match want {
            serde_json::Value::Array(matchers) => matchers.iter().any(|m| {
                let value = got.as_str().unwrap_or_default();
                match m.get("wildcard").and_then(serde_json::Value::as_str) {
                    Some(glob) => {
                        let re = format!("^{}$", regex_lite::escape(glob).replace(r"\*", ".*"));
                        regex_lite::Regex::new(&re).unwrap().is_match(value)
                    }
                    None => m.as_str() == Some(value),
                }
            }),
            nested => pattern_matches(nested, got),
        }
    })
}

#[test]
fn the_guardduty_rule_routes_credential_sequences_and_no_other_sequence() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    let rule = &rule_pattern(&text, "GuardDutyAccessKeyFinding");
    assert_eq!(rule["source"], json!(["aws.guardduty"]), "{rule}");
    for name in [
        SEQUENCE,
        "guardduty-iam-user-finding.json",
        "guardduty-ai-anomalous-model-invocation.json",
        "guardduty-ai-cost-harvesting.json",
        "guardduty-ai-prompt-injection.json",
        "guardduty-compromised-credentials-finding.json",
        "guardduty-root-finding.json",
        "guardduty-root-key-malicious-ip-finding.json",
        "guardduty-short-term-root-finding.json",
    ] {
        assert!(pattern_matches(rule, &event(name)), "{name} is not routed");
    }
    for (ftype, resource) in [
        ("AttackSequence:S3/CompromisedData", "AttackSequence"),
        ("AttackSequence:EKS/CompromisedCluster", "AttackSequence"),
        ("AttackSequence:IAM/CompromisedCredentials", "AccessKey"),
        ("Backdoor:EC2/C&CActivity.B", "Instance"),
    ] {
        let mut e = event(SEQUENCE);
        e["detail"]["type"] = json!(ftype);
        e["detail"]["resource"]["resourceType"] = json!(resource);
        assert!(
            !pattern_matches(rule, &e),
            "{ftype} on {resource} is routed"
        );
    }
}
