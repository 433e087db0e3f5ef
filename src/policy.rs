//! The inline policies killswitch writes, and how it reads them back. Pure functions.
//!
//! Fixed names, so repeats overwrite instead of stacking (a timestamped name per incident would
//! overflow the 2,048-character inline quota of a user).
//!
//! [`guard`]: the organization's static guard (an SCP deployed before any incident) and the tag
//! keys containment writes for it.

pub mod guard;

use std::collections::BTreeSet;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};

/// Inline policy on a user: deny everything, so every session the user minted dies too.
pub const USER_POLICY_NAME: &str = "KillSwitchDenyAll";
/// Inline policy on a role: deny sessions issued before a cutoff (what the console's
/// "Revoke active sessions" does, under our own name so `restore` removes only what we placed).
pub const ROLE_POLICY_NAME: &str = "KillSwitchRevokeOlderSessions";

/// `Deny * on *`.
pub fn deny_all() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KillSwitchDenyAll",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*"
        }]
    })
    .to_string()
}

/// Deny every request signed with credentials issued before `cutoff`.
pub fn revoke_older_sessions(cutoff: DateTime<Utc>) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KillSwitchRevokeOlderSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": format_cutoff(cutoff)}}
        }]
    })
    .to_string()
}

/// The cutoff to write for a response happening at `now`: the next whole second, so that sessions
/// minted during the current second are revoked too.
pub fn cutoff_for(now: DateTime<Utc>) -> DateTime<Utc> {
    let floor = now.duration_trunc(TimeDelta::seconds(1)).unwrap_or(now);
    if floor == now {
        floor
    } else {
        floor + TimeDelta::seconds(1)
    }
}

pub fn format_cutoff(cutoff: DateTime<Utc>) -> String {
    cutoff.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// What to do with a role's revocation policy, given what is there now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutoffDecision {
    /// Write this cutoff (none yet, or the existing one is older).
    Write(DateTime<Utc>),
    /// Keep the existing cutoff: it is already at or after ours. Never move it backwards.
    Keep(DateTime<Utc>),
}

pub fn decide_cutoff(existing: Option<DateTime<Utc>>, wanted: DateTime<Utc>) -> CutoffDecision {
    match existing {
        Some(current) if current >= wanted => CutoffDecision::Keep(current),
        _ => CutoffDecision::Write(wanted),
    }
}

/// A cutoff only in the forms killswitch and the console write (`…:SSZ`, `…:SS.mmmZ`): RFC 3339
/// allows spellings (a space, lower-case `t`/`z`, offsets, leap seconds) that IAM may not read the
/// way chrono does, and a planted cutoff must never be taken for one that bites.
fn canonical_time(raw: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(raw).ok()?.with_timezone(&Utc);
    let forms = [
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    ];
    forms.contains(&raw.to_owned()).then_some(t)
}

/// Inline policy on a role: deny the exact sessions (`aws:userid` = `ROLE-ID:session-name`) of
/// the leaked credentials. AWS's own remediation for exfiltrated instance credentials: unlike a
/// cutoff it leaves the role's other sessions alone and also denies credentials fetched again
/// later under the same session name.
pub const SESSION_POLICY_NAME: &str = "KillSwitchDenySessions";

/// The AWS-managed deny-all, attached when the user's inline-policy quota is full.
pub const MANAGED_DENY_ALL_ARN: &str = "arn:aws:iam::aws:policy/AWSDenyAll";

/// Deny every request of the given sessions.
pub fn deny_sessions(ids: &BTreeSet<String>) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KillSwitchDenySessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:userid": ids.iter().collect::<Vec<_>>()}}
        }]
    })
    .to_string()
}

/// Whether a (decoded) document is exactly what killswitch writes under [`USER_POLICY_NAME`]:
/// every statement an unconditional `Deny * on *`. IAM ANDs conditions, so a planted deny with
/// one extra never-matching condition denies nothing: anything else is a decoy.
pub fn is_deny_all(doc: &str) -> bool {
    our_statements(doc, "KillSwitchDenyAll").is_some_and(|conds| conds.iter().all(Option::is_none))
}

