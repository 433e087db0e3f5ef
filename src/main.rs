//! Wiring: parse argv, start tracing, load configuration, build clients, pick the mode.

#![warn(clippy::too_many_lines, clippy::wildcard_enum_match_arm)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use killswitch::aws::AwsClients;
use killswitch::cli::setup::{AwsArgs, cli_sdk, sdk_config};
use killswitch::cli::{self, Cli, Command, text};
use killswitch::config::Config;
#[cfg(feature = "drill")]
use killswitch::drill::{self, Drill, Target};
use killswitch::error::Error;
use killswitch::handler::{self, App};
use killswitch::incident::AccountId;
use killswitch::oncall;
use killswitch::playbook::Responder;

async fn responder(cloud: &AwsClients) -> Result<Responder, Error> {
    let (account, arn) = cloud.caller_identity().await?;
    Ok(Responder::from_arn(AccountId::parse(&account)?, &arn))
}

/// Lambda init: learn who we are and open the connections the first incident's two waves use,
/// so a warm invocation pays round trips, not handshakes.
async fn build_lambda_app() -> Result<App<AwsClients>, Error> {
    let mut config = Config::from_env()?;
    // An invocation cannot wait minutes: the sweep goes through the queue or not at all.
    config.sweep_inline = false;
    let cloud = AwsClients::for_config(&sdk_config(&AwsArgs::default()).await?, &config);
    let (responder, ()) = tokio::join!(responder(&cloud), cloud.warm_up());
    Ok(App {
        cloud,
        config,
        responder: Some(responder?),
    })
}

fn fail(e: &Error) -> ExitCode {
    eprintln!(
        "{}",
        cli::wrap::fit(&format!("killswitch: {}", e.chain()), cli::wrap::width())
    );
    cli::exit_code(e)
}

/// Asks the operator to type `expected`; no terminal means no.
#[cfg(feature = "drill")]
fn confirm(prompt: &str, expected: &str) -> bool {
    match cli::restore::ask(&format!("{prompt}\nType {expected} to confirm: ")) {
        None => {
            eprintln!("killswitch: {prompt}: no terminal to confirm on; pass --yes to proceed");
            false
        }
        Some(answer) if answer == expected => true,
        Some(answer) => {
            eprintln!(
                "killswitch: the confirmation is {expected} typed out, not {answer:?}: nothing was done"
            );
            false
        }
    }
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

#[cfg(feature = "drill")]
async fn run_drill(
    scenarios: Vec<std::path::PathBuf>,
    account_id: Option<String>,
    yes: bool,
    report_dir: &std::path::Path,
) -> Result<ExitCode, Error> {
    // Decided before any AWS call: never a real account by accident.
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let local =
        endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost");
    if account_id.is_none() && !local {
        return Err(Error::Usage(
            "no local AWS: run drills with scripts/drill.sh, or name a sandbox account with --account-id".into(),
        ));
    }
    let sdk = sdk_config(&AwsArgs::default()).await?;
    let cloud = AwsClients::from_sdk_config(&sdk, "arn:aws:sns:us-east-1:000000000000:unused");
    let me = responder(&cloud).await?;
    let target = match account_id {
        Some(id) => {
            if id != me.account.as_str() {
                return Err(Error::Usage(format!(
                    "--account-id {id} does not match the credentials' account {}",
                    me.account
                )));
            }
            if !yes
                && !confirm(
                    &format!("This drill creates and contains canary users in REAL account {id}."),
                    &id,
                )
            {
                return Err(Error::Declined("the drill in a real account".into()));
            }
            Target::Account { id }
        }
        None => Target::Local { endpoint },
    };
    let root = std::env::current_dir().map_err(|e| Error::Usage(e.to_string()))?;
    let files = drill::scenario_files(&scenarios, &root)?;
    let loaded = files
        .iter()
        .map(|f| drill::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let runner = Drill {
        sdk: &sdk,
        target: &target,
        responder: &me,
    };
    let mut results = Vec::new();
    for scenario in &loaded {
        results.push(runner.run(scenario, &root).await);
    }
    std::fs::create_dir_all(report_dir)
        .map_err(|e| Error::Usage(format!("{}: {e}", report_dir.display())))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let json_path = report_dir.join(format!("drill-{stamp}.json"));
    let md_path = report_dir.join(format!("drill-{stamp}.md"));
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    )
    .and_then(|()| std::fs::write(&md_path, drill::markdown(&results)))
    .map_err(|e| Error::Usage(format!("writing the drill record: {e}")))?;
    println!("{}", drill::scorecard(&results));
    println!(
        "Drill record: {} and {}",
        json_path.display(),
        md_path.display()
    );
    Ok(if results.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(cli::EXIT_CONTAINMENT_FAILED)
    })
}

