//! `killswitch doctor`: the flags, the run with the operator's credentials, one line per check
//! (text) or the report (JSON), and the exit code.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::setup::{AwsArgs, cli_sdk};
use super::{Output, Show};
use crate::aws::DoctorClients;
use crate::doctor::{self, Check, Options, Report, Verdict};
use crate::error::Error;

/// What `doctor` checks.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorArgs {
    /// The function: its name or ARN (the stack's FunctionName output).
    #[arg(long, value_name = "NAME|ARN")]
    pub function_name: String,
    /// A rule that must send events to the function, besides those already targeting it
    /// (repeat for several): one whose target was changed no longer shows up on its own.
    #[arg(long = "rule", value_name = "NAME")]
    pub rules: Vec<String>,
    /// The principals you mean to protect (comma-separated user/role names or ARNs; "" for
    /// none): any other in the live KILLSWITCH_PROTECTED_PRINCIPALS fails the check.
    #[arg(long, value_name = "LIST")]
    pub expect_protected: Option<String>,
    /// Warnings fail the run too.
    #[arg(long)]
    pub strict: bool,
}

impl DoctorArgs {
    fn options(&self) -> Options {
        Options {
            function: self.function_name.clone(),
            rules: self.rules.clone(),
            expect_protected: self.expect_protected.as_ref().map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        }
    }
}

/// Exit code of a run with a failed check (or, with `--strict`, a warning).
pub const EXIT_CHECK_FAILED: u8 = 1;

/// Runs the checks with the operator's credentials and prints them.
pub async fn run(aws: &AwsArgs, args: &DoctorArgs, show: Show) -> Result<ExitCode, Error> {
    if args.function_name.trim().is_empty() {
        return Err(Error::Usage("--function-name is empty".into()));
    }
    let cloud = DoctorClients::new(&cli_sdk(aws).await?);
    let report = doctor::run(&cloud, &args.options()).await;
    match show.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Output::Text => print!(
            "{}",
            super::wrap::fit(&text(&report, show.color), super::wrap::width())
        ),
    }
    Ok(exit_code(&report, args.strict))
}

pub fn exit_code(report: &Report, strict: bool) -> ExitCode {
    if failed(report, strict) {
        ExitCode::from(EXIT_CHECK_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// A check failed, or (`--strict`) warned.
fn failed(report: &Report, strict: bool) -> bool {
    match report.worst() {
        Verdict::Ok => false,
        Verdict::Warn => strict,
        Verdict::Fail => true,
    }
}

/// One line per check (`OK`, `WARN`, `FAIL`, the check, what was found, the fix), then a total.
pub fn text(report: &Report, color: bool) -> String {
    let mut out = format!(
        "Preflight of {}, read as {}\n",
        super::text::on_terminal(&report.function),
        super::text::on_terminal(&report.caller)
    );
    for check in &report.checks {
        let _ = writeln!(out, "{}", line(check, color));
    }
    let count = |v: Verdict| report.checks.iter().filter(|c| c.verdict == v).count();
    let (failed, warned) = (count(Verdict::Fail), count(Verdict::Warn));
    let _ = writeln!(
        out,
        "{}",
        match (failed, warned) {
            (0, 0) => format!("All {} checks passed.", report.checks.len()),
            (0, w) => format!("No check failed; {w} warning(s)."),
            (f, w) =>
                format!("{f} check(s) failed, {w} warning(s): killswitch may not contain a leak."),
        }
    );
    out
}

fn line(check: &Check, color: bool) -> String {
    let (word, code) = match check.verdict {
        Verdict::Ok => ("OK  ", "32"),
        Verdict::Warn => ("WARN", "33"),
        Verdict::Fail => ("FAIL", "1;31"),
    };
    let word = if color {
        format!("\u{1b}[{code}m{word}\u{1b}[0m")
    } else {
        word.to_owned()
    };
    let what = match &check.subject {
        Some(s) => format!("{} {}", check.name, printable(s)),
        None => check.name.to_owned(),
    };
    let detail = printable(&check.detail);
    match &check.fix {
        Some(fix) => format!("{word} {what}: {detail}. Fix: {}", printable(fix)),
        None => format!("{word} {what}: {detail}"),
    }
}

/// What AWS returned (names, error messages), without the characters that could rewrite a
/// terminal's screen; unlike a recorded value it is not cut short (a denied-permission list is long).
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !c.is_control()
                && !('\u{202a}'..='\u{202e}').contains(c)
                && !('\u{2066}'..='\u{2069}').contains(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(checks: Vec<Check>) -> Report {
        Report {
            function: "killswitch-fn".into(),
            caller: "arn:aws:sts::111122223333:assumed-role/SecOps/alice".into(),
            checks,
        }
    }

    #[test]
    fn one_line_per_check_with_its_fix_then_the_total() {
        let r = report(vec![
            Check::ok("concurrency", "25 reserved"),
            Check::fail("rule", "DISABLED", "aws events enable-rule --name r").of("r"),
            Check::warn("cloudtrail", "single-Region", "make it multi-Region"),
        ]);
        assert_eq!(
            text(&r, false),
            "Preflight of killswitch-fn, read as arn:aws:sts::111122223333:assumed-role/SecOps/alice\n\
             OK   concurrency: 25 reserved\n\
             FAIL rule r: DISABLED. Fix: aws events enable-rule --name r\n\
             WARN cloudtrail: single-Region. Fix: make it multi-Region\n\
             1 check(s) failed, 1 warning(s): killswitch may not contain a leak.\n"
        );
    }

    #[test]
    fn what_aws_returned_cannot_rewrite_the_screen() {
        let r = report(vec![Check::ok("rule", "a\u{1b}[2Jb\u{202e}c").of("x\ny")]);
        let shown = text(&r, false);
        assert!(shown.contains("OK   rule xy: a[2Jbc\n"), "{shown}");
        assert!(!shown.contains('\u{1b}') && !shown.contains('\u{202e}'));
    }

    #[test]
    fn a_failed_check_fails_the_run_and_a_warning_only_when_strict() {
        let warned = report(vec![Check::warn("concurrency", "none reserved", "reserve")]);
        assert!(!failed(&warned, false));
        assert!(failed(&warned, true));
        let broken = report(vec![Check::fail("dry_run", "on", "off")]);
        assert!(failed(&broken, false));
        assert!(!failed(&report(vec![Check::ok("dry_run", "off")]), true));
    }

    #[test]
    fn the_report_is_json_a_script_can_read() {
        let r = report(vec![Check::fail("rule", "DISABLED", "enable it").of("r")]);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({
                "function": "killswitch-fn",
                "caller": "arn:aws:sts::111122223333:assumed-role/SecOps/alice",
                "checks": [{"name": "rule", "subject": "r", "status": "fail",
                    "detail": "DISABLED", "fix": "enable it"}]
            })
        );
    }
}
