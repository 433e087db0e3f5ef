//! The command line: in Lambda (`AWS_LAMBDA_RUNTIME_API` set) no subcommand runs the runtime;
//! at a terminal `respond` runs the same handler with the operator's own AWS configuration, and
//! prints text for a person or JSON for a script.

pub mod doctor;
pub mod guard;
pub mod man;
mod respond;
pub mod restore;
pub mod setup;
pub mod text;
pub mod wrap;

pub use respond::{acting_as, interrupted, respond};

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Error;

/// `--version`: the package version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("KILLSWITCH_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "killswitch",
    version = VERSION,
    about = "Contain a leaked AWS access key, verify, investigate, notify.",
    long_about = "Contain a leaked AWS access key, verify, investigate, notify.\n\nIn Lambda (AWS_LAMBDA_RUNTIME_API set) it serves the runtime; from a terminal it runs the same response with your own AWS credentials.",
    after_help = "Examples:\n  killswitch respond --access-key-id AKIAIOSFODNN7EXAMPLE \\\n      --reason \"key pasted in a public gist\" --no-sweep\n  killswitch status --access-key-id AKIAIOSFODNN7EXAMPLE\n  killswitch --profile sec --region eu-west-1 respond --event finding.json \\\n      --dry-run --no-notify\n\nExit codes:\n  0    done, or nothing to do\n  1    containment (or restore) failed; doctor: a check failed\n  2    bad input, flag, profile or setting; a rejected key; a refused restore\n  3    done, but the SNS notice was not sent\n  4    the key does not exist (respond, status, restore)\n  5    not confirmed\n  130  Ctrl-C while respond waited for the CloudTrail sweep"
)]
pub struct Cli {
    /// The AWS profile to use (like the AWS CLI's --profile; default: AWS_PROFILE or default).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// The AWS Region to call (like the AWS CLI's --region; default: AWS_REGION or the
    /// profile's). Notices go to the topic's own Region whatever this says.
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Output format: text for a person, json for a script (default: text on a terminal, json
    /// when piped).
    #[arg(long, global = true, value_enum)]
    pub output: Option<Output>,
    /// No progress lines and only errors in the log (the result is still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

impl Output {
    /// The format when none was asked for: text for a person at a terminal, JSON for a pipe.
    pub fn resolve(asked: Option<Output>, stdout_is_terminal: bool) -> Output {
        asked.unwrap_or(if stdout_is_terminal {
            Output::Text
        } else {
            Output::Json
        })
    }
}

/// What to respond to: an event (file or stdin) or a key named by flags.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
#[group(required = true, multiple = false)]
pub struct Source {
    /// The event payload (GuardDuty, AWS Health, Security Hub or manual request); - reads stdin.
    #[arg(long, value_name = "FILE|-")]
    pub event: Option<PathBuf>,
    /// The leaked key's ID (AKIA… or ASIA…), as a manual request built from the flags below.
    #[arg(long, value_name = "KEY", requires = "reason")]
    pub access_key_id: Option<String>,
}

/// The manual request's other fields, with `--access-key-id`.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Why (goes into the notice).
    #[arg(long, requires = "access_key_id")]
    pub reason: Option<String>,
    /// Who asks (default: the identity of your AWS credentials, from sts:GetCallerIdentity).
    #[arg(long, requires = "access_key_id")]
    pub requested_by: Option<String>,
    /// The key's IAM user, if you know it (IAM's answer wins for AKIA keys).
    #[arg(long, requires = "access_key_id", conflicts_with = "role_name")]
    pub user_name: Option<String>,
    /// For a session key (ASIA): the role whose session leaked.
    #[arg(long, requires = "access_key_id")]
    pub role_name: Option<String>,
    /// With --role-name: the session to deny exactly.
    #[arg(long, requires = "role_name")]
    pub session_name: Option<String>,
    /// The account the key belongs to (default: the key's own, from sts:GetAccessKeyInfo).
    #[arg(long, requires = "access_key_id")]
    pub account_id: Option<String>,
    /// Names the request across re-runs (default: KEY:REQUESTED-BY), so a re-run is a duplicate.
    #[arg(long, requires = "access_key_id")]
    pub request_id: Option<String>,
}

impl Request {
    /// The manual request these flags make, for the same parser as every other trigger.
    pub fn to_event(&self, key: &str, requested_by: &str, dry_run: bool) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("access_key_id".into(), key.into());
        m.insert(
            "reason".into(),
            self.reason.clone().unwrap_or_default().into(),
        );
        m.insert("requested_by".into(), requested_by.into());
        for (k, v) in [
            ("user_name", &self.user_name),
            ("role_name", &self.role_name),
            ("session_name", &self.session_name),
            ("account_id", &self.account_id),
            ("request_id", &self.request_id),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.clone().into());
            }
        }
        if dry_run {
            m.insert("dry_run".into(), true.into());
        }
        serde_json::Value::Object(m)
    }
}

