//! Everything that can refuse an incident, and whose key it is. The reads go out in one
//! concurrent wave ([`read`]); the checks on their answers make no call ([`decide`]).

mod decide;
mod plans;
mod protected;
mod read;
pub mod root;

use chrono::{DateTime, Utc};
use tracing::warn;

use super::Step;
use crate::incident::{Incident, Trigger};
use crate::report::{Outcome, Report, Status};

pub use decide::decide;
pub use protected::protected_reason;
pub use read::{Reads, RoleBefore, UserBefore, read, read_user};

pub fn refuse(report: &mut Report, step: Step, reason: String, now: DateTime<Utc>) {
    warn!(reason = %reason, "refused");
    report.status = Status::Refused;
    report.summary = format!("Not contained: {reason}. A human must decide.");
    report.record(step, Outcome::Skipped, reason, now);
}

/// Input that names another account's key: an error for the caller, nothing changed.
pub fn reject(report: &mut Report, reason: String, now: DateTime<Utc>) {
    // The report says it; a warning would say it a third time on an operator's terminal.
    tracing::info!(reason = %reason, "rejected");
    report.status = Status::Rejected;
    report.summary = format!("Rejected: {reason}. Nothing was changed.");
    report.record(Step::CheckAccount, Outcome::Skipped, reason, now);
}

/// Regions the trigger or IAM point at, searched in any case.
pub fn region_hints(incident: &Incident, reads: &Reads) -> Vec<String> {
    let usage_region = match &reads.usage {
        Some(Ok(Some(u))) => u.region.clone(),
        _ => None,
    };
    usage_region
        .into_iter()
        .chain(match &incident.trigger {
            Trigger::GuardDuty { region, .. } => region.clone(),
            Trigger::Health { .. } | Trigger::Manual { .. } | Trigger::Pivot { .. } => None,
        })
        .collect()
}
