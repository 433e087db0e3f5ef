//! The contain phase: every incident of a delivery is contained, read back and announced before
//! anything slow starts. Writes go out together in the wave after the guard's reads.
//!
//! One incident goes through, in order: the decision ([`prepare`]), the writes in one wave
//! ([`apply`]), the immediate read-back and the claim of its notice ([`settle`]), then the record,
//! the short notice and the hand-off in the last wave ([`last_wave`]).

mod apply;
mod last_wave;
mod prepare;
mod settle;

use tracing::{Instrument, info, info_span};

use super::guard::{self, Reads};
use super::locate::{self, Location};
use super::{Context, Responder, dry_run};
use crate::config::Members;
use crate::incident::{AccountId, Incident, Principal, SourceCheck};
use crate::ports::{
    Accounts, FindingSource, Findings, FollowUpQueue, Identity, IdentityCenterAdmin, IncidentStore,
    Notifier, Organization, RootAccess,
};
use crate::record::Records;
use crate::report::{Investigation, Report, Status};

pub use apply::apply;

use prepare::Response;
use settle::Settling;

/// One incident after the contain phase: its report so far and what follows through.
pub struct Contained {
    pub report: Report,
    pub follow_up: Option<super::follow::FollowUp>,
}

impl Contained {
    /// Nothing follows through: the report is all there is.
    fn done(report: Report) -> Self {
        Contained {
            report,
            follow_up: None,
        }
    }
}

/// What the response needs from the cloud in the function's own account.
pub trait Home:
    Identity
    + Notifier
    + Accounts
    + IncidentStore
    + FollowUpQueue
    + Findings
    + FindingSource
    + Organization
    + IdentityCenterAdmin
    + RootAccess
{
}
impl<
    T: Identity
        + Notifier
        + Accounts
        + IncidentStore
        + FollowUpQueue
        + Findings
        + FindingSource
        + Organization
        + IdentityCenterAdmin
        + RootAccess,
> Home for T
{
}

/// Contains every incident of one delivery concurrently. `reads` are the guard's first wave,
/// made by the caller (together with learning our own identity, on the command line).
pub async fn contain_delivery<C: Home>(
    cloud: &C,
    incidents: Vec<(Incident, Reads)>,
    ctx: &Context<'_>,
) -> Vec<Contained> {
    futures::future::join_all(
        incidents
            .into_iter()
            .map(|(incident, reads)| contain_one(cloud, incident, reads, ctx)),
    )
    .await
}

async fn contain_one<C: Home>(
    cloud: &C,
    incident: Incident,
    reads: Reads,
    ctx: &Context<'_>,
) -> Contained {
    let span = info_span!("incident", incident_id = %incident.id, access_key_id = %incident.key);
    async {
        // A forged one goes the common way: rejected there, and its pages rate-limited.
        let forged = matches!(incident.source, Some(SourceCheck::Forged(_)));
        if incident.principal == Principal::Root && !forged {
            return Contained::done(contain_root_key(cloud, &incident, ctx).await);
        }
        let key_account = match &reads.account {
            Some(Ok(a)) => Some(a.clone()),
            Some(Err(_)) | None => None,
        };
        match locate::locate(&incident, key_account.as_ref(), ctx) {
            Location::Here => contain_in(cloud, cloud, incident, reads, ctx, None).await,
            Location::Member(account, members) => {
                contain_in_member(cloud, incident, account, members, ctx).await
            }
            Location::Outside(account, reason) => {
                let now = ctx.now;
                let report = locate::not_entered(cloud, &incident, ctx, &account, |r| {
                    guard::reject(r, reason, now);
                })
                .await;
                Contained::done(report)
            }
        }
    }
    .instrument(span)
    .await
}

/// A root key: no IAM step of any other key applies to the root user, and no account needs
/// entering to refuse it. Deleted through Organizations' centralized root access when
/// [`guard::root::route`] allows (opt-in); otherwise the manual steps.
async fn contain_root_key<C: Home>(cloud: &C, incident: &Incident, ctx: &Context<'_>) -> Report {
    let mut report = Report::new(incident, dry_run(incident, ctx), ctx.now);
    report.operator = ctx.operator.map(str::to_owned);
    report.account = incident.account.as_ref().map(ToString::to_string);
    guard::root::delete_root_key(cloud, incident, ctx, &mut report).await;
    // A root session may only list and delete the root user's credentials, and the responder's
    // member role cannot read the root user's activity any better than a person can.
    report.investigation = Investigation::NotRun {
        reason: format!(
            "root keys are not investigated here: look up the key's calls in account {}'s CloudTrail (aws cloudtrail lookup-events --lookup-attributes AttributeKey=AccessKeyId,AttributeValue={})",
            incident
                .account
                .as_ref()
                .map_or("ACCOUNT", AccountId::as_str),
            incident.key
        ),
    };
    super::notify::finish(&mut report, incident, None, None);
    root_next_steps(&mut report, incident);
    super::notify::notify(cloud, &mut report).await;
    report
}

