//! Every line a person reads of a report, built here from the report: the subject and the card
//! title ([`subject`]), the summary ([`summary`]), the next steps ([`next_steps`]), the undo
//! commands ([`undo`]), what is still open with the commands that close it ([`open`]), what the
//! key and the attacker did. The SNS notice (`notice`), the chat card (`chat`) and the terminal
//! (`cli::text`) lay these parts out for their medium; none composes a sentence of its own.
//! Pure.

mod activity;
mod attacker;
pub mod aws_quarantine;
pub mod next_steps;
pub mod open;
mod safe;
pub mod subject;
pub mod summary;
pub mod undo;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

pub use safe::{defang, inert, quoted, sanitize_subject, short_agent, ts};
pub use subject::{Form, Heading};

use super::{Investigation, Report, Status};
use crate::incident::{AccountId, Incident};
use crate::vocab::Plan;

/// Summary, next steps, undo commands and what is still open, from what happened.
pub fn finish(
    report: &mut Report,
    incident: &Incident,
    plan: Option<&Plan>,
    member: Option<&AccountId>,
) {
    let key = incident.key.to_string();
    if report.summary.is_empty() {
        report.summary = summary::of_status(report.status, &key);
    }
    if let Some(plan) = plan {
        report.undo = undo::for_plan(plan, &key);
    }
    if report.status == Status::DryRun {
        // Nothing was changed: no undo.
        report.undo.clear();
    }
    if !report.undo.is_empty() {
        report.undo.insert(0, undo::restore(&key));
    }
    let next = next_steps::after(report, incident, plan, member);
    report.open = open::items(report);
    report.next_steps = next;
}

/// What the lists of a notice must not repeat, and what follows the search.
pub(crate) struct Lists {
    /// Open items lead the notice: the lists below do not show them again.
    pub(crate) open_above: bool,
    /// `Some(Some(t))`: a second search runs at `t`; `Some(None)`: this is that search.
    pub(crate) second_search: Option<Option<DateTime<Utc>>>,
}

impl Lists {
    pub(crate) fn of(report: &Report) -> Self {
        Lists {
            open_above: !report.open.is_empty(),
            second_search: match (&report.sweep, &report.sweep_result) {
                (_, Some(_)) => Some(None),
                (Some(s), None) if s.scheduled => Some(Some(s.due_at)),
                _ => None,
            },
        }
    }
}

/// "What the attacker did" (when it did anything flagged) and "Activity of this key", as the
/// full notice lists them.
pub(crate) fn investigation(m: &mut String, investigation: &Investigation, lists: &Lists) {
    if let Investigation::Ran(a) = investigation {
        attacker::section(m, a, lists);
    }
    let _ = writeln!(m, "\nActivity of this key (CloudTrail management events):");
    match investigation {
        Investigation::NotRun { reason } => {
            let _ = writeln!(m, "  not searched: {reason}");
        }
        Investigation::Ran(a) => activity::section(m, a, lists),
    }
}
