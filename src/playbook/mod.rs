//! The response, in two phases and in the order it runs.
//!
//! Contain phase (seconds; nothing slow on its path):
//! 1. [`guard`]: every read the decision needs goes out in ONE concurrent wave (the key's account,
//!    its owner, the state before, the role's current revocation, the incident record), then
//!    [`locate`] and the checks that can refuse (protected, own, root, service-linked, Identity
//!    Center, other account) decide on a [`Plan`];
//! 2. [`contain`]: the writes go out together in the NEXT wave, one file per action —
//!    [`deactivate_key`], [`deny_user`], [`revoke_role`] — each holding its apply, read-back and
//!    undo; then the immediate read-back and a short notice ([`notify`]).
//!
//! Follow-through phase ([`handoff`] to a durable queue, or inline on the command line):
//! 3. [`follow`]: the re-check after IAM's propagation window ([`verify`]), the CloudTrail
//!    investigation, the attacker's [`pivots`], and the full notice ([`notify`]).
//!
//! Every delivery is contained completely, all its keys, before anything is investigated.

pub mod canary;
pub mod contain;
pub mod deactivate_key;
pub mod deny_user;
pub mod finding;
pub mod follow;
pub mod guard;
pub mod handoff;
pub mod jobs;
pub mod lease;
pub mod locate;
pub mod notify;
pub mod org_tag;
pub mod pivots;
pub mod portal;
pub mod quarantine;
pub mod revoke_role;
pub mod source;
pub mod sweep;
pub mod tamper;
pub mod verify;
pub mod watchdog;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::Error;
use crate::incident::{AccountId, Incident};
use crate::report::{Notification, Report, Status};
pub use crate::vocab::{Plan, Step};

pub use contain::contain_delivery;
pub use follow::{FollowUp, follow_through};
pub use notify::{respond_to_advisory, respond_to_sample};

/// Every action the function calls (`sts:GetCallerIdentity` needs no permission).
pub fn required_permissions() -> BTreeSet<&'static str> {
    Step::ALL
        .iter()
        .flat_map(|s| s.permissions().iter().copied())
        .collect()
}

/// What the member role (`member-role.yaml`) must grant: every step that runs in the finding's
/// account. Entering it, the incident store, the queue and notices stay in the function's own.
pub fn member_permissions() -> BTreeSet<&'static str> {
    Step::ALL
        .iter()
        .filter(|s| s.in_key_account())
        .flat_map(|s| s.permissions().iter().copied())
        .collect()
}

/// The identity the function runs as, learnt once at start-up (`sts:GetCallerIdentity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Responder {
    pub account: AccountId,
    pub arn: String,
    pub role_name: Option<String>,
    pub user_name: Option<String>,
}

impl Responder {
    pub fn from_arn(account: AccountId, arn: &str) -> Self {
        let parsed = crate::vocab::Arn::parse(arn);
        let role_name = parsed.and_then(|a| {
            // A session's role is the first segment (`assumed-role/ROLE/SESSION`); a role's name
            // is its last (`role/PATH/NAME`).
            a.of_type("assumed-role")
                .and_then(|rest| rest.split('/').next())
                .or_else(|| a.of_type("role").map(|_| a.name()))
                .map(str::to_owned)
        });
        let user_name = parsed
            .and_then(|a| a.of_type("user").map(|_| a.name()))
            .map(str::to_owned);
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
    /// Hand the follow-through to the queue (Lambda with `KILLSWITCH_FOLLOW_UP_QUEUE_URL`)
    /// instead of running it in this process.
    pub hand_off: bool,
    /// The identity that asked for this response on the command line (its own credentials,
    /// `sts:GetCallerIdentity`): named in the report and every notice.
    pub operator: Option<&'a str>,
    /// This invocation's share of the `LookupEvents` budget.
    pub pacer: &'a crate::pacing::Pacer,
}

fn dry_run(incident: &Incident, ctx: &Context<'_>) -> bool {
    ctx.config.dry_run || ctx.force_dry_run || incident.dry_run
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
        Notification::Pending
        | Notification::Sent { .. }
        | Notification::Suppressed { .. }
        | Notification::NotPublished { .. } => None,
    })
}

/// Both phases for one incident in this process, as the command line runs them.
pub async fn respond<C>(cloud: &C, incident: &Incident, ctx: &Context<'_>) -> Report
where
    C: contain::Home + crate::ports::ActivityLog,
    C::Member: crate::ports::ActivityLog,
{
    let reads = guard::read(cloud, incident, Some(&ctx.responder.account), ctx.config).await;
    let mut contained = contain_delivery(cloud, vec![(incident.clone(), reads)], ctx).await;
    match contained.pop() {
        Some(contain::Contained {
            follow_up: Some(f), ..
        }) => follow_through(cloud, f, ctx, follow::Origin::Inline)
            .await
            .unwrap_or_else(|e| {
                let mut r = Report::new(incident, dry_run(incident, ctx), ctx.now);
                r.summary = e.chain();
                r
            }),
        Some(c) => c.report,
        None => Report::new(incident, dry_run(incident, ctx), ctx.now),
    }
}
