//! The CloudTrail search: every enabled Region concurrently, each call in a slot of the shared
//! `LookupEvents` budget ([`crate::pacing`]), backing off on throttling from outside, stopping
//! before the deadline, and saying exactly what it did not see. Events are folded into the
//! summary page by page, so memory stays bounded.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::analysis::PivotKind;
use crate::config::{Config, is_region_name};
use crate::error::{AwsFailure, Error};
use crate::incident::AccessKeyId;
use crate::pacing::{Budget, SLOT};
use crate::ports::{ActivityLog, ActivityPage, IncidentStore, LookupQuery};
use crate::report::{Activity, Investigation, PivotActivity, RegionActivity, RegionCoverage};

/// IAM's home Region: IAM and global STS calls are logged here.
pub const HOME_REGION: &str = "us-east-1";
/// Consecutive throttles tolerated in one Region before giving up on it.
const MAX_CONSECUTIVE_THROTTLES: u32 = 8;
/// Retries of transient failures (5xx, connection) per Region.
const MAX_TRANSIENT_RETRIES: u32 = 2;
/// Pivot keys searched in turn when time allows.
const MAX_PIVOT_SEARCHES: usize = 5;
/// A pivot search only starts if at least this much time is left.
const PIVOT_SEARCH_MIN_TIME: Duration = Duration::from_secs(2);

/// What a search needs besides the cloud.
#[derive(Clone, Copy)]
pub struct Window<'a> {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub deadline: Instant,
    pub cap: usize,
    /// Calls at or after this are also counted as made after containment.
    pub contained_at: Option<DateTime<Utc>>,
    /// Event IDs an earlier pass reported: skipped (the sweep reports only what is new).
    pub seen: Option<&'a HashSet<String>>,
    /// Only IDs of events at or after this are remembered for a later sweep.
    pub remember_after: Option<DateTime<Utc>>,
    /// Pivots an earlier pass listed (`Pivot::identity`): not listed again.
    pub known_pivots: Option<&'a HashSet<String>>,
}

impl Window<'_> {
    pub fn new(config: &Config, now: DateTime<Utc>, deadline: Instant) -> Self {
        Self {
            start: now - TimeDelta::from_std(config.lookback).unwrap_or(TimeDelta::hours(24)),
            end: now,
            deadline: deadline.min(Instant::now() + config.investigation_budget),
            cap: config.max_events_per_region,
            contained_at: None,
            seen: None,
            remember_after: None,
            known_pivots: None,
        }
    }
}

/// The Regions to search and where the list came from.
pub async fn regions<C: ActivityLog>(
    cloud: &C,
    config: &Config,
    hints: &[String],
) -> (Vec<String>, String) {
    let (base, source) = if !config.regions.is_empty() {
        (
            config.regions.clone(),
            "the ones KILLSWITCH_REGIONS names".to_owned(),
        )
    } else {
        match cloud.enabled_regions().await {
            Ok(list) if !list.is_empty() => {
                (list, "every Region enabled for the account".to_owned())
            }
            Ok(_) => (
                Vec::new(),
                "the account listed no enabled Region; only the Regions the trigger points at"
                    .to_owned(),
            ),
            Err(e) => {
                warn!(error = %e.chain(), "could not list enabled Regions");
                (
                    Vec::new(),
                    format!(
                        "the enabled Regions could not be listed ({}); only the Regions the trigger points at",
                        e.chain()
                    ),
                )
            }
        }
    };
    let mut out = vec![HOME_REGION.to_owned()];
    for r in hints.iter().chain(base.iter()) {
        if is_region_name(r) && !out.contains(r) {
            out.push(r.clone());
        }
    }
    (out, source)
}

