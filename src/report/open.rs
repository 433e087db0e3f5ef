//! What is still open once the key is contained: the doors the attacker opened that containment
//! of the key does not close, each with ready-to-run commands. They lead the subject and the
//! notice, because "CONTAINED" alone reads as "done". Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Activity, Investigation, PivotReport, RegionCoverage, Report, Status, ts};
use crate::analysis::{Category, Notable, PivotKind};

/// One open door, most urgent first in [`items`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenItem {
    /// What kind of door, for the subject's summary.
    pub kind: OpenKind,
    /// One line: what, where, when.
    pub what: String,
    /// Commands to run, in order. Values the key's holder chose appear only when they are
    /// plain IAM/ARN characters; otherwise the command says to look the name up.
    pub commands: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenKind {
    StillActive,
    ResponseTampered,
    LoggingStopped,
    DetectionChanged,
    MintedKey,
    RoleSession,
    ConsolePassword,
    TrustPolicy,
    ServiceCredential,
    NewUser,
    PolicyChanged,
    Instances,
    SearchIncomplete,
}

impl OpenKind {
    /// The subject's words for `n` of this kind.
    fn label(self, n: usize) -> String {
        let s = if n == 1 { "" } else { "s" };
        match self {
            OpenKind::StillActive => "key STILL IN USE".into(),
            OpenKind::ResponseTampered => "response TAMPERED".into(),
            OpenKind::LoggingStopped => "CloudTrail stopped".into(),
            OpenKind::DetectionChanged => "GuardDuty changed".into(),
            OpenKind::MintedKey => format!("{n} minted key{s} ACTIVE"),
            OpenKind::RoleSession => format!("{n} role session{s} open"),
            OpenKind::ConsolePassword => format!("{n} console password{s}"),
            OpenKind::TrustPolicy => format!("{n} trust polic{}", if n == 1 { "y" } else { "ies" }),
            OpenKind::ServiceCredential => format!("{n} service credential{s}"),
            OpenKind::NewUser => format!("{n} new user{s}"),
            OpenKind::PolicyChanged => format!("{n} policy change{s}"),
            OpenKind::Instances => format!("{n} instance launch{}", if n == 1 { "" } else { "es" }),
            OpenKind::SearchIncomplete => "search INCOMPLETE".into(),
        }
    }
}

