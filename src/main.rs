//! Wiring: parse argv, start tracing, load configuration, build clients, pick the mode.

use std::process::ExitCode;

use clap::Parser;
use killswitch::aws::AwsClients;
use killswitch::cli::{self, Cli, Command};
use killswitch::config::Config;
use killswitch::error::Error;
use killswitch::handler::{self, App};
use killswitch::incident::AccountId;
use killswitch::playbook::Responder;

async fn build_app() -> Result<App<AwsClients>, Error> {
    let config = Config::from_env()?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let cloud = AwsClients::from_sdk_config(&sdk, config.topic_arn.clone());
    // Also opens the first TLS connection during init rather than during the first incident.
    let (account, arn) = cloud.caller().await?;
    let responder = Responder::from_arn(AccountId::parse(&account)?, &arn);
    Ok(App {
        cloud,
        config,
        responder,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => {
            handler::init_tracing(true);
            let app = match build_app().await {
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
        Some(Command::Respond { event, dry_run }) => {
            handler::init_tracing(false);
            let payload = match cli::read_event(&event) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("killswitch: {}", e.chain());
                    return cli::exit_code(&e);
                }
            };
            match build_app().await {
                Ok(app) => cli::respond(&app, payload, dry_run).await,
                Err(e) => {
                    eprintln!("killswitch: {}", e.chain());
                    cli::exit_code(&e)
                }
            }
        }
    }
}
