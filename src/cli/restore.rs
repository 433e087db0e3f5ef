//! `killswitch restore` at a terminal: the assessment shown (refusals first, once), the
//! confirmation (the key ID typed out), the restore, and what it did with the next step. The
//! flow takes its confirmation and its two streams from the caller, so it runs under test.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

pub use super::wrap::{WIDTH, hanging, item};
use super::{EXIT_BAD_INPUT, EXIT_CONTAINMENT_FAILED, EXIT_KEY_NOT_FOUND, EXIT_NOTIFY_FAILED};
use super::{Output, text};
use crate::config::Config;
use crate::error::Error;
use crate::incident::AccessKeyId;
use crate::oncall::{self, Assessment, RestoreRequest};
use crate::ports::{
    Findings, Identity, IdentityCenterAdmin, IncidentStore, Notifier, Operator, Organization,
};
use crate::report::inert;

/// What the operator passed besides the key and the request.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub reason: String,
    pub requested_by: String,
    pub dry_run: bool,
    pub yes: bool,
    pub force: bool,
}

/// Reads one answer from the terminal after `prompt`; `None` without a terminal (no one to ask).
pub fn ask(prompt: &str) -> Option<String> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim().to_owned())
}

/// The restore's confirmation: the key ID typed out, nothing else (`yes` is not a key ID).
pub fn confirmation(answer: Option<&str>, key: &AccessKeyId) -> Result<(), Error> {
    match answer {
        Some(a) if a == key.as_str() => Ok(()),
        None => Err(Error::Declined(
            "the restore: no terminal to confirm on; pass --yes to proceed".into(),
        )),
        Some(a) => Err(Error::Declined(format!(
            "the restore: the confirmation is the key ID {key} typed out, not {}: nothing was changed",
            quoted(a)
        ))),
    }
}

fn quoted(answer: &str) -> String {
    if answer.is_empty() {
        "an empty line".into()
    } else {
        format!("\"{}\"", inert(answer))
    }
}

/// Items a screen shows of one list; the rest are counted (JSON output has them all).
const SHOWN: usize = 25;

fn list(out: &mut String, head: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str(head);
    out.push('\n');
    // A flood of one kind (hundreds of role sessions) must not push a live key off the screen:
    // keys, passwords and other credentials first.
    let mut ordered: Vec<&String> = items.iter().collect();
    ordered.sort_by_key(|i| {
        !(i.contains(" key ") || i.contains("password") || i.contains("credential"))
    });
    for i in ordered.iter().take(SHOWN) {
        out.push_str(&item(&super::text::on_terminal(i)));
    }
    if items.len() > SHOWN {
        out.push_str(&item(&format!(
            "... and {} more (--output json lists every one)",
            items.len() - SHOWN
        )));
    }
}

/// The assessment before anything is done: refusals first (or what `--force` goes past), then
/// the plan, then what is not checked; for a refused dry run, the next step.
pub fn preview(a: &Assessment, key: &AccessKeyId, force: bool, dry_run: bool) -> String {
    let mut out = String::new();
    let plan: Vec<String> = a.plan.iter().map(ToString::to_string).collect();
    let refused = !a.refusals.is_empty() && !force;
    if refused {
        out.push_str(&format!(
            "{} of {key} would be REFUSED: {} reason(s), listed first.\n",
            if dry_run { "A restore" } else { "The restore" },
            a.refusals.len()
        ));
        list(&mut out, "Refused because:", &a.refusals);
        list(&mut out, "The plan, NOT carried out while refused:", &plan);
    } else {
        list(&mut out, "Forced past (--force):", &a.refusals);
        list(&mut out, "The plan:", &plan);
    }
    list(&mut out, "Not checked:", &a.unchecked);
    if dry_run {
        if refused {
            list(&mut out, "Next:", &oncall::refused_next_steps());
        }
        out.push_str("DRY RUN: nothing was changed, nothing was sent.\n");
    }
    out
}