/// The IAM user's words (deactivate by hand, `killswitch restore`) do not fit a root key.
fn root_next_steps(report: &mut Report, incident: &Incident) {
    let steps = guard::root::manual_steps(incident.account.as_ref(), incident.key.as_str());
    match report.status {
        Status::Failed => {
            report.next_steps = vec![format!(
                "CONTAINMENT FAILED: root access key {} is still usable. {steps}",
                incident.key
            )];
        }
        Status::Refused | Status::KeyNotFound => report.next_steps = vec![steps],
        Status::Contained => {
            // Deleted: there is nothing to restore.
            report.undo.clear();
            report.next_steps = vec![
                "Look up what the key did in the account's CloudTrail (the investigation above says how), and whether the root user's password, MFA devices or signing certificates need the same.".into(),
                "Deletion is irreversible: if something legitimate used this key, the root user creates a new one.".into(),
            ];
        }
        Status::AlreadyContained
        | Status::Contested
        | Status::Rejected
        | Status::Sample
        | Status::DryRun
        | Status::Restored => {}
    }
}

/// Enters the member account the key lives in, reads there and contains there.
async fn contain_in_member<C: Home>(
    cloud: &C,
    incident: Incident,
    account: AccountId,
    members: &Members,
    ctx: &Context<'_>,
) -> Contained {
    let role_arn = locate::member_role_arn(&account, members, ctx);
    let session = locate::session_name(&incident);
    match cloud.enter(&role_arn, &members.external_id, &session).await {
        Ok(entered) => {
            info!(account = %account, role = %role_arn, "entered member account");
            let responder = Responder::from_arn(account.clone(), &entered.arn);
            let member_ctx = Context {
                responder: &responder,
                ..*ctx
            };
            let reads = guard::read(&entered.clients, &incident, Some(&account), ctx.config).await;
            let note =
                format!("assumed {role_arn} (session {session}) to act in account {account}");
            contain_in(
                &entered.clients,
                cloud,
                incident,
                reads,
                &member_ctx,
                Some((account, note)),
            )
            .await
        }
        Err(e) => {
            let report = locate::not_entered(cloud, &incident, ctx, &account, |r| {
                locate::enter_failed(r, &role_arn, &account, &e.chain());
            })
            .await;
            Contained::done(report)
        }
    }
}

/// Guard decision, writes, immediate read-back, record and short notice, in `iam`'s account;
/// the record and the notice stay in the function's own (`home`).
async fn contain_in<I: Identity, H: Home>(
    iam: &I,
    home: &H,
    incident: Incident,
    mut reads: Reads,
    ctx: &Context<'_>,
    entered: Option<(AccountId, String)>,
) -> Contained {
    let dry_run = dry_run(&incident, ctx);
    let mut r = Response::open(incident, ctx, dry_run, entered);
    let records = Records::new(home, ctx.config);
    let preloaded = reads.record.take();
    let (decided, lease) = r
        .decide(iam, home, &mut reads, preloaded.as_ref(), ctx, &records)
        .await;
    let (record, plan) = r
        .write(iam, decided.as_ref(), &reads, preloaded, &records)
        .await;
    if let Some(rec) = &record {
        rec.report_trust(&mut r.report);
    }
    if let Some(lease) = lease {
        lease.give_back().await;
    }
    let hints = guard::region_hints(&r.incident, &reads);
    let mut s = Settling::new(r, record, plan, hints);
    s.mark_contested(ctx);
    let duplicate = s.duplicate_reason();
    let claim = s.announce_claim();
    let suppressed = s
        .read_back_and_claim(iam, &records, ctx, &claim, duplicate)
        .await;
    if s.report.status == Status::Rejected {
        return s.tell_rejected(home).await;
    }
    if let Some(reason) = suppressed {
        if let Some((was, now)) = s.grown_count()
            && records.claim(s.record.as_ref(), &s.trying_claim(now)).await
        {
            return s.tell_still_trying(home, &records, was, now).await;
        }
        return s.suppress(reason);
    }
    s.note_applied();
    last_wave::record_announce_hand_off(s, home, &records, ctx, &claim).await
}
