//! What happened, as data (the JSON report). Every line a person reads of it is built in
//! [`words`]; the SNS notice (`notice`) and the chat card ([`chat`]) lay those lines out. Pure.

mod activity;
pub mod chat;
mod keep;
mod notice;
pub mod pending;
pub mod words;

pub use activity::MAX_EVENT_IDS;
pub use open::{OpenItem, OpenKind, UNCOVERED_PREFIX};
pub use words::open;
pub use words::{defang, inert, quoted, sanitize_subject, ts};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::analysis::{Category, Notable, Pivot};
use crate::incident::{Advisory, Incident, SampleFinding};
pub use crate::vocab::{Outcome, Status, Step};

/// SNS subjects must be printable ASCII and under 100 characters.
pub const MAX_SUBJECT: usize = 99;
/// SNS messages are at most 256 KiB; stay well below to leave room for attributes.
pub const MAX_MESSAGE_BYTES: usize = 200 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub step: Step,
    pub outcome: Outcome,
    pub detail: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub phase: String,
    pub at: DateTime<Utc>,
    /// `None` when the key is not ours to check (ASIA keys).
    pub key_inactive: Option<bool>,
    pub policy_in_place: Option<bool>,
    pub holds: bool,
    pub detail: String,
    /// Read one propagation window after the last write: only then does "holds" mean IAM
    /// enforces it, not just shows it.
    #[serde(default)]
    pub settled: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub checks: Vec<Check>,
    pub contested: bool,
    pub reapplied: bool,
    pub holds: bool,
    /// `holds` comes from a read one propagation window after the last write.
    #[serde(default)]
    pub settled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// What a pivot key did, when there was time to look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PivotActivity {
    pub regions: Vec<RegionActivity>,
    pub events: usize,
    pub notable: Vec<String>,
}

/// The containment of a pivot, when `KILLSWITCH_FOLLOW_PIVOTS` is on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PivotContainment {
    pub status: Status,
    pub summary: String,
    pub steps: Vec<StepResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PivotReport {
    #[serde(flatten)]
    pub pivot: Pivot,
    /// A manual request that contains it (`killswitch respond` or `aws lambda invoke`).
    pub contain_with: serde_json::Value,
    pub activity: Option<PivotActivity>,
    pub containment: Option<PivotContainment>,
}

/// What the key did, aggregated as events stream in (memory bounded by distinct values).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// Flagged calls per category: at most `MAX_NOTABLE_PER_CATEGORY` each, the most severe
    /// kept, most severe first.
    pub notable: BTreeMap<Category, Vec<Notable>>,
    /// How many calls each category had, including those not listed.
    pub notable_counts: BTreeMap<Category, usize>,
    /// Credentials the attacker minted and access it opened, in the order read (newest first
    /// per Region).
    pub pivots: Vec<PivotReport>,
    /// Sessions of the leaked key's own user (covered by its deny), listed or not.
    #[serde(default)]
    pub covered_pivots: usize,
    /// Pivots beyond `MAX_PIVOTS` (a flood): counted, not listed.
    #[serde(default)]
    pub pivots_not_listed: usize,
    /// CloudTrail event IDs read (at most `MAX_EVENT_IDS`, only events at or after
    /// `remember_after`), kept in the incident record for the sweep, not in the report.
    #[serde(skip)]
    pub event_ids: Vec<String>,
    #[serde(skip)]
    pub remember_after: Option<DateTime<Utc>>,
    /// What `pivots` holds already (`Pivot::identity`), for constant-time de-duplication.
    #[serde(skip)]
    pub pivot_ids: std::collections::HashSet<String>,
    /// Calls the key made once it was contained.
    #[serde(default)]
    pub after_containment: AfterContainment,
    /// Events skipped because an earlier pass already reported them (the sweep).
    #[serde(default)]
    pub already_reported: usize,
    /// Every distinct successful call that leaves a door open (`open::door_kind`), before any
    /// list's cap: STILL OPEN is built from these, so a flood of one kind hides no other.
    #[serde(skip)]
    pub doors: Vec<Notable>,
    /// Doors beyond what is kept of their kind (or in all): counted, not kept.
    #[serde(skip)]
    pub doors_not_kept: usize,
    /// What `doors` holds, for constant-time de-duplication, and how many of each kind.
    #[serde(skip)]
    pub door_ids: std::collections::HashSet<String>,
    #[serde(skip)]
    pub doors_per_kind: BTreeMap<OpenKind, usize>,
}

