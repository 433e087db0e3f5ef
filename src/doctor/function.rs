//! The function as Lambda runs it: its state, its live settings (dry run, protected principals)
//! and its reserved concurrency.

use std::collections::BTreeSet;

use super::{Check, Function, Options, Place, Preflight, unreadable};
use crate::config::Config;

/// The template's `ReservedConcurrentExecutions`, for the fix.
const TEMPLATE_CONCURRENCY: i32 = 25;

/// The live configuration, and the `function` check. `None`: nothing else can be checked.
pub(super) async fn read<P: Preflight>(
    p: &P,
    name: &str,
    who: &str,
    checks: &mut Vec<Check>,
) -> Option<Function> {
    match p.function(name).await {
        Ok(Some(f)) => {
            checks.push(state(&f));
            Some(f)
        }
        Ok(None) => {
            checks.push(Check::fail(
                "function",
                format!("no function {name} in this Region"),
                "name it with --function-name (the stack's FunctionName output) and --region (the stack's Region)",
            ));
            None
        }
        Err(e) => {
            checks.push(unreadable("function", &e, who));
            None
        }
    }
}

fn state(f: &Function) -> Check {
    let state = f.state.as_deref().unwrap_or("Active");
    let update = f.last_update.as_deref().unwrap_or("Successful");
    let detail = format!("{}: {state}, last update {update}", f.arn);
    if state == "Active" && update != "Failed" {
        return Check::ok("function", detail);
    }
    let why = f
        .last_update_reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Check::fail(
        "function",
        format!("{detail}{why}: Lambda may not run it"),
        "see the function's last update in the Lambda console; redeploy the stack",
    )
}

/// The live `KILLSWITCH_*` settings, parsed as the function parses them at start-up, and the
/// checks on them. `None` when they do not parse (the function would not start).
pub(super) fn settings(
    f: &Function,
    at: Place<'_>,
    opts: &Options,
    checks: &mut Vec<Check>,
) -> Option<Config> {
    if let Some(why) = &f.environment_error {
        checks.push(Check::fail(
            "environment",
            format!("Lambda would not decrypt the environment for you: {why}"),
            format!(
                "grant kms:Decrypt on {} to the identity running doctor",
                f.kms_key_arn.as_deref().unwrap_or("the function's key")
            ),
        ));
        return None;
    }
    // Lambda sets AWS_REGION itself: the settings that depend on it see the function's Region.
    let lookup = |k: &str| match k {
        "AWS_REGION" => Some(at.region.to_owned()),
        _ => f.environment.get(k).cloned(),
    };
    match Config::from_lookup(lookup) {
        Ok(config) => {
            checks.push(Check::ok(
                "environment",
                "the live KILLSWITCH_* settings parse as the function parses them",
            ));
            checks.push(dry_run(&config));
            checks.push(protected(&config, opts.expect_protected.as_deref()));
            Some(config)
        }
        Err(e) => {
            checks.push(Check::fail(
                "environment",
                format!("the function would refuse to start: {}", e.chain()),
                "correct the stack parameter behind it and redeploy (docs/configuration.md)",
            ));
            None
        }
    }
}

fn dry_run(config: &Config) -> Check {
    if !config.dry_run {
        return Check::ok("dry_run", "KILLSWITCH_DRY_RUN is off: responses contain");
    }
    Check::fail(
        "dry_run",
        "KILLSWITCH_DRY_RUN is true in the live environment: every response only reports, nothing is contained",
        "redeploy with DryRun=false (sam deploy --parameter-overrides DryRun=false); if the stack already says false, the function was changed by hand: find the UpdateFunctionConfiguration call in CloudTrail",
    )
}

fn protected(config: &Config, expected: Option<&[String]>) -> Check {
    let live: BTreeSet<&str> = config.protected.iter().map(String::as_str).collect();
    let listed = || live.iter().copied().collect::<Vec<_>>().join(", ");
    let Some(expected) = expected else {
        if live.is_empty() {
            return Check::ok(
                "protected_principals",
                "none: any principal can be contained",
            );
        }
        return Check::warn(
            "protected_principals",
            format!(
                "never contained (KILLSWITCH_PROTECTED_PRINCIPALS): {}",
                listed()
            ),
            format!(
                "confirm each is meant to be: --expect-protected {}",
                live.iter().copied().collect::<Vec<_>>().join(",")
            ),
        );
    };
    let expected: BTreeSet<&str> = expected.iter().map(|s| s.trim()).collect();
    let extra: Vec<&str> = live.difference(&expected).copied().collect();
    let missing: Vec<&str> = expected.difference(&live).copied().collect();
    if !extra.is_empty() {
        return Check::fail(
            "protected_principals",
            format!(
                "protected but not expected: {} (live list: {})",
                extra.join(", "),
                listed()
            ),
            "remove them from the stack's ProtectedPrincipals and redeploy; if the stack does not list them, the function was changed by hand: find the UpdateFunctionConfiguration call in CloudTrail",
        );
    }
    if !missing.is_empty() {
        return Check::warn(
            "protected_principals",
            format!("expected but not protected: {}", missing.join(", ")),
            "add them to the stack's ProtectedPrincipals and redeploy, or drop them from --expect-protected",
        );
    }
    Check::ok(
        "protected_principals",
        if live.is_empty() {
            "none, as expected".to_owned()
        } else {
            format!("as expected: {}", listed())
        },
    )
}

pub(super) async fn concurrency<P: Preflight>(p: &P, name: &str, who: &str) -> Check {
    let reserve = format!(
        "aws lambda put-function-concurrency --function-name {name} --reserved-concurrent-executions {TEMPLATE_CONCURRENCY} (the template's value), or redeploy the stack"
    );
    match p.reserved_concurrency(name).await {
        Ok(Some(0)) => Check::fail(
            "concurrency",
            "reserved concurrency is 0: Lambda throttles every invocation, so findings wait and are dropped",
            reserve,
        ),
        Ok(Some(n)) => Check::ok("concurrency", format!("{n} reserved")),
        Ok(None) => Check::warn(
            "concurrency",
            "none reserved: other functions' bursts can take the account's concurrency from containment",
            reserve,
        ),
        Err(e) => unreadable("concurrency", &e, who),
    }
}
