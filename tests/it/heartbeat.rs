//! The watchdog's and the canary's schedules, the canary's principal and the alarm on its
//! heartbeat, read statically from template.yaml (the local AWS runs no schedule and evaluates
//! no alarm): each rule sends exactly the payload its job answers, the alarm reads the metric the
//! code writes and pages on silence, and the canary's user can do nothing.

use crate::template_guard::yaml;

use killswitch::playbook::canary::{DIMENSION, METRIC, NAMESPACE};
use killswitch::trigger::{self, Job};
use serde_json::{Value, json};

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

fn sub(text: &str) -> Value {
    json!({ "Fn::Sub": text })
}

fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

#[test]
fn the_watchdog_and_the_canary_run_on_the_stacks_own_schedules_with_their_payloads() {
    let t = template();
    for (rule, permission, job) in [
        ("WatchdogRule", "WatchdogInvokePermission", Job::Watchdog),
        ("CanaryRule", "CanaryInvokePermission", Job::Canary),
    ] {
        let p = &resource(&t, rule)["Properties"];
        assert!(p["ScheduleExpression"].is_object(), "{rule}: {p}");
        assert!(
            p["EventPattern"].is_null(),
            "{rule}: a schedule, not a pattern"
        );
        // Named after the stack, so disabling it pages (TamperRulesRule watches the prefix).
        assert_eq!(
            p["Name"],
            sub(&format!("${{AWS::StackName}}-{}", job.name())),
            "{rule}"
        );
        let targets = p["Targets"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{rule}");
        assert_eq!(targets[0]["Arn"], get_att("KillSwitchFunction", "Arn"));
        let input: Value = serde_json::from_str(targets[0]["Input"].as_str().unwrap()).unwrap();
        assert_eq!(trigger::job(&input).unwrap(), Some(job), "{rule}: {input}");
        let grant = &resource(&t, permission)["Properties"];
        assert_eq!(grant["Principal"], "events.amazonaws.com");
        assert_eq!(grant["FunctionName"], reference("KillSwitchFunction"));
        assert_eq!(grant["SourceArn"], get_att(rule, "Arn"));
    }
    // The watchdog is always on; its schedule never reads "rate(1 minutes)", which EventBridge
    // refuses.
    assert!(resource(&t, "WatchdogRule")["Condition"].is_null());
    assert_eq!(
        resource(&t, "WatchdogRule")["Properties"]["ScheduleExpression"],
        sub("rate(${WatchdogRateMinutes} minutes)")
    );
    let minimum: u64 = t["Parameters"]["WatchdogRateMinutes"]["MinValue"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(minimum >= 2);
    for name in [
        "CanaryUser",
        "CanaryRule",
        "CanaryInvokePermission",
        "CanaryAlarm",
    ] {
        assert_eq!(resource(&t, name)["Condition"], "Canary", "{name}");
    }
    // Off at 0, and in a notify-only stack, whose canary would fail every run.
    assert_eq!(
        t["Conditions"]["Canary"],
        json!({"Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [reference("CanaryRateMinutes"), "0"]}]},
            {"Fn::Equals": [reference("DryRun"), "false"]}
        ]})
    );
}

#[test]
fn every_canary_interval_has_its_schedule_and_an_alarm_period_of_one_interval() {
    let t = template();
    let allowed = t["Parameters"]["CanaryRateMinutes"]["AllowedValues"]
        .as_array()
        .unwrap();
    let alarm = &resource(&t, "CanaryAlarm")["Properties"];
    let periods: u64 = alarm["EvaluationPeriods"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut intervals = 0;
    for minutes in allowed
        .iter()
        .filter_map(Value::as_str)
        .filter(|m| *m != "0")
    {
        let row = &t["Mappings"]["CanaryRates"][minutes];
        assert_eq!(
            row["Schedule"],
            format!("rate({minutes} minutes)"),
            "{minutes}"
        );
        let period: u64 = row["Period"].as_str().unwrap().parse().unwrap();
        assert_eq!(period, minutes.parse::<u64>().unwrap() * 60, "{minutes}");
        // CloudWatch evaluates at most a day of periods.
        assert!(period * periods <= 86_400, "{minutes}");
        intervals += 1;
    }
    assert!(intervals >= 5, "{allowed:?}");
    let lookup = |column: &str| json!({"Fn::FindInMap": ["CanaryRates", reference("CanaryRateMinutes"), column]});
    assert_eq!(alarm["Period"], lookup("Period"));
    assert_eq!(
        resource(&t, "CanaryRule")["Properties"]["ScheduleExpression"],
        lookup("Schedule")
    );
}

#[test]
fn the_canary_alarm_pages_when_the_heartbeat_fails_or_stops_coming() {
    let t = template();
    let alarm = &resource(&t, "CanaryAlarm")["Properties"];
    // The metric the code writes (killswitch::playbook::canary), for the function the rule runs.
    assert_eq!(alarm["Namespace"], NAMESPACE);
    assert_eq!(alarm["MetricName"], METRIC);
    assert_eq!(
        alarm["Dimensions"],
        json!([{"Name": DIMENSION, "Value": reference("KillSwitchFunction")}])
    );
    // A run that failed (0) or no run at all (missing data) breaches; a retry that passed
    // within the interval does not (Maximum).
    assert_eq!(alarm["TreatMissingData"], "breaching");
    assert_eq!(alarm["Statistic"], "Maximum");
    assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold");
    assert_eq!(alarm["Threshold"], "1");
    assert_eq!(alarm["AlarmActions"], json!([reference("AlertTopic")]));
    // The alert topic takes alarms named after the stack only.
    assert_eq!(alarm["AlarmName"], sub("${AWS::StackName}-canary"));
}

#[test]
fn the_canary_user_can_do_nothing_and_is_the_one_the_function_is_told_to_write_on() {
    let t = template();
    let user = &resource(&t, "CanaryUser")["Properties"];
    assert_eq!(user["UserName"], sub("${AWS::StackName}-canary"));
    assert_eq!(
        user["PermissionsBoundary"],
        sub("arn:${AWS::Partition}:iam::aws:policy/AWSDenyAll")
    );
    for grant in ["Policies", "ManagedPolicyArns", "LoginProfile", "Groups"] {
        assert!(user[grant].is_null(), "the canary user has {grant}");
    }
    let keys: Vec<&str> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::IAM::AccessKey")
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(keys.is_empty(), "access keys in the template: {keys:?}");
    let told = [
        &t["Globals"]["Function"]["Environment"]["Variables"],
        &resource(&t, "KillSwitchFunction")["Properties"]["Environment"]["Variables"],
    ]
    .into_iter()
    .find_map(|vars| vars.get("KILLSWITCH_CANARY_USER"))
    .expect("KILLSWITCH_CANARY_USER is not set on the function");
    assert_eq!(
        *told,
        json!({"Fn::If": ["Canary", reference("CanaryUser"), ""]})
    );
}
