//! The first minute after containment. IAM shows a write to reads at once but enforces it some
//! seconds later (AWS-FACTS §6, §16); in that window a holder with IAM rights on itself can undo
//! the deny, reactivate its key or mint another, and every re-apply opens a new window. So the
//! containment is read about every 500 ms, whatever is undone is written again at once, and the
//! first undoing pages CONTESTED with the counter-moves seen. Nothing read here is called
//! "holds": that is for the read-back one propagation window after the last write.
//!
//! Runs in the follow-through (its own queue, capped below the function's reserved concurrency),
//! never in the invocation that contains, and within a call budget.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tracing::warn;

use super::Pass;
use crate::playbook::contain::Home;
use crate::playbook::{Plan, Step, notify, org_tag, verify};
use crate::ports::{ActivityLog, Identity, KeyStatus};
use crate::report::{Notification, Outcome, Report, Status};

/// How often containment is read while watched.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// IAM reads one watch may make: four per round (the key, the deny, the tag, the user's keys)
/// over a minute at 500 ms, with room for re-reads after a re-apply. Throttled reads back off.
pub const WATCH_CALL_BUDGET: u32 = 520;

/// What the watch saw and did.
#[derive(Default)]
pub(super) struct Watched {
    /// Each undoing seen: when, and what was undone.
    pub counter_moves: Vec<(DateTime<Utc>, String)>,
    /// The last time containment was written again: the read that may say "holds" comes one
    /// propagation window after it.
    pub last_write: Option<DateTime<Utc>>,
    /// An operator's restore recorded since containment explains what was found undone.
    pub restored: Option<(String, String)>,
    pub calls: u32,
}

