//! Least privilege is code: the actions in template.yaml are exactly those the code declares.

use std::collections::BTreeSet;

use killswitch::playbook::{member_permissions, required_permissions};

/// Action strings a template allows (`Effect: Allow` statements) for the services the code calls.
/// KMS and Logs are used by SNS and Lambda on the function's behalf, not by its code; so are
/// these SQS actions, which Lambda's event source mapping calls to consume the follow-up queue.
fn template_actions() -> BTreeSet<String> {
    const LAMBDA_POLLER: [&str; 3] = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ];
    let mut granted = actions("template.yaml", "Allow");
    for a in LAMBDA_POLLER {
        assert!(
            granted.remove(a),
            "template.yaml lacks {a} for the follow-up queue"
        );
    }
    granted
}

/// The actions of one effect in a template, read statement by statement.
fn actions(file: &str, effect: &str) -> BTreeSet<String> {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut current = "";
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if let Some(e) = line.strip_prefix("Effect:") {
            current = if e.trim() == "Allow" { "Allow" } else { "Deny" };
            continue;
        }
        let Some(a) = line.strip_prefix("- ").map(|a| a.trim_matches('"')) else {
            continue;
        };
        let is_action = a.split_once(':').is_some_and(|(svc, action)| {
            [
                "iam",
                "sts",
                "cloudtrail",
                "sns",
                "ec2",
                "account",
                "sqs",
                "dynamodb",
                "securityhub",
                "guardduty",
                "kms",
                "organizations",
                "sso",
                "identitystore",
            ]
            .contains(&svc)
                && !action.is_empty()
                && action
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*')
        });
        if is_action && current == effect {
            out.insert(a.to_owned());
        }
    }
    out
}

#[test]
fn template_grants_exactly_the_declared_permissions() {
    let declared: BTreeSet<String> = required_permissions()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let granted = template_actions();
    let missing: Vec<_> = declared.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "code calls these but template.yaml does not grant them: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "template.yaml grants these but the code never calls them: {extra:?}"
    );
}

/// The exceptions to "no delete, no attach": attaching AWSDenyAll when a user's inline quota is
/// full, killswitch's own managed deny when a role's is, and removing the console password when
/// both of a user's quotas are (AWS's runbook).
const QUOTA_FALLBACKS: [&str; 4] = [
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:DeleteLoginProfile",
    "iam:PutUserPermissionsBoundary",
];

