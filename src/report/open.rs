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
    OtherPersistence,
    DefenceEvasion,
    Instances,
    Impact,
    SearchIncomplete,
    /// Identity Center permission sets the user's deny does not reach.
    PermissionSets,
    /// More doors than could be kept or listed: search CloudTrail.
    More,
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
            OpenKind::OtherPersistence => format!("{n} other persistence change{s}"),
            OpenKind::DefenceEvasion => format!("{n} defence evasion{s}"),
            OpenKind::Instances => format!("{n} instance launch{}", if n == 1 { "" } else { "es" }),
            OpenKind::Impact => format!("{n} cost/impact call{s}"),
            OpenKind::SearchIncomplete => "search INCOMPLETE".into(),
            OpenKind::PermissionSets => "permission sets NOT covered".into(),
            OpenKind::More => "MORE".into(),
        }
    }
}

/// Permission sets whose roles lack the deny policy: the denied user still works with them.
fn permission_sets(step: &super::StepResult) -> OpenItem {
    OpenItem {
        kind: OpenKind::PermissionSets,
        what: step.detail.clone(),
        commands: vec![
            "aws sso-admin attach-customer-managed-policy-reference-to-permission-set --instance-arn <instance> --permission-set-arn <each permission set above> --customer-managed-policy-reference Name=KillSwitchDeny,Path=/".into(),
            "aws sso-admin provision-permission-set --instance-arn <instance> --permission-set-arn <each> --target-type ALL_PROVISIONED_ACCOUNTS".into(),
        ],
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
/// The users the key's holder created in this activity (successful `iam:CreateUser`), by a
/// name IAM accepts.
pub fn created_users(a: &super::Activity) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    a.notable
        .values()
        .flatten()
        .filter(|n| {
            n.event_source == "iam.amazonaws.com"
                && n.event_name == "CreateUser"
                && n.error_code.is_none()
        })
        .filter_map(|n| Some((field(n, "userName").and_then(safe)?.to_owned(), n.time)))
        .collect()
}

/// A value that can stand on a command line as it is, for the notice's other commands.
pub(crate) fn shell_safe(v: &str) -> Option<&str> {
    safe(v)
}

fn safe(v: &str) -> Option<&str> {
    (!v.is_empty()
        && v.len() <= 512
        // Not an option (`-…`) and not zsh's `=word` expansion.
        && !v.starts_with(['-', '='])
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-:/".contains(c)))
    .then_some(v)
}

/// `name=value` from a notable's details; never a value the details cut short (a decoy named
/// like the cut prefix would be what the command looks at).
fn field<'a>(n: &'a Notable, name: &str) -> Option<&'a str> {
    let mut found = n
        .details
        .split(' ')
        .filter_map(|p| p.strip_prefix(name)?.strip_prefix('='));
    let value = found.next()?;
    // Twice means a value with spaces carried a fake `name=` of its own: trust neither.
    if found.next().is_some() {
        return None;
    }
    Some(value)
        .filter(|v| !(v.ends_with("...") && v.chars().count() > crate::analysis::DETAIL_CHARS))
}

fn region(r: &str) -> &str {
    if crate::config::is_region_name(r) {
        r
    } else {
        "us-east-1"
    }
}

/// Items of one kind a notice lists; the rest are counted (all are in the JSON report, up to
/// `MAX_PER_KIND`).
pub const LISTED_PER_KIND: usize = 10;
/// Items of one kind kept in the report.
const MAX_PER_KIND: usize = 50;
/// Sessions of one role beyond which one role-wide command replaces one command per session.
const SESSIONS_PER_ROLE: usize = 3;

