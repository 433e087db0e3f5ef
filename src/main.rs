//! Wiring: parse argv, start tracing, load configuration, build clients, pick the mode.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use killswitch::aws::AwsClients;
use killswitch::cli::{self, Cli, Command};
use killswitch::config::Config;
#[cfg(feature = "drill")]
use killswitch::drill::{self, Drill, Target};
use killswitch::error::Error;
use killswitch::handler::{self, App};
use killswitch::incident::AccountId;
use killswitch::oncall;
use killswitch::playbook::Responder;

/// One SDK configuration for every client. Timeouts turn a hanging endpoint into an error the
/// playbook can report, instead of a silent Lambda timeout.
async fn sdk_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .operation_attempt_timeout(std::time::Duration::from_secs(5))
        .operation_timeout(std::time::Duration::from_secs(15))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .load()
        .await
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
    let cloud = AwsClients::for_config(&sdk_config().await, &config);
    let (responder, ()) = tokio::join!(responder(&cloud), cloud.warm_up());
    Ok(App {
        cloud,
        config,
        responder: Some(responder?),
    })
}

/// The command line learns who it is in the first wave of the response itself.
async fn build_cli_app(sweep: bool) -> Result<App<AwsClients>, Error> {
    let mut config = Config::from_env()?;
    config.sweep_inline = sweep;
    let cloud = AwsClients::for_config(&sdk_config().await, &config);
    Ok(App {
        cloud,
        config,
        responder: None,
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
        return Err(Error::BadEvent(
            "no local AWS: run drills with scripts/drill.sh, or name a sandbox account with --account-id".into(),
        ));
    }
    let sdk = sdk_config().await;
    let cloud = AwsClients::from_sdk_config(&sdk, "arn:aws:sns:us-east-1:000000000000:unused");
    let me = responder(&cloud).await?;
    let target = match account_id {
        Some(id) => {
            if id != me.account.as_str() {
                return Err(Error::BadEvent(format!(
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
                return Err(Error::BadEvent("drill not confirmed".into()));
            }
            Target::Account { id }
        }
        None => Target::Local { endpoint },
    };
    let root = std::env::current_dir().map_err(|e| Error::BadEvent(e.to_string()))?;
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
        .map_err(|e| Error::BadEvent(format!("{}: {e}", report_dir.display())))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let json_path = report_dir.join(format!("drill-{stamp}.json"));
    let md_path = report_dir.join(format!("drill-{stamp}.md"));
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    )
    .and_then(|()| std::fs::write(&md_path, drill::markdown(&results)))
    .map_err(|e| Error::BadEvent(format!("writing the drill record: {e}")))?;
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => {
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
        Some(Command::Respond {
            event,
            dry_run,
            no_sweep,
        }) => {
            handler::init_tracing(false);
            let payload = match cli::read_event(&event) {
                Ok(p) => p,
                Err(e) => return fail(&e),
            };
            match build_cli_app(!no_sweep).await {
                Ok(app) => cli::respond(&app, payload, dry_run).await,
                Err(e) => fail(&e),
            }
        }
        #[cfg(feature = "drill")]
        Some(Command::Drill {
            scenarios,
            account_id,
            yes,
            report_dir,
        }) => {
            // The drill's own progress lines are the live view; the handler's logs only on RUST_LOG.
            handler::init_tracing_at(false, "error");
            run_drill(scenarios, account_id, yes, &report_dir)
                .await
                .unwrap_or_else(|e| fail(&e))
        }
        Some(Command::Status {
            access_key_id,
            user_name,
            role_name,
        }) => {
            handler::init_tracing(false);
            let key = match killswitch::incident::AccessKeyId::parse(&access_key_id) {
                Ok(k) => k,
                Err(e) => return fail(&e),
            };
            let cloud = AwsClients::from_sdk_config(&sdk_config().await, "");
            match oncall::status(&cloud, &key, user_name.as_deref(), role_name.as_deref()).await {
                Ok(state) => {
                    print_json(&state);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
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
            handler::init_tracing(false);
            let key = match killswitch::incident::AccessKeyId::parse(&access_key_id) {
                Ok(k) => k,
                Err(e) => return fail(&e),
            };
            let config = match Config::from_env() {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            let cloud = AwsClients::for_config(&sdk_config().await, &config);
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
                print_json(&serde_json::json!({"plan": assessment.plan, "dry_run": dry_run}));
                return ExitCode::SUCCESS;
            }
            if dry_run {
                print_json(
                    &serde_json::json!({"plan": assessment.plan, "refusals": assessment.refusals, "dry_run": true}),
                );
                return ExitCode::SUCCESS;
            }
            if (force || assessment.refusals.is_empty())
                && !yes
                && !confirm(&format!("Undo the containment of {key}?"), key.as_str())
            {
                return fail(&Error::BadEvent("restore not confirmed".into()));
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
            print_json(&restored);
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
