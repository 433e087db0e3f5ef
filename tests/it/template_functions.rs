//! template.yaml deploys the binary twice: the trigger function, which EventBridge and the
//! follow-up queue invoke, and the manual function, which only the incident-response role
//! invokes. Reserved concurrency is per function and shared by its triggers, so a flood of
//! manual invocations never takes a copy findings are contained with. Read statically.

use crate::template_guard::yaml;

use serde_json::Value;

const TRIGGER: &str = "KillSwitchFunction";
const MANUAL: &str = "ManualFunction";

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    yaml::parse(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    let r = &t["Resources"][name];
    assert!(r.is_object(), "template.yaml has no {name}");
    r
}

fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

/// `!Ref X` and `!GetAtt X.Y` both name X.
fn names(v: &Value, name: &str) -> bool {
    v.get("Ref").and_then(Value::as_str) == Some(name)
        || v.pointer("/Fn::GetAtt/0").and_then(Value::as_str) == Some(name)
}

fn number(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{v}"))
}

#[test]
fn the_manual_function_is_the_same_binary_with_its_own_concurrency_logs_and_no_triggers() {
    let t = template();
    let functions: Vec<&String> = of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(functions.contains(&&TRIGGER.to_owned()) && functions.contains(&&MANUAL.to_owned()));
    let (trigger, manual) = (
        &resource(&t, TRIGGER)["Properties"],
        &resource(&t, MANUAL)["Properties"],
    );
    // Same binary, same role.
    for field in ["CodeUri", "Handler", "Role"] {
        assert_eq!(trigger[field], manual[field], "{field}");
    }
    assert_eq!(
        resource(&t, TRIGGER)["Metadata"]["BuildProperties"],
        resource(&t, MANUAL)["Metadata"]["BuildProperties"]
    );
    // Each refuses the other's kind.
    assert_eq!(
        trigger["Environment"]["Variables"]["KILLSWITCH_ACCEPTS"],
        "findings"
    );
    assert_eq!(
        manual["Environment"]["Variables"]["KILLSWITCH_ACCEPTS"],
        "manual"
    );
    // Its own reserved concurrency; the trigger keeps at least 20 copies for containment once
    // follow-throughs (capped by the queue mapping) have theirs.
    let trigger_reserved = number(&trigger["ReservedConcurrentExecutions"]);
    let manual_reserved = number(&manual["ReservedConcurrentExecutions"]);
    assert!(manual_reserved >= 1, "a manual function that can never run");
    let follow_ups = number(
        &trigger["Events"]["FollowUps"]["Properties"]["ScalingConfig"]["MaximumConcurrency"],
    );
    assert!(
        trigger_reserved >= follow_ups + 20,
        "{trigger_reserved} - {follow_ups}"
    );
    // Its own log group.
    let (trigger_logs, manual_logs) = (
        &trigger["LoggingConfig"]["LogGroup"],
        &manual["LoggingConfig"]["LogGroup"],
    );
    assert_ne!(trigger_logs, manual_logs);
    let manual_group = manual_logs["Ref"].as_str().unwrap();
    assert_eq!(resource(&t, manual_group)["Type"], "AWS::Logs::LogGroup");
    // No triggers of its own: no SAM events, no rule targets it, no service may invoke it.
    assert!(manual.get("Events").is_none(), "{}", manual["Events"]);
    for (name, rule) in of_type(&t, "AWS::Events::Rule") {
        for target in rule["Properties"]["Targets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(
                !names(&target["Arn"], MANUAL),
                "{name} targets the manual function"
            );
        }
    }
    for (name, p) in of_type(&t, "AWS::Lambda::Permission") {
        if names(&p["Properties"]["FunctionName"], MANUAL) {
            assert_eq!(
                p["Properties"]["Principal"]["Ref"], "IncidentResponseRoleArn",
                "{name}: only the incident-response role invokes the manual function"
            );
        }
    }
}

#[test]
fn the_incident_response_role_invokes_the_manual_function_only() {
    let t = template();
    let p = &resource(&t, "IncidentResponseInvokePermission")["Properties"];
    assert!(names(&p["FunctionName"], MANUAL), "{}", p["FunctionName"]);
    for (name, p) in of_type(&t, "AWS::Lambda::Permission") {
        if names(&p["Properties"]["FunctionName"], TRIGGER) {
            assert_eq!(
                p["Properties"]["Principal"], "events.amazonaws.com",
                "{name}: the trigger function takes EventBridge's deliveries"
            );
        }
    }
}

#[test]
fn both_functions_page_when_changed_may_log_and_alarm_on_errors() {
    let t = template();
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    let rule = text
        .split("  TamperFunctionRule:\n")
        .nth(1)
        .and_then(|r| r.split("\n  Tamper").next())
        .expect("TamperFunctionRule");
    for name in [TRIGGER, MANUAL] {
        for form in [
            format!("- !Ref {name}\n"),
            format!("- !GetAtt {name}.Arn\n"),
            format!("- prefix: !Sub \"${{{name}}}:\"\n"),
            format!("- suffix: !Sub \":function:${{{name}}}\"\n"),
        ] {
            assert!(rule.contains(&form), "TamperFunctionRule lacks {form:?}");
        }
        let alarmed = of_type(&t, "AWS::CloudWatch::Alarm")
            .into_iter()
            .any(|(_, a)| {
                a["Properties"]["MetricName"] == "Errors"
                    && a["Properties"]["Dimensions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|d| names(&d["Value"], name))
            });
        assert!(alarmed, "no Errors alarm on {name}");
        let group = resource(&t, name)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            text.contains(&format!("- !GetAtt {group}.Arn\n")),
            "the responder role may not write {group}"
        );
    }
}
