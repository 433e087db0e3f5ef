//! Wiring: parse argv, start tracing, load configuration, build clients, pick the mode.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use killswitch::aws::AwsClients;
use killswitch::cli::{self, Cli, Command, text};
use killswitch::config::Config;
#[cfg(feature = "drill")]
use killswitch::drill::{self, Drill, Target};
use killswitch::error::Error;
use killswitch::handler::{self, App};
use killswitch::incident::AccountId;
use killswitch::oncall;
use killswitch::playbook::Responder;

/// `--profile` and `--region`, as the AWS CLI takes them.
#[derive(Clone, Debug, Default)]
struct AwsArgs {
    profile: Option<String>,
    region: Option<String>,
}

/// One SDK configuration for every client. Timeouts turn a hanging endpoint into an error the
/// playbook can report, instead of a silent Lambda timeout.
async fn sdk_config(args: &AwsArgs) -> Result<aws_config::SdkConfig, Error> {
    if let Some(r) = &args.region
        && !killswitch::config::is_region_name(r)
    {
        return Err(Error::Usage(format!(
            "--region {r:?} is not an AWS Region name (e.g. us-east-1)"
        )));
    }
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(std::time::Duration::from_secs(5))
        .operation_timeout(std::time::Duration::from_secs(15))
        .build();
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(p) = &args.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &args.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Error::Usage(
            "no AWS Region: pass --region, set AWS_REGION, or use a profile that has one".into(),
        ));
    }
    Ok(sdk)
}

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
    eprintln!("killswitch: {}", e.chain());
    cli::exit_code(e)
}

