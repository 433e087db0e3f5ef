//! What a notice's subject and the chat card's title say, as parts: each medium fits them to
//! its own limits (an SNS subject's 99 printable ASCII characters, a card title's 250 of
//! Unicode), so both say the same. Pure.

use super::summary::final_what;
use crate::report::{Report, Status};

/// Which notice: the subject, the card and the wording follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Seconds after containment, before the investigation.
    Short,
    /// The full report (and the sweep's final report).
    Full,
    /// A re-emitted finding whose count grew.
    StillTrying { was: u64, now: u64 },
}

/// A GuardDuty sample's subject, before the finding type.
pub const SAMPLE_HEAD: &str = "[killswitch] GuardDuty SAMPLE, ignored: ";

/// What a subject says, before it is fitted: what happened and the key are never cut; what
/// gives way is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heading<'a> {
    /// Said whole (a FINAL report, a STILL TRYING), cut only at the end.
    Whole(String),
    /// [`SAMPLE_HEAD`], the finding type (it gives way), the account (`acct` with its space).
    Sample { finding: &'a str, acct: String },
    /// The short notice: `fixed`, then the principal (it gives way).
    Short { fixed: String, principal: &'a str },
    /// The full report: `[killswitch] {headline}[ - {open}]: {key}`, the principal (it gives
    /// way: its session part first), then the account, which may go too unless it is the point.
    Full {
        headline: &'static str,
        /// What is still open, by kind, when anything is.
        open: Option<String>,
        key: &'a str,
        principal: &'a str,
        acct: String,
        account_is_the_point: bool,
    },
}

impl<'a> Heading<'a> {
    /// The subject of the notice `form` sends for `report`.
    pub fn of(report: &'a Report, form: Form) -> Self {
        let key = &report.access_key_id;
        let headline = if looked_forged(report) {
            FORGED_HEADLINE
        } else {
            report.status.headline()
        };
        let acct = report
            .account
            .as_deref()
            .map(|a| format!(" acct {a}"))
            .unwrap_or_default();
        match form {
            Form::StillTrying { was, now } => Heading::Whole(format!(
                "[killswitch] STILL TRYING (count {was} -> {now}), still contained: {key}{acct}"
            )),
            Form::Short => Heading::Short {
                fixed: format!("[killswitch] {headline} (details follow): {key}"),
                principal: &report.principal,
            },
            Form::Full => {
                if let Some(sw) = &report.sweep_result {
                    return Heading::Whole(format!(
                        "[killswitch] FINAL ({}): {key} {headline}",
                        final_what(sw)
                    ));
                }
                if report.status == Status::Sample {
                    let finding = report
                        .trigger
                        .get("finding_type")
                        .and_then(|v| v.as_str())
                        .unwrap_or("finding");
                    return Heading::Sample { finding, acct };
                }
                Heading::Full {
                    headline,
                    open: (!report.open.is_empty()).then(|| super::open::summary(&report.open)),
                    key,
                    principal: &report.principal,
                    acct,
                    account_is_the_point: report.status == Status::Rejected
                        && headline != FORGED_HEADLINE,
                }
            }
        }
    }
}

/// The headline of a payload the finding's source does not hold as sent.
pub const FORGED_HEADLINE: &str = "REJECTED (payload looked forged)";

/// Rejected because GuardDuty does not hold the finding as the payload tells it.
fn looked_forged(report: &Report) -> bool {
    report.status == Status::Rejected
        && report.steps.iter().any(|s| {
            s.step == crate::vocab::Step::CheckFinding
                && s.outcome == crate::report::Outcome::Skipped
        })
}

/// The principal without its session part: `role R` of `role R (session s)`.
pub fn without_session(principal: &str) -> &str {
    principal.split(" (session ").next().unwrap_or("")
}
