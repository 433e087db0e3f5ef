//! The drill record: a scorecard for the terminal and a Markdown record.

use chrono::Utc;

use super::ScenarioResult;

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
        out.push_str(&format!("- cleaned up: {}\n", r.cleanup.join(", ")));
    }
    out
}