impl<I, H> Pass<'_, I, H>
where
    I: Identity + ActivityLog,
    H: Home,
{
    /// Watches `plan` until `until`, re-applying whatever is undone at once.
    pub(super) async fn watch(&self, plan: &Plan, until: Instant, report: &mut Report) -> Watched {
        let mut w = Watched::default();
        let tagged = report
            .steps
            .iter()
            .any(|s| s.step == Step::TagPrincipal && s.outcome.in_place());
        let mut interval = WATCH_INTERVAL;
        let span = until.saturating_duration_since(Instant::now()).as_secs();
        if span == 0 {
            return w;
        }
        crate::progress::say(format!(
            "watching the containment for {span} s: a holder may undo it before IAM enforces it"
        ));
        while Instant::now() + interval < until && w.calls < WATCH_CALL_BUDGET {
            tokio::time::sleep(interval).await;
            let (undone, calls, throttled) = self.undone(plan, tagged, report.started_at).await;
            w.calls += calls;
            // A throttled read says nothing: slow down rather than add to IAM's load.
            interval = if throttled {
                (interval * 2).min(Duration::from_secs(4))
            } else {
                WATCH_INTERVAL
            };
            if undone.is_empty() {
                continue;
            }
            if let Some(by) = self.restored_since().await {
                w.restored = Some(by);
                return w;
            }
            let at = Utc::now();
            warn!(moves = ?undone, "containment undone while watched: re-applying now");
            self.write_again(plan, tagged, &undone, report).await;
            let first = w.counter_moves.is_empty();
            let seen: Vec<String> = undone.iter().map(Move::describe).collect();
            w.counter_moves.push((at, seen.join(", ")));
            w.last_write = Some(Utc::now());
            crate::progress::say("containment UNDONE: written again at once, CONTESTED paged");
            if first {
                let paged = self.page_contested(report, &w).await;
                report.record(Step::Notify, paged.0, paged.1, Utc::now());
            }
        }
        if w.calls >= WATCH_CALL_BUDGET {
            report.record(
                Step::Verify,
                Outcome::Skipped,
                format!(
                    "the first-minute watch stopped at its budget of {WATCH_CALL_BUDGET} IAM reads"
                ),
                Utc::now(),
            );
        }
        w
    }

    /// What is undone now, the calls it took, and whether IAM throttled any of them.
    async fn undone(
        &self,
        plan: &Plan,
        tagged: bool,
        since: DateTime<Utc>,
    ) -> (Vec<Move>, u32, bool) {
        let key = &self.incident.key;
        let (check, tag, minted) = tokio::join!(
            verify::check(self.iam, key, plan, "watch"),
            async {
                if tagged {
                    org_tag::in_place(self.iam, plan).await
                } else {
                    None
                }
            },
            self.minted_on_user(plan, since)
        );
        let mut moves = Vec::new();
        if check.key_inactive == Some(false) {
            moves.push(Move::KeyActive);
        }
        if check.policy_in_place == Some(false) {
            moves.push(Move::DenyGone(check.detail.clone()));
        }
        if tag == Some(false)
            && let Some((_, key)) = org_tag::target(plan)
        {
            moves.push(Move::TagGone(key));
        }
        let (minted, listed) = minted;
        moves.extend(minted.into_iter().map(Move::NewKey));
        let calls = 2 + u32::from(tagged) + u32::from(listed);
        let throttled = check.detail.contains("Throttling");
        (moves, calls, throttled)
    }

    /// Active keys on a contained user created since the delivery began, other than the leaked
    /// one: the holder's (IAM's own dates say when). `true` when the user's keys were listed.
    async fn minted_on_user(
        &self,
        plan: &Plan,
        since: DateTime<Utc>,
    ) -> (Vec<crate::incident::AccessKeyId>, bool) {
        let user = match plan {
            Plan::User { user, .. } => user,
            Plan::Role { .. } | Plan::Portal { .. } => return (Vec::new(), false),
        };
        let Ok(keys) = self.iam.user_keys(user).await else {
            return (Vec::new(), true);
        };
        let minted = keys
            .into_iter()
            .filter(|k| {
                k.id != self.incident.key
                    && k.status == KeyStatus::Active
                    && k.created.is_some_and(|c| c >= since)
            })
            .map(|k| k.id)
            .collect();
        (minted, true)
    }

    /// The plan written again, the tag and the minted keys with it, all at once.
    async fn write_again(&self, plan: &Plan, tagged: bool, undone: &[Move], report: &mut Report) {
        let user = plan.user();
        let minted = undone.iter().filter_map(|m| match m {
            Move::NewKey(k) => Some(k),
            Move::KeyActive | Move::DenyGone(_) | Move::TagGone(_) => None,
        });
        let deactivations = futures::future::join_all(minted.filter_map(|k| {
            let user = user?;
            Some(async move { (k, self.iam.deactivate_key(user, k).await) })
        }));
        let (_, tag, deactivated) = tokio::join!(
            verify::reapply(self.iam, &self.incident.key, plan),
            async {
                if tagged {
                    org_tag::apply(self.iam, plan, &self.incident.id, false).await
                } else {
                    None
                }
            },
            deactivations
        );
        let at = Utc::now();
        if let Some((Outcome::Failed, detail)) = tag {
            report.record(Step::TagPrincipal, Outcome::Failed, detail, at);
        }
        for (k, r) in deactivated {
            let (outcome, detail) = match r {
                Ok(_) => (
                    Outcome::Done,
                    format!(
                        "deactivated {k}, created on the contained user after the incident began (the holder's)"
                    ),
                ),
                Err(e) => (
                    Outcome::Failed,
                    format!(
                        "could not deactivate {k}, created on the contained user after the incident began: {}",
                        e.chain()
                    ),
                ),
            };
            report.record(Step::DeactivateKey, outcome, detail, at);
        }
    }

    /// An operator's restore recorded since containment: the watch stops, nothing is re-applied.
    async fn restored_since(&self) -> Option<(String, String)> {
        let r = self.records.load(&self.account, &self.incident.key).await?;
        r.restored_since(self.contained_at)
            .map(|x| (x.by.clone(), x.reason.clone()))
    }

    /// CONTESTED at the first undoing, with what was undone: whether the re-apply holds is
    /// known one propagation window later, and the full report says so.
    async fn page_contested(&self, report: &Report, w: &Watched) -> (Outcome, String) {
        let mut page = report.clone();
        page.status = Status::Contested;
        let moves: Vec<&str> = w.counter_moves.iter().map(|(_, m)| m.as_str()).collect();
        page.record(
            Step::Verify,
            Outcome::Done,
            format!(
                "containment UNDONE {} s after it was applied ({}); written again at once. IAM enforces a write seconds after it shows it: whether this holds is known one propagation window later (the full report says)",
                w.counter_moves
                    .first()
                    .map_or(0, |(at, _)| (*at - self.contained_at).num_seconds().max(0)),
                moves.join("; ")
            ),
            Utc::now(),
        );
        notify::announce(self.home, &mut page).await;
        match page.notification {
            Notification::Sent { subject } => (Outcome::Done, format!("paged at once: {subject}")),
            Notification::NotPublished { subject } => (
                Outcome::Skipped,
                format!("not published (no topic): {subject}"),
            ),
            Notification::Failed { error, .. } => (
                Outcome::Failed,
                format!("could not page CONTESTED: {error}"),
            ),
            Notification::Pending | Notification::Suppressed { .. } => {
                (Outcome::Skipped, "CONTESTED not paged".into())
            }
        }
    }
}

/// One counter-move the watch can see in IAM.
#[derive(Debug)]
enum Move {
    KeyActive,
    DenyGone(String),
    TagGone(&'static str),
    NewKey(crate::incident::AccessKeyId),
}

impl Move {
    fn describe(&self) -> String {
        match self {
            Move::KeyActive => "the leaked key was set Active again".into(),
            Move::DenyGone(detail) => format!("the deny was removed ({detail})"),
            Move::TagGone(key) => format!("the {key} tag was removed"),
            Move::NewKey(k) => format!("a new key {k} was created on the contained user"),
        }
    }
}
