//! org-guard.yaml, `killswitch guard-policy` and `killswitch::policy::guard::document` are one
//! document: the template's SCP with its parameters substituted, and the command's output, equal
//! the function's, so a change to one that the others lack fails here.

use crate::template_guard::yaml;

use std::collections::BTreeMap;
use std::process::Command;

use killswitch::policy::guard::{self, Exempt};
use serde_json::{Value, json};

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/org-guard.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    yaml::parse(&text).unwrap_or_else(|e| panic!("org-guard.yaml: {e}"))
}

/// The template's one SCP resource.
fn policy(t: &Value) -> &Value {
    let found: Vec<&Value> = t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Organizations::Policy")
        .collect();
    assert_eq!(
        found.len(),
        1,
        "org-guard.yaml: one AWS::Organizations::Policy"
    );
    assert_eq!(found[0]["Properties"]["Type"], "SERVICE_CONTROL_POLICY");
    found[0]
}

/// What CloudFormation makes of `v` with these parameters: `!Sub` and `!Ref` substituted, an
/// `!If` on HasDeployer decided, `AWS::NoValue` dropped. Anything else is refused, so the
/// template cannot grow a construct this test does not understand.
fn resolve(v: &Value, params: &BTreeMap<&str, &str>) -> Option<Value> {
    let param = |name: &str| -> String {
        (*params
            .get(name)
            .unwrap_or_else(|| panic!("org-guard.yaml: unknown parameter {name}")))
        .to_owned()
    };
    match v {
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(|i| resolve(i, params)).collect(),
        )),
        Value::Object(o) => {
            if let Some(Value::String(s)) = o.get("Fn::Sub") {
                let mut out = s.clone();
                while let Some(start) = out.find("${") {
                    let end = start + out[start..].find('}').unwrap();
                    let value = param(&out[start + 2..end]);
                    out.replace_range(start..=end, &value);
                }
                return Some(Value::String(out));
            }
            if let Some(Value::String(r)) = o.get("Ref") {
                return (r != "AWS::NoValue").then(|| Value::String(param(r)));
            }
            if let Some(Value::Array(branches)) = o.get("Fn::If") {
                assert_eq!(
                    branches[0], "HasDeployer",
                    "org-guard.yaml: unknown condition"
                );
                let has = !param("DeployerRoleName").is_empty();
                return resolve(&branches[if has { 1 } else { 2 }], params);
            }
            assert!(
                !o.keys().any(|k| k.starts_with("Fn::")),
                "org-guard.yaml: {v} is not understood here"
            );
            Some(Value::Object(
                o.iter()
                    .filter_map(|(k, v)| resolve(v, params).map(|v| (k.clone(), v)))
                    .collect(),
            ))
        }
        other => Some(other.clone()),
    }
}

fn params<'a>(deployer: &'a str, partition: &'a str) -> BTreeMap<&'a str, &'a str> {
    BTreeMap::from([
        ("AWS::Partition", partition),
        ("ResponderRoleName", "ks-responder"),
        ("MemberRoleName", "KsMember"),
        ("RestoreRoleName", "ks-restore"),
        ("DeployerRoleName", deployer),
    ])
}

#[test]
fn the_templates_scp_is_the_guard_document_with_its_parameters() {
    let t = template();
    assert_eq!(
        t["Conditions"]["HasDeployer"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "DeployerRoleName"}, ""]}]})
    );
    let content = &policy(&t)["Properties"]["Content"];
    for (deployer, partition) in [("", "aws"), ("StackSetExec", "aws-us-gov")] {
        let from_template = resolve(content, &params(deployer, partition)).unwrap();
        let exempt = Exempt::parse(
            "ks-responder",
            "KsMember",
            "ks-restore",
            (!deployer.is_empty()).then_some(deployer),
        )
        .unwrap();
        let from_code: Value = serde_json::from_str(&guard::document(&exempt, partition)).unwrap();
        assert_eq!(from_template, from_code, "deployer {deployer:?}");
    }
}

#[test]
fn the_template_accepts_exactly_the_role_names_the_code_accepts() {
    let t = template();
    for name in [
        "ResponderRoleName",
        "MemberRoleName",
        "RestoreRoleName",
        "DeployerRoleName",
    ] {
        let p = &t["Parameters"][name];
        let pattern = p["AllowedPattern"].as_str().unwrap();
        let re = regex_lite::Regex::new(pattern).unwrap();
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for candidate in [
            "killswitch-responder",
            "a+=,.@_-Z9",
            long.as_str(),
            too_long.as_str(),
            "a*",
            "a/b",
            "a b",
            "x?",
        ] {
            assert_eq!(
                re.is_match(candidate),
                guard::is_role_name(candidate),
                "{name} {candidate:?}"
            );
        }
        let empty_ok = name == "DeployerRoleName";
        assert_eq!(re.is_match(""), empty_ok, "{name} and an empty name");
    }
    assert_eq!(
        policy(&t)["Properties"]["TargetIds"],
        json!({"Ref": "TargetIds"})
    );
    assert_eq!(t["Parameters"]["TargetIds"]["Type"], "CommaDelimitedList");
}

fn guard_policy(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_killswitch"))
        .arg("guard-policy")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn guard_policy_prints_the_same_document() {
    let names = [
        "--responder-role",
        "ks-responder",
        "--member-role",
        "KsMember",
        "--restore-role",
        "ks-restore",
    ];
    let out = guard_policy(&names);
    assert!(out.status.success(), "{out:?}");
    let exempt = Exempt::parse("ks-responder", "KsMember", "ks-restore", None).unwrap();
    // Piped: compact, exactly what the API counts.
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim_end(),
        guard::document(&exempt, "aws")
    );
    let with = guard_policy(
        &[
            &names[..],
            &["--deployer-role", "d", "--partition", "aws-cn"],
        ]
        .concat(),
    );
    assert!(with.status.success(), "{with:?}");
    let exempt = Exempt::parse("ks-responder", "KsMember", "ks-restore", Some("d")).unwrap();
    assert_eq!(
        String::from_utf8(with.stdout).unwrap().trim_end(),
        guard::document(&exempt, "aws-cn")
    );
    for bad in [
        vec![
            "--responder-role",
            "ks-*",
            "--member-role",
            "m",
            "--restore-role",
            "r",
        ],
        [&names[..], &["--partition", "aws-*"]].concat(),
        [&names[..], &["--deployer-role", "a/b"]].concat(),
    ] {
        let out = guard_policy(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
}
