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

pub mod contain;
pub mod deactivate_key;
pub mod deny_user;
pub mod finding;
pub mod follow;
pub mod guard;
pub mod handoff;
pub mod lease;
pub mod locate;
pub mod notify;
pub mod pivots;
pub mod portal;
pub mod quarantine;
pub mod revoke_role;
pub mod sweep;
pub mod verify;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::Error;
use crate::incident::{AccountId, Incident};
use crate::report::{Notification, Report, Status};

pub use contain::contain_delivery;
pub use follow::{FollowUp, follow_through};
pub use notify::respond_to_sample;

/// The steps, each with the actions it calls. The execution role grants exactly their union.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    EnterAccount,
    CheckAccount,
    ResolveOwner,
    DeactivateKey,
    DenyUser,
    RevokeRoleSessions,
    Record,
    HandOff,
    Verify,
    Investigate,
    Notify,
    UpdateFinding,
    Quarantine,
    DenyPortalUser,
    RemoveAssignment,
}

impl Step {
    pub const ALL: [Step; 15] = [
        Step::EnterAccount,
        Step::CheckAccount,
        Step::ResolveOwner,
        Step::DeactivateKey,
        Step::DenyUser,
        Step::RevokeRoleSessions,
        Step::Record,
        Step::HandOff,
        Step::Verify,
        Step::Investigate,
        Step::Notify,
        Step::UpdateFinding,
        Step::Quarantine,
        Step::DenyPortalUser,
        Step::RemoveAssignment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::EnterAccount => "enter_account",
            Step::CheckAccount => "check_account",
            Step::ResolveOwner => "resolve_owner",
            Step::DeactivateKey => "deactivate_key",
            Step::DenyUser => "deny_user",
            Step::RevokeRoleSessions => "revoke_role_sessions",
            Step::Record => "record",
            Step::HandOff => "hand_off",
            Step::Verify => "verify",
            Step::Investigate => "investigate",
            Step::Notify => "notify",
            Step::UpdateFinding => "update_finding",
            Step::Quarantine => "quarantine",
            Step::DenyPortalUser => "deny_portal_user",
            Step::RemoveAssignment => "remove_assignment",
        }
    }

    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Step::EnterAccount => &["sts:AssumeRole"],
            Step::CheckAccount => &["sts:GetAccessKeyInfo"],
            Step::ResolveOwner => &["iam:GetAccessKeyLastUsed"],
            Step::DeactivateKey => deactivate_key::PERMISSIONS,
            Step::DenyUser => deny_user::PERMISSIONS,
            Step::RevokeRoleSessions => revoke_role::PERMISSIONS,
            Step::Record => &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:DeleteItem",
            ],
            Step::HandOff => &["sqs:SendMessage"],
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
            Step::UpdateFinding => &["securityhub:BatchUpdateFindings"],
            // Organizations is called through the quarantine role (`quarantine-role.yaml`,
            // `quarantine::ORGANIZATIONS_PERMISSIONS`), never with the function's own rights.
            Step::Quarantine => &["sts:AssumeRole"],
            Step::DenyPortalUser => portal::POLICY_PERMISSIONS,
            // Identity Center is called through its role (`identity-center-role.yaml`,
            // `portal::IDENTITY_CENTER_PERMISSIONS`): the user lookup and the removal.
            Step::RemoveAssignment => &["sts:AssumeRole"],
        }
    }

    /// Steps that run in the key's account (through the member role when it is another one).
    fn in_key_account(self) -> bool {
        !matches!(
            self,
            Step::EnterAccount
                | Step::Notify
                | Step::Record
                | Step::HandOff
                | Step::UpdateFinding
                | Step::Quarantine
                | Step::RemoveAssignment
        )
    }
}

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
    /// Hand the follow-through to the queue (Lambda with `KILLSWITCH_FOLLOW_UP_QUEUE_URL`)
    /// instead of running it in this process.
    pub hand_off: bool,
    /// The identity that asked for this response on the command line (its own credentials,
    /// `sts:GetCallerIdentity`): named in the report and every notice.
    pub operator: Option<&'a str>,
    /// This invocation's share of the `LookupEvents` budget.
    pub pacer: &'a crate::pacing::Pacer,
}

/// What containment writes, once guards have passed. Travels to the follow-through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Plan {
    User {
        user: String,
        deactivate: bool,
        /// What denies the user (the inline deny, or a fallback when its quota is full).
        #[serde(default)]
        deny: deny_user::Deny,
        /// The permissions boundary the lock-out replaced with `AWSDenyAll`: restore puts it back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced_boundary: Option<String>,
    },
    Role {
        role: String,
        /// Role-wide: every session of the role issued before this is denied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cutoff: Option<DateTime<Utc>>,
        /// Exact: this session (`aws:userid` = `ROLE-ID:session-name`) is denied.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// An IAM Identity Center portal session: the role is never edited (IAM refuses), the
    /// customer-managed deny policy every permission set references is (`portal`).
    Portal {
        /// `AWSReservedSSO_<PermissionSet>_…`.
        role: String,
        /// The Identity Center user name (the session name).
        user: String,
        /// `ROLE-ID:user-name`: the finding's principal.
        session: String,
        /// The user's identity store ID, once looked up.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        policy_arn: String,
    },
}

impl Plan {
    /// The principal the writes act on, as every notice names it: IAM's owner of the key, not
    /// the trigger's claim.
    pub fn principal(&self) -> String {
        match self {
            Plan::User { user, .. } => format!("IAM user {user}"),
            Plan::Role {
                role,
                session: Some(session),
                ..
            } => {
                let name = session.split_once(':').map_or(session.as_str(), |(_, s)| s);
                format!("role {role} (session {name})")
            }
            Plan::Role { role, .. } => format!("role {role} (every session)"),
            Plan::Portal { role, user, .. } => format!(
                "Identity Center user {user} (permission set {}, role {role})",
                portal::permission_set_name(role).unwrap_or("?")
            ),
        }
    }
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
        _ => None,
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
