//! What the sweep's searches and read-back come to: the FINAL notice's summary and result.

use chrono::Utc;

use super::Sweep;
use crate::incident::AccessKeyId;
use crate::investigation::{self, Window};
use crate::playbook::Step;
use crate::playbook::verify::Later;
use crate::report::{Investigation, Outcome, Report, Status, SweepResult, Verification, ts};

/// Adds what the carried keys and sessions did to the search's pivots. Returns whether every
/// one of their searches was read to the end.
pub(super) fn merge_carried(
    activity: &mut Investigation,
    carried: Vec<(AccessKeyId, Investigation)>,
) -> bool {
    let mut pivot_searches_complete = true;
    if let Investigation::Ran(a) = activity {
        for (key, found) in carried {
            let Investigation::Ran(sub) = found else {
                pivot_searches_complete = false;
                continue;
            };
            pivot_searches_complete &= sub.complete() && sub.pivot_searches_complete();
            for mut p in sub.pivots.into_iter().map(|p| p.pivot) {
                p.via = format!("{} (by pivot {key})", p.via);
                investigation::keep_pivot(a, p);
            }
        }
    }
    pivot_searches_complete
}

/// The status the read-back at the sweep leaves, and the FINAL notice's word on containment.
pub(super) fn settle(report: &mut Report, checked: Option<(Later, Verification)>) -> String {
    match checked {
        None => "not checked (nothing was applied, or a dry run)".to_string(),
        Some((Later::Holds, v)) => {
            report.verification = Some(v);
            if !report.status.is_contained() {
                report.status = Status::Contained;
            }
            "holds (read back at the sweep)".into()
        }
        Some((Later::Restored { by, reason }, _)) => {
            report.status = Status::Restored;
            format!("lifted by {by} with killswitch restore ({reason}): not re-applied")
        }
        Some((Later::Reapplied { holds }, v)) => {
            report.verification = Some(v);
            report.record(
                Step::Verify,
                Outcome::Done,
                "containment was undone before the sweep and has been re-applied",
                Utc::now(),
            );
            report.status = if holds {
                Status::Contested
            } else {
                Status::Failed
            };
            if holds {
                "was UNDONE before the sweep and has been re-applied".into()
            } else {
                "was UNDONE and could NOT be re-applied: act by hand now".into()
            }
        }
    }
}

/// What the sweep's own search found.
struct Counts {
    new_events: usize,
    already: usize,
    new_pivots: usize,
    uncontained: usize,
    searched_all: bool,
}

impl Counts {
    fn of(investigation: &Investigation) -> Self {
        let Investigation::Ran(a) = investigation else {
            return Self {
                new_events: 0,
                already: 0,
                new_pivots: 0,
                uncontained: 0,
                searched_all: false,
            };
        };
        let listed: Vec<_> = a
            .pivots
            .iter()
            .filter(|p| !p.pivot.kind.covered_by_user_deny())
            .collect();
        Self {
            new_events: a.total_events,
            already: a.already_reported,
            new_pivots: listed.len(),
            uncontained: listed
                .iter()
                .filter(|p| {
                    !p.containment
                        .as_ref()
                        .is_some_and(|c| c.status.is_contained())
                })
                .count(),
            searched_all: a.complete() && a.pivot_searches_complete(),
        }
    }
}

/// Writes the FINAL summary and the sweep's result into the report.
pub(super) fn close(
    report: &mut Report,
    s: &Sweep,
    window: Window<'_>,
    pivot_searches_complete: bool,
    containment: String,
) {
    let c = Counts::of(&report.investigation);
    let closed = c.searched_all && pivot_searches_complete && s.first_pass_gaps.is_empty();
    let mut summary = found(&c, &s.incident.key, window);
    if let Investigation::Ran(a) = &report.investigation
        && let Some(line) = a.after_containment.line(true)
    {
        summary.push(' ');
        summary.push_str(&line);
    }
    if closed {
        summary.push_str(" The search is now CLOSED: every Region, and every key it minted, was read to the end.");
    } else {
        let mut why = Vec::new();
        if !s.first_pass_gaps.is_empty() {
            why.push(format!(
                "the first search did not read {} to the end and the sweep re-reads only the last minutes",
                s.first_pass_gaps.join(", ")
            ));
        }
        if !c.searched_all || !pivot_searches_complete {
            why.push("some Regions or minted keys were not read to the end (see below)".into());
        }
        summary.push_str(&format!(
            " The search could NOT be closed: {}. Search by hand.",
            why.join("; ")
        ));
    }
    if report.status == Status::Failed {
        summary = format!("CONTAINMENT FAILED at the sweep. {summary}");
    }
    report.summary = summary;
    report.sweep_result = Some(SweepResult {
        first_report_at: s.first_report_at,
        searched_from: window.start,
        searched_to: window.end,
        new_events: c.new_events,
        already_reported: c.already,
        new_pivots: c.new_pivots,
        uncontained_pivots: c.uncontained,
        closed,
        containment,
    });
}

/// The FINAL summary's first sentence: what the sweep found that the first report could not.
fn found(c: &Counts, key: &AccessKeyId, window: Window<'_>) -> String {
    let Counts {
        new_events,
        already,
        new_pivots,
        uncontained,
        ..
    } = c;
    if *new_events == 0 && *new_pivots == 0 {
        format!(
            "FINAL for {key}: nothing new. CloudTrail delivered no event of this key between {} and {} beyond the {already} already reported.",
            ts(window.start),
            ts(window.end)
        )
    } else {
        format!(
            "FINAL for {key}: {new_events} event(s) the first report could not see, {new_pivots} new pivot(s) ({uncontained} NOT contained); read them below."
        )
    }
}