/// The whole command once the AWS clients exist: the exit code, or the error that ends it
/// (a failed read, an unconfirmed restore). `out` is stdout, `err` stderr; `answer` asks the
/// confirmation's question (`None`: no terminal).
#[allow(clippy::too_many_arguments)]
pub async fn run<C>(
    cloud: &C,
    config: &Config,
    key: &AccessKeyId,
    request: &RestoreRequest,
    opts: &Options,
    output: Output,
    answer: impl FnOnce(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Error>
where
    C: Operator
        + Notifier
        + Identity
        + IncidentStore
        + Findings
        + Organization
        + IdentityCenterAdmin,
{
    let a = oncall::assess(cloud, config, key, request).await?;
    // Text for a person: on stdout in text mode, beside the JSON on stderr otherwise. Never
    // quiet: the refusals and the plan are what a person decides on.
    let json = output == Output::Json;
    let mut person = |text: &str| {
        let _ = if json {
            err.write_all(text.as_bytes())
        } else {
            out.write_all(text.as_bytes())
        };
    };
    if a.plan.is_empty() && a.refusals.is_empty() {
        let found = a.key_found;
        person(&if found {
            format!("Nothing killswitch placed is in effect for {key}: nothing to restore.\n")
        } else {
            format!(
                "NOT FOUND: IAM does not know {key} and no incident record names it: nothing to restore (deleted, or another account's key: check --profile).\n"
            )
        });
        if json {
            print_json(
                out,
                &json!({"plan": a.plan, "dry_run": opts.dry_run, "key_found": found}),
            );
        }
        return Ok(if found { 0 } else { EXIT_KEY_NOT_FOUND });
    }
    if opts.dry_run {
        person(&preview(&a, key, opts.force, true));
        if json {
            print_json(
                out,
                &json!({"plan": a.plan, "refusals": a.refusals, "unchecked": a.unchecked, "dry_run": true}),
            );
        }
        return Ok(0);
    }
    let refused = !a.refusals.is_empty() && !opts.force;
    if !refused {
        // The plan, then the question, where the question is asked.
        let _ = err.write_all(preview(&a, key, opts.force, false).as_bytes());
        if !opts.yes {
            let _ = err.flush();
            let typed = answer(&format!(
                "Undo the containment of {key}? Type the key ID ({key}) to confirm: "
            ));
            confirmation(typed.as_deref(), key)?;
        }
    }
    let restored = oncall::restore(
        cloud,
        config,
        key,
        &a,
        &opts.requested_by,
        &opts.reason,
        opts.force,
    )
    .await;
    if json {
        let _ = err.write_all(text::restored(&restored).as_bytes());
        print_json(out, &restored);
    } else {
        let _ = out.write_all(text::restored(&restored).as_bytes());
    }
    Ok(if !restored.refused.is_empty() {
        EXIT_BAD_INPUT
    } else if !restored.failed.is_empty() {
        EXIT_CONTAINMENT_FAILED
    } else if !restored.notified {
        EXIT_NOTIFY_FAILED
    } else {
        0
    })
}

fn print_json(out: &mut dyn Write, value: &impl serde::Serialize) {
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_keeps_a_live_key_on_the_screen() {
        let mut items: Vec<String> = (0..300)
            .map(|n| {
                format!("role session s{n} of role r, assumed by the key's holder: still valid")
            })
            .collect();
        items.push("user b has an Active key AKIAI44QH8DHBEXAMPLE created now".into());
        let mut out = String::new();
        super::list(&mut out, "Refused because:", &items);
        assert!(
            out.lines()
                .nth(1)
                .is_some_and(|l| l.contains("AKIAI44QH8DHBEXAMPLE")),
            "{out}"
        );
        assert!(out.contains("and 276 more"), "{out}");
        assert!(out.lines().count() < 80, "{out}");
    }

    #[test]
    fn a_wrong_answer_says_the_key_id_was_expected() {
        let key = AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap();
        assert!(confirmation(Some("AKIAIOSFODNN7EXAMPLE"), &key).is_ok());
        let said = confirmation(Some("yes"), &key).unwrap_err().chain();
        assert!(
            said.contains("not confirmed")
                && said.contains("the key ID AKIAIOSFODNN7EXAMPLE typed out")
                && said.contains("\"yes\""),
            "{said}"
        );
        let said = confirmation(None, &key).unwrap_err().chain();
        assert!(
            said.contains("no terminal") && said.contains("--yes"),
            "{said}"
        );
    }
}
