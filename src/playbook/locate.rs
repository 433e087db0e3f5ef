//! Where the incident's key lives, and entering a member account to act there.

use chrono::Utc;
use tracing::error;

use super::{Context, Step, dry_run};
use crate::config::Members;
use crate::incident::{AccountId, Incident};
use crate::ports::Notifier;
use crate::report::{Investigation, Outcome, Report, Status};
use crate::vocab::Arn;

/// Where the incident's key lives, as far as the function is concerned.
pub enum Location<'a> {
    /// This account, or unknown yet: the guard decides with this account's clients.
    Here,
    /// Another account that `KILLSWITCH_MEMBER_*` lets the function enter.
    Member(AccountId, &'a Members),
    /// Another account the function may not enter.
    Outside(AccountId, String),
}

/// Decided from the trigger and the guard's first wave (`sts:GetAccessKeyInfo` answers for any
/// account's key), so locating costs no call of its own.
pub fn locate<'a>(
    incident: &Incident,
    key_account: Option<&AccountId>,
    ctx: &Context<'a>,
) -> Location<'a> {
    let Some(members) = &ctx.config.members else {
        // Single-account: the guard rejects other accounts' keys itself.
        return Location::Here;
    };
    let Some(account) = incident.account.as_ref().or(key_account).cloned() else {
        // STS failed: the guard reports it and Lambda retries.
        return Location::Here;
    };
    if account == ctx.responder.account {
        Location::Here
    } else if members.allows(&account) {
        Location::Member(account, members)
    } else {
        let reason = format!("account {account} is not listed in KILLSWITCH_MEMBER_ACCOUNTS");
        Location::Outside(account, reason)
    }
}

/// `aws`, `aws-us-gov`, `aws-cn`: member roles live in the function's own partition.
pub fn partition(arn: &str) -> &str {
    Arn::parse(arn).map_or("aws", |a| a.partition)
}

pub fn member_role_arn(account: &AccountId, members: &Members, ctx: &Context<'_>) -> String {
    format!(
        "arn:{}:iam::{account}:role/{}",
        partition(&ctx.responder.arn),
        members.role_name
    )
}

/// Names the incident in the member account's CloudTrail; STS allows 2-64 of `[\w+=,.@-]`.
pub fn session_name(incident: &Incident) -> String {
    let mut name = format!("killswitch-{}", incident.key);
    name.truncate(64);
    name
}

/// The report for a key in an account the function did not enter: nothing was changed or
/// searched there; `mark` says why, and the notice goes out from here.
pub async fn not_entered<N: Notifier>(
    notifier: &N,
    incident: &Incident,
    ctx: &Context<'_>,
    account: &AccountId,
    mark: impl FnOnce(&mut Report),
) -> Report {
    let mut report = Report::new(incident, dry_run(incident, ctx), ctx.now);
    report.account = Some(account.to_string());
    mark(&mut report);
    report.investigation = Investigation::NotRun {
        reason: format!("account {account} was not entered"),
    };
    super::notify::finish(&mut report, incident, None, None);
    super::notify::notify(notifier, &mut report).await;
    report
}

/// The report when `sts:AssumeRole` into the member account was refused.
pub fn enter_failed(report: &mut Report, role_arn: &str, account: &AccountId, error: &str) {
    error!(account = %account, error = %error, "could not enter member account");
    report.record(Step::EnterAccount, Outcome::Failed, error, Utc::now());
    report.status = Status::Failed;
    report.summary = format!(
        "Could not assume {role_arn} to act in account {account}, so nothing was changed; Lambda will retry. Check that the member role is deployed there and trusts this function with the configured external ID."
    );
}
