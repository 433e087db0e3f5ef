//! The command line: no subcommand runs the Lambda runtime; `respond` runs the same handler on a
//! file with the operator's own AWS configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::handler::{self, App};

#[derive(Parser, Debug)]
#[command(
    name = "killswitch",
    version,
    about = "Contain a leaked AWS access key, verify, investigate, notify."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Respond to one event file (GuardDuty, AWS Health or manual request) from this machine.
    ///
    /// Prints the JSON report on stdout, logs on stderr. Exit codes: 0 contained or nothing to
    /// do (sample, dry run, refused principal); 1 containment failed; 2 bad input or
    /// configuration; 3 contained but the SNS summary could not be sent.
    Respond {
        /// The event payload, e.g. events/manual-request.json.
        #[arg(long)]
        event: PathBuf,
        /// Compute and report the plan; make no IAM write.
        #[arg(long)]
        dry_run: bool,
        /// Do not wait for the CloudTrail sweep (KILLSWITCH_SWEEP_MINUTES after the first
        /// report) when there is no follow-up queue to run it; the report then says to search
        /// again by hand.
        #[arg(long)]
        no_sweep: bool,
    },
    /// Rehearse leaks: run drill scenarios (default: every drills/*.toml) and score the response.
    ///
    /// Runs against the embedded local AWS (AWS_ENDPOINT_URL on 127.0.0.1, see scripts/drill.sh)
    /// unless --account-id names a sandbox account, which must match the credentials and be
    /// confirmed (interactively or with --yes). Exit code 1 if any scenario fails.
    #[cfg(feature = "drill")]
    Drill {
        /// Scenario files; none = every drills/*.toml.
        scenarios: Vec<PathBuf>,
        /// Run against this real sandbox account instead of the local AWS.
        #[arg(long)]
        account_id: Option<String>,
        /// Do not ask for confirmation before touching a real account.
        #[arg(long)]
        yes: bool,
        /// Where to write the JSON and Markdown drill record.
        #[arg(long, default_value = "drill-reports")]
        report_dir: PathBuf,
    },
    /// Show a key's state, owner, the policies killswitch placed, and last use.
    Status {
        #[arg(long)]
        access_key_id: String,
        /// The owner, if IAM cannot tell (GetAccessKeyLastUsed).
        #[arg(long)]
        user_name: Option<String>,
        /// For a role session: the role whose sessions were revoked.
        #[arg(long)]
        role_name: Option<String>,
    },
    /// Undo a containment: remove only what killswitch placed (the user's deny, this incident's
    /// role session deny, a role-wide cutoff no other open incident relies on).
    ///
    /// Refuses, unless --force, while the user has an Active key or a console password created
    /// since the incident began, or when --user-name is not IAM's owner of the key. The key stays
    /// Inactive unless --reactivate-key. Asks for confirmation (type the key ID) unless --yes;
    /// sends an SNS notice before acting and after, naming who, as which identity, and why.
    Restore {
        #[arg(long)]
        access_key_id: String,
        #[arg(long)]
        user_name: Option<String>,
        #[arg(long)]
        role_name: Option<String>,
        /// The role session to stop denying (`ROLE-ID:session-name`), when the incident record
        /// does not say.
        #[arg(long)]
        session: Option<String>,
        /// Also reactivate the leaked key itself.
        #[arg(long)]
        reactivate_key: bool,
        /// Why (goes into the SNS notice).
        #[arg(long)]
        reason: String,
        /// Who (goes into the SNS notice).
        #[arg(long)]
        requested_by: String,
        /// Show what would be undone; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Restore despite the refusals above, or even if it cannot be recorded in
        /// KILLSWITCH_INCIDENT_TABLE (a follow-through still in flight will then take it for
        /// tampering and contain the key again).
        #[arg(long)]
        force: bool,
    },
}

pub const EXIT_CONTAINMENT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_NOTIFY_FAILED: u8 = 3;

/// The exit code for an error that ends the CLI.
pub fn exit_code(e: &Error) -> ExitCode {
    ExitCode::from(match e {
        Error::BadEvent(_) | Error::Config { .. } => EXIT_BAD_INPUT,
        Error::NotifyFailed(_) => EXIT_NOTIFY_FAILED,
        Error::ContainmentFailed(_) | Error::Aws { .. } => EXIT_CONTAINMENT_FAILED,
    })
}

/// Reads the event before any AWS client exists, so bad input fails without touching AWS.
pub fn read_event(path: &PathBuf) -> Result<serde_json::Value, Error> {
    let raw = std::fs::read(path)
        .map_err(|e| Error::BadEvent(format!("cannot read {}: {e}", path.display())))?;
    crate::trigger::parse_bytes(&raw)?;
    serde_json::from_slice(&raw).map_err(|e| Error::BadEvent(e.to_string()))
}

/// Both phases in this process: the whole report is printed when the follow-through is done.
pub async fn respond<C>(app: &App<C>, event: serde_json::Value, dry_run: bool) -> ExitCode
where
    C: handler::Cloud,
    C::Member: crate::ports::ActivityLog,
{
    let deadline = SystemTime::now()
        + app.config.investigation_budget
        + app.config.verify_delay
        + Duration::from_secs(30);
    match handler::handle(app, event, deadline, dry_run, handler::Phases::Both).await {
        Ok(mut response) => {
            for s in response.pending_sweeps() {
                eprintln!(
                    "killswitch: first report for {} sent; the CloudTrail sweep runs at {} (waiting; --no-sweep skips it)",
                    s.incident.key,
                    crate::report::ts(s.due_at)
                );
            }
            handler::run_pending_sweeps(app, &mut response).await;
            println!(
                "{}",
                serde_json::to_string_pretty(&response).unwrap_or_default()
            );
            match response.error() {
                Some(e) => {
                    eprintln!("killswitch: {}", e.chain());
                    exit_code(&e)
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("killswitch: {}", e.chain());
            exit_code(&e)
        }
    }
}