/// `killswitch respond`: an event (file or stdin) or a key named by flags.
async fn respond_cmd(
    aws: &AwsArgs,
    source: cli::Source,
    request: cli::Request,
    flags: cli::RespondFlags,
    show: cli::Show,
) -> Result<ExitCode, Error> {
    let cli::RespondFlags {
        dry_run,
        no_notify,
        no_sweep,
        notify_not_found,
    } = flags;
    // Bad input fails before any AWS call.
    let payload = match (&source.event, &source.access_key_id) {
        (Some(path), _) => Some(cli::read_event(path)?),
        (None, Some(key)) => {
            // No event was sent: say which flag is wrong, not that an event was not understood.
            killswitch::trigger::parse(request.to_event(key, "(checking)", dry_run))
                .map_err(flag_error)?;
            None
        }
        (None, None) => {
            return Err(Error::Usage(
                "give --event FILE (or - for stdin) or --access-key-id with --reason".into(),
            ));
        }
    };
    // A dry run (the flag, or a request that asks for one) or --no-notify prints its notices;
    // neither needs a topic.
    let requested_dry_run = payload.as_ref().is_some_and(|p| {
        matches!(
            killswitch::trigger::parse(p.clone()),
            Ok(killswitch::incident::Received::Incidents(v)) if !v.is_empty() && v.iter().all(|i| i.dry_run)
        )
    });
    let mut config = if dry_run || requested_dry_run || no_notify {
        Config::from_env_without_topic()?
    } else {
        Config::from_env()?
    };
    if no_notify {
        // Nowhere means nowhere: the chat topic is a channel people read too.
        config.topic_arn.clear();
        config.chat_topic_arn = None;
    }
    config.sweep_inline = !no_sweep;
    config.page_key_not_found = notify_not_found;
    let cloud = AwsClients::for_config(&cli_sdk(aws).await?, &config);
    let payload = match (payload, source.access_key_id) {
        (Some(p), _) => p,
        (None, Some(key)) => {
            let requested_by = match &request.requested_by {
                Some(r) => r.clone(),
                None => responder(&cloud).await?.arn,
            };
            request.to_event(&key, &requested_by, dry_run)
        }
        (None, None) => unreachable!("checked above"),
    };
    let app = App {
        cloud,
        config,
        responder: None,
    };
    Ok(cli::respond(&app, payload, dry_run, show).await)
}

/// How this run logs and shows its result, from the flags and where its output goes.
struct Terminal {
    show: cli::Show,
    /// The log level of a command at a terminal.
    level: &'static str,
    log_color: bool,
}

impl Terminal {
    fn from_flags(cli: &Cli) -> Self {
        let stdout_tty = std::io::stdout().is_terminal();
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color = std::env::var("NO_COLOR").ok();
        let output = cli::Output::resolve(cli.output, stdout_tty);
        // At a terminal the progress lines are the live view; the logs say only what went wrong.
        let watching = output == cli::Output::Text && stderr_tty && !cli.quiet;
        if watching {
            killswitch::progress::to_stderr();
        }
        Terminal {
            show: cli::Show {
                output,
                color: text::use_color(stdout_tty, no_color.as_deref()),
                quiet: cli.quiet,
            },
            level: if cli.quiet {
                "error"
            } else if watching {
                "warn"
            } else {
                "info"
            },
            log_color: text::use_color(stderr_tty, no_color.as_deref()),
        }
    }

    fn init_tracing(&self) {
        handler::init_tracing_cli(self.level, self.log_color);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(p) = &cli.profile {
        cli::wrap::set_profile(p);
    }
    let term = Terminal::from_flags(&cli);
    let aws = AwsArgs {
        profile: cli.profile.clone(),
        region: cli.region.clone(),
    };
    match cli.command {
        None => lambda().await,
        Some(command) => run(command, &aws, &term).await.unwrap_or_else(|e| fail(&e)),
    }
}

/// A command at a terminal.
async fn run(command: Command, aws: &AwsArgs, term: &Terminal) -> Result<ExitCode, Error> {
    match command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "killswitch", &mut script);
            // A closed pipe (`| head`) is the reader's choice, not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor(args) => {
            term.init_tracing();
            cli::doctor::run(aws, &args, term.show).await
        }
        Command::GuardPolicy(args) => cli::guard::run(&args, term.show),
        Command::Man { out_dir } => {
            cli::man::man_pages(out_dir.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Respond {
            source,
            request,
            flags,
        } => {
            term.init_tracing();
            respond_cmd(aws, source, request, flags, term.show).await
        }
        #[cfg(feature = "drill")]
        Command::Drill {
            scenarios,
            account_id,
            yes,
            report_dir,
        } => {
            // The drill's own progress lines are the live view; the handler's logs only on RUST_LOG.
            killswitch::progress::set_sink(None);
            handler::init_tracing_cli("error", term.log_color);
            run_drill(scenarios, account_id, yes, &report_dir).await
        }
        Command::Status {
            access_key_id,
            user_name,
            role_name,
        } => {
            term.init_tracing();
            status_cmd(aws, &access_key_id, user_name, role_name, term.show).await
        }
        Command::Restore {
            access_key_id,
            user_name,
            role_name,
            session,
            reactivate_key,
            reason,
            requested_by,
            dry_run,
            yes,
            force,
        } => {
            term.init_tracing();
            let request = oncall::RestoreRequest {
                user_name,
                role_name,
                session,
                reactivate_key,
            };
            let opts = cli::restore::Options {
                reason,
                requested_by,
                dry_run,
                yes,
                force,
            };
            restore_cmd(aws, &access_key_id, &request, &opts, term.show).await
        }
    }
}

