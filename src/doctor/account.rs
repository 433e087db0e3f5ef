//! The accounts around the function: GuardDuty in every enabled Region, a trail that logs, and
//! each member account entered as its member role (as the function enters it).

use super::{Check, Function, Place, Preflight, permissions, read_fix, unreadable};
use crate::config::Config;
use crate::error::AwsFailure;
use crate::vocab::Arn;

/// GuardDuty has an enabled detector in every Region enabled for the account. In a member
/// account the member role may not read GuardDuty (member-role.yaml does not grant it): that
/// is a warning, not a failure.
pub(super) async fn guardduty<P: Preflight>(
    p: &P,
    account: &str,
    who: &str,
    member: bool,
) -> Check {
    let regions = match p.enabled_regions().await {
        Ok(r) => r,
        Err(e) => return soften(unreadable("guardduty", &e, who), member).of(account),
    };
    let reads = futures::future::join_all(regions.iter().map(|r| p.detectors(r))).await;
    let mut off = Vec::new();
    let mut unread = Vec::new();
    for (region, read) in regions.iter().zip(reads) {
        match read {
            Ok(detectors) if detectors.iter().any(|d| d.enabled) => {}
            Ok(_) => off.push(region.as_str()),
            Err(e) => unread.push((region.as_str(), e)),
        }
    }
    let check = if let Some((_, e)) = unread.first() {
        let names: Vec<&str> = unread.iter().map(|(r, _)| *r).collect();
        let which = if names.len() == regions.len() {
            format!("any of the {} enabled Regions", names.len())
        } else {
            names.join(", ")
        };
        soften(
            Check::fail(
                "guardduty",
                // The first refusal says why; the others say the same.
                format!("cannot read GuardDuty in {which}: {e}"),
                if member {
                    format!(
                        "grant guardduty:ListDetectors and guardduty:GetDetector to {who} (member-role.yaml does not), or check from the GuardDuty administrator account"
                    )
                } else {
                    read_fix(e, who)
                },
            ),
            member,
        )
    } else if !off.is_empty() {
        Check::fail(
            "guardduty",
            format!(
                "no enabled detector in {} of {} enabled Regions ({}): findings there never come",
                off.len(),
                regions.len(),
                off.join(", ")
            ),
            "enable GuardDuty in every Region (aws guardduty create-detector --enable --region REGION), or org-wide from its delegated administrator with auto-enable",
        )
    } else {
        Check::ok(
            "guardduty",
            format!("enabled in all {} enabled Regions", regions.len()),
        )
    };
    check.of(account)
}

/// In a member account an unreadable service is a warning: its role was not made for doctor.
fn soften(check: Check, member: bool) -> Check {
    if member && check.verdict == super::Verdict::Fail {
        Check {
            verdict: super::Verdict::Warn,
            ..check
        }
    } else {
        check
    }
}

/// A trail logs in the function's Region, ideally a multi-Region one, with management events
/// read and write: management events reach EventBridge only through a logging trail (the pivot
/// rules see nothing without one, and `AssumeRole` only with the reads), and Event history keeps
/// only 90 days.
pub(super) async fn cloudtrail<P: Preflight>(p: &P, region: &str, who: &str) -> Check {
    let trails = match p.trails().await {
        Ok(t) => t,
        Err(e) => return unreadable("cloudtrail", &e, who),
    };
    let logging: Vec<_> = trails.iter().filter(|t| t.logging).collect();
    let start =
        "start one: aws cloudtrail start-logging --name TRAIL (or create a multi-Region trail)";
    let Some(t) = logging
        .iter()
        .find(|t| t.multi_region)
        .or_else(|| logging.first())
    else {
        return Check::fail(
            "cloudtrail",
            format!(
                "no trail logs in {region} ({} trail(s), none logging): the pivot rules receive no IAM or STS call, and the record of what a key's holder did is Event history's 90 days only",
                trails.len()
            ),
            start,
        );
    };
    if let Some(check) = management(&logging) {
        return check;
    }
    if t.multi_region {
        Check::ok(
            "cloudtrail",
            format!(
                "{} logs, multi-Region (home {}), management events read and write: the pivot rules receive IAM and STS calls",
                t.name, t.home_region
            ),
        )
    } else {
        Check::warn(
            "cloudtrail",
            format!(
                "only single-Region trails log ({}): other Regions' calls are kept 90 days only",
                t.name
            ),
            "make a trail multi-Region: aws cloudtrail update-trail --name TRAIL --is-multi-region-trail",
        )
    }
}

