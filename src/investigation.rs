//! The CloudTrail search: every enabled Region concurrently, each call in a slot of the shared
//! `LookupEvents` budget ([`crate::pacing`]), backing off on throttling from outside, stopping
//! before the deadline, and saying exactly what it did not see. Events are folded into the
//! summary page by page, so memory stays bounded.

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::analysis::PivotKind;
use crate::config::{Config, is_region_name};
use crate::error::Error;
use crate::incident::AccessKeyId;
use crate::pacing::{Budget, SLOT};
use crate::ports::{ActivityLog, IncidentStore, LookupQuery};
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
    let began = Instant::now();
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
            let result = search_region(cloud, key, r, window, activity, began, budget).await;
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

    // Then the keys the attacker minted, long-term keys first, while time allows.
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
        if Instant::now() + PIVOT_SEARCH_MIN_TIME > window.deadline {
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
            .map(|r| search_region(cloud, &pivot_key, r, window, &sub, began, budget));
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
            keep_pivot(&mut activity, second);
        }
    }
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

fn is_throttling(e: &Error) -> bool {
    e.aws_code().is_some_and(|c| {
        c.contains("Throttl") || c == "TooManyRequestsException" || c == "RequestLimitExceeded"
    })
}

fn is_transient(e: &Error) -> bool {
    match e.aws_code() {
        None => true,
        Some(c) => matches!(
            c,
            "InternalFailure" | "InternalError" | "ServiceUnavailable" | "InternalServerError"
        ),
    }
}

/// Pages through one Region, each call in a slot of the budget; backs off on throttling, stops
/// at the cap or the deadline. Each page is folded into `activity` and dropped.
async fn search_region<C: ActivityLog, S: IncidentStore>(
    cloud: &C,
    key: &AccessKeyId,
    region: &str,
    window: Window<'_>,
    activity: &RefCell<Activity>,
    began: Instant,
    budget: Budget<'_, S>,
) -> RegionActivity {
    let mut out = RegionActivity::new(region);
    let mut next_token: Option<String> = None;
    let mut next_allowed = Instant::now();
    let mut throttles_in_a_row = 0u32;
    let mut transient = 0u32;
    let mut oldest: Option<DateTime<Utc>> = None;
    let coverage = loop {
        let Some(started) = budget.acquire(region, next_allowed, window.deadline).await else {
            break RegionCoverage::Partial {
                read_back_to: oldest,
                reason: "time budget used up".into(),
            };
        };
        next_allowed = started;
        out.calls_made += 1;
        let query = LookupQuery {
            region,
            key,
            start: window.start,
            end: window.end,
            next_token: next_token.clone(),
        };
        let result = tokio::time::timeout_at(window.deadline, cloud.lookup_page(query)).await;
        match result {
            Err(_) => {
                break RegionCoverage::Partial {
                    read_back_to: oldest,
                    reason: "time budget used up during a call".into(),
                };
            }
            Ok(Ok(page)) => {
                throttles_in_a_row = 0;
                transient = 0;
                {
                    let mut a = activity.borrow_mut();
                    for call in &page.calls {
                        oldest = Some(oldest.map_or(call.time, |t| t.min(call.time)));
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
                    None => break RegionCoverage::Complete,
                    Some(_) if out.events >= window.cap => {
                        break RegionCoverage::Partial {
                            read_back_to: oldest,
                            reason: format!(
                                "stopped at {} events (KILLSWITCH_MAX_EVENTS_PER_REGION)",
                                window.cap
                            ),
                        };
                    }
                    Some(t) => next_token = Some(t),
                }
            }
            Ok(Err(e)) if is_throttling(&e) && throttles_in_a_row < MAX_CONSECUTIVE_THROTTLES => {
                // Someone outside this function's budget (an operator's own search) is using the
                // account's limit: slow down, go on.
                out.throttled += 1;
                throttles_in_a_row += 1;
                next_allowed = Instant::now() + SLOT * 2u32.pow(throttles_in_a_row.min(4));
            }
            Ok(Err(e))
                if !is_throttling(&e) && is_transient(&e) && transient < MAX_TRANSIENT_RETRIES =>
            {
                transient += 1;
                next_allowed = Instant::now() + Duration::from_secs(1);
            }
            Ok(Err(e)) => {
                let reason = e.chain();
                warn!(region, error = %reason, "CloudTrail lookup failed");
                break if out.events == 0 {
                    RegionCoverage::Failed { reason }
                } else {
                    RegionCoverage::Partial {
                        read_back_to: oldest,
                        reason,
                    }
                };
            }
        }
    };
    out.coverage = coverage;
    out.finished_after_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    out
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
