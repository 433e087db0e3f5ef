//! The inline policies killswitch writes, and how it reads them back. Pure functions.
//!
//! Fixed names, so repeats overwrite instead of stacking (a timestamped name per incident would
//! overflow the 2,048-character inline quota of a user).

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

/// Whether a (decoded) document denies every action on every resource without condition.
pub fn is_deny_all(doc: &str) -> bool {
    statements(doc).iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Deny")
            && is_star(s.get("Action"))
            && is_star(s.get("Resource"))
            && s.get("Condition").is_none()
    })
}

/// The latest `aws:TokenIssueTime` cutoff of a Deny-all statement in a (decoded) document.
pub fn revocation_cutoff(doc: &str) -> Option<DateTime<Utc>> {
    statements(doc)
        .iter()
        .filter(|s| {
            s.get("Effect").and_then(Value::as_str) == Some("Deny")
                && is_star(s.get("Action"))
                && is_star(s.get("Resource"))
        })
        .filter_map(|s| s.pointer("/Condition/DateLessThan/aws:TokenIssueTime"))
        .filter_map(Value::as_str)
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max()
}

fn statements(doc: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(doc)
        .ok()
        .and_then(|v| v.get("Statement").cloned())
    {
        Some(Value::Array(list)) => list,
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

fn is_star(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => s == "*",
        Some(Value::Array(list)) => list.iter().any(|x| x.as_str() == Some("*")),
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
}