/// Distinct open doors kept per investigation (memory bound against an absurd flood).
pub const MAX_DOORS: usize = 1000;
/// Distinct doors kept of one kind: a flood of one kind (a thousand CreateBucket) never evicts a
/// door of another (one StopLogging).
pub const DOORS_PER_KIND: usize = 60;

/// What the key did after containment: the attacker still trying, or at least still holding it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AfterContainment {
    /// When containment was applied; `None` when not known (nothing counted).
    pub since: Option<DateTime<Utc>>,
    pub calls: usize,
    /// Refused calls among them (AccessDenied and the like).
    pub denied: usize,
    pub last_at: Option<DateTime<Utc>>,
    pub last_ip: Option<String>,
    pub by_event: BTreeMap<String, usize>,
    /// Where those calls were made (at most 20 Regions).
    #[serde(default)]
    pub regions: std::collections::BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Investigation {
    NotRun { reason: String },
    Ran(Box<Activity>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// No topic to send to (`--no-notify`, or a dry run without one): the command line prints it.
    NotPublished {
        subject: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// What containment of the key does not close, most urgent first, with commands.
    #[serde(default)]
    pub open: Vec<OpenItem>,
    pub next_steps: Vec<String>,
    pub undo: Vec<String>,
    pub notification: Notification,
    /// The chat card's delivery, when a chat topic is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<Notification>,
    /// Where the follow-through (delayed re-check, CloudTrail, full report) runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_through: Option<String>,
    /// Who asked for this response on the command line (`sts:GetCallerIdentity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// When the second CloudTrail search (the sweep) runs, and how it was scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSchedule>,
    /// Set on the sweep's own report: what it found that the first report could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_result: Option<SweepResult>,
    /// A sweep this process runs itself (the command line without a queue).
    #[serde(skip)]
    pub pending_sweep: Option<Box<pending::Sweep>>,
}

/// The sweep promised by the first report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepSchedule {
    pub due_at: DateTime<Utc>,
    /// `true` when it is queued or this process will run it.
    pub scheduled: bool,
    pub how: String,
}

/// What the sweep found: only what the first report could not show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub first_report_at: DateTime<Utc>,
    pub searched_from: DateTime<Utc>,
    pub searched_to: DateTime<Utc>,
    pub new_events: usize,
    pub already_reported: usize,
    pub new_pivots: usize,
    /// New pivots not contained (listed with what contains them).
    #[serde(default)]
    pub uncontained_pivots: usize,
    /// Every Region read to the end: the search is closed.
    pub closed: bool,
    /// The containment read back at sweep time.
    pub containment: String,
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
            open: Vec::new(),
            next_steps: Vec::new(),
            undo: Vec::new(),
            notification: Notification::Pending,
            chat: None,
            follow_through: None,
            operator: None,
            sweep: None,
            sweep_result: None,
            pending_sweep: None,
        }
    }

    /// Refused: nothing killswitch could change; the steps are the human's.
    pub fn advisory(advisory: &Advisory, now: DateTime<Utc>) -> Self {
        let mut report = Self::sample(
            &SampleFinding {
                finding_id: advisory.id.clone(),
                finding_type: advisory.event_type_code.clone(),
                account: advisory.account.clone(),
            },
            now,
        );
        report.incident_id = format!("advisory:{}", advisory.id);
        report.status = Status::Refused;
        report.summary = format!("Not contained: {}. A human must decide.", advisory.summary);
        report.trigger = serde_json::json!({"kind": "health_advisory", "event_arn": advisory.id, "event_type_code": advisory.event_type_code});
        report.access_key_id = "no access key".into();
        report.principal = "console sign-in (the user is in the AWS Health event)".into();
        report.investigation = Investigation::NotRun {
            reason: "no access key to search CloudTrail for".into(),
        };
        report.next_steps = vec![advisory.steps.clone()];
        report
    }

    pub fn sample(sample: &SampleFinding, now: DateTime<Utc>) -> Self {
        Self {
            incident_id: format!("guardduty-sample:{}", sample.finding_id),
            status: Status::Sample,
            summary: words::summary::SAMPLE.into(),
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
            open: Vec::new(),
            next_steps: vec![words::next_steps::SAMPLE.into()],
            undo: Vec::new(),
            notification: Notification::Pending,
            chat: None,
            follow_through: None,
            operator: None,
            sweep: None,
            sweep_result: None,
            pending_sweep: None,
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
}