/// Asks the operator to type `expected`; no terminal means no.
fn confirm(prompt: &str, expected: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("killswitch: {prompt}: no terminal to confirm on; pass --yes to proceed");
        return false;
    }
    eprint!("{prompt}\nType {expected} to confirm: ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == expected
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
    dry_run: bool,
    no_notify: bool,
    no_sweep: bool,
    show: cli::Show,
) -> Result<ExitCode, Error> {
    // Bad input fails before any AWS call.
    let payload = match (&source.event, &source.access_key_id) {
        (Some(path), _) => Some(cli::read_event(path)?),
        (None, Some(key)) => {
            killswitch::trigger::parse(request.to_event(key, "(checking)", dry_run))?;
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
        config.topic_arn.clear();
    }
    config.sweep_inline = !no_sweep;
    let cloud = AwsClients::for_config(&sdk_config(aws).await?, &config);
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout_tty = std::io::stdout().is_terminal();
    let stderr_tty = std::io::stderr().is_terminal();
    let no_color = std::env::var("NO_COLOR").ok();
    let output = cli::Output::resolve(cli.output, stdout_tty);
    let show = cli::Show {
        output,
        color: text::use_color(stdout_tty, no_color.as_deref()),
        quiet: cli.quiet,
    };
    let aws = AwsArgs {
        profile: cli.profile.clone(),
        region: cli.region.clone(),
    };
    // At a terminal the progress lines are the live view; the logs say only what went wrong.
    let watching = output == cli::Output::Text && stderr_tty && !cli.quiet;
    let level = if cli.quiet {
        "error"
    } else if watching {
        "warn"
    } else {
        "info"
    };
    let log_color = text::use_color(stderr_tty, no_color.as_deref());
    if watching {
        killswitch::progress::to_stderr();
    }
    match cli.command {
        None => {
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
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "killswitch", &mut script);
            // A closed pipe (`| head`) is the reader's choice, not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            ExitCode::SUCCESS
        }
        Some(Command::Man { out_dir }) => match man_pages(out_dir.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Some(Command::Respond {
            source,
            request,
            dry_run,
            no_notify,
            no_sweep,
        }) => {
            handler::init_tracing_cli(level, log_color);
            respond_cmd(&aws, source, request, dry_run, no_notify, no_sweep, show)
                .await
                .unwrap_or_else(|e| fail(&e))
        }
        #[cfg(feature = "drill")]
        Some(Command::Drill {
            scenarios,
            account_id,
            yes,
            report_dir,
        }) => {
            // The drill's own progress lines are the live view; the handler's logs only on RUST_LOG.
            killswitch::progress::set_sink(None);
            handler::init_tracing_cli("error", log_color);
            run_drill(scenarios, account_id, yes, &report_dir)
                .await
                .unwrap_or_else(|e| fail(&e))
        }
        Some(Command::Status {
            access_key_id,
            user_name,
            role_name,
        }) => {
            handler::init_tracing_cli(level, log_color);
            status_cmd(&aws, &access_key_id, user_name, role_name, show)
                .await
                .unwrap_or_else(|e| fail(&e))
        }
        Some(Command::Restore {
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
        }) => {
            handler::init_tracing_cli(level, log_color);
            let key = match key_flag(&access_key_id) {
                Ok(k) => k,
                Err(e) => return fail(&e),
            };
            // A dry run publishes nothing: it needs no topic.
            let config = match if dry_run {
                Config::from_env_without_topic()
            } else {
                Config::from_env()
            } {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            let sdk = match sdk_config(&aws).await {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            let cloud = AwsClients::for_config(&sdk, &config);
            let request = oncall::RestoreRequest {
                user_name,
                role_name,
                session,
                reactivate_key,
            };
            let assessment = match oncall::assess(&cloud, &config, &key, &request).await {
                Ok(a) => a,
                Err(e) => return fail(&e),
            };
            // The plan and the refusals are what a person decides on: never quiet.
            for action in &assessment.plan {
                eprintln!("restore: will {action}");
            }
            for refusal in &assessment.refusals {
                eprintln!(
                    "restore: {} {refusal}",
                    if force { "FORCED PAST:" } else { "REFUSED:" }
                );
            }
            if assessment.plan.is_empty() && assessment.refusals.is_empty() {
                eprintln!("restore: nothing killswitch placed is in effect for {key}");
                if show.output == cli::Output::Json {
                    print_json(&serde_json::json!({"plan": assessment.plan, "dry_run": dry_run}));
                }
                return ExitCode::SUCCESS;
            }
            if dry_run {
                match show.output {
                    cli::Output::Json => print_json(
                        &serde_json::json!({"plan": assessment.plan, "refusals": assessment.refusals, "dry_run": true}),
                    ),
                    cli::Output::Text => println!(
                        "DRY RUN: nothing was changed; the lines above are the plan{}",
                        if assessment.refusals.is_empty() || force {
                            ""
                        } else {
                            " (REFUSED as it stands)"
                        }
                    ),
                }
                return ExitCode::SUCCESS;
            }
            if (force || assessment.refusals.is_empty())
                && !yes
                && !confirm(&format!("Undo the containment of {key}?"), key.as_str())
            {
                return fail(&Error::Declined("the restore".into()));
            }
            let restored = oncall::restore(
                &cloud,
                &config,
                &key,
                &assessment,
                &requested_by,
                &reason,
                force,
            )
            .await;
            match show.output {
                cli::Output::Json => print_json(&restored),
                cli::Output::Text => print!("{}", text::restored(&restored)),
            }
            if !restored.refused.is_empty() {
                ExitCode::from(cli::EXIT_BAD_INPUT)
            } else if !restored.failed.is_empty() {
                ExitCode::from(cli::EXIT_CONTAINMENT_FAILED)
            } else if !restored.notified {
                ExitCode::from(cli::EXIT_NOTIFY_FAILED)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

/// `--access-key-id` of status and restore: a bad one is a flag error, not an event's.
fn key_flag(raw: &str) -> Result<killswitch::incident::AccessKeyId, Error> {
    killswitch::incident::AccessKeyId::parse(raw).map_err(|e| match e {
        Error::BadEvent(why) => Error::Usage(format!("--access-key-id: {why}")),
        other => other,
    })
}

/// The man page on stdout, or one page per command in `dir`.
fn man_pages(dir: Option<&std::path::Path>) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Usage(format!("writing the man page: {e}"));
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page).map_err(io)?;
        let _ = std::io::Write::write_all(&mut std::io::stdout(), &page);
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let write = |name: String, cmd: clap::Command| -> Result<(), Error> {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .title(name.clone())
            .render(&mut page)
            .map_err(io)?;
        std::fs::write(dir.join(format!("{name}.1")), page).map_err(io)
    };
    for sub in cmd.get_subcommands() {
        let name = format!("killswitch-{}", sub.get_name());
        write(name.clone(), sub.clone().name(name).version(cli::VERSION))?;
    }
    write("killswitch".into(), cmd)?;
    eprintln!("killswitch: man pages written to {}", dir.display());
    Ok(())
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
    let cloud = AwsClients::for_config(&sdk_config(aws).await?, &config);
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
        cli::Output::Text => print!("{}", text::status(&state, show.color)),
    }
    Ok(if state.exists {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(cli::EXIT_KEY_NOT_FOUND)
    })
}