/// The cutoff of a (decoded) document that is exactly what killswitch writes under
/// [`ROLE_POLICY_NAME`] (one `DateLessThan aws:TokenIssueTime` condition per statement, nothing
/// else); `None` for anything else, which is then replaced.
pub fn revocation_cutoff(doc: &str) -> Option<DateTime<Utc>> {
    let conds = our_statements(doc, "KillSwitchRevokeOlderSessions")?;
    let mut latest: Option<DateTime<Utc>> = None;
    for cond in conds {
        let value = only_condition(cond.as_ref()?, "DateLessThan", "aws:tokenissuetime")?;
        let [t] = value.as_slice() else { return None };
        let t = canonical_time(t)?;
        latest = Some(latest.map_or(t, |l| l.max(t)));
    }
    latest
}

/// The sessions a (decoded) document denies, when it is exactly what killswitch writes under
/// [`SESSION_POLICY_NAME`]; `None` for anything else.
pub fn denied_sessions(doc: &str) -> Option<BTreeSet<String>> {
    let conds = our_statements(doc, "KillSwitchDenySessions")?;
    let mut ids = BTreeSet::new();
    for cond in conds {
        let values = only_condition(cond.as_ref()?, "StringEquals", "aws:userid")?;
        if values.is_empty() {
            return None;
        }
        ids.extend(values);
    }
    Some(ids)
}

/// The conditions of every statement, if each statement is a `Deny` of `*` on `*` with only the
/// keys killswitch writes (`Sid` ours or absent): no `NotAction`, `NotResource`, `Principal`.
fn our_statements(doc: &str, sid: &str) -> Option<Vec<Option<Value>>> {
    let list = statements(doc)?;
    if list.is_empty() {
        return None;
    }
    list.into_iter()
        .map(|s| {
            let obj = s.as_object()?;
            let keys_ok = obj.keys().all(|k| {
                ["Sid", "Effect", "Action", "Resource", "Condition"].contains(&k.as_str())
            });
            let sid_ok = obj.get("Sid").is_none_or(|v| v.as_str() == Some(sid));
            let deny = obj.get("Effect").and_then(Value::as_str) == Some("Deny");
            (keys_ok
                && sid_ok
                && deny
                && only_star(obj.get("Action"))
                && only_star(obj.get("Resource")))
            .then(|| obj.get("Condition").cloned())
        })
        .collect()
}

/// The values of a condition block that holds exactly one operator with exactly one key
/// (condition keys compare case-insensitively in IAM).
fn only_condition(cond: &Value, operator: &str, key: &str) -> Option<Vec<String>> {
    let ops = cond.as_object()?;
    let [(op, keys)] = ops.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    if op != operator {
        return None;
    }
    let keys = keys.as_object()?;
    let [(k, v)] = keys.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    if !k.eq_ignore_ascii_case(key) {
        return None;
    }
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(list) => list.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => None,
    }
}

fn statements(doc: &str) -> Option<Vec<Value>> {
    let v: Value = serde_json::from_str(doc).ok()?;
    let obj = v.as_object()?;
    if !obj
        .keys()
        .all(|k| k == "Version" || k == "Statement" || k == "Id")
    {
        return None;
    }
    match obj.get("Statement")? {
        Value::Array(list) => Some(list.clone()),
        one @ Value::Object(_) => Some(vec![one.clone()]),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => None,
    }
}