/// Every open door the report shows, most urgent first: whatever the key's own status (a
/// failed containment needs the list most), except a dry run, a sample and a rejection.
pub fn items(report: &Report) -> Vec<OpenItem> {
    let uncovered = report.steps.iter().rev().find(|s| {
        s.step == crate::vocab::Step::Verify && s.detail.starts_with(super::UNCOVERED_PREFIX)
    });
    let Investigation::Ran(a) = &report.investigation else {
        return uncovered.map(permission_sets).into_iter().collect();
    };
    if report.dry_run
        || matches!(
            report.status,
            Status::Sample | Status::Rejected | Status::DryRun
        )
    {
        return Vec::new();
    }
    let key = &report.access_key_id;
    let mut out = Vec::new();
    still_active(a, key, &mut out);
    out.extend(uncovered.map(permission_sets));
    for n in &a.doors {
        if let Some(item) = from_notable(n) {
            out.push(item);
        }
    }
    if a.doors_not_kept > 0 {
        out.push(OpenItem {
            kind: OpenKind::More,
            what: format!(
                "{} more distinct changes than could be kept: search CloudTrail for everything the key did",
                a.doors_not_kept
            ),
            commands: vec![format!(
                "aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key}"
            )],
        });
    }
    role_sessions(a, key, &mut out);
    for p in a
        .pivots
        .iter()
        .filter(|p| p.pivot.kind != PivotKind::RoleSession)
    {
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
    let mut kept: Vec<OpenItem> = Vec::new();
    let mut dropped: BTreeMap<OpenKind, usize> = BTreeMap::new();
    for (mut item, more) in merged {
        if more > 0 {
            item.what.push_str(&format!(" (and {more} more like it)"));
        }
        if kept.iter().filter(|k| k.kind == item.kind).count() < MAX_PER_KIND {
            kept.push(item);
        } else {
            *dropped.entry(item.kind).or_default() += 1;
        }
    }
    for (kind, n) in dropped {
        kept.push(OpenItem {
            kind: OpenKind::More,
            what: format!("{n} more of: {}", kind.label(n)),
            commands: vec![format!(
                "aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key}"
            )],
        });
    }
    kept
}

/// Role sessions not contained: one command each, or one role-wide command for a role with
/// many (a flood of AssumeRole must not bury the other doors).
fn role_sessions(a: &Activity, key: &str, out: &mut Vec<OpenItem>) {
    let open: Vec<&PivotReport> = a
        .pivots
        .iter()
        .filter(|p| p.pivot.kind == PivotKind::RoleSession)
        .filter(|p| {
            !p.containment
                .as_ref()
                .is_some_and(|c| c.status.is_contained())
        })
        .collect();
    let mut per_role: BTreeMap<&str, Vec<&PivotReport>> = BTreeMap::new();
    for p in &open {
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
        let role = safe(role_arn)
            .and_then(|arn| arn.rsplit('/').next())
            .and_then(safe)
            .unwrap_or("ROLE-NAME");
        let account = safe(role_arn)
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|a| a.len() == 12)
            .map(|a| format!(" --account-id {a}"))
            .unwrap_or_default();
        out.push(OpenItem {
            kind: OpenKind::RoleSession,
            what: format!(
                "{} sessions of role {} minted with the key: NOT contained",
                sessions.len(),
                crate::report::quoted(role_arn)
            ),
            // The setting makes it role-wide whatever session CloudTrail saw signing: a
            // manual request alone would be narrowed to that one session.
            commands: vec![format!(
                "KILLSWITCH_ROLE_WIDE_REVOCATION={role} killswitch respond --access-key-id {first} --role-name {role}{account} --reason \"minted by leaked key {key}\"   (revokes EVERY session of the role issued before now: its workloads fail until they refresh)"
            )],
        });
    }
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

/// A notable call that STILL OPEN lists.
pub fn is_open_notable(n: &Notable) -> bool {
    n.error_code.is_none() && from_notable(n).is_some()
}

/// The kind of door a call leaves open: it succeeded, and it is not a pivot (those are listed
/// from the pivots, with their own commands).
pub fn door_kind(n: &Notable) -> Option<OpenKind> {
    if n.error_code.is_some() || n.category == Category::CredentialMinting {
        return None;
    }
    from_notable(n).map(|i| i.kind)
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
        // Pivots have their own items (with their minted key or session).
        (
            "iam.amazonaws.com",
            "CreateAccessKey" | "CreateLoginProfile" | "UpdateLoginProfile"
            | "UpdateAssumeRolePolicy" | "CreateServiceSpecificCredential",
        ) => None,
        ("iam.amazonaws.com", _) if n.category == Category::Persistence => {
            let mut commands = Vec::new();
            if let Some(u) = named("userName") {
                commands.push(format!("aws iam list-access-keys --user-name {u}"));
                if name == "UploadSSHPublicKey" {
                    commands.push(format!("aws iam list-ssh-public-keys --user-name {u}"));
                }
                if name == "UploadSigningCertificate" {
                    commands.push(format!("aws iam list-signing-certificates --user-name {u}"));
                }
            }
            if let Some(role) = named("roleName") {
                commands.push(format!("aws iam get-role --role-name {role}"));
            }
            commands.push(lookup);
            item(
                OpenKind::OtherPersistence,
                format!("{name} {} at {at}", crate::report::defang(&n.details)),
                commands,
            )
        }
        _ if n.category == Category::DefenceEvasion => item(
            OpenKind::DefenceEvasion,
            format!(
                "{}:{name} ({r}) at {at} {}",
                n.event_source.trim_end_matches(".amazonaws.com"),
                crate::report::defang(&n.details)
            ),
            vec![lookup],
        ),
        _ if n.category == Category::Impact => item(
            OpenKind::Impact,
            format!(
                "{}:{name} in {r} at {at}",
                n.event_source.trim_end_matches(".amazonaws.com")
            ),
            vec![lookup],
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
            let role_arn = principal.unwrap_or("ROLE-NAME");
            if role_arn.ends_with(":root") {
                return Some(OpenItem {
                    kind: OpenKind::RoleSession,
                    what: format!(
                        "ROOT session {k} of {role_arn} at {at}: no IAM policy can stop it; use an SCP or the account's root credentials"
                    ),
                    commands: Vec::new(),
                });
            }
            let role = role_arn
                .rsplit('/')
                .next()
                .and_then(safe)
                .unwrap_or("ROLE-NAME");
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
    fn a_value_with_a_fake_field_of_its_own_is_trusted_nowhere() {
        let n = Notable {
            time: chrono::Utc::now(),
            region: "us-east-1".into(),
            category: Category::AgainstResponse,
            event_source: "guardduty.amazonaws.com".into(),
            event_name: "CreateIPSet".into(),
            error_code: None,
            details: "name=x detectorId=bogus detectorId=real".into(),
        };
        assert_eq!(field(&n, "detectorId"), None);
        assert_eq!(field(&n, "name"), Some("x"));
        let item = from_notable(&n).unwrap();
        assert!(
            item.commands
                .iter()
                .all(|c| !c.contains("bogus") && !c.contains("real"))
        );
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
