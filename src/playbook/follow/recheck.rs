//! The follow-through's first step: the read-back after IAM's propagation window, and the
//! layers that wait on it (the org quarantine, a portal deny's coverage and the user's
//! assignment).

use chrono::{DateTime, Utc};

use super::Pass;
use crate::incident::{Incident, KeyKind, Trigger};
use crate::playbook::contain::Home;
use crate::playbook::verify::{self, Later};
use crate::playbook::{Context, Plan, Step, locate, portal, quarantine};
use crate::ports::{ActivityLog, Identity};
use crate::record::{Quarantined, Removed};
use crate::report::{Outcome, Report, Status, Verification};

/// What the re-check found and placed.
#[derive(Default)]
pub(super) struct Rechecked {
    /// `None`: not read back (no plan, a dry run, or no key).
    pub later: Option<Later>,
    pub quarantined: Option<Quarantined>,
    pub removed: Option<Removed>,
    /// What the first-minute watch found undone, and when.
    pub counter_moves: Vec<(DateTime<Utc>, String)>,
}

/// Whether the principal acted on is known from IAM or CloudTrail, not only from the request:
/// the org quarantine cannot be undone from inside the account, so a forged request must not
/// get one. A long-term key's owner is IAM's answer; an exact session deny is narrow enough.
fn owner_established(incident: &Incident, plan: Option<&Plan>, report: &Report) -> bool {
    let requested = matches!(incident.trigger, Trigger::Manual { .. });
    let narrow = match plan {
        None | Some(Plan::User { .. }) => false,
        Some(Plan::Role { session, .. }) => session.is_some(),
        // AWS's own finding names the portal session; a request's word does not.
        Some(Plan::Portal { .. }) => !requested,
    };
    incident.key.kind() == KeyKind::LongTerm
        || narrow
        || report
            .steps
            .iter()
            .any(|s| s.step == Step::ResolveOwner && s.detail.starts_with("owner confirmed"))
}

/// The deny read back in place, first time or after re-applying it.
fn holds(later: &Later) -> bool {
    match later {
        Later::Holds | Later::Reapplied { holds: true } => true,
        Later::Restored { .. } | Later::Reapplied { holds: false } => false,
    }
}

/// Sleeps until `not_before`, never past the invocation's own budget: the re-check and the
/// notice must fit.
async fn wait_for_window(not_before: DateTime<Utc>, ctx: &Context<'_>) {
    if let Ok(wait) = (not_before - Utc::now()).to_std() {
        let left = ctx
            .investigation_deadline
            .saturating_duration_since(tokio::time::Instant::now());
        crate::progress::say(format!(
            "waiting {} s for IAM's propagation window before reading containment back",
            wait.min(left).as_secs()
        ));
        tokio::time::sleep(wait.min(left)).await;
    }
}

