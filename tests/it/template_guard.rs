//! The responder cannot be switched off or blinded by one call: what template.yaml's key,
//! topic, queue and table policies, alarms and EventBridge rules say, read statically (neither
//! the local AWS nor moto evaluates these resource policies). See docs/protecting.md.

/// The project's small YAML reader, shared by every test that reads a template.
pub(crate) mod yaml;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

const RESPONDER: &str =
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-responder";
const RESTORE: &str = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-restore";
const INCIDENT_RESPONSE: &str = "${IncidentResponseRoleArn}";
const BREAK_GLASS: &str = "${BreakGlassPrincipalArn}";
/// What the operators' deny names when there is no restore role: a role that cannot exist.
const NO_OPERATOR: &str =
    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/killswitch-no-operator-role";
const ALERT_TOPIC: &str = "${AlertTopic}";
const CLOUDTRAIL_CALL: &str = "AWS API Call via CloudTrail";
/// The item IDs `killswitch restore` writes (the restore log and the two leases).
const RESTORE_ITEMS: [&str; 3] = [
    "restores#*",
    "quarantine-lease#*",
    "identity-center-lease#*",
];

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    yaml::parse(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

fn resources(t: &Value) -> &Map<String, Value> {
    t["Resources"]
        .as_object()
        .expect("template.yaml: Resources")
}

fn of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    resources(t)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(name, r)| (name.as_str(), r))
        .collect()
}

/// What a value stands for, as text: `!Ref X` is `${X}`, `!GetAtt A.B` is `${A.B}`, `!Sub s` is
/// `s`; an `!If` is both its branches (`AWS::NoValue` is nothing), a list its items.
fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(texts).collect(),
        Value::Object(o) => {
            if let Some(r) = o.get("Ref").and_then(Value::as_str) {
                return if r == "AWS::NoValue" {
                    vec![]
                } else {
                    vec![format!("${{{r}}}")]
                };
            }
            if let Some(Value::Array(att)) = o.get("Fn::GetAtt") {
                let parts: Vec<&str> = att.iter().filter_map(Value::as_str).collect();
                return vec![format!("${{{}}}", parts.join("."))];
            }
            if let Some(sub) = o.get("Fn::Sub") {
                return match sub {
                    Value::Array(a) => a.first().map(texts).unwrap_or_default(),
                    other => texts(other),
                };
            }
            if let Some(Value::Array(branches)) = o.get("Fn::If") {
                return branches.iter().skip(1).flat_map(texts).collect();
            }
            vec![v.to_string()]
        }
        Value::Null => vec![],
        Value::Bool(_) | Value::Number(_) => vec![v.to_string()],
    }
}

