//! What the key's holder still holds: the key itself still in use, the credentials and access it
//! minted and were not contained, and the Regions the search could not read to the end. Pure.

use std::collections::BTreeMap;

use super::{OpenItem, OpenKind, SESSIONS_PER_ROLE, region, safe};
use crate::analysis::PivotKind;
use crate::report::words::safe::{quoted, ts};
use crate::report::{Activity, PivotReport, RegionCoverage};
use crate::vocab::Arn;

/// The key itself, still used after containment without being refused.
pub(super) fn still_active(a: &Activity, key: &str, out: &mut Vec<OpenItem>) {
    let after = &a.after_containment;
    let not_refused = after.calls.saturating_sub(after.denied);
    // GetCallerIdentity succeeds under any deny: alone, it proves nothing.
    let only_identity = after
        .by_event
        .keys()
        .all(|k| k.ends_with(":GetCallerIdentity"));
    if not_refused == 0 || only_identity {
        return;
    }
    let since = after.since.map(ts).unwrap_or_default();
    let mut commands = vec![format!("killswitch status --access-key-id {key}")];
    let regions: Vec<&str> = if after.regions.is_empty() {
        vec!["us-east-1"]
    } else {
        after.regions.iter().map(|r| region(r)).collect()
    };
    // Where the calls were made: a search elsewhere would read as a false alarm.
    for r in regions.iter().take(5) {
        commands.push(format!(
            "aws cloudtrail lookup-events --region {r} --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key} --start-time {since}"
        ));
    }
    out.push(OpenItem {
        kind: OpenKind::StillActive,
        what: format!(
            "{not_refused} call(s) by the key after containment were NOT refused (last at {}, in {})",
            after.last_at.map(ts).unwrap_or_default(),
            regions.join(", ")
        ),
        commands,
    });
}

/// A role's name and account from its ARN, each only when it can stand on a command line.
fn role_of(role_arn: &str) -> (&str, Option<&str>) {
    let Some(arn) = safe(role_arn) else {
        return ("ROLE-NAME", None);
    };
    let parsed = Arn::parse(arn);
    let name = parsed.map_or(arn, |a| a.name());
    let account = parsed.map(|a| a.account).filter(|a| a.len() == 12);
    (safe(name).unwrap_or("ROLE-NAME"), account)
}

/// Role sessions not contained: one command each, or one role-wide command for a role with
/// many (a flood of AssumeRole must not bury the other doors).
pub(super) fn role_sessions(a: &Activity, key: &str, out: &mut Vec<OpenItem>) {
    let mut per_role: BTreeMap<&str, Vec<&PivotReport>> = BTreeMap::new();
    for p in a
        .pivots
        .iter()
        .filter(|p| p.pivot.kind == PivotKind::RoleSession && !contained(p))
    {
        per_role
            .entry(p.pivot.principal.as_deref().unwrap_or("?"))
            .or_default()
            .push(p);
    }
    for (role_arn, sessions) in per_role {
        if sessions.len() <= SESSIONS_PER_ROLE || role_arn.ends_with(":root") {
            out.extend(sessions.iter().filter_map(|p| from_pivot(p, key)));
            continue;
        }
        let Some(first) = sessions
            .iter()
            .find_map(|p| p.pivot.access_key_id.as_deref().and_then(safe))
        else {
            continue;
        };
        let (role, account) = role_of(role_arn);
        let account = account
            .map(|a| format!(" --account-id {a}"))
            .unwrap_or_default();
        out.push(OpenItem {
            kind: OpenKind::RoleSession,
            what: format!(
                "{} sessions of role {} minted with the key: NOT contained",
                sessions.len(),
                quoted(role_arn)
            ),
            // The setting makes it role-wide whatever session CloudTrail saw signing: a
            // manual request alone would be narrowed to that one session.
            commands: vec![format!(
                "KILLSWITCH_ROLE_WIDE_REVOCATION={role} killswitch respond --access-key-id {first} --role-name {role}{account} --reason \"minted by leaked key {key}\"   (revokes EVERY session of the role issued before now: its workloads fail until they refresh)"
            )],
        });
    }
}

fn contained(p: &PivotReport) -> bool {
    p.containment
        .as_ref()
        .is_some_and(|c| c.status.is_contained())
}