impl<I, H> Pass<'_, I, H>
where
    I: Identity + ActivityLog,
    H: Home,
{
    /// Reads containment back after the propagation window (re-applied if undone), then adds
    /// the layers that wait on it. `report` is the contain phase's.
    pub(super) async fn recheck(
        &self,
        plan: Option<&Plan>,
        not_before: DateTime<Utc>,
        verification: &mut Verification,
        report: &mut Report,
    ) -> Rechecked {
        let should_verify = !report.dry_run && report.status != Status::KeyNotFound;
        let owner_established = owner_established(self.incident, plan, report);
        let Some(plan) = plan.filter(|_| should_verify) else {
            return Rechecked::default();
        };
        let watched = self.watch(plan, self.watch_until(), report).await;
        let later = match watched.restored {
            Some((by, reason)) => Later::Restored { by, reason },
            None => {
                // "Holds" only from a read one propagation window after the last write.
                let settle =
                    chrono::TimeDelta::from_std(self.ctx.config.verify_delay).unwrap_or_default();
                let settled_at = watched
                    .last_write
                    .map_or(not_before, |w| (w + settle).max(not_before));
                wait_for_window(settled_at, self.ctx).await;
                self.read_back_until_settled(plan, verification).await
            }
        };
        if !watched.counter_moves.is_empty() {
            verification.contested = true;
            verification.reapplied = true;
        }
        let quarantined = self
            .quarantine(plan, &later, owner_established, report)
            .await;
        let removed = self
            .portal_layers(plan, &later, owner_established, report)
            .await;
        Rechecked {
            later: Some(later),
            quarantined,
            removed,
            counter_moves: watched.counter_moves,
        }
    }

    /// The watch ends a minute (`KILLSWITCH_WATCH_SECONDS`) after containment, and early
    /// enough for the read-back after it within the invocation's budget.
    fn watch_until(&self) -> tokio::time::Instant {
        let config = self.ctx.config;
        let left = (self.contained_at
            + chrono::TimeDelta::from_std(config.watch).unwrap_or_default()
            - Utc::now())
        .to_std()
        .unwrap_or_default();
        let until = tokio::time::Instant::now() + left;
        let latest = self
            .ctx
            .investigation_deadline
            .checked_sub(config.verify_delay)
            .unwrap_or(self.ctx.investigation_deadline);
        until.min(latest)
    }

    /// The read-back, and after each re-apply another one a propagation window later (twice
    /// at most, within the budget): only a read that late may say the containment holds.
    async fn read_back_until_settled(&self, plan: &Plan, verification: &mut Verification) -> Later {
        let mut later = self.read_back(plan, verification).await;
        for _ in 0..2 {
            let Later::Reapplied { .. } = later else {
                break;
            };
            let delay = self.ctx.config.verify_delay;
            let left = self
                .ctx
                .investigation_deadline
                .saturating_duration_since(tokio::time::Instant::now());
            if left < delay + std::time::Duration::from_secs(5) {
                break;
            }
            tokio::time::sleep(delay).await;
            later = self.read_back(plan, verification).await;
        }
        later
    }

    async fn read_back(&self, plan: &Plan, verification: &mut Verification) -> Later {
        let phase = format!(
            "after {}s propagation delay",
            self.ctx.config.verify_delay.as_secs()
        );
        let (records, account, key) = (&self.records, &self.account, &self.incident.key);
        let contained_at = self.contained_at;
        verify::later(
            self.iam,
            key,
            plan,
            &phase,
            verification,
            |undone: verify::Undone| async move {
                let r = records.load(account, key).await?;
                r.restored_since(contained_at)
                    .filter(|x| undone.explained_by(&x.actions))
                    .map(|x| (x.by.clone(), x.reason.clone()))
            },
        )
        .await
    }

    /// The org-level layer, once the read-back is in: never for a containment an operator has
    /// just lifted, and never past the invocation's budget.
    async fn quarantine(
        &self,
        plan: &Plan,
        later: &Later,
        owner_established: bool,
        report: &mut Report,
    ) -> Option<Quarantined> {
        let q = self.ctx.config.quarantine.as_ref()?;
        match later {
            Later::Restored { .. } => return None,
            Later::Holds | Later::Reapplied { .. } => {}
        }
        if !owner_established {
            report.record(
                Step::Quarantine,
                Outcome::Skipped,
                format!("no org quarantine on the request's word alone: the owner of {} is not established (IAM or CloudTrail); the IAM containment stands", self.incident.key),
                Utc::now(),
            );
            return None;
        }
        let left = self
            .ctx
            .investigation_deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let store = self.records.enabled.then_some(self.home);
        let placed = tokio::time::timeout(
            left,
            quarantine::apply(
                self.home,
                store,
                q,
                self.account.as_str(),
                plan,
                &locate::session_name(self.incident),
                report,
            ),
        )
        .await;
        placed.unwrap_or_else(|_elapsed| {
            report.record(
                Step::Quarantine,
                Outcome::Failed,
                "org quarantine NOT confirmed: Organizations did not answer within the invocation's budget (the IAM containment stands)",
                Utc::now(),
            );
            None
        })
    }

    /// A portal deny that holds: whether every permission set references it, and (when
    /// configured) the user's account assignment removed.
    async fn portal_layers(
        &self,
        plan: &Plan,
        later: &Later,
        owner_established: bool,
        report: &mut Report,
    ) -> Option<Removed> {
        let (role, user, user_id, policy_arn) = match plan {
            Plan::Portal {
                role,
                user,
                user_id,
                policy_arn,
                ..
            } => (role, user, user_id, policy_arn),
            Plan::User { .. } | Plan::Role { .. } => return None,
        };
        if holds(later) {
            portal::coverage(self.iam, policy_arn, user, report).await;
        }
        let ic = self
            .ctx
            .config
            .identity_center
            .as_ref()
            .filter(|ic| ic.remove_assignments)?;
        match user_id {
            Some(user_id) if holds(later) && owner_established => {
                portal::remove_assignment(
                    self.home,
                    ic,
                    self.account.as_str(),
                    role,
                    user_id,
                    user,
                    &locate::session_name(self.incident),
                    report,
                )
                .await
            }
            Some(_) | None => {
                report.record(
                    Step::RemoveAssignment,
                    Outcome::Skipped,
                    format!("{user}'s account assignment was not removed: the user's identity store ID is unknown, or the deny did not hold"),
                    Utc::now(),
                );
                None
            }
        }
    }
}