fn text_set(v: &Value) -> BTreeSet<String> {
    texts(v).into_iter().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A policy's statements; one wrapped in `!If` counts as its statement (the branch that is not
/// `AWS::NoValue`).
fn statements(document: &Value) -> Vec<&Value> {
    let list: Vec<&Value> = match &document["Statement"] {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    list.into_iter()
        .filter_map(|s| match s.get("Fn::If") {
            Some(Value::Array(b)) => b.iter().skip(1).find(|x| x.get("Ref").is_none()),
            _ => Some(s),
        })
        .collect()
}

fn actions(statement: &Value) -> BTreeSet<String> {
    text_set(&statement["Action"])
}

/// Whether `pattern` (an IAM action or resource with `*` wildcards) matches `text`.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

fn covers(statement: &Value, action: &str) -> bool {
    actions(statement).iter().any(|a| glob(a, action))
}

/// A condition's values: `operator` → `key`.
fn condition(statement: &Value, operator: &str, key: &str) -> Option<BTreeSet<String>> {
    statement["Condition"].get(operator)?.get(key).map(text_set)
}

/// The (operator, key) pairs of a statement's condition.
fn condition_keys(statement: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    if let Some(ops) = statement["Condition"].as_object() {
        for (op, keys) in ops {
            for key in keys.as_object().into_iter().flat_map(|k| k.keys()) {
                out.insert((op.clone(), key.clone()));
            }
        }
    }
    out
}

fn everyone(statement: &Value) -> bool {
    statement["Principal"] == "*" || statement["Principal"]["AWS"] == "*"
}

/// Who a policy still lets call `action` despite its denies: the principals every deny of
/// `action` to everyone (`Principal: "*"`, no condition but `ArnNotEquals aws:PrincipalArn`
/// and those in `also`) spares. `None`: no such deny, everyone may.
fn spared(document: &Value, action: &str, also: &[(&str, &str)]) -> Option<BTreeSet<String>> {
    let mut allowed: BTreeSet<(String, String)> = also
        .iter()
        .map(|(o, k)| ((*o).to_owned(), (*k).to_owned()))
        .collect();
    allowed.insert(("ArnNotEquals".into(), "aws:PrincipalArn".into()));
    statements(document)
        .into_iter()
        .filter(|s| s["Effect"] == "Deny" && everyone(s) && covers(s, action))
        .filter(|s| condition_keys(s).is_subset(&allowed))
        .map(|s| condition(s, "ArnNotEquals", "aws:PrincipalArn").unwrap_or_default())
        .reduce(|a, b| a.intersection(&b).cloned().collect())
}

fn assert_spares(document: &Value, what: &str, action: &str, expected: &BTreeSet<String>) {
    let spared = spared(document, action, &[]);
    assert_eq!(
        spared.as_ref(),
        Some(expected),
        "{what}: {action} must be denied to everyone but {expected:?}"
    );
}

/// The resource a `${Name}` or `${Name.Arn}` text names, if it is one of the template's.
fn named<'a>(t: &'a Value, text: &str) -> Option<(&'a str, &'a Value)> {
    let name = text.strip_prefix("${")?.strip_suffix('}')?;
    let name = name.split('.').next()?;
    resources(t)
        .get_key_value(name)
        .map(|(k, v)| (k.as_str(), v))
}

/// The policy document of the resource policy of `kind` attached to `resource`.
fn policy_of<'a>(t: &'a Value, kind: &str, list: &str, resource: &str) -> &'a Value {
    let found: Vec<&Value> = of_type(t, kind)
        .into_iter()
        .filter(|(_, p)| text_set(&p["Properties"][list]).contains(resource))
        .map(|(_, p)| &p["Properties"]["PolicyDocument"])
        .collect();
    assert_eq!(
        found.len(),
        1,
        "template.yaml: exactly one {kind} for {resource}, found {}",
        found.len()
    );
    found[0]
}

fn customer_keys(t: &Value) -> Vec<(&str, &Value)> {
    let keys = of_type(t, "AWS::KMS::Key");
    assert!(!keys.is_empty(), "template.yaml declares no customer key");
    keys
}

#[test]
fn every_customer_key_denies_disabling_deleting_and_repolicying_to_all_but_the_break_glass_principal()
 {
    let t = template();
    let parameter = &t["Parameters"]["BreakGlassPrincipalArn"];
    assert!(
        parameter.is_object() && parameter.get("Default").is_none(),
        "BreakGlassPrincipalArn must be a required parameter: {parameter}"
    );
    for (name, key) in of_type(&t, "AWS::KMS::Key") {
        let policy = &key["Properties"]["KeyPolicy"];
        for action in [
            "kms:DisableKey",
            "kms:ScheduleKeyDeletion",
            "kms:PutKeyPolicy",
            "kms:CreateGrant",
        ] {
            assert_spares(policy, name, action, &set(&[BREAK_GLASS]));
        }
    }
}

