//! Least privilege is code: the actions in template.yaml are exactly those the code declares.

use std::collections::BTreeSet;

use killswitch::playbook::required_permissions;

/// Action strings in the template for the services the code calls (KMS is for the encrypted
/// topic, used by SNS on our behalf, not by our code).
fn template_actions() -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|a| a.trim_matches('"'))
        .filter(|a| {
            a.split_once(':').is_some_and(|(svc, action)| {
                ["iam", "sts", "cloudtrail", "sns", "ec2", "account"].contains(&svc)
                    && !action.is_empty()
                    && action
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '*')
            })
        })
        .map(str::to_owned)
        .collect()
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

#[test]
fn the_function_never_gets_delete_or_attach_rights() {
    for action in template_actions() {
        assert!(
            !action.contains("Delete") && !action.contains("Attach") && !action.ends_with('*'),
            "{action}"
        );
    }
}

#[test]
fn readme_permissions_table_matches_the_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for action in required_permissions() {
        assert!(
            readme.contains(&format!("`{action}`")),
            "README permissions table lacks {action}"
        );
    }
}

#[test]
fn operator_only_permissions_are_documented_and_never_granted_to_the_function() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let granted = template_actions();
    for action in killswitch::oncall::OPERATOR_PERMISSIONS {
        assert!(
            readme.contains(&format!("`{action}`")),
            "README does not list the operator permission {action}"
        );
        if action.contains("Delete") {
            assert!(
                !granted.contains(action),
                "the function must not be granted {action}"
            );
        }
    }
}
