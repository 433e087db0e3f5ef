//! What happened, as data (the JSON report) and as text (the SNS message). Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::analysis::{Category, MAX_NOTABLE_PER_CATEGORY, Notable, Pivot, examine};
use crate::incident::{Incident, SampleFinding};
use crate::playbook::Step;
use crate::ports::ApiCall;

/// SNS subjects must be printable ASCII and under 100 characters.
pub const MAX_SUBJECT: usize = 99;
/// SNS messages are at most 256 KiB; stay well below to leave room for attributes.
pub const MAX_MESSAGE_BYTES: usize = 200 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Writes made and verified.
    Contained,
    /// Everything was already in place; nothing written.
    AlreadyContained,
    /// Containment was undone during verification and re-applied.
    Contested,
    /// At least one containment step did not hold. Lambda retries.
    Failed,
    /// Not acted on by rule (protected principal, root, other account...). Notify only.
    Refused,
    /// The key (or the trigger) belongs to another account: bad input, nothing changed.
    Rejected,
    /// GuardDuty sample finding: never acted on.
    Sample,
    /// Dry run: the plan was computed, nothing written.
    DryRun,
    /// IAM does not know the key: nothing to contain.
    KeyNotFound,
}

impl Status {
    pub fn headline(self) -> &'static str {
        match self {
            Status::Contained => "CONTAINED",
            Status::AlreadyContained => "ALREADY CONTAINED",
            Status::Contested => "CONTESTED, re-contained",
            Status::Failed => "CONTAINMENT FAILED",
            Status::Refused => "NOT CONTAINED (refused)",
            Status::Rejected => "REJECTED (another account's key)",
            Status::Sample => "SAMPLE finding ignored",
            Status::DryRun => "DRY RUN",
            Status::KeyNotFound => "KEY NOT FOUND",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    AlreadyDone,
    WouldDo,
    NotFound,
    Skipped,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepResult {
    pub step: Step,
    pub outcome: Outcome,
    pub detail: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub phase: String,
    pub at: DateTime<Utc>,
    /// `None` when the key is not ours to check (ASIA keys).
    pub key_inactive: Option<bool>,
    pub policy_in_place: Option<bool>,
    pub holds: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verification {
    pub checks: Vec<Check>,
    pub contested: bool,
    pub reapplied: bool,
    pub holds: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegionCoverage {
    /// Every event in the window was read.
    Complete,
    /// Stopped early; events older than `read_back_to` were not read.
    Partial {
        read_back_to: Option<DateTime<Utc>>,
        reason: String,
    },
    Failed {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegionActivity {
    pub region: String,
    pub coverage: RegionCoverage,
    pub events: usize,
    pub writes: usize,
    pub denied: usize,
    pub calls_made: usize,
    pub throttled: usize,
    /// When this Region's search ended, from the start of the investigation.
    pub finished_after_ms: u64,
    /// This Region's share of the summary (distinct values bounded like the overall one).
    pub by_event: BTreeMap<String, usize>,
    pub source_ips: BTreeMap<String, usize>,
    pub user_agents: BTreeMap<String, usize>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
}

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

/// What a pivot key did, when there was time to look.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PivotActivity {
    pub regions: Vec<RegionActivity>,
    pub events: usize,
    pub notable: Vec<String>,
}

/// The containment of a pivot, when `KILLSWITCH_FOLLOW_PIVOTS` is on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PivotContainment {
    pub status: Status,
    pub summary: String,
    pub steps: Vec<StepResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PivotReport {
    #[serde(flatten)]
    pub pivot: Pivot,
    /// A manual request that contains it (`killswitch respond` or `aws lambda invoke`).
    pub contain_with: serde_json::Value,
    pub activity: Option<PivotActivity>,
    pub containment: Option<PivotContainment>,
}

/// What the key did, aggregated as events stream in (memory bounded by distinct values).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Activity {
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub regions: Vec<RegionActivity>,
    pub total_events: usize,
    pub by_event: BTreeMap<String, usize>,
    pub by_source: BTreeMap<String, usize>,
    pub source_ips: BTreeMap<String, usize>,
    pub user_agents: BTreeMap<String, usize>,
    pub denied: BTreeMap<String, usize>,
    pub writes: usize,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Where the Region list came from (discovery, configuration, or a fallback).
    pub region_source: String,
    /// Flagged calls per category (at most `MAX_NOTABLE_PER_CATEGORY` each, newest first).
    pub notable: BTreeMap<Category, Vec<Notable>>,
    /// How many calls each category had, including those not listed.
    pub notable_counts: BTreeMap<Category, usize>,
    /// Credentials the attacker minted, newest first.
    pub pivots: Vec<PivotReport>,
}

const MAX_DISTINCT: usize = 500;

impl Activity {
    pub fn add(&mut self, call: &ApiCall) {
        self.total_events += 1;
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
        if let Some(n) = notable {
            *self.notable_counts.entry(n.category).or_default() += 1;
            let list = self.notable.entry(n.category).or_default();
            if list.len() < MAX_NOTABLE_PER_CATEGORY {
                list.push(n);
            }
        }
        if let Some(p) = pivot {
            crate::investigation::keep_pivot(&mut self.pivots, p);
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

fn short_source(source: &str) -> &str {
    source.strip_suffix(".amazonaws.com").unwrap_or(source)
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Investigation {
    NotRun { reason: String },
    Ran(Box<Activity>),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Notification {
    Pending,
    Sent {
        subject: String,
    },
    Failed {
        subject: String,
        error: String,
    },
    /// Deliberately not sent: a duplicate delivery that found nothing to do.
    Suppressed {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub incident_id: String,
    pub status: Status,
    pub summary: String,
    pub trigger: serde_json::Value,
    pub access_key_id: String,
    pub principal: String,
    pub account: Option<String>,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub steps: Vec<StepResult>,
    pub verification: Option<Verification>,
    pub investigation: Investigation,
    pub next_steps: Vec<String>,
    pub undo: Vec<String>,
    pub notification: Notification,
}

impl Report {
    pub fn new(incident: &Incident, dry_run: bool, now: DateTime<Utc>) -> Self {
        Self {
            incident_id: incident.id.clone(),
            status: Status::Contained,
            summary: String::new(),
            trigger: serde_json::to_value(&incident.trigger).unwrap_or_default(),
            access_key_id: incident.key.to_string(),
            principal: incident.principal.to_string(),
            account: incident.account.as_ref().map(ToString::to_string),
            dry_run,
            started_at: now,
            steps: Vec::new(),
            verification: None,
            investigation: Investigation::NotRun {
                reason: "not reached".into(),
            },
            next_steps: Vec::new(),
            undo: Vec::new(),
            notification: Notification::Pending,
        }
    }

    pub fn sample(sample: &SampleFinding, now: DateTime<Utc>) -> Self {
        Self {
            incident_id: format!("guardduty-sample:{}", sample.finding_id),
            status: Status::Sample,
            summary: "GuardDuty sample finding (generated by CreateSampleFindings or the console): no action taken, no IAM call made.".into(),
            trigger: serde_json::json!({"kind": "guard_duty_sample", "finding_id": sample.finding_id, "finding_type": sample.finding_type}),
            access_key_id: "(sample placeholder)".into(),
            principal: "(sample placeholder)".into(),
            account: sample.account.clone(),
            dry_run: false,
            started_at: now,
            steps: Vec::new(),
            verification: None,
            investigation: Investigation::NotRun {
                reason: "sample finding".into(),
            },
            next_steps: vec!["Nothing: this proves the GuardDuty -> EventBridge -> killswitch -> SNS path works.".into()],
            undo: Vec::new(),
            notification: Notification::Pending,
        }
    }

    pub fn record(
        &mut self,
        step: Step,
        outcome: Outcome,
        detail: impl Into<String>,
        at: DateTime<Utc>,
    ) {
        let detail = detail.into();
        tracing::info!(step = step.name(), outcome = ?outcome, detail = %detail, "step");
        self.steps.push(StepResult {
            step,
            outcome,
            detail,
            at,
        });
    }

    pub fn containment_failed(&self) -> bool {
        self.status == Status::Failed
    }

    /// `[killswitch] CONTAINED: AKIA... (IAM user alice) acct 123456789012`, ASCII, < 100 chars.
    pub fn subject(&self) -> String {
        let mut s = format!(
            "[killswitch] {}: {} ({})",
            self.status.headline(),
            self.access_key_id,
            self.principal
        );
        if let Some(acct) = &self.account {
            let _ = write!(s, " acct {acct}");
        }
        sanitize_subject(&s)
    }

    /// The SNS message: what an on-call engineer reads at 3 a.m.
    pub fn message(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "{}", self.status.headline());
        let _ = writeln!(m, "{}\n", self.summary);
        let _ = writeln!(m, "Key:        {}", self.access_key_id);
        let _ = writeln!(m, "Principal:  {}", self.principal);
        let _ = writeln!(
            m,
            "Account:    {}",
            self.account.as_deref().unwrap_or("(from the key)")
        );
        let _ = writeln!(m, "Trigger:    {}", trigger_line(&self.trigger));
        let _ = writeln!(m, "Incident:   {}", self.incident_id);
        let _ = writeln!(m, "Started:    {}", ts(self.started_at));
        if self.dry_run {
            let _ = writeln!(m, "Mode:       DRY RUN (no IAM write was made)");
        }
        if !self.steps.is_empty() {
            let _ = writeln!(m, "\nActions:");
            for s in &self.steps {
                let _ = writeln!(
                    m,
                    "  - {:<20} {:<13} {}",
                    s.step.name(),
                    format!("{:?}", s.outcome),
                    s.detail
                );
            }
        }
        if let Some(v) = &self.verification {
            let _ = writeln!(
                m,
                "\nVerification: {}{}",
                if v.holds {
                    "containment holds"
                } else {
                    "CONTAINMENT DOES NOT HOLD"
                },
                if v.contested {
                    " (CONTESTED: it was undone and re-applied)"
                } else {
                    ""
                }
            );
            for c in &v.checks {
                let _ = writeln!(m, "  - {} at {}: {}", c.phase, ts(c.at), c.detail);
            }
        }
        if let Investigation::Ran(a) = &self.investigation {
            attacker_text(&mut m, a);
        }
        let _ = writeln!(m, "\nActivity of this key (CloudTrail management events):");
        match &self.investigation {
            Investigation::NotRun { reason } => {
                let _ = writeln!(m, "  not searched: {reason}");
            }
            Investigation::Ran(a) => activity_text(&mut m, a),
        }
        if !self.next_steps.is_empty() {
            let _ = writeln!(m, "\nStill for a human:");
            for n in &self.next_steps {
                let _ = writeln!(m, "  - {n}");
            }
        }
        if !self.undo.is_empty() {
            let _ = writeln!(
                m,
                "\nTo undo (only once the key's owner has rotated and you are sure):"
            );
            for u in &self.undo {
                let _ = writeln!(m, "  {u}");
            }
        }
        if m.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
            m.push_str("\n[truncated: see the function's JSON report in its logs]\n");
        }
        m
    }
}

fn activity_text(m: &mut String, a: &Activity) {
    if let (Some(s), Some(e)) = (a.window_start, a.window_end) {
        let _ = writeln!(m, "  window {} .. {}", ts(s), ts(e));
    }
    let _ = writeln!(m, "  Regions: {}", a.region_source);
    let mut quiet = Vec::new();
    for r in &a.regions {
        let state = match &r.coverage {
            RegionCoverage::Complete if r.events == 0 => {
                quiet.push(r.region.as_str());
                continue;
            }
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
        };
        let _ = writeln!(
            m,
            "  {:<15} {:>5} events ({} writes, {} denied)  {}",
            r.region, r.events, r.writes, r.denied, state
        );
    }
    if !quiet.is_empty() {
        let _ = writeln!(m, "  no events, search complete: {}", quiet.join(", "));
    }
    if a.total_events == 0 {
        let _ = writeln!(
            m,
            "  {}",
            if a.complete() {
                "no events found in the searched Regions (Event history can lag a few minutes)"
            } else {
                "no events found in what could be read: the search was INCOMPLETE, do not read this as no activity"
            }
        );
        return;
    }
    let _ = writeln!(
        m,
        "  {} events, {} writes, first {} last {}",
        a.total_events,
        a.writes,
        a.first_seen.map(ts).unwrap_or_default(),
        a.last_seen.map(ts).unwrap_or_default()
    );
    top(m, "calls", &a.by_event, 15);
    top(m, "denied", &a.denied, 10);
    top(m, "source IPs", &a.source_ips, 10);
    top(m, "user agents", &a.user_agents, 5);
}

/// The prioritised "what the attacker did": pivots and persistence first.
fn attacker_text(m: &mut String, a: &Activity) {
    if a.pivots.is_empty() && a.notable.is_empty() {
        return;
    }
    let _ = writeln!(m, "\nWhat the attacker did (most urgent first):");
    if !a.pivots.is_empty() {
        let _ = writeln!(m, "  Credentials it minted ({}):", a.pivots.len());
        for p in &a.pivots {
            let who = p
                .pivot
                .principal
                .as_deref()
                .unwrap_or("the leaked key's own user");
            let state = match &p.containment {
                Some(c) => format!("{}: {}", c.status.headline(), c.summary),
                None if p.pivot.kind == crate::analysis::PivotKind::UserSession => {
                    "covered by the user's KillSwitchDenyAll".to_string()
                }
                None => format!("NOT CONTAINED: contain with {}", p.contain_with),
            };
            let _ = writeln!(
                m,
                "    - {} {} {} -> {} ({who}) : {state}",
                ts(p.pivot.time),
                p.pivot.region,
                p.pivot.via,
                p.pivot.access_key_id
            );
            if let Some(act) = &p.activity {
                let _ = writeln!(
                    m,
                    "      it made {} calls; flagged: {}",
                    act.events,
                    act.notable.join(", ")
                );
            }
        }
    }
    for cat in [
        Category::Persistence,
        Category::DefenceEvasion,
        Category::CredentialMinting,
        Category::Impact,
    ] {
        let Some(list) = a.notable.get(&cat) else {
            continue;
        };
        let total = a.notable_counts.get(&cat).copied().unwrap_or(list.len());
        let _ = writeln!(m, "  {} ({total}):", cat.title());
        for n in list.iter().take(10) {
            let outcome = n
                .error_code
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            let _ = writeln!(
                m,
                "    - {} {} {}:{} {}{outcome}",
                ts(n.time),
                n.region,
                short_source(&n.event_source),
                n.event_name,
                n.details
            );
        }
        if total > 10 {
            let _ = writeln!(m, "    ... {} more in the JSON report", total - 10);
        }
    }
}

fn top(m: &mut String, title: &str, map: &BTreeMap<String, usize>, n: usize) {
    if map.is_empty() {
        return;
    }
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let _ = writeln!(m, "  {title}:");
    for (k, c) in v.iter().take(n) {
        let _ = writeln!(m, "    {c:>5}  {k}");
    }
    if v.len() > n {
        let _ = writeln!(m, "    ... and {} more", v.len() - n);
    }
}

fn trigger_line(t: &serde_json::Value) -> String {
    let get = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or("");
    match get("kind") {
        "guard_duty" => format!(
            "GuardDuty {} (finding {}, region {}, remote IP {})",
            get("finding_type"),
            get("finding_id"),
            get("region"),
            get("remote_ip")
        ),
        "health" => format!(
            "AWS Health {} ({})",
            get("event_type_code"),
            get("event_arn")
        ),
        "manual" => format!(
            "manual request {} by {}: {}",
            get("request_id"),
            get("requested_by"),
            get("reason")
        ),
        "pivot" => format!(
            "minted by leaked key {} via {}",
            get("parent_key"),
            get("via")
        ),
        "guard_duty_sample" => format!(
            "GuardDuty SAMPLE {} ({})",
            get("finding_type"),
            get("finding_id")
        ),
        other => other.to_string(),
    }
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Printable ASCII only, no newlines, under 100 characters.
pub fn sanitize_subject(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    if out.len() > MAX_SUBJECT {
        out.truncate(MAX_SUBJECT - 3);
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_printable_ascii_under_100() {
        let s = sanitize_subject(&format!(
            "[killswitch] CONTAINED: {}\n\u{e9}",
            "x".repeat(200)
        ));
        assert!(s.len() < 100);
        assert!(s.chars().all(|c| (' '..='~').contains(&c)));
        assert!(s.ends_with("..."));
        assert_eq!(sanitize_subject("ok\ttab"), "ok?tab");
    }

    #[test]
    fn activity_counts_bounded_distinct_values() {
        let mut a = Activity::default();
        for i in 0..(MAX_DISTINCT + 50) {
            a.add(&ApiCall {
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
            });
        }
        assert_eq!(a.total_events, MAX_DISTINCT + 50);
        assert_eq!(a.source_ips.len(), MAX_DISTINCT + 1);
        assert_eq!(a.source_ips.get("(other)"), Some(&50));
        assert_eq!(a.denied.get("ListUsers"), Some(&(MAX_DISTINCT + 50)));
        assert_eq!(a.by_event.get("iam:ListUsers"), Some(&(MAX_DISTINCT + 50)));
    }
}
