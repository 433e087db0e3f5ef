//! The response: guard, contain, verify, investigate, notify. Containment comes first and nothing
//! after it can delay or undo it; CloudTrail and SNS trouble only degrade the report.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::Instant;
use tracing::{Instrument, error, info, info_span, warn};

use crate::analysis::PivotKind;
use crate::config::{Config, Members};
use crate::error::Error;
use crate::incident::{
    AccessKeyId, AccountId, Incident, KeyKind, Principal, SampleFinding, Trigger,
};
use crate::investigation::{self, Window};
use crate::policy::{self, CutoffDecision};
use crate::ports::{
    Accounts, ActivityLog, Identity, KeyChange, KeyStatus, KeyUsage, Notifier, PolicyTarget,
};
use crate::report::{
    Check, Investigation, Notification, Outcome, PivotContainment, Report, Status, Verification,
};

/// The steps, each with the IAM actions it calls. The execution role grants exactly their union.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    EnterAccount,
    CheckAccount,
    ResolveOwner,
    DeactivateKey,
    DenyUser,
    RevokeRoleSessions,
    Verify,
    Investigate,
    Notify,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::EnterAccount,
        Step::CheckAccount,
        Step::ResolveOwner,
        Step::DeactivateKey,
        Step::DenyUser,
        Step::RevokeRoleSessions,
        Step::Verify,
        Step::Investigate,
        Step::Notify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::EnterAccount => "enter_account",
            Step::CheckAccount => "check_account",
            Step::ResolveOwner => "resolve_owner",
            Step::DeactivateKey => "deactivate_key",
            Step::DenyUser => "deny_user",
            Step::RevokeRoleSessions => "revoke_role_sessions",
            Step::Verify => "verify",
            Step::Investigate => "investigate",
            Step::Notify => "notify",
        }
    }

    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Step::EnterAccount => &["sts:AssumeRole"],
            Step::CheckAccount => &["sts:GetAccessKeyInfo"],
            Step::ResolveOwner => &["iam:GetAccessKeyLastUsed"],
            Step::DeactivateKey => &["iam:ListAccessKeys", "iam:UpdateAccessKey"],
            Step::DenyUser => &["iam:GetUserPolicy", "iam:PutUserPolicy"],
            Step::RevokeRoleSessions => &["iam:GetRolePolicy", "iam:PutRolePolicy"],
            Step::Verify => &[
                "iam:ListAccessKeys",
                "iam:GetUserPolicy",
                "iam:GetRolePolicy",
                "iam:UpdateAccessKey",
                "iam:PutUserPolicy",
                "iam:PutRolePolicy",
            ],
            Step::Investigate => &["cloudtrail:LookupEvents", "account:ListRegions"],
            Step::Notify => &["sns:Publish"],
        }
    }
}

/// Every IAM action the function calls (`sts:GetCallerIdentity` needs no permission).
pub fn required_permissions() -> BTreeSet<&'static str> {
    Step::ALL
        .iter()
        .flat_map(|s| s.permissions().iter().copied())
        .collect()
}

/// What the member role (`member-role.yaml`) must grant: every step that runs in the finding's
/// account. Entering it and notifying happen in the function's own account.
pub fn member_permissions() -> BTreeSet<&'static str> {
    Step::ALL
        .iter()
        .filter(|s| !matches!(s, Step::EnterAccount | Step::Notify))
        .flat_map(|s| s.permissions().iter().copied())
        .collect()
}

/// The identity the function runs as, learnt once at start-up (`sts:GetCallerIdentity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Responder {
    pub account: crate::incident::AccountId,
    pub arn: String,
    pub role_name: Option<String>,
    pub user_name: Option<String>,
}

impl Responder {
    pub fn from_arn(account: crate::incident::AccountId, arn: &str) -> Self {
        let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
        let (role_name, user_name) = if let Some(rest) = resource.strip_prefix("assumed-role/") {
            (rest.split('/').next().map(str::to_owned), None)
        } else if let Some(rest) = resource.strip_prefix("role/") {
            (rest.rsplit('/').next().map(str::to_owned), None)
        } else if let Some(rest) = resource.strip_prefix("user/") {
            (None, rest.rsplit('/').next().map(str::to_owned))
        } else {
            (None, None)
        };
        Self {
            account,
            arn: arn.to_owned(),
            role_name,
            user_name,
        }
    }
}

/// Everything a response depends on besides the cloud: settings, who we are, the clock.
pub struct Context<'a> {
    pub config: &'a Config,
    pub responder: &'a Responder,
    pub now: DateTime<Utc>,
    /// The investigation stops before this; notification still follows.
    pub investigation_deadline: Instant,
    /// `--dry-run` on the command line; it can only turn dry run on.
    pub force_dry_run: bool,
}

/// What containment will write, once guards have passed.
#[derive(Clone, Debug, PartialEq)]
enum Plan {
    User { user: String, deactivate: bool },
    Role { role: String, cutoff: DateTime<Utc> },
}