#[test]
fn the_record_key_signs_for_the_responder_alone_and_is_an_output() {
    let t = template();
    let hmac: Vec<(&str, &Value)> = customer_keys(&t)
        .into_iter()
        .filter(|(_, k)| k["Properties"]["KeySpec"] == "HMAC_256")
        .collect();
    assert_eq!(hmac.len(), 1, "one HMAC_256 key signs the records");
    let (name, key) = hmac[0];
    assert_eq!(key["Properties"]["KeyUsage"], "GENERATE_VERIFY_MAC");
    assert_spares(
        &key["Properties"]["KeyPolicy"],
        name,
        "kms:GenerateMac",
        &set(&[RESPONDER]),
    );
    let arn = format!("${{{name}.Arn}}");
    let responder = &resources(&t)["ResponderRole"]["Properties"]["Policies"][0]["PolicyDocument"];
    let grants = statements(responder)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow" && text_set(&s["Resource"]).contains(&arn))
        .flat_map(actions)
        .collect::<BTreeSet<_>>();
    assert_eq!(grants, set(&["kms:GenerateMac", "kms:VerifyMac"]));
    let outputs = t["Outputs"].as_object().expect("Outputs");
    assert!(
        outputs
            .values()
            .any(|o| text_set(&o["Value"]).contains(&arn)),
        "no output gives {arn}"
    );
}

/// Whether a resource's properties name one of the template's customer keys anywhere.
fn names_a_customer_key(t: &Value, resource: &Value) -> Option<String> {
    let keys: Vec<&str> = of_type(t, "AWS::KMS::Key")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    fn walk(v: &Value, keys: &[&str]) -> Option<String> {
        match v {
            Value::Object(o) => {
                let refs = texts(v);
                if (o.contains_key("Ref")
                    || o.contains_key("Fn::GetAtt")
                    || o.contains_key("Fn::Sub"))
                    && let Some(k) = keys.iter().find(|k| {
                        refs.iter().any(|r| {
                            r.contains(&format!("${{{k}}}")) || r.contains(&format!("${{{k}."))
                        })
                    })
                {
                    return Some((*k).to_owned());
                }
                o.values().find_map(|x| walk(x, keys))
            }
            Value::Array(a) => a.iter().find_map(|x| walk(x, keys)),
            _ => None,
        }
    }
    walk(&resource["Properties"], &keys)
}

#[test]
fn the_function_starts_and_keeps_its_queues_table_and_logs_whichever_key_is_disabled() {
    let t = template();
    for kind in [
        "AWS::Serverless::Function",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::Logs::LogGroup",
        "AWS::SNS::Topic",
    ] {
        for (name, resource) in of_type(&t, kind) {
            assert_eq!(
                names_a_customer_key(&t, resource),
                None,
                "{name} ({kind}) depends on a customer key: one kms:DisableKey stops it"
            );
        }
    }
}

/// What an alarm or rule target needs to deliver: a topic's or a function's encryption key.
fn target_key(t: &Value, target: &str) -> Result<Option<String>, String> {
    let Some((name, resource)) = named(t, target) else {
        return Err(format!("{target} is not a resource of the template"));
    };
    let properties = &resource["Properties"];
    Ok(match resource["Type"].as_str() {
        Some("AWS::SNS::Topic") => properties
            .get("KmsMasterKeyId")
            .map(|k| format!("{name}: {k}")),
        Some("AWS::Serverless::Function") => {
            properties.get("KmsKeyArn").map(|k| format!("{name}: {k}"))
        }
        other => return Err(format!("{target} is a {other:?}")),
    })
}

#[test]
fn every_alarm_and_rule_reaches_its_target_whichever_key_is_disabled() {
    let t = template();
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(!alarms.is_empty());
    for (name, alarm) in alarms {
        let actions = texts(&alarm["Properties"]["AlarmActions"]);
        assert!(!actions.is_empty(), "{name} notifies no one");
        for action in actions {
            assert_eq!(
                target_key(&t, &action),
                Ok(None),
                "{name} publishes to {action}, which a disabled key silences"
            );
        }
    }
    for (name, rule) in of_type(&t, "AWS::Events::Rule") {
        for target in rule["Properties"]["Targets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for arn in texts(&target["Arn"]) {
                assert_eq!(
                    target_key(&t, &arn),
                    Ok(None),
                    "{name} delivers to {arn}, which a disabled key stops"
                );
            }
        }
    }
    // The function's own EventBridge and SQS triggers (SAM events) go to the function.
    assert_eq!(target_key(&t, "${KillSwitchFunction}"), Ok(None));
}