/// How `respond` runs and whom it tells.
#[derive(clap::Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RespondFlags {
    /// Compute and report the plan; make no IAM write. The DRY RUN notice still goes to
    /// KILLSWITCH_TOPIC_ARN (and the chat topic) when set: add --no-notify to keep it off them.
    #[arg(long)]
    pub dry_run: bool,
    /// Publish nothing, to email or chat: the notices are printed here only (no
    /// KILLSWITCH_TOPIC_ARN needed).
    #[arg(long)]
    pub no_notify: bool,
    /// Page KEY NOT FOUND too (a key ID IAM does not know). Without it such a request is
    /// said here only, exit code 4: a typo in a key ID is not an incident.
    #[arg(long)]
    pub notify_not_found: bool,
    /// Do not wait for the CloudTrail sweep (KILLSWITCH_SWEEP_MINUTES after the first report)
    /// when there is no follow-up queue to run it; the report then gives the searches to run
    /// by hand.
    #[arg(long)]
    pub no_sweep: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Respond to a leaked key from this machine: contain, verify, investigate, notify.
    ///
    /// Give an event (--event FILE, or --event - for stdin) or the key itself (--access-key-id
    /// with --reason). Prints the report (text or JSON), progress on stderr. Without a follow-up
    /// queue it then waits for the CloudTrail sweep (KILLSWITCH_SWEEP_MINUTES, default 15):
    /// --no-sweep skips the wait. Exit codes: 0 contained or nothing to do (already contained,
    /// sample, dry run, refused principal); 1 containment failed; 2 bad input or
    /// configuration, or a key of an account the function may not act in (rejected); 3
    /// contained but the SNS notice could not be sent; 4 IAM knows no such key.
    #[command(
        after_help = "Examples:\n  killswitch respond --access-key-id AKIAIOSFODNN7EXAMPLE --reason \"look\" \\\n      --dry-run --no-notify --no-sweep\n  killswitch respond --access-key-id AKIAIOSFODNN7EXAMPLE \\\n      --reason \"found in a public repo\" --no-sweep\n  killswitch respond --access-key-id ASIAIOSFODNN7EXAMPLE --role-name ci \\\n      --session-name i-0abc123 --reason \"leaked from CI\"\n  killswitch respond --event events/guardduty-iam-user-finding.json --no-sweep\n  cat eventbridge-event.json | killswitch respond --event -"
    )]
    Respond {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        request: Request,
        #[command(flatten)]
        flags: RespondFlags,
    },
    /// Rehearse leaks: run drill scenarios (default: every drills/*.toml) and score the response.
    ///
    /// Runs against the embedded local AWS (AWS_ENDPOINT_URL on 127.0.0.1, see scripts/drill.sh)
    /// unless --account-id names a sandbox account, which must match the credentials and be
    /// confirmed (interactively or with --yes). Exit code 1 if any scenario fails.
    #[cfg(feature = "drill")]
    #[command(
        after_help = "Examples:\n  scripts/drill.sh                     (every scenario on the local AWS)\n  killswitch drill drills/leaked-user-key.toml --report-dir /tmp/drills"
    )]
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
    /// Show a key's state: whether and when killswitch contained it, by which incident, what
    /// else its deny blocks, and its last use.
    ///
    /// Exit code 4 when the key does not exist.
    #[command(
        after_help = "Examples:\n  killswitch status --access-key-id AKIAIOSFODNN7EXAMPLE\n  killswitch status --access-key-id ASIAIOSFODNN7EXAMPLE --role-name ci \\\n      --output json"
    )]
    Status {
        /// The key to look at (AKIA… or ASIA…).
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
    /// Refuses (exit 2), unless --force, while the user has an Active key, a console password or
    /// another credential created since the incident began, when --user-name is not IAM's owner
    /// of the key, when another open incident relies on a role's deny, or when the role or
    /// session does not match the incident record (docs/on-call.md lists every case). The key stays
    /// Inactive unless --reactivate-key. Asks for confirmation (type the key ID) unless --yes
    /// (no terminal and no --yes: exit 5); sends an SNS notice before acting and after, naming
    /// who, as which identity, and why (KILLSWITCH_TOPIC_ARN; --dry-run needs none).
    #[command(
        override_usage = "killswitch restore --access-key-id <KEY> --requested-by <WHO> \\\n           --reason <WHY> [OPTIONS]",
        after_help = "Examples:\n  killswitch restore --access-key-id AKIAIOSFODNN7EXAMPLE --requested-by bob \\\n      --reason \"rotated, INC-42 closed\" --dry-run\n  killswitch restore --access-key-id AKIAIOSFODNN7EXAMPLE --requested-by bob \\\n      --reason \"rotated\" --yes"
    )]
    Restore {
        /// The contained key (AKIA… or ASIA…).
        #[arg(long)]
        access_key_id: String,
        /// The key's IAM user, if IAM cannot tell (it must be IAM's owner of the key).
        #[arg(long)]
        user_name: Option<String>,
        /// For a session key: the role whose sessions were denied.
        #[arg(long)]
        role_name: Option<String>,
        /// The role session to stop denying (`ROLE-ID:session-name`), when the incident record
        /// does not say.
        #[arg(long, visible_alias = "session-name")]
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
    /// Check a deployed stack, read-only: what would stop it containing a leak now.
    ///
    /// Reads the live function (not the template): its state and settings (dry run, protected
    /// principals), reserved concurrency, the EventBridge rules that deliver findings, the KMS
    /// keys and SNS topic its notices need, GuardDuty in every enabled Region, a logging trail,
    /// its permissions (simulated for every call the code makes), and each member account as
    /// the member role. One line per check with its fix (docs/doctor.md); exit code 1 if a
    /// check failed (or, with --strict, warned).
    #[command(
        after_help = "Examples:\n  killswitch doctor --function-name killswitch-KillSwitchFunction-AbC123\n  killswitch --region eu-west-1 doctor --function-name killswitch-fn \\\n      --expect-protected break-glass --output json"
    )]
    Doctor(doctor::DoctorArgs),
    /// Print the org guard: the service control policy to attach, before any incident, from the
    /// management account or the delegated policy administrator (as org-guard.yaml does).
    ///
    /// It denies every request of a user killswitch tagged killswitch-contained, and to everyone
    /// but the named roles: changing either killswitch tag, editing a contained user or a guarded
    /// role, and writing killswitch's own roles (docs/org-guard.md). Calls nothing.
    #[command(
        after_help = "Examples:\n  killswitch guard-policy --responder-role killswitch-responder \\\n      --member-role KillSwitchMember --restore-role killswitch-restore \\\n      > guard.json\n  aws organizations create-policy --type SERVICE_CONTROL_POLICY \\\n      --name killswitch-org-guard --description \"killswitch org guard\" \\\n      --content file://guard.json"
    )]
    GuardPolicy(guard::GuardPolicyArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  killswitch completions bash > /etc/bash_completion.d/killswitch\n  killswitch completions zsh > \"${fpath[1]}/_killswitch\""
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these very definitions; --out-dir writes one
    /// page per command (killswitch.1, killswitch-respond.1, ...).
    #[command(
        after_help = "Examples:\n  killswitch man | man -l -\n  killswitch man --out-dir /usr/local/share/man/man1"
    )]
    Man {
        /// Write killswitch.1 and one killswitch-COMMAND.1 per command here instead.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

pub const EXIT_CONTAINMENT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_NOTIFY_FAILED: u8 = 3;
pub const EXIT_KEY_NOT_FOUND: u8 = 4;
pub const EXIT_DECLINED: u8 = 5;
/// Ctrl-C while waiting for the CloudTrail sweep (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit code for an error that ends the CLI.
pub fn exit_code(e: &Error) -> ExitCode {
    ExitCode::from(match e {
        Error::BadEvent(_) | Error::Config { .. } | Error::Usage(_) => EXIT_BAD_INPUT,
        Error::Declined(_) => EXIT_DECLINED,
        Error::NotifyFailed(_) => EXIT_NOTIFY_FAILED,
        Error::ContainmentFailed(_) | Error::Aws { .. } => EXIT_CONTAINMENT_FAILED,
    })
}

/// Reads the event (a file, or stdin for `-`) before any AWS client exists, so bad input fails
/// without touching AWS. A file that cannot be read is a usage error, not a bad event.
pub fn read_event(path: &Path) -> Result<serde_json::Value, Error> {
    let raw = if path == Path::new("-") {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            // Otherwise a person sees a command that hangs.
            eprintln!(
                "killswitch: reading the event from this terminal: paste it, then press Ctrl-D on an empty line (or pipe it in, or give --event FILE)"
            );
        }
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::io::stdin(),
                crate::trigger::MAX_PAYLOAD_BYTES as u64 + 1,
            ),
            &mut raw,
        )
        .map_err(|e| Error::Usage(format!("cannot read the event from stdin: {e}")))?;
        raw
    } else {
        std::fs::read(path)
            .map_err(|e| Error::Usage(format!("cannot read event file {}: {e}", path.display())))?
    };
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Usage(format!(
            "{} is empty: give a GuardDuty, AWS Health or Security Hub event, or a manual request",
            if path == Path::new("-") {
                "stdin".to_string()
            } else {
                path.display().to_string()
            }
        )));
    }
    crate::trigger::parse_bytes(&raw)?;
    serde_json::from_slice(&raw).map_err(|e| Error::BadEvent(e.to_string()))
}

/// How the result is shown.
#[derive(Clone, Copy, Debug)]
pub struct Show {
    pub output: Output,
    pub color: bool,
    /// `--quiet`: the result only.
    pub quiet: bool,
}