#[test]
fn the_function_never_gets_delete_or_attach_rights_in_iam() {
    for file in ["template.yaml", "member-role.yaml"] {
        for action in actions(file, "Allow")
            .into_iter()
            .filter(|a| a.starts_with("iam:") && !QUOTA_FALLBACKS.contains(&a.as_str()))
        {
            let writes_attachments = action.contains("Attach") && !action.contains(":ListAttached");
            // The one delete: an old version of the Identity Center deny policy, to stay under
            // IAM's 5 versions. Scoped to that policy below.
            let deny_policy_version = action == "iam:DeletePolicyVersion";
            assert!(
                (deny_policy_version || !action.contains("Delete"))
                    && !writes_attachments
                    && !action.ends_with('*'),
                "{file}: {action}"
            );
        }
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let versions: Vec<&str> = text
            .split("- Sid: ")
            .filter(|s| {
                s.contains("iam:DeletePolicyVersion") || s.contains("iam:CreatePolicyVersion")
            })
            .collect();
        assert_eq!(versions.len(), 2, "{file}: {versions:?}");
        assert!(
            versions[0].starts_with("KillSwitchRoleDenies")
                && versions[0].contains(
                    "Resource: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/killswitch/*\""
                ),
            "{file}: policy versions of killswitch's own role denies only: {}",
            versions[0]
        );
        assert!(
            versions[1].starts_with("DenyIdentityCenterUsers")
                && versions[1].contains(
                    "Resource: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${IdentityCenterPolicyName}\""
                ),
            "{file}: policy versions only on the deny policy: {}",
            versions[1]
        );
        let role_attach = text
            .split("- Sid: ")
            .find(|s| s.contains("iam:AttachRolePolicy") && !s.contains("Effect: Deny"))
            .unwrap_or_else(|| panic!("{file}: no statement grants iam:AttachRolePolicy"));
        assert!(
            role_attach.starts_with("AttachOnlyKillSwitchRoleDeny")
                && role_attach.contains(
                    "iam:PolicyARN: !Sub \"arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/killswitch/*\""
                )
                && role_attach
                    .lines()
                    .filter(|l| l.trim().starts_with("- iam:"))
                    .count()
                    == 1,
            "{file}: {role_attach}"
        );
        // The attach is granted for AWSDenyAll only, through the iam:PolicyARN condition.
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let statement = text
            .split("- Sid: ")
            .find(|s| s.contains("iam:AttachUserPolicy"))
            .unwrap_or_else(|| panic!("{file}: no statement grants iam:AttachUserPolicy"));
        let bound = text
            .split("- Sid: ")
            .find(|s| s.contains("iam:PutUserPermissionsBoundary"))
            .unwrap_or_else(|| {
                panic!("{file}: no statement grants iam:PutUserPermissionsBoundary")
            });
        assert!(
            bound.starts_with("BoundOnlyWithAWSDenyAll")
                && bound.contains("iam:PermissionsBoundary: !Sub \"arn:${AWS::Partition}:iam::aws:policy/AWSDenyAll\"")
                && bound.lines().filter(|l| l.trim().starts_with("- iam:")).count() == 1,
            "{file}: {bound}"
        );
        assert!(
            statement.starts_with("AttachOnlyAWSDenyAll")
                && statement.contains(
                    "iam:PolicyARN: !Sub \"arn:${AWS::Partition}:iam::aws:policy/AWSDenyAll\""
                )
                && statement
                    .lines()
                    .filter(|l| l.trim().starts_with("- iam:"))
                    .count()
                    == 1,
            "{file}: {statement}"
        );
    }
}

#[test]
fn assume_role_is_granted_for_the_listed_member_accounts_only() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    let statement = text
        .split("- Sid: ")
        .find(|s| s.starts_with("EnterMemberAccounts"))
        .unwrap();
    assert!(
        statement.contains("aws:ResourceAccount: !Split [\",\", !Ref MemberAccounts]"),
        "{statement}"
    );
    assert!(text.contains("MemberAccountsAreListed:"));
}

/// The permissions doc (its table, and its operators' list), where the README points.
fn permissions_doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/permissions.md")).unwrap()
}

#[test]
fn documented_permissions_table_matches_the_code() {
    let doc = permissions_doc();
    for action in required_permissions() {
        assert!(
            doc.contains(&format!("`{action}`")),
            "docs/permissions.md: the permissions table lacks {action}"
        );
    }
}

#[test]
fn operator_only_permissions_are_documented_and_never_granted_to_the_function() {
    let doc = permissions_doc();
    let operators = doc
        .split("## Operators")
        .nth(1)
        .expect("docs/permissions.md: the operators' section (## Operators)");
    let granted = template_actions();
    for action in killswitch::oncall::OPERATOR_PERMISSIONS {
        assert!(
            operators.contains(&format!("`{action}`")),
            "docs/permissions.md does not list the operator permission {action}"
        );
        // DeletePolicyVersion: the function's one delete, on the Identity Center deny policy
        // only (checked in the_function_never_gets_delete_or_attach_rights_in_iam).
        if action.starts_with("iam:")
            && action.contains("Delete")
            && action != "iam:DeletePolicyVersion"
        {
            assert!(
                !granted.contains(action),
                "the function must not be granted {action}"
            );
        }
    }
}

