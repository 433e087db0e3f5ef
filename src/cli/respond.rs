//! `killswitch respond` at a terminal: both phases in this process, the report printed as it
//! comes, the wait for the CloudTrail sweep shown, and the exit code.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::{EXIT_INTERRUPTED, EXIT_KEY_NOT_FOUND, Output, Show, exit_code, text, wrap};
use crate::handler::{self, App};
use crate::vocab::Arn;

/// Both phases in this process: the whole report is printed when the follow-through is done,
/// with a closing line (outcome and elapsed time) in text.
pub async fn respond<C>(
    app: &App<C>,
    event: serde_json::Value,
    dry_run: bool,
    show: Show,
) -> ExitCode
where
    C: handler::Cloud,
    C::Member: crate::ports::ActivityLog,
{
    let began = std::time::Instant::now();
    let deadline = SystemTime::now()
        + app.config.investigation_budget
        + app.config.verify_delay
        + Duration::from_secs(30);
    match handler::handle(app, event, deadline, dry_run, handler::Phases::Both).await {
        Ok(mut response) => {
            let pending = response.pending_sweeps();
            let width = wrap::width();
            if show.output == Output::Text {
                // Which identity acted comes first: a wrong profile is seen before anything else.
                if let Some(op) = response.reports.iter().find_map(|r| r.operator.as_deref()) {
                    println!("{}", wrap::fit(&acting_as(op), width));
                }
            }
            if show.output == Output::Text && !pending.is_empty() {
                // The first report now: the sweep may take many minutes.
                print!("{}", wrap::fit(&text::reports(&response.reports), width));
            }
            if let Some(due) = pending.iter().map(|s| s.due_at).max() {
                let sweep = handler::run_pending_sweeps(app, &mut response);
                if !wait_for_sweep(sweep, due, &pending, show.quiet).await {
                    return ExitCode::from(EXIT_INTERRUPTED);
                }
            }
            print_final(&response, began.elapsed(), show, width);
            finish(&response, show, width)
        }
        Err(e) => {
            eprintln!("killswitch: {}", e.chain());
            exit_code(&e)
        }
    }
}

/// The whole report (the sweep's when it ran) and the closing line, or the JSON document.
fn print_final(response: &handler::Response, elapsed: Duration, show: Show, width: usize) {
    match show.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(response).unwrap_or_default()
        ),
        Output::Text => {
            let reports = if response.sweeps.is_empty() {
                &response.reports
            } else {
                &response.sweeps
            };
            print!("{}", wrap::fit(&text::reports(reports), width));
            println!(
                "{}",
                wrap::fit(&text::closing(response, elapsed, show.color), width)
            );
        }
    }
}

/// The exit code, with the one line on stderr each outcome needs (the report says the rest).
fn finish(response: &handler::Response, show: Show, width: usize) -> ExitCode {
    use crate::report::{Notification, Status};
    let all = |status: Status| {
        !response.reports.is_empty() && response.reports.iter().all(|r| r.status == status)
    };
    match response.error() {
        Some(e) if show.output == Output::Text && all(Status::Rejected) => {
            eprintln!(
                "{}",
                wrap::fit(
                    "killswitch: rejected, nothing was changed (exit 2): see \"Still for a human\" above",
                    width
                )
            );
            exit_code(&e)
        }
        Some(e) => {
            eprintln!("killswitch: {}", e.chain());
            exit_code(&e)
        }
        None if all(Status::KeyNotFound) => {
            for r in &response.reports {
                let line = format!(
                    "killswitch: KEY NOT FOUND: IAM{} knows no key {}. Check the ID for a typo. Nothing was changed{}.",
                    r.account
                        .as_deref()
                        .map(|a| format!(" in account {a}"))
                        .unwrap_or_default(),
                    r.access_key_id,
                    if matches!(r.notification, Notification::Sent { .. }) {
                        ""
                    } else {
                        " and nobody was paged"
                    }
                );
                eprintln!("{}", wrap::fit(&line, width));
            }
            ExitCode::from(EXIT_KEY_NOT_FOUND)
        }
        None => ExitCode::SUCCESS,
    }
}

/// `Acting as arn:… (account 123456789012)`.
pub fn acting_as(arn: &str) -> String {
    let account = Arn::parse(arn).map_or("?", |a| a.account);
    format!("Acting as {arn} (account {account})")
}

/// Waits for the sweep with a countdown on the last line of a terminal; `false` on Ctrl-C, after
/// saying what will not happen and how to do it by hand.
async fn wait_for_sweep(
    sweep: impl std::future::Future<Output = ()>,
    due: chrono::DateTime<chrono::Utc>,
    pending: &[crate::playbook::sweep::Sweep],
    quiet: bool,
) -> bool {
    let live = !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Listening before the first line that offers Ctrl-C: a press right after it would otherwise
    // meet the default handler and kill the process with nothing said.
    let interrupt = interrupt_listener();
    if !quiet && !live {
        // Said even without a terminal: the wait is long, and silence reads as a hang.
        eprintln!(
            "killswitch: waiting for the CloudTrail sweep at {} (Ctrl-C skips it; --no-sweep does not wait)",
            crate::report::ts(due)
        );
    }
    let countdown = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let left = (due - chrono::Utc::now()).num_seconds().max(0);
            if left == 0 {
                // The sweep is running: its own progress lines follow on lines of their own.
                if live {
                    eprint!("\r\x1b[K");
                }
                return std::future::pending::<()>().await;
            }
            if live {
                eprint!(
                    "\r\x1b[KCloudTrail sweep in {:02}:{:02} (at {}); Ctrl-C skips it",
                    left / 60,
                    left % 60,
                    crate::report::ts(due)
                );
            }
        }
    };
    let finished = tokio::select! {
        () = sweep => true,
        () = countdown => true,
        () = interrupt => false,
    };
    if live {
        eprint!("\r\x1b[K");
    }
    if !finished {
        eprintln!("{}", wrap::fit(&interrupted(due, pending), wrap::width()));
    }
    finished
}

/// Resolves on Ctrl-C; the handler is in place when this returns, not at the first poll. Never
/// resolves where no handler can be installed, so the wait then runs to its end.
#[cfg(unix)]
fn interrupt_listener() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = signal(SignalKind::interrupt()).ok();
    async move {
        match listener {
            Some(mut l) => {
                l.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
}

#[cfg(not(unix))]
fn interrupt_listener() -> impl std::future::Future<Output = ()> {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What Ctrl-C during the wait leaves undone, and the commands that do it later.
pub fn interrupted(
    due: chrono::DateTime<chrono::Utc>,
    pending: &[crate::playbook::sweep::Sweep],
) -> String {
    let mut out = format!(
        "killswitch: interrupted. Containment is unaffected, but the CloudTrail sweep did NOT run and NO FINAL notice will be sent. Event history delivers calls up to 15 minutes late: after {}, search again in each Region the key was used in:",
        crate::report::ts(due)
    );
    for s in pending {
        for command in crate::playbook::sweep::lookup_commands(s) {
            out.push_str("\n  ");
            out.push_str(&command);
        }
    }
    out
}