/// `"*"` or `["*"]` and nothing else.
fn only_star(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => s == "*",
        Some(Value::Array(list)) => {
            !list.is_empty() && list.iter().all(|x| x.as_str() == Some("*"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn deny_all_document_denies_everything_unconditionally() {
        let doc: Value = serde_json::from_str(&deny_all()).unwrap_or_default();
        assert_eq!(
            doc,
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "KillSwitchDenyAll",
                "Effect": "Deny", "Action": "*", "Resource": "*"}]})
        );
        assert!(is_deny_all(&deny_all()));
        assert!(!is_deny_all(&revoke_older_sessions(t(
            "2026-01-01T00:00:00Z"
        ))));
    }

    #[test]
    fn revocation_document_carries_the_cutoff() {
        let doc: Value = serde_json::from_str(&revoke_older_sessions(t("2026-11-23T03:12:45Z")))
            .unwrap_or_default();
        assert_eq!(
            doc.pointer("/Statement/0/Condition/DateLessThan/aws:TokenIssueTime"),
            Some(&json!("2026-11-23T03:12:45Z"))
        );
        assert_eq!(doc.pointer("/Statement/0/Effect"), Some(&json!("Deny")));
        assert_eq!(
            revocation_cutoff(&doc.to_string()),
            Some(t("2026-11-23T03:12:45Z"))
        );
    }

    #[test]
    fn cutoff_rounds_up_to_cover_the_current_second() {
        assert_eq!(
            cutoff_for(t("2026-11-23T03:12:44.200Z")),
            t("2026-11-23T03:12:45Z")
        );
        assert_eq!(
            cutoff_for(t("2026-11-23T03:12:44Z")),
            t("2026-11-23T03:12:44Z")
        );
    }

    #[test]
    fn cutoff_never_moves_backwards() {
        let newer = t("2026-11-23T04:00:00Z");
        let older = t("2026-11-23T03:00:00Z");
        assert_eq!(
            decide_cutoff(Some(newer), older),
            CutoffDecision::Keep(newer)
        );
        assert_eq!(
            decide_cutoff(Some(newer), newer),
            CutoffDecision::Keep(newer)
        );
        assert_eq!(
            decide_cutoff(Some(older), newer),
            CutoffDecision::Write(newer)
        );
        assert_eq!(decide_cutoff(None, older), CutoffDecision::Write(older));
    }

    #[test]
    fn reads_the_console_shape_and_single_statement_objects() {
        let console = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":["*"],"Resource":["*"],
            "Condition":{"DateLessThan":{"aws:TokenIssueTime":"2025-02-12T00:40:00.123Z"}}}}"#;
        assert_eq!(
            revocation_cutoff(console),
            Some(t("2025-02-12T00:40:00.123Z"))
        );
        assert_eq!(revocation_cutoff("not json"), None);
        assert!(!is_deny_all(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        ));
        assert!(!is_deny_all(
            r#"{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#
        ));
    }

    #[test]
    fn decoys_are_not_ours() {
        let decoys = [
            // an extra condition that never matches: IAM ANDs them, so it denies nothing
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z"},"StringEquals":{"aws:SourceIp":"192.0.2.1"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","NotAction":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"*","NotResource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z","aws:CurrentTime":"2000-01-01T00:00:00Z"}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z"}}},{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Action":["*","s3:*"],"Resource":"*","Principal":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z"}}}]}"#,
        ];
        for d in decoys {
            assert_eq!(revocation_cutoff(d), None, "{d}");
        }
        assert!(!is_deny_all(
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#
        ));
        assert!(!is_deny_all(
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        ));
        assert!(!is_deny_all(r#"{"Statement":[]}"#));
        assert_eq!(
            denied_sessions(
                r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:userid":"AROAX:i-1"},"IpAddress":{"aws:SourceIp":"192.0.2.1/32"}}}]}"#
            ),
            None
        );
    }

    #[test]
    fn only_canonical_cutoffs_count() {
        let doc = |t: &str| {
            format!(
                r#"{{"Statement":[{{"Effect":"Deny","Action":"*","Resource":"*","Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{t}"}}}}}}]}}"#
            )
        };
        assert!(revocation_cutoff(&doc("2030-01-01T00:00:00Z")).is_some());
        assert!(revocation_cutoff(&doc("2030-01-01T00:00:00.123Z")).is_some());
        for odd in [
            "2030-01-01 00:00:00Z",
            "2030-01-01t00:00:00z",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01T02:00:00+02:00",
            "2030-01-01T00:00:00.123456789123Z",
        ] {
            assert_eq!(revocation_cutoff(&doc(odd)), None, "{odd}");
        }
    }

    #[test]
    fn session_document_round_trips() {
        let ids: BTreeSet<String> = [
            "AROAEXAMPLE:i-0abc".to_string(),
            "AROAEXAMPLE:i-0def".to_string(),
        ]
        .into();
        assert_eq!(denied_sessions(&deny_sessions(&ids)), Some(ids));
        assert_eq!(
            denied_sessions(
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:userId":"AROAX:s"}}}}"#
            ),
            Some(["AROAX:s".to_string()].into())
        );
    }
}
