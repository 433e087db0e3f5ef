//! The guard's document, read by a small evaluator of exactly the condition operators it uses
//! (an operator it does not know fails the test, so a new one must be modelled here first).

use super::*;

const ACCOUNT: &str = "111122223333";
const OTHER_ACCOUNT: &str = "444455556666";

fn exempt() -> Exempt {
    Exempt::parse(
        "killswitch-responder",
        "KillSwitchMember",
        "killswitch-restore",
        None,
    )
    .unwrap()
}

fn doc(e: &Exempt) -> Value {
    serde_json::from_str(&document(e, "aws")).unwrap()
}

/// One request as IAM sees it, with only the keys the guard reads.
#[derive(Clone, Default)]
struct Request<'a> {
    principal: String,
    /// `aws:userid`: `ROLE-ID:session` for a role session.
    userid: String,
    principal_tags: Vec<(&'a str, &'a str)>,
    action: &'a str,
    resource: String,
    resource_tags: Vec<(&'a str, &'a str)>,
    tag_keys: Vec<&'a str>,
}

fn user(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

fn role(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

fn admin() -> String {
    role(ACCOUNT, "Admin")
}

fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t) = if ignore_case {
        (pattern.to_lowercase(), text.to_lowercase())
    } else {
        (pattern.to_owned(), text.to_owned())
    };
    match p.split_once('*') {
        None => p == t,
        Some((head, rest)) => t.strip_prefix(head).is_some_and(|tail| {
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..], false))
        }),
    }
}

/// ARNs match component by component (`*` never spans a `:`).
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == a.len() && p.iter().zip(&a).all(|(p, a)| glob(p, a, false))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_owned()).collect(),
        other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_)) => {
            panic!("not a string or list: {other}")
        }
    }
}

fn tag<'a>(tags: &'a [(&str, &str)], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| *v)
}

fn holds(op: &str, key: &str, wanted: &Value, r: &Request) -> bool {
    let wanted = strings(wanted);
    let value = |key: &str| -> Option<String> {
        let lower = key.to_ascii_lowercase();
        if let Some(k) = lower.strip_prefix("aws:principaltag/") {
            tag(&r.principal_tags, k).map(str::to_owned)
        } else if let Some(k) = lower.strip_prefix("aws:resourcetag/") {
            tag(&r.resource_tags, k).map(str::to_owned)
        } else if lower == "aws:principalarn" {
            Some(r.principal.clone())
        } else {
            panic!("the evaluator does not know {key}")
        }
    };
    match op {
        "Null" => (wanted == ["true"]) == value(key).is_none(),
        "ArnNotLike" => !value(key).is_some_and(|v| wanted.iter().any(|w| arn_like(w, &v))),
        // The one policy variable the guard uses; a request without it matches nothing.
        "StringLike" => value(key).is_some_and(|v| {
            !r.userid.is_empty()
                && wanted
                    .iter()
                    .any(|w| glob(&w.replace("${aws:userid}", &r.userid), &v, false))
        }),
        "ForAnyValue:StringEqualsIgnoreCase" => {
            assert_eq!(key, "aws:TagKeys");
            r.tag_keys
                .iter()
                .any(|k| wanted.iter().any(|w| w.eq_ignore_ascii_case(k)))
        }
        other => panic!("the evaluator does not model {other}"),
    }
}

fn applies(s: &Value, r: &Request) -> bool {
    assert_eq!(s["Effect"], "Deny", "the guard only denies: {s}");
    assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
    let action = strings(&s["Action"])
        .iter()
        .any(|a| glob(a, r.action, true));
    let resource = strings(&s["Resource"])
        .iter()
        .any(|p| p == "*" || arn_like(p, &r.resource));
    let conditions = s["Condition"].as_object().unwrap();
    action
        && resource
        && conditions.iter().all(|(op, keys)| {
            keys.as_object()
                .unwrap()
                .iter()
                .all(|(k, w)| holds(op, k, w, r))
        })
}

