//! Hostile input for the trigger parser: generated JSON, mutated fixtures, raw bytes, and the
//! kept corpus in tests/corpus/trigger/. No input may panic; every accepted key is well-formed.
//! proptest keeps any failing case in proptest-regressions/ so it is replayed on every run.

use killswitch::error::Error;
use killswitch::incident::{AccessKeyId, Received};
use killswitch::trigger::{parse, parse_bytes};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,24}".prop_map(Value::String),
        "(AKIA|ASIA)[A-Z0-9]{14,18}".prop_map(Value::String),
        prop_oneof![
            Just("GuardDuty Finding"),
            Just("aws.guardduty"),
            Just("aws.health"),
            Just("AWS Health Event"),
            Just("RISK"),
            Just("AccessKey"),
            Just("IAMUser"),
            Just("AssumedRole"),
            Just("AWS_RISK_CREDENTIALS_EXPOSED"),
            Just("AWS API Call via CloudTrail"),
            Just("aws.iam"),
            Just("iam.amazonaws.com"),
            Just("CreateAccessKey"),
            Just("aws.securityhub"),
            Just("Findings Imported V2"),
            Just("AWS::IAM::AccessKey"),
            Just("AWS_RISK_ACCOUNT_CONSOLE_COMPROMISE"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("detail-type".to_string()),
                        Just("source".to_string()),
                        Just("detail".to_string()),
                        Just("resource".to_string()),
                        Just("accessKeyDetails".to_string()),
                        Just("accessKeyId".to_string()),
                        Just("access_key_id".to_string()),
                        Just("eventMetadata".to_string()),
                        Just("affectedEntities".to_string()),
                        Just("userIdentity".to_string()),
                        Just("eventName".to_string()),
                        Just("finding_info".to_string()),
                        Just("credential_uid".to_string()),
                        "[a-zA-Z_]{1,12}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn fixtures() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// Replaces the value at a pseudo-random path of `v` (walked by `choices`) with `with`.
fn mutate(v: &mut Value, choices: &[usize], with: Value) {
    let Some((c, rest)) = choices.split_first() else {
        *v = with;
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(c % m.len()).cloned().unwrap();
            mutate(m.get_mut(&key).unwrap(), rest, with);
        }
        Value::Array(a) if !a.is_empty() => {
            let i = c % a.len();
            mutate(&mut a[i], rest, with);
        }
        _ => *v = with,
    }
}

fn check(result: Result<Received, Error>) -> Result<(), TestCaseError> {
    match result {
        Ok(Received::Incidents(list)) => {
            for i in list {
                prop_assert!(AccessKeyId::parse(i.key.as_str()).is_ok());
            }
            Ok(())
        }
        Ok(Received::Sample(_) | Received::Advisory(_)) | Err(Error::BadEvent(_)) => Ok(()),
        Err(other) => Err(TestCaseError::fail(format!(
            "parser returned a non-input error: {other}"
        ))),
    }
}

/// A CloudTrail event is parsed into a well-formed signing key, or refused as bad input.
fn check_api_call(
    result: Result<Option<killswitch::trigger::ApiCallEvent>, Error>,
) -> Result<(), TestCaseError> {
    match result {
        Ok(Some(call)) => {
            prop_assert!(AccessKeyId::parse(call.signer.key.as_str()).is_ok());
            prop_assert!(call.event_id.len() <= 128);
            Ok(())
        }
        Ok(None) | Err(Error::BadEvent(_)) => Ok(()),
        Err(other) => Err(TestCaseError::fail(format!(
            "CloudTrail parser returned a non-input error: {other}"
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_json_never_panics(v in json()) {
        check(parse(v))?;
    }

    #[test]
    fn mutated_fixtures_never_panic(which in 0usize..64, path in prop::collection::vec(any::<usize>(), 0..6), with in json()) {
        let all = fixtures();
        let mut v = all[which % all.len()].clone();
        mutate(&mut v, &path, with);
        check(parse(v))?;
    }

    #[test]
    fn mutated_attack_sequences_never_panic(path in prop::collection::vec(any::<usize>(), 0..10), with in json()) {
        // The sequence sits eight levels down (detail.service.detection.sequence.actors[i].user…).
        let mut v = crate::support::event("guardduty-attack-sequence-finding.json");
        let sequence = v.pointer_mut("/detail/service/detection/sequence").unwrap();
        mutate(sequence, &path, with);
        check(parse(v))?;
    }

    #[test]
    fn mutated_cloudtrail_events_never_panic(which in 0usize..16, path in prop::collection::vec(any::<usize>(), 0..8), with in json()) {
        let all: Vec<Value> = fixtures()
            .into_iter()
            .filter(|f| f["detail-type"] == "AWS API Call via CloudTrail")
            .collect();
        let mut v = all[which % all.len()].clone();
        mutate(&mut v, &path, with);
        check_api_call(killswitch::trigger::api_call(&v))?;
        check(parse(v))?;
    }

    #[test]
    fn generated_json_is_never_a_call_by_accident(v in json()) {
        check_api_call(killswitch::trigger::api_call(&v))?;
    }

    #[test]
    fn raw_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(parse_bytes(&bytes))?;
    }
}

#[test]
fn the_kept_corpus_is_refused_or_parsed_without_panic() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/trigger");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        match parse_bytes(&bytes) {
            Err(Error::BadEvent(_)) => {}
            Ok(Received::Incidents(list)) => {
                // Accepted input is bounded: attacker-controlled text is truncated.
                for i in list {
                    let text = serde_json::to_string(&i).unwrap();
                    assert!(
                        text.len() < 4096,
                        "{}: {} bytes kept",
                        path.display(),
                        text.len()
                    );
                }
            }
            other => panic!("{}: {other:?}", path.display()),
        }
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn multi_megabyte_and_deeply_nested_payloads_are_refused() {
    let big = format!(
        "{{\"access_key_id\":\"AKIAIOSFODNN7EXAMPLE\",\"reason\":\"{}\",\"requested_by\":\"x\"}}",
        "a".repeat(3 * 1024 * 1024)
    );
    assert!(matches!(parse_bytes(big.as_bytes()), Err(Error::BadEvent(m)) if m.contains("limit")));
    let nested = format!("{}{}", "{\"a\":".repeat(20_000), "}".repeat(20_000));
    assert!(matches!(
        parse_bytes(nested.as_bytes()),
        Err(Error::BadEvent(_))
    ));
    // As deep as serde_json's decoder lets through (Lambda's runtime decodes with the same limit).
    let mut v = serde_json::json!(1);
    for _ in 0..120 {
        v = serde_json::json!({"detail": v});
    }
    assert!(parse(v).is_err());
}
