//! The quarantine policy's document: what killswitch writes for each entry, and what it reads
//! back from a policy anyone in the management account may have edited.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::record::Entry;
use crate::vocab::Arn;

const SID_PRINCIPALS: &str = "KillSwitchQuarantinePrincipals";
const SID_SESSIONS: &str = "KillSwitchQuarantineSessions";
const SID_ROLE: &str = "KillSwitchQuarantineRole";

/// `ARN/NAME` and `ARN/*/NAME`: the name with any path, and nothing else (IAM names are
/// unique in an account; `*` cannot stand for the `/` before the name).
fn arn_patterns(partition: &str, account: &str, kind: &str, name: &str) -> [String; 2] {
    [
        format!("arn:{partition}:iam::{account}:{kind}/{name}"),
        format!("arn:{partition}:iam::{account}:{kind}/*/{name}"),
    ]
}

/// What a quarantine policy holds: our entries, the statements not ours (kept untouched), and
/// whether a statement under one of our Sids is not exactly what we write (a decoy or an edit:
/// it may deny nothing, so it never counts as standing and is rewritten).
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub others: Vec<Value>,
    pub tampered: bool,
}

fn is_iam_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

fn is_userid(u: &str) -> bool {
    u.split_once(':').is_some_and(|(id, session)| {
        id.starts_with("AROA")
            && id.len() <= 128
            && id.chars().all(|c| c.is_ascii_alphanumeric())
            && (2..=64).contains(&session.len())
            && session
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
    })
}

/// Reads a policy document: names are checked against IAM's rules (a wildcard would deny a
/// whole account) and each statement of ours against what [`document`] writes for it.
pub fn parse(content: &str, partition: &str, account: &str) -> Parsed {
    let Ok(doc) = serde_json::from_str::<Value>(content) else {
        return Parsed {
            tampered: true,
            ..Parsed::default()
        };
    };
    let mut out = Parsed::default();
    let statements = doc
        .get("Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Exactly `arn:PARTITION:iam::ACCOUNT:KIND/NAME`: no path, no wildcard.
    let name_of = |arn: &str, kind: &str| {
        Arn::parse(arn)
            .filter(|a| {
                (a.partition, a.service, a.region, a.account) == (partition, "iam", "", account)
            })
            .and_then(|a| a.of_type(kind))
            .filter(|n| is_iam_name(n))
            .map(str::to_owned)
    };
    let strings = |st: &Value, pointer: &str| -> Vec<String> {
        match st.pointer(pointer) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    for st in statements {
        let sid = st.get("Sid").and_then(Value::as_str).unwrap_or("");
        let found: Vec<Entry> = if sid == SID_PRINCIPALS {
            strings(&st, "/Condition/ArnLike/aws:PrincipalArn")
                .iter()
                .filter_map(|a| name_of(a, "user"))
                .map(|name| Entry::User { name })
                .collect()
        } else if sid == SID_SESSIONS {
            strings(&st, "/Condition/StringEquals/aws:userid")
                .into_iter()
                .filter(|u| is_userid(u))
                .map(|userid| Entry::Session { userid })
                .collect()
        } else if sid.starts_with(SID_ROLE) {
            let cutoff = strings(&st, "/Condition/DateLessThan/aws:TokenIssueTime")
                .first()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            let name = strings(&st, "/Condition/ArnLike/aws:PrincipalArn")
                .iter()
                .find_map(|a| name_of(a, "role"));
            match (name, cutoff) {
                (Some(name), Some(cutoff)) => vec![Entry::RoleBefore { name, cutoff }],
                _ => Vec::new(),
            }
        } else {
            out.others.push(st);
            continue;
        };
        // Ours only if it is exactly what we would write for what it names.
        let canonical: Value =
            serde_json::from_str(&document(partition, account, &found, &[])).unwrap_or(Value::Null);
        let exact = canonical["Statement"]
            .as_array()
            .is_some_and(|c| c.len() == 1 && same_statement(&c[0], &st));
        if !exact {
            out.tampered = true;
        }
        out.entries.extend(found);
    }
    out.entries.sort();
    out.entries.dedup();
    out
}

/// Equal but for the Sid's index of a role statement (its position may differ).
fn same_statement(ours: &Value, theirs: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("Sid");
        }
        v
    };
    strip(ours) == strip(theirs)
}

/// The policy document for these entries: compact (Organizations counts whitespace).
pub fn document(partition: &str, account: &str, entries: &[Entry], others: &[Value]) -> String {
    let deny = |sid: String, condition: Value| json!({"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*", "Condition": condition});
    let mut statements: Vec<Value> = others.to_vec();
    let users: Vec<String> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::User { name } => Some(arn_patterns(partition, account, "user", name)),
            Entry::Session { .. } | Entry::RoleBefore { .. } => None,
        })
        .flatten()
        .collect();
    if !users.is_empty() {
        statements.push(deny(
            SID_PRINCIPALS.into(),
            json!({"ArnLike": {"aws:PrincipalArn": users}}),
        ));
    }
    let sessions: Vec<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Session { userid } => Some(userid.as_str()),
            Entry::User { .. } | Entry::RoleBefore { .. } => None,
        })
        .collect();
    if !sessions.is_empty() {
        statements.push(deny(
            SID_SESSIONS.into(),
            json!({"StringEquals": {"aws:userid": sessions}}),
        ));
    }
    for (i, e) in entries.iter().enumerate() {
        if let Entry::RoleBefore { name, cutoff } = e {
            statements.push(deny(
                format!("{SID_ROLE}{i}"),
                json!({
                    "ArnLike": {"aws:PrincipalArn": arn_patterns(partition, account, "role", name)},
                    "DateLessThan": {"aws:TokenIssueTime": cutoff.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)},
                }),
            ));
        }
    }
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}