/// Searches every Region for the key, then the credentials it minted while time allows.
pub async fn investigate<C: ActivityLog, S: IncidentStore>(
    cloud: &C,
    key: &AccessKeyId,
    regions: &[String],
    region_source: String,
    window: Window<'_>,
    budget: Budget<'_, S>,
) -> Investigation {
    let search = Search {
        cloud,
        window,
        began: Instant::now(),
        budget,
    };
    let mut activity = search.key(key, regions, region_source).await;
    search.pivots(&mut activity).await;
    info!(
        step = "investigate",
        events = activity.total_events,
        regions = activity.regions.len(),
        complete = activity.complete(),
        pivots = activity.pivots.len(),
        "CloudTrail searched"
    );
    Investigation::Ran(Box::new(activity))
}

/// What every Region's search shares: the cloud, the window, the clock and the budget.
struct Search<'a, C, S> {
    cloud: &'a C,
    window: Window<'a>,
    /// When the investigation began: each Region's finishing time is counted from here.
    began: Instant,
    budget: Budget<'a, S>,
}

impl<C, S> Clone for Search<'_, C, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C, S> Copy for Search<'_, C, S> {}

impl<C: ActivityLog, S: IncidentStore> Search<'_, C, S> {
    /// The leaked key in every Region, concurrently.
    async fn key(&self, key: &AccessKeyId, regions: &[String], region_source: String) -> Activity {
        let window = self.window;
        let mut activity = Activity {
            window_start: Some(window.start),
            window_end: Some(window.end),
            region_source,
            remember_after: window.remember_after,
            pivot_ids: window.known_pivots.cloned().unwrap_or_default(),
            ..Activity::default()
        };
        activity.after_containment.since = window.contained_at;
        let activity = RefCell::new(activity);
        crate::progress::say(format!(
            "CloudTrail: searching {} Region(s) for {key}",
            regions.len()
        ));
        let done = std::cell::Cell::new(0usize);
        let searches = regions.iter().map(|r| {
            let (done, activity) = (&done, &activity);
            async move {
                let result = self.region(key, r, activity).await;
                done.set(done.get() + 1);
                if result.events > 0 || result.coverage != RegionCoverage::Complete {
                    crate::progress::say(format!(
                        "CloudTrail {}: {} event(s){} [{}/{}]",
                        result.region,
                        result.events,
                        if result.coverage == RegionCoverage::Complete {
                            ""
                        } else {
                            ", NOT complete"
                        },
                        done.get(),
                        regions.len()
                    ));
                }
                result
            }
        });
        let per_region = futures::future::join_all(searches).await;
        crate::progress::say(format!("CloudTrail: {} Region(s) searched", regions.len()));
        let mut activity = activity.into_inner();
        activity.regions = per_region;
        activity
    }

    /// Then the keys the attacker minted, long-term keys first, while time allows.
    async fn pivots(&self, activity: &mut Activity) {
        let mut targets: Vec<(usize, String, String)> = activity
            .pivots
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.pivot.kind, PivotKind::AccessKey | PivotKind::RoleSession))
            .filter_map(|(i, p)| Some((i, p.pivot.access_key_id.clone()?, p.pivot.region.clone())))
            .collect();
        targets.sort_by_key(|(i, _, _)| activity.pivots[*i].pivot.kind != PivotKind::AccessKey);
        targets.truncate(MAX_PIVOT_SEARCHES);
        for (index, pivot_key, minted_in) in targets {
            if Instant::now() + PIVOT_SEARCH_MIN_TIME > self.window.deadline {
                break;
            }
            let Ok(pivot_key) = AccessKeyId::parse(&pivot_key) else {
                continue;
            };
            let mut pivot_regions = vec![HOME_REGION.to_owned()];
            if minted_in != HOME_REGION {
                pivot_regions.push(minted_in);
            }
            let sub = RefCell::new(Activity::default());
            let searches = pivot_regions
                .iter()
                .map(|r| self.region(&pivot_key, r, &sub));
            let coverage = futures::future::join_all(searches).await;
            let sub = sub.into_inner();
            activity.pivots[index].activity = Some(PivotActivity {
                regions: coverage,
                events: sub.total_events,
                notable: sub.notable_names(),
            });
            // What the pivot itself minted (a key made with a role session): a pivot too.
            for mut second in sub.pivots.into_iter().map(|p| p.pivot) {
                second.via = format!("{} (by pivot {pivot_key})", second.via);
                keep_pivot(activity, second);
            }
        }
    }

    /// Pages through one Region, each call in a slot of the budget; backs off on throttling,
    /// stops at the cap or the deadline. Each page is folded into `activity` and dropped.
    async fn region(
        &self,
        key: &AccessKeyId,
        region: &str,
        activity: &RefCell<Activity>,
    ) -> RegionActivity {
        let window = self.window;
        let mut out = RegionActivity::new(region);
        let mut paging = Paging::new();
        let coverage = loop {
            let Some(started) = self
                .budget
                .acquire(region, paging.next_allowed, window.deadline)
                .await
            else {
                break paging.partial("time budget used up".into());
            };
            paging.next_allowed = started;
            out.calls_made += 1;
            let query = LookupQuery {
                region,
                key,
                start: window.start,
                end: window.end,
                next_token: paging.next_token.clone(),
            };
            let result =
                tokio::time::timeout_at(window.deadline, self.cloud.lookup_page(query)).await;
            let next = match result {
                Err(_) => {
                    ControlFlow::Break(paging.partial("time budget used up during a call".into()))
                }
                Ok(Ok(page)) => paging.fold(page, window, activity, &mut out),
                Ok(Err(e)) => paging.failed(&e, region, &mut out),
            };
            if let ControlFlow::Break(coverage) = next {
                break coverage;
            }
        };
        out.coverage = coverage;
        out.finished_after_ms = u64::try_from(self.began.elapsed().as_millis()).unwrap_or(u64::MAX);
        out
    }
}

