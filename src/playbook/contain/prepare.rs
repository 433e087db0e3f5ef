//! Before and during the writes: the report opened, the guard's decision completed with what it
//! could not read in its own wave, then the writes in one wave (the record read beside them).

use chrono::Utc;

use super::Home;
use crate::incident::{AccountId, Incident, Trigger};
use crate::playbook::guard::{self, Reads};
use crate::playbook::lease::Lease;
use crate::playbook::{Context, Plan, Step, portal};
use crate::ports::Identity;
use crate::record::{IncidentRecord, Records};
use crate::report::{Outcome, Report};
use crate::vocab::Arn;

/// One incident on its way to its writes.
pub(super) struct Response {
    pub incident: Incident,
    pub report: Report,
    pub dry_run: bool,
    /// The member account entered for it, if any.
    pub member_account: Option<AccountId>,
    /// The account the incident record is kept under: the member's, or ours.
    pub account: AccountId,
}

impl Response {
    pub fn open(
        incident: Incident,
        ctx: &Context<'_>,
        dry_run: bool,
        entered: Option<(AccountId, String)>,
    ) -> Self {
        let mut report = Report::new(&incident, dry_run, ctx.now);
        report.operator = ctx.operator.map(str::to_owned);
        let member_account = entered.as_ref().map(|(a, _)| a.clone());
        if let Some((account, note)) = entered {
            report.account = Some(account.to_string());
            report.record(Step::EnterAccount, Outcome::Done, note, Utc::now());
        }
        let account = member_account
            .clone()
            .unwrap_or_else(|| ctx.responder.account.clone());
        Response {
            incident,
            report,
            dry_run,
            member_account,
            account,
        }
    }

    /// The guard's plan, completed: the Identity Center user's ID, the lease on a shared deny
    /// policy, and the IAM user's state when the guard learnt the owner too late to read it.
    pub async fn decide<'h, I: Identity, H: Home>(
        &mut self,
        iam: &I,
        home: &'h H,
        reads: &mut Reads,
        preloaded: Option<&Option<IncidentRecord>>,
        ctx: &Context<'_>,
        records: &Records<'h, H>,
    ) -> (Option<Plan>, Option<Lease<'h, H>>) {
        let mut decided = guard::decide(&self.incident, reads, ctx, &mut self.report);
        self.identify_portal_user(home, decided.as_mut(), ctx).await;
        let lease = self.portal_lease(home, decided.as_ref(), records).await;
        // Every notice names what was acted on: the key's account as STS tells it, IAM's owner.
        if let Some(Ok(owner)) = &reads.account {
            self.report.account = Some(owner.to_string());
        }
        if let Some(plan) = &decided {
            self.report.principal = plan.principal();
        }
        if let Some(user) = decided.as_ref().and_then(Plan::user)
            && reads.user_before.as_ref().is_none_or(|b| b.user != user)
            && (ctx.operator.is_some() || recorded_for(preloaded, decided.as_ref()))
        {
            // The owner was learnt in the guard's wave, too late to read its state there, and a
            // blind write reads as "applied" on a key already contained: a recorded incident
            // would then page CONTESTED for nothing. One more read, only where it matters: at a
            // terminal (a person waits anyway), or where this principal's containment is recorded.
            reads.user_before = Some(guard::read_user(iam, user, &self.incident.key).await);
        }
        (decided, lease)
    }

    /// An Identity Center user is denied by their identity store ID too, when it can be looked
    /// up. Not on a manual request's word alone: it could name any user for a session nobody
    /// has seen used yet, and the user-wide deny would lock that user out. Then the named
    /// session only.
    async fn identify_portal_user<H: Home>(
        &mut self,
        home: &H,
        decided: Option<&mut Plan>,
        ctx: &Context<'_>,
    ) {
        let manual = matches!(self.incident.trigger, Trigger::Manual { .. });
        let word_only = manual && !owner_confirmed(&self.report);
        let (user, user_id) = match decided {
            Some(Plan::Portal { user, user_id, .. }) => (user, user_id),
            Some(Plan::User { .. } | Plan::Role { .. }) | None => return,
        };
        let Some(ic) = &ctx.config.identity_center else {
            return;
        };
        if word_only {
            self.report.record(
                Step::ResolveOwner,
                Outcome::Skipped,
                format!("owner UNCONFIRMED: Identity Center user {user} is not denied as a whole on a request's word; only the named session (aws:userid) is, and no assignment is removed"),
                Utc::now(),
            );
        } else {
            *user_id = portal::lookup(home, ic, user, &self.incident, &mut self.report).await;
        }
    }

    /// Writers of one account's deny policy take turns (incident table).
    async fn portal_lease<'h, H: Home>(
        &self,
        home: &'h H,
        decided: Option<&Plan>,
        records: &Records<'h, H>,
    ) -> Option<Lease<'h, H>> {
        let policy_arn = decided.and_then(portal_policy).filter(|_| !self.dry_run)?;
        let account = Arn::parse(policy_arn).map_or("", |a| a.account);
        Some(portal::lease(records.enabled.then_some(home), account).await)
    }

    /// The writes of the plan in one wave, and the incident record: read in the first wave
    /// already, or beside the writes.
    pub async fn write<I: Identity, H: Home>(
        &mut self,
        iam: &I,
        decided: Option<&Plan>,
        reads: &Reads,
        preloaded: Option<Option<IncidentRecord>>,
        records: &Records<'_, H>,
    ) -> (Option<IncidentRecord>, Option<Plan>) {
        let (incident, dry_run, report) = (&self.incident, self.dry_run, &mut self.report);
        match preloaded {
            // Read in the first wave: it also decides whether a role cutoff already covers this.
            Some(record) => {
                let plan = apply_decided(
                    iam,
                    incident,
                    decided,
                    reads,
                    record.as_ref(),
                    dry_run,
                    report,
                )
                .await;
                (record, plan)
            }
            // Otherwise read beside the writes: nothing on the write path waits for it.
            None => tokio::join!(
                records.load(&self.account, &incident.key),
                apply_decided(iam, incident, decided, reads, None, dry_run, report)
            ),
        }
    }
}

/// The writes of the plan decided, if one was.
async fn apply_decided<I: Identity>(
    iam: &I,
    incident: &Incident,
    decided: Option<&Plan>,
    reads: &Reads,
    record: Option<&IncidentRecord>,
    dry_run: bool,
    report: &mut Report,
) -> Option<Plan> {
    match decided {
        Some(plan) => {
            Some(super::apply(iam, incident, plan, Some(reads), record, dry_run, report).await)
        }
        None => None,
    }
}

/// A manual request's owner was confirmed in CloudTrail by the guard.
fn owner_confirmed(report: &Report) -> bool {
    report
        .steps
        .iter()
        .any(|s| s.step == Step::ResolveOwner && s.detail.starts_with("owner confirmed"))
}

/// The customer-managed deny policy a portal plan writes to.
fn portal_policy(plan: &Plan) -> Option<&str> {
    match plan {
        Plan::Portal { policy_arn, .. } => Some(policy_arn),
        Plan::User { .. } | Plan::Role { .. } => None,
    }
}

/// Whether the record read in the first wave says this plan's principal was contained in the
/// record's current generation.
fn recorded_for(record: Option<&Option<IncidentRecord>>, plan: Option<&Plan>) -> bool {
    match (record, plan) {
        (Some(Some(r)), Some(p)) => r
            .applied
            .as_ref()
            .is_some_and(|a| a.generation == r.generation && a.plan.principal() == p.principal()),
        _ => false,
    }
}