#[test]
fn the_alert_topic_takes_messages_only_from_the_responder_its_operators_and_this_stacks_alarms_and_rules()
 {
    let t = template();
    let policy = policy_of(&t, "AWS::SNS::TopicPolicy", "Topics", ALERT_TOPIC);
    // Services: CloudWatch for this stack's alarms, EventBridge for its rules, nothing else.
    let mut services = BTreeSet::new();
    for s in statements(policy)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
    {
        let service = s["Principal"]["Service"].as_str().unwrap_or_default();
        let source = condition(s, "ArnLike", "aws:SourceArn").unwrap_or_default();
        let expected = match service {
            "cloudwatch.amazonaws.com" => {
                "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*"
            }
            "events.amazonaws.com" => {
                "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/${AWS::StackName}-*"
            }
            other => panic!("the topic policy allows {other:?}: {s}"),
        };
        assert_eq!(actions(s), set(&["sns:Publish"]), "{s}");
        assert_eq!(source, set(&[expected]), "{s}");
        services.insert(service.to_owned());
    }
    assert_eq!(
        services,
        set(&["cloudwatch.amazonaws.com", "events.amazonaws.com"])
    );
    // Every IAM principal but the responder and the operators is refused.
    let publishers = spared(
        policy,
        "sns:Publish",
        &[("Bool", "aws:PrincipalIsAWSService")],
    )
    .expect("no statement denies sns:Publish to everyone else");
    assert!(
        publishers.contains(RESPONDER)
            && publishers.is_subset(&set(&[RESPONDER, RESTORE, INCIDENT_RESPONSE])),
        "{publishers:?}"
    );
    let publish_deny = statements(policy)
        .into_iter()
        .find(|s| s["Effect"] == "Deny" && covers(s, "sns:Publish"))
        .unwrap();
    assert_eq!(
        condition(publish_deny, "Bool", "aws:PrincipalIsAWSService"),
        Some(set(&["false"]))
    );
    for action in [
        "sns:SetTopicAttributes",
        "sns:DeleteTopic",
        "sns:AddPermission",
        "sns:RemovePermission",
        "sns:PutDataProtectionPolicy",
    ] {
        assert_spares(policy, "the alert topic", action, &set(&[BREAK_GLASS]));
    }
    // The ARNs the two Allow statements admit: every alarm and paging rule is named after
    // the stack.
    for (name, alarm) in of_type(&t, "AWS::CloudWatch::Alarm") {
        let alarm_name = text_set(&alarm["Properties"]["AlarmName"]);
        assert!(
            alarm_name.len() == 1
                && alarm_name
                    .iter()
                    .all(|n| n.starts_with("${AWS::StackName}-")),
            "{name}: AlarmName {alarm_name:?}"
        );
    }
    for (name, rule) in paging_rules(&t) {
        let rule_name = text_set(&rule["Properties"]["Name"]);
        assert!(
            rule_name.len() == 1
                && rule_name
                    .iter()
                    .all(|n| n.starts_with("${AWS::StackName}-")),
            "{name}: Name {rule_name:?}"
        );
    }
}

#[test]
fn the_follow_up_queue_is_sent_to_read_deleted_and_purged_by_the_responder_alone() {
    let t = template();
    let policy = policy_of(&t, "AWS::SQS::QueuePolicy", "Queues", "${FollowUpQueue}");
    for action in [
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:PurgeQueue",
    ] {
        assert_spares(policy, "the follow-up queue", action, &set(&[RESPONDER]));
    }
    // The queue's own configuration (its policy among it) is the break-glass principal's.
    for action in [
        "sqs:SetQueueAttributes",
        "sqs:DeleteQueue",
        "sqs:AddPermission",
        "sqs:RemovePermission",
    ] {
        assert_spares(policy, "the follow-up queue", action, &set(&[BREAK_GLASS]));
    }
    assert!(
        statements(policy).iter().all(|s| s["Effect"] == "Deny"),
        "the follow-up queue's policy grants nothing"
    );
}