/// Where one Region's paging stands.
struct Paging {
    next_token: Option<String>,
    next_allowed: Instant,
    throttles_in_a_row: u32,
    transient: u32,
    /// The oldest event read: how far back a partial search got.
    oldest: Option<DateTime<Utc>>,
}

impl Paging {
    fn new() -> Self {
        Self {
            next_token: None,
            next_allowed: Instant::now(),
            throttles_in_a_row: 0,
            transient: 0,
            oldest: None,
        }
    }

    fn partial(&self, reason: String) -> RegionCoverage {
        RegionCoverage::Partial {
            read_back_to: self.oldest,
            reason,
        }
    }

    /// Folds a page into the activity; stops at the last page or the cap.
    fn fold(
        &mut self,
        page: ActivityPage,
        window: Window<'_>,
        activity: &RefCell<Activity>,
        out: &mut RegionActivity,
    ) -> ControlFlow<RegionCoverage> {
        self.throttles_in_a_row = 0;
        self.transient = 0;
        {
            let mut a = activity.borrow_mut();
            for call in &page.calls {
                self.oldest = Some(self.oldest.map_or(call.time, |t| t.min(call.time)));
                if let (Some(seen), Some(id)) = (window.seen, &call.event_id)
                    && seen.contains(id)
                {
                    a.already_reported += 1;
                    continue;
                }
                a.add(call);
                out.count(call);
            }
        }
        match page.next_token {
            None => ControlFlow::Break(RegionCoverage::Complete),
            Some(_) if out.events >= window.cap => ControlFlow::Break(self.partial(format!(
                "stopped at {} events (KILLSWITCH_MAX_EVENTS_PER_REGION)",
                window.cap
            ))),
            Some(t) => {
                self.next_token = Some(t);
                ControlFlow::Continue(())
            }
        }
    }

