//! Wiring: parse argv, start tracing, load configuration, build clients, pick the mode.

use std::io::IsTerminal;
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
        profile_exists(p).await?;
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
    let Some(p) = &args.profile else {
        return Ok(sdk);
    };
    // As the AWS CLI does: a profile named on the command line wins over credentials in the
    // environment (the SDK's default chain reads AWS_ACCESS_KEY_ID first).
    let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
        .profile_name(p)
        .configure(
            &aws_config::provider_config::ProviderConfig::default()
                .with_region(sdk.region().cloned()),
        )
        .build();
    Ok(sdk
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build())
}

/// The SDK configuration of a command at a terminal: credentials checked before any call.
async fn cli_sdk(args: &AwsArgs) -> Result<aws_config::SdkConfig, Error> {
    let sdk = sdk_config(args).await?;
    credentials_ready(&sdk, args).await?;
    Ok(sdk)
}

/// A profile that is in neither the config nor the credentials file is a typo: one line, exit 2,
/// before any call (the SDK would otherwise fall back to whatever else it finds).
async fn profile_exists(name: &str) -> Result<(), Error> {
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let set = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        &aws_types::os_shim_internal::Env::real(),
        &files,
        None,
    )
    .await
    .map_err(|e| {
        Error::Usage(format!(
            "--profile {name}: the AWS config files cannot be read: {e}"
        ))
    })?;
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = set.profiles().collect();
    Err(Error::Usage(format!(
        "--profile {name}: no such profile (the AWS config files have: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )))
}

/// At a terminal the credentials are resolved before anything else: a missing or broken one is a
/// configuration problem (exit 2, one line), not a failed containment.
async fn credentials_ready(sdk: &aws_config::SdkConfig, args: &AwsArgs) -> Result<(), Error> {
    use aws_credential_types::provider::ProvideCredentials;
    let whose = match &args.profile {
        Some(p) => format!("profile {p}"),
        None => "the environment, AWS_PROFILE or the default profile".to_owned(),
    };
    let Some(provider) = sdk.credentials_provider() else {
        return Err(Error::Usage(format!("no AWS credentials from {whose}")));
    };
    provider.provide_credentials().await.map(|_| ()).map_err(|e| {
        if let aws_credential_types::provider::error::CredentialsError::CredentialsNotLoaded(_) = e
        {
            return Error::Usage(format!(
                "no AWS credentials found in {whose} (nor SSO, a container or instance role): pass --profile NAME or set AWS_PROFILE"
            ));
        }
        // The innermost cause is the one that says what to fix.
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        Error::Usage(format!("no usable AWS credentials from {whose}: {cause}"))
    })
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
            killswitch::trigger::parse(request.to_event(key, "(checking)", dry_run)).map_err(
                |e| match e {
                    Error::BadEvent(why) => Error::Usage(as_flags(&why)),
                    other => other,
                },
            )?;
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
    if let Some(p) = &cli.profile {
        cli::wrap::set_profile(p);
    }
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
            flags,
        }) => {
            handler::init_tracing_cli(level, log_color);
            respond_cmd(&aws, source, request, flags, show)
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
            let opts = cli::restore::Options {
                reason,
                requested_by,
                dry_run,
                yes,
                force,
            };
            match cli::restore::run(
                &cloud,
                &config,
                &key,
                &request,
                &opts,
                show.output,
                cli::restore::ask,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )
            .await
            {
                Ok(code) => ExitCode::from(code),
                Err(e) => fail(&e),
            }
        }
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

/// The man page on stdout, or one page per command in `dir`.
fn man_pages(dir: Option<&std::path::Path>) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Usage(format!("writing the man page: {e}"));
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let page = man_page(clap_mangen::Man::new(cmd.clone()), &cmd).map_err(io)?;
        let _ = std::io::Write::write_all(&mut std::io::stdout(), &page);
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let write = |name: String, cmd: clap::Command| -> Result<(), Error> {
        let page =
            man_page(clap_mangen::Man::new(cmd.clone()).title(name.clone()), &cmd).map_err(io)?;
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

/// clap_mangen's sections, with the examples as typed (no fill, no justification, ASCII
/// hyphens: a copied command must run) and the exit codes in their own section.
fn man_page(man: clap_mangen::Man, cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut page)?;
    }
    let after = cmd
        .get_after_long_help()
        .or(cmd.get_after_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let (examples, exit_codes) = match after.find("Exit codes:") {
        Some(i) => (&after[..i], Some(&after[i..])),
        None => (after.as_str(), None),
    };
    let examples = examples
        .trim()
        .trim_start_matches("Examples:")
        .trim_matches('\n');
    if !examples.trim().is_empty() {
        page.extend_from_slice(b".SH EXAMPLES\n.nf\n");
        for line in examples.lines() {
            page.extend_from_slice(roff_literal(line.trim_start()).as_bytes());
            page.push(b'\n');
        }
        page.extend_from_slice(b".fi\n");
    }
    if let Some(codes) = exit_codes {
        page.extend_from_slice(b".SH \"EXIT STATUS\"\n");
        page.extend_from_slice(roff_literal(&codes.replace('\n', " ")).as_bytes());
        page.push(b'\n');
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    Ok(page)
}

/// A line roff prints as written.
fn roff_literal(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
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