#[test]
fn the_alarmed_queues_cannot_be_emptied_before_their_alarms_sample_them() {
    let t = template();
    for queue in ["${FailedInvocations}", "${FollowUpDeadLetters}"] {
        let policy = policy_of(&t, "AWS::SQS::QueuePolicy", "Queues", queue);
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:PurgeQueue",
        ] {
            assert_spares(
                policy,
                queue,
                action,
                &set(&[BREAK_GLASS, INCIDENT_RESPONSE]),
            );
        }
        for action in ["sqs:SetQueueAttributes", "sqs:DeleteQueue"] {
            assert_spares(policy, queue, action, &set(&[BREAK_GLASS]));
        }
    }
}

fn table_policy(t: &Value) -> &Value {
    &resources(t)["IncidentTable"]["Properties"]["ResourcePolicy"]["PolicyDocument"]
}

#[test]
fn the_incident_table_refuses_partiql_writes_and_table_changes_to_everyone_else() {
    let t = template();
    let policy = table_policy(&t);
    for action in [
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ] {
        assert_spares(policy, "the incident table", action, &set(&[RESPONDER]));
    }
    for action in [
        "dynamodb:DeleteTable",
        "dynamodb:UpdateTable",
        "dynamodb:UpdateTimeToLive",
        "dynamodb:UpdateContinuousBackups",
        "dynamodb:PutResourcePolicy",
        "dynamodb:DeleteResourcePolicy",
    ] {
        assert_spares(policy, "the incident table", action, &set(&[BREAK_GLASS]));
    }
    for action in [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ] {
        assert_spares(
            policy,
            "the incident table",
            action,
            &set(&[RESPONDER, RESTORE, INCIDENT_RESPONSE]),
        );
    }
}

/// Each item-ID prefix restore writes, with where the code builds it.
fn restore_item_sources() -> [(&'static str, &'static str); 3] {
    [
        ("restores#", "src/record/mod.rs"),
        ("quarantine-lease#", "src/playbook/quarantine/mod.rs"),
        ("identity-center-lease#", "src/playbook/portal/mod.rs"),
    ]
}

#[test]
fn operators_may_write_only_the_items_restore_writes() {
    for (prefix, file) in restore_item_sources() {
        let code =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            code.contains(&format!("format!(\"{prefix}")),
            "{file} no longer builds {prefix} item IDs: update RESTORE_ITEMS and template.yaml"
        );
    }
    let t = template();
    let operators = set(&[RESTORE, NO_OPERATOR, INCIDENT_RESPONSE]);
    let writes = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ];
    let denies: Vec<&Value> = statements(table_policy(&t))
        .into_iter()
        .filter(|s| {
            s["Effect"] == "Deny"
                && everyone(s)
                && writes.iter().all(|a| covers(s, a))
                && condition(s, "ArnEquals", "aws:PrincipalArn").as_ref() == Some(&operators)
        })
        .collect();
    let prefixes = denies
        .iter()
        .find_map(|s| condition(s, "ForAnyValue:StringNotLike", "dynamodb:LeadingKeys"));
    assert_eq!(
        prefixes,
        Some(set(&RESTORE_ITEMS)),
        "the table must deny the operators' writes to items but restore's"
    );
    assert!(
        denies
            .iter()
            .any(|s| condition(s, "Null", "dynamodb:LeadingKeys") == Some(set(&["true"]))),
        "a write that names no key must be denied to operators too"
    );
    // The restore role's own grant says the same.
    let role = restore_role(&t);
    let table_writes: Vec<&Value> =
        statements(&role["Properties"]["Policies"][0]["PolicyDocument"])
            .into_iter()
            .filter(|s| {
                s["Effect"] == "Allow" && actions(s).iter().any(|a| a.starts_with("dynamodb:Put"))
            })
            .collect();
    assert_eq!(table_writes.len(), 1);
    let grant = table_writes[0];
    assert_eq!(
        actions(grant),
        set(&["dynamodb:PutItem", "dynamodb:DeleteItem"])
    );
    assert_eq!(
        condition(grant, "ForAllValues:StringLike", "dynamodb:LeadingKeys"),
        Some(set(&RESTORE_ITEMS))
    );
    assert_eq!(
        condition(grant, "Null", "dynamodb:LeadingKeys"),
        Some(set(&["false"]))
    );
}

fn restore_role(t: &Value) -> &Value {
    resources(t)
        .get("RestoreRole")
        .expect("template.yaml: the operators' RestoreRole")
}

