//! What the key did, counted as CloudTrail events stream in: per Region and overall, the calls
//! made after containment, the flagged calls and the doors left open, each bounded in memory by
//! distinct values. Pure.

use std::collections::BTreeMap;

use super::{Activity, DOORS_PER_KIND, MAX_DOORS, RegionActivity, RegionCoverage, open};
use crate::analysis::{MAX_NOTABLE_PER_CATEGORY, Notable, examine, severity};
use crate::ports::ApiCall;

impl RegionActivity {
    pub fn new(region: &str) -> Self {
        Self {
            region: region.to_owned(),
            coverage: RegionCoverage::Complete,
            events: 0,
            writes: 0,
            denied: 0,
            calls_made: 0,
            throttled: 0,
            finished_after_ms: 0,
            by_event: BTreeMap::new(),
            source_ips: BTreeMap::new(),
            user_agents: BTreeMap::new(),
            first_seen: None,
            last_seen: None,
        }
    }

    pub fn count(&mut self, call: &ApiCall) {
        self.events += 1;
        if call.read_only == Some(false) {
            self.writes += 1;
        }
        if call.error_code.as_deref().is_some_and(is_denial) {
            self.denied += 1;
        }
        bump(
            &mut self.by_event,
            format!("{}:{}", short_source(&call.event_source), call.event_name),
        );
        if let Some(ip) = &call.source_ip {
            bump(&mut self.source_ips, ip.clone());
        }
        if let Some(ua) = &call.user_agent {
            bump(&mut self.user_agents, crate::incident::truncate(ua, 120));
        }
        self.first_seen = Some(self.first_seen.map_or(call.time, |t| t.min(call.time)));
        self.last_seen = Some(self.last_seen.map_or(call.time, |t| t.max(call.time)));
    }
}

const MAX_DISTINCT: usize = 500;
/// Event IDs kept per investigation: ~40 bytes each, well inside a DynamoDB item's 400 KB.
pub const MAX_EVENT_IDS: usize = 5000;

impl Activity {
    pub fn add(&mut self, call: &ApiCall) {
        self.total_events += 1;
        if let Some(id) = &call.event_id
            && self.event_ids.len() < MAX_EVENT_IDS
            && self.remember_after.is_none_or(|t| call.time >= t)
        {
            self.event_ids.push(id.clone());
        }
        self.count_after_containment(call);
        bump(
            &mut self.by_event,
            format!("{}:{}", short_source(&call.event_source), call.event_name),
        );
        bump(&mut self.by_source, call.event_source.clone());
        if let Some(ip) = &call.source_ip {
            bump(&mut self.source_ips, ip.clone());
        }
        if let Some(ua) = &call.user_agent {
            bump(&mut self.user_agents, crate::incident::truncate(ua, 120));
        }
        if call.error_code.as_deref().is_some_and(is_denial) {
            bump(&mut self.denied, call.event_name.clone());
        }
        if call.read_only == Some(false) {
            self.writes += 1;
        }
        self.first_seen = Some(self.first_seen.map_or(call.time, |t| t.min(call.time)));
        self.last_seen = Some(self.last_seen.map_or(call.time, |t| t.max(call.time)));
        let (notable, pivot) = examine(call);
        if let Some(n) = &notable {
            self.keep_door(n);
        }
        if let Some(n) = notable {
            *self.notable_counts.entry(n.category).or_default() += 1;
            keep_notable(self.notable.entry(n.category).or_default(), n);
        }
        if let Some(p) = pivot {
            self.keep_pivot(p);
        }
    }

    fn count_after_containment(&mut self, call: &ApiCall) {
        let Some(since) = self.after_containment.since else {
            return;
        };
        if call.time < since {
            return;
        }
        let after = &mut self.after_containment;
        after.calls += 1;
        if call.error_code.as_deref().is_some_and(is_denial) {
            after.denied += 1;
        }
        if after.last_at.is_none_or(|t| call.time >= t) {
            after.last_at = Some(call.time);
            after.last_ip.clone_from(&call.source_ip);
        }
        bump(
            &mut after.by_event,
            format!("{}:{}", short_source(&call.event_source), call.event_name),
        );
        if after.regions.len() < 20 {
            after.regions.insert(call.region.clone());
        }
    }