    /// Backs off and asks again while throttling or a transient failure allows; else stops.
    fn failed(
        &mut self,
        e: &Error,
        region: &str,
        out: &mut RegionActivity,
    ) -> ControlFlow<RegionCoverage> {
        if is_throttling(e) && self.throttles_in_a_row < MAX_CONSECUTIVE_THROTTLES {
            // Someone outside this function's budget (an operator's own search) is using the
            // account's limit: slow down, go on.
            out.throttled += 1;
            self.throttles_in_a_row += 1;
            self.next_allowed = Instant::now() + SLOT * 2u32.pow(self.throttles_in_a_row.min(4));
            return ControlFlow::Continue(());
        }
        if is_transient(e) && self.transient < MAX_TRANSIENT_RETRIES {
            self.transient += 1;
            self.next_allowed = Instant::now() + Duration::from_secs(1);
            return ControlFlow::Continue(());
        }
        let reason = e.chain();
        warn!(region, error = %reason, "CloudTrail lookup failed");
        ControlFlow::Break(if out.events == 0 {
            RegionCoverage::Failed { reason }
        } else {
            self.partial(reason)
        })
    }
}

fn is_throttling(e: &Error) -> bool {
    e.is(AwsFailure::Throttled)
}

/// Worth asking again soon: AWS's side failed, or no answer came at all (no code). A throttle
/// is not: it has its own back-off.
fn is_transient(e: &Error) -> bool {
    match e.failure() {
        None | Some(AwsFailure::ServiceFault) => true,
        Some(
            AwsFailure::NotFound
            | AwsFailure::LimitExceeded
            | AwsFailure::AccessDenied
            | AwsFailure::Throttled
            | AwsFailure::AlreadyExists
            | AwsFailure::Conflict
            | AwsFailure::Other,
        ) => false,
    }
}

/// What contains a pivot, ready to run: a manual-request payload for keys and sessions, the IAM
/// command for the rest (a trust policy is never reverted automatically).
pub fn containment_request(
    pivot: &crate::analysis::Pivot,
    parent: &AccessKeyId,
    account: &str,
) -> serde_json::Value {
    let user = pivot.principal.as_deref().unwrap_or("USER");
    match pivot.kind {
        PivotKind::AccessKey | PivotKind::RoleSession | PivotKind::UserSession => {
            let mut req = json!({
                "access_key_id": pivot.access_key_id,
                "reason": format!("minted by leaked key {parent} via {}", pivot.via),
                "requested_by": "killswitch (follow the pivot)",
            });
            if pivot.kind == PivotKind::AccessKey
                && let Some(user) = &pivot.principal
            {
                req["user_name"] = json!(user);
            }
            if pivot.kind == PivotKind::RoleSession
                && let Some(role) = pivot.role_in(account)
            {
                req["role_name"] = json!(role);
            }
            req
        }
        PivotKind::LoginProfile => json!({
            "command": format!("aws iam delete-login-profile --user-name {user}"),
            "then": "revoke the console sessions it opened: killswitch respond with any key of that user, or attach a deny with aws:TokenIssueTime",
        }),
        PivotKind::TrustPolicy => {
            let role = pivot.principal.as_deref().unwrap_or("ROLE");
            json!({
                "command": format!("aws iam update-assume-role-policy --role-name {role} --policy-document file://trust-policy-before-{role}.json"),
                "previous_policy_from": format!("aws configservice get-resource-config-history --resource-type AWS::IAM::Role --resource-id <RoleId of {role}>  (or your infrastructure code)"),
                "why_not_automatic": "killswitch cannot know which trust policy is right: review before reverting",
            })
        }
        PivotKind::ServiceCredential => json!({
            "command": format!(
                "aws iam update-service-specific-credential --user-name {user} --service-specific-credential-id {} --status Inactive",
                pivot.credential_id.as_deref().unwrap_or("ID")
            ),
        }),
    }
}

/// Keeps a pivot unless it is already listed (`Activity::keep_pivot`).
pub fn keep_pivot(activity: &mut Activity, pivot: crate::analysis::Pivot) {
    activity.keep_pivot(pivot);
}