/// No command: the Lambda runtime, where the Lambda service runs it.
async fn lambda() -> ExitCode {
    // Only the Lambda service sets this: anywhere else, plain `killswitch` is a person
    // asking what it does, not a runtime to start.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let _ = Cli::command().print_help();
        eprintln!(
            "\nkillswitch: no command given (the Lambda runtime starts only where AWS_LAMBDA_RUNTIME_API is set)"
        );
        return ExitCode::from(cli::EXIT_BAD_INPUT);
    }
    handler::init_tracing(true);
    let app = match build_lambda_app().await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e.chain(), kind = e.kind(), "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    match handler::serve(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "runtime stopped");
            ExitCode::FAILURE
        }
    }
}

/// `killswitch restore`: the key checked, then the assessment, the confirmation and the restore.
async fn restore_cmd(
    aws: &AwsArgs,
    access_key_id: &str,
    request: &oncall::RestoreRequest,
    opts: &cli::restore::Options,
    show: cli::Show,
) -> Result<ExitCode, Error> {
    let key = key_flag(access_key_id)?;
    // A dry run publishes nothing: it needs no topic.
    let config = if opts.dry_run {
        Config::from_env_without_topic()?
    } else {
        Config::from_env()?
    };
    let cloud = AwsClients::for_config(&sdk_config(aws).await?, &config);
    let code = cli::restore::run(
        &cloud,
        &config,
        &key,
        request,
        opts,
        show.output,
        cli::restore::ask,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await?;
    Ok(ExitCode::from(code))
}

/// A manual request that the flags built and the parser rejected: a flag error.
fn flag_error(e: Error) -> Error {
    match e {
        Error::BadEvent(why) => Error::Usage(as_flags(&why)),
        other @ (Error::Usage(_)
        | Error::Declined(_)
        | Error::Config { .. }
        | Error::Aws { .. }
        | Error::ContainmentFailed(_)
        | Error::NotifyFailed(_)) => other,
    }
}

/// A manual request's complaint in the words of the flags that built it.
fn as_flags(why: &str) -> String {
    let mut out = why.trim_start_matches("manual request: ").to_owned();
    for field in [
        "access_key_id",
        "requested_by",
        "user_name",
        "role_name",
        "session_name",
        "account_id",
        "request_id",
    ] {
        out = out.replace(field, &format!("--{}", field.replace('_', "-")));
    }
    out
}

/// `--access-key-id` of status and restore: a bad one is a flag error, not an event's.
fn key_flag(raw: &str) -> Result<killswitch::incident::AccessKeyId, Error> {
    killswitch::incident::AccessKeyId::parse(raw)
        .map_err(|why| Error::Usage(format!("--access-key-id: {why}")))
}

/// `killswitch status`: text for a person, JSON for a script; exit 4 for a key IAM does not know.
async fn status_cmd(
    aws: &AwsArgs,
    access_key_id: &str,
    user_name: Option<String>,
    role_name: Option<String>,
    show: cli::Show,
) -> Result<ExitCode, Error> {
    let key = key_flag(access_key_id)?;
    let config = Config::from_env_without_topic()?;
    let cloud = AwsClients::for_config(&cli_sdk(aws).await?, &config);
    let state = oncall::status(
        &cloud,
        &config,
        &key,
        user_name.as_deref(),
        role_name.as_deref(),
    )
    .await?;
    match show.output {
        cli::Output::Json => print_json(&state),
        cli::Output::Text => print!(
            "{}",
            cli::wrap::fit(&text::status(&state, show.color), cli::wrap::width())
        ),
    }
    Ok(if state.exists {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(cli::EXIT_KEY_NOT_FOUND)
    })
}
