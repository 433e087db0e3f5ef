//! After the writes: what they came to once the record is known, the immediate read-back beside
//! the claim of the notice, and the incidents that end here (rejected, a duplicate, a holder
//! still trying).

use chrono::{DateTime, Utc};
use tracing::info;

use super::Contained;
use super::prepare::Response;
use crate::incident::{AccountId, Incident, Trigger};
use crate::playbook::notify::flood;
use crate::playbook::{Context, Plan, Step, notify, verify};
use crate::ports::{Identity, IncidentStore, Notifier};
use crate::record::{Applied, IncidentRecord, Records};
use crate::report::{Notification, Outcome, Report, Status};
use crate::vocab::Deny;

/// One incident after its writes.
pub(super) struct Settling {
    pub incident: Incident,
    pub report: Report,
    pub dry_run: bool,
    pub member_account: Option<AccountId>,
    /// The account the incident record is kept under.
    pub account: AccountId,
    /// The plan in force after the writes.
    pub plan: Option<Plan>,
    pub record: Option<IncidentRecord>,
    pub contained_at: DateTime<Utc>,
    pub hints: Vec<String>,
    /// The outcome of the writes is worth a short notice.
    pub announce: bool,
    /// The trigger's identity across re-deliveries.
    pub trigger: String,
    /// This trigger's containment was recorded by an earlier delivery.
    pub recorded_earlier: bool,
    /// A REJECTED or KEY NOT FOUND past its window's allowance: counted, not paged.
    pub held_back: bool,
}

impl Settling {
    pub fn new(
        r: Response,
        record: Option<IncidentRecord>,
        plan: Option<Plan>,
        hints: Vec<String>,
    ) -> Self {
        let contained_at = Utc::now();
        // Duplicates are normal (retries, GuardDuty's 6-hourly re-emits, the Health backup copy,
        // concurrent deliveries): one notice per incident and outcome, and none at all for a
        // delivery that finds in place what an earlier one applied and recorded. The claim goes
        // out beside the read-back.
        let announce = announced(r.report.status);
        let trigger = r.incident.dedupe_key();
        let recorded_earlier = record
            .as_ref()
            .is_some_and(|r| r.applied_for(&trigger).is_some());
        Settling {
            incident: r.incident,
            report: r.report,
            dry_run: r.dry_run,
            member_account: r.member_account,
            account: r.account,
            plan,
            record,
            contained_at,
            hints,
            announce,
            trigger,
            recorded_earlier,
            held_back: false,
        }
    }

    /// Containment of this principal was applied and recorded in this generation (by this
    /// trigger or another: a second finding, the Security Hub copy, a manual request), yet writes
    /// were needed again: it was undone since, by the holder with another way in. That is a
    /// fight, never a quiet duplicate. Only once IAM's reads can be trusted to show what was
    /// written; and neither a role-wide cutoff moved forward for a finding first seen after it,
    /// nor the quota fallbacks (which write again every time) are an undoing.
    pub fn mark_contested(&mut self, ctx: &Context<'_>) {
        let settle = chrono::TimeDelta::from_std(ctx.config.verify_delay).unwrap_or_default();
        let recorded_for_principal = match (&self.record, &self.plan) {
            (Some(r), Some(p)) => r.applied.as_ref().is_some_and(|a| {
                a.generation == r.generation
                    && a.plan.principal() == p.principal()
                    && a.at + settle <= ctx.now
            }),
            _ => false,
        };
        let undone_if_rewritten = self.plan.as_ref().is_some_and(rewriting_means_undone);
        if self.report.status == Status::Contained
            && recorded_for_principal
            && undone_if_rewritten
            && !self.dry_run
        {
            self.report.status = Status::Contested;
            self.report.record(
                Step::Verify,
                Outcome::Done,
                "the containment recorded for this principal was found UNDONE and has been re-applied",
                Utc::now(),
            );
        }
    }

