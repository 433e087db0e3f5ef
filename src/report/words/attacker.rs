//! The notice's "What the attacker did", most urgent first: attacks on the response, the
//! credentials it minted and the access it opened (what is not contained first, each with the
//! command that contains it), then persistence, evasion and impact. Pure.

use std::fmt::Write as _;

use super::Lists;
use super::open;
use super::safe::{count, defang, inert, quoted, ts};
use crate::analysis::{Category, Notable, PivotKind};
use crate::incident::AccessKeyId;
use crate::report::activity::short_source;
use crate::report::{Activity, PivotReport};

/// Pivots listed in a notice; the rest are in the JSON report.
const MAX_PIVOT_LINES: usize = 30;

/// The prioritised "what the attacker did": attacks on the response, then what it minted and
/// opened (what is not contained first), then persistence and the rest.
pub(super) fn section(m: &mut String, a: &Activity, lists: &Lists) {
    if a.pivots.is_empty() && a.notable.is_empty() {
        return;
    }
    let _ = writeln!(m, "\nWhat the attacker did (most urgent first):");
    notable_text(m, a, &[Category::AgainstResponse], lists);
    if !a.pivots.is_empty() {
        pivot_lines(m, a, lists);
    }
    notable_text(
        m,
        a,
        &[
            Category::Persistence,
            Category::DefenceEvasion,
            Category::CredentialMinting,
            Category::Impact,
        ],
        lists,
    );
}

/// The credentials it minted and the access it opened: those STILL OPEN shows counted, the
/// rest listed (not contained first), the user's own session tokens and a flood counted.
fn pivot_lines(m: &mut String, a: &Activity, lists: &Lists) {
    let covered = a
        .pivots
        .iter()
        .filter(|p| p.pivot.kind.covered_by_user_deny())
        .count();
    let _ = writeln!(
        m,
        "  Credentials it minted and access it opened ({}):",
        a.pivots.len() - covered + a.covered_pivots + a.pivots_not_listed
    );
    let mut listed: Vec<&PivotReport> = a
        .pivots
        .iter()
        .filter(|p| !p.pivot.kind.covered_by_user_deny())
        .filter(|p| !(lists.open_above && is_open_pivot(p)))
        .collect();
    let open = a
        .pivots
        .iter()
        .filter(|p| lists.open_above && is_open_pivot(p))
        .count();
    if open > 0 {
        let _ = writeln!(
            m,
            "    - {open} NOT contained: listed under STILL OPEN above"
        );
    }
    // What still needs a human first.
    listed.sort_by_key(|p| {
        p.containment
            .as_ref()
            .is_some_and(|c| c.status.is_contained())
    });
    for p in listed.iter().take(MAX_PIVOT_LINES) {
        pivot_line(m, p);
    }
    if listed.len() > MAX_PIVOT_LINES {
        let _ = writeln!(
            m,
            "    - ... and {} more in the JSON report",
            listed.len() - MAX_PIVOT_LINES
        );
    }
    if covered > 0 || a.covered_pivots > 0 {
        let _ = writeln!(
            m,
            "    - {} session token(s) of the leaked key's own user (GetSessionToken / GetFederationToken): covered by its deny",
            a.covered_pivots.max(covered)
        );
    }
    if a.pivots_not_listed > 0 {
        let _ = writeln!(
            m,
            "    - {} MORE not listed (flood): search CloudTrail for CreateAccessKey and AssumeRole by the leaked key",
            a.pivots_not_listed
        );
    }
}

/// A call whose credential the pivot list (or STILL OPEN) already shows.
fn is_listed_pivot(n: &Notable) -> bool {
    n.error_code.is_none()
        && match n.event_name.as_str() {
            "CreateAccessKey"
            | "AssumeRole"
            | "AssumeRoleWithSAML"
            | "AssumeRoleWithWebIdentity"
            | "AssumeRoot"
            | "GetSessionToken"
            | "GetFederationToken" => n.details.contains("newAccessKeyId="),
            "CreateLoginProfile" | "UpdateLoginProfile" => n.details.contains("userName="),
            "UpdateAssumeRolePolicy" => n.details.contains("roleName="),
            _ => false,
        }
}

/// A pivot the STILL OPEN list shows (not contained, and with something to run).
fn is_open_pivot(p: &PivotReport) -> bool {
    !p.pivot.kind.covered_by_user_deny()
        && !p
            .containment
            .as_ref()
            .is_some_and(|c| c.status.is_contained())
}

