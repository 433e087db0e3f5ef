//! The deny policy's document: one statement per condition key, under killswitch's Sids, and
//! what it reads back from a policy anyone with IAM rights in the account may have edited.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const SID_USERS: &str = "KillSwitchIdentityCenterUsers";
const SID_SESSIONS: &str = "KillSwitchIdentityCenterSessions";

/// One denied principal in the policy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// Every session of an Identity Center user (`identitystore:UserId`).
    User { user_id: String },
    /// One permission set's sessions of the user (`aws:userid` = `ROLE-ID:user-name`).
    Session { userid: String },
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::User { user_id } => write!(f, "identitystore:UserId {user_id}"),
            Entry::Session { userid } => write!(f, "aws:userid {userid}"),
        }
    }
}

/// The entries a portal plan denies.
pub fn entries(session: &str, user_id: Option<&str>) -> Vec<Entry> {
    let mut out = vec![Entry::Session {
        userid: session.to_owned(),
    }];
    if let Some(id) = user_id {
        out.push(Entry::User {
            user_id: id.to_owned(),
        });
    }
    out
}

/// Identity store user IDs: `[0-9a-f-]` and an optional `NNNNNNNNNN-` store prefix.
fn is_user_id(id: &str) -> bool {
    (1..=47).contains(&id.len()) && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn is_userid(u: &str) -> bool {
    u.split_once(':').is_some_and(|(id, session)| {
        crate::trigger::is_role_id(id) && crate::trigger::is_session_name(session)
    })
}

/// What the deny policy holds: our entries, the statements not ours (the set-up placeholder,
/// anything an administrator added: kept untouched), and whether a statement under our Sids is
/// not exactly what we write (a decoy or an edit that may deny nobody: rewritten, never trusted).
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub others: Vec<Value>,
    pub tampered: bool,
}

pub fn parse(document: &str) -> Parsed {
    let Ok(doc) = serde_json::from_str::<Value>(document) else {
        return Parsed {
            tampered: true,
            ..Parsed::default()
        };
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let mut out = Parsed::default();
    for st in statements {
        let sid = st.get("Sid").and_then(Value::as_str).unwrap_or("");
        let (key, make): (&str, fn(String) -> Entry) = match sid {
            SID_USERS => ("identitystore:UserId", |user_id| Entry::User { user_id }),
            SID_SESSIONS => ("aws:userid", |userid| Entry::Session { userid }),
            _ => {
                // Every permission set references this policy: an Allow planted here would grant
                // its access to all of them. Only denies are kept; anything else is dropped.
                if st.get("Effect").and_then(Value::as_str) == Some("Deny") {
                    out.others.push(st);
                } else {
                    out.tampered = true;
                }
                continue;
            }
        };
        let values: Vec<String> = match st.pointer(&format!("/Condition/StringEquals/{key}")) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let valid: Vec<String> = values
            .into_iter()
            .filter(|v| {
                if sid == SID_USERS {
                    is_user_id(v)
                } else {
                    is_userid(v)
                }
            })
            .collect();
        let found: Vec<Entry> = valid.into_iter().map(make).collect();
        let canonical: Value = serde_json::from_str(&document_for(&found, &[])).unwrap_or_default();
        if !canonical["Statement"]
            .as_array()
            .is_some_and(|c| c.len() == 1 && c[0] == st)
        {
            out.tampered = true;
        }
        out.entries.extend(found);
    }
    out.entries.sort();
    out.entries.dedup();
    out
}

/// The policy document: the others first, then one statement per condition key (compact).
pub fn document_for(entries: &[Entry], others: &[Value]) -> String {
    let deny = |sid: &str, key: &str, values: Vec<&str>| {
        json!({"Sid": sid, "Effect": "Deny", "Action": "*", "Resource": "*",
               "Condition": {"StringEquals": {key: values}}})
    };
    let mut statements: Vec<Value> = others.to_vec();
    let users: Vec<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::User { user_id } => Some(user_id.as_str()),
            Entry::Session { .. } => None,
        })
        .collect();
    if !users.is_empty() {
        statements.push(deny(SID_USERS, "identitystore:UserId", users));
    }
    let sessions: Vec<&str> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Session { userid } => Some(userid.as_str()),
            Entry::User { .. } => None,
        })
        .collect();
    if !sessions.is_empty() {
        statements.push(deny(SID_SESSIONS, "aws:userid", sessions));
    }
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// IAM counts a managed policy's size without whitespace.
pub(super) fn size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

pub(super) fn list(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}