    /// Why no notice is due for this delivery, as far as the record and the trigger tell.
    pub fn duplicate_reason(&self) -> Option<&'static str> {
        if !self.announce {
            None
        } else if self.report.status == Status::AlreadyContained && self.recorded_earlier {
            Some(
                "duplicate delivery: this containment was already applied and reported (incident record)",
            )
        } else if self.record.is_none() && self.is_redundant_backup() {
            Some(
                "AWS Health backup copy (us-west-2) of an event already handled: the key was already contained",
            )
        } else {
            None
        }
    }

    /// Health sends each global event twice (us-east-1, and a backup through us-west-2). The
    /// backup still acts, in case the primary was lost, but when it finds the key already
    /// contained the primary has been handled and notified.
    fn is_redundant_backup(&self) -> bool {
        let backup = matches!(
            self.incident.trigger,
            Trigger::Health {
                backup_event: true,
                ..
            }
        );
        backup && self.report.status == Status::AlreadyContained
    }

    /// The claim one notice per trigger and outcome takes in the incident store.
    pub fn announce_claim(&self) -> String {
        format!("announce:{}:{:?}", self.trigger, self.report.status)
    }

    /// The immediate read-back beside the claim of the notice. Returns why the notice is not
    /// sent, if it is not.
    pub async fn read_back_and_claim<I: Identity, S: IncidentStore + Notifier>(
        &mut self,
        iam: &I,
        records: &Records<'_, S>,
        ctx: &Context<'_>,
        claim: &str,
        duplicate: Option<&'static str>,
    ) -> Option<&'static str> {
        let status = self.report.status;
        let (verification, claimed) = tokio::join!(
            async {
                let checked = self
                    .plan
                    .as_ref()
                    .filter(|_| !self.dry_run && status != Status::KeyNotFound);
                match checked {
                    Some(plan) => Some(verify::immediate(iam, &self.incident.key, plan).await),
                    None => None,
                }
            },
            async {
                // A key IAM does not know is reported once per trigger too: GuardDuty re-emits the
                // finding every 6 hours.
                // A command-line KEY NOT FOUND pages nobody, so it claims nothing either: a later
                // delivery of the same trigger (the deployed function's) must still page.
                let pages_not_found =
                    status == Status::KeyNotFound && ctx.config.page_key_not_found;
                if (self.announce || pages_not_found) && duplicate.is_none() {
                    records.claim(self.record.as_ref(), claim).await
                } else {
                    true
                }
            }
        );
        if let Some(v) = verification {
            if !v.holds {
                self.report.status = Status::Failed;
            } else if v.contested && self.report.status != Status::Failed {
                self.report.status = Status::Contested;
            }
            self.report.verification = Some(v);
        }
        if self.report.status.needs_a_human() {
            // The read-back found containment undone: never silent, whatever an earlier delivery did.
            None
        } else if !claimed && duplicate.is_none() {
            Some("duplicate delivery of this incident: another delivery announced it")
        } else if duplicate.is_some() {
            duplicate
        } else {
            self.limit_flood(records, ctx).await
        }
    }

    /// A REJECTED or KEY NOT FOUND past its window's allowance is held back and counted
    /// ([`flood`]); one allowed out first sends the summaries of the windows before it. Every
    /// other outcome pages as it always does.
    async fn limit_flood<S: IncidentStore + Notifier>(
        &mut self,
        records: &Records<'_, S>,
        ctx: &Context<'_>,
    ) -> Option<&'static str> {
        let kind = flood::Limited::of(self.report.status)?;
        let pages = match kind {
            flood::Limited::Rejected => true,
            flood::Limited::KeyNotFound => ctx.config.page_key_not_found,
        };
        if !pages || !records.enabled {
            return None;
        }
        let forged = flood::looked_forged(&self.report);
        let key = self.incident.key.as_str();
        match flood::admit(records.store, kind, ctx.now, key, forged).await {
            flood::Admission::Send => {
                flood::after_allowed(records.store, kind, ctx.now).await;
                None
            }
            flood::Admission::HeldBack => {
                self.held_back = true;
                Some(flood::HELD_BACK)
            }
        }
    }

    /// Input that names another account's key, or a finding its source does not hold: told at
    /// once (unless a flood holds it back), nothing follows.
    pub async fn tell_rejected<N: Notifier>(mut self, home: &N) -> Contained {
        notify::finish(&mut self.report, &self.incident, None, None);
        if self.held_back {
            self.report.notification = Notification::Suppressed {
                reason: flood::HELD_BACK.into(),
            };
        } else {
            notify::notify(home, &mut self.report).await;
        }
        Contained::done(self.report)
    }

    /// A re-emitted finding whose count grew (from `was` to `now`), found already contained:
    /// the key's holder is still trying. Worth a short notice (once per count), not a second
    /// full report.
    pub fn grown_count(&self) -> Option<(u64, u64)> {
        if self.report.status != Status::AlreadyContained {
            return None;
        }
        let was = self
            .record
            .as_ref()?
            .applied_for(&self.trigger)
            .and_then(|a| a.count)?;
        let now = finding_count(&self.incident).filter(|n| *n > was)?;
        Some((was, now))
    }

    /// The claim of the short notice for a count.
    pub fn trying_claim(&self, now: u64) -> String {
        format!("trying:{}:{now}", self.trigger)
    }

    pub async fn tell_still_trying<H: Notifier + IncidentStore>(
        mut self,
        home: &H,
        records: &Records<'_, H>,
        was: u64,
        now: u64,
    ) -> Contained {
        notify::finish(
            &mut self.report,
            &self.incident,
            self.plan.as_ref(),
            self.member_account.as_ref(),
        );
        notify::still_trying(home, &mut self.report, was, now).await;
        if !matches!(self.report.notification, Notification::Sent { .. }) {
            // Not told: the next delivery with this count tries again.
            records
                .release(self.record.as_ref(), &self.trying_claim(now))
                .await;
            return Contained::done(self.report);
        }
        // Read again: a follow-through or sweep may have written the record since.
        if let Some(mut r) = records.load(&self.account, &self.incident.key).await
            && let Some(a) = r.applied.as_mut().filter(|a| a.trigger == self.trigger)
        {
            a.count = Some(a.count.unwrap_or(0).max(now));
            if let Err(e) = records.save(&r).await {
                self.report
                    .record(Step::Record, Outcome::Failed, e.chain(), Utc::now());
            }
        }
        Contained::done(self.report)
    }

    /// A duplicate delivery: the report says why no notice went out.
    pub fn suppress(mut self, reason: &'static str) -> Contained {
        info!(
            step = "notify",
            outcome = "suppressed",
            reason,
            "duplicate delivery"
        );
        notify::finish(
            &mut self.report,
            &self.incident,
            self.plan.as_ref(),
            self.member_account.as_ref(),
        );
        self.report.notification = Notification::Suppressed {
            reason: reason.into(),
        };
        Contained::done(self.report)
    }

    /// An incident that found containment already in place (another key's cutoff on the same
    /// role, say) relies on it all the same: recorded, so a restore for the other key knows.
    pub fn note_applied(&mut self) {
        let relies = self.report.status.wrote_containment()
            || (self.report.status == Status::AlreadyContained && !self.recorded_earlier);
        if let (Some(r), Some(plan)) = (self.record.as_mut(), &self.plan)
            && relies
        {
            r.applied = Some(Applied {
                incident_id: self.incident.id.clone(),
                trigger: self.trigger.clone(),
                generation: r.generation,
                plan: plan.clone(),
                at: self.contained_at,
                first_seen: self.incident.first_seen,
                count: finding_count(&self.incident),
                finding: self.incident.finding.clone(),
            });
        }
    }
}