#[test]
fn the_restore_role_demands_mfa_lasts_an_hour_and_pages_on_every_use() {
    let t = template();
    let role = restore_role(&t);
    assert_eq!(role["Condition"], "HasRestoreRole");
    assert_eq!(t["Parameters"]["RestoreOperatorArns"]["Default"], "");
    let properties = &role["Properties"];
    let hours: u64 = properties["MaxSessionDuration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(hours <= 3600, "MaxSessionDuration {hours}");
    let trust = statements(&properties["AssumeRolePolicyDocument"]);
    assert!(!trust.is_empty());
    for s in trust.into_iter().filter(|s| s["Effect"] == "Allow") {
        assert_eq!(
            condition(s, "Bool", "aws:MultiFactorAuthPresent"),
            Some(set(&["true"])),
            "{s}"
        );
        assert_eq!(
            text_set(&s["Principal"]["AWS"]),
            set(&["${RestoreOperatorArns}"])
        );
    }
    let pages: Vec<&str> = paging_rules(&t)
        .into_iter()
        .filter(|(_, r)| {
            r["Properties"]["State"] == "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
                && matches_call(
                    r,
                    &Call::new("sts.amazonaws.com", "AssumeRole")
                        .with("roleArn", "${RestoreRole.Arn}"),
                )
        })
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        pages.len(),
        1,
        "one rule pages every AssumeRole of the restore role (read-only events included)"
    );
}

#[test]
fn the_restore_role_grants_what_restore_calls() {
    let t = template();
    let document = &restore_role(&t)["Properties"]["Policies"][0]["PolicyDocument"];
    let mut granted: BTreeSet<String> = BTreeSet::new();
    for s in statements(document)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
    {
        for a in actions(s) {
            if a.contains('*') {
                // The policy-version actions on killswitch's own policies only.
                assert_eq!(a, "iam:*PolicyVersion*", "{s}");
                assert!(
                    texts(&s["Resource"])
                        .iter()
                        .all(|r| r.contains(":policy/${IdentityCenterPolicyName}")
                            || r.ends_with(":policy/killswitch/*")),
                    "{s}"
                );
            }
            granted.insert(a);
        }
    }
    // KMS data keys are SNS's, on restore's behalf (an encrypted chat topic).
    granted.retain(|a| a != "kms:GenerateDataKey" && a != "kms:Decrypt");
    let declared: BTreeSet<String> = killswitch::oncall::OPERATOR_PERMISSIONS
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    let missing: Vec<&String> = declared
        .iter()
        .filter(|d| !granted.iter().any(|g| glob(g, d)))
        .collect();
    let extra: Vec<&String> = granted
        .iter()
        .filter(|g| !declared.iter().any(|d| glob(g, d)))
        .collect();
    assert!(
        missing.is_empty(),
        "restore calls these, the role lacks them: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "the role grants what restore never calls: {extra:?}"
    );
}

/// One CloudTrail management event, as EventBridge sees it: the fields a pattern may name.
struct Call {
    fields: BTreeMap<String, String>,
}

impl Call {
    fn new(event_source: &str, event_name: &str) -> Self {
        let service = event_source.split('.').next().unwrap_or_default();
        let source = match service {
            "monitoring" => "aws.cloudwatch".to_owned(),
            other => format!("aws.{other}"),
        };
        let fields = [
            ("detail-type", CLOUDTRAIL_CALL),
            ("source", source.as_str()),
            ("detail.eventSource", event_source),
            ("detail.eventName", event_name),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Call { fields }
    }

    fn with(mut self, parameter: &str, value: &str) -> Self {
        self.fields.insert(
            format!("detail.requestParameters.{parameter}"),
            value.to_owned(),
        );
        self
    }
}

/// A pattern's alternatives, `$or` expanded: each the dotted field paths it names, with their
/// matchers.
fn alternatives(pattern: &Value, path: &str) -> Vec<BTreeMap<String, Vec<Value>>> {
    let mut out = vec![BTreeMap::new()];
    let Some(fields) = pattern.as_object() else {
        return out;
    };
    for (key, value) in fields {
        let branches: Vec<BTreeMap<String, Vec<Value>>> = if key == "$or" {
            value
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|alt| alternatives(alt, path))
                .collect()
        } else if let Some(list) = value.as_array() {
            let matchers = list
                .iter()
                .flat_map(|m| match m.get("Fn::If") {
                    Some(Value::Array(b)) => b.iter().skip(1).cloned().collect(),
                    _ => vec![m.clone()],
                })
                .filter(|m| m.get("Ref") != Some(&Value::from("AWS::NoValue")))
                .collect();
            vec![BTreeMap::from([(format!("{path}{key}"), matchers)])]
        } else {
            alternatives(value, &format!("{path}{key}."))
        };
        out = out
            .iter()
            .flat_map(|a| {
                branches.iter().map(move |b| {
                    let mut merged = a.clone();
                    merged.extend(b.clone());
                    merged
                })
            })
            .collect();
    }
    out
}