    /// Keeps a call that leaves a door open, once, within its kind's share.
    fn keep_door(&mut self, n: &Notable) {
        let Some(kind) = open::door_kind(n) else {
            return;
        };
        let id = format!("{}|{}|{}", n.event_name, n.region, n.details);
        if self.door_ids.contains(&id) {
            return;
        }
        let of_kind = self.doors_per_kind.entry(kind).or_default();
        if *of_kind < DOORS_PER_KIND && self.doors.len() < MAX_DOORS {
            *of_kind += 1;
            self.door_ids.insert(id);
            self.doors.push(n.clone());
        } else {
            self.doors_not_kept += 1;
        }
    }

    /// Names of the flagged calls, for a compact pivot summary.
    pub fn notable_names(&self) -> Vec<String> {
        self.notable
            .values()
            .flatten()
            .map(|n| format!("{}:{}", short_source(&n.event_source), n.event_name))
            .collect()
    }

    pub fn complete(&self) -> bool {
        self.regions
            .iter()
            .all(|r| r.coverage == RegionCoverage::Complete)
    }

    /// Every key or session the attacker minted was searched to the end.
    pub fn pivot_searches_complete(&self) -> bool {
        self.pivots
            .iter()
            .filter(|p| {
                matches!(
                    p.pivot.kind,
                    crate::analysis::PivotKind::AccessKey | crate::analysis::PivotKind::RoleSession
                )
            })
            .all(|p| {
                p.activity.as_ref().is_some_and(|a| {
                    a.regions
                        .iter()
                        .all(|r| r.coverage == RegionCoverage::Complete)
                })
            })
    }
}

/// Entries of one event name kept per category: a flood of one call never pushes out others.
const MAX_SAME_NAME: usize = 5;

/// Keeps the list at most `MAX_NOTABLE_PER_CATEGORY` long, most severe first (newest first among
/// equals), at most `MAX_SAME_NAME` of one event name: a flood of calls never pushes out a
/// grave one of another kind.
fn keep_notable(list: &mut Vec<Notable>, n: Notable) {
    let rank = |x: &Notable| (std::cmp::Reverse(severity(x)), std::cmp::Reverse(x.time));
    let same: Vec<usize> = (0..list.len())
        .filter(|&i| list[i].event_name == n.event_name)
        .collect();
    if same.len() >= MAX_SAME_NAME {
        // Compete only with the least urgent of its own name.
        let &worst = same.last().unwrap_or(&0);
        if rank(&n) >= rank(&list[worst]) {
            return;
        }
        list.remove(worst);
    }
    let at = list.partition_point(|x| rank(x) <= rank(&n));
    if at < MAX_NOTABLE_PER_CATEGORY {
        list.insert(at, n);
        list.truncate(MAX_NOTABLE_PER_CATEGORY);
    }
}

fn bump(map: &mut BTreeMap<String, usize>, key: String) {
    if let Some(n) = map.get_mut(&key) {
        *n += 1;
    } else if map.len() < MAX_DISTINCT {
        map.insert(key, 1);
    } else {
        *map.entry("(other)".into()).or_default() += 1;
    }
}

fn is_denial(code: &str) -> bool {
    code.contains("AccessDenied") || code.contains("Unauthorized") || code == "InvalidClientTokenId"
}

pub(crate) fn short_source(source: &str) -> &str {
    source.strip_suffix(".amazonaws.com").unwrap_or(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn activity_counts_bounded_distinct_values() {
        let mut a = Activity::default();
        for i in 0..(MAX_DISTINCT + 50) {
            a.add(&ApiCall {
                event_id: Some(format!("e{i}")),
                time: Utc::now(),
                event_name: "ListUsers".into(),
                event_source: "iam.amazonaws.com".into(),
                region: "us-east-1".into(),
                source_ip: Some(format!("10.0.{}.{}", i / 256, i % 256)),
                user_agent: None,
                error_code: Some("AccessDenied".into()),
                read_only: Some(true),
                request_parameters: None,
                response_elements: None,
                caller: None,
            });
        }
        assert_eq!(a.total_events, MAX_DISTINCT + 50);
        assert_eq!(a.event_ids.len(), MAX_DISTINCT + 50);
        assert_eq!(a.source_ips.len(), MAX_DISTINCT + 1);
        assert_eq!(a.source_ips.get("(other)"), Some(&50));
        assert_eq!(a.denied.get("ListUsers"), Some(&(MAX_DISTINCT + 50)));
        assert_eq!(a.by_event.get("iam:ListUsers"), Some(&(MAX_DISTINCT + 50)));
    }
}
