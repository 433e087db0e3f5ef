//! The notice's account of what the key did: the search window, each Region's coverage, the
//! calls, source IPs and user agents, and what the key did after containment. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Lists;
use super::safe::{count, defang, quoted, short_agent, ts};
use crate::report::{Activity, AfterContainment, RegionActivity, RegionCoverage};

impl AfterContainment {
    /// The line on-call reads: still active, or none seen (never "stopped"). `lag_followed_up`:
    /// a later search (the sweep) reads what CloudTrail delivers late, so the lag needs no
    /// warning here.
    pub fn line(&self, lag_followed_up: bool) -> Option<String> {
        let since = self.since?;
        Some(if self.calls == 0 {
            format!(
                "No call by this key after containment ({}) was seen in CloudTrail. That does not prove the attacker stopped: calls refused at authentication (the deactivated key) may not be logged at all (AWS does not document it){}.",
                ts(since),
                if lag_followed_up {
                    ""
                } else {
                    ", and Event history lags"
                }
            )
        } else {
            let succeeded = self.calls - self.denied;
            let mut line = format!(
                "STILL ACTIVE: {} call(s) after containment, last at {} from IP {} ({} refused, {} not refused)",
                self.calls,
                self.last_at.map(ts).unwrap_or_default(),
                self.last_ip
                    .as_deref()
                    .map(defang)
                    .unwrap_or_else(|| "unknown".into()),
                self.denied,
                succeeded
            );
            if self
                .by_event
                .keys()
                .any(|k| k.ends_with(":GetCallerIdentity"))
            {
                line.push_str("; note GetCallerIdentity succeeds even under an explicit deny, so a success there does not mean containment failed");
            }
            line
        })
    }
}

/// The lines under "Activity of this key": nothing found (and how far that can be trusted), or
/// the counts.
pub(super) fn section(m: &mut String, a: &Activity, lists: &Lists) {
    if let (Some(s), Some(e)) = (a.window_start, a.window_end) {
        let _ = writeln!(m, "  window {} .. {}", ts(s), ts(e));
    }
    let _ = writeln!(m, "  Regions searched: {}", a.region_source);
    if let Some(line) = a.after_containment.line(lists.second_search.is_some()) {
        let _ = writeln!(m, "  {line}");
    }
    region_lines(m, a);
    if a.total_events == 0 {
        let _ = writeln!(m, "  {}", nothing_found(a, lists));
        return;
    }
    let _ = writeln!(
        m,
        "  {} events, {}, first {} last {}",
        a.total_events,
        count(a.writes, "write"),
        a.first_seen.map(ts).unwrap_or_default(),
        a.last_seen.map(ts).unwrap_or_default()
    );
    call_lines(m, a);
}

/// A line per Region with events or not read to the end; the quiet ones counted in one line.
fn region_lines(m: &mut String, a: &Activity) {
    let mut quiet = 0usize;
    for r in &a.regions {
        match region_state(r) {
            Some(state) => {
                let _ = writeln!(
                    m,
                    "  {:<15} {:>5} events ({}, {} denied)  {}",
                    r.region,
                    r.events,
                    count(r.writes, "write"),
                    r.denied,
                    state
                );
            }
            None => quiet += 1,
        }
    }
    if quiet > 0 {
        let _ = writeln!(
            m,
            "  {} {}Region(s): no events, read to the end",
            quiet,
            if quiet < a.regions.len() {
                "other "
            } else {
                ""
            }
        );
    }
}

/// How far a Region was read; `None` for one read to the end without events.
fn region_state(r: &RegionActivity) -> Option<String> {
    Some(match &r.coverage {
        RegionCoverage::Complete if r.events == 0 => return None,
        RegionCoverage::Complete => "complete".to_string(),
        RegionCoverage::Partial {
            read_back_to,
            reason,
        } => format!(
            "PARTIAL ({reason}; older than {} not read)",
            read_back_to
                .map(ts)
                .unwrap_or_else(|| "the window end".into())
        ),
        RegionCoverage::Failed { reason } => format!("FAILED ({reason})"),
    })
}

/// No event found: how much that says.
fn nothing_found(a: &Activity, lists: &Lists) -> String {
    match (a.complete(), lists.second_search) {
        (false, _) => "no events found in what could be read: the search was INCOMPLETE, do not read this as no activity".to_string(),
        (true, Some(Some(at))) => format!(
            "no events found yet; the second search at {} reads what CloudTrail delivers late",
            ts(at)
        ),
        (true, Some(None)) => "no events found".to_string(),
        (true, None) => {
            "no events found in the searched Regions (Event history can lag a few minutes)"
                .to_string()
        }
    }
}

/// The calls (with how many were refused), source IPs and user agents, most frequent first.
fn call_lines(m: &mut String, a: &Activity) {
    // One list of calls, with how many of each were refused (not a second list of refusals).
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for (name, n) in &a.by_event {
        let event = name.rsplit(':').next().unwrap_or(name);
        let denied = a.denied.get(event).copied().unwrap_or(0).min(*n);
        calls.insert(name.clone(), *n);
        if denied > 0 {
            labels.insert(name.clone(), format!("{} ({denied} refused)", defang(name)));
        }
    }
    top(m, "calls", &calls, 15, |k| {
        labels.get(k).cloned().unwrap_or_else(|| defang(k))
    });
    top(m, "source IPs", &a.source_ips, 10, quoted);
    let mut agents: BTreeMap<String, usize> = BTreeMap::new();
    for (ua, n) in &a.user_agents {
        *agents.entry(short_agent(ua)).or_default() += n;
    }
    top(
        m,
        "user agents (shortened; full in the JSON report)",
        &agents,
        5,
        quoted,
    );
}

fn top(
    m: &mut String,
    title: &str,
    map: &BTreeMap<String, usize>,
    n: usize,
    show: impl Fn(&str) -> String,
) {
    if map.is_empty() {
        return;
    }
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(m, "  {title}:");
    for (k, c) in v.iter().take(n) {
        let _ = writeln!(m, "    {c:>5}  {}", show(k));
    }
    if v.len() > n {
        let _ = writeln!(m, "    ... and {} more", v.len() - n);
    }
}