/// Whether one matcher of an event pattern matches `value`.
fn matcher_matches(matcher: &Value, value: &str) -> bool {
    let one = |key: &str| matcher.get(key).map(texts).unwrap_or_default();
    if let Some(prefix) = one("prefix").first() {
        value.starts_with(prefix.as_str())
    } else if let Some(suffix) = one("suffix").first() {
        value.ends_with(suffix.as_str())
    } else if let Some(pattern) = one("wildcard").first() {
        glob(pattern, value)
    } else {
        texts(matcher).iter().any(|t| t == value)
    }
}

fn matches_call(rule: &Value, call: &Call) -> bool {
    alternatives(&rule["Properties"]["EventPattern"], "")
        .iter()
        .any(|alt| {
            alt.iter().all(|(path, matchers)| {
                call.fields
                    .get(path)
                    .is_some_and(|v| matchers.iter().any(|m| matcher_matches(m, v)))
            })
        })
}

/// The enabled rules that page on-call with CloudTrail management events.
fn paging_rules(t: &Value) -> Vec<(&str, &Value)> {
    of_type(t, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, r)| {
            let p = &r["Properties"];
            p["State"] != "DISABLED"
                && text_set(&p["EventPattern"]["detail-type"]).contains(CLOUDTRAIL_CALL)
                && p["Targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|tg| text_set(&tg["Arn"]).contains(ALERT_TOPIC))
        })
        .collect()
}