/// What a pivot not contained leaves open, with what contains it.
pub(super) fn from_pivot(p: &PivotReport, leaked: &str) -> Option<OpenItem> {
    if contained(p) {
        return None;
    }
    let minted = p.pivot.access_key_id.as_deref().and_then(safe);
    let principal = p.pivot.principal.as_deref().and_then(safe);
    let at = ts(p.pivot.time);
    let reason = format!("\"minted by leaked key {leaked}\"");
    match p.pivot.kind {
        PivotKind::AccessKey => Some(minted_key(minted?, principal, &at, &reason)),
        PivotKind::RoleSession => Some(role_session(p, minted?, principal, &at, &reason)),
        PivotKind::LoginProfile => {
            let u = principal.unwrap_or("USER-NAME");
            Some(OpenItem {
                kind: OpenKind::ConsolePassword,
                what: format!("console password set for user {u} at {at}"),
                commands: vec![format!("aws iam delete-login-profile --user-name {u}")],
            })
        }
        PivotKind::TrustPolicy => Some(trust_policy(principal.unwrap_or("ROLE-NAME"), &at)),
        PivotKind::ServiceCredential => {
            let u = principal.unwrap_or("USER-NAME");
            let id = p
                .pivot
                .credential_id
                .as_deref()
                .and_then(safe)
                .unwrap_or("CREDENTIAL-ID");
            Some(OpenItem {
                kind: OpenKind::ServiceCredential,
                what: format!("service-specific credential {id} for user {u} at {at}"),
                commands: vec![format!(
                    "aws iam update-service-specific-credential --user-name {u} --service-specific-credential-id {id} --status Inactive"
                )],
            })
        }
        PivotKind::UserSession => None,
    }
}

fn minted_key(k: &str, user: Option<&str>, at: &str, reason: &str) -> OpenItem {
    let mut commands = vec![format!(
        "killswitch respond --access-key-id {k} --reason {reason}"
    )];
    if let Some(u) = user {
        commands.push(format!(
            "aws iam update-access-key --user-name {u} --access-key-id {k} --status Inactive"
        ));
    }
    OpenItem {
        kind: OpenKind::MintedKey,
        what: format!(
            "access key {k} minted at {at} for {}: NOT contained",
            user.unwrap_or("the leaked key's own user")
        ),
        commands,
    }
}

fn role_session(
    p: &PivotReport,
    k: &str,
    role_arn: Option<&str>,
    at: &str,
    reason: &str,
) -> OpenItem {
    let role_arn = role_arn.unwrap_or("ROLE-NAME");
    if role_arn.ends_with(":root") {
        return OpenItem {
            kind: OpenKind::RoleSession,
            what: format!(
                "ROOT session {k} of {role_arn} at {at}: no IAM policy can stop it; use an SCP or the account's root credentials"
            ),
            commands: Vec::new(),
        };
    }
    let (role, account) = role_of(role_arn);
    let mut command =
        format!("killswitch respond --access-key-id {k} --role-name {role} --reason {reason}");
    if let Some(s) = p.pivot.role_session_name.as_deref().and_then(safe)
        && crate::trigger::is_session_name(s)
    {
        command.push_str(&format!(" --session-name {s}"));
    }
    if let Some(account) = account {
        command.push_str(&format!(" --account-id {account}"));
    }
    OpenItem {
        kind: OpenKind::RoleSession,
        what: format!("session {k} of role {role_arn} at {at}: NOT contained"),
        commands: vec![command],
    }
}

fn trust_policy(role: &str, at: &str) -> OpenItem {
    OpenItem {
        kind: OpenKind::TrustPolicy,
        what: format!("trust policy of role {role} changed at {at}: review and put it back"),
        commands: vec![
            format!("aws iam get-role --role-name {role} --query Role.AssumeRolePolicyDocument"),
            format!(
                "aws iam update-assume-role-policy --role-name {role} --policy-document file://reviewed-trust.json"
            ),
        ],
    }
}

/// Regions the search did not read to the end, with the searches that finish it.
pub(super) fn incomplete(a: &Activity, key: &str, out: &mut Vec<OpenItem>) {
    let partial: Vec<_> = a
        .regions
        .iter()
        .filter(|r| r.coverage != RegionCoverage::Complete)
        .collect();
    if partial.is_empty() {
        return;
    }
    let start = a.window_start.map(ts).unwrap_or_default();
    out.push(OpenItem {
        kind: OpenKind::SearchIncomplete,
        what: format!(
            "CloudTrail search INCOMPLETE: not read to the end in {} Region(s): {}",
            partial.len(),
            partial
                .iter()
                .map(|r| r.region.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        commands: partial
            .iter()
            .take(5)
            .map(|r| {
                format!(
                    "aws cloudtrail lookup-events --region {} --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key} --start-time {start}",
                    region(&r.region)
                )
            })
            .collect(),
    });
}