/// The outcomes the contain phase announces with a short notice: containment written, found in
/// place, fought over or failed.
fn announced(status: Status) -> bool {
    match status {
        Status::Contained | Status::AlreadyContained | Status::Contested | Status::Failed => true,
        Status::Refused
        | Status::Rejected
        | Status::Sample
        | Status::DryRun
        | Status::KeyNotFound
        | Status::Restored => false,
    }
}

/// Writing this plan again means what it wrote had been undone. Not so for a role-wide cutoff
/// (moved forward for a finding first seen later) nor for the quota fallbacks (which write again
/// every time).
fn rewriting_means_undone(plan: &Plan) -> bool {
    match plan {
        Plan::User { deny, .. } => match deny {
            Deny::Inline => true,
            Deny::Managed | Deny::LockedOut | Deny::LockedOutBounded => false,
        },
        Plan::Role { session, .. } => session.is_some(),
        Plan::Portal { .. } => true,
    }
}

/// How many times GuardDuty has seen the activity (`service.count`), for re-emits.
pub(super) fn finding_count(incident: &Incident) -> Option<u64> {
    match incident.trigger {
        Trigger::GuardDuty { count, .. } => count,
        Trigger::Health { .. } | Trigger::Manual { .. } | Trigger::Pivot { .. } => None,
    }
}