#[test]
fn member_role_grants_exactly_what_runs_in_a_member_account() {
    let declared: BTreeSet<String> = member_permissions()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let granted = actions("member-role.yaml", "Allow");
    assert_eq!(
        granted, declared,
        "member-role.yaml and killswitch::playbook::member_permissions() disagree"
    );
    assert!(
        !granted.contains("sns:Publish") && !granted.contains("sts:AssumeRole"),
        "notifying and entering accounts happen in the security account"
    );
}

#[test]
fn both_roles_deny_writes_to_themselves_and_the_member_role_demands_the_external_id() {
    for (file, own) in [
        ("template.yaml", "role/${AWS::StackName}-*"),
        ("member-role.yaml", "role/${MemberRoleName}"),
    ] {
        let denied = actions(file, "Deny");
        for action in [
            "iam:PutRolePolicy",
            "iam:AttachRolePolicy",
            "iam:UpdateAssumeRolePolicy",
            "iam:DeleteRole",
        ] {
            assert!(denied.contains(action), "{file} does not deny {action}");
        }
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            text.contains(own),
            "{file}: the deny does not cover its own role"
        );
    }
    let member =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/member-role.yaml")).unwrap();
    assert!(member.contains("sts:ExternalId: !Ref ExternalId"));
    assert!(member.contains("aws:PrincipalArn:"));
}

#[test]
fn the_timeout_the_function_checks_its_verification_delay_against_is_its_own() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    let timeout = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Timeout: "))
        .unwrap();
    assert!(
        text.contains(&format!(
            "KILLSWITCH_FUNCTION_TIMEOUT_SECONDS: \"{timeout}\""
        )),
        "KILLSWITCH_FUNCTION_TIMEOUT_SECONDS must equal the function's Timeout ({timeout})"
    );
    let max_delay: u64 = text
        .split("VerifyDelaySeconds:")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.trim().strip_prefix("MaxValue: ")))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        max_delay + killswitch::config::VERIFY_HEADROOM_SECS <= timeout.parse::<u64>().unwrap()
    );
}