/// What the logging trails' selectors leave out of the pivot rules, if anything.
fn management(logging: &[&super::Trail]) -> Option<Check> {
    let known: Vec<_> = logging.iter().filter_map(|t| t.management).collect();
    let selectors = "aws cloudtrail put-event-selectors --trail-name TRAIL --event-selectors '[{\"ReadWriteType\":\"All\",\"IncludeManagementEvents\":true}]'";
    if known.is_empty() {
        return Some(Check::warn(
            "cloudtrail",
            "the logging trails' event selectors could not be read: whether management events reach the pivot rules is unknown",
            "grant cloudtrail:GetEventSelectors to whoever runs doctor",
        ));
    }
    if !known.iter().any(|m| m.writes) {
        return Some(Check::fail(
            "cloudtrail",
            "no logging trail includes management write events: the pivot rules receive no IAM write (a holder's revert or pivot is seen only in the follow-through)",
            selectors,
        ));
    }
    (!known.iter().any(|m| m.reads)).then(|| {
        Check::warn(
            "cloudtrail",
            "the logging trails include management writes only: sts:AssumeRole is a read-only event and never reaches the pivot rules",
            selectors,
        )
    })
}

/// Each member account (`KILLSWITCH_MEMBER_ACCOUNTS`) entered as the function enters it: the
/// member role, with the external ID. Then, as that role: GuardDuty and its own permissions.
pub(super) async fn members<P: Preflight>(
    p: &P,
    f: &Function,
    config: &Config,
    at: Place<'_>,
    caller: &str,
    checks: &mut Vec<Check>,
) {
    let Some(members) = &config.members else {
        return;
    };
    for account in members.accounts.iter().map(|a| a.as_str()) {
        if account == at.account {
            // The function acts in its own account without a role.
            continue;
        }
        let role_arn = format!(
            "arn:{}:iam::{account}:role/{}",
            at.partition, members.role_name
        );
        match p.enter(&role_arn, &members.external_id).await {
            Ok((member, session)) => {
                checks.push(
                    Check::ok(
                        "member_role",
                        format!("entered {role_arn}: the checks of {account} run as {session}"),
                    )
                    .of(account),
                );
                checks.push(guardduty(&member, account, &session, true).await);
                let probes = permissions::member_probes(config, Place { account, ..at });
                let check = permissions::check(&member, &role_arn, &probes, &session, true).await;
                checks.push(check.of(account));
            }
            Err(e) => checks.push(refused(&e, &role_arn, f, caller).of(account)),
        }
    }
}

/// The member role would not let the caller in. Only the function's own role is trusted
/// (member-role.yaml), so for anyone else that proves nothing about the function.
fn refused(e: &crate::error::Error, role_arn: &str, f: &Function, caller: &str) -> Check {
    let setup = format!(
        "deploy member-role.yaml in that account with ResponderRoleName = {} and the stack's MemberExternalId; MemberRoleName must match KILLSWITCH_MEMBER_ROLE_NAME",
        Arn::parse(&f.role_arn).map_or(f.role_arn.as_str(), |a| a.name())
    );
    if !e.is(AwsFailure::AccessDenied) {
        return Check::fail(
            "member_role",
            format!("cannot enter {role_arn}: {}", e.chain()),
            setup,
        );
    }
    if is_role_session(caller, &f.role_arn) {
        return Check::fail(
            "member_role",
            format!(
                "the function's role cannot enter {role_arn} (AccessDenied): containment there fails"
            ),
            setup,
        );
    }
    Check::warn(
        "member_role",
        format!(
            "{caller} may not enter {role_arn} (AccessDenied): its trust policy admits only the function's role, so whether the function can is not known from here"
        ),
        format!("let doctor's role enter it too (docs/doctor.md#member-accounts), or {setup}"),
    )
}

/// `caller` is a session of the role `role_arn`.
fn is_role_session(caller: &str, role_arn: &str) -> bool {
    match (Arn::parse(caller), Arn::parse(role_arn)) {
        (Some(c), Some(r)) => {
            c.account == r.account
                && c.of_type("assumed-role")
                    .and_then(|s| s.split('/').next())
                    .is_some_and(|name| name == r.name())
        }
        _ => false,
    }
}