/// The Sids of the statements that deny `r`.
fn denied_by(d: &Value, r: &Request) -> Vec<String> {
    d["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| applies(s, r))
        .map(|s| s["Sid"].as_str().unwrap().to_owned())
        .collect()
}

fn denied(d: &Value, r: &Request) -> bool {
    !denied_by(d, r).is_empty()
}

fn contained() -> Vec<(&'static str, &'static str)> {
    vec![(CONTAINED_TAG_KEY, "inc-1")]
}

#[test]
fn a_contained_user_and_every_session_it_minted_are_denied_everything() {
    let d = doc(&exempt());
    for action in [
        "s3:GetObject",
        "iam:DeleteUserPolicy",
        "iam:UpdateAccessKey",
        "sts:AssumeRole",
        "iam:CreateAccessKey",
    ] {
        for value in ["inc-1", "", "anything the holder chose"] {
            let r = Request {
                principal: user("leaky"),
                principal_tags: vec![(CONTAINED_TAG_KEY, value)],
                action,
                resource: user("someone-else"),
                ..Request::default()
            };
            assert!(
                denied_by(&d, &r).contains(&"KillSwitchGuardContained".to_owned()),
                "{action} {value:?}"
            );
        }
    }
    // A session tag of another case is the same key: IAM tag keys are case-insensitive.
    let r = Request {
        principal: user("leaky"),
        principal_tags: vec![("KillSwitch-Contained", "x")],
        action: "s3:GetObject",
        resource: "arn:aws:s3:::b/k".into(),
        ..Request::default()
    };
    assert!(denied(&d, &r));
}

#[test]
fn a_principal_without_the_tags_is_unaffected() {
    let d = doc(&exempt());
    for (action, resource, tags) in [
        ("s3:GetObject", "arn:aws:s3:::b/k".to_owned(), vec![]),
        ("iam:DeleteUserPolicy", user("bob"), vec![]),
        ("iam:UpdateAccessKey", user("bob"), vec![("team", "x")]),
        ("iam:PutRolePolicy", role(ACCOUNT, "app"), vec![]),
        ("iam:CreateRole", role(ACCOUNT, "app"), vec![]),
        ("iam:TagUser", user("bob"), vec![]),
    ] {
        let r = Request {
            principal: user("bob"),
            principal_tags: vec![("team", "x")],
            action,
            resource,
            resource_tags: tags,
            tag_keys: vec!["team"],
            userid: "AIDABOBEXAMPLE".into(),
        };
        assert!(!denied(&d, &r), "{action}: {:?}", denied_by(&d, &r));
    }
}

#[test]
fn no_one_else_can_set_or_remove_either_tag_key() {
    let d = doc(&exempt());
    for action in TAGGING {
        for key in [
            CONTAINED_TAG_KEY,
            GUARDED_TAG_KEY,
            "KILLSWITCH-CONTAINED",
            "Killswitch-Guarded",
        ] {
            let mut r = Request {
                principal: admin(),
                action,
                resource: user("leaky"),
                tag_keys: vec!["team", key],
                ..Request::default()
            };
            assert!(
                denied_by(&d, &r).contains(&"KillSwitchGuardTagKeys".to_owned()),
                "{action} {key}"
            );
            // Not even the contained user's own minted session, nor a role in another account.
            r.principal = role(OTHER_ACCOUNT, "ci");
            assert!(denied(&d, &r), "{action} {key} from another account");
        }
        let other_key = Request {
            principal: admin(),
            action,
            resource: user("bob"),
            tag_keys: vec!["team"],
            ..Request::default()
        };
        assert!(!denied(&d, &other_key), "{action} with another key");
    }
}

#[test]
fn no_one_else_can_edit_a_contained_user() {
    let d = doc(&exempt());
    for action in CONTAINED_USER_WRITES {
        let r = Request {
            principal: admin(),
            action,
            resource: user("leaky"),
            resource_tags: contained(),
            ..Request::default()
        };
        assert_eq!(
            denied_by(&d, &r),
            ["KillSwitchGuardContainedUser"],
            "{action}"
        );
        let untagged = Request {
            resource_tags: vec![],
            ..r.clone()
        };
        assert!(!denied(&d, &untagged), "{action} on an untagged user");
    }
}

#[test]
fn a_guarded_role_keeps_its_deny_and_trust_and_its_workloads_keep_running() {
    let d = doc(&exempt());
    let guarded = vec![(GUARDED_TAG_KEY, "inc-1")];
    for action in GUARDED_ROLE_WRITES {
        let r = Request {
            principal: admin(),
            action,
            resource: role(ACCOUNT, "app"),
            resource_tags: guarded.clone(),
            ..Request::default()
        };
        assert_eq!(
            denied_by(&d, &r),
            ["KillSwitchGuardGuardedRole"],
            "{action}"
        );
    }
    // Its sessions are principals carrying the guarded tag: only the contained tag denies all.
    for action in ["iam:PassRole", "sts:AssumeRole", "s3:GetObject"] {
        let r = Request {
            principal: role(ACCOUNT, "app"),
            principal_tags: guarded.clone(),
            action,
            resource: role(ACCOUNT, "app"),
            resource_tags: guarded.clone(),
            ..Request::default()
        };
        assert!(!denied(&d, &r), "{action}: {:?}", denied_by(&d, &r));
    }
}

#[test]
fn killswitchs_own_roles_and_policies_are_written_by_nobody_else() {
    let e = Exempt::parse(
        "killswitch-responder",
        "KillSwitchMember",
        "killswitch-restore",
        Some("StackSetExec"),
    )
    .unwrap();
    let d = doc(&e);
    for name in [
        "killswitch-responder",
        "KillSwitchMember",
        "killswitch-restore",
        "StackSetExec",
    ] {
        for account in [ACCOUNT, OTHER_ACCOUNT] {
            for action in OWN_ROLE_WRITES {
                let mut r = Request {
                    principal: admin(),
                    action,
                    resource: role(account, name),
                    ..Request::default()
                };
                assert_eq!(denied_by(&d, &r), ["KillSwitchGuardOwnRoles"], "{action}");
                r.principal = role(account, "StackSetExec");
                assert!(!denied(&d, &r), "the deployer may {action} {name}");
            }
        }
    }
    for action in OWN_POLICY_WRITES {
        let r = Request {
            principal: admin(),
            action,
            resource: format!(
                "arn:aws:iam::{ACCOUNT}:policy/killswitch/KillSwitchDenySessions-app"
            ),
            ..Request::default()
        };
        assert_eq!(denied_by(&d, &r), ["KillSwitchGuardOwnPolicies"]);
    }
    // The deployer is exempt from nothing else.
    let untag = Request {
        principal: role(ACCOUNT, "StackSetExec"),
        action: "iam:UntagUser",
        resource: user("leaky"),
        tag_keys: vec![CONTAINED_TAG_KEY],
        ..Request::default()
    };
    assert!(denied(&d, &untag));
    // Without a deployer, no deployer appears.
    assert!(!document(&exempt(), "aws").contains("StackSetExec"));
}

#[test]
fn no_statement_can_deny_the_responder_member_or_restore_role() {
    for e in [
        exempt(),
        Exempt {
            deployer: Some("d".into()),
            ..exempt()
        },
    ] {
        let d = doc(&e);
        let arns = e.principal_arns("aws");
        for s in d["Statement"].as_array().unwrap() {
            let spared = strings(&s["Condition"]["ArnNotLike"]["aws:PrincipalArn"]);
            assert!(arns.iter().all(|a| spared.contains(a)), "{s}");
        }
        let actions: Vec<&str> = [
            &TAGGING[..],
            &CONTAINED_USER_WRITES,
            &GUARDED_ROLE_WRITES,
            &OWN_ROLE_WRITES,
            &OWN_POLICY_WRITES,
            &["s3:GetObject", "sts:AssumeRole"],
        ]
        .concat();
        for name in [&e.responder, &e.member, &e.restore] {
            for account in [ACCOUNT, OTHER_ACCOUNT] {
                for &action in &actions {
                    let r = Request {
                        principal: role(account, name),
                        userid: "AROARESPONDER:killswitch".into(),
                        principal_tags: vec![
                            (CONTAINED_TAG_KEY, "x"),
                            (GUARDED_TAG_KEY, "/AROARESPONDER:killswitch/"),
                        ],
                        action,
                        resource: role(account, &e.member),
                        resource_tags: vec![(CONTAINED_TAG_KEY, "x"), (GUARDED_TAG_KEY, "x")],
                        tag_keys: vec![CONTAINED_TAG_KEY, GUARDED_TAG_KEY],
                    };
                    assert!(!denied(&d, &r), "{name} {action}");
                }
            }
        }
    }
}

/// Through the API (CLI, SDK, CloudFormation) whitespace counts: the compact document fits with
/// the longest names IAM allows. (Indented, it does not: `guard-policy`
/// indents only when the result still fits.)
#[test]
fn the_document_fits_organizations_limit() {
    let long = "a".repeat(64);
    let longest = Exempt::parse(&long, &long, &long, Some(&long)).unwrap();
    for partition in ["aws", "aws-us-gov", "aws-iso-b"] {
        let compact = document(&longest, partition);
        assert!(compact.len() <= MAX_SCP_CHARS, "{}", compact.len());
        assert!(compact.is_ascii());
    }
}

#[test]
fn names_that_are_not_role_names_are_refused() {
    for bad in ["*", "killswitch-*", "a/b", "", "x?", &"a".repeat(65), "a b"] {
        assert!(Exempt::parse(bad, "m", "r", None).is_err(), "{bad:?}");
        assert!(Exempt::parse("r", "m", "r", Some(bad)).is_err(), "{bad:?}");
    }
    for good in ["aws", "aws-cn", "aws-us-gov", "aws-iso-b"] {
        assert!(is_partition(good), "{good}");
    }
    for bad in ["", "awsx", "aws-", "aws-*", "AWS", "aws--cn", "gcp"] {
        assert!(!is_partition(bad), "{bad}");
    }
}

#[test]
fn a_role_is_never_given_the_contained_tag() {
    let role_plans = [
        Plan::Role {
            role: "app".into(),
            cutoff: None,
            session: Some("AROAX:i-1".into()),
        },
        Plan::Role {
            role: "app".into(),
            cutoff: Some(chrono::Utc::now()),
            session: None,
        },
    ];
    for plan in &role_plans {
        assert_eq!(tag_key(plan), Some(GUARDED_TAG_KEY));
    }
    let user = Plan::User {
        user: "leaky".into(),
        deactivate: true,
        deny: crate::vocab::Deny::Inline,
        replaced_boundary: None,
    };
    assert_eq!(tag_key(&user), Some(CONTAINED_TAG_KEY));
    let portal = Plan::Portal {
        role: "AWSReservedSSO_Admin_0123456789abcdef".into(),
        user: "alice".into(),
        session: "AROAX:alice".into(),
        user_id: None,
        policy_arn: "arn:aws:iam::111122223333:policy/p".into(),
    };
    assert_eq!(tag_key(&portal), None);
    // Two keys IAM cannot confuse (tag keys compare case-insensitively).
    assert!(!CONTAINED_TAG_KEY.eq_ignore_ascii_case(GUARDED_TAG_KEY));
    // And a guarded tag alone denies no request of a role's sessions.
    let d = doc(&exempt());
    let session = Request {
        principal: role(ACCOUNT, "app"),
        principal_tags: vec![(GUARDED_TAG_KEY, "inc-1")],
        action: "s3:GetObject",
        resource: "arn:aws:s3:::b/k".into(),
        ..Request::default()
    };
    assert!(!denied(&d, &session));
}

#[test]
fn a_session_the_guarded_tag_lists_is_denied_everything_and_the_roles_others_are_not() {
    let d = doc(&exempt());
    let listed = "/AROAAPPEXAMPLE:i-0leaked/AROAAPPEXAMPLE:ci/";
    let session = |name: &str| Request {
        principal: role(ACCOUNT, "app"),
        userid: format!("AROAAPPEXAMPLE:{name}"),
        principal_tags: vec![(GUARDED_TAG_KEY, listed)],
        action: "s3:GetObject",
        ..Request::default()
    };
    let sid = "KillSwitchGuardDeniedSessions".to_string();
    assert!(denied_by(&d, &session("i-0leaked")).contains(&sid));
    assert!(denied_by(&d, &session("ci")).contains(&sid));
    for name in ["i-0leak", "0leaked", "c"] {
        assert!(!denied(&d, &session(name)), "{name}");
    }
}