#[test]
fn routing_cannot_silently_miss() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    // Health's global events arrive only in us-east-1 (backup us-west-2): elsewhere the stack
    // cannot be created with the Health trigger on.
    let rule = text
        .split("HealthEventsArriveOnlyInUsEast1OrUsWest2:")
        .nth(1)
        .expect("the Health Region rule");
    assert!(
        rule.contains(r#"RuleCondition: !Equals [!Ref EnableHealthTrigger, "true"]"#)
            && rule.contains(r#"!Contains [["us-east-1", "us-west-2"], !Ref "AWS::Region"]"#),
        "{rule}"
    );
    assert!(
        text.contains("KILLSWITCH_HEALTH_TRIGGER: !Ref EnableHealthTrigger"),
        "the function must refuse to start in the wrong Region too"
    );
    let health = text.split("HealthCredentialRiskRule:").nth(1).unwrap();
    assert!(health.contains("Condition: HealthTrigger"));
    // GuardDuty types by shape, never an exact list.
    let guardduty = text.split("GuardDutyAccessKeyFinding:").nth(1).unwrap();
    let pattern = guardduty.split("HealthCredentialRisk").next().unwrap();
    assert!(
        pattern.contains(r#"- wildcard: "*:IAMUser/*""#),
        "{pattern}"
    );
    assert!(!text.contains("GuardDutyFindingTypes"));
    // Security Hub: new, active findings only.
    let hub = text.split("SecurityHubFindingRule:").nth(1).unwrap();
    assert!(
        hub.contains(r#"Status: ["NEW"]"#) && hub.contains(r#"RecordState: ["ACTIVE"]"#),
        "{hub}"
    );
}

#[test]
fn the_quarantine_role_grants_exactly_what_the_quarantine_calls() {
    use killswitch::playbook::quarantine::{ORGANIZATIONS_PERMISSIONS, RESTORE_PERMISSIONS};
    let declared: BTreeSet<String> = ORGANIZATIONS_PERMISSIONS
        .iter()
        .chain(RESTORE_PERMISSIONS.iter())
        .map(|a| (*a).to_owned())
        .collect();
    assert_eq!(actions("quarantine-role.yaml", "Allow"), declared);
    // Writes only on SCPs tagged killswitch=quarantine, attachments only to accounts.
    let text = std::fs::read_to_string(format!(
        "{}/quarantine-role.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for sid in [
        "CreateOnlyTaggedQuarantinePolicies",
        "ChangeOnlyQuarantinePolicies",
    ] {
        let statement = text
            .split("- Sid: ")
            .find(|s| s.starts_with(sid))
            .unwrap_or_else(|| panic!("no {sid}"));
        assert!(
            statement.contains("service_control_policy/*"),
            "{statement}"
        );
        assert!(statement.contains("killswitch: quarantine"), "{statement}");
    }
    let targets = text
        .split("- Sid: ")
        .find(|s| s.starts_with("TargetAccountsOnly"))
        .unwrap();
    assert!(targets.contains(":account/o-*/*") && !targets.contains("root/"));
    // The function may assume only the configured quarantine role.
    let template =
        std::fs::read_to_string(format!("{}/template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let enter = template
        .split("- Sid: ")
        .find(|s| s.starts_with("EnterQuarantineRole"))
        .unwrap();
    assert!(enter.contains("!Ref QuarantineRoleArn"), "{enter}");
}

#[test]
fn the_identity_center_roles_grant_exactly_what_the_code_calls() {
    use killswitch::playbook::portal::{
        IDENTITY_CENTER_PERMISSIONS, REMOVE_PERMISSIONS, RESTORE_PERMISSIONS,
    };
    let text = std::fs::read_to_string(format!(
        "{}/identity-center-role.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (responder, restore) = text.split_once("  RestoreRole:").unwrap();
    let granted = |part: &str| -> BTreeSet<String> {
        part.lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("- "))
            .filter(|a| a.starts_with("sso:") || a.starts_with("identitystore:"))
            .map(str::to_owned)
            .collect()
    };
    let declared: BTreeSet<String> = IDENTITY_CENTER_PERMISSIONS
        .iter()
        .chain(REMOVE_PERMISSIONS.iter())
        .map(|a| (*a).to_owned())
        .collect();
    assert_eq!(granted(responder), declared);
    let declared: BTreeSet<String> = RESTORE_PERMISSIONS
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    assert_eq!(granted(restore), declared);
    // Putting an assignment back can grant anything anywhere: never the responder's.
    assert!(!responder.contains("sso:CreateAccountAssignment"));
    // Removal only when asked for (RemoveAssignments), and the Restore role trusts operators only.
    let remove = responder
        .split("- Sid: ")
        .find(|s| s.starts_with("RemoveDirectAssignments"))
        .unwrap();
    assert!(
        responder.contains("- CanRemove\n                - Sid: RemoveDirectAssignments"),
        "{remove}"
    );
    assert!(
        restore.contains("aws:PrincipalArn: !Ref OperatorRoleArns"),
        "{restore}"
    );
    assert!(!restore.contains("ResponderRoleName"), "{restore}");
    // The function may assume only the configured Identity Center role.
    let template =
        std::fs::read_to_string(format!("{}/template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let enter = template
        .split("- Sid: ")
        .find(|s| s.starts_with("EnterIdentityCenterRole"))
        .unwrap();
    assert!(enter.contains("!Ref IdentityCenterRoleArn"), "{enter}");
}

/// The `.rs` files under a directory of the crate, recursively, with their paths.
fn sources(dir: &str) -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let name = path
                    .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap()
                    .display()
                    .to_string();
                out.push((name, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        &mut out,
    );
    assert!(!out.is_empty(), "no sources under {dir}");
    out
}

/// The drill's harness (`src/aws/sandbox`, feature `drill`) builds its fixtures in the local
/// emulator with its own credentials: nothing deployed calls it.
const DRILL_HARNESS: &str = "src/aws/sandbox/";

/// Calls that need no permission at all.
const NEEDS_NO_PERMISSION: [&str; 1] = ["sts:GetCallerIdentity"];

/// One adapter function: the port it implements (`None`: a helper), its name, its file, and the
/// actions its body names (`aws_err("…")`, `op: "…"`, `missing("…", …)`: every string literal
/// shaped like an action).
struct AdapterFn {
    port: Option<String>,
    name: String,
    file: String,
    actions: BTreeSet<String>,
    body: String,
}

/// Every function in the adapters (`src/aws`, the drill's harness aside), split at each `fn`.
fn adapter_fns() -> Vec<AdapterFn> {
    let action = regex_lite::Regex::new(
        r#""((?:iam|sts|cloudtrail|sns|ec2|account|sqs|dynamodb|securityhub|organizations|sso|identitystore):[A-Za-z]+)""#,
    )
    .unwrap();
    let impl_block = regex_lite::Regex::new(r"^impl(?:<[^>]*>)? (?:(\w+) for )?\w+").unwrap();
    let fn_start =
        regex_lite::Regex::new(r"^\s*(?:pub(?:\([^)]*\))? )?(?:async )?fn (\w+)").unwrap();
    let mut out: Vec<AdapterFn> = Vec::new();
    for (file, text) in sources("src/aws") {
        if file.starts_with(DRILL_HARNESS) {
            continue;
        }
        let mut port: Option<String> = None;
        for line in text.lines() {
            if let Some(c) = impl_block.captures(line) {
                port = c.get(1).map(|m| m.as_str().to_owned());
                continue;
            }
            if line.starts_with('}') || line.starts_with("#[cfg(test)]") {
                // The end of an impl block (or the start of the tests): free functions follow.
                port = None;
            }
            if let Some(c) = fn_start.captures(line) {
                out.push(AdapterFn {
                    port: port.clone().filter(|_| line.starts_with("    ")),
                    name: c[1].to_owned(),
                    file: file.clone(),
                    actions: BTreeSet::new(),
                    body: String::new(),
                });
            }
            let Some(current) = out.last_mut().filter(|f| f.file == file) else {
                continue;
            };
            current.body.push_str(line);
            current.body.push('\n');
            for c in action.captures_iter(line) {
                current.actions.insert(c[1].to_owned());
            }
        }
    }
    out
}

/// Whether `text` calls a function of this name (`name(` after a non-identifier character).
fn calls(text: &str, name: &str) -> bool {
    let call = format!("{name}(");
    text.match_indices(&call).any(|(at, _)| {
        text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// The actions an adapter function calls: its own, and those of the helpers (functions outside
/// any port's impl) it calls, transitively.
fn actions_called(f: &AdapterFn, all: &[AdapterFn]) -> BTreeSet<String> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut todo = vec![f];
    let mut out = BTreeSet::new();
    while let Some(f) = todo.pop() {
        out.extend(f.actions.iter().cloned());
        for helper in all.iter().filter(|h| h.port.is_none()) {
            if helper.name != f.name && calls(&f.body, &helper.name) && seen.insert(&helper.name) {
                todo.push(helper);
            }
        }
    }
    out
}

#[test]
fn every_action_an_adapter_calls_is_granted_to_whoever_calls_it() {
    use killswitch::playbook::{portal, quarantine};
    let fns = adapter_fns();
    let labelled: BTreeSet<(&str, &str)> = fns
        .iter()
        .flat_map(|f| f.actions.iter().map(|a| (a.as_str(), f.file.as_str())))
        .collect();
    assert!(
        labelled.iter().any(|(a, _)| *a == "iam:UpdateAccessKey") && labelled.len() > 40,
        "the adapters' actions were not found: {labelled:?}"
    );
    let granted: BTreeSet<&str> = required_permissions()
        .into_iter()
        .chain(killswitch::oncall::OPERATOR_PERMISSIONS)
        .chain(quarantine::ORGANIZATIONS_PERMISSIONS)
        .chain(quarantine::RESTORE_PERMISSIONS)
        .chain(portal::IDENTITY_CENTER_PERMISSIONS)
        .chain(portal::REMOVE_PERMISSIONS)
        .chain(portal::RESTORE_PERMISSIONS)
        .chain(killswitch::doctor::PERMISSIONS.iter().copied())
        .chain(killswitch::ports::ROOT_ACCESS_PERMISSIONS)
        .chain(killswitch::ports::ROOT_SESSION_CALLS)
        .chain(NEEDS_NO_PERMISSION)
        .collect();
    let ungranted: Vec<String> = labelled
        .iter()
        .filter(|(a, _)| !granted.contains(a))
        .map(|(a, file)| format!("{a} (called in {file})"))
        .collect();
    assert!(
        ungranted.is_empty(),
        "the adapters call these but no role grants them (not the function, the operators, \
         the quarantine or the Identity Center roles): {ungranted:?}"
    );
}

/// The ports the responder calls with its own rights (or the member role's, which grants the same
/// steps): every action behind them is in `required_permissions()`. The Identity Center
/// directory and the SCPs are called through their roles; `Operator` only by `restore`.
#[test]
fn every_action_behind_a_port_the_playbook_calls_is_granted_to_the_function() {
    use killswitch::playbook::{portal, quarantine};
    let function: BTreeSet<&str> = required_permissions()
        .into_iter()
        .chain(NEEDS_NO_PERMISSION)
        .collect();
    let directory: BTreeSet<&str> = portal::IDENTITY_CENTER_PERMISSIONS
        .into_iter()
        .chain(portal::REMOVE_PERMISSIONS)
        .chain(portal::RESTORE_PERMISSIONS)
        .collect();
    let scps: BTreeSet<&str> = quarantine::ORGANIZATIONS_PERMISSIONS
        .into_iter()
        .chain(quarantine::RESTORE_PERMISSIONS)
        .collect();
    // The playbook's code, its tests aside.
    let playbook: String = sources("src/playbook")
        .into_iter()
        .map(|(_, text)| {
            text.split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let fns = adapter_fns();
    let mut checked = 0;
    let mut ungranted = Vec::new();
    for f in &fns {
        let Some(port) = f.port.as_deref() else {
            continue;
        };
        let (role, grants) = match port {
            "Identity"
            | "ActivityLog"
            | "IncidentStore"
            | "FollowUpQueue"
            | "Notifier"
            | "Findings"
            | "FindingSource"
            | "Accounts"
            | "Organization"
            | "IdentityCenterAdmin" => ("the function (required_permissions())", &function),
            "Directory" => (
                "the Identity Center role (portal::*_PERMISSIONS)",
                &directory,
            ),
            "ServiceControlPolicies" => ("the quarantine role (quarantine::*_PERMISSIONS)", &scps),
            // Through the quarantine role (`root-access-role.yaml`, `ROOT_ACCESS_PERMISSIONS`),
            // and then the root session AssumeRoot hands out, whose task policy grants
            // `ROOT_SESSION_CALLS` (tests/it/root_keys.rs ties both).
            "RootAccess" | "RootCredentials" => continue,
            // `restore`'s: checked against OPERATOR_PERMISSIONS above.
            "Operator" => continue,
            // `doctor`'s, run by an operator: checked against doctor::PERMISSIONS above and in
            // doctor's own tests.
            "Preflight" => continue,
            other => panic!(
                "{}: `impl {other}`: a port this test does not know; say whose rights call it",
                f.file
            ),
        };
        if !playbook.contains(&format!(".{}(", f.name)) {
            continue;
        }
        checked += 1;
        for action in actions_called(f, &fns) {
            if !grants.contains(action.as_str()) {
                ungranted.push(format!(
                    "{action} ({port}::{} in {}, called by the playbook; not granted to {role})",
                    f.name, f.file
                ));
            }
        }
    }
    assert!(
        checked > 20,
        "too few port methods found called by the playbook ({checked})"
    );
    assert!(ungranted.is_empty(), "{ungranted:#?}");
}
