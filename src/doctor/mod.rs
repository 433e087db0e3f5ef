//! `killswitch doctor`: a read-only preflight of a deployed stack. Every check reads the live
//! state, not the template: one `UpdateFunctionConfiguration` (dry run on, a protected principal
//! added), `PutFunctionConcurrency` 0 or `DisableRule` switches killswitch off in one call, and
//! a template still says it is on.
//!
//! Checks are data (name, verdict, detail, fix), in the order a finding travels: who runs the
//! checks, the function and its live settings, the rules that deliver findings to it, the keys
//! and topic its notices need, GuardDuty and CloudTrail, the permissions it calls with, then each
//! member account as the member role. Generic over [`Preflight`] (its reads), so the checks run
//! against a fake in the unit tests.

mod account;
mod deployment;
#[cfg(test)]
mod fake;
mod function;
mod permissions;
mod port;
#[cfg(test)]
mod tests;

pub use permissions::{function_probes, member_probes};
pub use port::{
    Decided, Decision, Detector, Function, Key, ManagementEvents, Preflight, Probe, Rule,
    Subscription, Topic, Trail,
};

use serde::Serialize;

use crate::error::{AwsFailure, Error};
use crate::vocab::Arn;

/// What `doctor` itself calls, as whoever runs it (docs/doctor.md lists them for the operators'
/// role; none is ever granted to the function). All are reads or simulations.
pub const PERMISSIONS: &[&str] = &[
    "lambda:GetFunctionConfiguration",
    "lambda:GetFunctionConcurrency",
    "events:ListRuleNamesByTarget",
    "events:DescribeRule",
    "events:ListTargetsByRule",
    "sns:GetTopicAttributes",
    "sns:ListSubscriptionsByTopic",
    "kms:DescribeKey",
    "account:ListRegions",
    "guardduty:ListDetectors",
    "guardduty:GetDetector",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetEventSelectors",
    "iam:SimulatePrincipalPolicy",
    "sts:AssumeRole",
];

/// A check's outcome. Warnings are printed but do not fail the run unless `--strict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One line of the preflight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable, snake_case: what is checked (`dry_run`, `rule`, `guardduty`…).
    pub name: &'static str,
    /// Which one, when a check repeats (a rule's name, a key's ARN, an account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(rename = "status")]
    pub verdict: Verdict,
    pub detail: String,
    /// What to do about it (none when it is ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name,
            subject: None,
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            verdict: Verdict::Warn,
            fix: Some(fix.into()),
            ..Check::ok(name, detail)
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            verdict: Verdict::Fail,
            fix: Some(fix.into()),
            ..Check::ok(name, detail)
        }
    }

    pub fn of(self, subject: impl Into<String>) -> Self {
        Check {
            subject: Some(subject.into()),
            ..self
        }
    }
}

/// What `doctor` checks the live stack against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The function's name or ARN (the stack's `FunctionName` output).
    pub function: String,
    /// Rules that must deliver to the function, besides those that already target it.
    pub rules: Vec<String>,
    /// `--expect-protected`: the principals the operator means to protect; any other in the live
    /// `KILLSWITCH_PROTECTED_PRINCIPALS` fails.
    pub expect_protected: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The function as named on the command line.
    pub function: String,
    /// Who ran the checks (member accounts: see the `member_role` checks).
    pub caller: String,
    pub checks: Vec<Check>,
}

impl Report {
    /// The worst verdict (`Ok` for no checks).
    pub fn worst(&self) -> Verdict {
        self.checks
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(Verdict::Ok)
    }
}

/// Where the function lives, from its ARN: what the probes and fixes are built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place<'a> {
    pub partition: &'a str,
    pub account: &'a str,
    pub region: &'a str,
}

impl<'a> Place<'a> {
    pub fn of(function_arn: &'a str) -> Option<Self> {
        Arn::parse(function_arn).map(|a| Place {
            partition: a.partition,
            account: a.account,
            region: a.region,
        })
    }
}

/// Runs every check; the first two (who runs it, the function) stop the run when they fail,
/// since every other check reads what they found.
pub async fn run<P: Preflight>(p: &P, opts: &Options) -> Report {
    let mut report = Report {
        function: opts.function.clone(),
        caller: String::new(),
        checks: Vec::new(),
    };
    let checks = &mut report.checks;
    match p.caller().await {
        Ok(arn) => {
            checks.push(Check::ok(
                "identity",
                format!("doctor runs as {arn}; in member accounts, as their member role"),
            ));
            report.caller = arn;
        }
        Err(e) => {
            checks.push(unreadable("identity", &e, "you"));
            return report;
        }
    }
    let who = report.caller.as_str();
    let Some(f) = function::read(p, &opts.function, who, checks).await else {
        return report;
    };
    let Some(at) = Place::of(&f.arn) else {
        checks.push(Check::fail(
            "function",
            format!("Lambda answered with {:?}, not a function ARN", f.arn),
            "name the function by its ARN",
        ));
        return report;
    };
    let config = function::settings(&f, at, opts, checks);
    checks.push(function::concurrency(p, &opts.function, who).await);
    deployment::rules(p, &f, &opts.rules, who, checks).await;
    deployment::notices(p, &f, at, who, checks).await;
    checks.push(account::guardduty(p, at.account, who, false).await);
    checks.push(account::cloudtrail(p, at.region, who).await);
    if let Some(config) = &config {
        let probes = function_probes(config, at);
        checks.push(permissions::check(p, &f.role_arn, &probes, who, false).await);
        account::members(p, &f, config, at, who, checks).await;
    }
    report
}

/// A read that failed: the check fails, naming the permission when AWS refused it.
pub(crate) fn unreadable(name: &'static str, e: &Error, who: &str) -> Check {
    Check::fail(
        name,
        format!("cannot read it: {}", e.chain()),
        read_fix(e, who),
    )
}

/// What lets the read succeed next time.
pub(crate) fn read_fix(e: &Error, who: &str) -> String {
    match (e, e.failure()) {
        (Error::Aws { op, .. }, Some(AwsFailure::AccessDenied)) => {
            format!("grant {op} to {who} (docs/doctor.md lists what doctor needs)")
        }
        (Error::Aws { op, .. }, _) => format!("{op} failed: check the Region and retry"),
        _ => "check the Region and the credentials, then retry".to_owned(),
    }
}
