//! What is still open once the key is contained: the doors the attacker opened that containment
//! of the key does not close, each with ready-to-run commands. They lead the subject and the
//! notice, because "CONTAINED" alone reads as "done". Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::{Notable, PivotKind};
use crate::report::{Activity, Investigation, Report, Status, StepResult};
use crate::vocab::Step;

mod doors;
mod pivots;

pub use doors::{door_kind, is_open_notable};

/// How a report step names the permission sets the deny does not reach.
pub const UNCOVERED_PREFIX: &str =
    "permission sets NOT covered by the deny policy in this account:";

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
fn permission_sets(step: &StepResult) -> OpenItem {
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

/// The users the key's holder created in this activity (successful `iam:CreateUser`), by a
/// name IAM accepts.
pub fn created_users(a: &Activity) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
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

/// A value the key's holder may have chosen, fit to paste into a shell: IAM name and ARN
/// characters only, so no quoting, expansion or second command can ride along.
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
    if crate::vocab::is_region_name(r) {
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
    let uncovered = report
        .steps
        .iter()
        .rev()
        .find(|s| s.step == Step::Verify && s.detail.starts_with(UNCOVERED_PREFIX));
    let Investigation::Ran(a) = &report.investigation else {
        return uncovered.map(permission_sets).into_iter().collect();
    };
    if report.dry_run || !lists_open(report.status) {
        return Vec::new();
    }
    let key = &report.access_key_id;
    let mut out = Vec::new();
    pivots::still_active(a, key, &mut out);
    out.extend(uncovered.map(permission_sets));
    out.extend(a.doors.iter().filter_map(doors::from_notable));
    if a.doors_not_kept > 0 {
        out.push(OpenItem {
            kind: OpenKind::More,
            what: format!(
                "{} more distinct changes than could be kept: search CloudTrail for everything the key did",
                a.doors_not_kept
            ),
            commands: vec![search_everything(key)],
        });
    }
    pivots::role_sessions(a, key, &mut out);
    out.extend(
        a.pivots
            .iter()
            .filter(|p| p.pivot.kind != PivotKind::RoleSession)
            .filter_map(|p| pivots::from_pivot(p, key)),
    );
    pivots::incomplete(a, key, &mut out);
    out.sort_by_key(|i| i.kind);
    within_bounds(merged(out), key)
}

/// Whether a report of this status lists what is open: not when nothing was acted on for lack
/// of a real incident here (a sample, another account's key, a dry run).
fn lists_open(status: Status) -> bool {
    match status {
        Status::Sample | Status::Rejected | Status::DryRun => false,
        Status::Contained
        | Status::AlreadyContained
        | Status::Contested
        | Status::Failed
        | Status::Refused
        | Status::KeyNotFound
        | Status::Restored => true,
    }
}

fn search_everything(key: &str) -> String {
    format!(
        "aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key}"
    )
}

/// The same door twice (ten RunInstances in one Region) is one item that says how many.
fn merged(items: Vec<OpenItem>) -> Vec<(OpenItem, usize)> {
    let mut merged: Vec<(OpenItem, usize)> = Vec::new();
    for item in items {
        match merged
            .iter_mut()
            .find(|(m, _)| m.kind == item.kind && m.commands == item.commands)
        {
            Some((_, more)) => *more += 1,
            None => merged.push((item, 0)),
        }
    }
    merged
}

/// At most `MAX_PER_KIND` items of a kind; the rest counted in one item per kind.
fn within_bounds(merged: Vec<(OpenItem, usize)>, key: &str) -> Vec<OpenItem> {
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
            commands: vec![search_everything(key)],
        });
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::doors::from_notable;
    use super::*;
    use crate::analysis::Category;

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