/// The rules that page on `call`.
fn paged_by<'a>(t: &'a Value, call: &Call) -> Vec<&'a str> {
    paging_rules(t)
        .into_iter()
        .filter(|(_, r)| matches_call(r, call))
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn a_page_goes_out_for_every_one_call_switch_off() {
    let t = template();
    let mut calls: Vec<Call> = Vec::new();
    // Lambda's event names carry an API version; callers name a function by name or ARN.
    for (name, function) in [
        (
            "UpdateFunctionConfiguration20150331v2",
            "${KillSwitchFunction}",
        ),
        ("PutFunctionConcurrency20171031", "${KillSwitchFunction}"),
        ("DeleteFunction20150331", "${KillSwitchFunction.Arn}"),
        ("UpdateFunctionCode20150331v2", "${KillSwitchFunction}"),
        ("RemovePermission20150331v2", "${KillSwitchFunction}"),
    ] {
        calls.push(Call::new("lambda.amazonaws.com", name).with("functionName", function));
    }
    calls.push(
        Call::new("lambda.amazonaws.com", "UpdateEventSourceMapping20150331")
            .with("uUID", "${KillSwitchFunctionFollowUps}"),
    );
    // Every rule of the stack, and one SAM names for the GuardDuty trigger.
    let mut rule_names = vec!["${AWS::StackName}-KillSwitchFunctionGuardDuty-1A2B3C".to_owned()];
    for (_, rule) in of_type(&t, "AWS::Events::Rule") {
        rule_names.extend(texts(&rule["Properties"]["Name"]));
    }
    for rule in &rule_names {
        calls.push(Call::new("events.amazonaws.com", "DisableRule").with("name", rule));
        calls.push(Call::new("events.amazonaws.com", "RemoveTargets").with("rule", rule));
    }
    for (key, _) in customer_keys(&t) {
        for name in ["DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy"] {
            calls.push(Call::new("kms.amazonaws.com", name).with("keyId", &format!("${{{key}}}")));
            calls.push(
                Call::new("kms.amazonaws.com", name).with("keyId", &format!("${{{key}.Arn}}")),
            );
        }
    }
    for name in ["PutResourcePolicy", "DeleteResourcePolicy"] {
        calls.push(
            Call::new("dynamodb.amazonaws.com", name).with("resourceArn", "${IncidentTable.Arn}"),
        );
    }
    for name in ["DeleteTable", "UpdateTimeToLive"] {
        calls.push(Call::new("dynamodb.amazonaws.com", name).with("tableName", "${IncidentTable}"));
    }
    for name in ["SetQueueAttributes", "PurgeQueue"] {
        calls.push(Call::new("sqs.amazonaws.com", name).with(
            "queueUrl",
            "https://sqs.${AWS::Region}.amazonaws.com/${AWS::AccountId}/${FollowUpQueue.QueueName}",
        ));
    }
    calls.push(Call::new("sns.amazonaws.com", "SetTopicAttributes").with("topicArn", ALERT_TOPIC));
    calls.push(Call::new("sns.amazonaws.com", "Unsubscribe").with(
        "subscriptionArn",
        "${AlertTopic}:0f1e2d3c-aaaa-bbbb-cccc-0123456789ab",
    ));
    for (_, alarm) in of_type(&t, "AWS::CloudWatch::Alarm") {
        for name in texts(&alarm["Properties"]["AlarmName"]) {
            calls.push(
                Call::new("monitoring.amazonaws.com", "DisableAlarmActions")
                    .with("alarmNames", &name),
            );
        }
    }
    let unseen: Vec<String> = calls
        .iter()
        .filter(|c| paged_by(&t, c).is_empty())
        .map(|c| format!("{:?}", c.fields))
        .collect();
    assert!(
        unseen.is_empty(),
        "no rule pages on:\n{}",
        unseen.join("\n")
    );
}

#[test]
fn no_single_disable_rule_blinds_the_watch() {
    let t = template();
    let rules = paging_rules(&t);
    assert!(
        rules.len() > 1,
        "no rules page on-call with CloudTrail management events"
    );
    for (name, rule) in rules {
        for rule_name in texts(&rule["Properties"]["Name"]) {
            let disabled =
                Call::new("events.amazonaws.com", "DisableRule").with("name", &rule_name);
            let watchers: Vec<&str> = paged_by(&t, &disabled)
                .into_iter()
                .filter(|w| *w != name)
                .collect();
            assert!(
                !watchers.is_empty(),
                "disabling {name} ({rule_name}) pages no other rule"
            );
        }
    }
}

#[test]
fn follow_ups_that_wait_or_vanish_page_on_call() {
    let t = template();
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    let on_follow_ups = |metric: &str| {
        alarms
            .iter()
            .filter(|(_, a)| {
                let p = &a["Properties"];
                let single = p["MetricName"] == metric
                    && text_set(&p["Dimensions"][0]["Value"])
                        .contains("${FollowUpQueue.QueueName}");
                let math = p["Metrics"].as_array().into_iter().flatten().any(|m| {
                    m["MetricStat"]["Metric"]["MetricName"] == metric
                        && text_set(&m["MetricStat"]["Metric"]["Dimensions"][0]["Value"])
                            .contains("${FollowUpQueue.QueueName}")
                });
                (single || math) && text_set(&p["AlarmActions"]).contains(ALERT_TOPIC)
            })
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
    };
    assert!(
        !on_follow_ups("ApproximateAgeOfOldestMessage").is_empty(),
        "no alarm on follow-ups that wait (the event source mapping off, no concurrency)"
    );
    let sent = on_follow_ups("NumberOfMessagesSent");
    let deleted = on_follow_ups("NumberOfMessagesDeleted");
    assert!(
        sent.iter().any(|a| deleted.contains(a)),
        "no alarm compares follow-ups sent with follow-ups run (a purge, a stranger's receive)"
    );
}
