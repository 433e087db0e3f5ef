//! The drill record: a scorecard for the terminal and a Markdown record.

use chrono::Utc;

use super::ScenarioResult;
use crate::aws::sandbox::RaceSummary;

/// The scorecard printed at the end of a drill.
pub fn scorecard(results: &[ScenarioResult]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | result | status | containment | report | checks |\n|---|---|---|---|---|---|\n");
    for r in results {
        let failed: Vec<_> = r
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} ({})", c.check, c.detail))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} ms | {}/{}{} |\n",
            r.scenario,
            if r.passed { "PASS" } else { "FAIL" },
            r.status
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "-".into()),
            r.time_to_containment_ms
                .map(|t| format!("{t} ms"))
                .unwrap_or_else(|| "-".into()),
            r.time_to_report_ms,
            r.checks.iter().filter(|c| c.passed).count(),
            r.checks.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" FAILED: {}", failed.join("; "))
            },
        ));
    }
    for r in results {
        if let Some(race) = &r.racer {
            out.push_str(&format!(
                "\n{}: {}",
                r.scenario,
                race_line(race, r.lag_seconds)
            ));
        }
    }
    let passed = results.iter().filter(|r| r.passed).count();
    out.push_str(&format!(
        "\n{passed} passed, {} failed\n",
        results.len() - passed
    ));
    out
}

/// The Markdown drill record: scorecard plus every check.
pub fn markdown(results: &[ScenarioResult]) -> String {
    let mut out = format!(
        "# killswitch drill, {}\n\n",
        Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    out.push_str(&scorecard(results));
    for r in results {
        out.push_str(&format!(
            "\n## {} — {}\n\n{}\n\n",
            r.scenario,
            if r.passed { "PASS" } else { "FAIL" },
            r.description
        ));
        for c in &r.checks {
            out.push_str(&format!(
                "- [{}] {}: {}\n",
                if c.passed { "x" } else { " " },
                c.check,
                c.detail
            ));
        }
        if let Some(race) = &r.racer {
            out.push_str(&format!(
                "- racing holder: {}\n",
                race_line(race, r.lag_seconds)
            ));
            for h in &race.held {
                out.push_str(&format!(
                    "  - {} at the full report: {}\n",
                    h.credential,
                    if h.works { "WORKS" } else { h.answer.as_str() }
                ));
            }
        }
        if let Some(events) = &r.pivot_events {
            out.push_str(&format!(
                "- pivot events: {} forwarded as EventBridge would, {} signed by a principal under containment\n",
                events.forwarded,
                events.answered.len()
            ));
            for a in &events.answered {
                out.push_str(&format!(
                    "  - {} by {} delivered at {:.1} s, answered at {:.1} s: {}{}\n",
                    a.event_name,
                    a.signed_by,
                    a.delivered_ms as f64 / 1000.0,
                    a.answered_ms as f64 / 1000.0,
                    a.outcome,
                    if a.contained.is_empty() {
                        String::new()
                    } else {
                        format!("; contained {}", a.contained.join(", "))
                    }
                ));
            }
        }
        out.push_str(&format!("- cleaned up: {}\n", r.cleanup.join(", ")));
    }
    out
}

/// What the racing holder did and kept, in one line.
fn race_line(race: &RaceSummary, lag_seconds: Option<u64>) -> String {
    let secs =
        |ms: Option<u64>| ms.map_or("never".into(), |t| format!("{:.1} s", t as f64 / 1000.0));
    let still = race.still_working();
    format!(
        "holder's last accepted call {} after delivery (IAM lag {} s), first undo {}, {} call(s) accepted, {} refused; {} of {} credential(s) still worked when the full report went out{}{}",
        secs(race.last_ok_ms),
        lag_seconds.unwrap_or(0),
        secs(race.first_revert_ms),
        race.calls_ok,
        race.calls_refused,
        still.len(),
        race.held.len(),
        if still.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                still
                    .iter()
                    .map(|h| h.credential.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
        if race.backdoor_roles.is_empty() && race.login_profiles.is_empty() {
            String::new()
        } else {
            format!(
                "; it also created {} role(s) trusting an outside account and set {} console password(s)",
                race.backdoor_roles.len(),
                race.login_profiles.len()
            )
        },
    )
}