/// The subject's summary: `1 minted key ACTIVE, CloudTrail stopped`.
pub fn summary(items: &[OpenItem]) -> String {
    let mut counts: BTreeMap<OpenKind, usize> = BTreeMap::new();
    for i in items {
        *counts.entry(i.kind).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| k.label(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value the key's holder may have chosen, fit to paste into a shell: IAM name and ARN
/// characters only, so no quoting, expansion or second command can ride along.
fn safe(v: &str) -> Option<&str> {
    (!v.is_empty()
        && v.len() <= 512
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-:/".contains(c)))
    .then_some(v)
}

/// `name=value` from a notable's details.
fn field<'a>(n: &'a Notable, name: &str) -> Option<&'a str> {
    n.details
        .split(' ')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

fn region(r: &str) -> &str {
    if crate::config::is_region_name(r) {
        r
    } else {
        "us-east-1"
    }
}

/// Every open door the report shows, most urgent first. Empty for anything but a contained key
/// with an investigation.
pub fn items(report: &Report) -> Vec<OpenItem> {
    let Investigation::Ran(a) = &report.investigation else {
        return Vec::new();
    };
    if report.dry_run || !matches!(report.status, s if s.is_contained() || s == Status::Restored) {
        return Vec::new();
    }
    let key = &report.access_key_id;
    let mut out = Vec::new();
    still_active(a, key, &mut out);
    for n in a
        .notable
        .values()
        .flatten()
        .filter(|n| n.error_code.is_none())
    {
        if let Some(item) = from_notable(n) {
            out.push(item);
        }
    }
    for p in &a.pivots {
        if let Some(item) = from_pivot(p, key) {
            out.push(item);
        }
    }
    incomplete(a, key, &mut out);
    out.sort_by_key(|i| i.kind);
    // The same door twice (ten RunInstances in one Region) is one item that says how many.
    let mut merged: Vec<(OpenItem, usize)> = Vec::new();
    for item in out {
        match merged
            .iter_mut()
            .find(|(m, _)| m.kind == item.kind && m.commands == item.commands)
        {
            Some((_, more)) => *more += 1,
            None => merged.push((item, 0)),
        }
    }
    merged
        .into_iter()
        .map(|(mut item, more)| {
            if more > 0 {
                item.what.push_str(&format!(" (and {more} more like it)"));
            }
            item
        })
        .collect()
}

fn still_active(a: &Activity, key: &str, out: &mut Vec<OpenItem>) {
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
    out.push(OpenItem {
        kind: OpenKind::StillActive,
        what: format!(
            "{not_refused} call(s) by the key after containment were NOT refused (last at {})",
            after.last_at.map(ts).unwrap_or_default()
        ),
        commands: vec![
            format!("killswitch status --access-key-id {key}"),
            format!(
                "aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key} --start-time {since}"
            ),
        ],
    });
}

/// A notable call that STILL OPEN lists.
pub fn is_open_notable(n: &Notable) -> bool {
    n.error_code.is_none() && from_notable(n).is_some()
}

fn from_notable(n: &Notable) -> Option<OpenItem> {
    let mut item = door(n)?;
    // A name too odd to paste into a shell is still shown, inert, so a human can look it up.
    if item
        .commands
        .iter()
        .any(|c| c.contains("-NAME") || c.contains("-ID "))
        || item.commands.iter().any(|c| c.ends_with("-ID"))
    {
        item.what.push_str(&format!(
            " (as logged: {})",
            crate::report::quoted(&n.details)
        ));
    }
    Some(item)
}

fn door(n: &Notable) -> Option<OpenItem> {
    let r = region(&n.region);
    let at = ts(n.time);
    let name = n.event_name.as_str();
    let lookup = format!(
        "aws cloudtrail lookup-events --region {r} --lookup-attributes AttributeKey=EventName,AttributeValue={}",
        safe(name).unwrap_or("EVENT")
    );
    let named = |f: &str| field(n, f).and_then(safe);
    let item = |kind, what: String, commands: Vec<String>| {
        Some(OpenItem {
            kind,
            what,
            commands,
        })
    };
    match (n.event_source.as_str(), name) {
        ("cloudtrail.amazonaws.com", "StopLogging") => {
            let trail = named("name").unwrap_or("TRAIL-NAME");
            item(
                OpenKind::LoggingStopped,
                format!("CloudTrail logging stopped ({trail}, {r}) at {at}"),
                vec![format!("aws cloudtrail start-logging --name {trail} --region {r}")],
            )
        }
        ("cloudtrail.amazonaws.com", "DeleteTrail") => {
            let trail = named("name").unwrap_or("TRAIL-NAME");
            item(
                OpenKind::LoggingStopped,
                format!("CloudTrail trail {trail} DELETED ({r}) at {at}"),
                vec![
                    format!("aws cloudtrail describe-trails --region {r}"),
                    format!("aws cloudtrail create-trail --name {trail} --s3-bucket-name YOUR-LOG-BUCKET --is-multi-region-trail --region {r} && aws cloudtrail start-logging --name {trail} --region {r}"),
                ],
            )
        }
        ("cloudtrail.amazonaws.com", _) => {
            let trail = named("name")
                .or_else(|| named("trailName"))
                .unwrap_or("TRAIL-NAME");
            item(
                OpenKind::LoggingStopped,
                format!("CloudTrail {name} on {trail} ({r}) at {at}"),
                vec![
                    format!("aws cloudtrail get-trail-status --name {trail} --region {r}"),
                    format!("aws cloudtrail get-event-selectors --trail-name {trail} --region {r}"),
                ],
            )
        }
        ("guardduty.amazonaws.com", "DeleteDetector") => item(
            OpenKind::DetectionChanged,
            format!("GuardDuty detector DELETED ({r}) at {at}"),
            vec![format!("aws guardduty create-detector --enable --region {r}")],
        ),
        ("guardduty.amazonaws.com", _) => {
            let detector = named("detectorId").unwrap_or("DETECTOR-ID");
            item(
                OpenKind::DetectionChanged,
                format!("GuardDuty {name} ({r}) at {at}"),
                vec![
                    format!("aws guardduty get-detector --detector-id {detector} --region {r}"),
                    format!("aws guardduty list-filters --detector-id {detector} --region {r}"),
                    lookup,
                ],
            )
        }
        ("events.amazonaws.com", "DisableRule") => {
            let rule = named("name").unwrap_or("RULE-NAME");
            item(
                OpenKind::ResponseTampered,
                format!("EventBridge rule {rule} DISABLED ({r}) at {at}"),
                vec![format!("aws events enable-rule --name {rule} --region {r}")],
            )
        }
        _ if n.category == Category::AgainstResponse => item(
            OpenKind::ResponseTampered,
            format!(
                "{}:{name} against the response ({r}) at {at}",
                n.event_source.trim_end_matches(".amazonaws.com")
            ),
            vec![
                lookup,
                "sam deploy   (redeploy killswitch's stack to put its function, rules, topic and queue back)".into(),
            ],
        ),
        ("iam.amazonaws.com", "CreateUser") => {
            let user = named("userName").unwrap_or("USER-NAME");
            item(
                OpenKind::NewUser,
                format!("new IAM user {user} at {at}"),
                vec![
                    format!("aws iam list-access-keys --user-name {user}"),
                    format!("aws iam get-login-profile --user-name {user}"),
                ],
            )
        }
        (
            "iam.amazonaws.com",
            "AttachUserPolicy" | "PutUserPolicy" | "AttachRolePolicy" | "PutRolePolicy"
            | "AttachGroupPolicy" | "PutGroupPolicy" | "CreatePolicyVersion"
            | "SetDefaultPolicyVersion" | "AddUserToGroup",
        ) => {
            let command = if let Some(u) = named("userName") {
                format!("aws iam list-attached-user-policies --user-name {u} && aws iam list-user-policies --user-name {u}")
            } else if let Some(role) = named("roleName") {
                format!("aws iam list-attached-role-policies --role-name {role} && aws iam list-role-policies --role-name {role}")
            } else if let Some(g) = named("groupName") {
                format!("aws iam list-attached-group-policies --group-name {g} && aws iam list-group-policies --group-name {g}")
            } else if let Some(p) = named("policyArn") {
                format!("aws iam list-policy-versions --policy-arn {p}")
            } else {
                lookup
            };
            item(
                OpenKind::PolicyChanged,
                format!("{name} {} at {at}", crate::report::defang(&n.details)),
                vec![command],
            )
        }
        (
            "ec2.amazonaws.com",
            "RunInstances" | "RequestSpotInstances" | "CreateFleet" | "RequestSpotFleet",
        ) => item(
            OpenKind::Instances,
            format!("{name} in {r} at {at} {}", crate::report::defang(&n.details)),
            vec![format!(
                "aws ec2 describe-instances --region {r} --filters Name=instance-state-name,Values=pending,running --query Reservations[].Instances[].[InstanceId,InstanceType,LaunchTime]"
            )],
        ),
        _ => None,
    }
}

fn from_pivot(p: &PivotReport, leaked: &str) -> Option<OpenItem> {
    if p.containment
        .as_ref()
        .is_some_and(|c| c.status.is_contained())
    {
        return None;
    }
    let at = ts(p.pivot.time);
    let reason = format!("\"minted by leaked key {leaked}\"");
    let minted = p.pivot.access_key_id.as_deref().and_then(safe);
    let principal = p.pivot.principal.as_deref().and_then(safe);
    match p.pivot.kind {
        PivotKind::AccessKey => {
            let k = minted?;
            let mut commands = vec![format!(
                "killswitch respond --access-key-id {k} --reason {reason}"
            )];
            if let Some(u) = principal {
                commands.push(format!(
                    "aws iam update-access-key --user-name {u} --access-key-id {k} --status Inactive"
                ));
            }
            Some(OpenItem {
                kind: OpenKind::MintedKey,
                what: format!(
                    "access key {k} minted at {at} for {}: NOT contained",
                    principal.unwrap_or("the leaked key's own user")
                ),
                commands,
            })
        }
        PivotKind::RoleSession => {
            let k = minted?;
            let role_arn = principal.unwrap_or("?");
            if role_arn.ends_with(":root") {
                return Some(OpenItem {
                    kind: OpenKind::RoleSession,
                    what: format!(
                        "ROOT session {k} of {role_arn} at {at}: no IAM policy can stop it; use an SCP or the account's root credentials"
                    ),
                    commands: Vec::new(),
                });
            }
            let role = role_arn.rsplit('/').next().unwrap_or(role_arn);
            let account = role_arn.split(':').nth(4).unwrap_or("");
            let mut command = format!(
                "killswitch respond --access-key-id {k} --role-name {role} --reason {reason}"
            );
            if let Some(s) = p.pivot.role_session_name.as_deref().and_then(safe)
                && crate::trigger::is_session_name(s)
            {
                command.push_str(&format!(" --session-name {s}"));
            }
            if account.len() == 12 {
                command.push_str(&format!(" --account-id {account}"));
            }
            Some(OpenItem {
                kind: OpenKind::RoleSession,
                what: format!("session {k} of role {role_arn} at {at}: NOT contained"),
                commands: vec![command],
            })
        }
        PivotKind::LoginProfile => {
            let u = principal.unwrap_or("USER-NAME");
            Some(OpenItem {
                kind: OpenKind::ConsolePassword,
                what: format!("console password set for user {u} at {at}"),
                commands: vec![format!("aws iam delete-login-profile --user-name {u}")],
            })
        }
        PivotKind::TrustPolicy => {
            let role = principal.unwrap_or("ROLE-NAME");
            Some(OpenItem {
                kind: OpenKind::TrustPolicy,
                what: format!(
                    "trust policy of role {role} changed at {at}: review and put it back"
                ),
                commands: vec![
                    format!(
                        "aws iam get-role --role-name {role} --query Role.AssumeRolePolicyDocument"
                    ),
                    format!(
                        "aws iam update-assume-role-policy --role-name {role} --policy-document file://reviewed-trust.json"
                    ),
                ],
            })
        }
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

fn incomplete(a: &Activity, key: &str, out: &mut Vec<OpenItem>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_reach_a_command() {
        assert_eq!(safe("main-trail"), Some("main-trail"));
        assert_eq!(
            safe("arn:aws:iam::111122223333:role/x"),
            Some("arn:aws:iam::111122223333:role/x")
        );
        for bad in [
            "x; rm -rf ~",
            "$(id)",
            "a b",
            "`id`",
            "x|y",
            "x\ny",
            "",
            "a'b",
        ] {
            assert_eq!(safe(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_summary_counts_by_kind_most_urgent_first() {
        let item = |kind| OpenItem {
            kind,
            what: String::new(),
            commands: Vec::new(),
        };
        let items = [
            item(OpenKind::MintedKey),
            item(OpenKind::LoggingStopped),
            item(OpenKind::MintedKey),
        ];
        assert_eq!(summary(&items), "CloudTrail stopped, 2 minted keys ACTIVE");
    }
}