fn pivot_line(m: &mut String, p: &PivotReport) {
    let who = p
        .pivot
        .principal
        .as_deref()
        .map(quoted)
        .unwrap_or_else(|| "the leaked key's own user".into());
    let state = match &p.containment {
        Some(c) => format!("{}: {}", c.status.headline(), c.summary),
        None if p.pivot.kind == PivotKind::TrustPolicy => {
            format!(
                "REVIEW AND REVERT (not automatic): {}",
                request_as_command(&p.contain_with)
            )
        }
        None => format!(
            "NOT CONTAINED: contain with {}",
            request_as_command(&p.contain_with)
        ),
    };
    let what = match p.pivot.kind {
        PivotKind::LoginProfile => "console password".to_string(),
        PivotKind::TrustPolicy => "trust policy changed".to_string(),
        PivotKind::AccessKey
        | PivotKind::RoleSession
        | PivotKind::UserSession
        | PivotKind::ServiceCredential => defang(
            p.pivot
                .access_key_id
                .as_deref()
                .or(p.pivot.credential_id.as_deref())
                .unwrap_or("?"),
        ),
    };
    let _ = writeln!(
        m,
        "    - {} {} {} -> {what} ({who}) : {state}",
        ts(p.pivot.time),
        defang(&p.pivot.region),
        defang(&p.pivot.via),
    );
    if let Some(act) = &p.activity {
        let _ = if act.notable.is_empty() {
            writeln!(m, "      it made {}", count(act.events, "call"))
        } else {
            writeln!(
                m,
                "      it made {}; flagged: {}",
                count(act.events, "call"),
                defang(&act.notable.join(", "))
            )
        };
    }
}

fn notable_text(m: &mut String, a: &Activity, categories: &[Category], lists: &Lists) {
    for cat in categories {
        let Some(all) = a.notable.get(cat) else {
            continue;
        };
        // What STILL OPEN shows (with its commands) is not listed twice.
        let list: Vec<&Notable> = all
            .iter()
            .filter(|n| !(is_listed_pivot(n) || (lists.open_above && open::is_open_notable(n))))
            .collect();
        let above = all.len() - list.len();
        let total = a
            .notable_counts
            .get(cat)
            .copied()
            .unwrap_or(all.len())
            .saturating_sub(above);
        if total == 0 {
            continue;
        }
        let _ = writeln!(
            m,
            "  {} ({total}{}, most severe first):",
            cat.title(),
            if above > 0 {
                format!(", plus {above} shown above")
            } else {
                String::new()
            }
        );
        for n in list.iter().take(10) {
            let outcome = n
                .error_code
                .as_deref()
                .map(|c| format!(" ({})", defang(c)))
                .unwrap_or_default();
            let _ = writeln!(
                m,
                "    - {} {} {}:{} {}{outcome}",
                ts(n.time),
                defang(&n.region),
                defang(short_source(&n.event_source)),
                defang(&n.event_name),
                defang(&n.details)
            );
        }
        if total > 10 {
            let listed = list.len().min(10);
            let in_json = list.len() - listed;
            let _ = writeln!(
                m,
                "    ... and {} more ({in_json} of them in the JSON report)",
                total - listed
            );
        }
    }
}

/// A pivot's containment request as the command a person runs: `killswitch respond …` for a
/// credential, the AWS CLI command otherwise. Names the key's holder chose go in only when they
/// are safe on a command line; otherwise the flag is left for the person to fill in.
fn request_as_command(request: &serde_json::Value) -> String {
    let field = |k: &str| request.get(k).and_then(|v| v.as_str());
    if let Some(command) = field("command") {
        return inert(command);
    }
    let Some(key) = field("access_key_id").and_then(|k| AccessKeyId::parse(k).ok()) else {
        return "killswitch respond --access-key-id KEY --reason WHY".into();
    };
    let mut out = format!("killswitch respond --access-key-id {key}");
    for (flag, name) in [("--user-name", "user_name"), ("--role-name", "role_name")] {
        if let Some(v) = field(name) {
            match open::shell_safe(v) {
                Some(v) => out.push_str(&format!(" {flag} {v}")),
                None => out.push_str(&format!(" {flag} NAME")),
            }
        }
    }
    let reason = field("reason").unwrap_or("minted by the leaked key");
    out.push_str(&format!(
        " --reason \"{}\"",
        inert(reason).replace(['"', '$', '`', '\\'], "")
    ));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pivot_left_open_reads_as_a_command_to_run_not_as_json() {
        let request = serde_json::json!({
            "access_key_id": "AKIA4XMPLEBACKDOOR01",
            "user_name": "mallory-backdoor",
            "reason": "minted by leaked key AKIAIOSFODNN7EXAMPLE via CreateAccessKey",
            "requested_by": "killswitch (follow the pivot)",
        });
        assert_eq!(
            super::request_as_command(&request),
            "killswitch respond --access-key-id AKIA4XMPLEBACKDOOR01 --user-name mallory-backdoor --reason \"minted by leaked key AKIAIOSFODNN7EXAMPLE via CreateAccessKey\""
        );
        // A name the key's holder chose that a shell would read as more than a name.
        let planted = serde_json::json!({
            "access_key_id": "AKIA4XMPLEBACKDOOR01",
            "user_name": "x;curl evil",
            "reason": "r",
        });
        assert!(
            super::request_as_command(&planted).contains("--user-name NAME"),
            "{}",
            super::request_as_command(&planted)
        );
        let revert = serde_json::json!({"command": "aws iam delete-login-profile --user-name bob"});
        assert_eq!(
            super::request_as_command(&revert),
            "aws iam delete-login-profile --user-name bob"
        );
    }
}