/// Runs the whole response for one incident and returns its report (also on failure).
pub async fn respond<C>(cloud: &C, incident: &Incident, ctx: &Context<'_>) -> Report
where
    C: Identity + ActivityLog + Notifier + Accounts,
{
    let span = info_span!("incident", incident_id = %incident.id, access_key_id = %incident.key);
    async {
        match locate(cloud, incident, ctx).await {
            Location::Here => respond_in(cloud, cloud, incident, ctx, None).await,
            Location::Member(account, members) => {
                let role_arn = format!(
                    "arn:{}:iam::{account}:role/{}",
                    partition(&ctx.responder.arn),
                    members.role_name
                );
                let session = session_name(incident);
                match cloud
                    .enter(&role_arn, &members.external_id, &session)
                    .await
                {
                    Ok(entered) => {
                        info!(account = %account, role = %role_arn, "entered member account");
                        let responder = Responder::from_arn(account.clone(), &entered.arn);
                        let member_ctx = Context {
                            config: ctx.config,
                            responder: &responder,
                            now: ctx.now,
                            investigation_deadline: ctx.investigation_deadline,
                            force_dry_run: ctx.force_dry_run,
                        };
                        let entered_note = format!(
                            "assumed {role_arn} (session {session}) to act in account {account}"
                        );
                        respond_in(
                            &entered.clients,
                            cloud,
                            incident,
                            &member_ctx,
                            Some((account, entered_note)),
                        )
                        .await
                    }
                    Err(e) => {
                        error!(account = %account, error = %e.chain(), "could not enter member account");
                        not_entered(cloud, incident, ctx, &account, |report| {
                            report.record(Step::EnterAccount, Outcome::Failed, e.chain(), Utc::now());
                            report.status = Status::Failed;
                            report.summary = format!(
                                "Could not assume {role_arn} to act in account {account}, so nothing was changed; Lambda will retry. Check that the member role is deployed there and trusts this function with the configured external ID."
                            );
                        })
                        .await
                    }
                }
            }
            Location::Outside(account, reason) => {
                not_entered(cloud, incident, ctx, &account, |report| {
                    reject(report, reason, ctx.now);
                })
                .await
            }
        }
    }
    .instrument(span)
    .await
}

/// Where the incident's key lives, as far as the function is concerned.
enum Location<'a> {
    /// This account, or unknown yet: the guard decides with this account's clients.
    Here,
    /// Another account that `KILLSWITCH_MEMBER_*` lets the function enter.
    Member(AccountId, &'a Members),
    /// Another account the function may not enter.
    Outside(AccountId, String),
}

async fn locate<'a, C: Identity>(
    cloud: &C,
    incident: &Incident,
    ctx: &Context<'a>,
) -> Location<'a> {
    let Some(members) = &ctx.config.members else {
        // Single-account: the guard rejects other accounts' keys itself.
        return Location::Here;
    };
    let account = match &incident.account {
        Some(a) => a.clone(),
        // STS answers for any account's key; a failure here is retried by the guard.
        None => match cloud.key_account(&incident.key).await {
            Ok(a) => a,
            Err(_) => return Location::Here,
        },
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

/// The report for a key in an account the function did not enter: nothing was changed or
/// searched there; `mark` says why, and the notice goes out from here.
async fn not_entered<N: Notifier>(
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
    finish(&mut report, incident, None);
    notify(notifier, &mut report).await;
    report
}

fn dry_run(incident: &Incident, ctx: &Context<'_>) -> bool {
    ctx.config.dry_run || ctx.force_dry_run || incident.dry_run
}

/// `aws`, `aws-us-gov`, `aws-cn`: member roles live in the function's own partition.
fn partition(arn: &str) -> &str {
    arn.split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// Names the incident in the member account's CloudTrail; STS allows 2-64 of `[\w+=,.@-]`.
fn session_name(incident: &Incident) -> String {
    let mut name = format!("killswitch-{}", incident.key);
    name.truncate(64);
    name
}

/// Health sends each global event twice (us-east-1, and a backup through us-west-2). The backup
/// still acts, in case the primary was lost, but when it finds the key already contained the
/// primary has been handled and notified: a second notice would only be noise.
fn is_redundant_backup(incident: &Incident, report: &Report) -> bool {
    matches!(
        incident.trigger,
        Trigger::Health {
            backup_event: true,
            ..
        }
    ) && report.status == Status::AlreadyContained
}

/// The response, with `iam` acting in the key's account and `notifier` in the function's own.
async fn respond_in<I, N>(
    cloud: &I,
    notifier: &N,
    incident: &Incident,
    ctx: &Context<'_>,
    entered: Option<(AccountId, String)>,
) -> Report
where
    I: Identity + ActivityLog,
    N: Notifier,
{
    let dry_run = dry_run(incident, ctx);
    let mut report = Report::new(incident, dry_run, ctx.now);
    let member_account = entered.as_ref().map(|(a, _)| a.to_string());
    if let Some((account, note)) = entered {
        report.account = Some(account.to_string());
        report.record(Step::EnterAccount, Outcome::Done, note, Utc::now());
    }
    let (plan, usage) = guard(cloud, incident, ctx, &mut report).await;
    let verify_target = match plan {
        Some(plan) => {
            contain(cloud, incident, &plan, dry_run, &mut report).await;
            Some(plan)
        }
        None => None,
    };
    let hints = region_hints(incident, usage.as_ref());
    let should_verify = verify_target.is_some() && !dry_run && report.status != Status::KeyNotFound;
    // Another account's key has no history here; a refused principal of ours still does.
    let should_investigate = report.status != Status::Rejected;
    // The second read-back waits out IAM's propagation window; CloudTrail is read meanwhile.
    let (verification, investigation) = tokio::join!(
        async {
            match (&verify_target, should_verify) {
                (Some(plan), true) => Some(verify(cloud, &incident.key, plan, ctx).await),
                _ => None,
            }
        },
        async {
            if should_investigate {
                let (regions, source) = investigation::regions(cloud, ctx.config, &hints).await;
                let window = Window::new(ctx.config, ctx.now, ctx.investigation_deadline);
                investigation::investigate(cloud, &incident.key, &regions, source, window).await
            } else {
                Investigation::NotRun {
                    reason: "the key is not this account's".into(),
                }
            }
        }
    );
    if let Some(v) = verification {
        if v.reapplied {
            report.record(
                Step::Verify,
                Outcome::Done,
                "containment was undone and has been re-applied once",
                Utc::now(),
            );
        }
        if !v.holds {
            report.status = Status::Failed;
        } else if v.contested && report.status != Status::Failed {
            report.status = Status::Contested;
        }
        report.verification = Some(v);
    }
    report.investigation = investigation;
    follow_pivots(cloud, incident, ctx, &mut report, verify_target.as_ref()).await;
    finish(&mut report, incident, verify_target.as_ref());
    if let Some(account) = member_account
        && !report.undo.is_empty()
    {
        report.next_steps.push(format!(
                "The undo commands below act in member account {account}: run them with that account's credentials."
            ));
    }
    if is_redundant_backup(incident, &report) {
        info!(
            step = "notify",
            outcome = "suppressed",
            "backup copy of a handled Health event"
        );
        report.notification = Notification::Suppressed {
            reason: "AWS Health backup copy (us-west-2) of an event already handled: the key was already contained".into(),
        };
    } else {
        notify(notifier, &mut report).await;
    }
    if report.containment_failed() {
        error!(status = ?report.status, "containment failed");
    }
    report
}

/// Guard, contain and verify one incident, without investigation or notification: for the
/// credentials the attacker minted, under the same protections as the leaked key.
async fn contain_only<C: Identity>(
    cloud: &C,
    incident: &Incident,
    ctx: &Context<'_>,
) -> PivotContainment {
    let dry_run = dry_run(incident, ctx);
    let mut report = Report::new(incident, dry_run, ctx.now);
    let (plan, _) = guard(cloud, incident, ctx, &mut report).await;
    if let Some(plan) = &plan {
        contain(cloud, incident, plan, dry_run, &mut report).await;
        if !dry_run && report.status != Status::KeyNotFound {
            let v = verify(cloud, &incident.key, plan, ctx).await;
            if !v.holds {
                report.status = Status::Failed;
            } else if v.contested && report.status != Status::Failed {
                report.status = Status::Contested;
            }
        }
    }
    finish(&mut report, incident, plan.as_ref());
    PivotContainment {
        status: report.status,
        summary: report.summary,
        steps: report.steps,
    }
}

/// Lists a ready containment for every pivot, and with `KILLSWITCH_FOLLOW_PIVOTS` contains them.
async fn follow_pivots<C: Identity>(
    cloud: &C,
    incident: &Incident,
    ctx: &Context<'_>,
    report: &mut Report,
    plan: Option<&Plan>,
) {
    let Investigation::Ran(activity) = &mut report.investigation else {
        return;
    };
    let account = ctx.responder.account.as_str();
    let mut to_contain = Vec::new();
    for (i, p) in activity.pivots.iter_mut().enumerate() {
        p.contain_with = investigation::containment_request(&p.pivot, &incident.key, account);
        let principal = match p.pivot.kind {
            PivotKind::AccessKey => Principal::IamUser {
                // CreateAccessKey without UserName acts on the caller: the leaked key's owner.
                user_name: match p.pivot.principal.clone().or_else(|| match plan {
                    Some(Plan::User { user, .. }) => Some(user.clone()),
                    _ => None,
                }) {
                    Some(u) => u,
                    None => continue,
                },
            },
            PivotKind::RoleSession => match p.pivot.role_in(account) {
                Some(role) => Principal::AssumedRole {
                    role_name: role,
                    session_name: p.pivot.role_session_name.clone(),
                },
                // A role in another account: listed for a human, not ours to change.
                None => continue,
            },
            PivotKind::UserSession => continue,
        };
        let Ok(key) = AccessKeyId::parse(&p.pivot.access_key_id) else {
            continue;
        };
        to_contain.push((
            i,
            Incident {
                id: format!("pivot:{}:{}", incident.key, key),
                trigger: Trigger::Pivot {
                    parent_key: incident.key.to_string(),
                    via: p.pivot.via.clone(),
                },
                key,
                principal,
                account: None,
                dry_run: incident.dry_run,
            },
        ));
    }
    if !ctx.config.follow_pivots || to_contain.is_empty() {
        return;
    }
    let results =
        futures::future::join_all(to_contain.iter().map(|(_, i)| contain_only(cloud, i, ctx)))
            .await;
    let mut failed = false;
    for ((index, pivot_incident), result) in to_contain.iter().zip(results) {
        info!(pivot = %pivot_incident.key, status = ?result.status, "pivot containment");
        failed |= result.status == Status::Failed;
        activity.pivots[*index].containment = Some(result);
    }
    if failed {
        report.status = Status::Failed;
        report.summary = format!(
            "{} A credential the attacker minted could NOT be contained.",
            report.summary
        );
    }
}

/// Regions the trigger or IAM point at, searched in any case.
fn region_hints(incident: &Incident, usage: Option<&KeyUsage>) -> Vec<String> {
    usage
        .and_then(|u| u.region.clone())
        .into_iter()
        .chain(match &incident.trigger {
            Trigger::GuardDuty { region, .. } => region.clone(),
            _ => None,
        })
        .collect()
}

/// A GuardDuty sample: a notice, no IAM call.
pub async fn respond_to_sample<N: Notifier>(
    cloud: &N,
    sample: &SampleFinding,
    now: DateTime<Utc>,
) -> Report {
    let mut report = Report::sample(sample, now);
    info!(finding_id = %sample.finding_id, "sample finding ignored");
    notify(cloud, &mut report).await;
    report
}

fn refuse(
    report: &mut Report,
    step: Step,
    reason: String,
    now: DateTime<Utc>,
) -> (Option<Plan>, Option<KeyUsage>) {
    warn!(reason = %reason, "refused");
    report.status = Status::Refused;
    report.summary = format!("Not contained: {reason}. A human must decide.");
    report.record(step, Outcome::Skipped, reason, now);
    (None, None)
}

/// Input that names another account's key: an error for the caller, nothing changed.
fn reject(
    report: &mut Report,
    reason: String,
    now: DateTime<Utc>,
) -> (Option<Plan>, Option<KeyUsage>) {
    warn!(reason = %reason, "rejected");
    report.status = Status::Rejected;
    report.summary = format!("Rejected: {reason}. Nothing was changed.");
    report.record(Step::CheckAccount, Outcome::Skipped, reason, now);
    (None, None)
}

/// Checks everything that can refuse the incident, and resolves whose key it is.
async fn guard<C: Identity>(
    cloud: &C,
    incident: &Incident,
    ctx: &Context<'_>,
    report: &mut Report,
) -> (Option<Plan>, Option<KeyUsage>) {
    let me = ctx.responder;
    let now = ctx.now;
    match &incident.principal {
        Principal::Root => {
            return refuse(report, Step::ResolveOwner, "the key belongs to the root user, which IAM policies cannot restrict; delete or deactivate root keys from the root user or with sts:AssumeRoot from the management account".into(), now);
        }
        Principal::Other { user_type } => {
            return refuse(
                report,
                Step::ResolveOwner,
                format!("principal type {user_type} is not something killswitch contains"),
                now,
            );
        }
        _ => {}
    }
    if let Some(acct) = &incident.account
        && acct != &me.account
    {
        return reject(
            report,
            format!(
                "the trigger is for account {acct}, this function runs in {}",
                me.account
            ),
            now,
        );
    }
    let wants_usage = incident.key.kind() == KeyKind::LongTerm;
    let (account, usage) = tokio::join!(cloud.key_account(&incident.key), async {
        if wants_usage {
            Some(cloud.key_usage(&incident.key).await)
        } else {
            None
        }
    });
    match account {
        Ok(owner) if owner == me.account => {
            report.record(
                Step::CheckAccount,
                Outcome::Done,
                format!("key belongs to this account ({owner})"),
                now,
            );
        }
        Ok(owner) => {
            return reject(
                report,
                format!("the key belongs to account {owner}, not to {}", me.account),
                now,
            );
        }
        Err(e) => {
            report.record(Step::CheckAccount, Outcome::Failed, e.chain(), now);
            report.status = Status::Failed;
            report.summary = "Could not confirm the key belongs to this account, so nothing was changed; Lambda will retry.".into();
            return (None, None);
        }
    }
    let usage = match usage {
        None => None,
        Some(Ok(u)) => u,
        Some(Err(e)) => {
            report.record(Step::ResolveOwner, Outcome::Failed, e.chain(), now);
            None
        }
    };
    let plan = match (&incident.principal, incident.key.kind()) {
        (Principal::AssumedRole { role_name, .. }, _) => Plan::Role {
            role: role_name.clone(),
            cutoff: policy::cutoff_for(now),
        },
        (Principal::IamUser { user_name }, kind) => {
            // IAM knows the owner for sure; the trigger's name is only a hint.
            let user = match &usage {
                Some(u) if &u.user_name != user_name => {
                    report.record(Step::ResolveOwner, Outcome::Done, format!("trigger named user {user_name}, IAM says the key belongs to {}; using IAM's answer", u.user_name), now);
                    u.user_name.clone()
                }
                _ => user_name.clone(),
            };
            Plan::User {
                user,
                deactivate: kind == KeyKind::LongTerm,
            }
        }
        (Principal::Unresolved, KeyKind::LongTerm) => match &usage {
            Some(u) => {
                report.record(
                    Step::ResolveOwner,
                    Outcome::Done,
                    format!("IAM says the key belongs to user {}", u.user_name),
                    now,
                );
                Plan::User {
                    user: u.user_name.clone(),
                    deactivate: true,
                }
            }
            None if report.steps.iter().any(|s| s.outcome == Outcome::Failed) => {
                report.status = Status::Failed;
                report.summary = "Could not find out whose key this is, so nothing was changed; Lambda will retry.".into();
                return (None, None);
            }
            None => {
                report.status = Status::KeyNotFound;
                report.summary = "IAM does not know this key in this account: it was deleted or never existed here. Nothing to contain.".into();
                report.record(
                    Step::ResolveOwner,
                    Outcome::NotFound,
                    "GetAccessKeyLastUsed does not know the key",
                    now,
                );
                return (None, None);
            }
        },
        (Principal::Unresolved, KeyKind::Temporary) => {
            return refuse(report, Step::ResolveOwner, "a temporary (ASIA) key cannot be traced to its role or user through IAM; send a manual request with role_name or user_name".into(), now);
        }
        (Principal::Root | Principal::Other { .. }, _) => return (None, None),
    };
    if let Some(reason) = protected_reason(&plan, ctx) {
        return refuse(report, Step::ResolveOwner, reason, now);
    }
    if matches!(&plan, Plan::User { user, .. } if user == "root" || user == "<root_account>") {
        return refuse(
            report,
            Step::ResolveOwner,
            "the key belongs to the root user, which IAM policies cannot restrict".into(),
            now,
        );
    }
    (Some(plan), usage)
}

fn protected_reason(plan: &Plan, ctx: &Context<'_>) -> Option<String> {
    let listed = |kind: &str, name: &str| {
        ctx.config.protected.iter().any(|p| {
            if p.starts_with("arn:") {
                let resource = p.splitn(6, ':').nth(5).unwrap_or("");
                resource.starts_with(&format!("{kind}/"))
                    && resource.rsplit('/').next() == Some(name)
            } else {
                p == name
            }
        })
    };
    match plan {
        Plan::User { user, .. } => {
            if ctx.responder.user_name.as_deref() == Some(user) {
                Some(format!("user {user} is killswitch's own identity"))
            } else if listed("user", user) {
                Some(format!(
                    "user {user} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else {
                None
            }
        }
        Plan::Role { role, .. } => {
            if ctx.responder.role_name.as_deref() == Some(role) {
                Some(format!("role {role} is killswitch's own role"))
            } else if role.starts_with("AWSServiceRoleFor") {
                Some(format!(
                    "role {role} is a service-linked role: AWS does not allow its policies to be changed"
                ))
            } else if role.starts_with("AWSReservedSSO_") {
                Some(format!(
                    "role {role} belongs to IAM Identity Center: revoke the user's sessions in Identity Center instead"
                ))
            } else if listed("role", role) {
                Some(format!(
                    "role {role} is listed in KILLSWITCH_PROTECTED_PRINCIPALS"
                ))
            } else {
                None
            }
        }
    }
}

async fn contain<C: Identity>(
    cloud: &C,
    incident: &Incident,
    plan: &Plan,
    dry_run: bool,
    report: &mut Report,
) {
    let key = &incident.key;
    match plan {
        Plan::User { user, deactivate } => {
            if *deactivate {
                deactivate_key(cloud, user, key, dry_run, report).await;
            }
            let target = PolicyTarget::User(user.clone());
            put_deny_all(cloud, &target, dry_run, report).await;
        }
        Plan::Role { role, cutoff } => {
            revoke_sessions(cloud, role, *cutoff, dry_run, report).await;
        }
    }
    let containment: Vec<_> = report
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.step,
                Step::DeactivateKey | Step::DenyUser | Step::RevokeRoleSessions
            )
        })
        .collect();
    report.status = if containment.iter().any(|s| s.outcome == Outcome::Failed) {
        Status::Failed
    } else if dry_run {
        Status::DryRun
    } else if containment.iter().any(|s| s.outcome == Outcome::NotFound) && containment.len() == 1 {
        Status::KeyNotFound
    } else if containment
        .iter()
        .all(|s| s.outcome == Outcome::AlreadyDone)
    {
        Status::AlreadyContained
    } else {
        Status::Contained
    };
}

async fn deactivate_key<C: Identity>(
    cloud: &C,
    user: &str,
    key: &AccessKeyId,
    dry_run: bool,
    report: &mut Report,
) {
    let status = match cloud.key_status(user, key).await {
        Ok(s) => s,
        Err(e) => {
            // The read only decides what to report; the write is idempotent, so it goes ahead.
            warn!(error = %e.chain(), "could not read the key's status; deactivating anyway");
            Some(KeyStatus::Active)
        }
    };
    match status {
        None => report.record(
            Step::DeactivateKey,
            Outcome::NotFound,
            format!("user {user} holds no key {key}"),
            Utc::now(),
        ),
        Some(KeyStatus::Inactive | KeyStatus::Other) => report.record(
            Step::DeactivateKey,
            Outcome::AlreadyDone,
            format!("key {key} of user {user} was already inactive"),
            Utc::now(),
        ),
        Some(KeyStatus::Active) if dry_run => report.record(
            Step::DeactivateKey,
            Outcome::WouldDo,
            format!("would set key {key} of user {user} to Inactive"),
            Utc::now(),
        ),
        Some(KeyStatus::Active) => match cloud.deactivate_key(user, key).await {
            Ok(KeyChange::Deactivated) => report.record(
                Step::DeactivateKey,
                Outcome::Done,
                format!("key {key} of user {user} set to Inactive (not deleted)"),
                Utc::now(),
            ),
            Ok(KeyChange::NotFound) => report.record(
                Step::DeactivateKey,
                Outcome::NotFound,
                format!("key {key} vanished from user {user}"),
                Utc::now(),
            ),
            Err(e) => report.record(Step::DeactivateKey, Outcome::Failed, e.chain(), Utc::now()),
        },
    }
}

async fn put_deny_all<C: Identity>(
    cloud: &C,
    target: &PolicyTarget,
    dry_run: bool,
    report: &mut Report,
) {
    let name = policy::USER_POLICY_NAME;
    match cloud.read_policy(target, name).await {
        Ok(Some(doc)) if policy::is_deny_all(&doc) => {
            report.record(
                Step::DenyUser,
                Outcome::AlreadyDone,
                format!("{name} already on {target}"),
                Utc::now(),
            );
            return;
        }
        Ok(_) => {}
        Err(e) => {
            // Reading is only for reporting; the write below is what matters.
            warn!(error = %e.chain(), "could not read existing policy");
        }
    }
    if dry_run {
        report.record(
            Step::DenyUser,
            Outcome::WouldDo,
            format!("would put inline policy {name} (Deny * on *) on {target}"),
            Utc::now(),
        );
        return;
    }
    match cloud.put_policy(target, name, &policy::deny_all()).await {
        Ok(()) => report.record(Step::DenyUser, Outcome::Done, format!("inline policy {name} (Deny * on *) put on {target}"), Utc::now()),
        Err(e) if e.aws_code() == Some("LimitExceeded") => report.record(
            Step::DenyUser,
            Outcome::Failed,
            format!("{target} has no room left in its inline-policy quota, so {name} could not be added (the key deactivation stands); attach the managed deny policy by hand: aws iam attach-user-policy --user-name NAME --policy-arn arn:aws:iam::aws:policy/AWSDenyAll"),
            Utc::now(),
        ),
        Err(e) => report.record(Step::DenyUser, Outcome::Failed, e.chain(), Utc::now()),
    }
}

async fn revoke_sessions<C: Identity>(
    cloud: &C,
    role: &str,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    report: &mut Report,
) {
    let target = PolicyTarget::Role(role.to_owned());
    let name = policy::ROLE_POLICY_NAME;
    let existing = match cloud.read_policy(&target, name).await {
        Ok(doc) => doc.as_deref().and_then(policy::revocation_cutoff),
        Err(e) => {
            // Without the current cutoff we cannot promise not to move it backwards.
            report.record(
                Step::RevokeRoleSessions,
                Outcome::Failed,
                e.chain(),
                Utc::now(),
            );
            return;
        }
    };
    match policy::decide_cutoff(existing, cutoff) {
        CutoffDecision::Keep(current) => report.record(
            Step::RevokeRoleSessions,
            Outcome::AlreadyDone,
            format!("{name} on role {role} already revokes sessions issued before {} (kept: never moved backwards)", policy::format_cutoff(current)),
            Utc::now(),
        ),
        CutoffDecision::Write(new) if dry_run => report.record(
            Step::RevokeRoleSessions,
            Outcome::WouldDo,
            format!("would put {name} on role {role}: deny sessions issued before {}", policy::format_cutoff(new)),
            Utc::now(),
        ),
        CutoffDecision::Write(new) => match cloud.put_policy(&target, name, &policy::revoke_older_sessions(new)).await {
            Ok(()) => report.record(
                Step::RevokeRoleSessions,
                Outcome::Done,
                format!("{name} put on role {role}: every session issued before {} is denied", policy::format_cutoff(new)),
                Utc::now(),
            ),
            Err(e) => report.record(Step::RevokeRoleSessions, Outcome::Failed, e.chain(), Utc::now()),
        },
    }
}

/// Reads containment back now and after the propagation delay; re-applies once if undone.
async fn verify<C: Identity>(
    cloud: &C,
    key: &AccessKeyId,
    plan: &Plan,
    ctx: &Context<'_>,
) -> Verification {
    let mut v = Verification::default();
    let first = check(cloud, key, plan, "immediately after containment").await;
    let first_holds = first.holds;
    v.checks.push(first);
    if !first_holds {
        v.contested = true;
        v.reapplied = true;
        reapply(cloud, key, plan).await;
        v.checks
            .push(check(cloud, key, plan, "after re-applying").await);
    }
    tokio::time::sleep(ctx.config.verify_delay).await;
    let later = check(
        cloud,
        key,
        plan,
        &format!(
            "after {}s propagation delay",
            ctx.config.verify_delay.as_secs()
        ),
    )
    .await;
    let mut holds = later.holds;
    v.checks.push(later);
    if !holds && !v.reapplied {
        warn!("containment undone after it was applied: re-applying once");
        v.contested = true;
        v.reapplied = true;
        reapply(cloud, key, plan).await;
        let again = check(cloud, key, plan, "after re-applying").await;
        holds = again.holds;
        v.checks.push(again);
    }
    v.holds = holds;
    v
}

async fn reapply<C: Identity>(cloud: &C, key: &AccessKeyId, plan: &Plan) {
    let result = match plan {
        Plan::User { user, deactivate } => {
            let mut r = Ok(());
            if *deactivate {
                r = cloud.deactivate_key(user, key).await.map(|_| ());
            }
            r.and(
                cloud
                    .put_policy(
                        &PolicyTarget::User(user.clone()),
                        policy::USER_POLICY_NAME,
                        &policy::deny_all(),
                    )
                    .await,
            )
        }
        Plan::Role { role, cutoff } => {
            // Re-read so a newer cutoff written meanwhile is never replaced by ours.
            let target = PolicyTarget::Role(role.clone());
            let existing = cloud
                .read_policy(&target, policy::ROLE_POLICY_NAME)
                .await
                .ok()
                .flatten();
            match policy::decide_cutoff(
                existing.as_deref().and_then(policy::revocation_cutoff),
                *cutoff,
            ) {
                CutoffDecision::Keep(_) => Ok(()),
                CutoffDecision::Write(c) => {
                    cloud
                        .put_policy(
                            &target,
                            policy::ROLE_POLICY_NAME,
                            &policy::revoke_older_sessions(c),
                        )
                        .await
                }
            }
        }
    };
    if let Err(e) = result {
        error!(error = %e.chain(), "re-applying containment failed");
    }
}

async fn check<C: Identity>(cloud: &C, key: &AccessKeyId, plan: &Plan, phase: &str) -> Check {
    let at = Utc::now();
    let mut notes = Vec::new();
    let (key_inactive, policy_in_place) = match plan {
        Plan::User { user, deactivate } => {
            let key_state = if *deactivate {
                match cloud.key_status(user, key).await {
                    Ok(Some(KeyStatus::Active)) => {
                        notes.push("key is ACTIVE".to_string());
                        Some(false)
                    }
                    Ok(Some(_)) => {
                        notes.push("key inactive".to_string());
                        Some(true)
                    }
                    Ok(None) => {
                        notes.push("key no longer exists".to_string());
                        Some(true)
                    }
                    Err(e) => {
                        notes.push(format!("key status unreadable: {}", e.chain()));
                        Some(false)
                    }
                }
            } else {
                None
            };
            let doc = cloud
                .read_policy(&PolicyTarget::User(user.clone()), policy::USER_POLICY_NAME)
                .await;
            let ok = matches!(&doc, Ok(Some(d)) if policy::is_deny_all(d));
            notes.push(match doc {
                Ok(Some(_)) if ok => format!("{} in place", policy::USER_POLICY_NAME),
                Ok(Some(_)) => format!("{} ALTERED", policy::USER_POLICY_NAME),
                Ok(None) => format!("{} MISSING", policy::USER_POLICY_NAME),
                Err(e) => format!("policy unreadable: {}", e.chain()),
            });
            (key_state, Some(ok))
        }
        Plan::Role { role, cutoff } => {
            let doc = cloud
                .read_policy(&PolicyTarget::Role(role.clone()), policy::ROLE_POLICY_NAME)
                .await;
            let current = doc
                .as_ref()
                .ok()
                .and_then(|d| d.as_deref())
                .and_then(policy::revocation_cutoff);
            let ok = current.is_some_and(|c| c >= *cutoff);
            notes.push(match (&doc, current) {
                (Ok(_), Some(c)) if ok => format!(
                    "{} in place, cutoff {}",
                    policy::ROLE_POLICY_NAME,
                    policy::format_cutoff(c)
                ),
                (Ok(_), Some(c)) => format!(
                    "{} cutoff MOVED BACK to {}",
                    policy::ROLE_POLICY_NAME,
                    policy::format_cutoff(c)
                ),
                (Ok(_), None) => format!("{} MISSING", policy::ROLE_POLICY_NAME),
                (Err(e), _) => format!("policy unreadable: {}", e.chain()),
            });
            (None, Some(ok))
        }
    };
    let holds = key_inactive.unwrap_or(true) && policy_in_place.unwrap_or(true);
    info!(step = "verify", phase, holds, "read back containment");
    Check {
        phase: phase.to_owned(),
        at,
        key_inactive,
        policy_in_place,
        holds,
        detail: notes.join(", "),
    }
}

/// Summary, next steps and undo commands, from what happened.
fn finish(report: &mut Report, incident: &Incident, plan: Option<&Plan>) {
    let key = &incident.key;
    if report.summary.is_empty() {
        report.summary = match report.status {
            Status::Contained => format!("Leaked key {key} is contained and verified."),
            Status::AlreadyContained => format!(
                "Key {key} was already contained; nothing had to change (repeated trigger)."
            ),
            Status::Contested => format!(
                "Containment of {key} was UNDONE shortly after it was applied (attacker still active?) and has been re-applied. Investigate now."
            ),
            Status::Failed => format!(
                "Containment of {key} did NOT complete. Act by hand now; Lambda will retry."
            ),
            Status::DryRun => format!(
                "Dry run for {key}: nothing was changed; the actions below are what would be done."
            ),
            Status::KeyNotFound => {
                format!("Key {key} does not exist for its user: nothing to contain.")
            }
            Status::Refused | Status::Rejected | Status::Sample => String::new(),
        };
    }
    let mut next = Vec::new();
    match plan {
        Some(Plan::User { user, .. }) => {
            next.push(format!("Find and rotate every place key {key} is used (it stays Inactive; do not reactivate it). Give {user} a new key only after the leak is understood."));
            next.push(format!("{} blocks ALL of user {user}'s access, including any other key: remove it once legitimate keys are rotated.", policy::USER_POLICY_NAME));
            next.push("Check the attacker activity in this message for persistence: new users, access keys, login profiles, policies, roles; and for AssumeRole into other accounts.".into());
            report.undo = vec![
                format!(
                    "aws iam update-access-key --user-name {user} --access-key-id {key} --status Active"
                ),
                format!(
                    "aws iam delete-user-policy --user-name {user} --policy-name {}",
                    policy::USER_POLICY_NAME
                ),
            ];
        }
        Some(Plan::Role { role, .. }) => {
            next.push(format!("Every session of role {role} issued before the cutoff is denied: workloads using it must get fresh credentials (they will on their next refresh)."));
            next.push(format!("Find how the session credentials of role {role} leaked (instance metadata, CI logs, a developer laptop)."));
            next.push(
                "Check the attacker activity in this message for persistence and for AssumeRole into other accounts."
                    .into(),
            );
            report.undo = vec![format!(
                "aws iam delete-role-policy --role-name {role} --policy-name {}   (only if the revocation itself causes an outage)",
                policy::ROLE_POLICY_NAME
            )];
        }
        None => {}
    }
    if report.status == Status::Failed {
        next.insert(0, format!("CONTAINMENT FAILED: deactivate {key} by hand now (aws iam update-access-key --status Inactive ...) and read the failed steps above."));
    }
    if report.status == Status::Refused {
        next.insert(
            0,
            format!(
                "Decide by hand what to do with key {key}: killswitch did not change anything."
            ),
        );
    }
    if let Investigation::Ran(a) = &report.investigation {
        if !a.complete() {
            next.push("The CloudTrail search was incomplete (see the Regions marked PARTIAL/FAILED): search them again by hand.".into());
        }
        next.push("Event history lags a few minutes and covers management events only: look again in 30 minutes, and in your trail (S3/Athena) for data events.".into());
    }
    report.next_steps.extend(next);
}

async fn notify<N: Notifier>(cloud: &N, report: &mut Report) {
    let subject = report.subject();
    match cloud.publish(&subject, &report.message()).await {
        Ok(()) => {
            info!(step = "notify", outcome = "done", "summary published");
            report.notification = Notification::Sent { subject };
        }
        Err(e) => {
            error!(step = "notify", error = %e.chain(), "could not publish the summary");
            report.notification = Notification::Failed {
                subject,
                error: e.chain(),
            };
        }
    }
}

/// The error Lambda should see for a finished response, if any.
pub fn outcome_error(reports: &[Report]) -> Option<Error> {
    if let Some(r) = reports.iter().find(|r| r.containment_failed()) {
        return Some(Error::ContainmentFailed(format!(
            "{}: {}",
            r.access_key_id, r.summary
        )));
    }
    if let Some(r) = reports.iter().find(|r| r.status == Status::Rejected) {
        return Some(Error::BadEvent(format!(
            "{}: {}",
            r.access_key_id, r.summary
        )));
    }
    reports.iter().find_map(|r| match &r.notification {
        Notification::Failed { error, .. } => Some(Error::NotifyFailed(error.clone())),
        _ => None,
    })
}
